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
