"""futex_waitv(2) and FUTEX_CMP_REQUEUE's argument checks against Linux
(syscalls/misc.py, FutexManager.wait_any in sentry/kernel/futex.py)."""

from __future__ import annotations

import pytest
from helpers import Programs, assert_same_as_native


@pytest.mark.sandbox
def test_futex_waitv_and_requeue_checks_match_linux(programs: Programs) -> None:
    assert_same_as_native(programs.path("futex_waitv"), markers=(
        "woken index = 1 errno 0", "changed word = -1 errno 11", "timeout = -1 errno 110",
        "size u64 = -1 errno 22", "bad array = -1 errno 14",
        "requeue negative move = -1 errno 22", "requeue uaddr2 PROT_NONE = -1 errno 14",
        "requeue ok = 0 errno 0"))
