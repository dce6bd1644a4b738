"""Queued signals against Linux (syscalls/signal.py): RLIMIT_SIGPENDING's
EAGAIN for real-time signals with caller-made siginfo, and a non-leader
thread's id naming its process for kill and rt_sigqueueinfo."""

from __future__ import annotations

import pytest
from helpers import Programs, assert_same_as_native


@pytest.mark.sandbox
def test_sigpending_limit_and_thread_ids_match_linux(programs: Programs) -> None:
    assert_same_as_native(programs.path("sigqueue_limit"), markers=(
        "sigqueueinfo to a thread id = 0 errno 0", "kill a thread id = 0 errno 0",
        "tgkill rt = -1 errno 11", "sigqueueinfo rt = -1 errno 11",
        "kill rt (SI_USER) = 0 errno 0", "usr1 handled 1"))
