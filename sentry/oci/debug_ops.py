"""What `runsc.py debug` asks a running sandbox, answered in the Sentry: each
task's state, its current syscall and the Sentry's own stack for it
(``--stacks``), and a syscall profile over a while (``--profile``).

Why a profile is two requests (start, then read after the duration) and not
one that sleeps: the Sentry serves its control channel one request at a time,
and a kill must not wait behind a five-second profile. A profile whose reader
never comes back stops by itself (:data:`ABANDONED_S` after its duration), so
a dead client cannot leave the timing wrappers in the hot path.

Everything here runs after the Sentry is confined: it may not import
modules lazily, open files or start processes.
"""

from __future__ import annotations

import sys
import threading
from typing import TYPE_CHECKING, Any

from sentry.kernel.profile import SyscallProfile
from sentry.systrap.stubs import RAX, RDI, RDX, RSI

if TYPE_CHECKING:
    from types import FrameType

    from sentry.kernel.kernel import Kernel
    from sentry.kernel.task import Task

ABANDONED_S = 30.0
MAX_DURATION_S = 3600.0


# -- stacks --------------------------------------------------------------------

def _frames_by_task() -> dict[int, FrameType]:
    """id(task) -> the innermost frame of the Sentry thread running it (found
    by the task loop's frame: Task._run's ``self``)."""
    out: dict[int, FrameType] = {}
    for top in sys._current_frames().values():
        f: FrameType | None = top
        while f is not None:
            if f.f_code.co_name == "_run" and "self" in f.f_locals:
                out[id(f.f_locals["self"])] = top
                break
            f = f.f_back
    return out


def _stack(frame: FrameType | None, limit: int = 12) -> list[str]:
    lines = []
    while frame is not None and len(lines) < limit:
        code = frame.f_code
        lines.append(f"{code.co_filename}:{frame.f_lineno} {code.co_name}")
        frame = frame.f_back
    return lines


def _task_row(kernel: Kernel, task: Task, frame: FrameType | None) -> dict[str, Any]:
    tg = task.tg
    if tg.zombie:
        state = "zombie"
    elif getattr(tg, "stopped", False):
        state = "stopped"
    elif task.in_app:
        state = "running (application)"
    else:
        state = "in the Sentry"
    row: dict[str, Any] = {"tid": task.tid, "pid": tg.tgid,
                           "comm": (tg.comm or b"").decode("utf-8", "replace"),
                           "state": state, "syscall": None, "stack": _stack(frame)}
    regs = task.regs
    if not task.in_app and regs is not None and len(regs) > RDX:
        nr = regs[RAX]
        row["syscall"] = (f"{kernel.syscall_name(nr)}({regs[RDI]:#x}, {regs[RSI]:#x}, "
                          f"{regs[RDX]:#x}, ...)")
    return row


def stacks(kernel: Kernel) -> dict[str, Any]:
    """Every live task: state, current syscall, the Sentry's stack for it."""
    with kernel.lock:
        tasks = sorted(kernel.tasks.values(), key=lambda t: t.tid)
    frames = _frames_by_task()
    return {"ok": True, "tasks": [_task_row(kernel, t, frames.get(id(t))) for t in tasks]}


# -- profile -------------------------------------------------------------------

class _Profiling:
    """The one profile a sandbox may have running, and its safety stop."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.profile: SyscallProfile | None = None
        self.timer: threading.Timer | None = None

    def start(self, kernel: Kernel, seconds: Any) -> dict[str, Any]:
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) \
                or not 0 < seconds <= MAX_DURATION_S:
            return {"ok": False, "error": f"bad duration {seconds!r}"}
        with self.lock:
            if self.profile is not None:
                return {"ok": False, "error": "a profile is already running"}
            self.profile = SyscallProfile(kernel, kernel.syscall_name)
            self.profile.start()
            self.timer = threading.Timer(seconds + ABANDONED_S, self._abandon)
            self.timer.daemon = True
            self.timer.start()
        return {"ok": True}

    def read(self) -> dict[str, Any]:
        """Stop the profile and give what it counted."""
        with self.lock:
            prof, self.profile = self.profile, None
            if self.timer is not None:
                self.timer.cancel()
                self.timer = None
        if prof is None:
            return {"ok": False, "error": "no profile is running"}
        prof.stop()
        return {"ok": True, "profile": prof.snapshot()}

    def _abandon(self) -> None:
        with self.lock:
            prof, self.profile, self.timer = self.profile, None, None
        if prof is not None:
            prof.stop()


PROFILING = _Profiling()
