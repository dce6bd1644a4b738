"""/proc/sys/kernel/ns_last_pid and pid reuse: the LTP's pidfd_send_signal03
gives a second process a freed pid and expects the first one's /proc/<pid>
directory not to reach it."""

from __future__ import annotations

import pytest
from helpers import Programs, assert_same_as_native, run_sandbox


@pytest.mark.sandbox
def test_ns_last_pid_matches_linux(programs: Programs) -> None:
    assert_same_as_native(programs.path("ns_last_pid"), markers=(
        "init: ns_last_pid 1", "read back: 99", "next fork got 100: 1",
        "write -1: Invalid argument", "write past pid_max: Invalid argument"))


@pytest.mark.sandbox
def test_reused_pid_is_another_proc_directory(programs: Programs) -> None:
    # Sandbox only: natively this writes the host's root namespace's ns_last_pid.
    res = run_sandbox([programs.path("ns_last_pid"), "reuse"])
    assert res.returncode == 0, res.describe()
    assert res.out.splitlines() == [
        "set ns_last_pid: ok", "pid handed out again: 1", "new /proc dir has another inode: 1",
        "signal through the old directory: No such process",
        "signal 0 through the new one: sent"], res.describe()
