"""Clocks and sleeping: the Sentry reads its own host clocks on the task's behalf.

CPU-time clocks report the stub process (where the application's instructions
run), read through the kernel's per-process CPU clock ids, not the Sentry's.
"""

from __future__ import annotations

import errno
import time as _time
from typing import TYPE_CHECKING

from sentry.kernel.errors import SyscallError
from sentry.kernel.task import ERESTARTNOHAND
from syscalls.abi import TIMEVAL, read_timespec, s32, write_timespec
from syscalls.table import Entry, supported

if TYPE_CHECKING:
    from sentry.kernel.task import Task

Args = tuple[int, ...]

CLOCK_REALTIME = 0
CLOCK_MONOTONIC = 1
CLOCK_PROCESS_CPUTIME_ID = 2
CLOCK_THREAD_CPUTIME_ID = 3
HOST_CLOCKS = frozenset({0, 1, 4, 5, 6, 7, 8, 9, 11})
ALARM_CLOCKS = {8: 0, 9: 7}  # *_ALARM read like their base clocks
TIMER_ABSTIME = 1


def _cpu_clock(t: Task, clk: int) -> int:
    """The host clock id of the stub's CPU clock (process or thread)."""
    pid = t.thread.proc.pid
    perthread = 4 if clk == CLOCK_THREAD_CPUTIME_ID else 0
    return ((~pid) << 3) | perthread | 2


def clock_ns(t: Task, clk: int) -> int:
    if clk in HOST_CLOCKS:
        return _time.clock_gettime_ns(ALARM_CLOCKS.get(clk, clk))
    if clk in (CLOCK_PROCESS_CPUTIME_ID, CLOCK_THREAD_CPUTIME_ID):
        try:
            return _time.clock_gettime_ns(_cpu_clock(t, clk))
        except OSError:
            return 0
    raise SyscallError(errno.EINVAL)


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
    """clock_nanosleep(2): relative or TIMER_ABSTIME on the host-backed clocks."""
    clk, flags = s32(a[0]), s32(a[1])
    if clk in (CLOCK_THREAD_CPUTIME_ID,):
        raise SyscallError(errno.EINVAL)
    if clk not in HOST_CLOCKS:
        raise SyscallError(errno.EINVAL if clk != CLOCK_PROCESS_CPUTIME_ID else errno.ENOTSUP)
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
