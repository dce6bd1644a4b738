"""signalfd: pending signals read as file descriptors (signalfd, signalfd4).

Facts about Linux's signalfd that shape this module (fs/signalfd.c):

* The descriptor holds a mask; SIGKILL and SIGSTOP are silently dropped from
  it. read() dequeues pending signals in the mask, from the reading thread's
  own pending set and then its process's, as ``struct signalfd_siginfo``
  records of 128 bytes; a buffer under 128 bytes is EINVAL. With nothing
  pending it blocks, or EAGAIN under O_NONBLOCK.
* It is the reader, not the creator, whose signals are read: a signalfd
  passed to another process reads that process's signals.
* poll() is POLLIN while a signal in the mask is pending for the polling
  thread. Programs block the signals (sigprocmask) so that they stay pending
  for the descriptor instead of running a handler.
* signalfd(fd, ...) on an existing signalfd replaces its mask; on another
  kind of file it is EINVAL. The size of the mask must be 8.
"""

from __future__ import annotations

import errno
import struct
import time as _time
from typing import TYPE_CHECKING

from sentry.kernel import signals as sig
from sentry.kernel.errors import SyscallError
from sentry.kernel.task import current_task
from sentry.vfs.file import (
    O_CLOEXEC,
    O_NONBLOCK,
    O_RDWR,
    POLLIN,
    FileDescription,
    Stat,
    check_interrupt,
)
from syscalls.abi import U64S, s32
from syscalls.table import Entry, supported

if TYPE_CHECKING:
    from sentry.kernel.signals import SigInfo
    from sentry.kernel.task import Task

Args = tuple[int, ...]

SIGINFO_SIZE = 128
# ssi_signo, errno, code, pid, uid, fd, tid, band, overrun, trapno, status, int,
# ptr, utime, stime, addr (then addr_lsb, syscall, call_addr, arch: zero here)
SIGNALFD_SIGINFO = struct.Struct("<IiiIIiIIIIiiQQQQ")
SLICE_S = 0.005
UNCATCHABLE = sig.bit(9) | sig.bit(19)  # SIGKILL, SIGSTOP


def _pack(info: SigInfo) -> bytes:
    raw = SIGNALFD_SIGINFO.pack(info.signo, 0, info.code, info.pid & 0xFFFF_FFFF,
                                info.uid & 0xFFFF_FFFF, 0, 0, 0, 0, 0, info.status,
                                info.value & 0xFFFF_FFFF, info.value & (1 << 64) - 1, 0, 0,
                                info.addr)
    return raw.ljust(SIGINFO_SIZE, b"\0")


class SignalFd(FileDescription):
    """A signalfd: the mask of signals it reads."""

    def __init__(self, mask: int, flags: int) -> None:
        super().__init__(O_RDWR | (flags & O_NONBLOCK))
        self.mask = mask & ~UNCATCHABLE

    def _take(self, t: Task) -> SigInfo | None:
        blocked = ~self.mask & ((1 << 64) - 1)
        with t.kernel.lock:
            return t.pending.take(blocked) or t.tg.pending.take(blocked)

    def read(self, count: int) -> bytes:
        if count < SIGINFO_SIZE:
            raise SyscallError(errno.EINVAL)
        t = current_task()
        if t is None:
            raise SyscallError(errno.EINVAL)
        out: list[bytes] = []
        while True:
            while len(out) < count // SIGINFO_SIZE:
                info = self._take(t)
                if info is None:
                    break
                out.append(_pack(info))
            if out:
                return b"".join(out)
            if self.flags & O_NONBLOCK:
                raise SyscallError(errno.EAGAIN)
            check_interrupt()
            t.sleep_until(_time.monotonic() + SLICE_S)

    def write(self, data: bytes) -> int:
        raise SyscallError(errno.EINVAL)

    def poll(self, events: int, timeout_s: float | None) -> int:
        t = current_task()
        if t is None:
            return 0
        pending = (t.pending.mask | t.tg.pending.mask) & self.mask
        return POLLIN & events if pending else 0

    def stat(self) -> Stat:
        return Stat(mode=0o600)


def signalfd4(t: Task, a: Args) -> int:
    """signalfd4(2)."""
    fd, size, flags = s32(a[0]), a[2], s32(a[3])
    if size != 8:
        raise SyscallError(errno.EINVAL)
    (mask,) = U64S.unpack(t.mm.copy_in(a[1], 8))
    if flags & ~(O_CLOEXEC | O_NONBLOCK):
        raise SyscallError(errno.EINVAL)
    if fd == -1:
        return t.fds.install(SignalFd(mask, flags), cloexec=bool(flags & O_CLOEXEC))
    desc = t.fds.get(fd)
    if not isinstance(desc, SignalFd):
        raise SyscallError(errno.EINVAL)
    desc.mask = mask & ~UNCATCHABLE
    return fd


def signalfd(t: Task, a: Args) -> int:
    """signalfd(2): signalfd4 without flags."""
    return signalfd4(t, (a[0], a[1], a[2], 0, 0, 0))


ENTRIES: list[Entry] = [
    supported("signalfd", signalfd),
    supported("signalfd4", signalfd4),
]
