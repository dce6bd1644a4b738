"""Signal delivery to a task: faults, forced signals, stops, handler frames.

Why apart from sentry/kernel/task.py: the task's syscall loop calls into
this only when a signal is pending or a fault arrived, never on the fast
return path; Linux keeps the same code apart (kernel/signal.c and the
arch's signal frame code). `SignalDelivery` is `Task`'s base, so these
stay methods of the task (``task.deliver_signals``), found without a call
more than before. The frame layout itself is sentry/kernel/signals.py's.
"""

from __future__ import annotations

import errno
import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sentry.kernel import ptrace, rlimits
from sentry.kernel import signals as sig
from sentry.kernel.errors import SyscallError
from sentry.kernel.signals import PendingSignals, SigAction, SigInfo
from sentry.kernel.task_exits import (
    ERESTARTNOINTR,
    ERESTARTSYS,
    U64,
    WAIT_SLICE,
    TaskExit,
    TaskKilled,
    signal_status,
)
from sentry.mm import eofguard
from sentry.systrap.stubs import RAX, RIP, StubThread

if TYPE_CHECKING:
    from sentry.kernel.kernel import Kernel
    from sentry.kernel.threadgroup import ThreadGroup

log = logging.getLogger("pyvisor")

SIGBUS, BUS_ADRERR = 7, 2  # a page past a mapped file's end (mm/eofguard.py)


class SignalDelivery:
    """The signal half of a `Task`: what it does with a pending signal or a
    fault. The attributes are the task's own (set by ``Task.__init__``)."""

    kernel: Kernel
    tg: ThreadGroup
    thread: StubThread
    sigmask: int
    pending: PendingSignals
    altstack: tuple[int, int, int]
    saved_sigmask: int | None
    ptrace: Any
    killed: bool
    _wake: threading.Event

    mm: Any  # Task's properties
    regs: tuple[int, ...]

    def _fault(self, th: StubThread) -> None:
        """A synchronous fault: forced on the task (unblocked, un-ignored)."""
        signo, code, addr = th.fault()
        if not 1 <= signo <= sig.NSIG:
            signo = sig.SIGKILL
        log.debug("task %d: fault signal %d code %d addr %#x", self.tid, signo, code, addr)
        if code >= 1 << 31:
            code -= 1 << 32
        if signo == sig.SIGSEGV:
            if self.mm.grow_down(addr, rlimits.get(self.tg, rlimits.RLIMIT_STACK)[0]):
                return  # a MAP_GROWSDOWN mapping grew over it: run again
            verdict = self.mm.eof_fault(addr)  # a file mapping past its file's end
            if verdict == eofguard.RETRY:
                return  # the file grew: its pages are opened, the access runs again
            if verdict == eofguard.SIGBUS:
                signo, code = SIGBUS, BUS_ADRERR
        self._force(signo, code, addr)

    def _force(self, signo: int, code: int, addr: int) -> None:
        """Queue a synchronous signal as Linux's force_sig: a blocked or
        ignored one is unblocked and reset to its default first."""
        with self.kernel.lock:
            act = self.tg.action(signo)
            if self.sigmask & sig.bit(signo) or act.handler == sig.SIG_IGN:
                self.tg.sigactions[signo] = SigAction()
                self.sigmask &= ~sig.bit(signo)
            self.pending.add(SigInfo(signo, code=code, addr=addr or 0))

    def _take_signal(self) -> SigInfo | None:
        with self.kernel.lock:
            return self.pending.take(self.sigmask) or self.tg.pending.take(self.sigmask)

    def deliver_signals(self, regs: list[int], restart: int = 0) -> list[int]:
        """Act on pending unblocked signals; returns the registers to resume with.

        ``restart``: a restart code from the interrupted syscall, resolved here
        (EINTR when a handler runs and the code says so).
        """
        while True:
            info = self._take_signal()
            if info is None:
                return regs
            if self.ptrace is not None:
                info = ptrace.signal_stop(self, info, regs)
                if info is None:
                    continue
            act = self.tg.action(info.signo)
            if act.handler == sig.SIG_IGN:
                continue
            if act.handler == sig.SIG_DFL:
                action = sig.default_action(info.signo)
                if action == sig.STOP:
                    self._stop(info.signo, regs)
                    continue
                if action in (sig.IGNORE, sig.CONT):
                    continue
                status = signal_status(info.signo) if action == sig.CORE else info.signo
                with self.kernel.lock:
                    self.kernel._kill_group(self.tg, info.signo)
                    self.tg.exit_status = status
                raise TaskExit(status)
            if restart:
                regs = list(regs)
                if restart == ERESTARTNOINTR or (restart == ERESTARTSYS
                                                 and act.flags & sig.SA_RESTART):
                    regs[RIP] -= 2
                    regs[RAX] = self.regs[RAX]
                else:
                    regs[RAX] = (-errno.EINTR) & U64
            return self._setup_frame(regs, act, info)

    def _stop(self, signo: int, regs: list[int] | None = None) -> None:
        """Stay stopped (the stub waits in its handler) until SIGCONT or a
        kill.  A tracer attaching meanwhile turns the stop into a ptrace
        group-stop at once; detached while the group is still stopped, the
        task stays stopped."""
        self.kernel.stop_group(self.tg, signo)
        while True:
            self._hold_while(lambda: self.tg.stopped and self.ptrace is None)
            if self.ptrace is None or not self.tg.stopped or regs is None:
                return
            if ptrace.attached_while_stopped(self, signo, regs):
                return  # the tracer let it run

    def _hold_while(self, held: Callable[[], bool]) -> None:
        """Keep this task in the Sentry (its stub waits in its handler) while
        ``held()``: a group stop, or a frozen kernel.  Whoever ends the hold
        wakes the task; a kill ends it at once."""
        while held():
            if self.killed:
                raise TaskKilled()
            self._wake.clear()
            if held():
                self._wake.wait(WAIT_SLICE)

    def _deliver_restart(self, regs: list[int], nr: int, code: int) -> list[int]:
        out = self.deliver_signals(regs, restart=code)
        if out is regs:  # no handler ran: re-execute the syscall transparently
            out = list(regs)
            out[RIP] -= 2
            out[RAX] = nr
        if self.saved_sigmask is not None:
            self.sigmask = self.saved_sigmask
            self.saved_sigmask = None
        return out

    def _setup_frame(self, regs: list[int], act: SigAction, info: SigInfo) -> list[int]:
        old_mask = self.saved_sigmask if self.saved_sigmask is not None else self.sigmask
        self.saved_sigmask = None
        sp, frame, new, fp_addr, fp_bytes = sig.build_frame(
            regs, act, info, old_mask, self.altstack,
            info.addr if info.signo in (4, 7, 8, 11) else 0, self.thread.save_fp())
        try:
            self.mm.copy_out(sp, frame)
            if fp_addr:
                self.mm.copy_out(fp_addr, fp_bytes)
        except SyscallError:
            # No room for the frame: Linux's force_sigsegv.  For SIGSEGV itself
            # that is death; any other signal is dropped and a SIGSEGV forced
            # instead (unblocked, un-ignored), whose handler may well run on
            # another stack (the LTP's signal06: an altstack made read-only).
            if info.signo == sig.SIGSEGV:
                with self.kernel.lock:
                    self.kernel._kill_group(self.tg, sig.SIGSEGV)
                raise TaskExit(signal_status(sig.SIGSEGV)) from None
            self.saved_sigmask = old_mask  # the mask the SIGSEGV frame saves
            self._force(sig.SIGSEGV, 128, 0)  # SI_KERNEL
            return self.deliver_signals(regs)
        mask = self.sigmask | act.mask
        if not act.flags & sig.SA_NODEFER:
            mask |= sig.bit(info.signo)
        self.sigmask = mask & ~sig.UNBLOCKABLE
        if act.flags & sig.SA_RESETHAND:  # only the handler resets (Linux's SA_ONESHOT)
            self.tg.sigactions[info.signo] = SigAction(sig.SIG_DFL, act.flags, act.restorer,
                                                       act.mask)
        if self.altstack[1] & sig.SS_AUTODISARM:
            self.altstack = (0, sig.SS_DISABLE, 0)
        return new
