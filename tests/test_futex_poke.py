"""A futex waiter is poked by its task's wake() (sentry/kernel/futex.py,
Task.blocker) instead of polling for signals every 50 ms: LTP's
futex_cmp_requeue01 parks 1,000 waiters, whose polling kept the Sentry too
busy to set them up before their 20 s timeout.  Checked on the manager
itself: a poke ends the wait at once (the safety-net slice is 1 s), a signal
that came before the wait is seen before the first sleep, and a real wake
still counts."""

from __future__ import annotations

import errno
import threading
import time

import pytest

from sentry.kernel import futex
from sentry.kernel.errors import SyscallError


class FakeTask:
    """What the manager uses of a task: the blocker slot and wake()."""

    def __init__(self) -> None:
        self.blocker = None
        self.pending = False

    def check_interrupt(self) -> None:
        if self.pending:
            raise SyscallError(512)  # ERESTARTSYS

    def wake(self) -> None:
        self.pending = True
        if self.blocker is not None:
            self.blocker.poke()


def _wait_in_thread(m: futex.FutexManager, task: FakeTask, word: list[int]) -> dict:
    out: dict = {}

    def run() -> None:
        start = time.monotonic()
        try:
            m.wait((1, 0), lambda: word[0], 0, None, interrupted=task.check_interrupt, task=task)
            out["result"] = "woken"
        except SyscallError as exc:
            out["result"] = exc.errno
        out["seconds"] = time.monotonic() - start

    out["thread"] = threading.Thread(target=run)
    out["thread"].start()
    return out


def _until_blocked(task: FakeTask) -> None:
    deadline = time.monotonic() + 5
    while task.blocker is None:
        assert time.monotonic() < deadline
        time.sleep(0.001)


def test_a_poke_ends_the_wait_at_once() -> None:
    assert futex.POKED_SLICE >= 1.0  # the test's margin below depends on it
    m, task, word = futex.FutexManager(), FakeTask(), [0]
    out = _wait_in_thread(m, task, word)
    _until_blocked(task)
    time.sleep(0.05)
    task.wake()
    out["thread"].join(5)
    assert out["result"] == 512 and out["seconds"] < 0.5, out
    assert task.blocker is None


def test_a_signal_before_the_wait_is_seen_before_sleeping() -> None:
    m, task, word = futex.FutexManager(), FakeTask(), [0]
    task.pending = True  # came before blocker was set: nothing to poke
    start = time.monotonic()
    with pytest.raises(SyscallError) as ei:
        m.wait((1, 0), lambda: word[0], 0, None, interrupted=task.check_interrupt, task=task)
    assert ei.value.errno == 512 and time.monotonic() - start < 0.5


def test_a_wake_still_counts_and_a_stray_poke_does_not_end_it() -> None:
    m, task, word = futex.FutexManager(), FakeTask(), [0]
    out = _wait_in_thread(m, task, word)
    _until_blocked(task)
    task.blocker.poke()  # no signal: the waiter checks, finds none, sleeps on
    time.sleep(0.1)
    assert out["thread"].is_alive()
    assert m.wake((1, 0), 1) == 1
    out["thread"].join(5)
    assert out["result"] == "woken", out


def test_timeout_without_a_task_still_polls() -> None:
    m = futex.FutexManager()
    with pytest.raises(SyscallError) as ei:
        m.wait((2, 0), lambda: 0, 0, time.monotonic() + 0.1)
    assert ei.value.errno == errno.ETIMEDOUT
