"""Waiting for one child while another is an unreaped zombie (issue 19).

CPython's test_posix.test_waitid and test_multiprocessing_spawn's
test_resource_tracker, test_global_named_resource_spawn and test_noforkbomb
stalled only in whole-module runs: earlier tests had left zombie children
behind, and wait4/waitid for one particular child slept on a "some child
changed" hint that the foreign zombie kept true. The wait loop then spun
holding the kernel lock, so the awaited child could neither exec nor exit.

Both programs here stalled before the fix (the test fails on its timeout) and
must print what they print natively.
"""

from __future__ import annotations

import shutil

import pytest
from helpers import Programs, Result, run_native, run_sandbox, shell_status

pytestmark = pytest.mark.sandbox

TIMEOUT = 60.0

# Python's own wait path: subprocess's waitpid(pid) and a multiprocessing
# spawn child's join, with a zombie left by an earlier fork.
PY_SCRIPT = r"""
import os, subprocess, sys
zombie = os.fork()
if zombie == 0:
    os._exit(3)
# WNOWAIT: until it is a zombie, but leave it unreaped
info = os.waitid(os.P_PID, zombie, os.WEXITED | os.WNOWAIT)
print("zombie", info.si_status)
print("subprocess", subprocess.call([sys.executable, "-c", "raise SystemExit(4)"]))
pid = os.fork()
if pid == 0:
    os.execv(sys.executable, [sys.executable, "-c", "pass"])
print("waitid", os.waitid(os.P_PID, pid, os.WEXITED).si_status)
print("reaped", os.waitstatus_to_exitcode(os.waitpid(zombie, 0)[1]))
"""


def check_same(nat: Result, box: Result) -> None:
    assert "internal error" not in box.err, box.describe()
    assert box.out == nat.out, f"native:\n{nat.describe()}\nsandbox:\n{box.describe()}"
    assert box.returncode == shell_status(nat.returncode), (
        f"native:\n{nat.describe()}\nsandbox:\n{box.describe()}")


@pytest.mark.parametrize("variant", ["static", "static-pie"])
def test_wait_for_one_child_beside_a_zombie(programs: Programs, variant: str) -> None:
    prog = programs.path("wait_other_zombie", variant)
    nat = run_native([prog], timeout=TIMEOUT)
    box = run_sandbox([prog], timeout=TIMEOUT)
    check_same(nat, box)
    assert "waitid: code=1 status=5 same_pid=1" in box.out


def test_python_subprocess_and_waitid_beside_a_zombie() -> None:
    python = shutil.which("python3", path="/usr/bin:/bin")
    if python is None:
        pytest.skip("no python3 in /usr/bin or /bin to run in the sandbox")
    nat = run_native([python, "-c", PY_SCRIPT], timeout=TIMEOUT)
    box = run_sandbox([python, "-c", PY_SCRIPT], timeout=TIMEOUT)
    check_same(nat, box)
    assert box.out == "zombie 3\nsubprocess 4\nwaitid 0\nreaped 3\n"
