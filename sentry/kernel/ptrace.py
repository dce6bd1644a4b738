"""ptrace inside the sandbox: tracer/tracee state and the ptrace-stops.

Everything here is the Sentry's own: a tracee's "stop" is its Sentry thread
holding (its stub waits in its signal handler, as for a group stop), and the
tracer reads and writes the registers the Sentry holds for it and the
tracee's memory through the Sentry's mapping.  No host ptrace is ever used,
so host processes stay out of reach: a tracer can only name tasks of this
sandbox's kernel.

The stops Linux reports through wait (ptrace(2), "Stopped states"):

- signal-delivery-stop: a signal about to be delivered (``signal_stop``);
  the tracer's restart signal replaces it (0 suppresses it);
- syscall-enter-stop / syscall-exit-stop (``syscall_enter`` / ``syscall_exit``)
  after PTRACE_SYSCALL; the syscall number (orig_rax), arguments and return
  value (rax) may be changed there, orig_rax = -1 skips the call;
- PTRACE_EVENT stops: fork/vfork/clone (the new child is traced from its
  first instruction), exec (or a plain SIGTRAP after execve without
  PTRACE_O_TRACEEXEC), exit, and PTRACE_EVENT_STOP (seized tracees:
  auto-attached children, PTRACE_INTERRUPT, group stops);
- group-stop: a stop signal's default action, reported to the tracer.

A status is ``0x7f | sig << 8 | event << 16`` (sig | 0x80 for a syscall stop
with PTRACE_O_TRACESYSGOOD), as Linux reports it.

What a tracer's wait sees is in ptrace_wait.py.

Hooks: task.py calls ``syscall_enter``/``syscall_exit`` around a dispatch,
``signal_stop`` for each signal it is about to act on, ``exec_switched``
after an execve and ``before_resume`` before every return to application
code; fork.py calls ``on_clone``; syscalls/process.py's wait asks
ptrace_wait.py.  All of them cost one attribute test for an untraced task.

Lock order: ``Kernel.lock`` guards every TraceState and tracee list.
"""

from __future__ import annotations

import errno
import logging
from typing import TYPE_CHECKING, Any

from sentry.kernel import signals as sig
from sentry.kernel.creds import CAP_SYS_PTRACE
from sentry.kernel.errors import SyscallError
from sentry.kernel.signals import SigInfo
from sentry.systrap.stubs import EFL, R8, R9, R10, RAX, RDI, RDX, RSI
from shm.records import field, record

if TYPE_CHECKING:
    from sentry.kernel.task import Task
    from sentry.kernel.threadgroup import ThreadGroup

log = logging.getLogger("pyvisor")

U64 = (1 << 64) - 1
SIGTRAP = 5
TRAP_BRKPT = 1
EFLAGS_TF = 0x100

# PTRACE_O_* and PTRACE_EVENT_*
O_TRACESYSGOOD = 0x01
O_TRACEFORK = 0x02
O_TRACEVFORK = 0x04
O_TRACECLONE = 0x08
O_TRACEEXEC = 0x10
O_TRACEVFORKDONE = 0x20
O_TRACEEXIT = 0x40
O_TRACESECCOMP = 0x80
O_EXITKILL = 1 << 20
O_SUSPEND_SECCOMP = 1 << 21
O_MASK = 0xFF | O_EXITKILL | O_SUSPEND_SECCOMP
EVENT_FORK, EVENT_VFORK, EVENT_CLONE, EVENT_EXEC = 1, 2, 3, 4
EVENT_VFORK_DONE, EVENT_EXIT, EVENT_STOP = 5, 6, 128

# How the tracer last resumed the tracee.
CONT, SYSCALL, SINGLESTEP, LISTEN = "cont", "syscall", "step", "listen"

# What the current stop is (PTRACE_GET_SYSCALL_INFO's op follows from it).
STOP_SIGNAL, STOP_ENTER, STOP_EXIT, STOP_EVENT, STOP_GROUP = range(5)

CLONE_VFORK = 0x4000
CLONE_PTRACE = 0x2000
CLONE_UNTRACED = 0x00800000
CLONE_THREAD = 0x10000
CSIGNAL = 0xFF
SIGCHLD = 17
CLD_TRAPPED = 4
EXIT_NRS = (60, 231)


@record(eq=False)
class TraceState:
    """A tracee's side of ptrace: who traces it and where it is stopped."""

    tracer: ThreadGroup
    seized: bool = False
    options: int = 0
    mode: str = CONT
    stopped: bool = False
    kind: int = STOP_SIGNAL
    status: int = 0  # the wait status of the current stop
    reported: bool = True  # the tracer's wait has seen it
    siginfo: SigInfo | None = None
    regs: list[int] | None = None  # the registers the tracer sees at a stop
    orig_rax: int = U64  # -1 outside syscall stops
    resume_sig: int = 0
    eventmsg: int = 0
    in_syscall: bool = False  # a syscall-exit-stop is owed
    syscall: tuple[int, tuple[int, ...]] = (0, ())  # the call of the last enter stop
    pending_event: tuple[int, int] | None = None  # (event, message) after this syscall
    initial_stop: bool = False  # an auto-attached child stops before its first instruction
    trap_stop: bool = False  # PTRACE_INTERRUPT, or a seize of a stopped task
    after_exec: bool = False  # the exec stops are owed before the new image runs
    tf_set: bool = False  # we set TF for PTRACE_SINGLESTEP
    exit_reported: bool = False
    fp: bytes | None = None  # FPU state a tracer set at this stop (loaded at resume)
    debugreg: list[int] = field(default_factory=lambda: [0] * 8)


def tracer_alive(ts: TraceState) -> bool:
    return not (ts.tracer.exiting or ts.tracer.zombie)


def attach(task: Task, tracer: ThreadGroup, seized: bool, options: int = 0) -> TraceState:
    """Make ``tracer`` trace ``task`` (kernel lock held by the caller)."""
    ts = TraceState(tracer=tracer, seized=seized, options=options)
    task.ptrace = ts
    tracer.tracees.append(task)
    return ts


def detach(task: Task, signo: int = 0) -> None:
    """End tracing (kernel lock held): the task runs on, with ``signo`` if given."""
    ts = task.ptrace
    if ts is None:
        return
    task.ptrace = None
    if task in ts.tracer.tracees:
        ts.tracer.tracees.remove(task)
    _restore_tf(task, ts)
    ts.resume_sig = signo
    ts.mode = CONT
    ts.stopped = False
    task.wake()


def _restore_tf(task: Task, ts: TraceState) -> None:
    if ts.tf_set and ts.regs is not None:
        ts.regs[EFL] &= ~EFLAGS_TF
        ts.tf_set = False


# -- stopping -----------------------------------------------------------------

def _stop(task: Task, kind: int, status: int, info: SigInfo | None,
          regs: list[int], orig_rax: int = U64) -> TraceState | None:
    """Enter a ptrace-stop and hold until the tracer resumes the task.

    ``regs`` is the register list the tracer reads and writes (changed in
    place).  Returns the state (None when tracing ended meanwhile, or the
    tracer is gone); raises TaskKilled when the task is killed while stopped.
    """
    kernel = task.kernel
    with kernel.lock:
        ts = task.ptrace
        if ts is None:
            return None
        if not tracer_alive(ts):
            _tracer_gone(task, ts)
            return None
        ts.kind = kind
        ts.status = status
        ts.siginfo = info
        ts.regs = regs
        ts.orig_rax = orig_rax
        ts.resume_sig = 0
        ts.fp = None
        ts.stopped = True
        ts.reported = False
        kernel.child_exit.notify_all()
    kernel.send_group(ts.tracer, SigInfo(SIGCHLD, code=CLD_TRAPPED, pid=task.tid,
                                         uid=task.creds.uid, status=(status >> 8) & 0x7F))
    try:
        task._hold_while(lambda: ts.stopped and task.ptrace is ts and tracer_alive(ts))
    finally:
        with kernel.lock:
            ts.stopped = False
            ts.regs = None
    with kernel.lock:
        if task.ptrace is ts and not tracer_alive(ts):
            _tracer_gone(task, ts)
    return ts


def _tracer_gone(task: Task, ts: TraceState) -> None:
    """The tracer exited: the tracee is detached, or killed with PTRACE_O_EXITKILL."""
    if ts.options & O_EXITKILL:
        task.kernel._kill_group(task.tg, sig.SIGKILL)
    detach(task)


def tracer_exited(tracer: ThreadGroup) -> None:
    """The tracer's process is gone (kernel lock held): each tracee is
    detached and runs on, or dies with PTRACE_O_EXITKILL."""
    for task in list(tracer.tracees):
        ts = task.ptrace
        if ts is not None and ts.tracer is tracer and not task.exited:
            _tracer_gone(task, ts)
    tracer.tracees.clear()


def _trap_status(ts: TraceState, signo: int = SIGTRAP, event: int = 0) -> int:
    return 0x7F | signo << 8 | event << 16


def _event_stop(task: Task, event: int, msg: int, regs: list[int],
                orig_rax: int = U64) -> TraceState | None:
    ts = task.ptrace
    if ts is None:
        return None
    ts.eventmsg = msg & U64
    info = SigInfo(SIGTRAP, code=SIGTRAP | event << 8)
    return _stop(task, STOP_EVENT, _trap_status(ts, SIGTRAP, event), info, regs, orig_rax)


def _syscall_status(ts: TraceState) -> int:
    signo = SIGTRAP | (0x80 if ts.options & O_TRACESYSGOOD else 0)
    return 0x7F | signo << 8


def _signed(v: int) -> int:
    v &= U64
    return v - (1 << 64) if v >> 63 else v


def syscall_enter(task: Task, nr: int, args: tuple[int, ...], handler: Any
                  ) -> tuple[int, tuple[int, ...], Any]:
    """The syscall-enter-stop (after PTRACE_SYSCALL): the tracer may change
    the number (orig_rax; -1 skips the call, rax is then its result) and the
    arguments.  Returns what to dispatch."""
    ts = task.ptrace
    if ts is None:
        return nr, args, handler
    if ts.mode == SYSCALL:
        regs = list(task.regs)
        regs[RAX] = (-errno.ENOSYS) & U64
        ts.syscall = (nr, args)
        ts.eventmsg = 1  # PTRACE_EVENTMSG_SYSCALL_ENTRY, as Linux leaves it
        info = SigInfo(SIGTRAP, code=SIGTRAP | 0x80)
        got = _stop(task, STOP_ENTER, _syscall_status(ts), info, regs, nr)
        if got is not None:
            got.in_syscall = got.mode == SYSCALL
            new_nr = got.orig_rax & U64
            if got.resume_sig:
                task.kernel.send_task(task, SigInfo(got.resume_sig, code=sig.SI_USER))
            slot = list(regs)
            slot[RAX] = new_nr
            if tuple(slot) != tuple(task.regs):
                task.regs = tuple(slot)
                task.thread.set_regs(slot)
                task.new_regs = list(slot)
            args = (regs[RDI], regs[RSI], regs[RDX], regs[R10], regs[R8], regs[R9])
            if new_nr >> 63:  # -1: skip the call; rax as the tracer left it
                rax = _signed(regs[RAX])
                return nr, args, lambda _t, _a: rax
            if new_nr != nr:
                nr = new_nr
                dispatch = task.kernel.dispatch
                handler = dispatch[nr] if nr < len(dispatch) else None
    ts = task.ptrace
    if ts is not None and nr in EXIT_NRS and ts.options & O_TRACEEXIT:
        _event_stop(task, EVENT_EXIT, (args[0] & 0xFF) << 8, list(task.regs), nr)
    return nr, args, handler


def syscall_exit(task: Task, nr: int, ret: int) -> int:
    """Owed event stops (fork/vfork/clone), then the syscall-exit-stop; the
    tracer may change the return value (rax) and any register."""
    ts = task.ptrace
    if ts is None:
        return ret
    regs = list(task.new_regs if task.new_regs is not None else task.regs)
    regs[RAX] = ret & U64
    before = tuple(regs)
    if ts.pending_event is not None:
        event, msg = ts.pending_event
        ts.pending_event = None
        _event_stop(task, event, msg, regs, nr)
    ts = task.ptrace
    if ts is not None and ts.in_syscall:
        ts.in_syscall = False
        if ts.mode == SYSCALL:
            _syscall_exit_stop(task, ts, regs, nr)
    if ts is not None and ts.mode == SINGLESTEP:
        # A stepped syscall instruction: the step ends right after it (Linux's
        # user_single_step_report), not one instruction later.
        task.kernel.send_task(task, SigInfo(SIGTRAP, code=TRAP_BRKPT))
    if tuple(regs) != before:
        task.new_regs = regs
        return _signed(regs[RAX])
    return ret


def _syscall_exit_stop(task: Task, ts: TraceState, regs: list[int], nr: int) -> None:
    ts.syscall = (nr, ts.syscall[1])
    ts.eventmsg = 2  # PTRACE_EVENTMSG_SYSCALL_EXIT
    info = SigInfo(SIGTRAP, code=SIGTRAP | 0x80)
    got = _stop(task, STOP_EXIT, _syscall_status(ts), info, regs, nr)
    if got is not None and got.resume_sig:
        task.kernel.send_task(task, SigInfo(got.resume_sig, code=sig.SI_USER))


def exec_switched(task: Task) -> None:
    """After a successful execve: PTRACE_EVENT_EXEC (or a SIGTRAP) and the
    owed syscall-exit-stop, before the new image's first instruction."""
    ts = task.ptrace
    if ts is not None:
        ts.after_exec = True


def before_resume(task: Task, rax: int | None) -> int | None:
    """Owed stops that happen with the registers already in the slot (after
    exec, an auto-attached child's first stop, PTRACE_INTERRUPT), and the
    trap flag for PTRACE_SINGLESTEP.  Returns the ``rax`` to resume with
    (None once the slot holds every register)."""
    ts = task.ptrace
    if ts is None:
        return rax
    th = task.thread
    if ts.after_exec or ts.initial_stop or ts.trap_stop:
        th.apply_queued()  # a fork child's memory is mapped before its tracer looks
        regs = list(th.get_regs())
        if rax is not None:
            regs[RAX] = rax & U64
            rax = None
        _owed_stops(task, ts, regs)
        th.set_regs(regs)
        task._flush_mm()  # pokes into text made private copies
        ts = task.ptrace
        if ts is None:
            return None
    efl = th.get_regs()[EFL]
    if ts.mode == SINGLESTEP:
        if not efl & EFLAGS_TF:
            th.set_reg(EFL, efl | EFLAGS_TF)
            ts.tf_set = True
    elif ts.tf_set:
        th.set_reg(EFL, efl & ~EFLAGS_TF)
        ts.tf_set = False
    return rax


def _owed_stops(task: Task, ts: TraceState, regs: list[int]) -> None:
    if ts.after_exec:
        ts.after_exec = False
        if ts.options & O_TRACEEXEC:
            _event_stop(task, EVENT_EXEC, task.tg.tgid, regs)
        elif not ts.seized:
            task.kernel.send_task(task, SigInfo(SIGTRAP, code=sig.SI_USER))
        ts = task.ptrace
        if ts is not None and ts.in_syscall:
            ts.in_syscall = False
            if ts.mode == SYSCALL:
                regs[RAX] = 0
                _syscall_exit_stop(task, ts, regs, 59)
    ts = task.ptrace
    if ts is not None and ts.initial_stop:
        ts.initial_stop = False
        if ts.seized:
            _event_stop(task, EVENT_STOP, 0, regs)
        else:
            _signal_delivery(task, SigInfo(sig.SIGSTOP, code=sig.SI_USER), regs)
    ts = task.ptrace
    if ts is not None and ts.trap_stop:
        ts.trap_stop = False
        _event_stop(task, EVENT_STOP, 0, regs)


def _signal_delivery(task: Task, info: SigInfo, regs: list[int]) -> SigInfo | None:
    """A signal-delivery-stop; returns the signal to deliver instead (None: none)."""
    ts = task.ptrace
    if ts is None:  # detached meanwhile: the signal goes on as it is
        return info
    if ts.tf_set and info.signo == SIGTRAP:
        regs[EFL] &= ~EFLAGS_TF
        ts.tf_set = False
    got = _stop(task, STOP_SIGNAL, 0x7F | info.signo << 8, info, regs)
    if got is None:
        return info
    signo = got.resume_sig
    if not signo:
        return None
    base = got.siginfo if got.siginfo is not None else info
    if base.signo != signo:
        return SigInfo(signo, code=sig.SI_USER)
    return base


def signal_stop(task: Task, info: SigInfo, regs: list[int]) -> SigInfo | None:
    """Called for each signal the task is about to act on: SIGKILL goes on;
    any other signal is first shown to the tracer.  A stop signal the tracer
    lets through stops the process as a group-stop the tracer hears of.
    Returns the signal to act on (None: nothing)."""
    if info.signo == sig.SIGKILL or task.ptrace is None:
        return info
    out = _signal_delivery(task, info, regs)
    if out is None or task.ptrace is None:
        return out
    act = task.tg.action(out.signo)
    if act.handler == sig.SIG_DFL and sig.default_action(out.signo) == sig.STOP:
        _group_stop(task, out.signo, regs)
        return None
    return out


def _group_stop(task: Task, signo: int, regs: list[int]) -> None:
    """A traced task's group-stop: the parent hears of the stop as usual; the
    tracer sees it as a stop of its own and restarts the task (PTRACE_LISTEN
    keeps it stopped until SIGCONT)."""
    kernel = task.kernel
    kernel.stop_group(task.tg, signo)
    ts = task.ptrace
    if ts is None:
        return
    event = EVENT_STOP if ts.seized else 0
    got = _stop(task, STOP_GROUP, 0x7F | signo << 8 | event << 16,
                SigInfo(signo, code=sig.SI_USER), regs)
    if got is not None and got.mode == LISTEN:
        task._hold_while(lambda: task.tg.stopped)
        got.mode = CONT
        if task.ptrace is got:  # continued: the listener hears of it first
            _event_stop(task, EVENT_STOP, 0, regs)


def attached_while_stopped(task: Task, signo: int, regs: list[int]) -> bool:
    """PTRACE_ATTACH of a task in a group stop: it enters a ptrace group-stop
    at once (Linux's JOBCTL_TRAP_STOP), which the attach waits for.  True
    when the tracer resumed it (it runs), False when it was detached."""
    ts = task.ptrace
    if ts is None:
        return False
    event = EVENT_STOP if ts.seized else 0
    got = _stop(task, STOP_GROUP, 0x7F | signo << 8 | event << 16,
                SigInfo(signo, code=sig.SI_USER), regs)
    return got is not None and task.ptrace is got


def on_clone(parent: Task, child: Task, flags: int) -> None:
    """A new task of a traced parent: traced from its first instruction when
    the matching PTRACE_O_TRACE* option (or CLONE_PTRACE) asks; the parent
    owes PTRACE_EVENT_FORK/VFORK/CLONE after the call."""
    ts = parent.ptrace
    if ts is None or flags & CLONE_UNTRACED:
        return
    if flags & CLONE_VFORK:
        event, opt = EVENT_VFORK, O_TRACEVFORK
    elif flags & CSIGNAL == SIGCHLD and not flags & CLONE_THREAD:
        event, opt = EVENT_FORK, O_TRACEFORK
    else:
        event, opt = EVENT_CLONE, O_TRACECLONE
    if not ts.options & opt and not flags & CLONE_PTRACE:
        return
    with parent.kernel.lock:
        if not tracer_alive(ts):
            return
        cts = attach(child, ts.tracer, ts.seized, ts.options)
        cts.initial_stop = True
        cts.mode = CONT
        if ts.options & opt:
            ts.pending_event = (event, child.tid)


def vfork_waiting(parent: Task) -> None:
    """A vfork parent's PTRACE_EVENT_VFORK, before it waits for the child:
    a tracer may wait for it before it lets the child run on (gdb does)."""
    ts = parent.ptrace
    if ts is None or ts.pending_event is None:
        return
    event, msg = ts.pending_event
    ts.pending_event = None
    regs = list(parent.regs)
    regs[RAX] = msg & U64
    _event_stop(parent, event, msg, regs, parent.regs[RAX])


def vfork_done(parent: Task, child_tid: int) -> None:
    """PTRACE_O_TRACEVFORKDONE: the event after the child released the parent."""
    ts = parent.ptrace
    if ts is not None and ts.options & O_TRACEVFORKDONE:
        ts.pending_event = (EVENT_VFORK_DONE, child_tid)


def may_access(caller: Task, target: Task) -> bool:
    """Linux's __ptrace_may_access for PTRACE_MODE_ATTACH: the same real,
    effective and saved ids (uid and gid), or CAP_SYS_PTRACE; a process that
    is not dumpable needs CAP_SYS_PTRACE too.  Its own tracer may always."""
    ts = target.ptrace
    if ts is not None and ts.tracer is caller.tg:
        return True
    c, tc = caller.creds, target.creds
    if c.capable(CAP_SYS_PTRACE):
        return True
    same = (c.uid == tc.uid == tc.euid == tc.suid) and (c.gid == tc.gid == tc.egid == tc.sgid)
    return same and target.tg.prctl.get("dumpable", 1) == 1


def tracer_pid(task: Task) -> int:
    """/proc/PID/status's TracerPid."""
    ts = task.ptrace
    return ts.tracer.tgid if ts is not None else 0


def traced_stopped(task: Task | None) -> bool:
    """Whether /proc shows the task in "t (tracing stop)"."""
    ts = task.ptrace if task is not None else None
    return ts is not None and ts.stopped


def stopped_tracee(caller: Task, pid: int) -> tuple[Task, TraceState]:
    """The task ``pid`` that ``caller``'s process traces and that is in a
    ptrace-stop; ESRCH otherwise, as Linux's ptrace_check_attach."""
    kernel = caller.kernel
    with kernel.lock:
        t = kernel.tasks.get(pid)
        ts = t.ptrace if t is not None else None
        if t is None or ts is None or ts.tracer is not caller.tg or not ts.stopped:
            raise SyscallError(errno.ESRCH)
        return t, ts


def resume(task: Task, ts: TraceState, mode: str, signo: int) -> None:
    """PTRACE_CONT / SYSCALL / SINGLESTEP / LISTEN: end the stop."""
    if not 0 <= signo <= sig.NSIG:
        raise SyscallError(errno.EIO)
    with task.kernel.lock:
        ts.mode = mode
        ts.resume_sig = signo
        if mode != SINGLESTEP:
            _restore_tf(task, ts)
        ts.stopped = False
    task.wake()
