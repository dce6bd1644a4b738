"""Bringing every task of a kernel to a point where its state can be saved.

A checkpoint freezes the kernel (Kernel.freeze, as OCI pause does) and also
sets ``Kernel.quiescing``: a task blocked in a syscall then sees an
interruption, as Linux's freezer sends its fake signal, and the syscall ends
with ERESTARTSYS; the task loop, finding no signal to deliver, rewinds RIP over
the ``syscall`` instruction and restores RAX to the number, so the syscall runs
again from the start when the task next runs, here or after a restore.  Every
live task is then held in Task._resume with its registers in its stub's slot
(``held``; ``held_rax`` is the fast path's result, not yet written there).

What cannot be brought there (a group stopped by SIGSTOP, a traced task, a
wait that does not look at interruptions) makes the checkpoint fail, naming
the task, and the kernel is thawed as if nothing happened.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sentry.kernel.kernel import Kernel
    from sentry.kernel.task import Task

QUIESCE_TIMEOUT_S = 10.0


class CheckpointError(Exception):
    """The sandbox cannot be saved; the message names the object and why."""


def _not_held(kernel: Kernel) -> list[Task]:
    with kernel.lock:
        return [t for t in kernel.tasks.values() if not t.exited and not t.held]


def quiesce(kernel: Kernel, timeout: float = QUIESCE_TIMEOUT_S,
            keep_frozen: bool = False) -> None:
    """Freeze ``kernel`` with every live task held; CheckpointError (and the
    kernel thawed, unless it was paused before: ``keep_frozen``) if some task
    does not get there within ``timeout``."""
    with kernel.lock:
        for tg in kernel.thread_groups.values():
            if tg.stopped and not tg.zombie:
                raise CheckpointError(f"process {tg.tgid} is stopped (job control): "
                                      "continue it before a checkpoint")
    kernel.quiescing = True
    kernel.freeze()
    deadline = time.monotonic() + timeout
    left = _not_held(kernel)
    while left and time.monotonic() < deadline:
        for t in left:
            t.wake()  # a wait that started after the freeze's wake-up
        time.sleep(0.01)  # polling a set of flags, not synchronising a test
        left = _not_held(kernel)
    kernel.quiescing = False
    if left:
        resume(kernel, keep_frozen)
        names = ", ".join(f"task {t.tid} ({(t.tg.comm or b'').decode('utf-8', 'replace')})"
                          for t in left)
        raise CheckpointError(f"cannot stop {names} for a checkpoint within {timeout:.0f} s")


def resume(kernel: Kernel, keep_frozen: bool = False) -> None:
    """Let the held tasks go on (--leave-running, or a failed checkpoint),
    unless the container was paused before the checkpoint: it stays so."""
    if not keep_frozen:
        kernel.thaw()
