"""PTRACE_ATTACH of a job-control-stopped process and the debug registers,
against Linux: the LTP's ptrace08 and ptrace10 got ESRCH from the first
request after attaching (the tracee was still in its group stop)."""

from __future__ import annotations

import pytest
from helpers import Programs, assert_same_as_native


@pytest.mark.sandbox
def test_attach_to_stopped_process_matches_linux(programs: Programs) -> None:
    assert_same_as_native(programs.path("ptrace_stopped_attach"), markers=(
        "attach: ok", "poke dr0=2: ok", "peek dr0: 2 (Success)",
        "poke dr1=kernel: Invalid argument", "wait: it 1, stopped 1 by 19",
        "then it exits 5"))
