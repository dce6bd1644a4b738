"""The Sentry's allowlist is what the Sentry really calls: workloads run with
the filter's default action set to SCMP_ACT_LOG (PYVISOR_SENTRY_SECCOMP=log),
and any call the kernel logged for the Sentry's pid (audit type 1326) is a call
off the list.  The default run has a slice of the workloads; the slow run has
every C test program and more real binaries.  The whole suite, which runs
with the filter in kill mode, is the widest check: a call off the list there
kills the Sentry (SIGSYS) and fails the test that made it."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest
from helpers import PROGRAMS_DIR, REPO_ROOT, Programs, _base_env, _run, sandbox_command

from syscalls.numbers import NAMES

AUDIT_SECCOMP = re.compile(r"type=1326 .*? pid=(\d+) .*? syscall=(\d+) .*? code=(0x[0-9a-f]+)")
STAMP = re.compile(r"\[\s*(\d+\.\d+)\]")
BUSYBOX = shutil.which("busybox") or "/bin/busybox"

FAST = [
    [BUSYBOX, "sh", "-c", "echo hi | cat; ls / >/dev/null; for i in 1 2 3; do true & done; "
     "wait; dd if=/dev/zero of=/tmp/z bs=64k count=8 2>/dev/null; cat /tmp/z >/dev/null; "
     "rm /tmp/z; sleep 0.05; cat /proc/self/status >/dev/null"],
    [sys.executable, "-c", "import os, socket, threading; a, b = socket.socketpair(); "
     "a.send(b'x'); b.recv(1); t = threading.Thread(target=len, args=('',)); t.start(); "
     "t.join(); pid = os.fork(); os._exit(0) if pid == 0 else os.waitpid(pid, 0)"],
]
FAST_PROGRAMS = ["sysv_shm", "shared_memfd", "sock_unix", "timerfd_signalfd", "fork_cow",
                 "mmap_patterns", "threads_mutex", "pty_basic"]


def _dmesg() -> list[str]:
    try:
        out = subprocess.run(["dmesg"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"the kernel log cannot be read here ({exc}): no way to see seccomp's log")
    if out.returncode != 0:
        pytest.skip(f"dmesg failed ({out.stderr.strip()}): the kernel log is not readable here")
    return out.stdout.splitlines()


def _stamp(line: str) -> float:
    """The kernel log's timestamp of ``line`` (the ring buffer drops old lines,
    so line numbers do not mark a point in it)."""
    m = STAMP.match(line)
    return float(m.group(1)) if m else 0.0


def _logged(since: float, pids: set[int]) -> dict[int, set[str]]:
    """Syscalls the kernel logged (or killed for) for ``pids`` after ``since``."""
    found: dict[int, set[str]] = {}
    for line in _dmesg():
        m = AUDIT_SECCOMP.search(line)
        if m and _stamp(line) > since and int(m.group(1)) in pids:
            nr = int(m.group(2))
            found.setdefault(int(m.group(1)), set()).add(NAMES.get(nr, str(nr)))
    return found


def _check(workloads: list[list[str]]) -> None:
    with open("/proc/sys/kernel/seccomp/actions_logged") as f:
        if "log" not in f.read().split():
            pytest.skip("this kernel does not log SECCOMP_RET_LOG (actions_logged lacks 'log')")
    before = max((_stamp(line) for line in _dmesg()), default=0.0)
    env = {**_base_env(), "PYVISOR_SENTRY_SECCOMP": "log", "PYTHONPATH": str(REPO_ROOT)}
    pids: dict[int, str] = {}
    for argv in workloads:
        res = _run(sandbox_command(argv), None, env, 60.0)
        assert res.returncode != 128 + 31, res.describe()  # the Sentry was killed
        pids[res.pid] = " ".join(argv)[:80]
    off = _logged(before, set(pids))
    assert not off, "calls off the Sentry's allowlist:\n" + "\n".join(
        f"{pids[p]}: {sorted(names)}" for p, names in off.items())


def _program_argv(programs: Programs, names: list[str]) -> list[list[str]]:
    return [[str(programs.path(n))] for n in names]


@pytest.mark.sandbox
def test_workload_slice_stays_on_the_allowlist(programs: Programs) -> None:
    _check(FAST + _program_argv(programs, FAST_PROGRAMS))


@pytest.mark.slow
@pytest.mark.sandbox
def test_every_program_stays_on_the_allowlist(programs: Programs) -> None:
    names = sorted(p.stem for p in PROGRAMS_DIR.glob("*.c"))
    more = [["/bin/sh", "-c", "ls -l /usr/bin | sort | head -3; date; id"],
            [sys.executable, "-c", "import json, subprocess; print(subprocess.run(['true']))"]]
    _check(FAST + more + _program_argv(programs, names))


def test_names_are_known() -> None:
    """Every listed name is a syscall libseccomp knows on this machine."""
    from sentry.confine_filters import NETWORK_MODES, sentry_allowlist

    known = set(NAMES.values())
    for mode in NETWORK_MODES:
        assert set(sentry_allowlist(mode)) <= known
    assert "socket" not in sentry_allowlist("none")
    assert "socket" not in sentry_allowlist("sandbox")
    assert "socket" in sentry_allowlist("host")
    assert os.path.isdir(REPO_ROOT / "sentry")
