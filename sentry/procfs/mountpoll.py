"""/proc/<pid>/mounts and mountinfo wait for mount table changes.

Linux's mounts_poll answers every poll with EPOLLIN | EPOLLRDNORM and, the
first time after the namespace's mount table changed since the open file
last looked, EPOLLERR | EPOLLPRI as well: how systemd and udisks learn of
mounts (and the LTP's epoll_wait10).  Here "changed" is the file's text
changing (a digest of what a read from the start would show), so the mount
code needs no event counter: a mount and its umount between two polls show
as no change (Linux would report one).  Waiters learn of it at the next
poll slice (syscalls/poll.py), not from a wake-up.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import TYPE_CHECKING

from sentry.kernel.errors import SyscallError
from sentry.procfs.nodes import ProcessRef, ProcFile, SnapshotFile
from sentry.vfs.file import FileDescription

if TYPE_CHECKING:
    from sentry.procfs.fs import ProcFilesystem

POLLIN, POLLPRI, POLLERR, POLLRDNORM = 0x1, 0x2, 0x8, 0x40
Gen = Callable[[], bytes]


def _digest(gen: Gen) -> bytes:
    try:
        return hashlib.blake2b(gen(), digest_size=16).digest()
    except SyscallError:  # the process is gone: nothing changes any more
        return b""


class MountsFile(SnapshotFile):
    """An open mounts/mountinfo: pollable (epoll accepts it)."""

    can_poll = True

    def __init__(self, inode: ProcFile, data: bytes, flags: int) -> None:
        super().__init__(inode, data, flags)
        self._seen = _digest(inode.gen)

    def poll(self, events: int, timeout_s: float | None) -> int:
        ready = POLLIN | POLLRDNORM
        now = _digest(self.inode.gen)
        if now != self._seen:
            self._seen = now
            ready |= POLLERR | POLLPRI
        return ready & events


class MountsInode(ProcFile):
    """/proc/<pid>/mounts or mountinfo."""

    def open(self, flags: int) -> FileDescription:
        desc = super().open(flags)
        assert isinstance(desc, SnapshotFile)
        return MountsFile(self, desc.data or b"", flags)


def mounts_maker(text: Callable[[ProcFilesystem, ProcessRef], Gen]
                 ) -> Callable[[ProcFilesystem, ProcessRef], MountsInode]:
    """A /proc/<pid> entry maker (piddir.py's shape) for a mounts file."""
    return lambda fs, ref: MountsInode(fs, text(fs, ref), ref=ref)
