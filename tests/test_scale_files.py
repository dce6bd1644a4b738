"""Large directory trees: every file counted, hashed and stat'ed as natively.

Issue 11, item 1: the Sentry used to keep every file it had looked up, each
with its Gofer fids, so after ~13,000 lstat calls the Gofer answered ENFILE
(MAX_FIDS) and after ~6,000 opens EMFILE, and ``find``, ``du`` and
``sha256sum`` over a big tree gave short answers.  The dentry cache is now
bounded (sentry/vfs/dentry.py); these tests touch more files than the old
limits allowed and compare with a native run of the same programs on the same
tree, which the sandbox sees at the same path (``runsc.py do`` serves the host
root read-only under an in-memory overlay) or through a ``-v`` bind.

The default run uses a tree of 18,000 files and 576 links (past both old limits); the
``slow`` tests use 200,000 and a million-path soak that samples the Gofer's
open descriptors and the Sentry's RSS from the host.
"""

from __future__ import annotations

import errno
import os
import shutil
import struct
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from gofer import p9
from gofer.server import FileServer
from gofer.spawn import start_gofer
from sentry.kernel.errors import SyscallError
from sentry.vfs import vfs
from sentry.vfs.dentry import DENTRY_LRU, MAX_CACHED_DENTRIES
from sentry.vfs.goferfs import GoferFs
from sentry.vfs.mount import MountNamespace
from sentry.vfs.overlay import OverlayFs
from sentry.vfs.resolve import FsContext
from tests.helpers import (
    Result,
    host_children,
    run_native,
    run_sandbox,
    sandbox_command,
    sentry_pid,
)

FAST_DIRS, FAST_FILES = 36, 500  # 18,576 names: past MAX_FIDS (16,384) and ~6,000 opens
SLOW_DIRS, SLOW_FILES = 400, 500  # 200,000 files
TIMEOUT = 600.0
SLOW_TIMEOUT = 3600.0


def make_tree(root: Path, ndirs: int, nfiles: int) -> Path:
    """ndirs x nfiles small files dNNN/fNNN of varied sizes, plus in each
    directory a hard link hK to every 50th file and a symlink sK to every 100th."""
    root.mkdir(parents=True, exist_ok=True)
    block = bytes(range(256)) * 16
    for d in range(ndirs):
        dpath = root / f"d{d:03d}"
        dpath.mkdir()
        dfd = os.open(dpath, os.O_PATH | os.O_DIRECTORY)
        try:
            for f in range(nfiles):
                name = f"f{f:03d}"
                size = (d * 7919 + f * 37) % 3000
                fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644, dir_fd=dfd)
                try:
                    os.write(fd, b"%d/%d\n" % (d, f) + block[:size])
                finally:
                    os.close(fd)
                if f % 50 == 0:
                    os.link(name, f"h{f:03d}", src_dir_fd=dfd, dst_dir_fd=dfd)
                if f % 100 == 0:
                    os.symlink(name, f"s{f:03d}", dir_fd=dfd)
        finally:
            os.close(dfd)
    return root


@pytest.fixture(scope="module")
def fast_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tree(tmp_path_factory.mktemp("scale") / "tree", FAST_DIRS, FAST_FILES)


def same(native: Result, boxed: Result, host_path: str = "", box_path: str = "") -> None:
    """Same stdout, stderr and exit status (with ``box_path`` read as ``host_path``)."""
    out, err = boxed.stdout, boxed.stderr
    if box_path:
        out = out.replace(box_path.encode(), host_path.encode())
        err = err.replace(box_path.encode(), host_path.encode())
    assert (out, err, boxed.returncode) == (native.stdout, native.stderr, native.returncode), (
        f"--- native ---\n{native.describe()}\n--- sandbox ---\n{boxed.describe()}")


def scale_argv(program: Path, root: Path, ndirs: int, nfiles: int, nopen: int, same_n: int,
               missing: int) -> list[str]:
    return [str(program), str(root), str(ndirs), str(nfiles), str(nopen), str(same_n),
            str(missing)]


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_gofer_clunk_prefix_releases_host_fds(tmp_path: Path) -> None:
    """The Gofer side: Tclunk closes a fid's host descriptors (its O_PATH one
    and the opened one), and Tclunk frames sent in front of a request (the
    client's batched clunks) are served first, unanswered, unknown fids
    ignored; a malformed prefix is not taken for clunks."""
    make_tree(tmp_path / "t", 1, 20)
    fd = os.open(tmp_path / "t", os.O_PATH | os.O_DIRECTORY)
    server = FileServer(fd)
    try:
        server.handle(p9.encode(p9.Tversion(65536, "9P2000.L"), 1))
        server.handle(p9.encode(p9.Tattach(1, p9.P9_NOFID, "root", "", 0), 2))
        base = _open_fds()
        for i in range(20):
            server.handle(p9.encode(p9.Twalk(1, 100 + i, ("d000", f"f{i:03d}")), 3))
            server.handle(p9.encode(p9.Tlopen(100 + i, os.O_RDONLY), 4))
        assert _open_fds() == base + 40 and len(server.fids) == 21
        server.handle(p9.encode(p9.Tclunk(100), 5))
        assert _open_fds() == base + 38
        clunks = b"".join(p9.encode(p9.Tclunk(f), p9.P9_NOTAG) for f in range(100, 119))
        walk = p9.encode(p9.Twalk(1, 200, ("d000",)), 6)
        out = memoryview(bytearray(65536))
        reply = server.handle_into(memoryview(clunks + walk), out)
        tag, msg = p9.decode(reply if isinstance(reply, bytes) else out[:reply])
        assert tag == 6 and isinstance(msg, p9.Rwalk)
        assert sorted(server.fids) == [1, 119, 200] and _open_fds() == base + 3
        bad = struct.pack("<IBHI", 12, p9.MsgType.TCLUNK, 7, 119) + walk
        tag, msg = p9.decode(server.handle_into(memoryview(bad), out))  # type: ignore[arg-type]
        assert isinstance(msg, p9.Rlerror) and 119 in server.fids
    finally:
        server.close()
        os.close(fd)


@pytest.fixture
def lru_limit() -> Iterator[int]:
    """A small dentry LRU for in-process tests (restored afterwards)."""
    old = DENTRY_LRU.limit
    DENTRY_LRU.limit = 64
    DENTRY_LRU.clear()
    yield 64
    DENTRY_LRU.limit = old
    DENTRY_LRU.clear()


def test_sentry_keeps_fids_bounded(fast_tree: Path, lru_limit: int) -> None:
    """In-process Sentry VFS (the overlay over the Gofer-backed tree, as the
    root is built) against a real Gofer: lstat and open+read a seventh of the
    18,000 files, and the host descriptors the Gofer holds stay near the LRU's
    size; what is held (an open description, a cwd) is never evicted, and
    inode numbers and overlay writes are the same after eviction."""
    assert MAX_CACHED_DENTRIES > lru_limit
    client, proc = start_gofer(str(fast_tree), readonly=True, confine=False)
    try:
        ctx = FsContext.for_namespace(MountNamespace(OverlayFs(GoferFs(client, client.root))))
        held = vfs.open(ctx, None, b"/d000/f001", os.O_RDONLY)
        vfs.chdir(ctx, None, b"/d001")
        w = vfs.open(ctx, None, b"/d002/f004", os.O_WRONLY | vfs.O_TRUNC)
        w.write(b"overlay data")
        w.release()
        del w
        ino = vfs.stat(ctx, None, b"/d002/f004").ino
        peak = 0
        for d in range(FAST_DIRS):
            for f in range(0, FAST_FILES, 7):
                name = f"d{d:03d}/f{f:03d}"
                host = fast_tree / name
                st = vfs.stat(ctx, None, b"/" + name.encode(), follow=False)
                assert st.ino == os.lstat(host).st_ino
                desc = vfs.open(ctx, None, b"/" + name.encode(), os.O_RDONLY)
                assert desc.read(64) == host.read_bytes()[:64]
                desc.release()
            peak = max(peak, len(os.listdir(f"/proc/{proc.pid}/fd")))
        assert peak < 3 * lru_limit + 100, peak  # was one or two per file touched
        before = len(os.listdir(f"/proc/{proc.pid}/fd"))
        for _ in range(300):  # one file opened and closed again and again: no new fid
            vfs.open(ctx, None, b"/d003/f010", os.O_RDONLY).release()
        assert len(os.listdir(f"/proc/{proc.pid}/fd")) <= before + 2
        assert held.dentry is ctx.root.children[b"d000"].children[b"f001"]  # never evicted
        assert held.read(64) == (fast_tree / "d000/f001").read_bytes()[:64]
        assert vfs.getcwd(ctx) == b"/d001"
        assert vfs.stat(ctx, None, b"/d002/f004").ino == ino
        assert vfs.open(ctx, None, b"/d002/f004", os.O_RDONLY).read(100) == b"overlay data"
        with pytest.raises(SyscallError) as ei:
            vfs.stat(ctx, None, b"/d002/absent")
        assert ei.value.errno == errno.ENOENT
    finally:
        client.close()
        proc.wait(10)


@pytest.mark.sandbox
def test_program_touches_every_file(programs, fast_tree: Path) -> None:  # noqa: ANN001
    """lstat 18,000 files, open+fstat+read+close 3,000, open the same file
    5,000 times, probe 2,000 absent names, lstat all again: every call works
    and inode numbers do not change when the cache evicts them."""
    argv = scale_argv(programs.path("scale_files", "static"), fast_tree, FAST_DIRS, FAST_FILES,
                      3000, 5000, 2000)
    native = run_native(argv, timeout=TIMEOUT)
    assert b"failed=0" in native.stdout and native.returncode == 0, native.describe()
    same(native, run_sandbox(argv, timeout=TIMEOUT))


@pytest.mark.sandbox
def test_du_through_a_bind(fast_tree: Path) -> None:
    """du -s and du -sb over a ro bind of the tree: every file counted once
    (hard links by inode number, as du does), with status 0."""
    script = 'du -sb "$1"; find "$1" -type f | wc -l'
    native = run_native(["sh", "-c", script, "sh", str(fast_tree)], timeout=TIMEOUT)
    boxed = run_sandbox(["sh", "-c", script, "sh", "/data"],
                        extra_flags=["-v", f"{fast_tree}:/data:ro"], timeout=TIMEOUT)
    same(native, boxed, str(fast_tree), "/data")


OVERLAY_SCRIPT = r"""
set -e
T=$1
ino() { stat -c %i "$1"; }
mkdir "$T/new"
for i in 1 2 3 4 5 6 7 8 9 10; do echo "written $i" > "$T/new/w$i"; done
echo appended >> "$T/d000/f001"       # a lower file, copied up
rm "$T/d000/f002"                     # a lower file, whited out
rm -r "$T/d001"                       # a lower directory, whited out
mkdir "$T/d001"                       # ... and made again, opaque
echo fresh > "$T/d001/only"
ln "$T/new/w1" "$T/new/link1"          # a hard link in the upper layer
a=$(ino "$T/d000/f001"); b=$(ino "$T/new/w3"); c=$(ino "$T/d002/f004")
du -s "$T" >/dev/null                 # touch every file: the cache evicts
n=$(find "$T" -type f | wc -l)
cat "$T/new/w"* "$T/d001/only"
tail -n 1 "$T/d000/f001"
ls "$T/d001"
test ! -e "$T/d000/f002" && echo "f002 still gone"
test "$(ino "$T/d000/f001")" = "$a" && echo "copied-up inode kept"
test "$(ino "$T/new/w3")" = "$b" && echo "upper inode kept"
test "$(ino "$T/d002/f004")" = "$c" && echo "lower inode kept"
test "$(ino "$T/new/link1")" = "$(ino "$T/new/w1")" && echo "hard link kept"
echo "$n files"
"""


@pytest.mark.sandbox
def test_overlay_writes_survive_eviction(fast_tree: Path, tmp_path: Path) -> None:
    """Files written in the in-memory overlay (new, copied up, whited out, an
    opaque directory, a hard link) read back the same, with the same inode
    numbers, after du's 18,576 lookups pushed them out of the cache (before
    the fix those lookups failed: ENFILE); natively the script runs on a copy."""
    copy = tmp_path / "copy"
    shutil.copytree(fast_tree, copy, symlinks=True)
    native = run_native(["sh", "-c", OVERLAY_SCRIPT, "sh", str(copy)], timeout=TIMEOUT)
    assert native.returncode == 0, native.describe()
    before = sorted(p.name for p in (fast_tree / "d000").iterdir())
    boxed = run_sandbox(["sh", "-c", OVERLAY_SCRIPT, "sh", str(fast_tree)], timeout=TIMEOUT)
    same(native, boxed, str(copy), str(fast_tree))
    assert sorted(p.name for p in (fast_tree / "d000").iterdir()) == before  # host untouched
    assert not (fast_tree / "new").exists()


# -- at user scale (python3 -m pytest -m slow) ---------------------------------------------


@pytest.fixture(scope="module")
def big_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tree(tmp_path_factory.mktemp("scale-big") / "tree", SLOW_DIRS, SLOW_FILES)


BIG_SCRIPT = """
find "$1" -type f | wc -l
find "$1" | wc -l
du -s "$1"
du -sb "$1"
du -s --apparent-size "$1"
find "$1" -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum
"""


@pytest.mark.slow
@pytest.mark.sandbox
@pytest.mark.parametrize("where", ["root", "bind"])
def test_find_du_sha256sum_200k(big_tree: Path, where: str) -> None:
    """The issue's case: find, du and sha256sum over 200,000 files (and hard
    links and symlinks) give native's output and status, through the overlaid
    root at the same path and through a ro bind."""
    native = run_native(["sh", "-c", BIG_SCRIPT, "sh", str(big_tree)], timeout=SLOW_TIMEOUT)
    assert native.returncode == 0, native.describe()
    if where == "root":
        boxed = run_sandbox(["sh", "-c", BIG_SCRIPT, "sh", str(big_tree)], timeout=SLOW_TIMEOUT)
        same(native, boxed)
    else:
        boxed = run_sandbox(["sh", "-c", BIG_SCRIPT, "sh", "/data"],
                            extra_flags=["-v", f"{big_tree}:/data:ro"], timeout=SLOW_TIMEOUT)
        same(native, boxed, str(big_tree), "/data")


def _fd_count(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


def _rss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _is_gofer(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return b"gofer" in f.read()
    except OSError:
        return False


GOFER_FDS_BOUND = 12_000
"""Host descriptors the Gofer may hold: the dentry LRU (4,096) times two (a
file's fid, opened) plus directories and what is held; before the fix it
climbed to its limit."""
SENTRY_RSS_BOUND_KIB = 768 * 1024


@pytest.mark.slow
@pytest.mark.sandbox
def test_soak_million_paths(programs, big_tree: Path) -> None:  # noqa: ANN001
    """A sandbox that stats 200,000 files twice, opens, fstats, reads and
    closes them, and probes 800,000 absent names (a million distinct paths):
    every call answers as natively, and sampled from the host, the Gofer's
    open descriptors and the Sentry's RSS stay bounded."""
    argv = scale_argv(programs.path("scale_files", "static"), big_tree, SLOW_DIRS, SLOW_FILES,
                      SLOW_DIRS * SLOW_FILES, 1000, 800_000)
    native = run_native(argv, timeout=SLOW_TIMEOUT)
    assert b"failed=0" in native.stdout, native.describe()
    proc = subprocess.Popen(sandbox_command(argv), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)
    peaks = {"gofer_fds": 0, "sentry_rss_kib": 0}
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.5):  # a measurement interval, not synchronisation
            sentry = sentry_pid(proc.pid)
            peaks["sentry_rss_kib"] = max(peaks["sentry_rss_kib"], _rss_kib(sentry))
            for kid in host_children(sentry):
                if _is_gofer(kid):
                    peaks["gofer_fds"] = max(peaks["gofer_fds"], _fd_count(kid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        out, err = proc.communicate(timeout=SLOW_TIMEOUT)
    finally:
        done.set()
        sampler.join()
        if proc.poll() is None:
            os.killpg(proc.pid, 9)
            proc.wait()
    print(f"soak peaks: {peaks}")
    assert (out, err, proc.returncode) == (native.stdout, native.stderr, native.returncode)
    assert 0 < peaks["gofer_fds"] < GOFER_FDS_BOUND, peaks
    assert 0 < peaks["sentry_rss_kib"] < SENTRY_RSS_BOUND_KIB, peaks
