"""What a sandbox is doing, as runsc's debug command shows it: `do --profile`
checked against strace's count of the same program run natively, and
`debug --stacks` / `debug --profile` on a running container."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import run_sandbox
from test_oci import make_bundle, runsc, runsc_bg, state_root  # noqa: F401 - fixtures

pytestmark = [pytest.mark.root, pytest.mark.sandbox]
PROGRAM = [sys.executable, "-c", "import json"]


def _strace_counts(tmp_path: Path) -> dict[str, int]:
    strace = shutil.which("strace")
    if strace is None:
        pytest.skip("strace is not installed (the native side of the comparison)")
    out = tmp_path / "strace.txt"
    subprocess.run([strace, "-f", "-c", "-o", str(out), *PROGRAM], check=True,
                   capture_output=True, timeout=60)
    counts = {}
    for line in out.read_text().splitlines():
        m = re.match(r"\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)\s*$", line)
        if m and m[2] != "total":
            counts[m[2]] = int(m[1])
    assert counts, out.read_text()
    return counts


def test_do_profile_agrees_with_strace(tmp_path: Path) -> None:
    """The same syscalls as strace counts natively (those made five times or
    more), each within an order of magnitude; the table form says the same."""
    native = _strace_counts(tmp_path)
    box = run_sandbox(PROGRAM, extra_flags=["--profile", "--profile-format", "json"])
    assert box.returncode == 0, box.describe()
    snap = json.loads(box.err[box.err.index("{"):])
    ours = {r["name"]: r["count"] for r in snap["syscalls"]}
    for name, n in native.items():
        if n >= 5:
            assert name in ours, (name, native, ours)
            assert n / 10 <= ours[name] <= n * 10, (name, n, ours[name])
    assert snap["callers"][0]["count"] == sum(ours.values())
    assert snap["app_cpu_ns"] > 0 and snap["handler_ns"] > 0
    table = run_sandbox(PROGRAM, extra_flags=["--profile"])
    assert table.returncode == 0, table.describe()
    assert re.search(r"^openat\s+\d+\s+\d+", table.err, re.M), table.err
    assert "top callers: 1 (python3)" in table.err


def test_debug_stacks_and_profile_of_a_running_container(
        state_root: Path, make_bundle: Callable[..., Path], tmp_path: Path) -> None:  # noqa: F811
    cid = f"debug-{tmp_path.name[-8:]}"
    b = make_bundle(["sh", "-c", "while :; do cat /bin/sh > /dev/null; done & exec sleep 60"])
    res = runsc_bg(state_root, "create", "--bundle", str(b), cid)
    assert res.returncode == 0, res.stderr
    try:
        assert runsc(state_root, "start", cid).returncode == 0
        res = runsc(state_root, "debug", "--profile", "--duration", "1s", "--format", "json", cid)
        assert res.returncode == 0, res.stderr
        snap = json.loads(res.stdout)
        names = {r["name"]: r["count"] for r in snap["syscalls"]}
        assert names.get("clone", 0) > 0 and names.get("execve", 0) > 0, names
        again = runsc(state_root, "debug", "--profile", "--duration", "200ms", cid)
        assert again.returncode == 0 and "syscall" in again.stdout, again.stderr
        res = runsc(state_root, "debug", "--stacks", "--format", "json", cid)
        assert res.returncode == 0, res.stderr
        tasks = json.loads(res.stdout)
        sleeper = [t for t in tasks if t["comm"] == "sleep"]
        assert sleeper and "nanosleep" in (sleeper[0]["syscall"] or ""), tasks
        assert any("task.py" in line for line in sleeper[0]["stack"]), sleeper
        text = runsc(state_root, "debug", "--stacks", cid)
        assert f"(pid {sleeper[0]['pid']}, sleep)" in text.stdout, text.stdout
        bad = runsc(state_root, "debug", cid)
        assert bad.returncode != 0 and "exactly one" in bad.stderr
        bad = runsc(state_root, "debug", "--profile", "--duration", "nonsense", cid)
        assert bad.returncode != 0 and "invalid duration" in bad.stderr
    finally:
        runsc(state_root, "delete", "--force", cid)
    gone = runsc(state_root, "debug", "--stacks", cid)
    assert gone.returncode != 0 and "Traceback" not in gone.stderr
