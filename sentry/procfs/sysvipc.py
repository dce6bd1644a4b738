"""/proc/sysvipc/{sem,msg,shm}: the sandbox's System V objects, in Linux's
format (ipc/sem.c, ipc/msg.c), which util-linux's ipcs reads before it falls
back to the *_STAT calls. Each sandbox shows its own IPC namespace only."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sentry.kernel.ipc import IpcNamespace

SEM_HEADER = ("       key      semid perms      nsems   uid   gid  cuid  cgid"
              "      otime      ctime\n")
MSG_HEADER = ("       key      msqid perms      cbytes       qnum lspid lrpid   uid   gid"
              "  cuid  cgid      stime      rtime      ctime\n")
SHM_HEADER = ("       key      shmid perms                  size  cpid  lpid nattch   uid"
              "   gid  cuid  cgid      atime      dtime      ctime                   rss"
              "                  swap\n")


def sem(ipc: IpcNamespace) -> bytes:
    """/proc/sysvipc/sem."""
    with ipc.lock:
        lines = [f"{s.key:10d} {s.id:10d}  {s.mode:4o} {s.nsems:10d} {s.uid:5d} {s.gid:5d} "
                 f"{s.cuid:5d} {s.cgid:5d} {s.otime:10d} {s.ctime:10d}\n"
                 for s in ipc.sem.sets]
    return (SEM_HEADER + "".join(lines)).encode()


def msg(ipc: IpcNamespace) -> bytes:
    """/proc/sysvipc/msg."""
    with ipc.lock:
        lines = [f"{q.key:10d} {q.id:10d}  {q.mode:4o}  {q.cbytes:10d} {len(q.messages):10d} "
                 f"{q.lspid:5d} {q.lrpid:5d} {q.uid:5d} {q.gid:5d} {q.cuid:5d} {q.cgid:5d} "
                 f"{q.stime:10d} {q.rtime:10d} {q.ctime:10d}\n"
                 for q in ipc.msg.queues]
    return (MSG_HEADER + "".join(lines)).encode()


def shm(ipc: IpcNamespace, kernel: Any) -> bytes:
    """/proc/sysvipc/shm."""
    with ipc.lock:
        lines = [f"{s.key:10d} {s.id:10d}  {s.mode | s.flags:4o} {s.size:21d} {s.cpid:5d} "
                 f"{s.lpid:5d} {s.nattch(kernel):6d} {s.uid:5d} {s.gid:5d} {s.cuid:5d} "
                 f"{s.cgid:5d} {s.atime:10d} {s.dtime:10d} {s.ctime:10d} "
                 f"{s.pages * 4096:21d} {0:21d}\n" for s in ipc.shm.segments]
    return (SHM_HEADER + "".join(lines)).encode()
