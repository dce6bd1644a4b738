"""Unit tests of the Gofer's request handler (gofer/server.py FileServer).

No process and no channel: frames go straight into FileServer.handle against a
temporary directory, so every 9P rule (fids, walks, opens, readdir cookies,
read-only mode, malformed input) is checked in isolation. End-to-end tests with
a real, confined Gofer process are in test_gofer_escape.py.
"""

from __future__ import annotations

import errno
import os
import stat
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hst

from gofer import p9
from gofer.server import FileServer

ROOT_FID = 1


class Conn:
    """Speaks 9P to a FileServer directly, checking every reply's tag."""

    def __init__(self, server: FileServer) -> None:
        self.server = server
        self.tag = 0

    def rpc(self, msg: p9.Message) -> p9.Message:
        self.tag = (self.tag + 1) % 0xFFFF
        tag, reply = p9.decode(self.server.handle(p9.encode(msg, self.tag)))
        assert tag == self.tag
        return reply

    def ok(self, msg: p9.Message) -> p9.Message:
        reply = self.rpc(msg)
        assert not isinstance(reply, p9.Rlerror), (msg, errno.errorcode.get(reply.ecode))
        assert reply.TYPE == msg.TYPE + 1
        return reply

    def err(self, msg: p9.Message) -> int:
        reply = self.rpc(msg)
        assert isinstance(reply, p9.Rlerror), (msg, reply)
        return reply.ecode

    def walk(self, names: list[str], newfid: int, fid: int = ROOT_FID) -> p9.Rwalk:
        reply = self.ok(p9.Twalk(fid, newfid, tuple(names)))
        assert isinstance(reply, p9.Rwalk)
        return reply

    def open(self, names: list[str], newfid: int, flags: int = os.O_RDONLY) -> None:
        self.walk(names, newfid)
        self.ok(p9.Tlopen(newfid, flags))

    def readdir_all(self, fid: int, count: int) -> list[p9.Dirent]:
        out: list[p9.Dirent] = []
        offset = 0
        while True:
            r = self.ok(p9.Treaddir(fid, offset, count))
            assert isinstance(r, p9.Rreaddir) and len(r.data) <= count
            ents = p9.decode_dirents(r.data)
            if not ents:
                return out
            out += ents
            offset = ents[-1].offset


def _tree(root: Path) -> None:
    (root / "sub" / "deep").mkdir(parents=True)
    (root / "sub" / "f").write_bytes(b"hello world\n")
    (root / "file").write_bytes(b"0123456789")
    (root / "abs").symlink_to("/etc/passwd")
    (root / "rel").symlink_to("../../..")


def _server(root: Path, **kw: object) -> Iterator[Conn]:
    fd = os.open(root, os.O_PATH | os.O_DIRECTORY)
    server = FileServer(fd, **kw)  # type: ignore[arg-type]
    conn = Conn(server)
    conn.ok(p9.Tversion(65536, "9P2000.L"))
    conn.ok(p9.Tattach(ROOT_FID, p9.P9_NOFID, "root", "", 0))
    try:
        yield conn
    finally:
        server.close()
        os.close(fd)
        assert server.fids == {}


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "root"
    r.mkdir()
    _tree(r)
    return r


@pytest.fixture
def conn(root: Path) -> Iterator[Conn]:
    yield from _server(root)


@pytest.fixture
def ro(root: Path) -> Iterator[Conn]:
    yield from _server(root, readonly=True)


# -- session and fids ------------------------------------------------------------


def test_version_negotiates_msize(conn: Conn) -> None:
    r = conn.ok(p9.Tversion(1 << 30, "9P2000.L"))
    assert r == p9.Rversion(conn.server.max_msize, "9P2000.L")
    assert conn.ok(p9.Tversion(8192, "9P2000")) == p9.Rversion(8192, "unknown")
    assert conn.err(p9.Tversion(100, "9P2000.L")) == errno.EINVAL


def test_version_resets_fids(conn: Conn) -> None:
    conn.ok(p9.Tversion(8192, "9P2000.L"))
    assert conn.err(p9.Tgetattr(ROOT_FID, p9.P9_GETATTR_BASIC)) == errno.EBADF


def test_unknown_fid_is_ebadf(conn: Conn) -> None:
    for msg in (
        p9.Tgetattr(77, p9.P9_GETATTR_BASIC),
        p9.Twalk(77, 78, ()),
        p9.Tlopen(77, 0),
        p9.Tread(77, 0, 10),
        p9.Tclunk(77),
        p9.Treadlink(77),
    ):
        assert conn.err(msg) == errno.EBADF


def test_fid_in_use_is_rejected(conn: Conn) -> None:
    conn.walk(["sub"], 2)
    assert conn.err(p9.Tattach(2, p9.P9_NOFID, "root", "", 0)) == errno.EBADF
    assert conn.err(p9.Twalk(ROOT_FID, 2, ("file",))) == errno.EBADF
    # The failed walk left fid 2 alone.
    r = conn.ok(p9.Tgetattr(2, p9.P9_GETATTR_BASIC))
    assert stat.S_ISDIR(r.mode)


def test_fid_limit_is_enfile(root: Path) -> None:
    for conn in _server(root, max_fids=10):
        for fid in range(2, 11):
            conn.walk([], fid)
        assert conn.err(p9.Twalk(ROOT_FID, 11, ())) == errno.ENFILE
        conn.ok(p9.Tclunk(5))
        conn.walk([], 11)


def test_clunk_frees_fid(conn: Conn) -> None:
    conn.walk(["file"], 2)
    conn.ok(p9.Tclunk(2))
    assert conn.err(p9.Tclunk(2)) == errno.EBADF
    conn.walk(["sub"], 2)


def test_flush_and_unsupported(conn: Conn) -> None:
    assert conn.ok(p9.Tflush(3)) == p9.Rflush()
    assert conn.err(p9.Txattrwalk(ROOT_FID, 2, "user.x")) == errno.EOPNOTSUPP
    assert conn.err(p9.Rclunk()) == errno.EINVAL  # an R-message is no request


# -- walk ------------------------------------------------------------------------------


def test_walk_and_getattr(conn: Conn, root: Path) -> None:
    r = conn.walk(["sub", "f"], 2)
    assert [q.type for q in r.qids] == [p9.P9_QTDIR, p9.P9_QTFILE]
    st = os.stat(root / "sub" / "f")
    assert r.qids[1].path == st.st_ino
    a = conn.ok(p9.Tgetattr(2, p9.P9_GETATTR_ALL))
    assert isinstance(a, p9.Rgetattr)
    assert (a.mode, a.size, a.nlink, a.uid, a.gid) == (
        st.st_mode,
        st.st_size,
        st.st_nlink,
        st.st_uid,
        st.st_gid,
    )
    assert a.mtime_sec * 10**9 + a.mtime_nsec == st.st_mtime_ns
    assert a.valid & p9.P9_GETATTR_BASIC == p9.P9_GETATTR_BASIC


def test_walkgetattr_is_walk_then_getattr(conn: Conn, root: Path) -> None:
    """Twalkgetattr (pyvisor's one-round-trip walk + getattr): the qids and
    fid of Twalk, the attributes of Tgetattr; a walk that stops early makes
    no fid and zero attributes; the first name missing is ENOENT."""
    r = conn.ok(p9.Twalkgetattr(ROOT_FID, 2, ("sub", "f")))
    assert isinstance(r, p9.Rwalkgetattr)
    a = conn.ok(p9.Tgetattr(2, p9.P9_GETATTR_BASIC))
    assert isinstance(a, p9.Rgetattr)
    assert r.qids == conn.walk(["sub", "f"], 3).qids
    assert r.qids[-1] == a.qid
    fields = ("mode", "uid", "gid", "nlink", "rdev", "size", "blksize", "blocks",
              "atime_sec", "atime_nsec", "mtime_sec", "mtime_nsec", "ctime_sec", "ctime_nsec")
    assert [getattr(r, f) for f in fields] == [getattr(a, f) for f in fields]
    assert r.size == (root / "sub" / "f").stat().st_size
    partial = conn.ok(p9.Twalkgetattr(ROOT_FID, 4, ("sub", "missing")))
    assert isinstance(partial, p9.Rwalkgetattr)
    assert len(partial.qids) == 1 and partial.mode == 0
    assert conn.err(p9.Tgetattr(4, p9.P9_GETATTR_BASIC)) == errno.EBADF
    assert conn.err(p9.Twalkgetattr(ROOT_FID, 4, ("missing",))) == errno.ENOENT
    for fid in (2, 3):
        conn.ok(p9.Tclunk(fid))


def test_lopenread_opens_on_first_read(conn: Conn) -> None:
    """Tlopenread (pyvisor's extension): the first read opens the fid
    read-only (a later Tlopen then finds it open: EINVAL), later ones just
    read; an unknown fid is EBADF, a directory EISDIR."""
    conn.walk(["file"], 2)
    r = conn.ok(p9.Tlopenread(2, 2, 5))
    assert isinstance(r, p9.Rlopenread) and r.data == b"23456"
    assert conn.err(p9.Tlopen(2, os.O_RDONLY)) == errno.EINVAL
    r = conn.ok(p9.Tlopenread(2, 8, 100))
    assert isinstance(r, p9.Rlopenread) and r.data == b"89"
    r = conn.ok(p9.Tread(2, 0, 3))
    assert isinstance(r, p9.Rread) and r.data == b"012"
    assert conn.err(p9.Tlopenread(9, 0, 1)) == errno.EBADF
    conn.walk(["sub"], 3)
    assert conn.err(p9.Tlopenread(3, 0, 1)) == errno.EISDIR
    for fid in (2, 3):
        conn.ok(p9.Tclunk(fid))


def test_walk_partial_creates_no_fid(conn: Conn) -> None:
    r = conn.walk(["sub", "missing", "x"], 2)
    assert len(r.qids) == 1
    assert conn.err(p9.Tgetattr(2, p9.P9_GETATTR_BASIC)) == errno.EBADF
    assert conn.err(p9.Twalk(ROOT_FID, 2, ("missing",))) == errno.ENOENT


def test_walk_clone_and_replace(conn: Conn) -> None:
    conn.walk([], 2)  # clone
    conn.walk(["sub"], 2, fid=2)  # newfid == fid: the fid moves
    r = conn.ok(p9.Tgetattr(2, p9.P9_GETATTR_BASIC))
    assert stat.S_ISDIR(r.mode)


def test_walk_dotdot_clamps_at_root(conn: Conn) -> None:
    root_qid = conn.ok(p9.Tgetattr(ROOT_FID, p9.P9_GETATTR_BASIC)).qid
    r = conn.walk([".."] * 10, 2)
    assert r.qids[-1] == root_qid
    r = conn.walk(["sub", "deep", "..", "..", "..", "sub"], 3)
    assert r.qids[2].path == r.qids[0].path
    assert r.qids[3] == root_qid


@pytest.mark.parametrize(
    ("name", "err"),
    [
        ("a/b", errno.EINVAL),
        ("/etc", errno.EINVAL),
        ("../etc", errno.EINVAL),
        (".", errno.EINVAL),
        ("", errno.ENOENT),
        ("f\0x", errno.EINVAL),
    ],
)
def test_walk_rejects_bad_names(conn: Conn, name: str, err: int) -> None:
    assert conn.err(p9.Twalk(ROOT_FID, 2, (name,))) == err


def test_symlinks_are_not_followed(conn: Conn) -> None:
    r = conn.walk(["abs"], 2)
    assert r.qids[0].type == p9.P9_QTSYMLINK
    assert conn.ok(p9.Treadlink(2)) == p9.Rreadlink("/etc/passwd")
    assert conn.err(p9.Tlopen(2, os.O_RDONLY)) == errno.ELOOP
    r = conn.walk(["rel", "etc"], 3)  # partial: stops at the link
    assert len(r.qids) == 1
    assert conn.err(p9.Twalk(2, 4, ("x",))) == errno.ENOTDIR
    assert conn.err(p9.Tlcreate(2, "pwn", os.O_RDWR, 0o644, 0)) == errno.ENOTDIR


def test_readlink_of_non_symlink_is_einval(conn: Conn) -> None:
    conn.walk(["file"], 2)
    assert conn.err(p9.Treadlink(2)) == errno.EINVAL


# -- open and I/O ----------------------------------------------------------------------


def test_lopen_read_write(conn: Conn, root: Path) -> None:
    conn.open(["file"], 2, os.O_RDWR)
    assert conn.ok(p9.Tread(2, 3, 4)) == p9.Rread(b"3456")
    assert conn.ok(p9.Tread(2, 100, 4)) == p9.Rread(b"")
    assert conn.ok(p9.Twrite(2, 8, b"ABCD")) == p9.Rwrite(4)
    assert (root / "file").read_bytes() == b"01234567ABCD"
    assert conn.err(p9.Tlopen(2, os.O_RDONLY)) == errno.EINVAL  # already open
    conn.open(["sub", "f"], 3)
    assert conn.err(p9.Twrite(3, 0, b"x")) == errno.EBADF  # opened read-only
    conn.walk(["file"], 4)
    assert conn.err(p9.Tread(4, 0, 1)) == errno.EBADF  # not opened


def test_lopen_strips_create_and_keeps_trunc(conn: Conn, root: Path) -> None:
    conn.open(["file"], 2, os.O_WRONLY | os.O_TRUNC | os.O_CREAT | os.O_APPEND)
    assert (root / "file").read_bytes() == b""
    conn.ok(p9.Twrite(2, 5, b"x"))  # no O_APPEND: the offset is honoured
    assert (root / "file").read_bytes() == b"\0" * 5 + b"x"


def test_read_is_capped_by_msize(conn: Conn, root: Path) -> None:
    (root / "big").write_bytes(b"z" * 100_000)
    conn.ok(p9.Tversion(8192, "9P2000.L"))
    conn.ok(p9.Tattach(ROOT_FID, p9.P9_NOFID, "root", "", 0))
    conn.open(["big"], 2)
    r = conn.ok(p9.Tread(2, 0, 1 << 20))
    assert len(r.data) == 8192 - 11


def test_handle_into_matches_handle(conn: Conn) -> None:
    conn.open(["sub", "f"], 2)
    frame = p9.encode(p9.Tread(2, 6, 100), 9)
    out = bytearray(4096)
    n = conn.server.handle_into(memoryview(frame), memoryview(out))
    assert isinstance(n, int)
    assert bytes(out[:n]) == conn.server.handle(frame)
    assert p9.decode(bytes(out[:n])) == (9, p9.Rread(b"world\n"))


def test_lopen_refuses_a_replaced_file(conn: Conn, root: Path) -> None:
    """A fid names an inode: if the name now means another file, ESTALE."""
    conn.walk(["file"], 2)
    os.rename(root / "file", root / "old")
    (root / "file").write_bytes(b"impostor")
    assert conn.err(p9.Tlopen(2, os.O_RDONLY)) == errno.ESTALE


def test_device_nodes_are_never_opened(conn: Conn, root: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("mknod of a device node needs root")
    os.mknod(root / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    conn.walk(["null"], 2)
    assert conn.err(p9.Tlopen(2, os.O_RDWR)) == errno.EPERM
    conn.walk([], 3)
    assert conn.err(p9.Tmknod(3, "d", stat.S_IFBLK | 0o600, 8, 0, 0)) == errno.EPERM


def test_readdir_5000_entries_resumed(conn: Conn, root: Path) -> None:
    big = root / "many"
    big.mkdir()
    names = {f"entry-{i:05d}-{'x' * (i % 40)}" for i in range(5000)}
    for n in names:
        (big / n).touch()
    (big / "adir").mkdir()
    conn.open(["many"], 2, os.O_RDONLY | os.O_DIRECTORY)
    ents = conn.readdir_all(2, 4096)
    assert [e.name for e in ents] == sorted(names | {"adir"})
    assert [e.offset for e in ents] == list(range(1, len(ents) + 1))
    assert {e.type for e in ents} == {p9.P9_DT_REG, p9.P9_DT_DIR}
    assert next(e for e in ents if e.name == "adir").qid.type == p9.P9_QTDIR
    # Resume from a cookie in the middle, after other requests on other fids.
    conn.ok(p9.Tgetattr(ROOT_FID, p9.P9_GETATTR_BASIC))
    r = conn.ok(p9.Treaddir(2, ents[2999].offset, 200))
    assert p9.decode_dirents(r.data)[0].name == ents[3000].name
    # Past the end: empty, not an error.
    assert conn.ok(p9.Treaddir(2, 10**9, 4096)) == p9.Rreaddir(b"")


def test_readdir_needs_an_open_directory(conn: Conn) -> None:
    assert conn.err(p9.Treaddir(ROOT_FID, 0, 4096)) == errno.EBADF
    conn.open(["file"], 2)
    assert conn.err(p9.Treaddir(2, 0, 4096)) == errno.ENOTDIR


# -- namespace changes ------------------------------------------------------------------


def test_create_mkdir_symlink_mknod_link_unlink(conn: Conn, root: Path) -> None:
    conn.walk(["sub"], 2)
    r = conn.ok(p9.Tlcreate(2, "new", os.O_RDWR, 0o640, 0))
    assert r.qid.path == os.stat(root / "sub" / "new").st_ino
    conn.ok(p9.Twrite(2, 0, b"data"))  # fid 2 is now the new, open file
    assert (root / "sub" / "new").read_bytes() == b"data"
    assert stat.S_IMODE(os.stat(root / "sub" / "new").st_mode) == 0o640
    conn.walk(["sub"], 3)
    assert conn.err(p9.Tlcreate(3, "new", os.O_RDWR, 0o640, 0)) == errno.EEXIST
    conn.ok(p9.Tmkdir(3, "d", 0o750, 0))
    assert (root / "sub" / "d").is_dir()
    conn.ok(p9.Tsymlink(3, "sl", "/nowhere", 0))
    assert os.readlink(root / "sub" / "sl") == "/nowhere"
    conn.ok(p9.Tmknod(3, "fifo", stat.S_IFIFO | 0o600, 0, 0, 0))
    assert stat.S_ISFIFO(os.lstat(root / "sub" / "fifo").st_mode)
    conn.ok(p9.Tlink(3, 2, "hard"))
    assert os.stat(root / "sub" / "hard").st_ino == os.stat(root / "sub" / "new").st_ino
    for name in ("hard", "sl", "fifo"):
        conn.ok(p9.Tunlinkat(3, name, 0))
    assert conn.err(p9.Tunlinkat(3, "d", 0)) == errno.EISDIR
    conn.ok(p9.Tunlinkat(3, "d", p9.P9_AT_REMOVEDIR))
    assert sorted(os.listdir(root / "sub")) == ["deep", "f", "new"]


@pytest.mark.parametrize("name", ["", ".", "..", "a/b", "x\0"])
def test_create_rejects_bad_names(conn: Conn, name: str) -> None:
    assert conn.err(p9.Tmkdir(ROOT_FID, name, 0o755, 0)) == errno.EINVAL
    assert conn.err(p9.Tunlinkat(ROOT_FID, name, 0)) == errno.EINVAL


def test_rename_keeps_fids_right(conn: Conn, root: Path) -> None:
    conn.walk(["sub", "deep"], 2)
    conn.walk(["sub", "f"], 3)
    conn.ok(p9.Trenameat(ROOT_FID, "sub", ROOT_FID, "moved"))
    assert (root / "moved" / "f").exists()
    conn.ok(p9.Tlopen(3, os.O_RDONLY))  # reopened under its new name
    assert conn.ok(p9.Tread(3, 0, 5)) == p9.Rread(b"hello")
    r = conn.walk(["..", "f"], 4, fid=2)
    assert r.qids[1].path == os.stat(root / "moved" / "f").st_ino
    conn.walk(["moved"], 5)
    conn.ok(p9.Trename(3, 5, "g"))
    assert (root / "moved" / "g").read_bytes() == b"hello world\n"


def test_remove_clunks(conn: Conn, root: Path) -> None:
    conn.walk(["file"], 2)
    conn.ok(p9.Tremove(2))
    assert not (root / "file").exists()
    assert conn.err(p9.Tclunk(2)) == errno.EBADF
    assert conn.err(p9.Tremove(ROOT_FID)) == errno.EBUSY  # and the root fid is gone too
    assert conn.err(p9.Tgetattr(ROOT_FID, 0)) == errno.EBADF


def test_setattr(conn: Conn, root: Path) -> None:
    conn.walk(["file"], 2)
    valid = (
        p9.P9_SETATTR_MODE
        | p9.P9_SETATTR_UID
        | p9.P9_SETATTR_GID
        | p9.P9_SETATTR_SIZE
        | p9.P9_SETATTR_ATIME
        | p9.P9_SETATTR_ATIME_SET
        | p9.P9_SETATTR_MTIME
        | p9.P9_SETATTR_MTIME_SET
    )
    uid, gid = (1234, 4321) if os.geteuid() == 0 else (os.getuid(), os.getgid())
    conn.ok(p9.Tsetattr(2, valid, 0o600, uid, gid, 3, 1_000, 5, 2_000, 7))
    st = os.stat(root / "file")
    assert stat.S_IMODE(st.st_mode) == 0o600
    assert (st.st_uid, st.st_gid, st.st_size) == (uid, gid, 3)
    assert (st.st_atime_ns, st.st_mtime_ns) == (1_000 * 10**9 + 5, 2_000 * 10**9 + 7)
    # MTIME without MTIME_SET: "now".
    conn.ok(p9.Tsetattr(2, p9.P9_SETATTR_MTIME, 0, 0, 0, 0, 0, 0, 0, 0))
    assert os.stat(root / "file").st_mtime_ns > 2_000 * 10**9 + 7
    assert conn.err(p9.Tsetattr(2, valid, 0o600, uid, gid, 3, 1, 10**9, 2, 0)) == errno.EINVAL


# -- read-only export --------------------------------------------------------------------


def test_readonly_gives_erofs(ro: Conn, root: Path) -> None:
    before = sorted(os.listdir(root))
    ro.walk(["sub"], 2)
    ro.walk(["file"], 3)
    for msg in (
        p9.Tlopen(3, os.O_WRONLY),
        p9.Tlopen(3, os.O_RDONLY | os.O_TRUNC),
        p9.Tlcreate(2, "x", os.O_RDWR, 0o644, 0),
        p9.Tmkdir(2, "x", 0o755, 0),
        p9.Tsymlink(2, "x", "y", 0),
        p9.Tmknod(2, "x", stat.S_IFREG | 0o644, 0, 0, 0),
        p9.Tlink(2, 3, "x"),
        p9.Trenameat(2, "f", 2, "g"),
        p9.Tunlinkat(2, "f", 0),
        p9.Tsetattr(3, p9.P9_SETATTR_SIZE, 0, 0, 0, 0, 0, 0, 0, 0),
        p9.Tremove(3),
    ):
        assert ro.err(msg) == errno.EROFS, msg
    ro.ok(p9.Tlopen(3, os.O_RDONLY))
    assert ro.err(p9.Twrite(3, 0, b"x")) == errno.EROFS
    assert ro.ok(p9.Tread(3, 0, 4)) == p9.Rread(b"0123")
    assert sorted(os.listdir(root)) == before
    assert (root / "file").read_bytes() == b"0123456789"


# -- malformed input ---------------------------------------------------------------------


def _assert_still_serves(conn: Conn) -> None:
    r = conn.ok(p9.Tgetattr(ROOT_FID, p9.P9_GETATTR_BASIC))
    assert stat.S_ISDIR(r.mode)


def _raw(conn: Conn, frame: bytes) -> tuple[int, p9.Message]:
    return p9.decode(conn.server.handle(frame))


def test_truncated_frame(conn: Conn) -> None:
    good = p9.encode(p9.Twalk(ROOT_FID, 2, ("sub",)), 42)
    tag, reply = _raw(conn, good[:-1])  # size field now lies
    assert (tag, reply) == (42, p9.Rlerror(errno.EPROTO))
    tag, reply = _raw(conn, good[:5])
    assert (tag, reply) == (p9.P9_NOTAG, p9.Rlerror(errno.EPROTO))
    _assert_still_serves(conn)


def test_bad_type(conn: Conn) -> None:
    frame = struct.pack("<IBH", 7 + 4, 250, 43) + b"\0\0\0\0"
    assert _raw(conn, frame) == (43, p9.Rlerror(errno.EINVAL))
    _assert_still_serves(conn)


def test_bad_string_length(conn: Conn) -> None:
    body = struct.pack("<IIH", ROOT_FID, 2, 1) + struct.pack("<H", 500) + b"sub"
    frame = struct.pack("<IBH", 7 + len(body), p9.MsgType.TWALK, 44) + body
    assert _raw(conn, frame) == (44, p9.Rlerror(errno.EINVAL))
    _assert_still_serves(conn)


def test_trailing_bytes_and_too_many_names(conn: Conn) -> None:
    good = p9.encode(p9.Tclunk(ROOT_FID), 45)
    frame = struct.pack("<I", len(good) + 3) + good[4:] + b"abc"
    assert _raw(conn, frame) == (45, p9.Rlerror(errno.EINVAL))
    body = struct.pack("<IIH", ROOT_FID, 2, 17) + b"\1\0a" * 17
    frame = struct.pack("<IBH", 7 + len(body), p9.MsgType.TWALK, 46) + body
    assert _raw(conn, frame) == (46, p9.Rlerror(errno.EINVAL))
    _assert_still_serves(conn)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=hst.binary(max_size=200))
def test_random_bytes_never_crash(conn: Conn, data: bytes) -> None:
    reply = conn.server.handle(data)
    p9.decode(reply)  # always one well-formed reply frame
    _assert_still_serves(conn)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    mtype=hst.sampled_from(sorted(t for t in p9.REGISTRY if t % 2 == 0)),
    body=hst.binary(max_size=120),
)
def test_random_bodies_never_crash(conn: Conn, mtype: int, body: bytes) -> None:
    """Well-framed requests of every type with random bodies: whatever they
    decode to (attach, walk, unlink, ...), the server answers and keeps going.
    Tversion is left out: a valid one would end the session's fids."""
    if mtype == p9.MsgType.TVERSION:
        return
    frame = struct.pack("<IBH", 7 + len(body), mtype, 47) + body
    tag, _ = p9.decode(conn.server.handle(frame))
    assert tag == 47
    if ROOT_FID in conn.server.fids:  # it may have been clunked, removed or lcreated on
        conn.ok(p9.Tclunk(ROOT_FID))
    conn.ok(p9.Tattach(ROOT_FID, p9.P9_NOFID, "root", "", 0))
    _assert_still_serves(conn)
