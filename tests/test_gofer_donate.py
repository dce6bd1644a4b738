"""Host descriptors donated by the Gofer (Tlopenfd over SCM_RIGHTS, gofer/donate.py).

What must hold:

- The Gofer donates only the read-only descriptor of a regular file of a
  read-only attach point; a writable attach point, a directory, or a Gofer
  without a donation socket answer donated=0 and reads keep working over 9P.
- The Sentry's descriptor cannot write; a malformed message on the socket
  leaves nothing open.
- The Sentry holds at most its LRU's bound of them, however many files are
  opened and closed, and none once the files are released.
- Both filters allow just what donation needs: the Gofer sendmsg on the
  donation socket only; the Sentry preadv2 without flags only.

The Gofer's death with a donated descriptor in use is tests/test_gofer_death.py
(``test_gofer_killed_no_read_from_stale_cache``: its file is read through one).
"""

from __future__ import annotations

import errno
import gc
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from helpers import REPO_ROOT, Programs, sandbox_command

from gofer import donate, p9
from gofer.fids import P9Fail, open_attaches
from gofer.server import FileServer
from gofer.spawn import start_gofer
from sentry.vfs import vfs
from sentry.vfs.dentry import DENTRY_LRU
from sentry.vfs.goferfs import GoferFs
from sentry.vfs.mount import MountNamespace
from sentry.vfs.overlay import OverlayFs
from sentry.vfs.resolve import FsContext

ROOT_FID = 1


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    (tmp_path / "ro").mkdir()
    (tmp_path / "ro" / "f").write_bytes(b"0123456789" * 1000)
    (tmp_path / "ro" / "sub").mkdir()
    (tmp_path / "rw").mkdir()
    (tmp_path / "rw" / "g").write_bytes(b"writable tree")
    return tmp_path


class Conn:
    """9P to a FileServer in this process, with the Sentry's end of its socket."""

    def __init__(self, server: FileServer, receiver: donate.Receiver | None) -> None:
        self.server = server
        self.receiver = receiver
        self.tag = 0

    def rpc(self, msg: p9.Message) -> p9.Message:
        self.tag += 1
        tag, reply = p9.decode(self.server.handle(p9.encode(msg, self.tag)))
        assert tag == self.tag
        return reply

    def lopenfd(self, fid: int) -> tuple[p9.Rlopenfd, int]:
        r = self.rpc(p9.Tlopenfd(fid))
        assert isinstance(r, p9.Rlopenfd), r
        fd = self.receiver.take(self.tag, fid) if self.receiver is not None else -1
        return r, fd


def _server(tree: Path, *, donating: bool) -> tuple[Conn, list[int]]:
    root = os.open(tree / "ro", os.O_PATH | os.O_DIRECTORY)
    attaches = open_attaches([("rw", str(tree / "rw"), True)])
    mine, theirs = donate.socketpair() if donating else (None, None)
    # The container root read-only (as --readonly), a writable bind beside it.
    server = FileServer(root, readonly=True, attaches=attaches, donate_sock=theirs)
    conn = Conn(server, donate.Receiver(mine) if mine is not None else None)
    conn.rpc(p9.Tversion(65536, "9P2000.L"))
    assert isinstance(conn.rpc(p9.Tattach(ROOT_FID, p9.P9_NOFID, "root", "", 0)), p9.Rattach)
    assert isinstance(conn.rpc(p9.Tattach(2, p9.P9_NOFID, "root", "rw", 0)), p9.Rattach)
    return conn, [root, *(a.fd for a in attaches.values())]


def _close(conn: Conn, fds: list[int]) -> None:
    """What _server made: the server, its donation socket's two ends, the fds."""
    conn.server.close()
    if conn.receiver is not None:
        conn.receiver.close()
        conn.server.donate_sock.close()
    for fd in fds:
        os.close(fd)


def test_gofer_donates_read_only_regular_files_only(tree: Path) -> None:
    conn, fds = _server(tree, donating=True)
    try:
        assert isinstance(conn.rpc(p9.Twalk(ROOT_FID, 10, ("f",))), p9.Rwalk)
        r, fd = conn.lopenfd(10)
        assert r.donated == 1 and fd >= 0
        try:
            assert os.pread(fd, 5, 3) == b"34567"
            with pytest.raises(OSError) as ei:
                os.pwrite(fd, b"x", 0)  # the Gofer's O_RDONLY description
            assert ei.value.errno == errno.EBADF
        finally:
            os.close(fd)
        again, fd = conn.lopenfd(10)  # an open fid: the same file once more (after the LRU)
        assert again.donated == 1 and fd >= 0 and again.qid == r.qid
        os.close(fd)
        rd = conn.rpc(p9.Tread(10, 0, 4))
        assert isinstance(rd, p9.Rread) and rd.data == b"0123"  # 9P still reads it
        # A directory, and a file of the writable tree: opened, not donated.
        conn.rpc(p9.Twalk(ROOT_FID, 11, ("sub",)))
        r, fd = conn.lopenfd(11)
        assert r.donated == 0 and fd == -1
        conn.rpc(p9.Twalk(2, 12, ("g",)))
        r, fd = conn.lopenfd(12)
        assert r.donated == 0 and fd == -1
        rd = conn.rpc(p9.Tread(12, 0, 8))
        assert isinstance(rd, p9.Rread) and rd.data == b"writable"
        # Unknown fid: the error, no descriptor.
        err = conn.rpc(p9.Tlopenfd(99))
        assert isinstance(err, p9.Rlerror) and err.ecode == errno.EBADF
    finally:
        _close(conn, fds)


def test_walkopenfd_walks_opens_and_donates_in_one(tree: Path) -> None:
    """Twalkopenfd: a regular file of the read-only root comes back walked,
    opened (the fid reads at once) and donated; a directory and a file of
    the writable bind come back walked only (nothing opened for them)."""
    conn, fds = _server(tree, donating=True)
    try:
        r = conn.rpc(p9.Twalkopenfd(ROOT_FID, 10, ("f",)))
        assert isinstance(r, p9.Rwalkopenfd), r
        assert (r.opened, r.donated, r.size) == (1, 1, 10_000)
        fd = conn.receiver.take(conn.tag, 10)
        assert fd >= 0 and os.pread(fd, 4, 9_996) == b"6789"
        os.close(fd)
        rd = conn.rpc(p9.Tread(10, 0, 3))  # open already: no Tlopen needed
        assert isinstance(rd, p9.Rread) and rd.data == b"012"
        for fid, newfid, name in ((ROOT_FID, 11, "sub"), (2, 12, "g")):
            r = conn.rpc(p9.Twalkopenfd(fid, newfid, (name,)))
            assert isinstance(r, p9.Rwalkopenfd) and (r.opened, r.donated) == (0, 0), r
            assert conn.receiver.take(conn.tag, newfid) == -1
        assert isinstance(conn.rpc(p9.Tlopen(12, os.O_RDONLY)), p9.Rlopen)  # was not open
        err = conn.rpc(p9.Twalkopenfd(ROOT_FID, 13, ("absent",)))
        assert isinstance(err, p9.Rlerror) and err.ecode == errno.ENOENT
        assert 13 not in conn.server.fids
    finally:
        _close(conn, fds)


def test_no_socket_no_donation(tree: Path) -> None:
    conn, fds = _server(tree, donating=False)
    try:
        conn.rpc(p9.Twalk(ROOT_FID, 10, ("f",)))
        r, _ = conn.lopenfd(10)
        assert r.donated == 0
        rd = conn.rpc(p9.Tread(10, 10, 3))
        assert isinstance(rd, p9.Rread) and rd.data == b"012"
    finally:
        conn.server.close()
        for fd in fds:
            os.close(fd)


def _fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_receiver_drops_malformed_messages_and_keeps_others() -> None:
    """A message without exactly one descriptor and a (tag, fid) payload is
    dropped with its descriptors closed; another request's descriptor waits
    for its own taker."""
    mine, theirs = donate.socketpair()
    rx = donate.Receiver(mine)
    base = _fd_count()
    try:
        r, w = os.pipe()
        theirs.sendmsg([b"junk"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack("2i", r, w))])
        theirs.sendmsg([donate.PAYLOAD.pack(1, 7)],
                       [(socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack("2i", r, w))])
        assert donate.send_fd(theirs, 2, 8, r)  # another request's
        assert donate.send_fd(theirs, 1, 7, w)
        got = rx.take(1, 7)
        assert got >= 0 and os.fstat(got).st_ino == os.fstat(w).st_ino
        os.close(got)
        other = rx.take(2, 8)  # from the stash
        assert other >= 0 and os.fstat(other).st_ino == os.fstat(r).st_ino
        os.close(other)
        assert rx.take(3, 9) == -1  # nothing sent: read through 9P
        os.close(r)
        os.close(w)
        assert _fd_count() == base
    finally:
        rx.close()
        theirs.close()


def test_donated_lru_bound_and_release() -> None:
    """At most ``limit`` descriptors are kept; one in use by a read is closed
    only once the read lets go; close_all closes every one and refuses more."""
    d = donate.Donated(limit=4)
    base = _fd_count()
    hs = [d.add(os.open("/dev/null", os.O_RDONLY)) for _ in range(4)]
    assert all(h is not None for h in hs) and _fd_count() == base + 4
    fd = d.acquire(hs[0])  # in use, and now the most recently used
    assert fd >= 0
    d.add(os.open("/dev/null", os.O_RDONLY))  # evicts hs[1], the least recently used
    assert hs[1].retired and _fd_count() == base + 4
    d.retire(hs[0])
    assert _fd_count() == base + 4 and d.acquire(hs[0]) == -1  # kept until released
    d.release(hs[0])
    assert _fd_count() == base + 3
    d.retire_later(hs[2])  # as a finalizer does: done by the next add
    d.add(os.open("/dev/null", os.O_RDONLY))
    assert _fd_count() == base + 3 and hs[2].retired
    d.close_all()
    assert _fd_count() == base and len(d) == 0
    assert d.add(os.open("/dev/null", os.O_RDONLY)) is None and _fd_count() == base


def _make_files(root: Path, ndirs: int, nfiles: int) -> None:
    for i in range(ndirs):
        sub = root / f"d{i:02d}"
        sub.mkdir()
        for j in range(nfiles):
            (sub / f"f{j:03d}").write_bytes(b"%d/%d\n" % (i, j) * (1 + j % 50))


def _open_read_close(ctx: FsContext, root: Path, ndirs: int, nfiles: int, rounds: int,
                     check: callable) -> None:  # type: ignore[valid-type]
    for _ in range(rounds):
        for i in range(ndirs):
            for j in range(nfiles):
                name = f"d{i:02d}/f{j:03d}"
                desc = vfs.open(ctx, None, b"/" + name.encode(), os.O_RDONLY)
                want = b"%d/%d\n" % (i, j) * (1 + j % 50)
                assert desc.pread(len(want) + 10, 0) == want
                desc.release()
            check()


@pytest.mark.parametrize("ndirs,nfiles,rounds", [(4, 250, 2)])
def test_sentry_donated_fds_bounded(tmp_path: Path, ndirs: int, nfiles: int,
                                    rounds: int) -> None:
    """The in-process Sentry VFS against a real Gofer: 1,000 files opened,
    read and closed (twice), each read through its donated descriptor; the
    Sentry never holds more than the LRU's bound of them, and none once the
    dentry cache lets their inodes go."""
    _make_files(tmp_path, ndirs, nfiles)
    base = _fd_count()
    client, proc = start_gofer(str(tmp_path), readonly=True, confine=False)
    try:
        assert client.donated is not None
        client.donated.limit = 16
        ctx = FsContext.for_namespace(MountNamespace(OverlayFs(GoferFs(client, client.root))))
        peak = [0]

        def check() -> None:
            peak[0] = max(peak[0], _fd_count())
            assert len(client.donated) <= 16

        _open_read_close(ctx, tmp_path, ndirs, nfiles, rounds, check)
        assert client.donated.given >= ndirs * nfiles  # every file read through one
        assert peak[0] <= base + 16 + 24, peak  # + the channel, socket, and Python's own
        del ctx
        DENTRY_LRU.clear()  # what keeps recently used files' inodes (and fids) alive
        gc.collect()
        client.donated.add(os.open("/dev/null", os.O_RDONLY))  # drains the finalizers' queue
        assert len(client.donated) <= 1
    finally:
        client.close()
        proc.wait(10)
    assert _fd_count() <= base


def test_open_and_first_read_cost_one_round_trip(tmp_path: Path) -> None:
    """open(O_RDONLY) of a name not walked yet, then reads of it: one Gofer
    request in all (Twalkopenfd; the reads use the donated descriptor), where
    a walk and a first read cost two before.  A stat'ed name opens nothing."""
    _make_files(tmp_path, 1, 3)
    client, proc = start_gofer(str(tmp_path), readonly=True, confine=False)
    sent: list[str] = []
    rpc = client._rpc

    def counting(msg: p9.Message, *args: object, **kwargs: object) -> p9.Message:
        sent.append(type(msg).__name__)
        return rpc(msg, *args, **kwargs)  # type: ignore[arg-type]

    client._rpc = counting  # type: ignore[method-assign]
    try:
        ctx = FsContext.for_namespace(MountNamespace(OverlayFs(GoferFs(client, client.root))))
        vfs.stat(ctx, None, b"/d00")
        sent.clear()
        desc = vfs.open(ctx, None, b"/d00/f001", os.O_RDONLY)
        assert desc.pread(100, 0) == b"0/1\n0/1\n"
        assert desc.pread(3, 4) == b"0/1"
        desc.release()
        assert sent == ["Twalkopenfd"], sent
        sent.clear()
        vfs.stat(ctx, None, b"/d00/f002")
        assert sent == ["Twalkgetattr"], sent
    finally:
        client._rpc = rpc  # type: ignore[method-assign]
        client.close()
        proc.wait(10)


GOFER_FILTER_CHILD = r"""
import os, socket, sys
sys.path.insert(0, sys.argv[1])
from gofer import confine, donate
mine, theirs = donate.socketpair()
other_a, other_b = socket.socketpair()
confine.no_new_privs()
confine.install_seccomp("kill", donate_fd=theirs.fileno())
print("donated", donate.send_fd(theirs, 1, 2, 0), flush=True)
other_a.sendmsg([b"x"])
print("sendmsg on another socket allowed", flush=True)
"""


def test_gofer_filter_sendmsg_only_on_donation_socket() -> None:
    res = subprocess.run([sys.executable, "-c", GOFER_FILTER_CHILD, str(REPO_ROOT)],
                         capture_output=True, text=True, timeout=60)
    assert res.stdout == "donated True\n", res.stderr
    assert res.returncode == -signal.SIGSYS, (res.returncode, res.stderr)


SENTRY_FILTER_CHILD = r"""
import os, sys
sys.path.insert(0, sys.argv[1])
from sentry import confine_filters
r, w = os.pipe()
fd = os.memfd_create("f")
os.pwrite(fd, b"donated", 0)
f = confine_filters.build("none")
f.load()
buf = bytearray(7)
print("preadv", os.preadv(fd, [buf], 0), bytes(buf), flush=True)
os.preadv(fd, [buf], 0, os.RWF_HIPRI)
print("preadv2 with flags allowed", flush=True)
"""


def test_sentry_filter_preadv2_without_flags_only() -> None:
    res = subprocess.run([sys.executable, "-c", SENTRY_FILTER_CHILD, str(REPO_ROOT)],
                         capture_output=True, text=True, timeout=60)
    assert res.stdout == "preadv 7 b'donated'\n", res.stderr
    assert res.returncode == -signal.SIGSYS, (res.returncode, res.stderr)


@pytest.mark.sandbox
def test_sandbox_reads_through_donated_fds(programs: Programs, tmp_path: Path) -> None:
    """In a sandbox: a file read whole, at offsets, into a buffer whose tail
    is unmapped (a short read, as Linux's copy_to_user), and mapped
    MAP_PRIVATE gives what the host file holds."""
    data = bytes(range(256)) * 4096 + b"tail"
    (tmp_path / "big").write_bytes(data)
    prog = programs.path("donate_read")
    native = subprocess.run([str(prog), str(tmp_path / "big")], capture_output=True, timeout=60)
    boxed = subprocess.run(sandbox_command([str(prog), str(tmp_path / "big")]),
                           capture_output=True, timeout=120)
    assert native.returncode == 0, native
    assert (boxed.stdout, boxed.returncode) == (native.stdout, 0), boxed



SLOW_DIRS, SLOW_FILES = 200, 500  # 100,000 files
SENTRY_FDS_SLACK = 200
"""The Sentry's own descriptors besides donated ones (memory file arenas,
channels, stubs' sockets, stdio) with room to spare."""


@pytest.mark.slow
@pytest.mark.sandbox
def test_100k_files_opened_and_closed_keep_sentry_fds_bounded(
        programs: Programs, tmp_path_factory: pytest.TempPathFactory) -> None:
    """A sandbox opens, fstats, reads and closes 100,000 files of a read-only
    tree (each read through a donated descriptor): it answers as natively,
    and sampled from the host, the Sentry's descriptors stay under the
    donation LRU's bound plus its own (before the LRU, one per file read)."""
    from test_scale_files import make_tree, scale_argv

    tree = make_tree(tmp_path_factory.mktemp("donate-100k") / "tree", SLOW_DIRS, SLOW_FILES)
    argv = scale_argv(programs.path("scale_files", "static"), tree, SLOW_DIRS, SLOW_FILES,
                      SLOW_DIRS * SLOW_FILES, 100, 0)
    native = subprocess.run(argv, capture_output=True, timeout=3600)
    assert b"failed=0" in native.stdout, native
    proc = subprocess.Popen(sandbox_command(argv), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)
    peak = [0]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.2):  # a measurement interval, not synchronisation
            try:
                peak[0] = max(peak[0], len(os.listdir(f"/proc/{proc.pid}/fd")))
            except OSError:
                pass

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        out, err = proc.communicate(timeout=3600)
    finally:
        done.set()
        sampler.join()
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    print(f"Sentry descriptors, peak: {peak[0]}")
    assert (out, err, proc.returncode) == (native.stdout, native.stderr, native.returncode)
    assert 0 < peak[0] < donate.DEFAULT_MAX + SENTRY_FDS_SLACK, peak


PREFORK_CHILD = r"""
import os, sys
sys.path.insert(0, sys.argv[1])
from gofer import prefork
assert prefork.prefork()
from gofer.spawn import start_gofer
err = os.open(os.devnull, os.O_WRONLY)
client, proc = start_gofer(sys.argv[2], readonly=True, confine=False, stderr=err)
assert type(proc._proc).__name__ == "ForkedProcess"
fid, _ = client.walk(client.root, [b"f"])
_, h = client.lopen_fd(fid)
print("donated", h is not None and os.pread(h.fd, 4, 0).decode(), flush=True)
client.close()
print("gofer exit", proc.wait(10), flush=True)
"""


def test_forked_gofer_with_stderr_donates(tmp_path: Path) -> None:
    """A pre-forked Gofer gets both its stderr (a debug log) and the
    donation socket over the request socket; before, only the first arrived
    and the Gofer took the log for its socket (runsc.py do --debug-log
    failed with EIO at the root)."""
    (tmp_path / "f").write_bytes(b"data")
    res = subprocess.run([sys.executable, "-c", PREFORK_CHILD, str(REPO_ROOT), str(tmp_path)],
                         capture_output=True, text=True, timeout=60)
    assert res.stdout == "donated data\ngofer exit 0\n", (res.stdout, res.stderr)


def _open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def test_walkopenfd_opens_only_what_its_walk_reached(tree: Path) -> None:
    """The one-name Twalkopenfd (gofer/handlers.py, ``_walk_one`` then
    ``_open_walked``): symlinks (in or out of the tree) and FIFOs come back
    walked, never opened; bad names are errors that leave no fid; "..", two
    names and a walk onto itself take the general path; the Gofer serves on."""
    ro = tree / "ro"
    (ro / "in").symlink_to("f")
    (ro / "out").symlink_to("/etc/passwd")
    os.mkfifo(ro / "p")
    (ro / "sub" / "h").write_bytes(b"below")
    conn, fds = _server(tree, donating=True)
    try:
        for newfid, name in ((20, "in"), (21, "out"), (22, "p")):
            r = conn.rpc(p9.Twalkopenfd(ROOT_FID, newfid, (name,)))
            assert isinstance(r, p9.Rwalkopenfd) and (r.opened, r.donated) == (0, 0), r
            assert conn.server.fids[newfid].ofd == -1
        for name, want in (("", errno.ENOENT), (".", errno.EINVAL), ("a/b", errno.EINVAL),
                           ("x\0", errno.EINVAL)):
            err = conn.rpc(p9.Twalkopenfd(ROOT_FID, 30, (name,)))
            assert isinstance(err, p9.Rlerror) and err.ecode == want, (name, err)
            assert 30 not in conn.server.fids
        err = conn.rpc(p9.Twalkopenfd(ROOT_FID, 20, ("f",)))  # newfid in use
        assert isinstance(err, p9.Rlerror) and err.ecode == errno.EBADF
        err = conn.rpc(p9.Twalkopenfd(99, 31, ("f",)))  # unknown fid
        assert isinstance(err, p9.Rlerror) and err.ecode == errno.EBADF
        r = conn.rpc(p9.Twalkopenfd(ROOT_FID, 32, ("..",)))  # clamps at the root: a dir
        root_qid = conn.server.fids[ROOT_FID].qid
        assert isinstance(r, p9.Rwalkopenfd) and (r.opened, r.qids) == (0, (root_qid,)), r
        r = conn.rpc(p9.Twalkopenfd(ROOT_FID, 33, ("sub", "h")))
        assert isinstance(r, p9.Rwalkopenfd) and (r.opened, r.donated, r.size) == (1, 1, 5), r
        fd = conn.receiver.take(conn.tag, 33)
        assert os.pread(fd, 5, 0) == b"below"
        os.close(fd)
        r = conn.rpc(p9.Twalkopenfd(32, 32, ("f",)))  # onto itself
        assert isinstance(r, p9.Rwalkopenfd) and (r.opened, r.donated) == (1, 1), r
        os.close(conn.receiver.take(conn.tag, 32))
        r = conn.rpc(p9.Twalkgetattr(ROOT_FID, 34, ("f",)))
        assert isinstance(r, p9.Rwalkgetattr) and r.size == 10_000 and r.qids[0].type == 0, r
        assert conn.server.fids[34].ofd == -1  # walked, not opened
    finally:
        _close(conn, fds)


@pytest.mark.parametrize("swap", ["file", "fifo", "symlink"])
def test_open_walked_refuses_a_name_swapped_after_the_walk(tree: Path, swap: str) -> None:
    """The open of a just-walked file goes by name again (relative to the
    directory it was walked from): a name replaced between the walk and the
    open is refused (ESTALE; a symlink ELOOP, O_NOFOLLOW) with no descriptor
    kept, and a FIFO swapped in does not hang the Gofer (O_NONBLOCK)."""
    ro = tree / "ro"
    conn, fds = _server(tree, donating=True)
    try:
        one = conn.server._walk_one(ROOT_FID, 40, ("f",))
        assert one is not None
        (ro / "f").rename(ro / "was-f")
        if swap == "file":
            (ro / "f").write_bytes(b"another file")
        elif swap == "fifo":
            os.mkfifo(ro / "f")
        else:
            (ro / "f").symlink_to("was-f")
        before = _open_fds()
        with pytest.raises((P9Fail, OSError)) as ei:
            conn.server._open_walked(*one)
        assert ei.value.errno == (errno.ELOOP if swap == "symlink" else errno.ESTALE)
        assert _open_fds() == before and one[1].ofd == -1
        r = conn.rpc(p9.Twalkopenfd(ROOT_FID, 41, ("was-f",)))  # still serving
        assert isinstance(r, p9.Rwalkopenfd) and (r.opened, r.donated) == (1, 1), r
        os.close(conn.receiver.take(conn.tag, 41))
    finally:
        _close(conn, fds)
