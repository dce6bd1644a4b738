"""The pool of Sentry threads that serve tasks (sentry/kernel/workers.py)."""

from __future__ import annotations

import threading
import time

from sentry.kernel.workers import Workers


def _run(pool: Workers, seen: list[int], hold: threading.Event | None = None):
    def job() -> None:
        seen.append(threading.get_ident())
        if hold is not None:
            hold.wait(5)
    return pool.start(job, "test-worker")


def test_an_ended_jobs_thread_serves_the_next() -> None:
    pool = Workers(max_idle=4, idle_s=5.0)
    seen: list[int] = []
    assert _run(pool, seen).join(5)
    time.sleep(0.05)  # the thread is idle again
    assert _run(pool, seen).join(5)
    assert seen[0] == seen[1], "the idle thread was reused"


def test_busy_workers_mean_new_threads_and_idle_ones_are_bounded() -> None:
    pool = Workers(max_idle=1, idle_s=5.0)
    seen: list[int] = []
    hold = threading.Event()
    jobs = [_run(pool, seen, hold) for _ in range(3)]
    time.sleep(0.1)
    assert len(set(seen)) == 3, "each running job has its own thread"
    before = threading.active_count()
    hold.set()
    assert all(j.join(5) for j in jobs)
    time.sleep(0.1)
    assert threading.active_count() == before - 2, "only max_idle threads stay"


def test_idle_threads_end_and_a_failing_job_does_not_kill_the_pool() -> None:
    pool = Workers(max_idle=4, idle_s=0.1)
    before = threading.active_count()

    def boom() -> None:
        raise RuntimeError("a job's bug")

    assert pool.start(boom, "test-worker").join(5)
    seen: list[int] = []
    assert _run(pool, seen).join(5)
    time.sleep(0.5)
    assert threading.active_count() == before, "idle threads ended after idle_s"
