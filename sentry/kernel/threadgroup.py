"""Thread groups (processes): the process tree, zombies and reaping.

Lock order: ``Kernel.lock`` guards the whole process tree, every pending-signal
set and every thread group's bookkeeping here.  It is taken before any
FdTable lock and never held while blocking on a stub or a file.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from sentry.kernel.signals import PendingSignals, SigAction
from shm.records import field, record

if TYPE_CHECKING:
    from sentry.kernel.task import Task
    from sentry.systrap.processes import StubProcess


@record(eq=False)
class ThreadGroup:
    """A process: what its threads share."""

    tgid: int
    parent: ThreadGroup | None
    pgid: int
    sid: int
    mm: Any
    fds: Any
    proc: StubProcess | None = None
    fs: Any = None  # the VFS context (root, cwd), once files are served
    cwd: bytes = b"/"
    tasks: list[Task] = field(default_factory=list)
    children: list[ThreadGroup] = field(default_factory=list)
    tracees: list[Task] = field(default_factory=list)  # tasks it ptraces (kernel/ptrace.py)
    sigactions: dict[int, SigAction] = field(default_factory=dict)
    pending: PendingSignals = field(default_factory=PendingSignals)
    exe: bytes = b""
    exe_file: Any = None  # the dentry execve ran, when known (Linux's mm->exe_file)
    argv: list[bytes] = field(default_factory=list)
    comm: bytes = b""
    umask: int = 0o022
    rlimits: dict[int, tuple[int, int]] = field(default_factory=dict)
    exiting: bool = False
    stopped: bool = False  # job control: stopped until SIGCONT
    stop_signal: int = 0
    stop_reported: bool = True  # wait(WUNTRACED) already saw this stop
    continued: bool = False  # wait(WCONTINUED) has not seen the continue yet
    exit_status: int = 0  # wait status once exiting
    zombie: bool = False
    reaped: bool = False
    exit_signal: int = 17  # SIGCHLD, or what clone asked for
    # The controlling terminal (sentry/tty Terminal), per process as on Linux:
    # inherited by fork, dropped by setsid; the terminal knows its session.
    tty: Any = None
    # The process's namespaces other than its mount namespace (which is
    # fs.ns): sentry/kernel/namespaces.py NsSet, None for the sandbox's first.
    namespaces: Any = None
    pidns: Any = None  # its pid namespace (sentry/kernel/pidns.py), None: the sandbox's first
    vfork_waiters: list[Any] = field(default_factory=list)
    prctl: dict[str, int] = field(default_factory=dict)  # PR_SET_* values that are only kept
    real_timer: Any = None  # ITIMER_REAL / alarm (sentry/kernel/itimer.py)
    posix_timers: dict[int, Any] = field(default_factory=dict)  # timer_create
    cpu_itimers: dict[int, Any] = field(default_factory=dict)  # ITIMER_VIRTUAL/PROF (cputimers.py)
    # Resource usage of exited, reaped children (for RUSAGE_CHILDREN / times()).
    child_utime_ns: int = 0
    child_stime_ns: int = 0
    utime_ns: int = 0
    stime_ns: int = 0
    # ru_maxrss (KiB): the peak of its exited stub processes (a live one's is
    # the host's to know), and the largest of its reaped descendants'.
    maxrss_kb: int = 0
    child_maxrss_kb: int = 0

    def action(self, sig: int) -> SigAction:
        return self.sigactions.get(sig) or SigAction()

    def live_tasks(self) -> list[Task]:
        return [t for t in self.tasks if not t.exited]

    def cpu_ns(self) -> int:
        """CPU time the process's application code has used: what earlier
        stub processes used (``utime_ns``, folded in at exec and exit) plus the
        live stub's own clock."""
        proc = self.proc
        live = proc.cpu_ns() if proc is not None and not self.zombie else 0
        return self.utime_ns + live


def new_reaper(tg: ThreadGroup, init: ThreadGroup | None) -> ThreadGroup | None:
    """Who adopts the children of exiting ``tg`` (Linux's find_new_reaper):
    the nearest living ancestor that made itself a child subreaper
    (PR_SET_CHILD_SUBREAPER), else init (its pid namespace's); none when
    init itself exits (a nested namespace's init keeps them: they were
    killed with it and it reaps them, zap_pid_namespace)."""
    ns = tg.pidns
    if ns is not None:
        init = ns.init
    if tg is init:
        return None
    p = tg.parent
    while p is not None and p is not init:
        if p.prctl.get("subreaper") and not p.exiting and not p.zombie:
            return p
        p = p.parent
    return init


def wait_status_exited(code: int) -> int:
    return (code & 0xFF) << 8


def describe_status(status: int) -> tuple[int, int]:
    """(si_code, si_status) of a SIGCHLD for a wait status."""
    if os.WIFSIGNALED(status):
        return (3 if status & 0x80 else 2), os.WTERMSIG(status)
    return 1, os.WEXITSTATUS(status)
