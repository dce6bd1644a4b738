"""Linux behaviours found missing by the Linux Test Project (issue 14),
each differential against the host: clock_nanosleep's errno per clock,
RLIMIT_FSIZE, CPU time in /proc/PID/stat, and what uname reports."""

from __future__ import annotations

import re
import shutil
import tempfile

import pytest
from helpers import PROGRAMS_DIR, Programs, run_native, run_sandbox

from sentry.kernel.kernel import DEFAULT_RELEASE


def _same(native: object, sandboxed: object) -> None:
    assert native.returncode == 0, native.describe()  # type: ignore[attr-defined]
    got = (sandboxed.out, sandboxed.err, sandboxed.returncode)  # type: ignore[attr-defined]
    want = (native.out, native.err, native.returncode)  # type: ignore[attr-defined]
    assert got == want, sandboxed.describe()  # type: ignore[attr-defined]


@pytest.mark.parametrize("variant", ["static", "static-pie"])
def test_clock_nanosleep_errors(programs: Programs, variant: str) -> None:
    prog = programs.path("clock_nanosleep_errs", variant)
    native = run_native([prog])
    assert "clock 4: -1 EOPNOTSUPP" in native.out  # MONOTONIC_RAW: readable, not sleepable
    _same(native, run_sandbox([prog]))


@pytest.mark.parametrize("variant", ["static", "static-pie"])
def test_rlimit_fsize(programs: Programs, variant: str) -> None:
    prog = programs.path("fsize_limit", variant)
    with tempfile.TemporaryDirectory(prefix="pyvisor-fsize-") as nat_dir, \
            tempfile.TemporaryDirectory(prefix="pyvisor-fsize-") as box_dir:
        native = run_native([prog, nat_dir])
        sandboxed = run_sandbox([prog, box_dir])
    assert "default action: signaled 1 sig 25" in native.out
    _same(native, sandboxed)


CPU_TIME = """
import os, time
def utime():
    return int(open(f"/proc/{os.getpid()}/stat").read().rsplit(")", 1)[1].split()[11])
start, deadline, x = utime(), time.monotonic() + 30, 0
while utime() - start < 20 and time.monotonic() < deadline:
    for i in range(100000):
        x += i
print("utime advanced", utime() - start >= 20)
"""


def test_proc_stat_utime_advances() -> None:
    """A loop that waits for its own utime to grow ended only at its deadline:
    /proc/PID/stat showed 0 until the process exited."""
    native = run_native(["python3", "-c", CPU_TIME])
    assert native.out == "utime advanced True\n", native.describe()
    _same(native, run_sandbox(["python3", "-c", CPU_TIME]))


def test_uname_reports_a_current_release() -> None:
    """uname -r is the documented DEFAULT_RELEASE (gVisor's 4.4.0 made
    programs switch off what the sandbox supports); the other fields keep
    the host's shape."""
    sandboxed = run_sandbox(["uname", "-srm"])
    native = run_native(["uname", "-sm"])
    assert sandboxed.returncode == 0, sandboxed.describe()
    sysname, release, machine = sandboxed.out.split()
    assert f"{sysname} {machine}\n" == native.out
    assert release == DEFAULT_RELEASE and re.fullmatch(r"[5-9]\.\d+\.\d+", release)


@pytest.mark.parametrize("variant", ["static", "static-pie"])
def test_scheduling_parameters(programs: Programs, variant: str) -> None:
    """sched_* policies and priorities, sched_attr, nice and I/O priority with
    Linux's rules (they were ENOSYS); the values are recorded, not applied."""
    prog = programs.path("sched_params", variant)
    native = run_native([prog])
    assert "rr interval: 0 -" in native.out and "user rr: -1 EPERM" in native.out
    _same(native, run_sandbox([prog]))


@pytest.mark.parametrize("variant", ["static", "static-pie"])
def test_timerfd_and_signalfd(programs: Programs, variant: str) -> None:
    """timerfd and signalfd (they were ENOSYS), read directly and through
    poll and epoll."""
    prog = programs.path("timerfd_signalfd", variant)
    native = run_native([prog])
    assert "at least 4 expirations: 1" in native.out and "pid is child 1" in native.out
    _same(native, run_sandbox([prog]))


@pytest.mark.parametrize("variant", ["static", "static-pie"])
def test_misc_calls(programs: Programs, variant: str) -> None:
    """utime*, old getdents, preadv/pwritev (+2), readahead, fadvise64,
    sync_file_range, personality, membarrier, syslog, sethostname and
    get_robust_list (all ENOSYS before). Natively in a new UTS namespace, so
    sethostname leaves the host alone."""
    prog = programs.path("misc_calls", variant)
    with tempfile.TemporaryDirectory(prefix="pyvisor-misc-") as nat_dir, \
            tempfile.TemporaryDirectory(prefix="pyvisor-misc-") as box_dir:
        native = run_native(["unshare", "--uts", prog, nat_dir])
        sandboxed = run_sandbox([prog, box_dir])
    assert "nodename sandboxed-host" in native.out, native.describe()
    _same(native, sandboxed)


@pytest.mark.parametrize("variant", ["static", "static-pie"])
def test_inotify_events(programs: Programs, variant: str) -> None:
    """inotify (ENOSYS before): events for a watched directory and file in
    Linux's order, with its errors, merging, IN_ONESHOT and FIONREAD."""
    prog = programs.path("inotify_events", variant)
    with tempfile.TemporaryDirectory(prefix="pyvisor-inotify-") as nat_dir, \
            tempfile.TemporaryDirectory(prefix="pyvisor-inotify-") as box_dir:
        native = run_native([prog, nat_dir])
        sandboxed = run_sandbox([prog, box_dir])
    assert "file DELETE_SELF" in native.out and "cookie=A" in native.out
    _same(native, sandboxed)


def test_inotifywait() -> None:
    """The real inotifywait (inotify-tools) on a directory being written."""
    if shutil.which("inotifywait") is None:
        pytest.skip("inotifywait not installed (apt-get install -y inotify-tools)")
    script = str(PROGRAMS_DIR / "sh" / "inotifywait_dir.sh")
    native = run_native(["sh", script])
    assert native.out.splitlines()[-1] == "DELETE a", native.describe()
    _same(native, run_sandbox(["sh", script]))


@pytest.mark.parametrize("variant", ["static", "static-pie"])
def test_pidfds(programs: Programs, variant: str) -> None:
    """pidfd_open, pidfd_send_signal and pidfd_getfd (ENOSYS before)."""
    prog = programs.path("pidfd_calls", variant)
    native = run_native([prog])
    assert "through the child's pipe: x" in native.out and "poll reaped 17" in native.out
    _same(native, run_sandbox([prog]))
