"""Time namespaces (time_namespaces(7)): per-namespace offsets of
CLOCK_MONOTONIC and CLOCK_BOOTTIME.

A process's namespace is ``NsSet.time`` (None: the sandbox's first, no
offsets); ``NsSet.time_children`` is where unshare(CLONE_NEWTIME) sends its
next children (/proc/PID/ns/time_for_children), the caller itself staying
where it is.  Linux's rules kept here:

* a new namespace starts with the offsets of the one it was made from, and
  they can be written (/proc/PID/timens_offsets, CAP_SYS_TIME) only until a
  process enters it (fork after unshare, clone3 with CLONE_NEWTIME, setns);
  after that, or for the first namespace, a write is EACCES;
* the offsets shift what the namespace's processes read (clock_gettime of
  MONOTONIC, MONOTONIC_RAW, MONOTONIC_COARSE, BOOTTIME, BOOTTIME_ALARM;
  sysinfo and /proc/uptime) and the absolute times they give
  (clock_nanosleep, timer_settime, timerfd_settime with TIMER_ABSTIME);
* setns() to a time namespace moves the caller (single-threaded) at once.

The vDSO reads one time page shared by every process (sentry/vdso), which
carries no offsets: once a namespace with offsets has a process in it, the
page's ``slow_mono`` flag tells every vDSO to take the syscall for the
monotonic and boot clocks (CLOCK_REALTIME stays in the vDSO), as Linux's
vDSO does through its time-namespace page.
"""

from __future__ import annotations

import errno
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sentry.kernel.errors import SyscallError

if TYPE_CHECKING:
    from sentry.kernel.threadgroup import ThreadGroup

CLOCK_MONOTONIC, CLOCK_MONOTONIC_RAW, CLOCK_MONOTONIC_COARSE = 1, 4, 6
CLOCK_BOOTTIME, CLOCK_BOOTTIME_ALARM = 7, 9
MONO_CLOCKS = frozenset({CLOCK_MONOTONIC, CLOCK_MONOTONIC_RAW, CLOCK_MONOTONIC_COARSE})
BOOT_CLOCKS = frozenset({CLOCK_BOOTTIME, CLOCK_BOOTTIME_ALARM})
NS = 1_000_000_000
KTIME_SEC_MAX = (1 << 63) // NS

# What is told when a namespace with offsets first gets a process (the vDSO
# page's switch, sentry/vdso); set by the Sentry at boot.
on_offsets_active: Callable[[], None] | None = None


class TimeNamespace:
    """One time namespace below the first: its two offsets, in ns."""

    def __init__(self, mono_ns: int = 0, boot_ns: int = 0, owner: Any = None) -> None:
        self.mono_ns = mono_ns
        self.boot_ns = boot_ns
        self.owner = owner  # the user namespace it was made in
        self.frozen = False  # a process has entered: offsets are fixed
        self.lock = threading.Lock()

    def enter(self) -> None:
        """A process enters: the offsets are fixed from now on."""
        with self.lock:
            self.frozen = True
        if (self.mono_ns or self.boot_ns) and on_offsets_active is not None:
            on_offsets_active()

    def write_offsets(self, data: bytes, clock_now: Callable[[int], int]) -> None:
        """/proc/PID/timens_offsets: lines "<clock> <secs> <nsecs>", the clock
        by number (1, 7) or name (monotonic, boottime).  EINVAL when
        malformed, ERANGE when a clock would leave [0, KTIME_SEC_MAX/2],
        EACCES once a process is in the namespace."""
        rows = []
        for line in data.decode("ascii", "replace").splitlines():
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 3:
                raise SyscallError(errno.EINVAL)
            name, secs, nsecs = parts
            clk = {"monotonic": CLOCK_MONOTONIC, "boottime": CLOCK_BOOTTIME}.get(name)
            try:
                clk = int(name) if clk is None else clk
                s, n = int(secs), int(nsecs)
            except ValueError:
                raise SyscallError(errno.EINVAL) from None
            if clk not in (CLOCK_MONOTONIC, CLOCK_BOOTTIME) or not 0 <= n < NS:
                raise SyscallError(errno.EINVAL)
            if abs(s) > KTIME_SEC_MAX:
                raise SyscallError(errno.ERANGE)
            total = (clock_now(clk) + s * NS + n) // NS
            if total < 0 or total > KTIME_SEC_MAX // 2:
                raise SyscallError(errno.ERANGE)
            rows.append((clk, s * NS + n))
        with self.lock:
            if self.frozen:
                raise SyscallError(errno.EACCES)
            for clk, off in rows:
                if clk == CLOCK_MONOTONIC:
                    self.mono_ns = off
                else:
                    self.boot_ns = off

    def show(self) -> bytes:
        """/proc/PID/timens_offsets as Linux prints it."""
        out = b""
        for name, off in ((b"monotonic", self.mono_ns), (b"boottime", self.boot_ns)):
            out += b"%-10s %10d %9d\n" % (name, off // NS, off % NS)
        return out


def _set(tg: ThreadGroup) -> Any:
    return getattr(tg, "namespaces", None)


def active(tg: ThreadGroup) -> TimeNamespace | None:
    """The namespace ``tg``'s clocks are read in (None: the first)."""
    s = _set(tg)
    return getattr(s, "time", None) if s is not None else None


def for_children(tg: ThreadGroup) -> TimeNamespace | None:
    """Where ``tg``'s next children go (/proc/PID/ns/time_for_children)."""
    s = _set(tg)
    nxt = getattr(s, "time_children", None) if s is not None else None
    return nxt if nxt is not None else active(tg)


def offset(tg: ThreadGroup, clk: int) -> int:
    """What ``tg``'s namespace adds to clock ``clk`` (ns)."""
    ns = active(tg)
    if ns is None:
        return 0
    if clk in MONO_CLOCKS:
        return ns.mono_ns
    if clk in BOOT_CLOCKS:
        return ns.boot_ns
    return 0


def new_from(tg: ThreadGroup, owner: Any) -> TimeNamespace:
    """unshare/clone3(CLONE_NEWTIME): a namespace with the offsets of the
    one ``tg``'s children would go to (Linux's clone_time_ns)."""
    base = for_children(tg)
    if base is None:
        return TimeNamespace(owner=owner)
    return TimeNamespace(base.mono_ns, base.boot_ns, owner)
