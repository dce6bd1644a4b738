"""Scheduling calls on an exited, unreaped child answer as Linux's do (it is
still found by pid) and give ESRCH once it is reaped."""

from __future__ import annotations

import pytest
from helpers import Programs, assert_same_as_native


@pytest.mark.sandbox
def test_sched_calls_find_a_zombie_as_linux(programs: Programs) -> None:
    assert_same_as_native(programs.path("sched_zombie"), markers=(
        "zombie policy: 0 errno 0", "zombie param: 0 prio 0", "zombie nice: 0 errno 0",
        "reaped policy: -1 errno 3"))


@pytest.mark.sandbox
def test_sched_calls_find_a_process_whose_leader_left(programs: Programs) -> None:
    """A process whose leader called pthread_exit while another thread runs
    on is still found by its pid (Linux keeps the leader's task until the
    process is reaped); the Sentry answered ESRCH there, so LTP's
    sched_setscheduler04 read a stale priority when its child was exiting."""
    assert_same_as_native(programs.path("sched_exiting"), markers=(
        "leader exited, a thread left: getparam ok, priority 0, scheduler 0",
        "zombie: getparam ok", "reaped: getparam No such process"))
