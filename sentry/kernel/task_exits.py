"""How a task's syscall or life ends other than by returning a value.

The exceptions a handler raises to end the process or the task (`TaskExit`,
`TaskKilled`), Linux's internal restart codes (a wait a signal interrupted),
the wait statuses a death leaves, and the slice at which every wait inside
the Sentry re-checks for them. Why a module of its own: both the syscall
loop (sentry/kernel/task.py) and signal delivery (task_signals.py) raise and
resolve these, and handlers import them without the whole task machinery.
"""

from __future__ import annotations

U64 = (1 << 64) - 1
ERESTARTSYS = 512
ERESTARTNOINTR = 513
ERESTARTNOHAND = 514
ERESTART_RESTARTBLOCK = 516
RESTART_CODES = frozenset({ERESTARTSYS, ERESTARTNOINTR, ERESTARTNOHAND, ERESTART_RESTARTBLOCK})
WAIT_SLICE = 0.05  # Sentry-internal waits re-check signals this often


CORE_SIGNALS = frozenset({3, 4, 5, 6, 7, 8, 11, 24, 25, 31})


class TaskExit(Exception):
    """Raised by exit_group-like handlers: the whole process ends with this wait status."""

    def __init__(self, wait_status: int, group: bool = True) -> None:
        super().__init__(wait_status)
        self.wait_status = wait_status
        self.group = group


class TaskKilled(Exception):
    """The task was killed (SIGKILL, group exit, sandbox shutdown) while in the Sentry."""


def exit_status(code: int) -> int:
    """Wait status of a normal exit."""
    return (code & 0xFF) << 8


def signal_status(signo: int) -> int:
    """Wait status of a death by signal (core flag where Linux's default is core)."""
    return signo | (0x80 if signo in CORE_SIGNALS else 0)
