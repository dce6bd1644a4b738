"""Path syscalls that change or report what a file is: mode, owner, times,
size, sync, and the filesystem's statfs.

Why apart from syscalls/path.py: that module names files (open, stat, the
*at namespace calls, cwd and root); these act on a file already named,
mostly through the same VFS facade (sentry/vfs/vfs.py) and path.py's
argument helpers (`ctx_of`, `path_arg`, `dirfd_arg`). Thin, as path.py:
each handler decodes its arguments and calls the VFS.
"""

from __future__ import annotations

import errno
import struct
import time as _time
from collections.abc import Callable
from typing import TYPE_CHECKING

from sentry.kernel.errors import SyscallError
from sentry.mm.filemap import cached_for
from sentry.vfs import vfs
from sentry.vfs.description import dentry_of
from sentry.vfs.inode import Inode, StatFs
from syscalls.abi import NO_ID, id_arg, s32
from syscalls.fs import check_new_size
from syscalls.path import (
    AT_EMPTY_PATH,
    AT_FDCWD,
    AT_SYMLINK_NOFOLLOW,
    ctx_of,
    dirfd_arg,
    fd_dentry,
    path_arg,
)
from syscalls.table import Entry, supported

if TYPE_CHECKING:
    from sentry.kernel.task import Task

Args = tuple[int, ...]
UTIME_NOW = (1 << 30) - 1
UTIME_OMIT = (1 << 30) - 2
PIPEFS_MAGIC = 0x50495045
TIME64_MIN, TIME64_MAX = -(1 << 63), (1 << 63) - 1


# --- attributes ---------------------------------------------------------------------

def fchmodat(t: Task, a: Args) -> int:
    """fchmodat(2)."""
    path = path_arg(t, a[1])
    vfs.chmod(ctx_of(t), dirfd_arg(t, a[0], path), path, a[2] & 0o7777)
    return 0


def chmod(t: Task, a: Args) -> int:
    """chmod(2)."""
    return fchmodat(t, (AT_FDCWD & 0xFFFFFFFF, a[0], a[1], 0, 0, 0))


def fchmod(t: Task, a: Args) -> int:
    """fchmod(2): an O_PATH descriptor is EBADF, as Linux's fdget."""
    d = fd_dentry(t, a[0])
    if d is None:
        raise SyscallError(errno.EPERM)
    vfs.chmod(ctx_of(t), d, b"", a[1] & 0o7777, allow_empty=True)
    return 0


def chown_allowed(t: Task, uid: int, gid: int) -> Callable[[Inode], None] | None:
    """Linux's chown_ok/chgrp_ok for the caller: without privilege (euid 0,
    CAP_CHOWN) only the owner may "change" the uid to itself, and the group to
    the file's own or one the caller is in; anything else is EPERM."""
    c = t.creds
    if c.euid == 0:
        return None

    def check(inode: Inode) -> None:
        owner = c.euid == inode.uid
        if uid != NO_ID and not (owner and uid == inode.uid):
            raise SyscallError(errno.EPERM)
        if gid != NO_ID and not (owner and (gid == inode.gid or gid == c.egid
                                            or gid in c.groups)):
            raise SyscallError(errno.EPERM)

    return check


def fchownat(t: Task, a: Args) -> int:
    """fchownat(2)."""
    path = path_arg(t, a[1])
    flags = a[4] & 0xFFFFFFFF
    if flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH):
        raise SyscallError(errno.EINVAL)
    if not path and not flags & AT_EMPTY_PATH:
        raise SyscallError(errno.ENOENT)
    d = dirfd_arg(t, a[0], path) if path else dentry_of(t.fds.get(s32(a[0])))
    uid, gid = id_arg(a[2]), id_arg(a[3])
    vfs.chown(ctx_of(t), d, path, uid, gid, follow=not flags & AT_SYMLINK_NOFOLLOW,
              allow_empty=not path)
    return 0


def chown(t: Task, a: Args) -> int:
    """chown(2)."""
    return fchownat(t, (AT_FDCWD & 0xFFFFFFFF, a[0], a[1], a[2], 0, 0))


def lchown(t: Task, a: Args) -> int:
    """lchown(2)."""
    return fchownat(t, (AT_FDCWD & 0xFFFFFFFF, a[0], a[1], a[2], AT_SYMLINK_NOFOLLOW, 0))


def fchown(t: Task, a: Args) -> int:
    """fchown(2): an O_PATH descriptor is EBADF, as Linux's fdget."""
    d = fd_dentry(t, a[0])
    if d is None:
        raise SyscallError(errno.EPERM)
    uid, gid = id_arg(a[1]), id_arg(a[2])
    vfs.chown(ctx_of(t), d, b"", uid, gid, allow_empty=True)
    return 0


def _time_arg(sec: int, nsec: int) -> int | None:
    if nsec == UTIME_OMIT:
        return None
    if nsec == UTIME_NOW:
        return _time.time_ns()
    if not 0 <= nsec < 1_000_000_000:
        raise SyscallError(errno.EINVAL)
    if sec in (TIME64_MIN, TIME64_MAX):
        nsec = 0  # Linux's timestamp_truncate at the filesystem's limits (tmpfs: s64)
    return sec * 1_000_000_000 + nsec


def _set_times(t: Task, dirfd: int, path_addr: int, times: tuple[int, int] | None) -> int:
    """utime, utimes and futimesat: explicit times (ns) or, with None, now;
    a NULL path names the file of ``dirfd`` itself (futimesat)."""
    atime = mtime = _time.time_ns() if times is None else None
    if times is not None:
        atime, mtime = times
    touch = times is None
    if not path_addr and s32(dirfd) != AT_FDCWD:
        d = dentry_of(t.fds.get(s32(dirfd)))
        if d is None:
            raise SyscallError(errno.EBADF)
        vfs.utimens(ctx_of(t), d, b"", atime, mtime, allow_empty=True, touch=touch)
        return 0
    path = path_arg(t, path_addr)  # NULL with AT_FDCWD: EFAULT, as Linux
    vfs.utimens(ctx_of(t), dirfd_arg(t, dirfd, path), path, atime, mtime, touch=touch)
    return 0


def _timevals(t: Task, addr: int) -> tuple[int, int] | None:
    """Two struct timevals (access, modification) in ns; EINVAL for a
    microsecond field outside 0..999999."""
    if not addr:
        return None
    asec, ausec, msec, musec = struct.unpack("<qqqq", t.mm.copy_in(addr, 32))
    if not 0 <= ausec < 1_000_000 or not 0 <= musec < 1_000_000:
        raise SyscallError(errno.EINVAL)
    return asec * 1_000_000_000 + ausec * 1000, msec * 1_000_000_000 + musec * 1000


def utimes(t: Task, a: Args) -> int:
    """utimes(2)."""
    return _set_times(t, AT_FDCWD & 0xFFFFFFFF, a[0], _timevals(t, a[1]))


def futimesat(t: Task, a: Args) -> int:
    """futimesat(2): utimes relative to a directory descriptor."""
    return _set_times(t, a[0], a[1], _timevals(t, a[2]))


def utime(t: Task, a: Args) -> int:
    """utime(2): struct utimbuf, whole seconds."""
    times = None
    if a[1]:
        asec, msec = struct.unpack("<qq", t.mm.copy_in(a[1], 16))
        times = (asec * 1_000_000_000, msec * 1_000_000_000)
    return _set_times(t, AT_FDCWD & 0xFFFFFFFF, a[0], times)


def utimensat(t: Task, a: Args) -> int:
    """utimensat(2); a NULL path means the file of dirfd (futimens)."""
    flags = a[3] & 0xFFFFFFFF
    if flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH):
        raise SyscallError(errno.EINVAL)
    touch = True
    if a[2]:
        asec, ansec, msec, mnsec = struct.unpack("<qqqq", t.mm.copy_in(a[2], 32))
        touch = ansec == UTIME_NOW and mnsec == UTIME_NOW
        atime, mtime = _time_arg(asec, ansec), _time_arg(msec, mnsec)
    else:
        atime = mtime = _time.time_ns()
    if a[1] == 0 and s32(a[0]) != AT_FDCWD:
        d = dentry_of(t.fds.get(s32(a[0])))
        if d is None:
            raise SyscallError(errno.EBADF)
        vfs.utimens(ctx_of(t), d, b"", atime, mtime, allow_empty=True, touch=touch)
        return 0
    path = path_arg(t, a[1])  # NULL with AT_FDCWD: EFAULT, as Linux
    vfs.utimens(ctx_of(t), dirfd_arg(t, a[0], path), path, atime, mtime,
                follow=not flags & AT_SYMLINK_NOFOLLOW, allow_empty=bool(flags & AT_EMPTY_PATH),
                touch=touch)
    return 0


def truncate(t: Task, a: Args) -> int:
    """truncate(2)."""
    if (a[1] >> 63) & 1:
        raise SyscallError(errno.EINVAL)
    path = path_arg(t, a[0])
    check_new_size(t, a[1])
    vfs.truncate(ctx_of(t), None, path, a[1])
    return 0


def ftruncate(t: Task, a: Args) -> int:
    """ftruncate(2)."""
    if (a[1] >> 63) & 1:
        raise SyscallError(errno.EINVAL)
    desc = t.fds.get(s32(a[0]))
    fn = getattr(desc, "truncate", None)
    if fn is None or not desc.writable():
        raise SyscallError(errno.EINVAL)  # not a regular file, or not open for writing
    check_new_size(t, a[1])
    fn(a[1])
    return 0


def fsync(t: Task, a: Args) -> int:
    """fsync(2)/fdatasync(2): in-memory files are always in sync; a Gofer file
    mapped MAP_SHARED has what the mappings stored written back. Files with
    no fsync operation in Linux (pipes, sockets, character devices) are
    EINVAL."""
    desc = t.fds.get(s32(a[0]))
    try:
        fmt = desc.stat().mode & 0o170000
    except SyscallError:
        fmt = 0
    if fmt not in (0o100000, 0o040000, 0o060000):  # regular, directory, block device
        raise SyscallError(errno.EINVAL)  # pipes, sockets, char devices: no fsync op
    cache = cached_for(getattr(desc, "inode", None))
    if cache is not None:
        cache.sync()
    return 0


def sync(t: Task, a: Args) -> int:
    """sync(2)."""
    return 0


STATFS = struct.Struct("<qqQQQQQiiqqq32x")  # type bsize blocks bfree bavail files ffree fsid
# namelen frsize flags spare[4]
ST_VALID = 0x20  # f_flags is meaningful (Linux always sets it)


def _pack_statfs(sf: object) -> bytes:
    g = getattr  # the StatFs dataclass; missing fields read as 0
    fsid = g(sf, "fsid", 0)
    return STATFS.pack(g(sf, "type", 0), g(sf, "bsize", 4096), g(sf, "blocks", 0),
                       g(sf, "bfree", 0), g(sf, "bavail", 0), g(sf, "files", 0),
                       g(sf, "ffree", 0), fsid & 0x7FFFFFFF, (fsid >> 32) & 0x7FFFFFFF,
                       g(sf, "namelen", 255), g(sf, "frsize", 4096), g(sf, "flags", 0) | ST_VALID)


def statfs(t: Task, a: Args) -> int:
    """statfs(2)."""
    sf = vfs.statfs(ctx_of(t), None, path_arg(t, a[0]))
    t.mm.copy_out(a[1], _pack_statfs(sf))
    return 0


def fstatfs(t: Task, a: Args) -> int:
    """fstatfs(2)."""
    desc = t.fds.get(s32(a[0]))
    d = dentry_of(desc)
    if d is None:  # pipes, sockets, host stdio: an anonymous pseudo filesystem
        t.mm.copy_out(a[1], _pack_statfs(StatFs(type=PIPEFS_MAGIC)))
        return 0
    t.mm.copy_out(a[1], _pack_statfs(d.inode.statfs()))
    return 0


ENTRIES: list[Entry] = [
    supported("chmod", chmod),
    supported("fchmod", fchmod),
    supported("fchmodat", fchmodat),
    supported("chown", chown),
    supported("fchown", fchown),
    supported("fchownat", fchownat),
    supported("lchown", lchown),
    supported("utimensat", utimensat),
    supported("utimes", utimes),
    supported("futimesat", futimesat),
    supported("utime", utime),
    supported("truncate", truncate),
    supported("ftruncate", ftruncate),
    supported("fsync", fsync),
    supported("fdatasync", fsync),
    supported("sync", sync),
    supported("syncfs", fsync),
    supported("statfs", statfs),
    supported("fstatfs", fstatfs),
]
