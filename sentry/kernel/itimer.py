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
        self._generation = 0  # a host timer of an older setting must not fire

    def get(self) -> tuple[int, int]:
        """(remaining ns, interval ns); an armed timer has at least 1 ns left."""
        with self.kernel.lock:
            if self.deadline_ns is None:
                return 0, self.interval_ns
            return max(self.deadline_ns - time.monotonic_ns(), 1), self.interval_ns

    def set(self, value_ns: int, interval_ns: int) -> tuple[int, int]:
        """Arm (value_ns > 0) or disarm (0), both in [0, KTIME_MAX]; returns the
        old setting."""
        with self.kernel.lock:
            old = self.get()
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            self._generation += 1
            self.interval_ns = interval_ns
            if value_ns <= 0:
                self.deadline_ns = None
                return old
            self.deadline_ns = time.monotonic_ns() + value_ns
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
                self.deadline_ns = time.monotonic_ns() + self.interval_ns
                self._arm(self.interval_ns)
            else:
                self.deadline_ns = None
                self._timer = None
        if self.notify:
            self.kernel.send_group(self.tg, SigInfo(self.signo, code=self.code,
                                                    value=self.value))

    def cancel(self) -> None:
        self.set(0, 0)
