"""Timers on CPU-time clocks: ITIMER_VIRTUAL, ITIMER_PROF and POSIX timers
(timer_create) on CLOCK_PROCESS/THREAD_CPUTIME_ID or a clock_getcpuclockid id.

Why a poller: a CPU clock advances only while its task runs, with no host
event at the moment it passes a deadline.  Linux checks CPU timers at each
scheduler tick (run_posix_cpu_timers); here one Sentry thread does the same,
every TICK_NS, and only while some CPU timer is armed (no thread, no cost,
otherwise).  A timer therefore fires at most a tick late, never early: it
fires once its clock reads at least its deadline.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

from sentry.kernel import cputime, rlimits
from sentry.kernel.signals import SigInfo

if TYPE_CHECKING:
    from sentry.kernel.kernel import Kernel
    from sentry.kernel.task import Task
    from sentry.kernel.threadgroup import ThreadGroup

NSEC = 1_000_000_000
RLIMIT_CPU = 0
CPU_LIMIT_KEY = -1  # where a process's CPULimit is kept in ThreadGroup.cpu_itimers
SIGKILL, SIGXCPU = 9, 24
TICK_NS = 4_000_000  # HZ=250, the tick CLOCK_*_COARSE report as their resolution
INT_MAX = 2**31 - 1
SI_KERNEL = 0x80


class CPUTimer:
    """One timer on a CPU clock; times are that clock's ns."""

    def __init__(self, kernel: Kernel, tg: ThreadGroup, kind: int, target: Task | ThreadGroup,
                 signo: int, code: int = SI_KERNEL, value: int = 0, notify: bool = True,
                 thread: Task | None = None) -> None:
        self.kernel = kernel
        self.tg = tg  # the process it signals
        self.kind = kind
        self.target = target  # whose clock
        self.signo = signo
        self.code = code
        self.value = value
        self.notify = notify
        self.thread = thread  # SIGEV_THREAD_ID: that thread, not the process
        self.deadline: int | None = None
        self.interval_ns = 0
        self.overrun = 0  # expiries not signalled since the last signal
        self.overrun_last = 0  # what timer_getoverrun reports
        self._lock = threading.Lock()

    def now(self) -> int:
        return cputime.read_clock(self.kind, self.target)

    def get(self) -> tuple[int, int]:
        """(remaining ns, interval ns); an armed timer has at least 1 ns left."""
        with self._lock:
            if self.deadline is None:
                return 0, self.interval_ns
            return max(self.deadline - self.now(), 1), self.interval_ns

    def set(self, value_ns: int, interval_ns: int, absolute: bool = False) -> tuple[int, int]:
        """Arm (value_ns > 0) or disarm (0); ``absolute``: value_ns is a
        reading of the clock, not a delay. Returns the old setting."""
        old = self.get()
        with self._lock:
            self.interval_ns = interval_ns
            self.overrun = 0
            if value_ns <= 0:
                self.deadline = None
                return old
            self.deadline = value_ns if absolute else self.now() + value_ns
        poller(self.kernel).add(self)
        return old

    def cancel(self) -> None:
        with self._lock:
            self.deadline = None

    def gone(self) -> bool:
        """Its clock's owner is gone, or the process it signals is."""
        from sentry.kernel.threadgroup import ThreadGroup

        target = self.target
        dead = target.zombie if isinstance(target, ThreadGroup) else target.exited
        return dead or self.tg.zombie

    def check(self) -> SigInfo | None:
        """The signal to send if the clock has passed the deadline (re-armed
        for the next interval, the missed ones counted as overruns)."""
        with self._lock:
            if self.deadline is None:
                return None
            now = self.now()
            if now < self.deadline:
                return None
            if self.interval_ns > 0:
                missed = (now - self.deadline) // self.interval_ns
                self.overrun += missed
                self.deadline += (missed + 1) * self.interval_ns
            else:
                self.deadline = None
            self.overrun_last = min(self.overrun, INT_MAX)
            self.overrun = 0
            if not self.notify:
                return None
            return SigInfo(self.signo, code=self.code, value=self.value)

    def armed(self) -> bool:
        return self.deadline is not None


class CPULimit:
    """RLIMIT_CPU of one process, checked with the timers (Linux does it in
    check_process_timers): at the soft limit SIGXCPU, and the soft limit
    raised by a second for the next one; at the hard limit SIGKILL."""

    thread = None

    def __init__(self, kernel: Kernel, tg: ThreadGroup) -> None:
        self.kernel = kernel
        self.tg = tg

    def _limits(self) -> tuple[int, int]:
        return rlimits.get(self.tg, RLIMIT_CPU)

    def armed(self) -> bool:
        return self._limits()[0] != rlimits.RLIM_INFINITY

    def gone(self) -> bool:
        return self.tg.zombie

    def cancel(self) -> None:
        pass  # the limit stays the process's; the poller just stops looking

    def check(self) -> SigInfo | None:
        soft, hard = self._limits()
        if soft == rlimits.RLIM_INFINITY:
            return None
        used = cputime.read_clock(cputime.CPUCLOCK_PROF, self.tg)
        if hard != rlimits.RLIM_INFINITY and used >= hard * NSEC:
            return SigInfo(SIGKILL, code=SI_KERNEL)
        if used >= soft * NSEC:
            if soft < hard:
                self.tg.rlimits[RLIMIT_CPU] = (soft + 1, hard)
            return SigInfo(SIGXCPU, code=SI_KERNEL)
        return None


def watch_cpu_limit(kernel: Kernel, tg: ThreadGroup) -> None:
    """Have the poller enforce ``tg``'s RLIMIT_CPU (after setrlimit or fork)."""
    limit = tg.cpu_itimers.get(CPU_LIMIT_KEY)
    if limit is None:
        limit = tg.cpu_itimers[CPU_LIMIT_KEY] = CPULimit(kernel, tg)
    if limit.armed():
        poller(kernel).add(limit)  # type: ignore[arg-type]


class Poller:
    """The thread that checks the armed CPU timers every tick."""

    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel
        self._timers: set[CPUTimer | CPULimit] = set()
        self._lock = threading.Lock()
        self._running = False

    def add(self, timer: CPUTimer | CPULimit) -> None:
        with self._lock:
            self._timers.add(timer)
            if self._running:
                return
            self._running = True
        threading.Thread(target=self._loop, name="cpu-timers", daemon=True).start()

    def _loop(self) -> None:
        while True:
            time.sleep(TICK_NS / 1e9)
            with self._lock:
                for timer in [x for x in self._timers if not x.armed() or x.gone()]:
                    timer.cancel()
                    self._timers.discard(timer)
                if not self._timers:
                    self._running = False
                    return
                timers = list(self._timers)
            for timer in timers:
                info = timer.check()
                if info is None:
                    continue
                if timer.thread is not None and not timer.thread.exited:
                    self.kernel.send_task(timer.thread, info)
                else:
                    self.kernel.send_group(timer.tg, info)


_POLLERS: dict[int, Poller] = {}
_POLLERS_LOCK = threading.Lock()


def poller(kernel: Kernel) -> Poller:
    with _POLLERS_LOCK:
        p = _POLLERS.get(id(kernel))
        if p is None or p.kernel is not kernel:
            p = _POLLERS[id(kernel)] = Poller(kernel)
        return p


def itimer(t: Task, which: int) -> CPUTimer:
    """The process's ITIMER_VIRTUAL (SIGVTALRM, user time) or ITIMER_PROF
    (SIGPROF, user + system time), made disarmed on first use."""
    timers: dict[int, Any] = t.tg.cpu_itimers
    timer = timers.get(which)
    if timer is None:
        kind, signo = (cputime.CPUCLOCK_VIRT, 26) if which == 1 else (cputime.CPUCLOCK_PROF, 27)
        timer = timers[which] = CPUTimer(t.kernel, t.tg, kind, t.tg, signo)
    return timer
