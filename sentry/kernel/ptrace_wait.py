"""What a tracer's wait4/waitid sees of its tracees (ptrace(2), "Stopped states").

A tracee's ptrace-stops are reported to its tracer whatever the wait's
WUNTRACED/__WCLONE flags say, before any child of the waiter; a tracee that
is not the waiter's child reports its exit here too, once (a traced child's
exit reaches its parent the ordinary way, in syscalls/process.py).  A tracee
that is not a thread-group leader is reported by its thread id.

The kernel lock is held by every caller (syscalls/process.py's wait).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shm.records import record

if TYPE_CHECKING:
    from sentry.kernel.task import Task

CLD_TRAPPED = 4


def traces(waiter: Task, tid: int) -> bool:
    """Whether ``waiter``'s process traces task ``tid`` (waitid says CLD_TRAPPED)."""
    return any(t.tid == tid for t in waiter.tg.tracees)


@record(frozen=True, slots=True)
class ThreadReport:
    """What wait4 needs of a reported tracee that is not a thread-group leader."""

    tgid: int  # the thread id wait returns
    utime_ns: int = 0
    stime_ns: int = 0
    child_utime_ns: int = 0
    child_stime_ns: int = 0


def _matches(waiter: Task, task: Task, pid: int) -> bool:
    if pid > 0:
        return task.tid == pid
    if pid == 0:
        return task.tg.pgid == waiter.tg.pgid
    if pid < -1:
        return task.tg.pgid == -pid
    return True


def _report(waiter: Task, task: Task) -> int | None:
    """A tracee's wait status for its tracer, or None.  A traced child's exit
    reaches its parent the usual way; other tracees' exits come here."""
    ts = task.ptrace
    if task.exited:
        if task.tg.parent is waiter.tg and task.tid == task.tg.tgid:
            return None  # the ordinary child exit path reports it
        if ts is not None and not ts.exit_reported and (task.tg.zombie or task.tid != task.tg.tgid):
            return task.tg.exit_status if task.tg.exiting else 0
        return None
    if ts is not None and ts.stopped and not ts.reported:
        return ts.status
    return None


def _tracees(waiter: Task, pid: int) -> list[Task]:
    return [t for t in waiter.tg.tracees if _matches(waiter, t, pid)]


def wait_report(waiter: Task, pid: int, options: int, consume: bool) -> tuple[Any, int] | None:
    """A tracee of ``waiter``'s process with a stop or an exit to report
    (kernel lock held): (thread group or ThreadReport, status)."""
    for t in _tracees(waiter, pid):
        status = _report(waiter, t)
        if status is None:
            continue
        who: Any = t.tg if t.tid == t.tg.tgid else ThreadReport(t.tid)
        if consume:
            ts = t.ptrace
            if t.exited:
                if ts is not None:
                    ts.exit_reported = True
                    t.ptrace = None
                waiter.tg.tracees.remove(t)
            elif ts is not None:
                ts.reported = True
        return who, status
    return None


def wait_pending(waiter: Task, pid: int) -> bool:
    """Whether ``wait_report`` has something (pure)."""
    return any(_report(waiter, t) is not None for t in _tracees(waiter, pid))


def has_tracees(waiter: Task, pid: int) -> bool:
    """Whether a tracee still matches (its wait is not ECHILD); tracees that
    are detached, or whose exit the parent's wait took, are dropped."""
    live = [t for t in waiter.tg.tracees
            if t.ptrace is not None and not (t.exited and t.tg.reaped)]
    waiter.tg.tracees[:] = live
    return any(_matches(waiter, t, pid) for t in live)
