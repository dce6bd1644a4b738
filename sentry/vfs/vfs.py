"""The VFS operations the syscall layer calls: one function per path syscall.

Handlers stay thin: they copy the path in, turn a dirfd into a dentry
(``dirfd_dentry``: None means the cwd) and call one of these.  The checks
every filesystem shares live here, in the order Linux makes them, so each
filesystem only implements the change itself:

* name checks ("." / ".." / "/" as the last component, trailing slashes),
* EEXIST / ENOENT / EISDIR / ENOTDIR between the name and the operation,
* EBUSY for mountpoints, EXDEV across mounts, EROFS on read-only mounts,
* EINVAL for moving a directory into itself,
* and the dentry cache bookkeeping after the change.

The namespace-changing operations (mkdir, mknod, symlink, link, unlink,
rmdir, rename: sentry/vfs/namei.py, re-exported here, so callers still say
``vfs.rename``) hold ``TREE_LOCK`` from resolution to the dentry update, so
two renames cannot interleave.  ``open`` drops it before calling
``Inode.open``, which may block (fifos).

Permission checks: the sandbox runs as root; ``access`` applies root's rules
(X_OK needs some execute bit on a non-directory; W_OK fails with EROFS on a
read-only mount), and :attr:`FsContext.permission` is the hook for more.
"""

from __future__ import annotations

import errno

from sentry.kernel.errors import SyscallError
from sentry.vfs import iflags, leases, notify, tmpfile
from sentry.vfs.dentry import TREE_LOCK, Dentry
from sentry.vfs.description import O_PATH, PathDescription, dentry_of
from sentry.vfs.file import O_ACCMODE, O_NONBLOCK, O_RDONLY, O_WRONLY, FileDescription, Stat
from sentry.vfs.gofer_hostfd import set_read_open
from sentry.vfs.inode import (
    S_IFBLK,
    S_IFCHR,
    S_IFDIR,
    S_IFMT,
    S_IFREG,
    Filesystem,
    StatFs,
)
from sentry.vfs.mount import Mount, path_of

# The name-changing operations are namei.py's; vfs.mkdir and the rest stay this facade's.
from sentry.vfs.namei import (  # noqa: F401 - re-exported
    AT_EMPTY_PATH,
    link,
    masked_perm,
    mkdir,
    mknod,
    rename,
    rmdir,
    symlink,
    unlink,
    writable_mount,
)
from sentry.vfs.resolve import (
    MAY_EXEC,
    MAY_READ,
    MAY_WRITE,
    FsContext,
    Reopened,
    is_magic,
    lookup_last,
    resolve,
    resolve_parent,
)

O_CREAT = 0o100
O_EXCL = 0o200
O_NOCTTY = 0o400
O_TRUNC = 0o1000
O_DIRECTORY = 0o200000
O_NOFOLLOW = 0o400000
S_ISUID, S_ISGID, S_IXGRP = 0o4000, 0o2000, 0o010
O_CLOEXEC = 0o2000000
F_OK, X_OK, W_OK, R_OK = 0, 1, 2, 4
AT_SYMLINK_NOFOLLOW = 0x100
AT_EACCESS = 0x200
# Flags open() acts on and F_GETFL does not report.
_OPEN_ONLY = O_CREAT | O_EXCL | O_NOCTTY | O_TRUNC | O_CLOEXEC
MAX_CREATE_LINKS = 40


# Opening.
def open(ctx: FsContext, dirfd_dentry: Dentry | None, path: bytes, flags: int,
         mode: int = 0o666, umask: int | None = None, allow_empty: bool = False
         ) -> FileDescription:
    """openat(2): a new description (O_CLOEXEC is the caller's; it is not stored).
    An open that breaks a lease waits for it outside the tree lock, then tries again."""
    while True:
        try:
            return _open(ctx, dirfd_dentry, path, flags, mode, umask, allow_empty)
        except Reopened as r:  # /dev/stdout and friends: the description behind an fd link
            return r.desc  # type: ignore[return-value]
        except leases.Breaking as b:
            b.wait()


O_NOATIME = 0o1000000


def _open(ctx: FsContext, dirfd_dentry: Dentry | None, path: bytes, flags: int,
          mode: int, umask: int | None, allow_empty: bool = False) -> FileDescription:
    umask = ctx.umask if umask is None else umask
    if flags & tmpfile.O_TMPFILE_BIT:
        tmpfile.check_flags(flags)
        with TREE_LOCK:
            d = resolve(ctx, path, dirfd_dentry=dirfd_dentry, follow=True, want_dir=True)
            return tmpfile.open_tmpfile(ctx, d, flags, masked_perm(mode, umask), writable_mount,
                                        ctx.check)
    if flags & O_PATH:
        d = resolve(ctx, path, dirfd_dentry=dirfd_dentry, follow=not flags & O_NOFOLLOW,
                    want_dir=bool(flags & O_DIRECTORY), allow_empty=allow_empty)
        desc: FileDescription = PathDescription(d.inode, flags & (O_PATH | O_DIRECTORY
                                                                  | O_NOFOLLOW))
        desc.dentry = d  # type: ignore[attr-defined]
        return desc
    with TREE_LOCK:
        if flags & O_CREAT:
            if flags & O_DIRECTORY:
                raise SyscallError(errno.EINVAL)
            d, created = _open_create(ctx, dirfd_dentry, path, flags, mode, umask, 0)
        else:
            # Gofer files not walked yet come back open, descriptor donated.
            was = set_read_open(flags & (O_ACCMODE | O_TRUNC | O_DIRECTORY) == O_RDONLY)
            try:
                d = resolve(ctx, path, dirfd_dentry=dirfd_dentry, follow=not flags & O_NOFOLLOW,
                            want_dir=bool(flags & O_DIRECTORY), reopen_flags=flags,
                            allow_empty=allow_empty)
            finally:
                set_read_open(was)
            created = False
        inode = d.inode
        if inode.is_symlink():
            raise SyscallError(errno.ELOOP)  # O_NOFOLLOW on a symlink
        if flags & O_DIRECTORY and not inode.is_dir():
            raise SyscallError(errno.ENOTDIR)
        acc = flags & O_ACCMODE
        wants_write = acc != O_RDONLY
        if inode.is_dir() and wants_write:
            raise SyscallError(errno.EISDIR)
        if inode.mode & S_IFMT in (S_IFCHR, S_IFBLK) and d.mount.nodev:
            raise SyscallError(errno.EACCES)  # may_open, before the permission check
        if not created:
            ctx.check(d, (MAY_WRITE if wants_write or flags & O_TRUNC else 0)
                      | (MAY_READ if acc != O_WRONLY else 0))
        if flags & O_NOATIME and not created:
            ctx.check_owner(d)  # Linux's may_open: the owner's (or CAP_FOWNER's) alone
        iflags.check_open(inode, flags)
        if inode.is_reg() and not created:
            leases.check(inode, bool(wants_write or flags & O_TRUNC), bool(flags & O_NONBLOCK))
        if (wants_write or flags & O_TRUNC) and inode.is_reg() and not created:
            writable_mount(d)
            iflags.check_not_running(inode)
        if flags & O_TRUNC and inode.is_reg() and not created and inode.size:
            inode.setattr(size=0)
    open_flags = flags & ~_OPEN_ONLY
    if inode.mode & S_IFMT == S_IFCHR:
        # A terminal's open decides on O_NOCTTY (the controlling terminal);
        # FileDescription keeps it out of the status flags.
        open_flags |= flags & O_NOCTTY
    desc = inode.open(open_flags)
    desc.dentry = d  # type: ignore[attr-defined]
    if created:
        notify.emit(d, notify.IN_CREATE)
    elif flags & O_TRUNC and inode.is_reg():
        notify.emit(d, notify.IN_MODIFY)
    notify.emit(d, notify.IN_OPEN)
    return desc


def _open_create(ctx: FsContext, dirfd: Dentry | None, path: bytes, flags: int, mode: int,
                 umask: int, depth: int) -> tuple[Dentry, bool]:
    """O_CREAT: the existing file (following a final symlink) or a new one."""
    parent, name, trailing = resolve_parent(ctx, path, dirfd)
    child = lookup_last(ctx, parent, name)
    if child is None:
        if trailing:
            raise SyscallError(errno.EISDIR)
        writable_mount(parent)
        ctx.check(parent, MAY_WRITE | MAY_EXEC)
        inode = parent.inode.create(name, S_IFREG | masked_perm(mode, umask), ctx.uid, ctx.gid)
        return parent.add_child(name, inode), True
    if name in (b".", b".."):
        raise SyscallError(errno.EISDIR)
    if flags & O_EXCL:
        raise SyscallError(errno.EEXIST)
    if child.inode.is_symlink() and not flags & O_NOFOLLOW:
        if depth >= MAX_CREATE_LINKS:
            raise SyscallError(errno.ELOOP)
        if ctx.policy is not None:
            ctx.policy.link(is_magic(child.inode, ctx))
        reopen = getattr(child.inode, "reopen", None)
        if reopen is not None:
            desc = reopen(flags)
            if desc is not None:
                raise Reopened(desc)
        magic = child.inode.follow_link(ctx)
        if magic is not None:
            return magic, False
        body = child.inode.readlink()
        if not body:
            raise SyscallError(errno.ENOENT)
        # A dangling symlink creates its target, as Linux does.
        return _open_create(ctx, parent, body, flags, mode, umask, depth + 1)
    if child.inode.is_dir():
        raise SyscallError(errno.EISDIR)
    if trailing:
        raise SyscallError(errno.ENOTDIR)
    return child, False


def reopen_dir(desc: FileDescription) -> Dentry:
    """fchdir/openat's dirfd: the directory a description names (ENOTDIR otherwise)."""
    d = dentry_of(desc)
    if d is None or not d.inode.is_dir():
        raise SyscallError(errno.ENOTDIR)
    return d


# Attributes.
def stat(ctx: FsContext, dirfd_dentry: Dentry | None, path: bytes, follow: bool = True,
         allow_empty: bool = False) -> Stat:
    """stat/lstat/fstatat/newfstatat(2)."""
    return resolve(ctx, path, dirfd_dentry=dirfd_dentry, follow=follow,
                   allow_empty=allow_empty).inode.stat()


def statfs(ctx: FsContext, dirfd_dentry: Dentry | None, path: bytes) -> StatFs:
    """statfs(2)."""
    d = resolve(ctx, path, dirfd_dentry=dirfd_dentry, follow=True)
    st = d.inode.statfs()
    if d.mount.readonly:
        st.flags |= 1  # ST_RDONLY
    for name in (d.mount._options or "").split(","):
        st.flags |= _ST_FLAGS.get(name, 0)
    return st


# statfs's f_flags for the per-mount options (Linux's flags_by_mnt; the ST_*
# values are the MS_* ones but for relatime).
_ST_FLAGS = {"nosuid": 0x2, "nodev": 0x4, "noexec": 0x8, "noatime": 0x400,
             "nodiratime": 0x800, "relatime": 0x1000, "nosymfollow": 0x2000}


def _setattr_target(ctx: FsContext, dirfd: Dentry | None, path: bytes, follow: bool,
                    allow_empty: bool) -> Dentry:
    d = resolve(ctx, path, dirfd_dentry=dirfd, follow=follow, allow_empty=allow_empty)
    writable_mount(d)
    return d


def chmod(ctx: FsContext, dirfd_dentry: Dentry | None, path: bytes, mode: int,
          follow: bool = True, allow_empty: bool = False) -> None:
    """chmod/fchmodat(2): permission bits only."""
    with TREE_LOCK:
        d = _setattr_target(ctx, dirfd_dentry, path, follow, allow_empty)
        ctx.check_owner(d)
        iflags.check_unchanged(d.inode)
        d.inode.setattr(mode=mode & 0o7777)
        notify.emit(d, notify.IN_ATTRIB)


_S_ISUID, _S_ISGID, _S_IXGRP = 0o4000, 0o2000, 0o010


def chown(ctx: FsContext, dirfd_dentry: Dentry | None, path: bytes, uid: int, gid: int,
          follow: bool = True, allow_empty: bool = False) -> None:
    """chown/lchown/fchownat(2): -1 leaves an id unchanged. As Linux, a
    chown of anything but a directory clears set-user-ID, and set-group-ID
    where the group may execute."""
    uid, gid = uid & 0xFFFF_FFFF, gid & 0xFFFF_FFFF
    with TREE_LOCK:
        d = _setattr_target(ctx, dirfd_dentry, path, follow, allow_empty)
        if ctx.chown_check is not None:
            ctx.chown_check(d, uid, gid)
        iflags.check_unchanged(d.inode)
        inode = d.inode
        kill = 0 if inode.is_dir() else S_ISUID | (S_ISGID if inode.mode & S_IXGRP else 0)
        mode = inode.mode & 0o7777 & ~kill if inode.mode & kill else None
        d.inode.setattr(uid=None if uid == 0xFFFFFFFF else uid,
                        gid=None if gid == 0xFFFFFFFF else gid, mode=mode)
        notify.emit(d, notify.IN_ATTRIB)


def utimens(ctx: FsContext, dirfd_dentry: Dentry | None, path: bytes,
            atime_ns: int | None, mtime_ns: int | None, follow: bool = True,
            allow_empty: bool = False, touch: bool = False) -> None:
    """utimensat(2): None is UTIME_OMIT; the caller turns UTIME_NOW into the time.
    ``touch`` (no times given, or both UTIME_NOW) asks less, as Linux's
    ATTR_TOUCH: the owner or anyone who may write (else EACCES); explicit
    times are the owner's alone (EPERM)."""
    with TREE_LOCK:
        d = _setattr_target(ctx, dirfd_dentry, path, follow, allow_empty)
        if atime_ns is None and mtime_ns is None:
            return
        if touch:
            if d.inode.iflags & iflags.FS_IMMUTABLE_FL:
                raise SyscallError(errno.EPERM)
            try:
                ctx.check_owner(d)
            except SyscallError:
                ctx.check(d, MAY_WRITE)
        else:
            ctx.check_owner(d)
            iflags.check_unchanged(d.inode)
        d.inode.setattr(atime_ns=atime_ns, mtime_ns=mtime_ns)
        notify.emit(d, notify.IN_ATTRIB)


def truncate(ctx: FsContext, dirfd_dentry: Dentry | None, path: bytes, length: int) -> None:
    """truncate(2)."""
    if length < 0:
        raise SyscallError(errno.EINVAL)
    while True:
        try:
            return _truncate(ctx, dirfd_dentry, path, length)
        except leases.Breaking as b:  # wait outside the tree lock, then again
            b.wait()


def _truncate(ctx: FsContext, dirfd_dentry: Dentry | None, path: bytes, length: int) -> None:
    with TREE_LOCK:
        d = resolve(ctx, path, dirfd_dentry=dirfd_dentry, follow=True)
        if d.inode.is_dir():
            raise SyscallError(errno.EISDIR)
        if not d.inode.is_reg():
            raise SyscallError(errno.EINVAL)
        writable_mount(d)
        ctx.check(d, MAY_WRITE)
        iflags.check_unchanged(d.inode)
        iflags.check_not_running(d.inode)
        leases.check(d.inode, True, False)
        d.inode.setattr(size=length)
        notify.emit(d, notify.IN_MODIFY)


def access(ctx: FsContext, dirfd_dentry: Dentry | None, path: bytes, mode: int,
           flags: int = 0) -> None:
    """access/faccessat(2) with root's rules."""
    if mode & ~(R_OK | W_OK | X_OK):
        raise SyscallError(errno.EINVAL)
    d = resolve(ctx, path, dirfd_dentry=dirfd_dentry, follow=not flags & AT_SYMLINK_NOFOLLOW,
                allow_empty=bool(flags & AT_EMPTY_PATH))
    inode = d.inode
    fmt = inode.mode & S_IFMT
    if mode & W_OK and fmt in (S_IFREG, S_IFDIR) and (d.mount.readonly or inode.fs.readonly):
        raise SyscallError(errno.EROFS)
    if mode & X_OK and fmt != S_IFDIR and not inode.mode & 0o111:
        raise SyscallError(errno.EACCES)
    if mode:
        ctx.check(d, mode)


def readlink(ctx: FsContext, dirfd_dentry: Dentry | None, path: bytes) -> bytes:
    """readlink/readlinkat(2) (an empty path reads the O_PATH dirfd's own link)."""
    d = resolve(ctx, path, dirfd_dentry=dirfd_dentry, follow=False, allow_empty=True)
    if not d.inode.is_symlink():
        raise SyscallError(errno.ENOENT if not path else errno.EINVAL)
    return d.inode.readlink()


# Process filesystem state.
def chdir(ctx: FsContext, dirfd_dentry: Dentry | None, path: bytes) -> None:
    """chdir(2) (fchdir: pass ``reopen_dir(desc)`` with an empty path)."""
    d = resolve(ctx, path, dirfd_dentry=dirfd_dentry, follow=True, want_dir=True,
                allow_empty=not path and dirfd_dentry is not None)
    ctx.check(d, MAY_EXEC)
    ctx.cwd = d


def chroot(ctx: FsContext, dirfd_dentry: Dentry | None, path: bytes,
           permitted: bool = True) -> None:
    """chroot(2): the cwd is left alone, as Linux does.  The lookup's errors,
    then search permission on the directory (EACCES), then ``permitted``
    (the caller's CAP_SYS_CHROOT: EPERM), Linux's order."""
    d = resolve(ctx, path, dirfd_dentry=dirfd_dentry, follow=True, want_dir=True)
    ctx.check(d, MAY_EXEC)
    if not permitted:
        raise SyscallError(errno.EPERM)
    ctx.root = d


def getcwd(ctx: FsContext) -> bytes:
    """getcwd(2): ENOENT once the cwd was removed."""
    if ctx.cwd.dead:
        raise SyscallError(errno.ENOENT)
    return path_of(ctx.cwd, ctx.root)


def fd_path(ctx: FsContext, desc: FileDescription) -> bytes:
    """What /proc/self/fd/N reads as for a description."""
    d = dentry_of(desc)
    if d is not None:
        return path_of(d, ctx.root)
    name = getattr(desc, "link_name", None)
    if name is not None:
        return name()
    return b"anon_inode:[unknown]"


def mount(ctx: FsContext, fs: Filesystem, target: bytes, source: str = "none",
          options: str | None = None, readonly: bool = False) -> Mount:
    """mount(2) of a Sentry filesystem at ``target`` (a directory)."""
    if ctx.ns is None:
        raise SyscallError(errno.EINVAL)
    with TREE_LOCK:
        d = resolve(ctx, target, follow=True, want_dir=True)
        return ctx.ns.mount(fs, d, source, options, readonly)


def umount(ctx: FsContext, target: bytes) -> None:
    """umount2(2) without flags."""
    if ctx.ns is None:
        raise SyscallError(errno.EINVAL)
    with TREE_LOCK:
        ctx.ns.umount(resolve(ctx, target, follow=True))
