"""Path syscalls: open, stat, directories, links, cwd.

Thin: each handler decodes its arguments and calls the VFS facade
(sentry/vfs/vfs.py) with the process's FsContext.  *at variants share one
handler each; the old entry points call them with AT_FDCWD.  The calls that
change or report what a named file is (chmod, chown, times, truncate, sync,
statfs) are syscalls/path_attrs.py's; the argument helpers here
(`ctx_of`, `path_arg`, `dirfd_arg`) serve both and other families.
"""

from __future__ import annotations

import errno
import struct
from typing import TYPE_CHECKING

from sentry.kernel.creds import CAP_MKNOD, CAP_SYS_CHROOT
from sentry.kernel.errors import SyscallError
from sentry.vfs import vfs
from sentry.vfs.dentry import Dentry
from sentry.vfs.description import PathDescription, dentry_of
from sentry.vfs.file import O_CLOEXEC
from sentry.vfs.resolve import Reopened
from sentry.vfs.sysblock import dio_align
from sentry.vfs.vfs import reopen_dir
from syscalls.abi import pack_stat, pack_statx, s32
from syscalls.table import Entry, partial, supported

if TYPE_CHECKING:
    from sentry.kernel.task import Task
    from sentry.vfs.resolve import FsContext

Args = tuple[int, ...]

AT_FDCWD = -100
AT_SYMLINK_NOFOLLOW = 0x100
AT_REMOVEDIR = 0x200
AT_SYMLINK_FOLLOW = 0x400
AT_NO_AUTOMOUNT = 0x800
AT_EMPTY_PATH = 0x1000
AT_EACCESS = 0x200
STATX_DIOALIGN = 0x2000
PATH_MAX = 4096
O_CREAT = 0o100
O_WRONLY = 1
O_TRUNC = 0o1000
O_LARGEFILE = 0o100000


def ctx_of(t: Task) -> FsContext:
    ctx = t.tg.fs
    if ctx is None:
        raise SyscallError(errno.ENOSYS)
    ctx.umask = t.tg.umask
    c = t.creds
    ctx.uid, ctx.gid = c.fsuid, c.fsgid  # new files' owner (shared by CLONE_FS threads)
    return ctx


def path_arg(t: Task, addr: int) -> bytes:
    """A path argument: EFAULT, ENAMETOOLONG at PATH_MAX as Linux."""
    return t.mm.read_cstring(addr, PATH_MAX)


def fd_dentry(t: Task, fd: int) -> Dentry | None:
    """The file a descriptor names, for the f* calls (None: a pipe or socket,
    which keep none); an O_PATH descriptor is EBADF, as Linux's fdget."""
    desc = t.fds.get(s32(fd))
    if isinstance(desc, PathDescription):
        raise SyscallError(errno.EBADF)
    return dentry_of(desc)


def dirfd_arg(t: Task, dirfd: int, path: bytes = b"x") -> Dentry | None:
    """The directory a relative path starts from (None: the cwd)."""
    fd = s32(dirfd)
    if fd == AT_FDCWD or path.startswith(b"/"):
        return None
    desc = t.fds.get(fd)
    d = dentry_of(desc)
    if d is None:
        raise SyscallError(errno.ENOTDIR if path else errno.EBADF)
    return d


# --- open ---------------------------------------------------------------------

def openat(t: Task, a: Args) -> int:
    """openat(2)."""
    path = path_arg(t, a[1])
    flags = a[2] & 0xFFFFFFFF
    desc = vfs.open(ctx_of(t), dirfd_arg(t, a[0], path), path, flags & ~O_LARGEFILE,
                    a[3] & 0o7777, t.tg.umask)
    try:
        return t.fds.install(desc, cloexec=bool(flags & O_CLOEXEC))
    except SyscallError:
        desc.release()
        raise


def open(t: Task, a: Args) -> int:  # noqa: A001 - the syscall's name
    """open(2)."""
    return openat(t, (AT_FDCWD & 0xFFFFFFFF, a[0], a[1], a[2], 0, 0))


def creat(t: Task, a: Args) -> int:
    """creat(2)."""
    return openat(t, (AT_FDCWD & 0xFFFFFFFF, a[0], O_CREAT | O_WRONLY | O_TRUNC, a[1], 0, 0))


# --- stat -----------------------------------------------------------------------

def newfstatat(t: Task, a: Args) -> int:
    """newfstatat(2)."""
    path = path_arg(t, a[1])
    flags = a[3] & 0xFFFFFFFF
    if flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH | AT_NO_AUTOMOUNT):
        raise SyscallError(errno.EINVAL)
    if not path and flags & AT_EMPTY_PATH:
        st = t.fds.get(s32(a[0])).stat() if s32(a[0]) != AT_FDCWD else \
            vfs.stat(ctx_of(t), None, b".")
    else:
        st = vfs.stat(ctx_of(t), dirfd_arg(t, a[0], path), path,
                      follow=not flags & AT_SYMLINK_NOFOLLOW)
    t.mm.copy_out(a[2], pack_stat(st))
    return 0


def stat(t: Task, a: Args) -> int:
    """stat(2)."""
    return newfstatat(t, (AT_FDCWD & 0xFFFFFFFF, a[0], a[1], 0, 0, 0))


def lstat(t: Task, a: Args) -> int:
    """lstat(2)."""
    return newfstatat(t, (AT_FDCWD & 0xFFFFFFFF, a[0], a[1], AT_SYMLINK_NOFOLLOW, 0, 0))


AT_STATX_SYNC_TYPE = 0x6000  # FORCE_SYNC | DONT_SYNC: both at once is EINVAL
STATX_RESERVED = 0x80000000
STATX_ATTR_MOUNT_ROOT = 0x2000


def statx(t: Task, a: Args) -> int:
    """statx(2): the basic fields (no birth time)."""
    path = path_arg(t, a[1])
    flags = a[2] & 0xFFFFFFFF
    if flags & ~(AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT | AT_EMPTY_PATH | AT_STATX_SYNC_TYPE):
        raise SyscallError(errno.EINVAL)
    if flags & AT_STATX_SYNC_TYPE == AT_STATX_SYNC_TYPE or a[3] & STATX_RESERVED:
        raise SyscallError(errno.EINVAL)
    if not path and flags & AT_EMPTY_PATH:
        fd = s32(a[0])
        if fd == AT_FDCWD:
            st, d = vfs.stat(ctx_of(t), None, b"."), ctx_of(t).cwd
        else:
            desc = t.fds.get(fd)
            st, d = desc.stat(), dentry_of(desc)
    else:
        ctx, dirfd = ctx_of(t), dirfd_arg(t, a[0], path)
        follow = not flags & AT_SYMLINK_NOFOLLOW
        st = vfs.stat(ctx, dirfd, path, follow=follow)
        try:
            d = vfs.resolve(ctx, path, dirfd_dentry=dirfd, follow=follow)
        except (SyscallError, Reopened):  # a name that stats but is no dentry here
            d = None
    st.attributes_mask |= STATX_ATTR_MOUNT_ROOT  # every path says whether it is one
    if d is not None and d.is_mount_root():
        st.attributes |= STATX_ATTR_MOUNT_ROOT
    buf = pack_statx(st)
    if a[3] & STATX_DIOALIGN and st.mode & 0o170000 == 0o060000:
        align = dio_align(st.rdev)  # a Sentry block device's (Linux's bdev_statx)
        if align is not None:
            buf = bytearray(buf)
            struct.pack_into("<I", buf, 0, struct.unpack_from("<I", buf)[0] | STATX_DIOALIGN)
            struct.pack_into("<II", buf, 152, *align)
            buf = bytes(buf)
    t.mm.copy_out(a[4], buf)
    return 0


def faccessat2(t: Task, a: Args) -> int:
    """faccessat2(2)."""
    path = path_arg(t, a[1])
    flags = a[3] & 0xFFFFFFFF
    if flags & ~(AT_EACCESS | AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH):
        raise SyscallError(errno.EINVAL)
    vfs.access(ctx_of(t), dirfd_arg(t, a[0], path), path, a[2] & 0xFFFFFFFF, flags)
    return 0


def faccessat(t: Task, a: Args) -> int:
    """faccessat(2)."""
    return faccessat2(t, (a[0], a[1], a[2], 0, 0, 0))


def access(t: Task, a: Args) -> int:
    """access(2)."""
    return faccessat2(t, (AT_FDCWD & 0xFFFFFFFF, a[0], a[1], 0, 0, 0))


def readlinkat(t: Task, a: Args) -> int:
    """readlinkat(2): the target, truncated to the buffer, not NUL-terminated."""
    path = path_arg(t, a[1])
    size = s32(a[3])
    if size <= 0:
        raise SyscallError(errno.EINVAL)
    if not path:
        d = dirfd_arg(t, a[0], b"")
        target = vfs.readlink(ctx_of(t), d, b"")
    else:
        target = vfs.readlink(ctx_of(t), dirfd_arg(t, a[0], path), path)
    target = target[:size]
    t.mm.copy_out(a[2], target)
    return len(target)


def readlink(t: Task, a: Args) -> int:
    """readlink(2)."""
    return readlinkat(t, (AT_FDCWD & 0xFFFFFFFF, a[0], a[1], a[2], 0, 0))


def _dirents(t: Task, a: Args, method: str) -> int:
    """One directory read into the caller's buffer, by the description's
    ``method`` (getdents64 or the old getdents); ENOTDIR where it has none."""
    fn = getattr(t.fds.get(s32(a[0])), method, None)
    if fn is None:
        raise SyscallError(errno.ENOTDIR)
    data = fn(a[2] & 0xFFFFFFFF)
    if data:
        t.mm.copy_out(a[1], data)
    return len(data)


def getdents(t: Task, a: Args) -> int:
    """getdents(2), the old layout: struct linux_dirent {ino, off, reclen,
    name, NUL, padding, d_type in the record's last byte}."""
    return _dirents(t, a, "getdents")


def getdents64(t: Task, a: Args) -> int:
    """getdents64(2)."""
    return _dirents(t, a, "getdents64")


# --- directories and names ---------------------------------------------------------

def mkdirat(t: Task, a: Args) -> int:
    """mkdirat(2)."""
    path = path_arg(t, a[1])
    vfs.mkdir(ctx_of(t), dirfd_arg(t, a[0], path), path, a[2] & 0o7777, t.tg.umask)
    return 0


def mkdir(t: Task, a: Args) -> int:
    """mkdir(2)."""
    return mkdirat(t, (AT_FDCWD & 0xFFFFFFFF, a[0], a[1], 0, 0, 0))


def mknodat(t: Task, a: Args) -> int:
    """mknodat(2): regular files and fifos (devices need the device registry)."""
    path = path_arg(t, a[1])
    vfs.mknod(ctx_of(t), dirfd_arg(t, a[0], path), path, a[2] & 0xFFFFFFFF, a[3], t.tg.umask,
              dev_ok=t.creds.capable(CAP_MKNOD))
    return 0


def mknod(t: Task, a: Args) -> int:
    """mknod(2)."""
    return mknodat(t, (AT_FDCWD & 0xFFFFFFFF, a[0], a[1], a[2], 0, 0))


def unlinkat(t: Task, a: Args) -> int:
    """unlinkat(2)."""
    path = path_arg(t, a[1])
    flags = a[2] & 0xFFFFFFFF
    if flags & ~AT_REMOVEDIR:
        raise SyscallError(errno.EINVAL)
    d = dirfd_arg(t, a[0], path)
    if flags & AT_REMOVEDIR:
        vfs.rmdir(ctx_of(t), d, path)
    else:
        vfs.unlink(ctx_of(t), d, path)
    return 0


def unlink(t: Task, a: Args) -> int:
    """unlink(2)."""
    return unlinkat(t, (AT_FDCWD & 0xFFFFFFFF, a[0], 0, 0, 0, 0))


def rmdir(t: Task, a: Args) -> int:
    """rmdir(2)."""
    return unlinkat(t, (AT_FDCWD & 0xFFFFFFFF, a[0], AT_REMOVEDIR, 0, 0, 0))


def renameat2(t: Task, a: Args) -> int:
    """renameat2(2)."""
    old, new = path_arg(t, a[1]), path_arg(t, a[3])
    vfs.rename(ctx_of(t), dirfd_arg(t, a[0], old), old, dirfd_arg(t, a[2], new), new,
               a[4] & 0xFFFFFFFF)
    return 0


def renameat(t: Task, a: Args) -> int:
    """renameat(2)."""
    return renameat2(t, (a[0], a[1], a[2], a[3], 0, 0))


def rename(t: Task, a: Args) -> int:
    """rename(2)."""
    cwd = AT_FDCWD & 0xFFFFFFFF
    return renameat2(t, (cwd, a[0], cwd, a[1], 0, 0))


def linkat(t: Task, a: Args) -> int:
    """linkat(2)."""
    old, new = path_arg(t, a[1]), path_arg(t, a[3])
    vfs.link(ctx_of(t), dirfd_arg(t, a[0], old), old, dirfd_arg(t, a[2], new), new,
             a[4] & 0xFFFFFFFF)
    return 0


def link(t: Task, a: Args) -> int:
    """link(2)."""
    cwd = AT_FDCWD & 0xFFFFFFFF
    return linkat(t, (cwd, a[0], cwd, a[1], 0, 0))


def symlinkat(t: Task, a: Args) -> int:
    """symlinkat(2)."""
    target, path = path_arg(t, a[0]), path_arg(t, a[2])
    if not target:
        raise SyscallError(errno.ENOENT)
    vfs.symlink(ctx_of(t), target, dirfd_arg(t, a[1], path), path)
    return 0


def symlink(t: Task, a: Args) -> int:
    """symlink(2)."""
    return symlinkat(t, (a[0], AT_FDCWD & 0xFFFFFFFF, a[1], 0, 0, 0))


# --- cwd and root -----------------------------------------------------------------

def getcwd(t: Task, a: Args) -> int:
    """getcwd(2): returns the length including the NUL."""
    cwd = vfs.getcwd(ctx_of(t)) + b"\0"
    if a[1] < len(cwd):
        raise SyscallError(errno.ERANGE)
    t.mm.copy_out(a[0], cwd)
    return len(cwd)


def chdir(t: Task, a: Args) -> int:
    """chdir(2)."""
    vfs.chdir(ctx_of(t), None, path_arg(t, a[0]))
    return 0


def fchdir(t: Task, a: Args) -> int:
    """fchdir(2)."""
    vfs.chdir(ctx_of(t), reopen_dir(t.fds.get(s32(a[0]))), b"")
    return 0


def chroot(t: Task, a: Args) -> int:
    """chroot(2): the lookup's and search permission's errors, then EPERM
    without CAP_SYS_CHROOT (Linux's order)."""
    vfs.chroot(ctx_of(t), None, path_arg(t, a[0]), t.creds.capable(CAP_SYS_CHROOT))
    return 0


ENTRIES: list[Entry] = [
    supported("open", open),
    supported("openat", openat),
    supported("creat", creat),
    supported("newfstatat", newfstatat),
    supported("stat", stat),
    supported("lstat", lstat),
    partial("statx", statx, note="basic fields, no birth time"),
    supported("access", access),
    supported("faccessat", faccessat),
    supported("faccessat2", faccessat2),
    supported("readlink", readlink),
    supported("readlinkat", readlinkat),
    supported("getdents64", getdents64),
    supported("getdents", getdents),
    supported("mkdir", mkdir),
    supported("mkdirat", mkdirat),
    partial("mknod", mknod, note="regular files and fifos"),
    partial("mknodat", mknodat, note="regular files and fifos"),
    supported("unlink", unlink),
    supported("unlinkat", unlinkat),
    supported("rmdir", rmdir),
    supported("rename", rename),
    supported("renameat", renameat),
    partial("renameat2", renameat2, note="no RENAME_WHITEOUT"),
    supported("link", link),
    supported("linkat", linkat),
    supported("symlink", symlink),
    supported("symlinkat", symlinkat),
    supported("getcwd", getcwd),
    supported("chdir", chdir),
    supported("fchdir", fchdir),
    supported("chroot", chroot),
]
