"""The pool of Sentry threads that serve tasks (sentry/kernel/workers.py).

No fixed sleeps: a job says it started through a semaphore, and the pool's
later states (a thread idle again, idle threads ended) are waited for as
conditions with a deadline far above what they take (microseconds, or
idle_s), so a loaded machine is slower but never wrong."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from sentry.kernel.workers import Job, Workers

DEADLINE = 10.0


def _run(pool: Workers, seen: list[int], hold: threading.Event | None = None,
         started: threading.Semaphore | None = None) -> Job:
    def job() -> None:
        seen.append(threading.get_ident())
        if started is not None:
            started.release()
        if hold is not None:
            hold.wait(DEADLINE)
    return pool.start(job, "test-worker")


def _eventually(pred: Callable[[], bool]) -> bool:
    """``pred()`` once it holds, or its last value at the deadline."""
    end = time.monotonic() + DEADLINE
    while not pred() and time.monotonic() < end:
        time.sleep(0.002)
    return pred()


def test_an_ended_jobs_thread_serves_the_next() -> None:
    pool = Workers(max_idle=4, idle_s=DEADLINE)
    seen: list[int] = []
    assert _run(pool, seen).join(DEADLINE)
    assert _eventually(lambda: len(pool._idle) == 1), "the thread went back to the pool"
    assert _run(pool, seen).join(DEADLINE)
    assert seen[0] == seen[1], "the idle thread was reused"


def test_busy_workers_mean_new_threads_and_idle_ones_are_bounded() -> None:
    pool = Workers(max_idle=1, idle_s=DEADLINE)
    seen: list[int] = []
    hold = threading.Event()
    started = threading.Semaphore(0)
    before = threading.active_count()
    jobs = [_run(pool, seen, hold, started) for _ in range(3)]
    assert all(started.acquire(timeout=DEADLINE) for _ in jobs)
    assert len(set(seen)) == 3, "each running job has its own thread"
    assert threading.active_count() == before + 3
    hold.set()
    assert all(j.join(DEADLINE) for j in jobs)
    assert _eventually(lambda: threading.active_count() <= before + 1)
    assert threading.active_count() == before + 1, "only max_idle threads stay"
    assert len(pool._idle) == 1


def test_idle_threads_end_and_a_failing_job_does_not_kill_the_pool() -> None:
    pool = Workers(max_idle=4, idle_s=0.1)
    before = threading.active_count()

    def boom() -> None:
        raise RuntimeError("a job's bug")

    assert pool.start(boom, "test-worker").join(DEADLINE)
    seen: list[int] = []
    assert _run(pool, seen).join(DEADLINE)
    assert len(seen) == 1, "the pool still runs jobs after one failed"
    assert _eventually(lambda: threading.active_count() == before), (
        "idle threads ended after idle_s")
    assert pool._idle == []
