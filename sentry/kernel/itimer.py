"""ITIMER_REAL (and alarm): a per-process timer that sends SIGALRM.

One threading.Timer per armed process; re-armed for interval timers.  The
lock is the kernel lock (the timer touches the process's pending signals).

Times are integer nanoseconds, as Linux's ktime_t: a timer set to any
timeval/timespec the syscalls accept saturates at KTIME_MAX (about 292 years)
as Linux's does, and getitimer/timer_gettime give back exactly what was set.
A host wait is at most ARM_MAX_S long (Python's waits refuse timeouts past
threading.TIMEOUT_MAX); a longer timer wakes, sees its deadline ahead and
waits again for the rest.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

from sentry.kernel.signals import SigInfo

if TYPE_CHECKING:
    from sentry.kernel.kernel import Kernel
    from sentry.kernel.threadgroup import ThreadGroup

SIGALRM = 14
SI_KERNEL = 0x80
NSEC = 1_000_000_000
KTIME_MAX = (1 << 63) - 1
KTIME_SEC_MAX = KTIME_MAX // NSEC
ARM_MAX_S = 86400.0
INT_MAX = 2**31 - 1


def ktime(sec: int, nsec: int) -> int:
    """A validated (sec, nsec) as Linux's ktime_set: KTIME_MAX from KTIME_SEC_MAX on."""
    if sec >= KTIME_SEC_MAX:
        return KTIME_MAX
    return sec * NSEC + nsec


class RealTimer:
    """The ITIMER_REAL of one process, or a POSIX timer (timer_create) that
    signals it on CLOCK_REALTIME/MONOTONIC."""

    def __init__(self, kernel: Kernel, tg: ThreadGroup, signo: int = SIGALRM,
                 code: int = SI_KERNEL, value: int = 0, notify: bool = True) -> None:
        self.kernel = kernel
        self.tg = tg
        self.signo = signo
        self.code = code
        self.value = value
        self.notify = notify  # SIGEV_NONE timers only count down
        self.deadline_ns: int | None = None  # time.monotonic_ns()
        self.interval_ns = 0
        self._timer: threading.Timer | None = None
        self.clock = 0  # POSIX timers: the clock TIMER_ABSTIME values are read on
        self.thread: object = None  # SIGEV_THREAD_ID: the task it signals
        self.overrun = 0  # expiries not signalled since the last signal
        self.overrun_last = 0  # what timer_getoverrun reports
        self._queued: SigInfo | None = None  # its signal not yet delivered
        self._generation = 0  # a host timer of an older setting must not fire

    def get(self) -> tuple[int, int]:
        """(remaining ns, interval ns); an armed timer has at least 1 ns left."""
        with self.kernel.lock:
            if self.deadline_ns is None:
                return 0, self.interval_ns
            return max(self.deadline_ns - time.monotonic_ns(), 1), self.interval_ns

    def set(self, value_ns: int, interval_ns: int, late_ns: int = 0) -> tuple[int, int]:
        """Arm (value_ns > 0) or disarm (0), both in [0, KTIME_MAX]; returns the
        old setting.  ``late_ns``: an absolute expiry already that far in the
        past (its missed intervals count as overruns at the first expiry)."""
        with self.kernel.lock:
            old = self.get()
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            self._generation += 1
            self.interval_ns = interval_ns
            self.overrun = 0
            if value_ns <= 0:
                self.deadline_ns = None
                return old
            self.deadline_ns = time.monotonic_ns() + value_ns - late_ns
            self._arm(value_ns)
            return old

    def _arm(self, delay_ns: int) -> None:
        t = threading.Timer(min(delay_ns / NSEC, ARM_MAX_S), self._fire,
                            args=(self._generation,))
        t.daemon = True
        self._timer = t
        t.start()

    def _fire(self, generation: int) -> None:
        with self.kernel.lock:
            if self.tg.zombie or self.deadline_ns is None or generation != self._generation:
                return
            left = self.deadline_ns - time.monotonic_ns()
            if left > 0:  # a long timer's intermediate wake-up
                self._arm(left)
                return
            if self.interval_ns > 0:
                # Linux forwards an interval timer past now, counting the
                # intervals it missed as overruns (capped at INT_MAX).
                missed = -left // self.interval_ns
                self.overrun += missed
                self.deadline_ns += (missed + 1) * self.interval_ns
                self._arm(max(self.deadline_ns - time.monotonic_ns(), 1))
            else:
                self.deadline_ns = None
                self._timer = None
            target = self.thread
            if not self.notify:
                self._taken()
                return
            if self._still_queued():
                self.overrun += 1  # Linux queues one signal per timer at a time
                return
            info = SigInfo(self.signo, code=self.code, value=self.value, on_take=self._taken)
            self._queued = info
        if target is not None and not getattr(target, "exited", True):
            self.kernel.send_task(target, info)  # type: ignore[arg-type]
        else:
            self.kernel.send_group(self.tg, info)

    def _still_queued(self) -> bool:
        """Its last signal is pending still (not delivered, not discarded)."""
        info = self._queued
        if info is None:
            return False
        pendings = [self.tg.pending] + ([self.thread.pending] if self.thread else [])
        if any(x is info for p in pendings for x in p.queue.get(info.signo, ())):
            return True
        self._queued = None  # discarded (ignored, or the target is gone)
        return False

    def _taken(self) -> None:
        """Its signal is delivered: the overruns until now are the ones
        timer_getoverrun reports (Linux's it_overrun_last), capped at INT_MAX."""
        self.overrun_last = min(self.overrun, INT_MAX)
        self.overrun = 0
        self._queued = None

    def cancel(self) -> None:
        self.set(0, 0)
