"""SCHED_DEADLINE through sched_setattr against Linux (syscalls/sched.py):
the parameter checks, the reservation read back, KEEP_PARAMS, and
sched_setscheduler's refusal.  Needs root natively (CAP_SYS_NICE), as the
suite runs."""

from __future__ import annotations

import os

import pytest
from helpers import Programs, assert_same_as_native


@pytest.mark.sandbox
@pytest.mark.skipif(os.geteuid() != 0, reason="SCHED_DEADLINE needs CAP_SYS_NICE natively")
def test_sched_deadline_matches_linux(programs: Programs) -> None:
    assert_same_as_native(programs.path("sched_deadline"), markers=(
        "runtime < 1024 = -1 errno 22", "10ms/30ms = 0 errno 0",
        "policy 6 runtime 10000000 deadline 30000000 period 30000000 prio 0",
        "kept runtime 10000000", "setscheduler deadline = -1 errno 22",
        "period read back 30000000", "back to other = 0 errno 0"))
