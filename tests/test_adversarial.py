"""Adversarial runs inside the sandbox (issue 16 section 5): a syscall fuzzer
(Debian's trinity), stress-ng stressors, and resource exhaustion, each
checked from the host's side: the sandbox ends cleanly (or keeps serving), no
host file outside it changed, nothing of it is left (processes, /dev/shm), and
a second sandbox running beside it is unaffected.

The default run has a short slice of each; the long runs are ``slow``:

    python3 -m pytest -m slow tests/test_adversarial.py
    PYVISOR_TRINITY_SECONDS=600 python3 -m pytest -m slow tests/test_adversarial.py -k trinity

trinity must never run on the host: every test here starts it only as the
sandbox's program (``runsc.py do -- ... trinity``), as uid/gid 65534 (setpriv
inside the sandbox), with its victim files in a canary tree that the test
hashes before and after.  The sandbox's root is the host's / served read-only
under an in-memory overlay, so the canary is visible to trinity but can only
change through a wall that leaks.  Its options: ``-a 64`` (the stub's filter
answers every 32-bit int 0x80 syscall ENOSYS without running it, so fuzzing
that ABI would exercise nothing), ``--disable-fds=sockets`` (its socket set-up needs socket
families the Sentry does not have), ``-l off`` (no log files).

The regression programs at the end are what trinity found: each ran
differently natively and in the sandbox, and stopped trinity's watchdog.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from helpers import Programs, _base_env, run_native, run_sandbox, sandbox_command
from test_oci import cid, make_bundle, state_root  # noqa: F401 - fixtures, used by name

pytestmark = pytest.mark.sandbox

TRINITY = "/usr/bin/trinity"
SETPRIV = shutil.which("setpriv") or "/usr/bin/setpriv"
TIMEOUT_BIN = shutil.which("timeout") or "/usr/bin/timeout"
STRESS_NG = shutil.which("stress-ng")


# -- what a run leaves --------------------------------------------------------


def _tree_digest(root: Path) -> dict[str, tuple[int, int, int, str]]:
    """Every entry under ``root``: (mode, size, mtime_ns, sha256 of a file)."""
    out = {}
    for path in sorted([root, *root.rglob("*")]):
        st = path.lstat()
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""
        out[str(path.relative_to(root))] = (st.st_mode, st.st_size, st.st_mtime_ns, digest)
    return out


def _descendants(pid: int) -> set[int]:
    found: set[int] = set()
    todo = [pid]
    while todo:
        try:  # a process that exits while we walk is simply not a descendant any more
            tasks = list(Path(f"/proc/{todo.pop()}/task").glob("*"))
        except OSError:
            continue
        for task in tasks:
            try:
                kids = (task / "children").read_text().split()
            except OSError:
                continue
            for k in map(int, kids):
                if k not in found:
                    found.add(k)
                    todo.append(k)
    return found


def _alive(pids: set[int]) -> set[int]:
    left = set()
    for p in pids:
        try:
            state = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state != "Z":
            left.add(p)
    return left


class Watched:
    """A ``runsc.py do`` run whose process family is sampled while it runs, so
    whatever of it outlives it is found."""

    def __init__(self, argv: list[str], flags: list[str] | None = None,
                 env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(sandbox_command(argv, flags or []), env=env or _base_env(),
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, start_new_session=True)
        self.family: set[int] = set()

    def finish(self, timeout: float) -> tuple[int, str, str]:
        deadline = time.monotonic() + timeout
        out = err = b""
        while True:
            self.family |= _descendants(self.proc.pid)
            try:
                out, err = self.proc.communicate(timeout=0.5)
                break
            except subprocess.TimeoutExpired:
                if time.monotonic() > deadline:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                    out, err = self.proc.communicate()
                    pytest.fail(f"the sandbox did not end in {timeout:.0f} s\n"
                                f"{out.decode(errors='replace')[-2000:]}"
                                f"{err.decode(errors='replace')[-2000:]}")
        return self.proc.returncode, out.decode(errors="replace"), err.decode(errors="replace")

    def assert_nothing_left(self) -> None:
        deadline = time.monotonic() + 5
        while _alive(self.family) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(self.family), f"processes left: {_alive(self.family)}"
        tag = f"pyvisor-{self.proc.pid}-"
        left = [n for n in os.listdir("/dev/shm") if tag in n]
        assert not left, f"/dev/shm objects left: {left}"


# -- trinity ------------------------------------------------------------------


def _need_trinity() -> None:
    if not os.path.exists(TRINITY):
        pytest.skip("trinity is not installed (apt-get install trinity)")
    if not os.path.exists(SETPRIV):
        pytest.skip("setpriv (util-linux) is not installed")


def run_trinity(seconds: int, children: int = 2) -> dict[str, object]:
    """trinity in a sandbox for ``seconds``, as uid 65534; the figures of the run."""
    _need_trinity()
    canary = Path(tempfile.mkdtemp(prefix="pyvisor-canary-"))
    try:
        (canary / "sub").mkdir()
        (canary / "file").write_text("canary\n")
        (canary / "sub" / "deep").write_bytes(os.urandom(4096))
        os.chmod(canary / "file", 0o666)  # writable by anyone: only the wall protects it
        os.chmod(canary / "sub", 0o777)
        os.chmod(canary, 0o777)
        before = _tree_digest(canary)
        argv = [TIMEOUT_BIN, "-s", "INT", "-k", "10", str(seconds), SETPRIV, "--reuid", "65534",
                "--regid", "65534", "--clear-groups", TRINITY, "-q", "-l", "off", "-a", "64",
                "-C", str(children), "-V", str(canary), "--disable-fds=sockets", "--stats"]
        start = time.monotonic()
        run = Watched(argv, ["--cwd", "/tmp"])
        code, out, err = run.finish(seconds + 120)
        elapsed = time.monotonic() - start
        run.assert_nothing_left()
        assert _tree_digest(canary) == before, "a host file changed under trinity"
    finally:
        shutil.rmtree(canary, ignore_errors=True)
    assert "Traceback" not in err and "internal error" not in err, err[-3000:]
    # timeout's 124: trinity ran its time and stopped on SIGINT (printing its
    # totals); 137: it did not stop within 10 s and timeout killed it (no
    # totals); 0: it finished.  Anything else is the Sentry's failure.
    assert code in (0, 124, 137), f"status {code}\n--- stderr ---\n{err[-3000:]}\n{out[-1500:]}"
    ran = [line for line in out.splitlines() if "Ran " in line and " syscalls" in line]
    assert ran or code == 137, f"trinity printed no totals\n{out[-3000:]}"
    syscalls = int(ran[-1].split("Ran ", 1)[1].split()[0]) if ran else -1
    return {"seconds": round(elapsed), "syscalls": syscalls, "status": code}


def test_trinity_slice() -> None:
    """A short trinity run: the sandbox ends cleanly, the canary is intact."""
    figures = run_trinity(8)
    print(f"trinity: {figures}")


@pytest.mark.slow
def test_trinity_long() -> None:
    seconds = int(os.environ.get("PYVISOR_TRINITY_SECONDS") or 300)
    figures = run_trinity(seconds, children=4)
    print(f"trinity: {figures}")


# -- stress-ng ----------------------------------------------------------------

STRESSORS = ["fork", "mmap", "pipe", "futex", "sigq", "signal"]


def _stress(args: list[str], seconds: int) -> str:
    if STRESS_NG is None:
        pytest.skip("stress-ng is not installed")
    run = Watched([STRESS_NG, *args, "--timeout", f"{seconds}s", "--metrics-brief"])
    code, out, err = run.finish(seconds * 4 + 90)
    run.assert_nothing_left()
    text = out + err
    assert code == 0 and "successful run completed" in text, f"status {code}\n{text[-3000:]}"
    return text


def test_stress_ng_slice() -> None:
    """Every stressor at once, briefly: no hang, no Sentry death, all pass."""
    args = [a for s in STRESSORS for a in (f"--{s}", "1")] + ["--mmap-bytes", "8m"]
    _stress(args, 3)


@pytest.mark.slow
@pytest.mark.parametrize("stressor", STRESSORS)
def test_stress_ng_long(stressor: str) -> None:
    extra = ["--mmap-bytes", "32m"] if stressor == "mmap" else []
    _stress([f"--{stressor}", "2", *extra], 30)


# -- exhaustion, with a second sandbox beside ---------------------------------

BESIDE_SCRIPT = "i=0; while [ $i -lt 30 ]; do echo line $i; i=$((i+1)); done | wc -l"


def _beside_ok(run: Watched) -> None:
    code, out, err = run.finish(120)
    assert (code, out.strip()) == (0, "30"), f"the sandbox beside: {code} {out!r} {err[-2000:]}"
    run.assert_nothing_left()


def test_descriptor_exhaustion(programs: Programs) -> None:
    """100,000 dups against RLIMIT_NOFILE: refused with EMFILE at the limit,
    the process goes on; a sandbox beside it is unaffected."""
    prog = str(programs.path("fd_exhaust"))
    bomb = Watched([prog])
    beside = Watched(["/bin/busybox", "sh", "-c", BESIDE_SCRIPT])
    code, out, err = bomb.finish(120)
    assert code == 0, err[-2000:]
    assert out == ("limit hard: opened up to the limit, then Too many open files\n"
                   "limit 1000: opened up to the limit, then Too many open files\n"
                   "still running\n"), out
    bomb.assert_nothing_left()
    _beside_ok(beside)


# -- what trinity found -----------------------------------------------------------


@pytest.mark.parametrize("name", ["kill_zombie", "sigchld_blocked_wait", "proc_stat_reaped"])
def test_found_by_trinity(programs: Programs, name: str) -> None:
    """Each printed something else in the sandbox than natively (see the
    programs' headers); trinity's watchdog hung on every one of them."""
    prog = programs.path(name)
    native = run_native([prog])
    sandboxed = run_sandbox([prog])
    assert native.returncode == 0, native.describe()
    assert (sandboxed.returncode, sandboxed.out) == (0, native.out), sandboxed.describe()


def test_dropped_root_lists_own_fds(programs: Programs) -> None:
    """Trinity (setpriv'ed to nobody) crashed on opendir of its own
    /proc/<pid>/fd, which failed with EACCES in the sandbox."""
    prog = programs.path("proc_fd_dropped")
    native = run_native([prog])
    sandboxed = run_sandbox([prog])
    assert native.out == "pid/fd: opendir ok\nself/fd: opendir ok\nself/fdinfo: opendir ok\n"
    assert (sandboxed.returncode, sandboxed.out) == (0, native.out), sandboxed.describe()


# -- bombs under the container's limits (OCI bundles) ----------------------------


def _bomb_bundle(make, programs: Programs, name: str,  # noqa: ANN001
                 resources: dict[str, object], cgroups_path: str | None) -> Path:
    from test_limits import _bundle_with

    return _bundle_with(make, [f"/bin/{name}"], {f"/bin/{name}": programs.path(name)},
                        resources, cgroups_path)


def test_fork_bomb_bounded_by_pids_limit(state_root: Path, cid: str,  # noqa: F811
                                         make_bundle, programs: Programs) -> None:  # noqa: ANN001,F811
    """A fork bomb in a container with pids.limit 40 hits EAGAIN and ends;
    a sandbox beside it completes its workload meanwhile."""
    from test_limits import _run_pyvisor

    b = _bomb_bundle(make_bundle, programs, "fork_bomb", {"pids": {"limit": 40}}, None)
    beside = Watched(["/bin/busybox", "sh", "-c", BESIDE_SCRIPT])
    res = _run_pyvisor(state_root, cid, b)
    assert res.returncode == 0, res.stderr
    assert res.stdout == "fork failed with EAGAIN\nbomb over\n", (res.stdout, res.stderr)
    _beside_ok(beside)


def test_mmap_bomb_bounded_by_memory_limit(state_root: Path, cid: str,  # noqa: F811
                                           make_bundle, programs: Programs) -> None:  # noqa: ANN001,F811
    """An mmap bomb in a container limited to 256 MiB is refused (ENOMEM) or
    the sandbox is OOM-killed as a whole: either way it ends, nothing is
    left, and a sandbox beside it is unaffected."""
    from test_limits import _remove_test_cgroups, _require_memory_cgroup, _run_pyvisor

    _require_memory_cgroup()
    rel = f"pyvisor-test-{cid}"
    b = _bomb_bundle(make_bundle, programs, "mmap_bomb", {"memory": {"limit": 256 << 20}},
                     f"/{rel}")
    beside = Watched(["/bin/busybox", "sh", "-c", BESIDE_SCRIPT])
    try:
        res = _run_pyvisor(state_root, cid, b)
    finally:
        _remove_test_cgroups(rel)
    assert "not bounded" not in res.stdout, res.stdout
    assert res.stdout.startswith("refused:") or res.returncode != 0, (res.stdout, res.stderr)
    assert "Traceback" not in res.stderr, res.stderr
    print(f"mmap bomb: status {res.returncode}, {res.stdout.strip()!r}")
    from helpers import processes_mentioning

    assert not processes_mentioning(cid)
    _beside_ok(beside)
