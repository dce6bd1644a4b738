"""Linux native AIO (the raw calls libaio makes) against Linux: each command,
batches, the errors io_submit reports itself and those a completion carries,
eventfd notice, timeouts, cancel, destroy, and a fork child without the
context."""

from __future__ import annotations

import tempfile

import pytest
from helpers import Programs, run_native, run_sandbox


@pytest.mark.sandbox
def test_aio_matches_linux(programs: Programs) -> None:
    prog = programs.path("aio_calls")
    with tempfile.TemporaryDirectory(prefix="pyvisor-aio-") as nat_dir, \
            tempfile.TemporaryDirectory(prefix="pyvisor-aio-") as box_dir:
        nat = run_native([prog, nat_dir])
        box = run_sandbox([prog, box_dir])
    assert nat.returncode == 0, nat.describe()
    for line in ("getevents(6, 16): 6", "read: 'aio-vec' 'hel' 'lo '", "data 14 res -14",
                 "eventfd count: 1", "fork child submit: EINVAL"):
        assert line in nat.out, nat.describe()
    assert box.out == nat.out, box.describe()
    assert (box.returncode, box.err) == (nat.returncode, nat.err), box.describe()
