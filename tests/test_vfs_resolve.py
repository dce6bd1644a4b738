"""Path resolution (path_resolution(7)) and the mount table, on tmpfs."""

from __future__ import annotations

import errno

import pytest

from sentry.kernel.errors import SyscallError
from sentry.vfs import vfs
from sentry.vfs.dentry import Dentry
from sentry.vfs.inode import S_IFLNK, Inode
from sentry.vfs.mount import MountNamespace, format_mounts, path_of
from sentry.vfs.resolve import FsContext, resolve, resolve_parent
from sentry.vfs.tmpfs import TmpFs


def errno_of(fn, *a, **kw) -> int:  # type: ignore[no-untyped-def]
    with pytest.raises(SyscallError) as ei:
        fn(*a, **kw)
    return ei.value.errno


@pytest.fixture
def ctx() -> FsContext:
    ns = MountNamespace(TmpFs(mode=0o755), source="rootfs")
    c = FsContext.for_namespace(ns)
    vfs.mkdir(c, None, b"/a", 0o755)
    vfs.mkdir(c, None, b"/a/b", 0o755)
    vfs.open(c, None, b"/a/b/file", vfs.O_CREAT | 1, 0o644).write(b"hello")
    vfs.symlink(c, b"b/file", None, b"/a/rel")
    vfs.symlink(c, b"/a/b", None, b"/abs")
    vfs.symlink(c, b"loop2", None, b"/loop1")
    vfs.symlink(c, b"loop1", None, b"/loop2")
    vfs.symlink(c, b"/nowhere", None, b"/dangling")
    return c


def test_absolute_relative_and_dot_dot(ctx: FsContext) -> None:
    f = resolve(ctx, b"/a/b/file")
    assert f.inode.size == 5
    assert resolve(ctx, b"/a/./b/../b//file") is f
    ctx.cwd = resolve(ctx, b"/a")
    assert resolve(ctx, b"b/file") is f
    assert resolve(ctx, b"../../../../a/b/file") is f  # ".." clamped at "/"


def test_dotdot_clamped_at_chroot(ctx: FsContext) -> None:
    vfs.chroot(ctx, None, b"/a")
    assert resolve(ctx, b"/../../b/file").inode.size == 5
    assert resolve(ctx, b"/b/../..") is ctx.root
    # a missing component fails even when ".." would step back over it
    assert errno_of(resolve, ctx, b"/nonexistent/../b") == errno.ENOENT
    # an absolute symlink body is resolved from the process root
    vfs.symlink(ctx, b"/b", None, b"/b/up")
    assert resolve(ctx, b"/b/up/file").inode.size == 5


def test_symlinks_followed_relative_to_link_dir(ctx: FsContext) -> None:
    f = resolve(ctx, b"/a/b/file")
    assert resolve(ctx, b"/a/rel") is f
    assert resolve(ctx, b"/abs/file") is f
    link = resolve(ctx, b"/a/rel", follow=False)
    assert link.inode.is_symlink()
    assert vfs.readlink(ctx, None, b"/a/rel") == b"b/file"


def test_symlink_loop_is_eloop(ctx: FsContext) -> None:
    assert errno_of(resolve, ctx, b"/loop1") == errno.ELOOP
    assert errno_of(resolve, ctx, b"/loop1/x") == errno.ELOOP
    # not following the last component does not expand it
    assert resolve(ctx, b"/loop1", follow=False).inode.is_symlink()


def test_forty_links_ok_forty_one_eloop(ctx: FsContext) -> None:
    vfs.symlink(ctx, b"/a/b/file", None, b"/l0")
    for i in range(1, 41):
        vfs.symlink(ctx, b"/l%d" % (i - 1), None, b"/l%d" % i)
    assert resolve(ctx, b"/l39").inode.size == 5  # 40 expansions
    assert errno_of(resolve, ctx, b"/l40") == errno.ELOOP  # 41


def test_enotdir_and_trailing_slash(ctx: FsContext) -> None:
    assert errno_of(resolve, ctx, b"/a/b/file/x") == errno.ENOTDIR
    assert errno_of(resolve, ctx, b"/a/b/file/") == errno.ENOTDIR
    assert errno_of(resolve, ctx, b"/a/b/file/.") == errno.ENOTDIR
    assert resolve(ctx, b"/a/b/").inode.is_dir()
    # a trailing slash follows a final symlink to a directory
    assert resolve(ctx, b"/abs/", follow=False).inode.is_dir()
    assert errno_of(resolve, ctx, b"/a/rel/", follow=False) == errno.ENOTDIR
    assert errno_of(resolve, ctx, b"/a/b/file", want_dir=True) == errno.ENOTDIR


def test_name_too_long_and_empty(ctx: FsContext) -> None:
    assert errno_of(resolve, ctx, b"/" + b"x" * 256) == errno.ENAMETOOLONG
    assert errno_of(resolve, ctx, b"/x" * 2048) == errno.ENAMETOOLONG
    assert errno_of(resolve, ctx, b"/" + b"x" * 255) == errno.ENOENT
    assert errno_of(resolve, ctx, b"") == errno.ENOENT
    d = resolve(ctx, b"/a")
    assert resolve(ctx, b"", dirfd_dentry=d, allow_empty=True) is d
    assert errno_of(resolve_parent, ctx, b"") == errno.ENOENT


def test_dirfd_relative(ctx: FsContext) -> None:
    a = resolve(ctx, b"/a")
    f = resolve(ctx, b"b/file", dirfd_dentry=a)
    assert f is resolve(ctx, b"/a/b/file")
    # absolute paths ignore the dirfd
    assert resolve(ctx, b"/abs", dirfd_dentry=a) is resolve(ctx, b"/a/b")
    parent, name, trailing = resolve_parent(ctx, b"b/new/", a)
    assert parent is resolve(ctx, b"/a/b") and name == b"new" and trailing


def test_dangling_symlink_enoent(ctx: FsContext) -> None:
    assert errno_of(resolve, ctx, b"/dangling") == errno.ENOENT
    assert resolve(ctx, b"/dangling", follow=False).inode.is_symlink()


class MagicLink(Inode):
    """A procfs-style link whose target is a dentry, not a string."""

    def __init__(self, fs: TmpFs, target: Dentry) -> None:
        super().__init__(fs, S_IFLNK | 0o777)
        self.target = target

    def readlink(self) -> bytes:
        return b"not-a-real-path"

    def follow_link(self, ctx: FsContext) -> Dentry | None:
        return self.target


def test_magic_link_uses_dentry(ctx: FsContext) -> None:
    target = resolve(ctx, b"/a/b")
    root = resolve(ctx, b"/")
    root.inode.entries[b"magic"] = MagicLink(root.inode.fs, target)  # type: ignore[attr-defined]
    assert resolve(ctx, b"/magic/file") is resolve(ctx, b"/a/b/file")
    assert resolve(ctx, b"/magic") is target
    assert vfs.readlink(ctx, None, b"/magic") == b"not-a-real-path"


def test_mount_crossing_and_proc_mounts(ctx: FsContext) -> None:
    assert ctx.ns is not None
    vfs.mkdir(ctx, None, b"/mnt", 0o755)
    before = resolve(ctx, b"/mnt")
    m = vfs.mount(ctx, TmpFs(), b"/mnt", "tmpfs")
    vfs.mkdir(ctx, None, b"/mnt/inner", 0o700)
    inner = resolve(ctx, b"/mnt/inner")
    assert inner.mount is m
    assert resolve(ctx, b"/mnt") is m.root and m.root is not before
    assert resolve(ctx, b"/mnt/inner/../..") is resolve(ctx, b"/")
    assert resolve(ctx, b"/mnt/..") is resolve(ctx, b"/")
    assert path_of(inner) == b"/mnt/inner"
    ctx.cwd = inner
    assert vfs.getcwd(ctx) == b"/mnt/inner"
    st_root = vfs.stat(ctx, None, b"/")
    assert vfs.stat(ctx, None, b"/mnt").dev != st_root.dev
    rows = ctx.ns.mounts()
    assert rows == [("rootfs", b"/", "tmpfs", "rw"), ("tmpfs", b"/mnt", "tmpfs", "rw")]
    assert format_mounts(rows).splitlines()[1] == b"tmpfs /mnt tmpfs rw 0 0"
    # renames and links do not cross mounts; a mountpoint is busy
    assert errno_of(vfs.rename, ctx, None, b"/a/b/file", None, b"/mnt/f") == errno.EXDEV
    assert errno_of(vfs.link, ctx, None, b"/a/b/file", None, b"/mnt/f") == errno.EXDEV
    assert errno_of(vfs.rmdir, ctx, None, b"/mnt") == errno.EBUSY
    # stacking a second mount hides the first
    m2 = vfs.mount(ctx, TmpFs(), b"/mnt", "second")
    assert resolve(ctx, b"/mnt") is m2.root
    assert errno_of(resolve, ctx, b"/mnt/inner") == errno.ENOENT
    assert [r[1] for r in ctx.ns.mounts()] == [b"/", b"/mnt", b"/mnt"]
    vfs.umount(ctx, b"/mnt")
    assert resolve(ctx, b"/mnt/inner") is inner


def test_getcwd_deleted_and_unreachable(ctx: FsContext) -> None:
    vfs.mkdir(ctx, None, b"/gone", 0o755)
    vfs.chdir(ctx, None, b"/gone")
    d = ctx.cwd
    vfs.rmdir(ctx, None, b"/gone")
    assert errno_of(vfs.getcwd, ctx) == errno.ENOENT
    assert path_of(d) == b"/gone (deleted)"
    vfs.chdir(ctx, None, b"/a/b")
    vfs.chroot(ctx, None, b"/abs")
    assert vfs.getcwd(ctx) == b"/"
    ctx.cwd = resolve(FsContext.for_namespace(ctx.ns), b"/a")  # type: ignore[arg-type]
    assert vfs.getcwd(ctx) == b"(unreachable)/a"


def test_fork_copies_context(ctx: FsContext) -> None:
    child = ctx.fork()
    vfs.chdir(child, None, b"/a")
    assert vfs.getcwd(child) == b"/a" and vfs.getcwd(ctx) == b"/"


def test_permission_hook_is_called(ctx: FsContext) -> None:
    seen: list[bytes] = []

    def deny_b(d: Dentry, mask: int) -> None:
        seen.append(d.name)
        if d.name == b"b":
            raise SyscallError(errno.EACCES)

    ctx.permission = deny_b
    assert errno_of(resolve, ctx, b"/a/b/file") == errno.EACCES
    assert seen == [b"", b"a", b"b"]
