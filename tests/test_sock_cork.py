"""MSG_MORE, TCP_CORK and UDP_CORK, differentially (tests/programs/sock_cork.c,
natively and in the sandbox): corked bytes stay with the sender until the
message is complete, a shutdown or a close; corked UDP datagrams leave as
one. Before sentry/net/cork.py the sandbox delivered every send at once
(the receiver's MSG_DONTWAIT read got the bytes instead of EAGAIN) and
refused UDP_CORK (ENOPROTOOPT)."""

from __future__ import annotations

import pytest
from helpers import Programs, run_native, run_sandbox


@pytest.mark.sandbox
def test_cork_matches_native(programs: Programs) -> None:
    exe = programs.path("sock_cork")
    nat = run_native([exe])
    assert nat.returncode == 0, nat.describe()
    assert "tcp recv after MSG_MORE                  -1 EAGAIN\n" in nat.out, nat.describe()
    box = run_sandbox([exe], timeout=120)
    assert "Traceback" not in box.err, box.describe()
    assert box.out == nat.out, box.describe() + "\n--- native ---\n" + nat.out
    assert box.returncode == nat.returncode, box.describe()
