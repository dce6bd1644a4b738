"""sendmmsg/recvmmsg batches (sock_mmsg.c), differentially over UDP loopback
and a unix datagram pair: counts, per-message lengths and MSG_TRUNC, a
batch ended by an empty queue, MSG_WAITFORONE, and a fault on the second
message (the count so far) versus the first (the errno).

Coverage for syscalls/net.py's shared batch loop (_batch): it matched Linux
when written; this keeps it so.
"""

from __future__ import annotations

import pytest
from helpers import Programs, run_native, run_sandbox


@pytest.mark.sandbox
def test_mmsg_batches_match_linux(programs: Programs) -> None:
    exe = programs.path("sock_mmsg", "static")
    nat = run_native([exe])
    assert "recvmmsg 8 room 10 (truncates)           3 ok\n" in nat.out, nat.describe()
    box = run_sandbox([exe])
    assert "Traceback" not in box.err, box.describe()
    assert (box.out, box.returncode) == (nat.out, nat.returncode), box.describe()
