"""The LTP runner's own waits (tests/ltp/runner.py), without an LTP build:
a test that outlives its time limit must not hold the run past it."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

import pytest
from ltp import runner

# A stand-in for an LTP test: a grandchild leaves the session (setsid) with
# the output pipe, as some of LTP's forking tests' children do, and the test
# itself outlives the runner's limit.
FAKE_TEST = """#!/bin/sh
setsid sh -c 'echo $$ > "$0"; exec sleep 60' "$PIDFILE" &
echo "fake: started"
exec sleep 60
"""


@pytest.mark.root
def test_timed_out_test_whose_child_keeps_the_pipe_ends_in_bounded_time(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Before: after killing the test's session the runner read its output
    to end of file, which the escaped grandchild held open for its whole
    life (LTP's fork13 kept a run 283 s past the 120 s limit)."""
    test = tmp_path / "a" / "b" / "c" / "d" / "fake01"  # LTPROOT is parents[4]
    test.parent.mkdir(parents=True)
    test.write_text(FAKE_TEST)
    test.chmod(0o755)
    pidfile = tmp_path / "grandchild.pid"
    monkeypatch.setenv("PIDFILE", str(pidfile))
    monkeypatch.setattr(runner, "TIMEOUT_S", 1.0)
    monkeypatch.setattr(runner, "KILL_GRACE_S", 1.0, raising=False)
    start = time.monotonic()
    try:
        outcome = runner.run_one("native", "fake", test)
    finally:
        with contextlib.suppress(FileNotFoundError, ValueError, ProcessLookupError):
            os.kill(int(pidfile.read_text()), signal.SIGKILL)
    took = time.monotonic() - start
    assert took < 15, took
    assert (outcome.verdict, outcome.status) == ("fail", -9), outcome
