"""The VFS operations that make and remove names: mkdir, mknod, symlink,
link, unlink, rmdir, rename (the half of Linux's fs/namei.c of those names).

Why apart from sentry/vfs/vfs.py: these share checks of their own (a new
name must be free, `_new_name`; an old one must exist and be removable by
the caller, `_existing`), and each holds ``TREE_LOCK`` from resolution to
the dentry update, so two renames cannot interleave. vfs.py stays the facade
the syscall layer calls and re-exports these (the same function objects);
its docstring lists the shared checks and their order. `writable_mount` and
`masked_perm` are used by both modules.
"""

from __future__ import annotations

import errno

from sentry.kernel.errors import SyscallError
from sentry.vfs import iflags, notify, tmpfile
from sentry.vfs.dentry import TREE_LOCK, Dentry
from sentry.vfs.inode import (
    RENAME_EXCHANGE,
    RENAME_NOREPLACE,
    RENAME_WHITEOUT,
    S_IFBLK,
    S_IFCHR,
    S_IFDIR,
    S_IFIFO,
    S_IFMT,
    S_IFREG,
    S_IFSOCK,
)
from sentry.vfs.resolve import MAY_EXEC, MAY_WRITE, FsContext, lookup_last, resolve, resolve_parent

AT_SYMLINK_FOLLOW = 0x400
AT_EMPTY_PATH = 0x1000


def writable_mount(d: Dentry) -> None:
    if d.mount.readonly or d.inode.fs.readonly:
        raise SyscallError(errno.EROFS)


def masked_perm(mode: int, umask: int) -> int:
    return mode & ~umask & 0o7777


def _new_name(ctx: FsContext, dirfd: Dentry | None, path: bytes) -> tuple[Dentry, bytes, bool]:
    """Parent and name for a call that makes a new name (EEXIST if taken)."""
    parent, name, trailing = resolve_parent(ctx, path, dirfd)
    if name in (b".", b"..") or lookup_last(ctx, parent, name) is not None:
        raise SyscallError(errno.EEXIST)
    writable_mount(parent)
    ctx.check(parent, MAY_WRITE | MAY_EXEC)
    return parent, name, trailing


def mkdir(ctx: FsContext, dirfd_dentry: Dentry | None, path: bytes, mode: int,
          umask: int | None = None) -> None:
    """mkdir/mkdirat(2)."""
    umask = ctx.umask if umask is None else umask
    with TREE_LOCK:
        parent, name, _ = _new_name(ctx, dirfd_dentry, path)
        inode = parent.inode.mkdir(name, S_IFDIR | masked_perm(mode, umask), ctx.uid, ctx.gid)
        notify.emit(parent.add_child(name, inode), notify.IN_CREATE)


def mknod(ctx: FsContext, dirfd_dentry: Dentry | None, path: bytes, mode: int, rdev: int = 0,
          umask: int | None = None, dev_ok: bool = True) -> None:
    """mknod/mknodat(2): regular files, fifos, devices, sockets. A device
    node (but a 0:0 whiteout) needs CAP_MKNOD (``dev_ok``): EPERM after the
    directory's own checks, as Linux's vfs_mknod."""
    umask = ctx.umask if umask is None else umask
    fmt = mode & S_IFMT
    if fmt == 0:
        fmt = S_IFREG
    if fmt == S_IFDIR:
        raise SyscallError(errno.EPERM)
    if fmt not in (S_IFREG, S_IFCHR, S_IFBLK, S_IFIFO, S_IFSOCK):
        raise SyscallError(errno.EINVAL)
    with TREE_LOCK:
        parent, name, trailing = _new_name(ctx, dirfd_dentry, path)
        if trailing:
            raise SyscallError(errno.ENOENT)
        if fmt in (S_IFCHR, S_IFBLK) and not dev_ok and not (fmt == S_IFCHR and rdev == 0):
            raise SyscallError(errno.EPERM)
        perm = masked_perm(mode, umask)
        if fmt == S_IFREG:
            inode = parent.inode.create(name, S_IFREG | perm, ctx.uid, ctx.gid)
        else:
            inode = parent.inode.mknod(name, fmt | perm, rdev, ctx.uid, ctx.gid)
        notify.emit(parent.add_child(name, inode), notify.IN_CREATE)


def symlink(ctx: FsContext, target: bytes, dirfd_dentry: Dentry | None, path: bytes) -> None:
    """symlink/symlinkat(2)."""
    if not target:
        raise SyscallError(errno.ENOENT)
    if len(target) >= 4096:
        raise SyscallError(errno.ENAMETOOLONG)
    with TREE_LOCK:
        parent, name, trailing = _new_name(ctx, dirfd_dentry, path)
        if trailing:
            raise SyscallError(errno.ENOENT)
        inode = parent.inode.symlink(name, target, ctx.uid, ctx.gid)
        notify.emit(parent.add_child(name, inode), notify.IN_CREATE)


def link(ctx: FsContext, olddir: Dentry | None, oldpath: bytes, newdir: Dentry | None,
         newpath: bytes, flags: int = 0) -> None:
    """link/linkat(2)."""
    if flags & ~(AT_SYMLINK_FOLLOW | AT_EMPTY_PATH):
        raise SyscallError(errno.EINVAL)
    with TREE_LOCK:
        old = resolve(ctx, oldpath, dirfd_dentry=olddir, follow=bool(flags & AT_SYMLINK_FOLLOW),
                      allow_empty=bool(flags & AT_EMPTY_PATH))
        # Linux's order (do_linkat, vfs_link): the new name (EEXIST, EROFS,
        # EACCES), the same mount (EXDEV), then a directory's EPERM.
        parent, name, trailing = _new_name(ctx, newdir, newpath)
        if trailing:
            raise SyscallError(errno.ENOENT)
        if parent.mount is not old.mount:
            raise SyscallError(errno.EXDEV)
        if old.inode.is_dir():
            raise SyscallError(errno.EPERM)
        iflags.check_unchanged(old.inode)
        tmpfile.may_link(old.inode, old.dead)
        parent.inode.link(name, old.inode)
        notify.emit_self(old.inode, notify.IN_ATTRIB)
        notify.emit(parent.add_child(name, old.inode), notify.IN_CREATE)


def _existing(ctx: FsContext, dirfd: Dentry | None, path: bytes) -> tuple[Dentry, bytes, bool,
                                                                          Dentry]:
    parent, name, trailing = resolve_parent(ctx, path, dirfd)
    child = lookup_last(ctx, parent, name)
    if child is None:
        raise SyscallError(errno.ENOENT)
    ctx.check(parent, MAY_WRITE | MAY_EXEC)  # unlink and rmdir remove a name
    ctx.check_owner(child, parent)
    iflags.check_unchanged(parent.inode)  # may_delete: append-only or immutable: EPERM
    iflags.check_unchanged(child.inode)
    return parent, name, trailing, child


def unlink(ctx: FsContext, dirfd_dentry: Dentry | None, path: bytes) -> None:
    """unlink/unlinkat(2) without AT_REMOVEDIR."""
    with TREE_LOCK:
        parent, name, trailing, child = _existing(ctx, dirfd_dentry, path)
        if name in (b".", b"..") or child.inode.is_dir():
            raise SyscallError(errno.EISDIR)
        if trailing:
            raise SyscallError(errno.ENOTDIR)
        if child.is_mount_root():
            raise SyscallError(errno.EBUSY)
        writable_mount(parent)
        parent.inode.unlink(name)
        parent.drop_child(name)
        notify.emit_self(child.inode, notify.IN_ATTRIB)
        if child.inode.nlink == 0:
            notify.emit_self(child.inode, notify.IN_DELETE_SELF)
        notify.emit(child, notify.IN_DELETE)


def rmdir(ctx: FsContext, dirfd_dentry: Dentry | None, path: bytes) -> None:
    """rmdir(2) and unlinkat(AT_REMOVEDIR)."""
    with TREE_LOCK:
        parent, name, _trailing, child = _existing(ctx, dirfd_dentry, path)
        if name == b".":
            raise SyscallError(errno.EINVAL)
        if name == b"..":
            raise SyscallError(errno.ENOTEMPTY)
        if not child.inode.is_dir():
            raise SyscallError(errno.ENOTDIR)
        if child.is_mount_root() or child is ctx.root:
            raise SyscallError(errno.EBUSY)
        writable_mount(parent)
        parent.inode.rmdir(name)
        parent.drop_child(name)
        notify.emit_self(child.inode, notify.IN_DELETE_SELF)
        notify.emit(child, notify.IN_DELETE)


def rename(ctx: FsContext, olddir: Dentry | None, oldpath: bytes, newdir: Dentry | None,
           newpath: bytes, flags: int = 0) -> None:
    """rename/renameat/renameat2(2)."""
    if flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE | RENAME_WHITEOUT):
        raise SyscallError(errno.EINVAL)
    if flags & RENAME_EXCHANGE and flags & (RENAME_NOREPLACE | RENAME_WHITEOUT):
        raise SyscallError(errno.EINVAL)
    if flags & RENAME_WHITEOUT:
        raise SyscallError(errno.EINVAL)  # only overlayfs itself uses it
    with TREE_LOCK:
        oparent, oname, otrail = resolve_parent(ctx, oldpath, olddir)
        nparent, nname, ntrail = resolve_parent(ctx, newpath, newdir)
        if oname in (b".", b"..") or nname in (b".", b".."):
            raise SyscallError(errno.EBUSY)
        if oparent.mount is not nparent.mount:
            raise SyscallError(errno.EXDEV)
        src = lookup_last(ctx, oparent, oname)
        if src is None:
            raise SyscallError(errno.ENOENT)
        ctx.check(oparent, MAY_WRITE | MAY_EXEC)
        if nparent is not oparent:
            ctx.check(nparent, MAY_WRITE | MAY_EXEC)
        dst = lookup_last(ctx, nparent, nname)
        ctx.check_owner(src, oparent)
        if dst is not None:
            ctx.check_owner(dst, nparent)
        for frozen in (oparent, src, nparent, dst):
            if frozen is not None:
                iflags.check_unchanged(frozen.inode)
        sdir = src.inode.is_dir()
        if (otrail or ntrail) and not sdir:
            raise SyscallError(errno.ENOTDIR)
        if flags & RENAME_EXCHANGE:
            if dst is None:
                raise SyscallError(errno.ENOENT)
            if ntrail and not dst.inode.is_dir():
                raise SyscallError(errno.ENOTDIR)
        elif dst is not None and flags & RENAME_NOREPLACE:
            raise SyscallError(errno.EEXIST)
        if src.is_mount_root() or (dst is not None and dst.is_mount_root()):
            raise SyscallError(errno.EBUSY)
        if src.is_ancestor_of(nparent):
            raise SyscallError(errno.EINVAL)
        if dst is not None and dst.is_ancestor_of(oparent):
            raise SyscallError(errno.EINVAL if flags & RENAME_EXCHANGE else errno.ENOTEMPTY)
        if dst is not None and dst.inode is src.inode:
            return  # the same file (or a hard link of it): nothing to do
        if dst is not None and not flags & RENAME_EXCHANGE:
            if sdir and not dst.inode.is_dir():
                raise SyscallError(errno.ENOTDIR)
            if not sdir and dst.inode.is_dir():
                raise SyscallError(errno.EISDIR)
        writable_mount(oparent)
        oparent.inode.rename(oname, nparent.inode, nname, flags)
        cookie = notify.new_cookie()
        notify.emit_at(oparent, oname, src.inode, notify.IN_MOVED_FROM, cookie)
        notify.emit_at(nparent, nname, src.inode, notify.IN_MOVED_TO, cookie)
        if dst is not None and not flags & RENAME_EXCHANGE and dst.inode.nlink == 0:
            notify.emit_self(dst.inode, notify.IN_DELETE_SELF)
        notify.emit_self(src.inode, notify.IN_MOVE_SELF)
        if flags & RENAME_EXCHANGE:
            assert dst is not None
            src.move_to(nparent, nname)  # marks dst dead: it was replaced...
            dst.move_to(oparent, oname)
            dst.dead = False  # ...but an exchange keeps it alive under the old name
        else:
            src.move_to(nparent, nname)
