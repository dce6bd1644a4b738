"""Linux x86-64 structure layouts shared by the syscall families.

Every struct.Struct is compiled once here; handlers never build format strings
on the hot path.  Lengths and counts come from the application: check them
before allocating.
"""

from __future__ import annotations

import errno
import struct
from typing import TYPE_CHECKING

from sentry.kernel.errors import SyscallError

if TYPE_CHECKING:
    from sentry.kernel.task import Task
    from sentry.vfs.file import Stat

U64 = (1 << 64) - 1
IOV_MAX = 1024
MAX_RW_COUNT = 0x7FFFF000  # Linux caps one read/write at this many bytes

IOVEC = struct.Struct("<QQ")
TIMESPEC = struct.Struct("<qq")
TIMEVAL = struct.Struct("<qq")
RLIMIT = struct.Struct("<QQ")
U32 = struct.Struct("<I")
I32 = struct.Struct("<i")
U64S = struct.Struct("<Q")
SIGACTION = struct.Struct("<QQQQ")  # handler, flags, restorer, mask
STACK_T = struct.Struct("<QiiQ")  # ss_sp, ss_flags, pad, ss_size
POLLFD = struct.Struct("<ihh")
# struct stat: dev, ino, nlink, mode, uid, gid, pad, rdev, size, blksize, blocks,
# atime, atime_ns, mtime, mtime_ns, ctime, ctime_ns, 3 reserved
STAT = struct.Struct("<QQQIIIIQqqqqqqqqq24x")


def s64(v: int) -> int:
    """An argument register as a signed 64-bit value."""
    return v - (1 << 64) if v & (1 << 63) else v


def s32(v: int) -> int:
    """An argument register's low 32 bits as a signed int (fds, flags)."""
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v & (1 << 31) else v


def read_iovecs(task: Task, addr: int, count: int) -> list[tuple[int, int]]:
    """The (base, len) pairs of an iovec array, validated as Linux does."""
    if count > IOV_MAX or s32(count) < 0:
        raise SyscallError(errno.EINVAL)
    if count == 0:
        return []
    raw = task.mm.copy_in(addr, IOVEC.size * count)
    out = []
    total = 0
    for i in range(count):
        base, length = IOVEC.unpack_from(raw, i * IOVEC.size)
        if length > (1 << 63) - 1:
            raise SyscallError(errno.EINVAL)
        total += length
        out.append((base, length))
    if total > (1 << 63) - 1:
        raise SyscallError(errno.EINVAL)
    return out


def pack_stat(st: Stat) -> bytes:
    return STAT.pack(
        st.dev, st.ino, st.nlink, st.mode, st.uid, st.gid, 0, st.rdev, st.size, st.blksize,
        st.blocks, st.atime_ns // 10**9, st.atime_ns % 10**9, st.mtime_ns // 10**9,
        st.mtime_ns % 10**9, st.ctime_ns // 10**9, st.ctime_ns % 10**9,
    )


def read_timespec(task: Task, addr: int) -> int:
    """A struct timespec in nanoseconds (EINVAL for out-of-range fields)."""
    sec, nsec = TIMESPEC.unpack(task.mm.copy_in(addr, TIMESPEC.size))
    if sec < 0 or not 0 <= nsec < 1_000_000_000:
        raise SyscallError(errno.EINVAL)
    return sec * 1_000_000_000 + nsec


def write_timespec(task: Task, addr: int, ns: int) -> None:
    task.mm.copy_out(addr, TIMESPEC.pack(ns // 1_000_000_000, ns % 1_000_000_000))
