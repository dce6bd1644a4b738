"""Tasks: one application thread, served by one Sentry thread.

The task's Python thread blocks (GIL released) in C on its sysmsg slot, wakes
with a trapped syscall or a fault, dispatches by list index, writes the result
and resumes the stub.  Handlers are plain functions ``(task, args) -> int``.
"""

from __future__ import annotations

import errno
import logging
import os
import signal
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sentry.kernel.errors import SyscallError
from sentry.systrap import stubs
from sentry.systrap.stubs import EFL, R8, R9, R10, RAX, RDI, RDX, RIP, RSI, RSP, StubThread

if TYPE_CHECKING:
    from sentry.kernel.kernel import Kernel
    from sentry.mm.address_space import AddressSpace
    from sentry.vfs.fdtable import FdTable

log = logging.getLogger("pyvisor")

U64 = (1 << 64) - 1
NR_SYSCALLS = 512
INITIAL_EFLAGS = 0x202  # IF, and bit 1 which is always set

CORE_SIGNALS = frozenset({
    signal.SIGQUIT, signal.SIGILL, signal.SIGTRAP, signal.SIGABRT, signal.SIGBUS,
    signal.SIGFPE, signal.SIGSEGV, signal.SIGXCPU, signal.SIGXFSZ, signal.SIGSYS,
})


class TaskExit(Exception):
    """Raised by exit/exit_group handlers: the task is gone with this wait status."""

    def __init__(self, wait_status: int) -> None:
        super().__init__(wait_status)
        self.wait_status = wait_status


class SentryBug(Exception):
    """A handler failed with something other than SyscallError: a Sentry bug."""


def exit_status(code: int) -> int:
    """Wait status of a normal exit."""
    return (code & 0xFF) << 8


def signal_status(signo: int) -> int:
    """Wait status of a death by signal (core flag where Linux's default is core)."""
    return signo | (0x80 if signo in CORE_SIGNALS else 0)


@dataclass
class Credentials:
    uid: int = 0
    euid: int = 0
    suid: int = 0
    gid: int = 0
    egid: int = 0
    sgid: int = 0


@dataclass
class Task:
    """An application thread with its kernel-visible state."""

    kernel: Kernel
    mm: AddressSpace
    fds: FdTable
    thread: StubThread
    pid: int = 1
    ppid: int = 0
    creds: Credentials = field(default_factory=Credentials)
    exe: bytes = b""
    argv: list[bytes] = field(default_factory=list)
    fs_base: int = 0
    clear_child_tid: int = 0
    robust_list: tuple[int, int] = (0, 0)
    sigactions: dict[int, bytes] = field(default_factory=dict)
    sigmask: int = 0
    altstack: tuple[int, int, int] = (0, 2, 0)  # sp, flags (SS_DISABLE), size
    rlimits: dict[int, tuple[int, int]] = field(default_factory=dict)
    umask: int = 0o022
    regs: tuple[int, ...] = ()

    @property
    def tid(self) -> int:
        return self.pid

    def set_fs_base(self, base: int) -> None:
        self.fs_base = base
        self.thread.set_fs(base)

    def run(self, entry: int, stack_pointer: int) -> int:
        """Start the task at ``entry`` and serve it until it exits; the wait status."""
        th = self.thread
        th.wait_event()  # the new stub's first trap: answer it with the initial registers
        regs = [0] * stubs.NREGS
        regs[RIP] = entry
        regs[RSP] = stack_pointer
        regs[EFL] = INITIAL_EFLAGS
        th.set_regs(regs)
        try:
            self._flush_mm()
            return self._serve(th.reply_and_wait())
        except stubs.StubDied as exc:
            # Killed on the host (e.g. the stub's seccomp filter killed it for a
            # forbidden syscall from the stub's own instruction): the task dies
            # of that signal, as the process would on Linux.
            status = exc.status
            if os.WIFSIGNALED(status):
                log.debug("task %d: stub killed by host signal %d", self.pid,
                          os.WTERMSIG(status))
                return signal_status(os.WTERMSIG(status))
            return signal_status(signal.SIGKILL)

    def _flush_mm(self) -> None:
        pending = self.mm.pending
        if pending:
            self.thread.apply_ops(pending)
            pending.clear()

    def _serve(self, event: int) -> int:
        th = self.thread
        kernel = self.kernel
        dispatch = kernel.dispatch
        strace = kernel.strace
        while True:
            if event != stubs.lib.EVENT_SYSCALL:
                signo, code, addr = th.fault()
                log.debug("task %d: fault signal %d code %d addr %#x", self.pid, signo, code,
                          addr)
                return signal_status(signo)
            regs = th.get_regs()
            self.regs = regs
            nr = regs[RAX]
            args = (regs[RDI], regs[RSI], regs[RDX], regs[R10], regs[R8], regs[R9])
            handler = dispatch[nr] if nr < NR_SYSCALLS else None
            call = self._strace_call(nr, args) if strace else ""
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
                        kernel.emit_strace(f"[pid {self.pid}] {call} = ?")
                    return exc.wait_status
                except (stubs.StubDied, stubs.StubError):
                    raise
                except Exception as exc:
                    log.exception("Sentry bug in syscall %s", kernel.syscall_name(nr))
                    raise SentryBug(f"syscall {kernel.syscall_name(nr)}: {exc!r}") from exc
            if strace:
                self._strace_result(call, nr, ret)
            if self.mm.pending:
                self._flush_mm()
            th.set_reg(RAX, ret)
            event = th.reply_and_wait()

    def _strace_call(self, nr: int, args: tuple[int, ...]) -> str:
        from syscalls import strace  # the formatter lives with the syscalls it knows

        try:
            return strace.format_call(nr, args, self.mm)
        except Exception as exc:  # a formatting slip must not kill the sandbox
            return f"{self.kernel.syscall_name(nr)}(<unprintable: {exc!r}>)"

    def _strace_result(self, call: str, nr: int, ret: int) -> None:
        from syscalls import strace

        res = strace.format_result(nr, ret if ret < 0 else ret & U64)
        self.kernel.emit_strace(f"[pid {self.pid}] {call}{res}")
