"""The filesystem-generic ioctl requests (Linux's do_vfs_ioctl), answered
before the file's own ioctl: inode flags (FS_IOC_[GS]ETFLAGS, on a
filesystem that keeps them: sentry/vfs/iflags.py) and reflink clones, which
no filesystem here does.

Why a module: these requests mean the same on every file and depend on the
descriptor pair's filesystems, not on one driver; fs.py dispatches here first.
"""

from __future__ import annotations

import errno
import stat
import struct
from typing import TYPE_CHECKING

from sentry.kernel.creds import CAP_FOWNER, CAP_LINUX_IMMUTABLE
from sentry.kernel.errors import SyscallError
from sentry.vfs import iflags, notify
from sentry.vfs.file import O_APPEND, FileDescription
from syscalls.abi import s32

if TYPE_CHECKING:
    from sentry.kernel.task import Task

FICLONE = 0x40049409
FICLONERANGE = 0x4020940D
_CLONE_RANGE = struct.Struct("<qQQQ")  # struct file_clone_range
FS_IOC_GETFLAGS, FS_IOC_SETFLAGS = 0x80086601, 0x40086602
FS_IOC32_GETFLAGS, FS_IOC32_SETFLAGS = 0x80046601, 0x40046602


def generic(t: Task, f: FileDescription, cmd: int, arg: int) -> int | None:
    """The result of a generic request, or None when ``cmd`` is the file's own."""
    if cmd in (FS_IOC_GETFLAGS, FS_IOC32_GETFLAGS, FS_IOC_SETFLAGS, FS_IOC32_SETFLAGS):
        return _inode_flags(t, f, cmd, arg)
    if cmd == FICLONE:
        return _clone(t, f, s32(arg))
    if cmd == FICLONERANGE:
        src_fd = _CLONE_RANGE.unpack(t.mm.copy_in(arg, _CLONE_RANGE.size))[0]
        return _clone(t, f, s32(src_fd))
    return None


def _clone(t: Task, dst: FileDescription, src_fd: int) -> int:
    """FICLONE/FICLONERANGE with vfs_clone_file_range's checks in its order;
    files that pass them all get EOPNOTSUPP: tmpfs, overlay and Gofer files
    share no extents (Linux's tmpfs says the same)."""
    src = t.fds.get(src_fd)
    src_inode, dst_inode = getattr(src, "inode", None), getattr(dst, "inode", None)
    if src_inode is None or dst_inode is None or src_inode.fs is not dst_inode.fs:
        raise SyscallError(errno.EXDEV)
    if stat.S_ISDIR(src_inode.mode) or stat.S_ISDIR(dst_inode.mode):
        raise SyscallError(errno.EISDIR)
    if not stat.S_ISREG(src_inode.mode) or not stat.S_ISREG(dst_inode.mode):
        raise SyscallError(errno.EINVAL)
    if not src.readable() or not dst.writable() or dst.flags & O_APPEND:
        raise SyscallError(errno.EBADF)
    raise SyscallError(errno.EOPNOTSUPP)


def _inode_flags(t: Task, f: FileDescription, cmd: int, arg: int) -> int | None:
    """FS_IOC_GETFLAGS/SETFLAGS (an int either way); None (the file's own
    ioctl: ENOTTY) where the filesystem keeps no flags."""
    inode = getattr(f, "inode", None)
    if inode is None or not inode.fs.inode_flags:
        return None
    if cmd in (FS_IOC_GETFLAGS, FS_IOC32_GETFLAGS):
        t.mm.copy_out(arg, struct.pack("<i", inode.iflags))
        return 0
    new = struct.unpack("<I", t.mm.copy_in(arg, 4))[0]
    if getattr(f, "dentry", None) is not None and f.dentry.mount.readonly:
        raise SyscallError(errno.EROFS)
    c = t.creds
    iflags.set_flags(inode, new, owner_ok=c.fsuid == inode.uid or c.capable(CAP_FOWNER),
                     capable_immutable=c.capable(CAP_LINUX_IMMUTABLE))
    notify.emit(getattr(f, "dentry", None), notify.IN_ATTRIB)
    return 0
