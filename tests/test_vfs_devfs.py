"""/dev: the memory devices, /dev/tty, the /proc/self/fd symlinks and /dev/shm."""

from __future__ import annotations

import errno
import os

import pytest

from sentry.kernel.errors import SyscallError
from sentry.vfs import vfs
from sentry.vfs.devfs import NullDevice, mount_devfs
from sentry.vfs.file import O_RDONLY, O_RDWR, O_WRONLY, FileDescription
from sentry.vfs.inode import Inode
from sentry.vfs.mount import MountNamespace
from sentry.vfs.resolve import FsContext, resolve
from sentry.vfs.tmpfs import TmpFs


def errno_of(fn, *a) -> int:  # type: ignore[no-untyped-def]
    with pytest.raises(SyscallError) as ei:
        fn(*a)
    return ei.value.errno


def make(tty: object = None) -> FsContext:
    ns = MountNamespace(TmpFs(mode=0o755))
    ctx = FsContext.for_namespace(ns)
    vfs.mkdir(ctx, None, b"/dev", 0o755)
    mount_devfs(ns, resolve(ctx, b"/dev"), tty_opener=tty)  # type: ignore[arg-type]
    return ctx


@pytest.mark.parametrize("name,major,minor", [
    (b"null", 1, 3), (b"zero", 1, 5), (b"full", 1, 7), (b"random", 1, 8), (b"urandom", 1, 9),
    (b"tty", 5, 0), (b"ptmx", 5, 2),
])
def test_device_numbers(name: bytes, major: int, minor: int) -> None:
    st = vfs.stat(make(), None, b"/dev/" + name)
    assert st.mode & 0o170000 == 0o020000
    assert (os.major(st.rdev), os.minor(st.rdev)) == (major, minor)


def test_memory_devices() -> None:
    ctx = make()
    null = vfs.open(ctx, None, b"/dev/null", O_RDWR)
    assert null.read(100) == b"" and null.write(b"gone") == 4
    assert null.stat().rdev == os.makedev(1, 3)
    zero = vfs.open(ctx, None, b"/dev/zero", O_RDONLY)
    assert zero.read(5) == b"\0" * 5
    full = vfs.open(ctx, None, b"/dev/full", O_RDWR)
    assert full.read(3) == b"\0\0\0"
    assert errno_of(full.write, b"x") == errno.ENOSPC
    urandom = vfs.open(ctx, None, b"/dev/urandom", O_RDONLY)
    a, b = urandom.read(32), urandom.read(32)
    assert len(a) == 32 and a != b
    assert len(vfs.open(ctx, None, b"/dev/random", O_RDONLY).read(8)) == 8


def test_tty_without_and_with_controlling_terminal() -> None:
    assert errno_of(vfs.open, make(), None, b"/dev/tty", O_RDWR) == errno.ENXIO
    opened: list[int] = []

    def tty(inode: Inode, flags: int) -> FileDescription:
        opened.append(flags)
        return NullDevice(inode, flags)

    f = vfs.open(make(tty), None, b"/dev/tty", O_WRONLY)
    assert isinstance(f, NullDevice) and opened == [O_WRONLY]
    assert errno_of(vfs.open, make(), None, b"/dev/ptmx", O_RDWR) == errno.ENXIO


def test_links_and_directories() -> None:
    ctx = make()
    for i, name in enumerate((b"stdin", b"stdout", b"stderr")):
        assert vfs.readlink(ctx, None, b"/dev/" + name) == b"/proc/self/fd/%d" % i
    assert vfs.readlink(ctx, None, b"/dev/fd") == b"/proc/self/fd"
    assert vfs.stat(ctx, None, b"/dev/pts").mode & 0o170000 == 0o040000
    shm = vfs.stat(ctx, None, b"/dev/shm")
    assert shm.dev != vfs.stat(ctx, None, b"/dev").dev  # a mount of its own
    assert shm.mode == 0o041777
    vfs.open(ctx, None, b"/dev/shm/seg", vfs.O_CREAT | O_RDWR).write(b"shared")
    assert ctx.ns is not None
    assert [(r[1], r[2]) for r in ctx.ns.mounts()] == [
        (b"/", "tmpfs"), (b"/dev", "devtmpfs"), (b"/dev/shm", "tmpfs")]


def test_device_node_made_elsewhere_opens_same_driver() -> None:
    ctx = make()
    vfs.mknod(ctx, None, b"/mynull", 0o020666, os.makedev(1, 3))
    assert vfs.open(ctx, None, b"/mynull", O_RDWR).write(b"abc") == 3
