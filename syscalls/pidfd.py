"""Process file descriptors: pidfd_open, pidfd_send_signal, pidfd_getfd.

Facts about Linux's pidfds that shape this module (kernel/pid.c,
kernel/signal.c):

* A pidfd names a process (a thread-group leader's pid; another thread's id
  is ENOENT, as Linux 6.9 and later answer); it is always close-on-exec,
  and PIDFD_NONBLOCK (O_NONBLOCK) is its only flag. It stays valid after the
  process dies: polling it is POLLIN once the process has exited, POLLHUP as
  well once it is reaped.
* pidfd_send_signal follows kill's permission rules (a zombie takes the
  signal and drops it; once reaped it is ESRCH); a siginfo may be given,
  with a negative si_code (or for the caller's own process), and its si_signo
  must be the signal sent.
* pidfd_getfd duplicates a descriptor of the process, which needs the ptrace
  access rule: the same real, effective and saved ids, or CAP_SYS_PTRACE.
* ioctl(PIDFD_GET_INFO) tells the process's ids and credentials, and after
  it is reaped its wait status (PIDFD_INFO_EXIT; no cgroup id here).
"""

from __future__ import annotations

import errno
import struct
from typing import TYPE_CHECKING, Any

from sentry.kernel import pidns
from sentry.kernel import signals as sig
from sentry.kernel.creds import CAP_SYS_PTRACE
from sentry.kernel.errors import SyscallError
from sentry.kernel.signals import SigInfo
from sentry.vfs.description import dentry_of
from sentry.vfs.file import O_NONBLOCK, O_RDWR, POLLHUP, POLLIN, FileDescription, Stat
from syscalls.abi import s32
from syscalls.signal import may_signal, send_from
from syscalls.table import Entry, supported

if TYPE_CHECKING:
    from sentry.kernel.task import Task
    from sentry.kernel.threadgroup import ThreadGroup

Args = tuple[int, ...]

PIDFD_NONBLOCK = O_NONBLOCK
PIDFD_SIGNAL_THREAD, PIDFD_SIGNAL_THREAD_GROUP, PIDFD_SIGNAL_PROCESS_GROUP = 1, 2, 4
PIDFD_SIGNAL_SCOPES = 7
POLLRDNORM = 0x40
# PIDFD_GET_INFO: _IOWR(0xFF, 11, struct pidfd_info), any size from VER0 (64) up.
PIDFD_GET_INFO_BASE = 0xC000FF0B
PIDFD_INFO_SIZE_VER0 = 64
PIDFD_INFO_PID, PIDFD_INFO_CREDS, PIDFD_INFO_EXIT = 0x1, 0x2, 0x8
# mask, cgroupid, pid, tgid, ppid, ruid, rgid, euid, egid, suid, sgid, fsuid, fsgid,
# exit_code, coredump_mask, spare
PIDFD_INFO = struct.Struct("<QQ11IiII")
SI_TKILL = -6


class PidFd(FileDescription):
    """A reference to one process, alive or not."""

    def __init__(self, tg: ThreadGroup, flags: int) -> None:
        super().__init__(O_RDWR | (flags & O_NONBLOCK))
        self.tg = tg

    def read(self, count: int) -> bytes:
        raise SyscallError(errno.EINVAL)

    def write(self, data: bytes) -> int:
        raise SyscallError(errno.EINVAL)

    def poll(self, events: int, timeout_s: float | None) -> int:
        tg = self.tg
        if tg.reaped:
            return (POLLIN | POLLRDNORM | POLLHUP) & (events | POLLHUP)
        if tg.zombie:
            return (POLLIN | POLLRDNORM) & events
        return 0

    def stat(self) -> Stat:
        return Stat(mode=0o600)

    def ioctl(self, cmd: int, arg: int, task: object) -> int:
        if cmd & ~(0x3FFF << 16) == PIDFD_GET_INFO_BASE:
            return _get_info(self.tg, task, cmd >> 16 & 0x3FFF, arg)
        return super().ioctl(cmd, arg, task)


def _get_info(tg: ThreadGroup, task: Any, usize: int, arg: int) -> int:
    """PIDFD_GET_INFO: ids and credentials while the process exists (a zombie
    too); once it is reaped, only its wait status (PIDFD_INFO_EXIT, when
    asked: else ESRCH). Copied out up to the caller's struct size. The ids
    are those of the caller's pid namespace; a process outside it (not in it
    or below) is ESRCH, as Linux before 6.18.14 (the release uname gives)."""
    if not arg or usize < PIDFD_INFO_SIZE_VER0:
        raise SyscallError(errno.EINVAL)
    mask = struct.unpack("<Q", task.mm.copy_in(arg, 8))[0]
    info = bytearray(PIDFD_INFO.size)
    ns = pidns.viewer(task)
    if not pidns.is_visible_from(pidns.active(tg), ns):
        raise SyscallError(errno.ESRCH)
    if tg.reaped:
        if not mask & PIDFD_INFO_EXIT:
            raise SyscallError(errno.ESRCH)
        PIDFD_INFO.pack_into(info, 0, PIDFD_INFO_EXIT, 0, 0, 0, 0, *([0] * 8), tg.exit_status,
                             0, 0)
    else:
        t = tg.tasks[0] if tg.tasks else None
        if t is None:
            raise SyscallError(errno.ESRCH)
        c = t.creds
        ppid = pidns.vpid(ns, tg.parent)
        pid = pidns.vpid(ns, tg)
        PIDFD_INFO.pack_into(info, 0, PIDFD_INFO_PID | PIDFD_INFO_CREDS, 0, pid, pid,
                             ppid, c.uid, c.gid, c.euid, c.egid, c.suid, c.sgid, c.fsuid,
                             c.fsgid, 0, 0, 0)
    n = min(usize, len(info))
    task.mm.copy_out(arg, bytes(info[:n]) + bytes(usize - n))
    return 0


def _pidfd(t: Task, fd: int) -> PidFd:
    desc = t.fds.get(fd)
    if not isinstance(desc, PidFd):
        raise SyscallError(errno.EBADF)
    return desc


def _signal_target(t: Task, fd: int) -> ThreadGroup:
    """pidfd_send_signal's process: a pidfd's, or that of a /proc/<pid>
    directory opened by the caller (Linux takes those too, naming the
    process by its leader's pid; a thread's directory is EBADF)."""
    desc = t.fds.get(fd)
    if isinstance(desc, PidFd):
        return desc.tg
    from sentry.procfs.piddir import PidDir  # procfs imports the syscall layer

    inode = getattr(dentry_of(desc), "inode", None)
    if isinstance(inode, PidDir) and inode.ref.tid is None:
        tg = getattr(desc, "proc_tg", None)  # the process it was opened for, not a reuse
        if tg is None or tg.reaped:
            raise SyscallError(errno.ESRCH)
        return tg
    raise SyscallError(errno.EBADF)


def pidfd_open(t: Task, a: Args) -> int:
    """pidfd_open(2)."""
    pid, flags = s32(a[0]), s32(a[1])
    if flags & ~PIDFD_NONBLOCK or pid <= 0:
        raise SyscallError(errno.EINVAL)
    ns = pidns.viewer(t)
    with t.kernel.lock:
        task = pidns.find_task(t.kernel, ns, pid)
        tg = pidns.find_tg(t.kernel, ns, pid)
    if tg is None or tg.reaped:
        if task is not None and not task.exited:
            raise SyscallError(errno.ENOENT)  # a thread that leads no process (6.9+)
        raise SyscallError(errno.ESRCH)
    return t.fds.install(PidFd(tg, flags), cloexec=True)


def pidfd_send_signal(t: Task, a: Args) -> int:
    """pidfd_send_signal(2); one of the PIDFD_SIGNAL_* scopes may be named,
    which for a process's pidfd all reach the process (or its group)."""
    flags = a[3] & 0xFFFF_FFFF
    if flags & ~PIDFD_SIGNAL_SCOPES or flags & (flags - 1):
        raise SyscallError(errno.EINVAL)
    signo = s32(a[1])
    if not 0 <= signo <= 64:
        raise SyscallError(errno.EINVAL)
    tg = _signal_target(t, s32(a[0]))
    if tg.reaped:
        raise SyscallError(errno.ESRCH)
    live = tg.live_tasks()
    if not may_signal(t, live[0] if live else None, signo):
        raise SyscallError(errno.EPERM)
    info = SigInfo(signo, code=sig.SI_USER, pid=t.pid, uid=t.creds.uid)
    if a[2]:
        raw = t.mm.copy_in(a[2], 128)
        given_signo, _errno, code = struct.unpack_from("<iii", raw)
        if given_signo != signo:
            raise SyscallError(errno.EINVAL)
        if tg is not t.tg and (code >= 0 or code == SI_TKILL):
            raise SyscallError(errno.EPERM)
        value = int.from_bytes(raw[24:32], "little")
        info = SigInfo(signo, code=code, pid=t.pid, uid=t.creds.uid, value=value)
    if signo and not tg.zombie:  # a zombie takes the signal and ignores it
        if flags == PIDFD_SIGNAL_PROCESS_GROUP:
            with t.kernel.lock:
                group = [g for g in t.kernel.thread_groups.values()
                         if g.pgid == tg.pgid and not g.zombie]
            for g in group:
                send_from(t, g, info)
        else:
            send_from(t, tg, info)
    return 0


def pidfd_getfd(t: Task, a: Args) -> int:
    """pidfd_getfd(2): a duplicate of the process's descriptor, close-on-exec."""
    if a[2]:
        raise SyscallError(errno.EINVAL)
    tg = _pidfd(t, s32(a[0])).tg
    if tg.zombie or tg.reaped:
        raise SyscallError(errno.ESRCH)
    live = tg.live_tasks()
    if tg is not t.tg and live:
        c, tc = t.creds, live[0].creds
        same = c.uid == tc.uid == tc.euid == tc.suid and c.gid == tc.gid == tc.egid == tc.sgid
        if not same and not c.capable(CAP_SYS_PTRACE):
            raise SyscallError(errno.EPERM)
    desc = tg.fds.get(s32(a[1]))
    return t.fds.install(desc, cloexec=True)


ENTRIES: list[Entry] = [
    supported("pidfd_open", pidfd_open),
    supported("pidfd_send_signal", pidfd_send_signal),
    supported("pidfd_getfd", pidfd_getfd),
]
