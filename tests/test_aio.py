"""Linux native AIO (the raw calls libaio makes) against Linux: each command,
batches, the errors io_submit reports itself and those a completion carries,
eventfd notice, timeouts, cancel, destroy, and a fork child without the
context."""

from __future__ import annotations

import pytest
from helpers import Programs, assert_same_as_native


@pytest.mark.sandbox
def test_aio_matches_linux(programs: Programs) -> None:
    prog = programs.path("aio_calls")
    assert_same_as_native(prog, in_tmpdir=True, markers=(
        "getevents(6, 16): 6", "read: 'aio-vec' 'hel' 'lo '", "data 14 res -14",
        "eventfd count: 1", "fork child submit: EINVAL"))
