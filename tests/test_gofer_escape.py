"""End-to-end tests with a real Gofer process: the client sees only the root.

Each test starts a confined Gofer (pivot_root/chroot, capabilities, no_new_privs,
seccomp) over a temporary root that is full of traps: symlinks to host files by
absolute and relative paths, deep "../.." chains, a symlinked directory. Through
the client nothing outside the root may be read, listed or created, the process
must really be confined (checked from /proc), and the Gofer's death or exit must
be clean: EIO quickly, no processes or /dev/shm objects left behind.
"""

from __future__ import annotations

import errno
import hashlib
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from helpers import shm_names_of

from gofer import confine as gconfine
from gofer import p9
from gofer.client import CONNECT_TIMEOUT, GoferClient
from gofer.spawn import GoferProcess, start_gofer
from sentry.kernel.errors import SyscallError
from shm.channel import DEFAULT_TIMEOUT

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="confining the Gofer needs root"),
]

REPO = Path(__file__).resolve().parent.parent
BIG = 5 * (1 << 20) + 12345


def _mine(names: set[str]) -> set[str]:
    """The channels this test process created (other sandboxes on the machine
    create, and soon unlink, their own)."""
    return {n for n in names if f"pyvisor-{os.getpid()}-" in n}


def _shm_names() -> set[str]:
    return set(os.listdir("/dev/shm"))


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "root"
    (r / "a" / "b").mkdir(parents=True)
    (r / "a" / "b" / "leaf").write_bytes(b"leaf\n")
    (r / "big").write_bytes(os.urandom(BIG))
    (r / "shadow").symlink_to("/etc/shadow")
    (r / "hostetc").symlink_to("/etc")
    (r / "up").symlink_to("../../etc")
    (r / "a" / "b" / "deep").symlink_to("../" * 30 + "etc/passwd")
    (r / "a" / "updir").symlink_to("../../..")
    return r


@pytest.fixture
def gofer(root: Path) -> Iterator[tuple[GoferClient, GoferProcess]]:
    before = _shm_names()
    client, proc = start_gofer(str(root), readonly=False, confine=True)
    try:
        yield client, proc
    finally:
        client.close()
        proc.kill()
        proc.wait(5)
        assert _mine(_shm_names() - before) == set()


def _walk_err(c: GoferClient, names: list[bytes]) -> int:
    with pytest.raises(SyscallError) as info:
        c.walk(c.root, names)
    return info.value.errno


def _listdir(c: GoferClient, fid: int) -> list[p9.Dirent]:
    out: list[p9.Dirent] = []
    offset = 0
    while ents := c.readdir(fid, offset, 8192):
        out += ents
        offset = ents[-1].offset
    return out


def test_read_file_bigger_than_msize(gofer: tuple[GoferClient, GoferProcess], root: Path) -> None:
    c, _ = gofer
    assert BIG > c.msize * 4
    fid, _ = c.walk(c.root, [b"big"])
    c.lopen(fid, os.O_RDONLY)
    data = c.read(fid, 0, BIG + 1000)
    assert hashlib.sha256(data).digest() == hashlib.sha256((root / "big").read_bytes()).digest()
    assert c.getattr(fid).size == BIG
    c.clunk(fid)


def test_write_and_create(gofer: tuple[GoferClient, GoferProcess], root: Path) -> None:
    c, _ = gofer
    d, _ = c.walk(c.root, [b"a"])
    c.lcreate(d, b"out", os.O_RDWR, 0o600, 0)
    payload = os.urandom(3 * (1 << 20))
    assert c.write(d, 0, payload) == len(payload)
    assert (root / "a" / "out").read_bytes() == payload
    c.clunk(d)


def test_every_operation_passes_the_seccomp_filter(
    gofer: tuple[GoferClient, GoferProcess], root: Path
) -> None:
    """Each mutating 9P operation through the KILL-mode filter: a syscall
    missing from the allowlist would kill the Gofer and show up here as EIO."""
    c, proc = gofer
    d, _ = c.walk(c.root, [b"a"])
    c.mkdir(d, b"dir", 0o755, 0)
    c.symlink(d, b"sl", b"dir", 0)
    c.mknod(d, b"fifo", stat.S_IFIFO | 0o600, 0, 0, 0)
    f, _ = c.walk(d, [])
    c.lcreate(f, b"file", os.O_RDWR, 0o644, 0)
    c.write(f, 0, b"0123456789")
    c.fsync(f)
    c.fsync(f, datasync=True)
    c.link(d, f, b"hard")
    c.renameat(d, b"hard", d, b"hard2")
    valid = 0x1FF & ~p9.P9_SETATTR_CTIME
    c.setattr(f, valid, mode=0o600, uid=7, gid=8, size=4, atime_ns=10**9, mtime_ns=2 * 10**9)
    a = c.getattr(f)
    assert (a.mode & 0o7777, a.uid, a.gid, a.size, a.mtime_ns) == (0o600, 7, 8, 4, 2 * 10**9)
    assert c.statfs(f).namelen == 255
    for name in (b"hard2", b"sl", b"fifo", b"file"):
        c.unlinkat(d, name)
    c.unlinkat(d, b"dir", p9.P9_AT_REMOVEDIR)
    assert sorted(os.listdir(root / "a")) == ["b", "updir"]
    assert proc.poll() is None


def test_concurrent_clients_threads(gofer: tuple[GoferClient, GoferProcess], root: Path) -> None:
    c, _ = gofer
    want = (root / "big").read_bytes()[:200_000]

    def work(_: int) -> bool:
        for _ in range(20):
            fid, _q = c.walk(c.root, [b"big"])
            c.lopen(fid, os.O_RDONLY)
            ok = c.read(fid, 0, 200_000) == want
            c.clunk(fid)
            if not ok:
                return False
        return True

    with ThreadPoolExecutor(6) as pool:
        assert all(pool.map(work, range(6)))


def test_list_directory(gofer: tuple[GoferClient, GoferProcess], root: Path) -> None:
    c, _ = gofer
    fid, _ = c.walk(c.root, [])
    c.lopen(fid, os.O_RDONLY | os.O_DIRECTORY)
    assert sorted(e.name for e in _listdir(c, fid)) == sorted(os.listdir(root))


def test_symlinks_come_back_as_symlinks(gofer: tuple[GoferClient, GoferProcess]) -> None:
    c, _ = gofer
    for names, target in (
        ([b"shadow"], b"/etc/shadow"),
        ([b"hostetc"], b"/etc"),
        ([b"up"], b"../../etc"),
        ([b"a", b"b", b"deep"], b"../" * 30 + b"etc/passwd"),
    ):
        fid, qids = c.walk(c.root, names)
        assert qids[-1].type == p9.P9_QTSYMLINK
        assert c.readlink(fid) == target
        with pytest.raises(SyscallError) as info:
            c.lopen(fid, os.O_RDONLY)
        assert info.value.errno == errno.ELOOP
        with pytest.raises(SyscallError) as info:
            c.lcreate(fid, b"pwned", os.O_RDWR, 0o644, 0)
        assert info.value.errno == errno.ENOTDIR
        c.clunk(fid)
    assert not os.path.exists("/etc/pwned")


def test_walks_never_leave_the_root(gofer: tuple[GoferClient, GoferProcess]) -> None:
    c, _ = gofer
    root_ino = c.getattr(c.root).ino
    # Through symlinks: the walk stops at the link (partial walk -> ENOENT).
    for names in ([b"hostetc", b"passwd"], [b"up", b"passwd"], [b"a", b"updir", b"etc"]):
        assert _walk_err(c, names) == errno.ENOENT
    # ".." is clamped at the root, however many.
    fid, qids = c.walk(c.root, [b".."] * 40)
    assert qids[-1].path == root_ino
    c.clunk(fid)
    assert _walk_err(c, [b".."] * 40 + [b"etc"]) == errno.ENOENT
    assert _walk_err(c, [b"a", b"..", b"..", b"..", b"etc", b"shadow"]) == errno.ENOENT
    # Names with "/" never reach the kernel as paths.
    for bad in (b"/etc", b"../etc", b"a/b", b"/", b"etc/shadow"):
        assert _walk_err(c, [bad]) == errno.EINVAL


def test_gofer_is_confined(gofer: tuple[GoferClient, GoferProcess], root: Path) -> None:
    _, proc = gofer
    status = dict(
        line.split(":", 1) for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines()
    )
    assert status["Seccomp"].strip() == "2"
    assert status["NoNewPrivs"].strip() == "1"
    keep = sum(1 << cap for cap in gconfine.KEEP_CAPS)
    for field in ("CapEff", "CapPrm", "CapBnd"):
        assert int(status[field], 16) == keep, field
    assert int(status["CapInh"], 16) == int(status["CapAmb"], 16) == 0
    # Its "/" is the served directory (and so is everything it can see).
    rst, gst = os.stat(root), os.stat(f"/proc/{proc.pid}/root")
    assert (gst.st_dev, gst.st_ino) == (rst.st_dev, rst.st_ino)
    assert sorted(os.listdir(f"/proc/{proc.pid}/root")) == sorted(os.listdir(root))
    assert os.readlink(f"/proc/{proc.pid}/cwd") == "/"
    # A mount namespace of its own.
    assert os.readlink(f"/proc/{proc.pid}/ns/mnt") != os.readlink("/proc/self/ns/mnt")


def test_gofer_killed_gives_eio_fast(root: Path) -> None:
    """A dead Gofer is seen by the channel's peer watch.  The one other way to
    an EIO here is a request's timeout (shm DEFAULT_TIMEOUT, 30 s), so the
    bound is a third of that: far above what seeing the death takes, even on
    a loaded machine, and still below what only a timeout would give."""
    bound = DEFAULT_TIMEOUT / 3
    before = _shm_names()
    c, proc = start_gofer(str(root), readonly=False, confine=True)
    try:
        fid, _ = c.walk(c.root, [b"big"])
        c.lopen(fid, os.O_RDONLY)
        c.read(fid, 0, 4096)
        os.kill(proc.pid, signal.SIGKILL)
        t0 = time.monotonic()
        with pytest.raises(SyscallError) as info:
            c.read(fid, 0, 4096)
        assert info.value.errno == errno.EIO
        assert time.monotonic() - t0 < bound
        assert c.dead
        t0 = time.monotonic()
        with pytest.raises(SyscallError) as info:
            c.getattr(c.root)  # fails at once now: the client knows it is dead
        assert info.value.errno == errno.EIO
        assert time.monotonic() - t0 < bound
    finally:
        c.close()
        assert proc.wait(5) == -signal.SIGKILL
    assert _mine(_shm_names() - before) == set()


def test_gofer_exits_when_client_closes(root: Path) -> None:
    c, proc = start_gofer(str(root), readonly=True, confine=True)
    c.getattr(c.root)
    c.close()
    assert proc.wait(5) == 0
    with pytest.raises(SyscallError) as info:
        c.getattr(c.root)
    assert info.value.errno == errno.EIO


def test_readonly_gofer(root: Path) -> None:
    c, proc = start_gofer(str(root), readonly=True, confine=True)
    try:
        fid, _ = c.walk(c.root, [b"a", b"b", b"leaf"])
        for flags in (os.O_WRONLY, os.O_RDWR, os.O_RDONLY | os.O_TRUNC):
            with pytest.raises(SyscallError) as info:
                c.lopen(fid, flags)
            assert info.value.errno == errno.EROFS
        with pytest.raises(SyscallError) as info:
            c.mkdir(c.root, b"x", 0o755, 0)
        assert info.value.errno == errno.EROFS
        c.lopen(fid, os.O_RDONLY)
        assert c.read(fid, 0, 100) == b"leaf\n"
    finally:
        c.close()
        proc.wait(5)


def test_bad_root_cleans_up() -> None:
    """The Gofer exits at once on a bad root; the client must see that exit
    rather than wait out its CONNECT_TIMEOUT (15 s): the bound is two thirds
    of it, far above a Gofer's start and exit even on a loaded machine."""
    before = _shm_names()
    t0 = time.monotonic()
    with pytest.raises(SyscallError) as info:
        start_gofer("/nonexistent/root", readonly=True, confine=True)
    assert info.value.errno == errno.EIO
    assert time.monotonic() - t0 < CONNECT_TIMEOUT * 2 / 3
    assert _mine(_shm_names() - before) == set()


def test_gofer_dies_with_its_sentry(root: Path) -> None:
    """PDEATHSIG: a SIGKILLed Sentry takes its Gofer along (and the names are
    already unlinked, so nothing is left in /dev/shm)."""
    before = _shm_names()
    code = (
        "import sys, time; from gofer.spawn import start_gofer\n"
        f"c, p = start_gofer({str(root)!r}, readonly=True)\n"
        "print(p.pid, flush=True); time.sleep(60)\n"
    )
    sentry = subprocess.Popen(
        [sys.executable, "-c", code], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    try:
        assert sentry.stdout is not None
        gofer_pid = int(sentry.stdout.readline())
        sentry.kill()
        sentry.wait(5)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                os.kill(gofer_pid, 0)
                if Path(f"/proc/{gofer_pid}/stat").read_text().split(") ")[1][0] in "ZX":
                    break
            except (ProcessLookupError, FileNotFoundError):
                break
            time.sleep(0.05)
        else:
            pytest.fail("the Gofer outlived its Sentry")
    finally:
        sentry.kill()
        sentry.wait()
        if sentry.stdout is not None:
            sentry.stdout.close()
    # The channel's objects carry their maker's pid: the Sentry's, not this process's.
    assert shm_names_of(sentry.pid) == set()
    assert _mine(_shm_names() - before) == set()


# -- the confinement itself, in a forked child ----------------------------------------


def _confined_child(root: Path, action: str) -> tuple[int, bytes]:
    """Fork; the child confines itself to ``root`` and runs ``action``; returns
    (wait status, what the child wrote to the pipe)."""
    r, w = os.pipe()
    fd = os.open(root, os.O_PATH | os.O_DIRECTORY)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 0
        try:
            os.close(r)
            gconfine.confine(fd)
            if action == "open-host":
                try:
                    os.open("/etc/shadow", os.O_RDONLY)
                    os.write(w, b"opened")
                except OSError as e:
                    os.write(w, errno.errorcode[e.errno].encode())
            elif action == "listdir":
                os.write(w, ",".join(sorted(os.listdir("/"))).encode())
            elif action == "socket":
                socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                os.write(w, b"socket made")
            elif action == "exec":
                os.execv("/bin/true", ["true"])
            elif action == "chroot":
                os.chroot("/a")
                os.write(w, b"chrooted")
        except BaseException as e:
            os.write(w, repr(e).encode())
            code = 1
        os._exit(code)
    os.close(w)
    os.close(fd)
    _, status = os.waitpid(pid, 0)
    with os.fdopen(r, "rb") as f:
        return status, f.read()


def test_confined_child_sees_only_the_root(root: Path) -> None:
    status, out = _confined_child(root, "open-host")
    assert (status, out) == (0, b"ENOENT")
    status, out = _confined_child(root, "listdir")
    assert (status, out.decode().split(",")) == (0, sorted(os.listdir(root)))


@pytest.mark.parametrize("action", ["socket", "exec", "chroot"])
def test_seccomp_kills_forbidden_syscalls(root: Path, action: str) -> None:
    status, out = _confined_child(root, action)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGSYS, (status, out)
