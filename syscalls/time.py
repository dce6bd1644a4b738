"""Clocks and sleeping: the Sentry reads its own host clocks on the task's behalf.

CPU-time clocks (sentry/kernel/cputime.py): a process's is its stub process's
host CPU time plus the Sentry's time on its syscalls; a thread's, its own time
in application code and in the Sentry.
"""

from __future__ import annotations

import errno
import struct
import time as _time
from typing import TYPE_CHECKING

from sentry.kernel import cputime, cputimers, timens
from sentry.kernel.errors import SyscallError
from sentry.kernel.itimer import NSEC, RealTimer, ktime
from sentry.kernel.task_exits import ERESTARTNOHAND
from syscalls.abi import TIMEVAL, read_timespec, s32, write_timespec
from syscalls.table import Entry, partial, supported

if TYPE_CHECKING:
    from sentry.kernel.task import Task

Args = tuple[int, ...]

CLOCK_REALTIME = 0
CLOCK_MONOTONIC = 1
CLOCK_PROCESS_CPUTIME_ID = 2
CLOCK_THREAD_CPUTIME_ID = 3
HOST_CLOCKS = frozenset({0, 1, 4, 5, 6, 7, 8, 9, 11})
# Clocks Linux can read but not sleep on (no k_clock nsleep: the thread CPU
# clock, MONOTONIC_RAW, the coarse clocks; the alarm clocks without an RTC,
# as on these VMs): clock_nanosleep is EOPNOTSUPP, not EINVAL.
NO_SLEEP_CLOCKS = frozenset({CLOCK_THREAD_CPUTIME_ID, 4, 5, 6, 8, 9})
# *_ALARM read like their base clocks; so do the coarse clocks, as the vDSO
# reads them (sentry/vdso/vdso.c): a syscall after a vDSO read must not go back
# by up to a tick, which the host's own coarse clock would.
ALARM_CLOCKS = {8: 0, 9: 7, 5: 0, 6: 1}
TIMER_ABSTIME = 1


def clock_ns(t: Task, clk: int) -> int:
    """Clock ``clk`` as the caller reads it (its time namespace's offsets in)."""
    if clk in HOST_CLOCKS:
        return _time.clock_gettime_ns(ALARM_CLOCKS.get(clk, clk)) + timens.offset(t.tg, clk)
    return cputime.read_clock(*cputime.decode_clock(t, clk))  # EINVAL if not a CPU clock


def clock_gettime(t: Task, a: Args) -> int:
    """clock_gettime(2)."""
    write_timespec(t, a[1], clock_ns(t, s32(a[0])))
    return 0


def clock_getres(t: Task, a: Args) -> int:
    """clock_getres(2): 1 ns for the high-resolution clocks, the tick for coarse ones."""
    clk = s32(a[0])
    clock_ns(t, clk)  # EINVAL for unknown clocks
    res = 4_000_000 if clk in (5, 6) else 1
    if a[1]:
        write_timespec(t, a[1], res)
    return 0


def gettimeofday(t: Task, a: Args) -> int:
    """gettimeofday(2); the timezone is always UTC."""
    if a[0]:
        ns = _time.clock_gettime_ns(CLOCK_REALTIME)
        t.mm.copy_out(a[0], TIMEVAL.pack(ns // 10**9, (ns % 10**9) // 1000))
    if a[1]:
        t.mm.copy_out(a[1], bytes(8))
    return 0


def time(t: Task, a: Args) -> int:
    """time(2)."""
    now = _time.clock_gettime_ns(CLOCK_REALTIME) // 10**9
    if a[0]:
        t.mm.copy_out(a[0], now.to_bytes(8, "little", signed=True))
    return now


def _sleep_until(clk: int, deadline_ns: int, t: Task, rem: int = 0) -> None:
    """Sleep until the clock reads ``deadline_ns``; a signal ends it early (EINTR
    if a handler runs, with the remaining time in ``rem``; else a restart)."""
    while True:
        left = deadline_ns - clock_ns(t, clk)
        if left <= 0:
            return
        try:
            t.sleep_until(_time.monotonic() + min(left / 1e9, 0.5))
        except SyscallError:
            if rem:
                write_timespec(t, rem, max(0, deadline_ns - clock_ns(t, clk)))
            raise SyscallError(ERESTARTNOHAND) from None


def nanosleep(t: Task, a: Args) -> int:
    """nanosleep(2)."""
    ns = read_timespec(t, a[0])
    _sleep_until(CLOCK_MONOTONIC, clock_ns(t, CLOCK_MONOTONIC) + ns, t, a[1])
    return 0


def clock_nanosleep(t: Task, a: Args) -> int:
    """clock_nanosleep(2): relative or TIMER_ABSTIME on the clocks Linux can
    sleep on (REALTIME, MONOTONIC, BOOTTIME, TAI, a process's CPU clock);
    a thread's CPU clock named by id is EINVAL, as on Linux."""
    clk, flags = s32(a[0]), s32(a[1])
    if clk in NO_SLEEP_CLOCKS:
        raise SyscallError(errno.EOPNOTSUPP)
    if clk < 0:
        kind, target = cputime.decode_clock(t, clk)
        if clk & cputime.CPUCLOCK_PERTHREAD or target is t.tg:
            raise SyscallError(errno.EINVAL)
    elif clk not in HOST_CLOCKS and clk != CLOCK_PROCESS_CPUTIME_ID:
        raise SyscallError(errno.EINVAL)
    ns = read_timespec(t, a[2])
    deadline = ns if flags & TIMER_ABSTIME else clock_ns(t, clk) + ns
    _sleep_until(clk, deadline, t, 0 if flags & TIMER_ABSTIME else a[3])
    return 0



ENTRIES: list[Entry] = [
    supported("clock_gettime", clock_gettime),
    supported("clock_getres", clock_getres),
    supported("gettimeofday", gettimeofday),
    supported("time", time),
    supported("nanosleep", nanosleep),
    supported("clock_nanosleep", clock_nanosleep),
]


# --- interval timers and resource usage -------------------------------------

ITIMER_REAL = 0
ITIMER_VIRTUAL = 1
ITIMER_PROF = 2
ITIMERVAL = struct.Struct("<qqqq")  # interval {sec, usec}, value {sec, usec}
RUSAGE_SELF = 0
RUSAGE_CHILDREN = -1
RUSAGE_THREAD = 1
CLK_TCK = 100


def _real_timer(t: Task) -> RealTimer:
    timer = t.tg.real_timer
    if timer is None:
        timer = t.tg.real_timer = RealTimer(t.kernel, t.tg)
    return timer


def _tv(ns: int) -> tuple[int, int]:
    """A ktime as a timeval, microseconds truncated (Linux's ns_to_timeval);
    an armed timer with less than 1 us left shows 1 us."""
    us = max(ns // 1000, 1) if ns > 0 else 0
    return us // 1_000_000, us % 1_000_000


def _itimer(t: Task, which: int) -> RealTimer | cputimers.CPUTimer:
    if which == ITIMER_REAL:
        return _real_timer(t)
    if which in (ITIMER_VIRTUAL, ITIMER_PROF):
        return cputimers.itimer(t, which)
    raise SyscallError(errno.EINVAL)


def getitimer(t: Task, a: Args) -> int:
    """getitimer(2): ITIMER_REAL (wall time), ITIMER_VIRTUAL (user time),
    ITIMER_PROF (user + system time)."""
    value, interval = _itimer(t, s32(a[0])).get()
    t.mm.copy_out(a[1], ITIMERVAL.pack(*_tv(interval), *_tv(value)))
    return 0


def setitimer(t: Task, a: Args) -> int:
    """setitimer(2): ITIMER_REAL (SIGALRM), ITIMER_VIRTUAL (SIGVTALRM),
    ITIMER_PROF (SIGPROF). A CPU-time timer's first expiry is a tick later
    than asked, as Linux's set_cpu_itimer makes it (so that it counts at
    least the time it was set for)."""
    which = s32(a[0])
    timer = _itimer(t, which)
    value = interval = 0
    if a[1]:
        isec, iusec, vsec, vusec = ITIMERVAL.unpack(t.mm.copy_in(a[1], ITIMERVAL.size))
        if min(isec, vsec) < 0 or not (0 <= iusec < 1_000_000 and 0 <= vusec < 1_000_000):
            raise SyscallError(errno.EINVAL)
        value, interval = ktime(vsec, vusec * 1000), ktime(isec, iusec * 1000)
        if value and which != ITIMER_REAL:
            value += cputimers.TICK_NS
    old = timer.set(value, interval)
    if a[2]:
        t.mm.copy_out(a[2], ITIMERVAL.pack(*_tv(old[1]), *_tv(old[0])))
    return 0


def alarm(t: Task, a: Args) -> int:
    """alarm(2): seconds left on the previous alarm, rounded as Linux does (to
    the nearest second, at least 1), as the unsigned int alarm returns."""
    remaining, _ = _real_timer(t).set((a[0] & 0xFFFFFFFF) * NSEC, 0)
    sec, usec = _tv(remaining)
    if (not sec and usec) or usec >= 500_000:
        sec += 1
    return sec & 0xFFFFFFFF


def getrusage(t: Task, a: Args) -> int:
    """getrusage(2): user and system time (sentry/kernel/cputime.py) of the
    process, the thread or the reaped children, and ru_maxrss: the host's
    peak for the stub processes that have ended (earlier images, reaped
    children), since a live one's is not the Sentry's to read; the other
    fields are zero."""
    who = s32(a[0])
    if who == RUSAGE_CHILDREN:
        ut, st, rss = t.tg.child_utime_ns, t.tg.child_stime_ns, t.tg.child_maxrss_kb
    elif who == RUSAGE_SELF:
        ut, st = cputime.group_user_ns(t.tg), cputime.group_sys_ns(t.tg)
        rss = t.tg.maxrss_kb
    elif who == RUSAGE_THREAD:
        ut, st = cputime.thread_user_ns(t), cputime.thread_sys_ns(t)
        rss = t.tg.maxrss_kb
    else:
        raise SyscallError(errno.EINVAL)
    t.mm.copy_out(a[1], struct.pack("<qqqqq", ut // 10**9, (ut % 10**9) // 1000, st // 10**9,
                                    (st % 10**9) // 1000, rss) + bytes(104))
    return 0


def times(t: Task, a: Args) -> int:
    """times(2): clock ticks of CPU time; returns ticks since the sandbox booted."""
    if a[0]:
        tick = 10**9 // CLK_TCK
        t.mm.copy_out(a[0], struct.pack("<qqqq", cputime.group_user_ns(t.tg) // tick,
                                        cputime.group_sys_ns(t.tg) // tick,
                                        t.tg.child_utime_ns // tick, t.tg.child_stime_ns // tick))
    return (_time.monotonic_ns() - t.kernel.boot_monotonic_ns) // (10**9 // CLK_TCK)


SIGEV_SIGNAL = 0
SIGEV_NONE = 1
SIGEV_THREAD = 2  # glibc's; the kernel treats it as SIGEV_SIGNAL
SIGEV_THREAD_ID = 4
SI_TIMER = -2
SIGEVENT = struct.Struct("<Qiii")  # sigev_value, sigev_signo, sigev_notify, _tid
ITIMERSPEC = struct.Struct("<qqqq")  # interval {sec, nsec}, value {sec, nsec}
MAX_TIMERS = 4096
PosixTimer = RealTimer | cputimers.CPUTimer


def _timers(t: Task) -> dict[int, PosixTimer]:
    return t.tg.posix_timers


def _sigevent(t: Task, addr: int, tid: int) -> tuple[int, int, bool, Task | None]:
    """(value, signo, notify, thread) of a struct sigevent, checked as
    Linux's good_sigevent: a signal number for the signalling kinds, and for
    SIGEV_THREAD_ID a thread of the caller's own process."""
    if not addr:
        return tid, 14, True, None
    value, signo, notify, target = SIGEVENT.unpack(t.mm.copy_in(addr, SIGEVENT.size))
    if notify not in (SIGEV_SIGNAL, SIGEV_NONE, SIGEV_THREAD, SIGEV_THREAD_ID) or (
            notify != SIGEV_NONE and not 1 <= signo <= 64):
        raise SyscallError(errno.EINVAL)
    thread = None
    if notify == SIGEV_THREAD_ID:
        with t.kernel.lock:
            thread = t.kernel.tasks.get(target)
        if thread is None or thread.tg is not t.tg:
            raise SyscallError(errno.EINVAL)
    return value, signo, notify != SIGEV_NONE, thread


def timer_create(t: Task, a: Args) -> int:
    """timer_create(2) on the wall clocks (REALTIME, MONOTONIC, BOOTTIME) and
    the CPU-time clocks (sentry/kernel/cputimers.py); SIGEV_SIGNAL, SIGEV_NONE
    and SIGEV_THREAD_ID (SIGEV_THREAD is the C library's, over the latter)."""
    clk = s32(a[0])
    cpu = None
    if clk in (CLOCK_PROCESS_CPUTIME_ID, CLOCK_THREAD_CPUTIME_ID) or clk < 0:
        cpu = cputime.decode_clock(t, clk)
    elif clk not in (CLOCK_REALTIME, CLOCK_MONOTONIC, 7):
        raise SyscallError(errno.EINVAL if clk not in HOST_CLOCKS else errno.ENOTSUP)
    timers = _timers(t)
    tid = next(i for i in range(MAX_TIMERS + 1) if i not in timers)
    if tid >= MAX_TIMERS:
        raise SyscallError(errno.EAGAIN)
    value, signo, notify, thread = _sigevent(t, a[1], tid)
    timer: PosixTimer
    if cpu is not None:
        timer = cputimers.CPUTimer(t.kernel, t.tg, cpu[0], cpu[1], signo, SI_TIMER, value,
                                   notify, thread)
    else:
        timer = RealTimer(t.kernel, t.tg, signo, SI_TIMER, value, notify)
        timer.clock, timer.thread = clk, thread
    t.mm.copy_out(a[2], tid.to_bytes(4, "little"))
    timers[tid] = timer
    return 0


def _timer(t: Task, tid: int) -> PosixTimer:
    timer = _timers(t).get(s32(tid))
    if timer is None:
        raise SyscallError(errno.EINVAL)
    return timer


def _its(interval_ns: int, value_ns: int) -> bytes:
    return ITIMERSPEC.pack(*divmod(interval_ns, NSEC), *divmod(value_ns, NSEC))


def timer_settime(t: Task, a: Args) -> int:
    """timer_settime(2), relative or TIMER_ABSTIME (an absolute time already
    past expires at once, its missed intervals counted as overruns)."""
    if not a[2]:
        raise SyscallError(errno.EINVAL)  # Linux checks this before the timer id
    timer = _timer(t, a[0])
    isec, insec, vsec, vnsec = ITIMERSPEC.unpack(t.mm.copy_in(a[2], ITIMERSPEC.size))
    if min(isec, vsec) < 0 or not (0 <= insec < 10**9 and 0 <= vnsec < 10**9):
        raise SyscallError(errno.EINVAL)
    value, interval = ktime(vsec, vnsec), ktime(isec, insec)
    absolute = bool(s32(a[1]) & TIMER_ABSTIME) and value > 0
    if isinstance(timer, cputimers.CPUTimer):
        old = timer.set(value, interval, absolute)
    elif absolute:
        delta = value - timens.offset(t.tg, timer.clock) - _time.clock_gettime_ns(timer.clock)
        old = timer.set(max(delta, 1), interval, late_ns=max(0, -delta))
    else:
        old = timer.set(value, interval)
    if a[3]:
        t.mm.copy_out(a[3], _its(old[1], old[0]))
    return 0


def timer_gettime(t: Task, a: Args) -> int:
    """timer_gettime(2)."""
    value, interval = _timer(t, a[0]).get()
    t.mm.copy_out(a[1], _its(interval, value))
    return 0


def timer_getoverrun(t: Task, a: Args) -> int:
    """timer_getoverrun(2): the expiries missed before the last signal (capped
    at INT_MAX, as since CVE-2018-12896's fix)."""
    return _timer(t, a[0]).overrun_last


def timer_delete(t: Task, a: Args) -> int:
    """timer_delete(2)."""
    _timer(t, a[0]).cancel()
    del _timers(t)[s32(a[0])]
    return 0


ENTRIES += [
    supported("timer_create", timer_create),
    supported("timer_settime", timer_settime),
    supported("timer_gettime", timer_gettime),
    supported("timer_getoverrun", timer_getoverrun),
    supported("timer_delete", timer_delete),
    supported("getitimer", getitimer),
    supported("setitimer", setitimer),
    supported("alarm", alarm),
    partial("getrusage", getrusage, note="CPU times; ru_maxrss of ended images and reaped "
            "children only; the other fields are 0"),
    supported("times", times),
]
