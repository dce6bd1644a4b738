"""timerfd: timers read as file descriptors (timerfd_create, timerfd_settime,
timerfd_gettime).

Facts about Linux's timerfd that shape this module (fs/timerfd.c):

* read() returns the number of expirations since the last read as a u64,
  and resets it; with none yet it blocks, or EAGAIN under O_NONBLOCK. A
  buffer under 8 bytes is EINVAL. poll() is POLLIN while expirations wait.
* An interval timer counts every period that passed, however late it is
  read; a one-shot timer disarms after its expiry.
* Setting a timer (or disarming it with a zero value) drops expirations not
  yet read; gettime tells the time to the next expiry, relative, and the
  interval.
* The alarm clocks need CAP_WAKE_ALARM. TFD_TIMER_CANCEL_ON_SET matters
  only for an absolute CLOCK_REALTIME(_ALARM) timer, and the clock is never
  set inside the sandbox, so such a timer is never cancelled.

Expirations are computed when asked (read, poll, gettime), from the clock,
so an armed timer costs no thread.
"""

from __future__ import annotations

import errno
import threading
import time as _time
from typing import TYPE_CHECKING

from sentry.kernel import timens
from sentry.kernel.creds import CAP_WAKE_ALARM
from sentry.kernel.errors import SyscallError
from sentry.vfs.file import (
    O_CLOEXEC,
    O_NONBLOCK,
    O_RDWR,
    POLLIN,
    FileDescription,
    Stat,
    check_interrupt,
)
from syscalls.abi import TIMESPEC, U64S, s32
from syscalls.table import Entry, supported

if TYPE_CHECKING:
    from sentry.kernel.task import Task

Args = tuple[int, ...]

CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_BOOTTIME = 0, 1, 7
CLOCK_REALTIME_ALARM, CLOCK_BOOTTIME_ALARM = 8, 9
CLOCKS = {CLOCK_REALTIME: 0, CLOCK_MONOTONIC: 1, CLOCK_BOOTTIME: 7,
          CLOCK_REALTIME_ALARM: 0, CLOCK_BOOTTIME_ALARM: 7}  # -> the host clock read
TFD_TIMER_ABSTIME = 1
TFD_TIMER_CANCEL_ON_SET = 2
ITIMERSPEC = TIMESPEC.size * 2
SLICE_S = 0.05
NS = 1_000_000_000


def _now(clock: int) -> int:
    return _time.clock_gettime_ns(CLOCKS[clock])


class TimerFd(FileDescription):
    """One timer: its next expiry (clock ns, 0 disarmed), interval, and the
    expirations not yet read."""

    def __init__(self, clock: int, flags: int) -> None:
        super().__init__(O_RDWR | (flags & O_NONBLOCK))
        self.clock = clock
        self.next_ns = 0
        self.interval_ns = 0
        self.ticks = 0
        self.lock = threading.Lock()

    def _advance(self) -> None:
        """Fold the expirations up to now into ``ticks`` (under the lock)."""
        if not self.next_ns:
            return
        now = _now(self.clock)
        if now < self.next_ns:
            return
        if self.interval_ns:
            passed = (now - self.next_ns) // self.interval_ns + 1
            self.ticks += passed
            self.next_ns += passed * self.interval_ns
        else:
            self.ticks += 1
            self.next_ns = 0

    def settime(self, value_ns: int, interval_ns: int, absolute: bool) -> tuple[int, int]:
        """Arm (or with value 0 disarm); returns the old (value, interval)."""
        with self.lock:
            old = self._remaining()
            self.ticks = 0
            self.interval_ns = interval_ns
            if not value_ns:
                self.next_ns = 0
            else:
                self.next_ns = value_ns if absolute else _now(self.clock) + value_ns
                self.next_ns = max(self.next_ns, 1)
            return old

    def _remaining(self) -> tuple[int, int]:
        self._advance()
        if not self.next_ns:
            return 0, self.interval_ns
        return max(self.next_ns - _now(self.clock), 1), self.interval_ns

    def gettime(self) -> tuple[int, int]:
        with self.lock:
            return self._remaining()

    def read(self, count: int) -> bytes:
        if count < 8:
            raise SyscallError(errno.EINVAL)
        while True:
            with self.lock:
                self._advance()
                if self.ticks:
                    ticks, self.ticks = self.ticks, 0
                    return U64S.pack(ticks)
                wait = (self.next_ns - _now(self.clock)) / NS if self.next_ns else SLICE_S
            if self.flags & O_NONBLOCK:
                raise SyscallError(errno.EAGAIN)
            check_interrupt()
            _time.sleep(max(0.0, min(wait, SLICE_S)))

    def write(self, data: bytes) -> int:
        raise SyscallError(errno.EINVAL)

    def poll(self, events: int, timeout_s: float | None) -> int:
        with self.lock:
            self._advance()
            return POLLIN & events if self.ticks else 0

    def stat(self) -> Stat:
        return Stat(mode=0o600)


def _timer(t: Task, fd: int) -> TimerFd:
    desc = t.fds.get(fd)
    if not isinstance(desc, TimerFd):
        raise SyscallError(errno.EINVAL)
    return desc


def _pack(value_ns: int, interval_ns: int) -> bytes:
    return (TIMESPEC.pack(interval_ns // NS, interval_ns % NS)
            + TIMESPEC.pack(value_ns // NS, value_ns % NS))


def timerfd_create(t: Task, a: Args) -> int:
    """timerfd_create(2)."""
    clock, flags = s32(a[0]), s32(a[1])
    if clock not in CLOCKS or flags & ~(O_CLOEXEC | O_NONBLOCK):
        raise SyscallError(errno.EINVAL)
    if clock in (CLOCK_REALTIME_ALARM, CLOCK_BOOTTIME_ALARM) \
            and not t.creds.capable(CAP_WAKE_ALARM):
        raise SyscallError(errno.EPERM)
    return t.fds.install(TimerFd(clock, flags), cloexec=bool(flags & O_CLOEXEC))


def timerfd_settime(t: Task, a: Args) -> int:
    """timerfd_settime(2)."""
    fd, flags = s32(a[0]), s32(a[1])
    if flags & ~(TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET):
        raise SyscallError(errno.EINVAL)
    raw = t.mm.copy_in(a[2], ITIMERSPEC)
    isec, insec = TIMESPEC.unpack_from(raw, 0)
    vsec, vnsec = TIMESPEC.unpack_from(raw, TIMESPEC.size)
    for sec, nsec in ((isec, insec), (vsec, vnsec)):
        if sec < 0 or not 0 <= nsec < NS:
            raise SyscallError(errno.EINVAL)
    timer = _timer(t, fd)
    value = vsec * NS + vnsec
    if flags & TFD_TIMER_ABSTIME and value:  # named in the caller's time namespace
        value = max(value - timens.offset(t.tg, timer.clock), 1)
    old = timer.settime(value, isec * NS + insec, bool(flags & TFD_TIMER_ABSTIME))
    if a[3]:
        t.mm.copy_out(a[3], _pack(*old))
    return 0


def timerfd_gettime(t: Task, a: Args) -> int:
    """timerfd_gettime(2)."""
    timer = _timer(t, s32(a[0]))
    t.mm.copy_out(a[1], _pack(*timer.gettime()))
    return 0


ENTRIES: list[Entry] = [
    supported("timerfd_create", timerfd_create),
    supported("timerfd_settime", timerfd_settime),
    supported("timerfd_gettime", timerfd_gettime),
]
