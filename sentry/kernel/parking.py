"""Parked syscalls: a blocked syscall another task's Sentry thread may finish.

Why: a task blocked in read on a pipe used to sleep on a lock in its own
Sentry thread; the writer woke that thread, which then copied the data out and
answered its stub. On one CPU (sentry/placement.py) that is two more thread
switches and a Python return path on every hand-off of a pipe ping-pong. A
parked reader's thread instead waits (in C, GIL released) for its task's next
event, and the writer finishes the read itself: copies the bytes into the
reader's memory and answers the reader's stub.

Who finishes: the slot's state word decides, by compare-and-swap in C
(sentry/systrap/stub.c). The task's thread sets PARKED before the waiter is
visible to anyone. A finisher moves PARKED -> CLAIMED (then REPLY with the
result, or back to UNPARKED if it cannot finish, e.g. EFAULT); a signal
sender, a kill, a timeout or the task itself moves PARKED -> UNPARKED and the
task's thread redoes the syscall the ordinary way (which then sees the signal,
the data or EOF). A sender that finds the syscall claimed or answered kicks
the stub instead, as for a task running application code.

What a finisher skips that the task's own return path does: strace (parking
is off under --strace), signal delivery (it does not finish a task with a
signal pending, and a later signal kicks the stub), and the freeze check
(``claim`` sets ``in_app`` before reading ``kernel.frozen``, the order
Task._resume keeps, so a freezer that runs after sees the task in the app and
kicks it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from sentry.kernel.errors import SyscallError
from sentry.systrap import stubs

if TYPE_CHECKING:
    from sentry.kernel.task import Task

PARK_SLICE_NS = 100_000_000  # how often a parked thread looks at kills and its stub


class ParkedDone(Exception):  # noqa: N818 - a control-flow signal, not an error
    """Raised through the handler to the task loop: another thread finished the
    syscall, and ``event`` is the task's next one."""

    def __init__(self, event: int) -> None:
        super().__init__()
        self.event = event


def can_park(task: Task) -> bool:
    return not task.kernel.strace


def park(task: Task) -> None:
    """Mark the task's syscall parked; call before its waiter is visible."""
    task.thread.park()
    task.parked = True


def wait(task: Task, cancel: Callable[[], None]) -> None:
    """Sleep until the syscall is finished by another thread (raises ParkedDone
    with the next event) or handed back (a pending signal or kill then raises
    here; otherwise the caller retries).  ``cancel`` withdraws the waiter on
    the way out, however the wait ends."""
    th = task.thread
    try:
        while True:
            # A signal or kill that came before ``parked`` was set found no one
            # to hand back to: look each time round, the first time included.
            if task.killed or task.signal_pending() or task.kernel.quiescing:
                th.unpark()  # if a finisher has it, its reply brings the next event
            rc = th.park_wait(PARK_SLICE_NS)
            if rc == 0:
                raise ParkedDone(th.slot.event)
            if rc == 1:
                task.check_interrupt()
                return
            if th.proc.poll_dead():
                raise stubs.StubDied(th.proc.pid, th.proc.exit_status or 0)
    finally:
        task.parked = False
        # However the wait ends, the waiter leaves the pipe or socket before
        # the task can exit and its slot's memory go: a stub killed while
        # parked (StubDied) left it queued, and the writer's last close then
        # handed back a slot in a retired arena and crashed the Sentry
        # (SIGSEGV in sentry_unpark: 300 readers killed at once).  Withdrawing
        # twice, or what a finisher already took, is a no-op.
        cancel()


def claim(task: Task) -> bool:
    """Take ``task``'s parked syscall over; False if it was handed back, or
    must be (a signal to deliver, a kill, a frozen kernel)."""
    th = task.thread
    if not th.claim():
        return False
    task.in_app = True  # before reading frozen: see the module docstring
    if (task.kernel.holding and task.kernel.holds(task)) or task.killed or task.signal_pending():
        task.in_app = False
        th.unclaim()
        return False
    return True


def finish_read(task: Task, addr: int, data: bytes) -> bool:
    """Finish a claimed read with ``data`` copied to ``addr``; False (handed
    back, nothing written) when the buffer is not writable."""
    try:
        task.mm.copy_out(addr, data)
    except SyscallError:
        task.in_app = False
        task.thread.unclaim()
        return False
    task.thread.claimed_return(len(data))
    return True


def hand_back(task: Task) -> None:
    """A claimer's or waker's way to give the syscall back without finishing it."""
    task.thread.unpark()
