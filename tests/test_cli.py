"""The CLI around the sandbox: the syscall table report, the debug log's
report of unimplemented syscalls, and strace output."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import RUNSC, Programs, run_native, run_sandbox


def _runsc(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(RUNSC), *args], capture_output=True, text=True,
                          timeout=60)


def test_help_syscalls_table() -> None:
    res = _runsc("help", "syscalls")
    assert res.returncode == 0, res.stderr
    lines = res.stdout.strip().splitlines()
    assert lines[0].split() == ["NR", "NAME", "SUPPORT", "NOTE"]
    assert any(ln.split()[:3] == ["0", "read", "supported"] for ln in lines)
    assert any(ln.split()[:2] == ["59", "execve"] for ln in lines)
    assert "supported" in lines[-1] and "unsupported" in lines[-1]


def test_help_syscalls_json_covers_every_number() -> None:
    res = _runsc("help", "syscalls", "--format", "json")
    rows = json.loads(res.stdout)
    names = {r["name"]: r for r in rows}
    assert names["write"]["support"] == "supported"
    assert names["vserver"]["support"] == "unsupported"
    assert len(rows) >= 362


@pytest.mark.sandbox
def test_unsupported_syscall_reported_once(programs: Programs, tmp_path: Path) -> None:
    """References: syscall 1000 does not exist on Linux, so the native run's
    lines are what the sandbox must print for it; vserver is a number Linux reserves,
    and the sandbox's own table (`help syscalls`) declares it unsupported,
    which by the project's rule is ENOSYS."""
    log = tmp_path / "debug.log"
    prog = programs.path("unsupported_twice")
    nat = run_native([prog])
    nat_1000 = [ln for ln in nat.out.splitlines() if ln.startswith("1000 ")]
    assert nat.returncode == 0 and len(nat_1000) == 2, nat.describe()
    table = {r["name"]: r["support"]
             for r in json.loads(_runsc("help", "syscalls", "--format", "json").stdout)}
    assert table["vserver"] == "unsupported"
    res = run_sandbox([prog], extra_flags=["--debug", "--debug-log", str(log)])
    assert res.returncode == 0, res.describe()
    assert res.out == f"vserver -1 ENOSYS\n{nat_1000[0]}\n" * 2, res.describe()
    text = log.read_text()
    assert text.count("unsupported syscall vserver (236)") == 1, text
    assert text.count("(1000)") == 1, text


@pytest.mark.sandbox
def test_strace_lines(programs: Programs, tmp_path: Path) -> None:
    log = tmp_path / "strace.log"
    res = run_sandbox([programs.path("hello")], extra_flags=["--strace", "--debug-log", str(log)])
    assert res.returncode == 0, res.describe()
    text = log.read_text()
    assert "write(1, " in text and " = " in text
    assert "exit_group(0) = ?" in text


def test_unprivileged_gets_one_line(tmp_path: Path) -> None:
    """Root without capabilities (an empty bounding set) is told so in one line."""
    res = subprocess.run(
        ["setpriv", "--bounding-set=-all", "--inh-caps=-all", sys.executable,
         str(RUNSC), "do", "--", "/bin/true"],
        capture_output=True, text=True, timeout=60,
    )
    assert res.returncode == 1
    assert res.stderr.count("\n") == 1 and "root" in res.stderr, res.stderr
