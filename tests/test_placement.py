"""CPU placement (sentry/placement.py), watched from the host.

The sandbox's Sentry, Gofer, zygote and stubs share one home CPU; a stub
thread that computes without trapping is let out to every CPU of the set and
comes home once it traps often again. The application still sees every CPU.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import RUNSC, Programs, host_children, run_native, run_sandbox, sentry_pid

pytestmark = pytest.mark.sandbox

CPUS = frozenset(os.sched_getaffinity(0))
needs_two = pytest.mark.skipif(len(CPUS) < 2, reason="placement only pins with 2+ CPUs here")


def _affinity(pid: int) -> frozenset[int] | None:
    try:
        return frozenset(os.sched_getaffinity(pid))
    except OSError:
        return None


def _expect_line(proc: subprocess.Popen[bytes], want: bytes) -> None:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line == want + b"\n", f"expected {want!r}, got {line!r}"


def _widehost_children(sentry: int) -> list[int]:
    return [p for p in host_children(sentry) if _affinity(p) == CPUS]


@needs_two
def test_home_cpu_and_a_computing_thread_let_out(programs: Programs) -> None:
    exe = programs.path("placement_phases")
    with subprocess.Popen([sys.executable, str(RUNSC), "do", "--", str(exe)],
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE) as proc:
        _watch_phases(proc)
        assert proc.wait(timeout=30) == 0


def _watch_phases(proc: subprocess.Popen[bytes]) -> None:
    try:
        _expect_line(proc, b"computing")
        sentry = sentry_pid(proc.pid)
        home = _affinity(sentry)
        assert home is not None and len(home) == 1, f"the Sentry runs on {home}"
        kids = host_children(sentry)
        assert len(kids) >= 3  # the Gofer, the zygote, the stub
        # The program computes until told to stop, so this waits for the event
        # itself; the deadline is only there so a stub never let out fails.
        deadline = time.monotonic() + 30
        while not _widehost_children(sentry) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(_widehost_children(sentry)) == 1, "the computing stub was not let out"
        others = [_affinity(p) for p in kids if _affinity(p) != CPUS]
        assert all(a == home for a in others if a is not None)

        assert proc.stdin is not None
        proc.stdin.write(b"x")  # computing ends: the trapping phase
        proc.stdin.flush()
        _expect_line(proc, b"trapping")
        _expect_line(proc, b"resting")
        assert _widehost_children(sentry) == [], "a stub that traps often did not come home"
        assert _affinity(sentry) == home
    finally:
        if proc.stdin is not None:
            proc.stdin.close()  # the program's last read ends: it exits


def test_the_application_sees_every_cpu(busybox: Path) -> None:
    script = "nproc; grep -c ^processor /proc/cpuinfo"
    native = run_native([str(busybox), "sh", "-c", script])
    boxed = run_sandbox([str(busybox), "sh", "-c", script])
    assert native.stdout.split() == [str(len(CPUS)).encode()] * 2
    assert boxed.stdout == native.stdout
    assert boxed.returncode == 0


FOREIGN_PROC_CHILD = r"""
import ctypes, os, sys
sys.path.insert(0, sys.argv[1])
from sentry import placement
if ctypes.CDLL(None, use_errno=True).unshare(0x20000000) != 0:
    sys.exit(3)
pid = os.fork()
if pid == 0:  # pid 1 of a new pid namespace, still with the host's /proc
    print(os.getpid(), placement._pin_process(os.getpid(), 0), flush=True)
    os._exit(0)
os.waitpid(pid, 0)
"""


def test_nothing_is_pinned_through_another_namespaces_proc() -> None:
    """A Sentry in a pid namespace of its own that could not mount that
    namespace's /proc (PYVISOR_SENTRY_MOUNT_NS=0) pins nothing: /proc/PID
    of the host's procfs is some other process."""
    res = subprocess.run([sys.executable, "-c", FOREIGN_PROC_CHILD, str(RUNSC.parent)],
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["1", "False"]
