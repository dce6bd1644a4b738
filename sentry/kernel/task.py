"""Tasks: one application thread, served by one Sentry thread.

The task's Python thread blocks (GIL released) in C on its sysmsg slot, wakes
with a trapped syscall or a fault, dispatches by list index, delivers pending
signals, writes the registers back and resumes the stub.  Handlers are plain
functions ``(task, args) -> int``; they raise SyscallError for errors, TaskExit
to end the process, ExecSwitch to replace the image.

Syscall restart (as Linux): a handler interrupted by a signal raises
SyscallError(ERESTARTSYS) (or a sibling code); if a handler frame is set up the
syscall returns EINTR unless SA_RESTART; otherwise it is re-executed by moving
RIP back over the two-byte `syscall` instruction.
"""

from __future__ import annotations

import errno
import logging
import os
import threading
import time
from typing import TYPE_CHECKING, Any

from sentry.kernel import contain, futex, ptrace, schedparams, seccomp
from sentry.kernel import signals as sig
from sentry.kernel.cputime import TaskCPU
from sentry.kernel.creds import Credentials  # noqa: F401 - re-exported: tasks carry them
from sentry.kernel.errors import SyscallError
from sentry.kernel.parking import ParkedDone
from sentry.kernel.signals import PendingSignals, SigAction
from sentry.kernel.task_exits import (
    ERESTARTSYS,
    RESTART_CODES,
    U64,
    WAIT_SLICE,
    TaskExit,
    TaskKilled,
    signal_status,
)
from sentry.kernel.task_signals import SignalDelivery
from sentry.kernel.workers import WORKERS, Job
from sentry.mm.address_space import StubOp
from sentry.mm.layout import APP_END, APP_START
from sentry.systrap import patch, stubs
from sentry.systrap.stubs import RAX, RIP, StubThread
from sentry.vfs.file import set_interrupt_check
from sentry.vfs.locks import LOCKS

monotonic_ns = time.monotonic_ns

if TYPE_CHECKING:
    from sentry.kernel.kernel import Kernel
    from sentry.kernel.threadgroup import ThreadGroup
    from sentry.systrap.processes import StubProcess

log = logging.getLogger("pyvisor")

NR_SYSCALLS = 512
EVENT_SYSCALL = stubs.lib.EVENT_SYSCALL
EVENT_FAULT = stubs.lib.EVENT_FAULT
INITIAL_EFLAGS = 0x202  # IF, and bit 1 which is always set


_current = threading.local()


def current_task() -> Task | None:
    """The task the calling Sentry thread serves (None outside task threads).

    procfs answers /proc/self with it; nothing else should need it.
    """
    return getattr(_current, "task", None)


class ExecSwitch(Exception):
    """Raised by execve: continue this task at entry/sp, in a new stub process
    or (``proc`` None) in its own one, emptied."""

    def __init__(self, proc: StubProcess | None, entry: int, stack_pointer: int,
                 old_mm: Any = None) -> None:
        super().__init__()
        self.proc = proc
        self.entry = entry
        self.stack_pointer = stack_pointer
        self.old_mm = old_mm  # released once the old stub is gone


def _release_old_mm(exc: ExecSwitch) -> None:
    """After an execve's switch: the old address space goes, unless another
    process still uses it (a vfork parent)."""
    if exc.old_mm is not None:
        exc.old_mm.release()
        exc.old_mm.commit_frees()


class SentryBug(Exception):
    """A Sentry failure the kernel could not contain (outside a syscall
    handler: a handler's own exceptions become an errno, kernel/contain.py)."""


def initial_regs(entry: int, stack_pointer: int) -> list[int]:
    regs = [0] * stubs.NREGS
    regs[RIP] = entry
    regs[stubs.RSP] = stack_pointer
    regs[stubs.EFL] = INITIAL_EFLAGS
    return regs


class Task(SignalDelivery):
    """An application thread with its kernel-visible state."""

    def __init__(self, kernel: Kernel, tg: ThreadGroup, thread: StubThread, tid: int,
                 creds: Credentials) -> None:
        self.kernel = kernel
        self.tg = tg
        self.thread = thread
        self.tid = tid
        self.creds = creds
        self.sched = schedparams.DEFAULT  # policy, priorities, nice (syscalls/sched.py)
        self.sigmask = 0
        self.pending = PendingSignals()
        self.altstack: tuple[int, int, int] = (0, sig.SS_DISABLE, 0)
        self.fs_base = 0
        self.clear_child_tid = 0
        self.robust_list: tuple[int, int] = (0, 0)
        self.cpu_mask: frozenset[int] | None = None  # sched_setaffinity; None: every CPU
        self.seccomp: object | None = None  # its seccomp filter chain (sentry/kernel/seccomp.py)
        self._regs: tuple[int, ...] | None = ()  # None: still only in the slot (regs)
        self.new_regs: list[int] | None = None
        self.in_app = False  # running application code (a kick is needed to interrupt it)
        self.killed = False
        self.dethreaded = False  # ended by another thread's execve
        self.exited = False
        self.saved_sigmask: int | None = None  # restored after a sigsuspend handler
        self._frees_after_event = False  # _queue_mm_ops: commit frees at the next event
        self.parked = False  # a syscall another thread may finish (sentry/kernel/parking.py)
        self.blocker: Any = None  # a futex wait wake() and kill() poke (sentry/kernel/futex.py)
        self.held = False  # held by a frozen kernel on its way to the app (_resume)
        self.held_rax: int | None = None  # the syscall result it will resume with, if any
        self.ptrace: Any = None  # its tracer's hold on it (sentry/kernel/ptrace.py)
        # What a clone child's first reply carries (fork.py sets them, boot uses them):
        self.boot_ops: list[StubOp] | None = None  # mapping its address space
        self.boot_private = False  # that address space is the child's alone
        self.boot_fp: bytes | None = None  # its creator's FPU state
        self.boot_waited = False  # its stub's first event already taken (a restore's threads)
        self._wake = threading.Event()
        self.job: Job | None = None  # the Sentry thread's run of this task (workers.py)
        self.cpu = TaskCPU()  # its user and system time (sentry/kernel/cputime.py)

    # -- process-wide state, reached through the thread group -------------
    @property
    def mm(self) -> Any:
        return self.tg.mm

    @property
    def fds(self) -> Any:
        return self.tg.fds

    @property
    def regs(self) -> tuple[int, ...]:
        """The registers of the event being handled, read from the slot on first
        use: the syscall fast path unpacks only the number and arguments."""
        regs = self._regs
        if regs is None:
            regs = self._regs = self.thread.get_regs()
        return regs

    @regs.setter
    def regs(self, value: tuple[int, ...]) -> None:
        self._regs = value

    @property
    def pid(self) -> int:
        return self.tg.tgid

    @property
    def ppid(self) -> int:
        parent = self.tg.parent
        return parent.tgid if parent is not None else 0

    @property
    def umask(self) -> int:
        return self.tg.umask

    @umask.setter
    def umask(self, value: int) -> None:
        self.tg.umask = value

    @property
    def rlimits(self) -> dict[int, tuple[int, int]]:
        return self.tg.rlimits

    @property
    def sigactions(self) -> dict[int, SigAction]:
        return self.tg.sigactions

    def set_fs_base(self, base: int) -> None:
        self.fs_base = base
        self.thread.set_fs(base)

    # -- waking and interruption ------------------------------------------
    def wake(self) -> None:
        """A signal arrived: end a Sentry-internal wait, or interrupt application code."""
        self._wake.set()
        if (b := self.blocker) is not None:
            b.poke()
        if self.in_app or (self.parked and not self.thread.unpark()):
            self.thread.kick()  # running application code, or about to

    def kill(self) -> None:
        """Make the task die: its stub is killed and any Sentry wait ends."""
        self.killed = True
        self._wake.set()
        if (b := self.blocker) is not None:
            b.poke()
        if self.parked:
            self.thread.unpark()
        proc = self.tg.proc
        if proc is not None:
            proc.kill()

    def signal_pending(self) -> bool:
        return bool((self.pending.mask | self.tg.pending.mask) & ~self.sigmask)

    def check_interrupt(self) -> None:
        """Raise if a Sentry-internal wait must end: killed, or a signal to take."""
        if self.killed:
            raise TaskKilled()
        if (self.signal_pending() or self.kernel.quiescing
                or ((p := self.ptrace) is not None and p.trap_stop)):
            # a signal, PTRACE_INTERRUPT, or a checkpoint's freezer (restarted
            # after the thaw, as Linux's fake signal: sentry/checkpoint/quiesce.py)
            raise SyscallError(ERESTARTSYS)

    def interrupted(self) -> bool:
        return self.killed or self.signal_pending()

    def sleep_until(self, deadline: float | None) -> None:
        """Sleep until ``deadline`` (time.monotonic()), interruptible by signals."""
        while True:
            self._wake.clear()
            self.check_interrupt()
            if deadline is None:
                self._wake.wait(WAIT_SLICE * 20)
                continue
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self._wake.wait(min(left, 1.0))

    def wait_cond(self, cond: threading.Condition, ready: Any, deadline: float | None) -> bool:
        """Wait on ``cond`` (held by the caller) until ``ready()``; False at deadline."""
        while not ready():
            self.check_interrupt()
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return False
            cond.wait(WAIT_SLICE if left is None else min(left, WAIT_SLICE))
        return True

    # -- running -----------------------------------------------------------
    def start(self, regs: list[int], fs_base: int = 0, worker: Any = None) -> None:
        """Serve this task on a Sentry thread of its own (a pooled one, or
        ``worker`` reserved by clone: workers.py)."""
        self.job = WORKERS.start(lambda: self._main(regs, fs_base), f"task-{self.tid}", worker)

    def _main(self, regs: list[int], fs_base: int) -> None:
        status: int | None = sig.SIGKILL
        set_interrupt_check(self.check_interrupt)
        _current.task = self
        self.cpu.start()
        try:
            status = self._run(regs, fs_base)
        except TaskExit as exc:  # a fatal signal found while delivering
            status = exc.wait_status
        except TaskKilled:
            status = self.tg.exit_status or sig.SIGKILL
        except stubs.StubDied as exc:
            status = self._died_on_host(exc)
        except BaseException as exc:  # noqa: BLE001 - a Sentry bug ends the sandbox
            log.exception("task %d: Sentry failure", self.tid)
            self.kernel.fatal = exc  # type: ignore[attr-defined]
            status = sig.SIGKILL
        finally:
            self._exit(status)

    def _died_on_host(self, exc: stubs.StubDied) -> int:
        if self.killed:
            return self.tg.exit_status or sig.SIGKILL
        status = exc.status
        if os.WIFSIGNALED(status):
            # e.g. the stub's own filter killed it for a forbidden syscall from
            # the stub's instruction: the process dies of that signal.
            log.debug("task %d: stub killed by host signal %d", self.tid, os.WTERMSIG(status))
            return signal_status(os.WTERMSIG(status))
        return signal_status(sig.SIGKILL)

    def _exit(self, status: int | None) -> None:
        kernel = self.kernel
        tg = self.tg
        futex.robust_cleanup(self)
        if status is None or self.dethreaded:
            # This thread alone ends (exit(2) with siblings left, or de_thread).
            futex.clear_child_tid(self)
            with kernel.lock:
                tg.stime_ns += self.cpu.stop()
                self.exited = True
            kernel.task_exited(self)
            return
        with kernel.lock:
            if not tg.exiting:
                tg.exiting = True
                tg.exit_status = status
            tg.stime_ns += self.cpu.stop()
            self.exited = True
            others = tg.live_tasks()
        for t in others:
            t.kill()
        if not others:
            if tg.proc is not None:
                tg.proc.kill()
                tg.proc.release()
                tg.utime_ns += tg.proc.cpu_ns()  # final, before the group becomes a zombie
                tg.maxrss_kb = max(tg.maxrss_kb, tg.proc.maxrss_kb)
            # A snapshot (one C call under the GIL): other tasks fork and
            # exit meanwhile, and iterating the dict itself raised "changed
            # size during iteration" (1,000 processes exiting at once).
            groups = list(kernel.thread_groups.values())
            if not any(g.fds is tg.fds and g is not tg and not g.zombie  # CLONE_FILES
                       for g in groups):
                tg.fds.close_all()
            LOCKS.release_all(tg.tgid)
            if not any(g.mm is tg.mm and g is not tg and not g.zombie for g in groups):
                tg.mm.release()
                tg.mm.commit_frees()
        kernel.task_exited(self)

    def _others_alive(self) -> bool:
        with self.kernel.lock:
            return any(t is not self for t in self.tg.live_tasks())

    def boot(self, regs: list[int], fs_base: int) -> int:
        """Answer a new stub thread's first trap with the task's registers, and
        its FPU state: a clone's creator's (``boot_fp``), else a new image's."""
        th = self.thread
        if self.boot_waited:
            self.boot_waited = False
        else:
            th.wait_event()
        platform = th.proc.platform
        if platform.fresh_fp is None:
            platform.fresh_fp = stubs.init_fp_state(th.save_fp())
        fp = self.boot_fp
        th.restore_fp(fp if fp is not None else platform.fresh_fp)
        self.boot_fp = None
        th.set_regs(regs)
        if fs_base:
            self.set_fs_base(fs_base)
        ops = self.boot_ops
        if ops:  # a child maps its address space (a CLONE_VM one: its parent's)
            self.boot_ops = None
            # A fork child's go with its first reply (the stub's ops area holds
            # one batch): its address space is its own, so nothing else queues
            # ops meanwhile. A CLONE_VM child shares its parent's, which may.
            if not self.boot_private or self.mm.pending or not th.queue_ops(ops):
                th.apply_ops(ops)
        self._flush_mm()
        return self._resume()

    def _queue_mm_ops(self) -> bool:
        """A process with one thread sends its address-space changes with the
        syscall's reply (StubThread.queue_ops): one hand-off fewer for every
        brk, mmap, munmap and mprotect. Frees wait until the next event, when
        the stub has applied the ops. With other threads, ``_flush_mm``: they
        rely on the changes being applied once the queue is seen empty."""
        if len(self.tg.tasks) != 1:
            return False
        mm = self.mm
        with mm.lock:
            if not self.thread.queue_ops(mm.pending):
                return False
            mm.pending.clear()
        self._frees_after_event = True
        return True

    def _flush_mm(self) -> None:
        """Apply queued address-space changes through this thread's stub.

        Threads share the address space and its queue: the lock is held while
        the stub applies, so a thread that finds the queue empty knows another
        thread has already applied its changes, not merely taken them.
        """
        mm = self.mm
        with mm.lock:
            pending = mm.pending
            if pending:
                self.thread.apply_ops(pending)
                pending.clear()
                mm.commit_frees()

    def _run(self, regs: list[int], fs_base: int) -> int | None:
        event = self.boot(regs, fs_base)
        kernel = self.kernel
        dispatch = kernel.dispatch
        strace = kernel.strace
        while True:
            th = self.thread
            if self.killed:
                raise TaskKilled()
            if event != EVENT_SYSCALL:
                self._regs = th.get_regs()
                if event == EVENT_FAULT:
                    self._fault(th)
                full = list(self._regs)
            else:
                self._regs = None
                r8, r9, r10, rdi, rsi, rdx, nr = th.syscall_regs()
                if patch.ENABLED and self.ptrace is None:
                    patch.on_trap(self, th, nr)  # next time: no signal (systrap/patch.py)
                args = (rdi, rsi, rdx, r10, r8, r9)
                handler = dispatch[nr] if nr < NR_SYSCALLS else None
                call = self._strace_call(nr, args) if strace else ""
                self.new_regs = None
                if self.ptrace is not None:
                    nr, args, handler = ptrace.syscall_enter(self, nr, args, handler)
                if self.seccomp is not None:  # the application's own filter, after
                    handler = seccomp.gate(self, nr, args, handler)  # the tracer's view
                if handler is None:
                    kernel.report_unsupported(nr)
                    ret = -errno.ENOSYS
                else:
                    try:
                        ret = handler(self, args)
                    except SyscallError as exc:
                        ret = -exc.errno
                    except TaskExit as exc:
                        if strace:
                            kernel.emit_strace(f"[pid {self.tid}] {call} = ?")
                        if not exc.group and self._others_alive():
                            self.thread.exit_thread()
                            return None
                        return exc.wait_status
                    except ParkedDone as exc:  # another thread finished it; the app ran
                        self.in_app = False
                        event = exc.event
                        continue
                    except ExecSwitch as exc:
                        if strace:
                            kernel.emit_strace(f"[pid {self.tid}] {call} = 0")
                        if self.ptrace is not None:
                            ptrace.exec_switched(self)
                        event = self._switch_image(exc)
                        continue
                    except (TaskKilled, stubs.StubDied, stubs.StubError):
                        raise
                    except Exception as exc:  # a Sentry bug: an errno, not a dead sandbox
                        ret = contain.contain(kernel.syscall_name(nr), self.tid, exc)
                if strace:
                    self._strace_result(call, nr, ret)
                if self.ptrace is not None:
                    ret = ptrace.syscall_exit(self, nr, ret)
                tg = self.tg
                if (self.new_regs is None and not (self.pending.mask | tg.pending.mask)
                        and -ret not in RESTART_CODES):
                    # The fast path: nothing but RAX changes.  A restart code
                    # never takes it, even when the signal that interrupted the
                    # wait is gone (a sibling thread took a group signal): it is
                    # resolved below, never handed to the application.
                    if tg.mm.pending and not self._queue_mm_ops():
                        self._flush_mm()
                    event = self._resume(ret)
                    if self._frees_after_event:  # the stub applied the queued ops
                        self._frees_after_event = False
                        self.mm.commit_frees()
                    continue
                full = self.new_regs if self.new_regs is not None else list(self.regs)
                if self.new_regs is None or ret != full[RAX]:
                    full[RAX] = ret & U64
                if -ret in RESTART_CODES:
                    full = self._deliver_restart(full, nr, -ret)
                    self._finish(full)
                    event = self._resume()
                    continue
            full = self.deliver_signals(full)
            self._finish(full)
            event = self._resume()

    def _resume(self, rax: int | None = None) -> int:
        """Let the application run until its next event: with ``rax``, the fast
        syscall return (only RAX changes); without, the registers in the slot.
        Every return to the app passes here, so a frozen kernel holds it here:
        ``in_app`` is set before ``frozen`` is read (Kernel.freeze: the reverse),
        so either this sees the freeze or the freezer's kick brings it back."""
        if self.ptrace is not None:
            rax = ptrace.before_resume(self, rax)
        self.in_app = True
        if self.kernel.holding and self.kernel.holds(self):
            self.in_app = False
            self.held_rax = rax  # what a checkpoint saves: the slot's registers, this RAX
            self.held = True
            try:
                self._hold_while(lambda: self.kernel.holds(self))
            finally:
                self.held = False
            self.in_app = True
        if self.signal_pending():
            self.thread.kick()  # a signal that raced with our last delivery check
        cpu = self.cpu
        cpu.app_since = start = monotonic_ns()
        try:
            if rax is None:
                return self.thread.reply_and_wait()
            return self.thread.syscall_return(rax)
        finally:
            self.in_app = False
            cpu.app_since = 0
            cpu.app_ns += monotonic_ns() - start

    def _finish(self, full: list[int]) -> None:
        if self.mm.pending:
            self._flush_mm()
        self.thread.set_regs(full)

    def _switch_image(self, exc: ExecSwitch) -> int:
        if exc.proc is None:
            return self._reuse_stub(exc)
        old = self.tg.proc
        self.tg.proc = exc.proc
        self.thread = exc.proc.thread(0)
        if old is not None:
            old.kill()
            old.release()
            self.tg.utime_ns += old.cpu_ns()
            self.tg.maxrss_kb = max(self.tg.maxrss_kb, old.maxrss_kb)  # kept across exec
        _release_old_mm(exc)
        return self.boot(initial_regs(exc.entry, exc.stack_pointer), 0)

    def _reuse_stub(self, exc: ExecSwitch) -> int:
        """Start the new image in this task's own stub process: everything of the
        old image unmapped first (one batch with the new image's maps), the FPU
        state of a fresh stub, FS base 0."""
        th = self.thread
        mm = self.mm
        with mm.lock:
            mm.pending.insert(0, StubOp(stubs.lib.OP_UNMAP, APP_START, APP_END - APP_START, 0, 0))
        fresh_fp = th.proc.platform.fresh_fp
        if fresh_fp:
            th.restore_fp(fresh_fp)
        self.set_fs_base(0)
        self._finish(initial_regs(exc.entry, exc.stack_pointer))  # applies the batch
        _release_old_mm(exc)  # its pages are no longer mapped anywhere
        return self._resume()

    # -- strace ----------------------------------------------------------
    def _strace_call(self, nr: int, args: tuple[int, ...]) -> str:
        from syscalls import strace  # the formatter lives with the syscalls it knows

        try:
            return strace.format_call(nr, args, self.mm)
        except Exception as exc:  # a formatting slip must not kill the sandbox
            return f"{self.kernel.syscall_name(nr)}(<unprintable: {exc!r}>)"

    def _strace_result(self, call: str, nr: int, ret: int) -> None:
        from syscalls import strace

        res = strace.format_result(nr, ret if ret < 0 else ret & U64)
        self.kernel.emit_strace(f"[pid {self.tid}] {call}{res}")
