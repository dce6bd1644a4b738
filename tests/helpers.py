"""Running programs natively and under ``runsc.py do`` for the tests.

Facts the helpers rely on:

- ``subprocess`` reports a child killed by signal N as returncode -N; a shell
  (and ``runsc.py do``, which exits as a shell would) reports 128+N.
- Every child is started in its own session, so a hung run can be killed as a
  whole process group, stubs and helpers included, when the timeout expires.
- A zombie's /proc/PID/cmdline is empty, so scanning cmdlines finds only
  processes that are really still alive.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
RUNSC = REPO_ROOT / "runsc.py"
PROGRAMS_DIR = Path(__file__).resolve().parent / "programs"
TIMEOUT = 60.0

# Environment variables the tests set themselves; never inherited from the caller.
_TEST_ENV_PREFIX = "PYVISOR_"


@dataclass(frozen=True)
class Result:
    """One finished run: what a differential test compares."""

    argv: tuple[str, ...]
    returncode: int
    stdout: bytes
    stderr: bytes
    pid: int

    @property
    def out(self) -> str:
        return self.stdout.decode("utf-8", "replace")

    @property
    def err(self) -> str:
        return self.stderr.decode("utf-8", "replace")

    def describe(self) -> str:
        return (
            f"argv: {list(self.argv)}\nreturncode: {self.returncode}\n"
            f"--- stdout ---\n{self.out}--- stderr ---\n{self.err}"
        )


@dataclass
class Programs:
    """The compiled test programs: ``path(name, variant)`` -> executable."""

    built: dict[tuple[str, str], Path] = field(default_factory=dict)
    errors: dict[tuple[str, str], str] = field(default_factory=dict)
    unsupported: dict[str, str] = field(default_factory=dict)

    def path(self, name: str, variant: str = "static") -> Path:
        if variant in self.unsupported:
            pytest.skip(f"gcc cannot build {variant} here: {self.unsupported[variant]}")
        if (name, variant) in self.errors:
            pytest.fail(f"compiling {name}.c ({variant}) failed:\n{self.errors[name, variant]}")
        if (name, variant) not in self.built:
            pytest.fail(f"no program {name!r} in {PROGRAMS_DIR}")
        return self.built[name, variant]


def _base_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_TEST_ENV_PREFIX)}
    env.update(extra or {})
    return env


def _run(
    cmd: Sequence[str],
    stdin: bytes | None,
    env: Mapping[str, str],
    timeout: float,
    cwd: str | os.PathLike[str] | None = None,
) -> Result:
    proc = subprocess.Popen(
        list(cmd),
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=dict(env),
        cwd=cwd,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(stdin, timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        out, err = proc.communicate()
        pytest.fail(
            f"timed out after {timeout:.0f} s: {list(cmd)}\n"
            f"--- stdout ---\n{out.decode('utf-8', 'replace')}"
            f"--- stderr ---\n{err.decode('utf-8', 'replace')}"
        )
    return Result(tuple(cmd), proc.returncode, out, err, proc.pid)


def run_native(
    argv: Sequence[str | os.PathLike[str]],
    stdin: bytes | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = TIMEOUT,
) -> Result:
    """Run ``argv`` directly on the host. ``env`` adds variables to a cleaned
    copy of the test process's environment. stdin: bytes through a pipe, or
    /dev/null when None."""
    return _run([os.fspath(a) for a in argv], stdin, _base_env(env), timeout)


def run_native_on_loop(prog: str, mnt: str) -> Result:
    """Run ``prog DEVICE MNT`` natively on a fresh loop device over a 2 MiB
    file, in its own mount namespace: the native side of a program that the
    sandbox runs on its RAM disk (mkfs.ext2 and mount on a block device)."""
    mkfs, losetup, unshare = (shutil.which(n) for n in ("mkfs.ext2", "losetup", "unshare"))
    if not (mkfs and losetup and unshare):
        pytest.skip("mkfs.ext2, losetup or unshare missing: the native side needs a loop "
                    "device and its own mount namespace (apt-get install e2fsprogs util-linux)")
    with tempfile.NamedTemporaryFile(prefix="pyvisor-loop-") as img:
        img.truncate(2 << 20)
        img.flush()
        made = subprocess.run([losetup, "-f", "--show", img.name], capture_output=True,
                              text=True, timeout=TIMEOUT)
        if made.returncode != 0:
            pytest.skip(f"this host gives the tests no loop device: {made.stderr.strip()}")
        dev = made.stdout.strip()
        try:
            return run_native([unshare, "--mount", "--propagation", "private", prog, dev, mnt])
        finally:
            subprocess.run([losetup, "-d", dev], check=False, timeout=TIMEOUT)


def sandbox_command(
    argv: Sequence[str | os.PathLike[str]],
    extra_flags: Iterable[str] = (),
    env: Mapping[str, str] | None = None,
) -> list[str]:
    """The command line that runs ``argv`` under ``runsc.py do``; ``env``
    becomes ``-e K=V`` flags."""
    cmd = [sys.executable, os.fspath(RUNSC), "do", *extra_flags]
    for key, value in (env or {}).items():
        cmd += ["-e", f"{key}={value}"]
    return [*cmd, "--", *(os.fspath(a) for a in argv)]


def run_sandbox(
    argv: Sequence[str | os.PathLike[str]],
    stdin: bytes | None = None,
    extra_flags: Iterable[str] = (),
    env: Mapping[str, str] | None = None,
    timeout: float = TIMEOUT,
) -> Result:
    """Run ``argv`` under ``python3 runsc.py do [extra_flags] [-e K=V]... -- argv``.
    The returned argv is the program's, not the runsc command line."""
    if not RUNSC.is_file():
        pytest.fail(f"{RUNSC} does not exist yet")
    res = _run(sandbox_command(argv, extra_flags, env), stdin, _base_env(), timeout)
    return res


def shm_names_of(pid: int) -> set[str]:
    """The /dev/shm objects (channel segments, semaphores) process ``pid``
    made: shm/channel.py names them pyvisor-PID-..., so a sandbox's own are
    found by its Sentry's pid, whatever other sandboxes run on the host."""
    tag = f"pyvisor-{pid}-"
    return {n for n in os.listdir("/dev/shm") if tag in n}


def shm_names_orphaned(before: set[str]) -> set[str]:
    """Objects in /dev/shm that are not in ``before`` and whose creator (the
    pid in the name) is dead: leaked, by whoever made them.  For runs whose
    Sentry pid is not known; a live sandbox's objects never count."""
    left = set()
    for name in set(os.listdir("/dev/shm")) - before:
        part = name.split("pyvisor-", 1)[1:] or [""]
        pid = part[0].split("-", 1)[0]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            left.add(name)
    return left


def runsc_in(directory: Path) -> Path:
    """runsc.py linked into ``directory``, for tests of `runsc.py install`: it
    writes its launcher beside the runsc.py it runs as, so a test's launcher
    lands in the test's own directory, never in the shared checkout (where
    concurrent runs would overwrite one another's).  Imports still find this
    checkout: Python puts the link's resolved directory on sys.path."""
    link = Path(directory) / "runsc.py"
    if not link.is_symlink():
        link.symlink_to(RUNSC)
    return link


def shell_status(returncode: int) -> int:
    """A subprocess returncode as a shell reports it: -N (killed by signal N)
    becomes 128+N."""
    return 128 - returncode if returncode < 0 else returncode


def processes_mentioning(text: str) -> list[tuple[int, str]]:
    """Live processes (other than this one) whose command line contains ``text``."""
    found = []
    me = os.getpid()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            raw = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        cmdline = raw.replace(b"\0", b" ").decode("utf-8", "replace")
        if text in cmdline:
            found.append((int(entry.name), cmdline.strip()))
    return found


def assert_no_process_left(text: str, grace: float = 2.0) -> None:
    """Fail if a process mentioning ``text`` is still alive after ``grace`` s."""
    deadline = time.monotonic() + grace
    while True:
        left = processes_mentioning(text)
        if not left:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"processes left behind mentioning {text!r}: {left}")
        time.sleep(0.05)


def sentry_pid(cmd_pid: int, timeout: float = 30.0) -> int:
    """The Sentry of a `runsc.py do` whose process is ``cmd_pid``: its child,
    pid 1 of a pid namespace of its own (sentry/pidns.py), or ``cmd_pid``
    itself where that namespace is turned off (PYVISOR_SENTRY_PID_NS=0)."""
    import time

    if os.environ.get("PYVISOR_SENTRY_PID_NS") == "0":
        return cmd_pid

    def ns(pid: int) -> str:
        return os.readlink(f"/proc/{pid}/ns/pid")

    deadline = time.monotonic() + timeout
    while True:
        try:
            mine = ns(cmd_pid)
        except OSError:
            return cmd_pid  # gone
        for kid in host_children(cmd_pid):
            try:
                if ns(kid) != mine:
                    return kid
            except OSError:
                continue
        if time.monotonic() > deadline:
            raise AssertionError(f"no Sentry in a pid namespace under {cmd_pid}")
        time.sleep(0.01)  # polls while the command's Python starts


def host_children(pid: int) -> list[int]:
    """Host processes whose parent is ``pid`` (a sandbox's Gofer, zygote, stubs)."""
    kids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            kids.append(int(entry))
    return kids


def assert_same_as_native(prog: Path, *, markers: Iterable[str] = (), in_tmpdir: bool = False,
                          timeout: float = TIMEOUT) -> Result:
    """The differential check: ``prog`` natively and in the sandbox (each given
    a fresh temporary directory as its argument when ``in_tmpdir``); native
    must succeed and print every line of ``markers`` (so the comparison
    compares something), and the sandbox must print the same stdout and
    stderr and exit the same way. Returns the native run."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="pyvisor-diff-") as nat_dir, \
            tempfile.TemporaryDirectory(prefix="pyvisor-diff-") as box_dir:
        nat = run_native([prog, nat_dir] if in_tmpdir else [prog])
        box = run_sandbox([prog, box_dir] if in_tmpdir else [prog], timeout=timeout)
    assert nat.returncode == 0, nat.describe()
    for line in markers:
        assert line in nat.out, (line, nat.describe())
    assert box.out == nat.out, box.describe()
    assert (box.returncode, box.err) == (nat.returncode, nat.err), box.describe()
    return nat
