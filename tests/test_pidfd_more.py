"""pidfds against Linux (syscalls/pidfd.py, waitid in syscalls/process.py):
pidfd_send_signal through a /proc/<pid> directory descriptor, and waitid on
a PIDFD_NONBLOCK pidfd (EAGAIN while the child runs)."""

from __future__ import annotations

import pytest
from helpers import Programs, assert_same_as_native


@pytest.mark.sandbox
def test_proc_dir_pidfd_and_nonblocking_waitid_match_linux(programs: Programs) -> None:
    assert_same_as_native(programs.path("pidfd_more"), markers=(
        "signal via /proc/self = 0 errno 0", "handled 1", "signal via a file = -1 errno 9",
        "waitid running = -1 errno 11", "waitid running WNOHANG = 0 errno 0",
        "status 5 code 1"))
