"""Lease breaking against Linux (issue 14's fcntl33): the holder is
signalled, the opener waits for the downgrade or removal, O_NONBLOCK opens
get EWOULDBLOCK, and F_GETLEASE shows the break's target."""

from __future__ import annotations

import pytest
from helpers import Programs, assert_same_as_native


@pytest.mark.sandbox
def test_lease_break_matches_linux(programs: Programs) -> None:
    assert_same_as_native(programs.path("lease_break"), in_tmpdir=True, markers=(
        "signal for the O_NONBLOCK open: 1", "F_GETLEASE while breaking for a writer: 2",
        "read lease during that break: EAGAIN",
        "child: O_NONBLOCK open EWOULDBLOCK 1, read open after the downgrade 1, "
        "write open after the removal 1"))
