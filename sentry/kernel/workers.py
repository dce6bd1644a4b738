"""The Sentry threads that serve tasks, kept for the next task when one ends.

Why: every task runs on a Sentry thread of its own (DESIGN.md: one per task,
as gVisor runs a goroutine per task), and starting a Python thread costs
~100 us (pthread_create, the interpreter's thread state, and
Thread.start's hand-shake with the new thread): a sixth of a fork+exit+wait.
A thread whose task has ended waits here, idle, for the next one instead, up
to ``MAX_IDLE`` threads for ``IDLE_S`` seconds each.

A host thread can be refused: under a pids cgroup (Docker's --pids-limit)
pthread_create fails with EAGAIN and ``Thread.start`` raises RuntimeError.
clone takes its task's thread with :meth:`Workers.reserve` before the task
exists, so a refusal is the application's EAGAIN (:class:`NoThread`), never a
task registered without a thread to run it.
"""

from __future__ import annotations

import logging
import threading
from _thread import allocate_lock
from collections.abc import Callable

log = logging.getLogger(__name__)

MAX_IDLE = 16
IDLE_S = 30.0


class NoThread(RuntimeError):
    """The host refused a new thread (EAGAIN): the caller answers EAGAIN."""


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

    def start(self, fn: Callable[[], None], name: str, worker: _Worker | None = None) -> Job:
        """Run ``fn`` on ``worker`` (from :meth:`reserve`), an idle worker, or a
        new thread called ``name``; NoThread if the host refuses the thread."""
        job = Job(fn)
        if worker is None:
            with self._lock:
                worker = self._idle.pop() if self._idle else None
        if worker is None:
            self._spawn(_Worker(), job, name)
        else:
            worker.job = job
            worker.wake.release()
        return job

    def reserve(self) -> _Worker:
        """A thread for a task about to be made, parked until :meth:`start`
        hands it the task (or :meth:`release` returns it); NoThread if the
        host has no thread to give."""
        with self._lock:
            if self._idle:
                return self._idle.pop()
        me = _Worker()
        self._spawn(me, None, "task")
        return me

    def release(self, worker: _Worker) -> None:
        """A reserved worker not needed after all: it goes idle (or ends)."""
        worker.job = None
        worker.wake.release()

    def _spawn(self, me: _Worker, job: Job | None, name: str) -> None:
        try:
            threading.Thread(target=self._serve, args=(me, job), name=name, daemon=True).start()
        except RuntimeError as exc:  # "can't start new thread": pthread_create's EAGAIN
            raise NoThread(str(exc)) from None

    def _serve(self, me: _Worker, job: Job | None) -> None:
        if job is None:  # reserved: wait for the task (or a release)
            me.wake.acquire()
            job, me.job = me.job, None
            if job is None:
                job = self._next(me)
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
