"""Linux x86-64 structure layouts shared by the syscall families.

Every struct.Struct is compiled once here; handlers never build format strings
on the hot path.  Lengths and counts come from the application: check them
before allocating.
"""

from __future__ import annotations

import errno
import os
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
STAT = struct.Struct("<QQQIIIIQqqQqQqQqQ24x")
# struct statx up to the timestamps: mask, blksize, attributes, nlink, uid, gid,
# mode, spare, ino, size, blocks, attributes_mask; then four statx_timestamp
# (tv_sec s64, tv_nsec u32, reserved) and the device numbers.
STATX_HEAD = struct.Struct("<IIQIIIHHQQQQ")
STATX_TS = struct.Struct("<qIi")
STATX_DEVS = struct.Struct("<IIII")  # rdev major, minor, dev major, minor
STATX_SIZE = 256
STATX_BASIC_STATS = 0x7FF
# uid_t and gid_t are unsigned 32-bit: Linux takes every value but (u32)-1, which
# chown(2) and setres[ug]id(2) read as "leave this id unchanged".
ID_MASK = 0xFFFFFFFF
NO_ID = 0xFFFFFFFF


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


def id_arg(v: int) -> int:
    """A uid_t/gid_t argument register: its low 32 bits, unsigned as Linux's
    type (a sign-extended -1 and 0xFFFFFFFF are the same id, NO_ID)."""
    return v & ID_MASK


def split_ns(ns: int) -> tuple[int, int]:
    """Nanoseconds since the epoch as a timespec (tv_sec, tv_nsec): floor
    division, so a time before 1970 has tv_sec < 0 and 0 <= tv_nsec < 10**9,
    as Linux stores it."""
    return divmod(ns, 1_000_000_000)


def pack_stat(st: Stat) -> bytes:
    """struct stat (x86-64): every field takes the range of the kernel's kstat
    field it is copied from (st_blocks is a long holding kstat's u64)."""
    a, m, c = split_ns(st.atime_ns), split_ns(st.mtime_ns), split_ns(st.ctime_ns)
    return STAT.pack(
        st.dev, st.ino, st.nlink, st.mode, st.uid, st.gid, 0, st.rdev, st.size, st.blksize,
        st.blocks, a[0], a[1], m[0], m[1], c[0], c[1],
    )


def pack_statx(st: Stat) -> bytes:
    """struct statx with the basic fields (no birth time, no mount id)."""
    buf = STATX_HEAD.pack(STATX_BASIC_STATS, st.blksize, st.attributes, st.nlink, st.uid,
                          st.gid, st.mode & 0xFFFF, 0, st.ino, st.size & U64, st.blocks,
                          st.attributes_mask)
    for ns in (st.atime_ns, None, st.ctime_ns, st.mtime_ns):  # atime, btime, ctime, mtime
        buf += STATX_TS.pack(*split_ns(ns), 0) if ns is not None else bytes(STATX_TS.size)
    buf += STATX_DEVS.pack(os.major(st.rdev), os.minor(st.rdev), os.major(st.dev),
                           os.minor(st.dev))
    return buf.ljust(STATX_SIZE, b"\0")


def read_timespec(task: Task, addr: int) -> int:
    """A struct timespec in nanoseconds (EINVAL for out-of-range fields)."""
    sec, nsec = TIMESPEC.unpack(task.mm.copy_in(addr, TIMESPEC.size))
    if sec < 0 or not 0 <= nsec < 1_000_000_000:
        raise SyscallError(errno.EINVAL)
    return sec * 1_000_000_000 + nsec


def write_timespec(task: Task, addr: int, ns: int) -> None:
    task.mm.copy_out(addr, TIMESPEC.pack(ns // 1_000_000_000, ns % 1_000_000_000))
