"""fcntl record-lock deadlock detection (EDEADLK), against Linux: issue 14's
fcntl17. Without it both waiters sleep forever (the run times out)."""

from __future__ import annotations

import pytest
from helpers import Programs, assert_same_as_native


@pytest.mark.sandbox
def test_setlkw_cycle_is_edeadlk(programs: Programs) -> None:
    assert_same_as_native(programs.path("lock_deadlock"), in_tmpdir=True, timeout=60, markers=(
        "deadlocks detected: 1", "the other waiter got its lock: 1"))
