"""/proc/sys/kernel's System V IPC tunables (Linux's ipc/ipc_sysctl.c).

Facts kept from Linux:

* They belong to an IPC namespace: a read or a write goes to the namespace
  of the task that makes it.
* msgmni and shmmni bound how many queues / segments the namespace holds
  (msgget/shmget are then ENOSPC); a write takes 0..32768 (EINVAL beyond).
  shmmax bounds a new segment's size (shmget EINVAL above it) and takes any
  unsigned long.  Root writes them (mode 0644).
* msg_next_id, sem_next_id and shm_next_id name the id the next object of
  their kind gets (checkpoint/restore tools recreate objects with their old
  ids); -1 means unset and they go back to -1 once used.  Their mode shows
  0444: only a writer with CAP_CHECKPOINT_RESTORE or CAP_SYS_ADMIN may write
  (EACCES; Linux refuses at open, here an uncapable root is refused at the
  write) a value in 0..INT_MAX (EINVAL).
* msgmax, msgmnb, sem and shmall are shown and stay read-only here (the
  Sentry applies Linux's defaults).
"""

from __future__ import annotations

import errno
from collections.abc import Callable
from typing import TYPE_CHECKING

from sentry.kernel import namespaces
from sentry.kernel.creds import CAP_CHECKPOINT_RESTORE, CAP_SYS_ADMIN
from sentry.kernel.errors import SyscallError
from sentry.kernel.ipc import IpcNamespace
from sentry.kernel.ipc.msg import MSGMAX, MSGMNB
from sentry.kernel.ipc.registry import MNI_MAX, Registry
from sentry.kernel.ipc.sem import SEMMNS, SEMMSL, SEMOPM
from sentry.kernel.ipc.shm import SHMALL
from sentry.kernel.sysctl import parse_int
from sentry.kernel.task import current_task
from sentry.procfs.nodes import ProcFile
from sentry.vfs.inode import Inode

if TYPE_CHECKING:
    from sentry.kernel.kernel import Kernel
    from sentry.procfs.fs import ProcFilesystem

INT_MAX = (1 << 31) - 1
ULONG_MAX = (1 << 64) - 1


def reader_ipc(k: Kernel) -> IpcNamespace:
    """The reading (or writing) task's IPC namespace, else the sandbox's first."""
    t = current_task()
    return namespaces.ipc_of(t) if t is not None else k.ipc


def _set_next_id(registry: Registry, data: bytes) -> None:  # type: ignore[type-arg]
    t = current_task()
    if t is None or not (t.creds.capable(CAP_CHECKPOINT_RESTORE)
                         or t.creds.capable(CAP_SYS_ADMIN)):
        raise SyscallError(errno.EACCES)
    registry.next_id = parse_int(data, 0, INT_MAX)


def ipc_sysctls(fs: ProcFilesystem) -> dict[bytes, Callable[[], Inode]]:
    """The entries of /proc/sys/kernel that are the IPC namespace's."""
    k = fs.kernel

    def file(read: Callable[[IpcNamespace], object],
             write: Callable[[IpcNamespace, bytes], None] | None = None,
             mode: int = 0o644) -> Callable[[], Inode]:
        def gen() -> bytes:
            return str(read(reader_ipc(k))).encode() + b"\n"

        def writer(data: bytes) -> None:
            assert write is not None
            ns = reader_ipc(k)
            with ns.lock:
                write(ns, data)
        if write is None:
            return lambda: ProcFile(fs, gen)
        return lambda: ProcFile(fs, gen, mode=mode, writer=writer)

    def set_mni(pick: Callable[[IpcNamespace], Registry]) -> Callable[  # type: ignore[type-arg]
            [IpcNamespace, bytes], None]:
        def write(ns: IpcNamespace, data: bytes) -> None:
            pick(ns).mni = parse_int(data, 0, MNI_MAX)
        return write

    def set_shmmax(ns: IpcNamespace, data: bytes) -> None:
        ns.shm.shmmax = parse_int(data, 0, ULONG_MAX)

    return {
        b"msgmax": file(lambda ns: MSGMAX),
        b"msgmnb": file(lambda ns: MSGMNB),
        b"msgmni": file(lambda ns: ns.msg.queues.mni, set_mni(lambda ns: ns.msg.queues)),
        b"msg_next_id": file(lambda ns: ns.msg.queues.next_id,
                             lambda ns, b: _set_next_id(ns.msg.queues, b), 0o444),
        b"sem": file(lambda ns: f"{SEMMSL}\t{SEMMNS}\t{SEMOPM}\t{ns.sem.sets.mni}"),
        b"sem_next_id": file(lambda ns: ns.sem.sets.next_id,
                             lambda ns, b: _set_next_id(ns.sem.sets, b), 0o444),
        b"shmall": file(lambda ns: SHMALL),
        b"shmmax": file(lambda ns: ns.shm.shmmax, set_shmmax),
        b"shmmni": file(lambda ns: ns.shm.segments.mni,
                        set_mni(lambda ns: ns.shm.segments)),
        b"shm_next_id": file(lambda ns: ns.shm.segments.next_id,
                             lambda ns, b: _set_next_id(ns.shm.segments, b), 0o444),
    }

