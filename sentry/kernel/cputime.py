"""CPU-time accounting: how long each task ran application code and how long
the Sentry worked for it, the numbers behind the CPU-time clocks, times(2),
getrusage(2), ITIMER_VIRTUAL/PROF and CPU-time POSIX timers.

Where the time comes from, and why:

- A process's user time is its stub process's host CPU clock (the host
  counts exactly the time the application's instructions ran), plus what its
  earlier images used (ThreadGroup.cpu_ns).
- A task's system time is the CPU time of the Sentry thread serving it (the
  Sentry is this sandbox's kernel: its work on a syscall is the task's
  system time, as gVisor counts a task goroutine's time in the Sentry).  One
  task runs on one Sentry thread at a time (workers.py), so that thread's
  host CPU clock, read from its start on this task, is the task's alone; the
  Sentry may read its own threads' CPU clocks (CPUCLOCK_PERTHREAD of a thread
  of its own thread group), which needs no new host call.
- A task's user time, when it is its process's only thread, is the process's;
  with several, it is wall time spent in the application (between handing
  the stub the thread and its next event), capped by the process's, since
  Linux lets a process read only its own threads' CPU clocks: the stub
  threads' per-thread clocks are out of the Sentry's reach (its seccomp
  filter refuses open, so no /proc).  Like gVisor's per-task accounting,
  time the host took the CPU away from such a thread while it was in
  application code counts as its run time.
"""

from __future__ import annotations

import errno
import threading
import time
from typing import TYPE_CHECKING

from sentry.kernel.errors import SyscallError

if TYPE_CHECKING:
    from sentry.kernel.task import Task
    from sentry.kernel.threadgroup import ThreadGroup

CPUCLOCK_PROF = 0
CPUCLOCK_VIRT = 1
CPUCLOCK_SCHED = 2
CPUCLOCK_PERTHREAD = 4


def host_thread_clock(tid: int) -> int:
    """The host clock id of a host thread's CPU clock (MAKE_THREAD_CPUCLOCK)."""
    return ((~tid) << 3) | CPUCLOCK_PERTHREAD | CPUCLOCK_SCHED


class TaskCPU:
    """One task's user (application) and system (Sentry) time."""

    __slots__ = ("app_ns", "app_since", "_clock", "_base", "sys_done")

    def __init__(self) -> None:
        self.app_ns = 0  # finished stretches of application code
        self.app_since = 0  # time.monotonic_ns() the current stretch began; 0: none
        self._clock: int | None = None  # the serving Sentry thread's CPU clock
        self._base = 0
        self.sys_done = 0  # Sentry time of earlier runs (none yet: one run per task)

    def start(self) -> None:
        """Called on the Sentry thread that now serves the task."""
        clock = host_thread_clock(threading.get_native_id())
        self._base = time.clock_gettime_ns(clock)
        self._clock = clock

    def stop(self) -> int:
        """The task's run ends (on its Sentry thread): its final system time."""
        self.sys_done = self.sys_ns()
        self._clock = None
        return self.sys_done

    def sys_ns(self) -> int:
        clock = self._clock
        if clock is None:
            return self.sys_done
        try:
            return self.sys_done + max(0, time.clock_gettime_ns(clock) - self._base)
        except OSError:  # the thread just ended
            return self.sys_done

    def running(self, window_s: float = 0.001) -> bool:
        """Whether the serving Sentry thread is working on the task's syscall
        now (its CPU clock moves), not waiting in it: what /proc's state letter
        needs (R against S) for a task that is in a syscall.  Linux knows
        from the scheduler; here the wait may be in any of the Sentry's many
        blocking points, so the thread's own CPU clock is sampled over
        ``window_s`` instead (a blocked thread's does not move)."""
        clock = self._clock
        if clock is None:
            return False
        try:
            before = time.clock_gettime_ns(clock)
            time.sleep(window_s)
            return time.clock_gettime_ns(clock) - before >= window_s * 1e9 * 0.1
        except OSError:  # the thread just ended
            return False

    def user_ns(self) -> int:
        since = self.app_since
        now = time.monotonic_ns() - since if since else 0
        return self.app_ns + max(0, now)


def task_cpu(t: Task) -> TaskCPU:
    return t.cpu


def thread_user_ns(t: Task) -> int:
    """The thread's application time: its process's exact host figure when it
    is the only thread, else its wall time in application code capped by
    that figure (a loaded host stretches wall time, never CPU time)."""
    process = group_user_ns(t.tg)
    if len(t.tg.live_tasks()) <= 1:
        return process
    return min(task_cpu(t).user_ns(), process)


def thread_sys_ns(t: Task) -> int:
    return task_cpu(t).sys_ns()


def group_user_ns(tg: ThreadGroup) -> int:
    """The process's application time (every image of it, every thread)."""
    return tg.cpu_ns()


def group_sys_ns(tg: ThreadGroup) -> int:
    """The Sentry's time for the process: its exited threads' and its live ones'."""
    return tg.stime_ns + sum(task_cpu(t).sys_ns() for t in tg.live_tasks())


def sample(kind: int, user: int, system: int) -> int:
    """A CPU clock's reading: PROF and SCHED are user + system, VIRT user only."""
    return user if kind == CPUCLOCK_VIRT else user + system


def decode_clock(t: Task, clk: int) -> tuple[int, Task | ThreadGroup]:
    """(kind, target) of a CPU-time clock id: CLOCK_PROCESS/THREAD_CPUTIME_ID
    or one made by clock_getcpuclockid/pthread_getcpuclockid (~pid << 3).
    Linux's rules: a thread clock names a thread of the caller's process, a
    process clock a process (by its leader's pid); else EINVAL."""
    if clk == 2:
        return CPUCLOCK_SCHED, t.tg
    if clk == 3:
        return CPUCLOCK_SCHED, t
    if clk >= 0 or clk & 7 == 7:
        raise SyscallError(errno.EINVAL)
    kind, pid = clk & 3, ~(clk >> 3)
    if kind == 3:
        raise SyscallError(errno.EINVAL)
    if clk & CPUCLOCK_PERTHREAD:
        if pid == 0:
            return kind, t
        with t.kernel.lock:
            target = t.kernel.tasks.get(pid)
        if target is None or target.tg is not t.tg or target.exited:
            raise SyscallError(errno.EINVAL)
        return kind, target
    if pid == 0:
        return kind, t.tg
    with t.kernel.lock:
        tg = t.kernel.thread_groups.get(pid)
    if tg is None or tg.reaped:
        raise SyscallError(errno.EINVAL)
    return kind, tg


def read_clock(kind: int, target: Task | ThreadGroup) -> int:
    """The current reading of a decoded CPU clock, in ns."""
    from sentry.kernel.threadgroup import ThreadGroup

    if isinstance(target, ThreadGroup):
        if target.zombie:
            return sample(kind, target.utime_ns, target.stime_ns)
        return sample(kind, group_user_ns(target), group_sys_ns(target))
    return sample(kind, thread_user_ns(target), thread_sys_ns(target))
