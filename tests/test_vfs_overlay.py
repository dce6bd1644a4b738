"""The gofer-backed root and the overlay over it, with a fake Gofer serving a temp dir.

FakeGoferClient implements the GoferClient API (gofer/client.py) with plain os
calls on a host directory, refuses any open for writing, and counts calls, so
these tests check both the overlay's semantics and that the host is never
modified.
"""

from __future__ import annotations

import errno
import os
import stat as pystat
import struct
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import pytest

from gofer.p9_types import Dirent, Qid
from sentry.kernel.errors import SyscallError
from sentry.vfs import vfs
from sentry.vfs.description import DirectoryDescription
from sentry.vfs.file import O_APPEND, O_RDONLY, O_RDWR, O_WRONLY
from sentry.vfs.goferfs import CHUNK, GoferFs
from sentry.vfs.mount import MountNamespace
from sentry.vfs.overlay import UPPER_INO_BASE, OverlayFs
from sentry.vfs.resolve import FsContext

O_CREAT, O_TRUNC = vfs.O_CREAT, vfs.O_TRUNC


@dataclass(frozen=True)
class Attr:
    mode: int
    uid: int
    gid: int
    nlink: int
    rdev: int
    size: int
    blksize: int
    blocks: int
    atime_ns: int
    mtime_ns: int
    ctime_ns: int
    ino: int


def _qid(st: os.stat_result) -> Qid:
    t = 0x80 if pystat.S_ISDIR(st.st_mode) else 0x02 if pystat.S_ISLNK(st.st_mode) else 0
    return Qid(t, 0, st.st_ino)


class FakeGoferClient:
    """A read-only Gofer over a host directory (os calls, no confinement)."""

    READ_MAX = 8192  # smaller than a cache chunk, like a small msize
    READDIR_MAX = 3  # entries per Rreaddir, to exercise cookies

    def __init__(self, root: bytes) -> None:
        self.paths: dict[int, bytes] = {0: root}
        self.opened: set[int] = set()
        self.next = 1
        self.calls: Counter[str] = Counter()

    def _path(self, fid: int) -> bytes:
        try:
            return self.paths[fid]
        except KeyError:
            raise SyscallError(errno.EBADF) from None

    def walk(self, fid: int, names: list[bytes]) -> tuple[int, list[Qid]]:
        self.calls["walk"] += 1
        p = self._path(fid)
        qids = []
        for n in names:
            assert b"/" not in n and n not in (b"", b".", b"..")
            p = os.path.join(p, n)
            try:
                st = os.lstat(p)
            except FileNotFoundError:
                raise SyscallError(errno.ENOENT) from None
            qids.append(_qid(st))
        nf = self.next
        self.next += 1
        self.paths[nf] = p
        return nf, qids

    def getattr(self, fid: int) -> Attr:
        self.calls["getattr"] += 1
        st = os.lstat(self._path(fid))
        return Attr(st.st_mode, st.st_uid, st.st_gid, st.st_nlink, st.st_rdev, st.st_size,
                    st.st_blksize, st.st_blocks, st.st_atime_ns, st.st_mtime_ns,
                    st.st_ctime_ns, st.st_ino)

    def lopen(self, fid: int, flags: int) -> tuple[Qid, int]:
        self.calls["lopen"] += 1
        assert fid not in self.opened
        assert flags & os.O_ACCMODE == os.O_RDONLY and not flags & os.O_TRUNC, "write open"
        self.opened.add(fid)
        return _qid(os.lstat(self._path(fid))), 0

    def alive(self) -> bool:
        return True

    def read(self, fid: int, offset: int, count: int) -> bytes:
        self.calls["read"] += 1
        assert fid in self.opened
        with open(self._path(fid), "rb") as f:
            f.seek(offset)
            return f.read(min(count, self.READ_MAX))

    def readdir(self, fid: int, offset: int, count: int) -> list[Dirent]:
        self.calls["readdir"] += 1
        assert fid in self.opened
        p = self._path(fid)
        names = [b".", b".."] + sorted(os.listdir(p))
        out = []
        for i in range(offset, min(offset + self.READDIR_MAX, len(names))):
            st = os.lstat(os.path.join(p, names[i]))
            out.append(Dirent(_qid(st), i + 1, pystat.S_IFMT(st.st_mode) >> 12,
                              names[i].decode("utf-8", "surrogateescape")))
        return out

    def readlink(self, fid: int) -> bytes:
        return os.readlink(self._path(fid))

    def statfs(self, fid: int) -> object:
        s = os.statvfs(self._path(fid))
        return SimpleNamespace(bsize=s.f_bsize, blocks=s.f_blocks, bfree=s.f_bfree,
                               bavail=s.f_bavail, files=s.f_files, ffree=s.f_ffree,
                               namelen=s.f_namemax)

    def clunk(self, fid: int) -> None:
        self.calls["clunk"] += 1
        self.paths.pop(fid, None)
        self.opened.discard(fid)


def errno_of(fn, *a) -> int:  # type: ignore[no-untyped-def]
    with pytest.raises(SyscallError) as ei:
        fn(*a)
    return ei.value.errno


def snapshot(root: Path) -> dict[str, tuple[int, int, bytes]]:
    """Every host path under root with its mode, mtime and contents (or link body)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            p = os.path.join(dirpath, n)
            st = os.lstat(p)
            body = (os.readlink(p).encode() if pystat.S_ISLNK(st.st_mode)
                    else Path(p).read_bytes() if pystat.S_ISREG(st.st_mode) else b"")
            out[p] = (st.st_mode, st.st_mtime_ns, body)
    return out


@pytest.fixture
def host(tmp_path: Path) -> Path:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "passwd").write_bytes(b"root:x:0:0\n")
    (tmp_path / "etc" / "hosts").write_bytes(b"127.0.0.1 localhost\n")
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "tool").write_bytes(b"\x7fELF" + bytes(range(256)) * 700)
    os.chmod(tmp_path / "bin" / "tool", 0o755)
    (tmp_path / "bin" / "sh").symlink_to("tool")
    (tmp_path / "empty").mkdir()
    (tmp_path / "full").mkdir()
    for i in range(5):
        (tmp_path / "full" / f"f{i}").write_bytes(b"%d" % i)
    os.utime(tmp_path / "etc" / "passwd", ns=(1_000_000_000, 1_500_000_000))
    return tmp_path


class Env:
    def __init__(self, host: Path) -> None:
        self.host = host
        self.client = FakeGoferClient(bytes(host))
        self.lower = GoferFs(self.client, 0)
        self.fs = OverlayFs(self.lower)
        self.ctx = FsContext.for_namespace(MountNamespace(self.fs, source="overlay"))
        self.before = snapshot(host)

    def read(self, path: bytes) -> bytes:
        return vfs.open(self.ctx, None, path, O_RDONLY).read(1 << 20)

    def names(self, path: bytes) -> list[bytes]:
        d = vfs.open(self.ctx, None, path, O_RDONLY)
        assert isinstance(d, DirectoryDescription)
        return [e.name for e in d.readdir(10_000)][2:]

    def assert_host_untouched(self) -> None:
        assert snapshot(self.host) == self.before


@pytest.fixture
def env(host: Path) -> Env:
    return Env(host)


def test_goferfs_read_only_and_cached(host: Path) -> None:
    client = FakeGoferClient(bytes(host))
    fs = GoferFs(client, 0)
    ctx = FsContext.for_namespace(MountNamespace(fs, source="9p"))
    data = (host / "bin" / "tool").read_bytes()
    assert len(data) > 2 * CHUNK
    f = vfs.open(ctx, None, b"/bin/sh", O_RDONLY)
    assert f.read(len(data) + 10) == data
    reads = client.calls["read"]
    walks = client.calls["walk"]
    g = vfs.open(ctx, None, b"/bin/tool", O_RDONLY)
    assert g.pread(100, CHUNK - 50) == data[CHUNK - 50:CHUNK + 50]
    assert g.read_pages(0, 8192) == data[:8192]  # what mmap would ask for
    assert client.calls["read"] == reads  # served by the page cache
    assert client.calls["walk"] == walks  # each path walked once
    st = vfs.stat(ctx, None, b"/etc/passwd")
    host_st = os.stat(host / "etc" / "passwd")
    assert (st.ino, st.size, st.mode, st.mtime_ns) == (
        host_st.st_ino, host_st.st_size, host_st.st_mode, host_st.st_mtime_ns)
    assert errno_of(vfs.open, ctx, None, b"/etc/passwd", O_WRONLY) == errno.EROFS
    assert errno_of(vfs.open, ctx, None, b"/etc/new", O_CREAT | O_WRONLY) == errno.EROFS
    assert errno_of(vfs.mkdir, ctx, None, b"/x", 0o755) == errno.EROFS
    assert errno_of(vfs.unlink, ctx, None, b"/etc/passwd") == errno.EROFS
    assert errno_of(vfs.chmod, ctx, None, b"/etc/passwd", 0o600) == errno.EROFS
    assert errno_of(vfs.stat, ctx, None, b"/nope") == errno.ENOENT
    assert vfs.readlink(ctx, None, b"/bin/sh") == b"tool"
    assert vfs.statfs(ctx, None, b"/").flags & 1
    d = vfs.open(ctx, None, b"/full", O_RDONLY)
    assert isinstance(d, DirectoryDescription)
    ents = d.readdir(100)
    assert [e.name for e in ents] == [b".", b"..", b"f0", b"f1", b"f2", b"f3", b"f4"]
    assert ents[2].ino == os.stat(host / "full" / "f0").st_ino
    fs.close()
    assert not client.paths


def test_overlay_reads_through_with_host_inode_numbers(env: Env) -> None:
    assert env.read(b"/etc/passwd") == b"root:x:0:0\n"
    st = vfs.stat(env.ctx, None, b"/etc/passwd")
    assert st.ino == os.stat(env.host / "etc" / "passwd").st_ino
    assert st.dev == env.fs.dev
    assert env.names(b"/") == [b"bin", b"empty", b"etc", b"full"]
    assert vfs.stat(env.ctx, None, b"/").ino == os.stat(env.host).st_ino


def test_copy_up_on_write_keeps_ino_and_attrs(env: Env) -> None:
    before = vfs.stat(env.ctx, None, b"/etc/passwd")
    f = vfs.open(env.ctx, None, b"/etc/passwd", O_WRONLY | O_APPEND)
    after_open = vfs.stat(env.ctx, None, b"/etc/passwd")
    assert (after_open.ino, after_open.mode, after_open.mtime_ns, after_open.size) == (
        before.ino, before.mode, before.mtime_ns, before.size)
    f.write(b"user:x:1000:1000\n")
    assert env.read(b"/etc/passwd") == b"root:x:0:0\nuser:x:1000:1000\n"
    assert vfs.stat(env.ctx, None, b"/etc/passwd").ino == before.ino
    # a description opened read-only before copy-up sees the new data
    big = vfs.open(env.ctx, None, b"/bin/tool", O_RDONLY)
    vfs.open(env.ctx, None, b"/bin/tool", O_RDWR).pwrite(b"PATCHED", 4)
    assert big.pread(11, 0) == b"\x7fELFPATCHED"
    assert vfs.stat(env.ctx, None, b"/bin/tool").size == os.stat(env.host / "bin/tool").st_size
    env.assert_host_untouched()


def test_truncate_chmod_chown_utimens_copy_up(env: Env) -> None:
    vfs.open(env.ctx, None, b"/etc/hosts", O_WRONLY | O_TRUNC)
    assert env.read(b"/etc/hosts") == b""
    vfs.truncate(env.ctx, None, b"/etc/passwd", 4)
    assert env.read(b"/etc/passwd") == b"root"
    vfs.chmod(env.ctx, None, b"/full/f1", 0o600)
    assert vfs.stat(env.ctx, None, b"/full/f1").mode == 0o100600
    vfs.chown(env.ctx, None, b"/bin/sh", 12, 34, follow=False)
    st = vfs.stat(env.ctx, None, b"/bin/sh", follow=False)
    assert (st.uid, st.gid) == (12, 34) and vfs.readlink(env.ctx, None, b"/bin/sh") == b"tool"
    vfs.utimens(env.ctx, None, b"/full/f2", 7, 8)
    assert vfs.stat(env.ctx, None, b"/full/f2").mtime_ns == 8
    assert env.read(b"/full/f2") == b"2"
    env.assert_host_untouched()


def test_unlink_whiteout_and_recreate(env: Env) -> None:
    lower_ino = vfs.stat(env.ctx, None, b"/etc/hosts").ino
    vfs.unlink(env.ctx, None, b"/etc/hosts")
    assert errno_of(vfs.stat, env.ctx, None, b"/etc/hosts") == errno.ENOENT
    assert env.names(b"/etc") == [b"passwd"]
    f = vfs.open(env.ctx, None, b"/etc/hosts", O_CREAT | O_WRONLY, 0o644)
    f.write(b"new")
    assert env.read(b"/etc/hosts") == b"new"
    ino = vfs.stat(env.ctx, None, b"/etc/hosts").ino
    assert ino != lower_ino and ino >= UPPER_INO_BASE
    assert env.names(b"/etc") == [b"hosts", b"passwd"]  # upper first, no duplicate
    vfs.unlink(env.ctx, None, b"/etc/hosts")
    assert env.names(b"/etc") == [b"passwd"]
    env.assert_host_untouched()


def test_rmdir_merged_and_opaque_recreate(env: Env) -> None:
    assert errno_of(vfs.rmdir, env.ctx, None, b"/full") == errno.ENOTEMPTY
    for i in range(5):
        vfs.unlink(env.ctx, None, b"/full/f%d" % i)
    assert env.names(b"/full") == []
    vfs.rmdir(env.ctx, None, b"/full")
    vfs.rmdir(env.ctx, None, b"/empty")
    assert env.names(b"/") == [b"bin", b"etc"]
    vfs.mkdir(env.ctx, None, b"/full", 0o700)
    assert env.names(b"/full") == []  # opaque: the lower files stay hidden
    assert errno_of(vfs.stat, env.ctx, None, b"/full/f0") == errno.ENOENT
    assert vfs.stat(env.ctx, None, b"/full").mode == 0o40700
    env.assert_host_untouched()


def test_rename_rules(env: Env) -> None:
    ino = vfs.stat(env.ctx, None, b"/etc/passwd").ino
    vfs.rename(env.ctx, None, b"/etc/passwd", None, b"/passwd.bak")
    assert env.read(b"/passwd.bak") == b"root:x:0:0\n"
    assert vfs.stat(env.ctx, None, b"/passwd.bak").ino == ino
    assert errno_of(vfs.stat, env.ctx, None, b"/etc/passwd") == errno.ENOENT
    # a directory with a lower part: EXDEV (mv falls back to copy + delete)
    assert errno_of(vfs.rename, env.ctx, None, b"/etc", None, b"/etc2") == errno.EXDEV
    vfs.mkdir(env.ctx, None, b"/newdir", 0o755)
    vfs.open(env.ctx, None, b"/newdir/x", O_CREAT | O_WRONLY).write(b"x")
    vfs.rename(env.ctx, None, b"/newdir", None, b"/moved")
    assert env.read(b"/moved/x") == b"x"
    # an upper directory renamed over an empty lower one hides it
    vfs.rename(env.ctx, None, b"/moved", None, b"/empty")
    assert env.names(b"/empty") == [b"x"]
    # replacing a lower file
    vfs.rename(env.ctx, None, b"/full/f0", None, b"/full/f1")
    assert env.read(b"/full/f1") == b"0"
    assert env.names(b"/full") == [b"f1", b"f2", b"f3", b"f4"]
    env.assert_host_untouched()


def test_hard_link_and_symlink(env: Env) -> None:
    vfs.link(env.ctx, None, b"/etc/passwd", None, b"/etc/passwd.link")
    assert vfs.stat(env.ctx, None, b"/etc/passwd").nlink == 2
    vfs.open(env.ctx, None, b"/etc/passwd.link", O_WRONLY | O_APPEND).write(b"more\n")
    assert env.read(b"/etc/passwd") == b"root:x:0:0\nmore\n"
    vfs.symlink(env.ctx, b"/etc/passwd", None, b"/bin/pw")
    assert env.read(b"/bin/pw") == b"root:x:0:0\nmore\n"
    assert env.read(b"/bin/sh")[:4] == b"\x7fELF"  # lower symlink, followed
    env.assert_host_untouched()


def test_getdents_ino_matches_stat(env: Env) -> None:
    vfs.open(env.ctx, None, b"/etc/hosts", O_WRONLY | O_APPEND).write(b"x")  # copied up
    vfs.open(env.ctx, None, b"/etc/new", O_CREAT | O_WRONLY)
    d = vfs.open(env.ctx, None, b"/etc", O_RDONLY)
    assert isinstance(d, DirectoryDescription)
    buf = d.getdents64(4096)
    pos = 0
    seen = {}
    while pos < len(buf):
        ino, _off, reclen, _t = struct.unpack_from("<QqHB", buf, pos)
        seen[buf[pos + 19:pos + reclen].split(b"\0")[0]] = ino
        pos += reclen
    assert set(seen) == {b".", b"..", b"hosts", b"new", b"passwd"}
    for name in (b"hosts", b"new", b"passwd"):
        assert seen[name] == vfs.stat(env.ctx, None, b"/etc/" + name).ino
    assert seen[b"hosts"] == os.stat(env.host / "etc" / "hosts").st_ino
