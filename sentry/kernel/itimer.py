"""ITIMER_REAL (and alarm): a per-process timer that sends SIGALRM.

One threading.Timer per armed process; re-armed for interval timers.  The
lock is the kernel lock (the timer touches the process's pending signals).
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
        self.deadline: float | None = None  # time.monotonic()
        self.interval = 0.0
        self._timer: threading.Timer | None = None

    def get(self) -> tuple[float, float]:
        """(remaining seconds, interval) as getitimer reports them."""
        with self.kernel.lock:
            if self.deadline is None:
                return 0.0, self.interval
            return max(self.deadline - time.monotonic(), 1e-6), self.interval

    def set(self, value: float, interval: float) -> tuple[float, float]:
        """Arm (value > 0) or disarm (value == 0); returns the old setting."""
        with self.kernel.lock:
            old = self.get()
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            self.interval = interval
            if value <= 0:
                self.deadline = None
                return old
            self.deadline = time.monotonic() + value
            self._arm(value)
            return old

    def _arm(self, delay: float) -> None:
        t = threading.Timer(delay, self._fire)
        t.daemon = True
        self._timer = t
        t.start()

    def _fire(self) -> None:
        with self.kernel.lock:
            if self.tg.zombie or self.deadline is None:
                return
            if self.interval > 0:
                self.deadline = time.monotonic() + self.interval
                self._arm(self.interval)
            else:
                self.deadline = None
                self._timer = None
        if self.notify:
            self.kernel.send_group(self.tg, SigInfo(self.signo, code=self.code,
                                                    value=self.value))

    def cancel(self) -> None:
        self.set(0, 0)
