"""tmpfs files and directories through the VFS facade (open, getdents, rename...)."""

from __future__ import annotations

import errno
import struct
import time

import pytest

from sentry.kernel.errors import SyscallError
from sentry.vfs import vfs
from sentry.vfs.description import (
    SEEK_CUR,
    SEEK_DATA,
    SEEK_END,
    SEEK_HOLE,
    SEEK_SET,
    DirectoryDescription,
    PathDescription,
    RegularFileDescription,
)
from sentry.vfs.file import O_APPEND, O_RDONLY, O_RDWR, O_WRONLY
from sentry.vfs.inode import DT_DIR, DT_LNK, DT_REG, RENAME_EXCHANGE, RENAME_NOREPLACE
from sentry.vfs.mount import MountNamespace
from sentry.vfs.resolve import FsContext, resolve
from sentry.vfs.tmpfs import TmpFs

O_CREAT, O_EXCL, O_TRUNC = vfs.O_CREAT, vfs.O_EXCL, vfs.O_TRUNC


def errno_of(fn, *a, **kw) -> int:  # type: ignore[no-untyped-def]
    with pytest.raises(SyscallError) as ei:
        fn(*a, **kw)
    return ei.value.errno


@pytest.fixture
def ctx() -> FsContext:
    return FsContext.for_namespace(MountNamespace(TmpFs(mode=0o755)))


def create(ctx: FsContext, path: bytes, data: bytes = b"") -> None:
    f = vfs.open(ctx, None, path, O_CREAT | O_WRONLY, 0o644)
    if data:
        f.write(data)
    f.release()


def parse_dirents(buf: bytes) -> list[tuple[int, int, int, bytes]]:
    out = []
    pos = 0
    while pos < len(buf):
        ino, off, reclen, typ = struct.unpack_from("<QqHB", buf, pos)
        name = buf[pos + 19:pos + reclen].split(b"\0", 1)[0]
        out.append((ino, off, typ, name))
        pos += reclen
    return out


def test_read_write_seek_append(ctx: FsContext) -> None:
    f = vfs.open(ctx, None, b"/f", O_CREAT | O_RDWR, 0o666, 0o022)
    assert isinstance(f, RegularFileDescription)
    assert f.stat().mode == 0o100644
    assert f.write(b"hello world") == 11
    assert f.seek(0, SEEK_SET) == 0
    assert f.read(5) == b"hello"
    assert f.seek(1, SEEK_CUR) == 6
    assert f.read(100) == b"world"
    assert f.read(100) == b""
    assert f.pread(4, 6) == b"worl"
    assert f.pwrite(b"W", 6) == 1
    assert f.seek(-5, SEEK_END) == 6
    assert f.read(5) == b"World"
    assert errno_of(f.seek, -100, SEEK_CUR) == errno.EINVAL
    g = vfs.open(ctx, None, b"/f", O_WRONLY | O_APPEND)
    g.write(b"!")
    assert f.pread(100, 0) == b"hello World!"
    h = vfs.open(ctx, None, b"/f", O_RDONLY | O_TRUNC)
    assert h.stat().size == 0


def test_sparse_file_and_seek_data_hole(ctx: FsContext) -> None:
    f = vfs.open(ctx, None, b"/sparse", O_CREAT | O_RDWR)
    assert isinstance(f, RegularFileDescription)
    f.pwrite(b"x", 3 * 4096 + 10)
    st = f.stat()
    assert st.size == 3 * 4096 + 11 and st.blocks == 8  # one 4 KiB page
    assert f.pread(4, 3 * 4096 + 8) == b"\0\0x"
    assert f.seek(0, SEEK_DATA) == 3 * 4096
    assert f.seek(0, SEEK_HOLE) == 0
    assert f.seek(3 * 4096, SEEK_HOLE) == st.size
    assert errno_of(f.seek, st.size, SEEK_DATA) == errno.ENXIO
    f.truncate(1 << 40)  # huge and free
    assert f.stat().size == 1 << 40 and f.stat().blocks == 8
    f.truncate(3 * 4096 + 5)
    assert f.pread(10, 3 * 4096) == b"\0" * 5
    f.truncate(0)
    assert f.stat().blocks == 0
    r = vfs.open(ctx, None, b"/sparse", O_RDONLY)
    assert isinstance(r, RegularFileDescription)
    assert errno_of(r.truncate, 0) == errno.EINVAL


def test_timestamps(ctx: FsContext) -> None:
    create(ctx, b"/t")
    st0 = vfs.stat(ctx, None, b"/t")
    root0 = vfs.stat(ctx, None, b"/")
    time.sleep(0.002)
    f = vfs.open(ctx, None, b"/t", O_WRONLY)
    f.write(b"x")
    st1 = vfs.stat(ctx, None, b"/t")
    assert st1.mtime_ns > st0.mtime_ns and st1.ctime_ns > st0.ctime_ns
    create(ctx, b"/t2")
    assert vfs.stat(ctx, None, b"/").mtime_ns > root0.mtime_ns
    vfs.utimens(ctx, None, b"/t", 1_000_000_000, 2_000_000_123)
    st2 = vfs.stat(ctx, None, b"/t")
    assert (st2.atime_ns, st2.mtime_ns) == (1_000_000_000, 2_000_000_123)
    vfs.utimens(ctx, None, b"/t", None, 5)
    assert vfs.stat(ctx, None, b"/t").atime_ns == 1_000_000_000


def test_open_flags(ctx: FsContext) -> None:
    create(ctx, b"/f", b"abc")
    vfs.mkdir(ctx, None, b"/d", 0o755)
    vfs.symlink(ctx, b"f", None, b"/l")
    vfs.symlink(ctx, b"newtarget", None, b"/dangling")
    assert errno_of(vfs.open, ctx, None, b"/f", O_CREAT | O_EXCL) == errno.EEXIST
    assert errno_of(vfs.open, ctx, None, b"/l", O_CREAT | O_EXCL) == errno.EEXIST
    assert errno_of(vfs.open, ctx, None, b"/d", O_WRONLY) == errno.EISDIR
    assert errno_of(vfs.open, ctx, None, b"/d", O_CREAT) == errno.EISDIR
    assert errno_of(vfs.open, ctx, None, b"/f", vfs.O_DIRECTORY) == errno.ENOTDIR
    assert errno_of(vfs.open, ctx, None, b"/l", vfs.O_NOFOLLOW) == errno.ELOOP
    assert errno_of(vfs.open, ctx, None, b"/nope", O_RDONLY) == errno.ENOENT
    assert errno_of(vfs.open, ctx, None, b"/new/", O_CREAT) == errno.EISDIR
    assert errno_of(vfs.open, ctx, None, b"/f/", O_RDONLY) == errno.ENOTDIR
    assert vfs.open(ctx, None, b"/l", O_RDONLY).read(10) == b"abc"
    # O_CREAT through a dangling symlink creates the target
    vfs.open(ctx, None, b"/dangling", O_CREAT | O_WRONLY).write(b"via link")
    assert vfs.open(ctx, None, b"/newtarget", O_RDONLY).read(100) == b"via link"
    d = vfs.open(ctx, None, b"/d", O_RDONLY | vfs.O_DIRECTORY)
    assert isinstance(d, DirectoryDescription) and d.dentry is resolve(ctx, b"/d")
    assert errno_of(d.read, 1) == errno.EISDIR
    # F_GETFL must not see the open-only flags
    assert vfs.open(ctx, None, b"/f", O_RDWR | O_TRUNC).flags == O_RDWR


def test_o_path(ctx: FsContext) -> None:
    create(ctx, b"/f", b"abc")
    vfs.symlink(ctx, b"f", None, b"/l")
    p = vfs.open(ctx, None, b"/l", vfs.O_NOFOLLOW | 0o10000000)
    assert isinstance(p, PathDescription)
    assert p.stat().mode & 0o170000 == 0o120000
    assert not p.readable() and not p.writable()
    assert errno_of(p.read, 1) == errno.EBADF
    assert vfs.readlink(ctx, p.dentry, b"") == b"f"
    dp = vfs.open(ctx, None, b"/", 0o10000000)
    vfs.chdir(ctx, vfs.reopen_dir(dp), b"")
    assert errno_of(vfs.reopen_dir, p) == errno.ENOTDIR


def test_getdents64(ctx: FsContext) -> None:
    vfs.mkdir(ctx, None, b"/d", 0o755)
    names = [b"f%03d" % i for i in range(50)]
    for n in names:
        create(ctx, b"/d/" + n)
    vfs.mkdir(ctx, None, b"/d/sub", 0o755)
    vfs.symlink(ctx, b"x", None, b"/d/lnk")
    d = vfs.open(ctx, None, b"/d", O_RDONLY)
    assert isinstance(d, DirectoryDescription)
    assert errno_of(d.getdents64, 10) == errno.EINVAL
    got = []
    while True:
        buf = d.getdents64(200)
        if not buf:
            break
        assert len(buf) <= 200
        got += parse_dirents(buf)
    assert [g[3] for g in got[:2]] == [b".", b".."]
    assert got[0][0] == vfs.stat(ctx, None, b"/d").ino
    assert got[1][0] == vfs.stat(ctx, None, b"/").ino
    assert [g[3] for g in got[2:]] == names + [b"sub", b"lnk"]
    types = {g[3]: g[2] for g in got}
    assert types[b"sub"] == DT_DIR and types[b"lnk"] == DT_LNK and types[b"f000"] == DT_REG
    offs = [g[1] for g in got]
    assert offs == sorted(offs) and len(set(offs)) == len(offs)
    # seekdir to a d_off resumes right after that entry
    d.seek(got[10][1], SEEK_SET)
    assert parse_dirents(d.getdents64(4096))[0][3] == got[11][3]
    # rewinddir sees new names
    create(ctx, b"/d/late")
    d.seek(0, SEEK_SET)
    assert b"late" in [e.name for e in d.readdir(1000)]
    assert errno_of(d.seek, 0, SEEK_END) == errno.EINVAL


def test_mkdir_unlink_rmdir_errors(ctx: FsContext) -> None:
    vfs.mkdir(ctx, None, b"/d", 0o777, 0o022)
    assert vfs.stat(ctx, None, b"/d").mode == 0o40755
    assert vfs.stat(ctx, None, b"/").nlink == 3
    assert errno_of(vfs.mkdir, ctx, None, b"/d", 0o755) == errno.EEXIST
    assert errno_of(vfs.mkdir, ctx, None, b"/", 0o755) == errno.EEXIST
    assert errno_of(vfs.mkdir, ctx, None, b"/x/y", 0o755) == errno.ENOENT
    create(ctx, b"/d/f")
    assert errno_of(vfs.rmdir, ctx, None, b"/d") == errno.ENOTEMPTY
    assert errno_of(vfs.rmdir, ctx, None, b"/d/f") == errno.ENOTDIR
    assert errno_of(vfs.rmdir, ctx, None, b"/d/.") == errno.EINVAL
    assert errno_of(vfs.unlink, ctx, None, b"/d") == errno.EISDIR
    assert errno_of(vfs.unlink, ctx, None, b"/d/f/") == errno.ENOTDIR
    assert errno_of(vfs.unlink, ctx, None, b"/d/nope") == errno.ENOENT
    f = vfs.open(ctx, None, b"/d/f", O_RDWR)
    vfs.unlink(ctx, None, b"/d/f")
    f.write(b"still here")  # an open file outlives its name
    assert f.pread(100, 0) == b"still here" and f.stat().nlink == 0
    assert vfs.fd_path(ctx, f) == b"/d/f (deleted)"
    vfs.rmdir(ctx, None, b"/d/")
    assert vfs.stat(ctx, None, b"/").nlink == 2


def test_link_and_mknod(ctx: FsContext) -> None:
    create(ctx, b"/f", b"data")
    vfs.link(ctx, None, b"/f", None, b"/g")
    assert vfs.stat(ctx, None, b"/f").nlink == 2
    assert vfs.stat(ctx, None, b"/g").ino == vfs.stat(ctx, None, b"/f").ino
    vfs.mkdir(ctx, None, b"/d", 0o755)
    assert errno_of(vfs.link, ctx, None, b"/d", None, b"/d2") == errno.EPERM
    assert errno_of(vfs.link, ctx, None, b"/f", None, b"/g") == errno.EEXIST
    vfs.mknod(ctx, None, b"/fifo", 0o010644)
    assert vfs.stat(ctx, None, b"/fifo").mode == 0o010644
    vfs.mknod(ctx, None, b"/plain", 0o644)
    assert vfs.stat(ctx, None, b"/plain").mode == 0o100644
    assert errno_of(vfs.mknod, ctx, None, b"/dd", 0o040755) == errno.EPERM
    assert vfs.open(ctx, None, b"/g", O_RDONLY).read(10) == b"data"
    vfs.unlink(ctx, None, b"/f")
    assert vfs.stat(ctx, None, b"/g").nlink == 1
    # a device node with no driver opens with ENXIO
    vfs.mknod(ctx, None, b"/nodev", 0o020600, (42 << 8) | 1)
    assert errno_of(vfs.open, ctx, None, b"/nodev", O_RDONLY) == errno.ENXIO


def test_rename(ctx: FsContext) -> None:
    create(ctx, b"/a", b"A")
    create(ctx, b"/b", b"B")
    vfs.mkdir(ctx, None, b"/d", 0o755)
    vfs.mkdir(ctx, None, b"/d/e", 0o755)
    vfs.mkdir(ctx, None, b"/empty", 0o755)
    fa = vfs.open(ctx, None, b"/a", O_RDONLY)
    vfs.rename(ctx, None, b"/a", None, b"/b")
    assert vfs.open(ctx, None, b"/b", O_RDONLY).read(9) == b"A"
    assert errno_of(vfs.stat, ctx, None, b"/a") == errno.ENOENT
    assert vfs.fd_path(ctx, fa) == b"/b"
    assert errno_of(vfs.rename, ctx, None, b"/d", None, b"/d/e/x") == errno.EINVAL
    assert errno_of(vfs.rename, ctx, None, b"/b", None, b"/d") == errno.EISDIR
    assert errno_of(vfs.rename, ctx, None, b"/d", None, b"/b") == errno.ENOTDIR
    assert errno_of(vfs.rename, ctx, None, b"/empty", None, b"/d") == errno.ENOTEMPTY
    assert errno_of(vfs.rename, ctx, None, b"/b/", None, b"/c") == errno.ENOTDIR
    assert errno_of(vfs.rename, ctx, None, b"/d/.", None, b"/x") == errno.EBUSY
    assert errno_of(vfs.rename, ctx, None, b"/nope", None, b"/x") == errno.ENOENT
    vfs.rename(ctx, None, b"/d", None, b"/empty")
    assert vfs.stat(ctx, None, b"/empty/e").mode & 0o170000 == 0o040000
    create(ctx, b"/c", b"C")
    assert errno_of(vfs.rename, ctx, None, b"/b", None, b"/c", RENAME_NOREPLACE) == errno.EEXIST
    fb = vfs.open(ctx, None, b"/b", O_RDONLY)
    fc = vfs.open(ctx, None, b"/c", O_RDONLY)
    vfs.rename(ctx, None, b"/b", None, b"/c", RENAME_EXCHANGE)
    assert (vfs.fd_path(ctx, fb), vfs.fd_path(ctx, fc)) == (b"/c", b"/b")
    assert vfs.open(ctx, None, b"/c", O_RDONLY).read(9) == b"A"
    assert vfs.open(ctx, None, b"/b", O_RDONLY).read(9) == b"C"
    assert errno_of(vfs.rename, ctx, None, b"/b", None, b"/zz", RENAME_EXCHANGE) == errno.ENOENT
    vfs.link(ctx, None, b"/b", None, b"/b2")
    vfs.rename(ctx, None, b"/b", None, b"/b2")  # hard links of one file: no-op
    assert vfs.stat(ctx, None, b"/b").nlink == 2


def test_chmod_chown_truncate_access_statfs(ctx: FsContext) -> None:
    create(ctx, b"/f", b"0123456789")
    vfs.chmod(ctx, None, b"/f", 0o4755)
    assert vfs.stat(ctx, None, b"/f").mode == 0o104755
    vfs.chown(ctx, None, b"/f", 1000, -1)
    st = vfs.stat(ctx, None, b"/f")
    assert (st.uid, st.gid) == (1000, 0)
    vfs.truncate(ctx, None, b"/f", 4)
    assert vfs.open(ctx, None, b"/f", O_RDONLY).read(100) == b"0123"
    assert errno_of(vfs.truncate, ctx, None, b"/", 0) == errno.EISDIR
    assert errno_of(vfs.truncate, ctx, None, b"/f", -1) == errno.EINVAL
    vfs.access(ctx, None, b"/f", vfs.X_OK | vfs.W_OK | vfs.R_OK)
    vfs.chmod(ctx, None, b"/f", 0o644)
    assert errno_of(vfs.access, ctx, None, b"/f", vfs.X_OK) == errno.EACCES
    vfs.access(ctx, None, b"/", vfs.X_OK)
    assert vfs.statfs(ctx, None, b"/f").type == 0x01021994
