"""Open file descriptions: what a file descriptor points at.

A description is shared by every fd dup'd from it (offset, status flags), as on
Linux.  Filesystems subclass :class:`FileDescription`; the defaults give the
errno Linux gives for an operation a kind of file does not have.
"""

from __future__ import annotations

import errno
import os
import stat as _stat
import threading
from collections.abc import Callable

from sentry.kernel.errors import SyscallError
from shm.records import record

O_ACCMODE = 0o3
O_RDONLY = 0
O_WRONLY = 1
O_RDWR = 2
O_APPEND = 0o2000
O_NONBLOCK = 0o4000
O_CLOEXEC = 0o2000000
O_NOCTTY = 0o400
# The status flags F_SETFL may change (Linux: O_APPEND|O_ASYNC|O_DIRECT|O_NOATIME|O_NONBLOCK).
SETFL_MASK = O_APPEND | O_NONBLOCK | 0o20000 | 0o40000 | 0o1000000

POLLIN = 0x1
POLLPRI = 0x2
POLLOUT = 0x4
POLLERR = 0x8
POLLHUP = 0x10
POLLNVAL = 0x20


_local = threading.local()
WAIT_SLICE = 0.05


def set_interrupt_check(check: Callable[[], None] | None) -> None:
    """Install, for the calling Sentry thread, what a blocking file wait calls
    between slices: the task's check, which raises when a signal or a kill must
    end the wait (the VFS sits below the kernel and cannot name tasks)."""
    _local.check = check


def check_interrupt() -> None:
    check = getattr(_local, "check", None)
    if check is not None:
        check()


def interrupted() -> bool:
    """The same question without raising (for waits that prefer a flag)."""
    try:
        check_interrupt()
    except Exception:  # noqa: BLE001 - any raise means "stop waiting"
        return True
    return False


class Readiness:
    """Wakes tasks sleeping in poll/select/epoll when some file's readiness
    may have changed (sockets and pipes call ``changed``), so a wait ends
    at the event instead of at its next slice. ``gen`` counts changes: a
    poller reads it before checking its files and sleeps only if it did
    not move."""

    def __init__(self) -> None:
        self.gen = 0
        self._sleepers: set[threading.Event] = set()

    def changed(self) -> None:
        self.gen += 1
        if self._sleepers:
            for ev in list(self._sleepers):
                ev.set()

    def sleeping(self, ev: threading.Event) -> None:
        self._sleepers.add(ev)

    def awake(self, ev: threading.Event) -> None:
        self._sleepers.discard(ev)


READINESS = Readiness()


@record(slots=True)
class Stat:
    """The fields of struct stat that the Sentry fills in."""

    dev: int = 0
    ino: int = 0
    mode: int = 0
    nlink: int = 1
    uid: int = 0
    gid: int = 0
    rdev: int = 0
    size: int = 0
    blksize: int = 4096
    blocks: int = 0
    atime_ns: int = 0
    mtime_ns: int = 0
    ctime_ns: int = 0
    attributes: int = 0  # statx's STATX_ATTR_* bits set, and those the filesystem knows
    attributes_mask: int = 0


class FileDescription:
    """Base open file; subclasses override what their kind of file supports."""

    def __init__(self, flags: int) -> None:
        # O_NOCTTY reaches a terminal's open but is not a status flag (F_GETFL).
        self.flags = flags & ~(O_CLOEXEC | O_NOCTTY)
        self.refs = 0

    # Access mode checks, done once here for every kind of file.
    def readable(self) -> bool:
        return (self.flags & O_ACCMODE) in (O_RDONLY, O_RDWR)

    def writable(self) -> bool:
        return (self.flags & O_ACCMODE) in (O_WRONLY, O_RDWR)

    def read(self, count: int) -> bytes:
        raise SyscallError(errno.EINVAL)

    def write(self, data: bytes) -> int:
        raise SyscallError(errno.EINVAL)

    def pread(self, count: int, offset: int) -> bytes:
        raise SyscallError(errno.ESPIPE)

    def pwrite(self, data: bytes, offset: int) -> int:
        raise SyscallError(errno.ESPIPE)

    def seek(self, offset: int, whence: int) -> int:
        raise SyscallError(errno.ESPIPE)

    def stat(self) -> Stat:
        raise SyscallError(errno.EINVAL)

    def ioctl(self, cmd: int, arg: int, task: object) -> int:
        raise SyscallError(errno.ENOTTY)

    def poll(self, events: int, timeout_s: float | None) -> int:
        """Ready events among ``events``; waits up to ``timeout_s`` (None: forever).
        With ``timeout_s == 0`` it must neither block nor raise for a pending
        signal: poll, select and epoll look at every file of a set that way."""
        return events & (POLLIN | POLLOUT)

    def poll_generation(self) -> int | None:
        """A counter that moves on every change of this file's readiness (data
        in or out, an end opened or closed), for edge-triggered epoll; None
        when the file keeps none (epoll then reports it level-triggered)."""
        return None

    def release(self) -> None:
        """The last fd referring to this description was closed."""


def stat_from_host(st: os.stat_result) -> Stat:
    """A host file's attributes as the application sees them (imported stdio)."""
    return Stat(
        dev=st.st_dev, ino=st.st_ino, mode=st.st_mode, nlink=st.st_nlink, uid=st.st_uid,
        gid=st.st_gid, rdev=st.st_rdev,
        size=st.st_size if _stat.S_ISREG(st.st_mode) else 0,
        blksize=st.st_blksize, blocks=st.st_blocks, atime_ns=st.st_atime_ns,
        mtime_ns=st.st_mtime_ns, ctime_ns=st.st_ctime_ns,
    )
