"""Time namespaces (sentry/kernel/timens.py) against Linux: issue 14's
clock_gettime03, clock_nanosleep03, timerfd04 and sysinfo03 need them, and
the vDSO must not read an offset namespace's clocks from its shared page."""

from __future__ import annotations

import pytest
from helpers import Programs, assert_same_as_native


@pytest.mark.sandbox
def test_time_namespaces_match_linux(programs: Programs) -> None:
    assert_same_as_native(programs.path("time_ns"), markers=(
        "first namespace: write Permission denied",
        "after unshare: time != time_for_children: 1",
        "bad clock: Invalid argument",
        "monotonic         100         0",
        "child: MONOTONIC +100 (syscall 1, vDSO 1)",
        "child: MONOTONIC_RAW/COARSE +100: 1 1",
        "child: BOOTTIME -5 (syscall 1, vDSO 1)",
        "child: sysinfo uptime -5: 1, /proc/uptime agrees: 1",
        "child: write after entering: Permission denied",
        "child: timerfd ABSTIME: 1 tick, after it: 1",
        "child: MONOTONIC unshifted again (syscall 1, vDSO 1)",
        "parent: still unshifted: 1"))
