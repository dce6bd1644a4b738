"""The Sentry threads that serve tasks, kept for the next task when one ends.

Why: every task runs on a Sentry thread of its own (DESIGN.md: one per task,
as gVisor runs a goroutine per task), and starting a Python thread costs
~100 us (pthread_create, the interpreter's thread state, and
Thread.start's hand-shake with the new thread): a sixth of a fork+exit+wait.
A thread whose task has ended waits here, idle, for the next one instead, up
to ``MAX_IDLE`` threads for ``IDLE_S`` seconds each.
"""

from __future__ import annotations

import logging
import threading
from _thread import allocate_lock
from collections.abc import Callable

log = logging.getLogger(__name__)

MAX_IDLE = 16
IDLE_S = 30.0


class Job:
    """One task's run on some worker thread; ``join`` waits for it to end."""

    __slots__ = ("fn", "_done")

    def __init__(self, fn: Callable[[], None]) -> None:
        self.fn = fn
        self._done = allocate_lock()
        self._done.acquire()

    def join(self, timeout: float) -> bool:
        if self._done.acquire(True, max(0.0, timeout)):
            self._done.release()
            return True
        return False


class _Worker:
    __slots__ = ("wake", "job")

    def __init__(self) -> None:
        self.wake = allocate_lock()
        self.wake.acquire()
        self.job: Job | None = None


class Workers:
    """A pool of daemon threads, each running one job at a time."""

    def __init__(self, max_idle: int = MAX_IDLE, idle_s: float = IDLE_S) -> None:
        self.max_idle = max_idle
        self.idle_s = idle_s
        self._lock = allocate_lock()
        self._idle: list[_Worker] = []

    def start(self, fn: Callable[[], None], name: str) -> Job:
        """Run ``fn`` on an idle worker, or on a new thread called ``name``."""
        job = Job(fn)
        with self._lock:
            worker = self._idle.pop() if self._idle else None
        if worker is None:
            threading.Thread(target=self._serve, args=(job,), name=name, daemon=True).start()
        else:
            worker.job = job
            worker.wake.release()
        return job

    def _serve(self, job: Job | None) -> None:
        me = _Worker()
        while job is not None:
            try:
                job.fn()
            except BaseException:  # noqa: BLE001 - a job's own bug must not kill the pool
                log.exception("Sentry worker job failed")
            finally:
                job._done.release()
            job = self._next(me)

    def _next(self, me: _Worker) -> Job | None:
        with self._lock:
            if len(self._idle) >= self.max_idle:
                return None
            self._idle.append(me)
        if not me.wake.acquire(True, self.idle_s):
            with self._lock:
                if me in self._idle:  # nobody chose us: the thread ends
                    self._idle.remove(me)
                    return None
            me.wake.acquire()  # chosen just as we timed out: the job is on its way
        job, me.job = me.job, None
        return job


WORKERS = Workers()
