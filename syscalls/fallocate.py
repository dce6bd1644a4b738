"""fallocate(2): space for memory-backed and Gofer files.

Why its own module: Linux's vfs_fallocate checks many things in a fixed order
(mode bits, the descriptor, inode flags, the file's type, the size limit)
before the filesystem's part, and programs (LTP's fallocate tests) tell the
errors apart.
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING

from sentry.kernel.errors import SyscallError
from sentry.vfs import iflags
from syscalls.abi import s32
from syscalls.fs import check_new_size
from syscalls.table import Entry, partial

if TYPE_CHECKING:
    from sentry.kernel.task import Task

Args = tuple[int, ...]

FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE = 0x01, 0x02
_ZERO_CHUNK = 1 << 20


def fallocate(t: Task, a: Args) -> int:
    """fallocate(2) with vfs_fallocate's checks in its order. Mode 0 extends
    the file; FALLOC_FL_KEEP_SIZE reserves nothing more (memory-backed files
    have no blocks to reserve); FALLOC_FL_PUNCH_HOLE|KEEP_SIZE zeroes the
    range inside the file, as tmpfs's. Other modes are EOPNOTSUPP, as tmpfs."""
    desc = t.fds.get(s32(a[0]))
    mode, off, length = s32(a[1]) & 0xFFFFFFFF, a[2], a[3]
    if (off >> 63) & 1 or (length >> 63) & 1 or length == 0:
        raise SyscallError(errno.EINVAL)
    if mode & ~(FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE):
        raise SyscallError(errno.EOPNOTSUPP)
    if mode & FALLOC_FL_PUNCH_HOLE and not mode & FALLOC_FL_KEEP_SIZE:
        raise SyscallError(errno.EOPNOTSUPP)
    if not desc.writable():
        raise SyscallError(errno.EBADF)
    inode = getattr(desc, "inode", None)
    fl = getattr(inode, "iflags", 0)
    if fl & iflags.FS_IMMUTABLE_FL or (mode & ~FALLOC_FL_KEEP_SIZE and fl & iflags.FS_APPEND_FL):
        raise SyscallError(errno.EPERM)
    fmt = desc.stat().mode & 0o170000
    if fmt == 0o010000:
        raise SyscallError(errno.ESPIPE)
    if fmt == 0o040000:
        raise SyscallError(errno.EISDIR)
    if fmt not in (0o100000, 0o060000):
        raise SyscallError(errno.ENODEV)
    if off + length > (1 << 63) - 1:
        raise SyscallError(errno.EFBIG)
    fn = getattr(desc, "truncate", None)
    if fn is None:
        raise SyscallError(errno.EOPNOTSUPP)
    size = desc.stat().size
    if mode & FALLOC_FL_PUNCH_HOLE:
        punch = getattr(inode, "punch_hole", None)
        if punch is not None:  # tmpfs and memfds: whole pages freed, seals honoured
            punch(off, length)
            return 0
        end = min(off + length, size)
        while off < end:
            n = min(_ZERO_CHUNK, end - off)
            desc.pwrite(bytes(n), off)
            off += n
        return 0
    if getattr(inode, "no_fallocate", False):
        raise SyscallError(errno.EOPNOTSUPP)  # ext2 has no preallocation (Linux: same)
    reserve = getattr(inode, "preallocate", None)
    if reserve is not None:  # tmpfs: charge the pages first (ENOSPC changes nothing)
        if not mode & FALLOC_FL_KEEP_SIZE:
            check_new_size(t, off + length)
        reserve(off, length)
    if not mode & FALLOC_FL_KEEP_SIZE and off + length > size:
        check_new_size(t, off + length)
        fn(off + length)
    return 0


ENTRIES: list[Entry] = [
    partial("fallocate", fallocate, note="mode 0 and KEEP_SIZE (pages reserved on a "
            "size-limited tmpfs), PUNCH_HOLE|KEEP_SIZE (zeroes); others EOPNOTSUPP as "
            "tmpfs; ext2 EOPNOTSUPP as Linux's"),
]
