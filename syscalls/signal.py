"""Signal syscalls: dispositions, masks, sending, waiting, and rt_sigreturn.

Delivery itself (frames, default actions) is the kernel's
(sentry/kernel/task_signals.py, sentry/kernel/signals.py); these handlers only
change state and queue signals.
"""

from __future__ import annotations

import errno
import time as _time
from typing import TYPE_CHECKING

from sentry.kernel import pidns, rlimits
from sentry.kernel import signals as sig
from sentry.kernel.creds import CAP_KILL
from sentry.kernel.errors import SyscallError
from sentry.kernel.signals import SigAction, SigInfo
from sentry.kernel.task_exits import ERESTARTNOHAND
from shm import records
from syscalls.abi import STACK_T, TIMESPEC, U64S, s32
from syscalls.table import Entry, supported

if TYPE_CHECKING:
    from sentry.kernel.task import Task
    from sentry.kernel.threadgroup import ThreadGroup

Args = tuple[int, ...]

SIGSET_SIZE = 8
SIG_BLOCK, SIG_UNBLOCK, SIG_SETMASK = 0, 1, 2
MINSIGSTKSZ = 2048


def _signo(v: int, allow_zero: bool = False) -> int:
    s = s32(v)
    if not (0 if allow_zero else 1) <= s <= sig.NSIG:
        raise SyscallError(errno.EINVAL)
    return s


def rt_sigaction(t: Task, a: Args) -> int:
    """rt_sigaction(2)."""
    signo, act, oact, size = _signo(a[0]), a[1], a[2], a[3]
    if size != SIGSET_SIZE:
        raise SyscallError(errno.EINVAL)
    new = SigAction.unpack(t.mm.copy_in(act, sig.SIGACTION.size)) if act else None
    if new is not None and signo in (sig.SIGKILL, sig.SIGSTOP):
        raise SyscallError(errno.EINVAL)
    with t.kernel.lock:
        old = t.tg.action(signo)
        if oact:
            t.mm.copy_out(oact, old.pack())
        if new is not None:
            t.tg.sigactions[signo] = new
            ignored = new.handler == sig.SIG_IGN or (
                new.handler == sig.SIG_DFL and sig.default_action(signo) == sig.IGNORE)
            if ignored:  # setting "ignore" discards what is pending (POSIX)
                t.tg.pending.discard(signo)
                for other in t.tg.tasks:
                    other.pending.discard(signo)
    return 0


def rt_sigprocmask(t: Task, a: Args) -> int:
    """rt_sigprocmask(2)."""
    how, nset, oset, size = s32(a[0]), a[1], a[2], a[3]
    if size != SIGSET_SIZE:
        raise SyscallError(errno.EINVAL)
    old = t.sigmask
    if nset:
        (mask,) = U64S.unpack(t.mm.copy_in(nset, 8))
        if how == SIG_BLOCK:
            new = old | mask
        elif how == SIG_UNBLOCK:
            new = old & ~mask
        elif how == SIG_SETMASK:
            new = mask
        else:
            raise SyscallError(errno.EINVAL)
        t.sigmask = new & ~sig.UNBLOCKABLE
    if oset:
        t.mm.copy_out(oset, U64S.pack(old))
    return 0


def rt_sigreturn(t: Task, a: Args) -> int:
    """rt_sigreturn(2): restore what the signal frame saved (RSP points past pretcode)."""
    uc = t.regs[15] - 8 + sig.UC_OFF
    raw = t.mm.copy_in(uc, sig.UCONTEXT_SIZE)
    regs, mask, altstack, fp_addr = sig.parse_frame(raw, list(t.regs))
    if fp_addr:
        head = t.mm.copy_in(fp_addr, sig.FXSAVE_SIZE)
        size = sig.fp_area_size(head)
        data = head if size == sig.FXSAVE_SIZE else t.mm.copy_in(fp_addr, size)
        t.thread.restore_fp(data)
    t.sigmask = mask
    sp, flags, size = altstack
    if not flags & sig.SS_ONSTACK:
        t.altstack = (sp, flags, size) if size else t.altstack
    t.new_regs = regs
    return regs[13]


def sigaltstack(t: Task, a: Args) -> int:
    """sigaltstack(2)."""
    new, old = a[0], a[1]
    sp0, flags0, size0 = t.altstack
    cur_sp = t.regs[15] if t.regs else 0
    on_stack = bool(size0) and sp0 <= cur_sp < sp0 + size0
    if old:
        flags = sig.SS_ONSTACK if on_stack else flags0
        t.mm.copy_out(old, STACK_T.pack(sp0, flags, 0, size0))
    if new:
        sp, flags, _, size = STACK_T.unpack(t.mm.copy_in(new, STACK_T.size))
        if on_stack:
            raise SyscallError(errno.EPERM)
        mode = flags & ~sig.SS_AUTODISARM
        if mode not in (0, sig.SS_DISABLE, sig.SS_ONSTACK):
            raise SyscallError(errno.EINVAL)
        if mode == sig.SS_DISABLE:
            t.altstack = (0, sig.SS_DISABLE, 0)
        else:
            if size < MINSIGSTKSZ:
                raise SyscallError(errno.ENOMEM)
            t.altstack = (sp, flags & sig.SS_AUTODISARM, size)
    return 0


def rt_sigpending(t: Task, a: Args) -> int:
    """rt_sigpending(2)."""
    if a[1] != SIGSET_SIZE:
        raise SyscallError(errno.EINVAL)
    t.mm.copy_out(a[0], U64S.pack((t.pending.mask | t.tg.pending.mask) & t.sigmask))
    return 0


def rt_sigsuspend(t: Task, a: Args) -> int:
    """rt_sigsuspend(2): wait with a temporary mask; the handler runs with the
    old mask restored afterwards (saved_sigmask)."""
    if a[1] != SIGSET_SIZE:
        raise SyscallError(errno.EINVAL)
    (mask,) = U64S.unpack(t.mm.copy_in(a[0], 8))
    t.saved_sigmask = t.sigmask
    t.sigmask = mask & ~sig.UNBLOCKABLE
    try:
        t.sleep_until(None)
    except SyscallError:
        raise SyscallError(ERESTARTNOHAND) from None
    raise SyscallError(ERESTARTNOHAND)


def pause(t: Task, a: Args) -> int:
    """pause(2)."""
    try:
        t.sleep_until(None)
    except SyscallError:
        pass
    raise SyscallError(ERESTARTNOHAND)


def rt_sigtimedwait(t: Task, a: Args) -> int:
    """rt_sigtimedwait(2): take a signal from ``set`` without running a handler."""
    if a[3] != SIGSET_SIZE:
        raise SyscallError(errno.EINVAL)
    (want,) = U64S.unpack(t.mm.copy_in(a[0], 8))
    want &= ~sig.UNBLOCKABLE
    deadline = None
    if a[2]:
        sec, nsec = TIMESPEC.unpack(t.mm.copy_in(a[2], TIMESPEC.size))
        if sec < 0 or not 0 <= nsec < 1_000_000_000:
            raise SyscallError(errno.EINVAL)
        deadline = _time.monotonic() + sec + nsec / 1e9
    blocked = ~want & ((1 << 64) - 1)
    # While it waits, the set is blocked as well (Linux's real_blocked), so a
    # signal of the set that has a handler stays pending for this call
    # instead of interrupting it.
    saved = t.sigmask
    t.sigmask = saved | want
    try:
        return _sigtimedwait_loop(t, a, blocked, deadline)
    finally:
        t.sigmask = saved


def _sigtimedwait_loop(t: Task, a: Args, blocked: int, deadline: float | None) -> int:
    while True:
        with t.kernel.lock:
            info = t.pending.take(blocked) or t.tg.pending.take(blocked)
        if info is not None:
            if a[1]:
                t.mm.copy_out(a[1], info.pack())
            return info.signo
        if deadline is not None and _time.monotonic() >= deadline:
            raise SyscallError(errno.EAGAIN)
        try:
            t.sleep_until(min(deadline, _time.monotonic() + 0.05) if deadline else
                          _time.monotonic() + 0.05)
        except SyscallError:
            # Interrupted by a signal outside the set: EINTR, never a restart
            # (Linux's do_sigtimedwait), even under SA_RESTART.
            raise SyscallError(errno.EINTR) from None


def _groups_for(t: Task, pid: int) -> list[ThreadGroup]:
    """The processes ``pid`` names for kill: a zombie still counts until it is
    reaped, as Linux's (signalling it succeeds and does nothing)."""
    k = t.kernel
    ns = pidns.viewer(t)
    with k.lock:
        if pid > 0:  # a zombie counts: Linux's kill() of one succeeds (and does nothing)
            tg = pidns.find_tg(k, ns, pid)
            if tg is None:  # any thread's id names its process (find_vpid, PIDTYPE_PID)
                task = pidns.find_task(k, ns, pid)
                tg = task.tg if task is not None and not task.exited else None
            return [tg] if tg is not None and not tg.reaped else []
        seen = pidns.visible_tgs(k, ns)
        if pid == 0:
            pgid = t.tg.pgid
            return [g for g in seen if g.pgid == pgid and not g.reaped]
        if pid == -1:  # all but the namespace's init (pid 1 there) and the caller
            return [g for g in seen
                    if pidns.vpid(ns, g) != 1 and g is not t.tg and not g.reaped] + [t.tg]
        pgid = pidns.global_pgid(ns, k, -pid)
        return [g for g in seen if g.pgid == pgid and not g.reaped]


RLIMIT_SIGPENDING = 11


def check_queue_room(t: Task, target: Task, signo: int, code: int) -> None:
    """EAGAIN when a real-time signal with caller-made siginfo (not SI_USER)
    would queue past the receiver's RLIMIT_SIGPENDING: Linux counts every
    signal queued for the receiver's real user and drops such a signal
    rather than queue it without its info (__send_signal_locked)."""
    if signo < sig.SIGRTMIN or code == sig.SI_USER:
        return
    soft = rlimits.get(target.tg, RLIMIT_SIGPENDING)[0]
    if soft >= rlimits.RLIM_INFINITY:
        return
    uid = target.creds.uid
    with t.kernel.lock:
        tasks = [x for x in t.kernel.tasks.values() if x.creds.uid == uid]
        groups = {id(x.tg): x.tg for x in tasks}.values()
        queued = sum(len(q) for x in tasks for q in x.pending.queue.values())
        queued += sum(len(q) for g in groups for q in g.pending.queue.values())
    if queued >= soft:
        raise SyscallError(errno.EAGAIN)


def may_signal(t: Task, target: Task | None, signo: int) -> bool:
    """check_kill_permission(): the same process, a real or effective uid
    matching the target's real or saved uid, CAP_KILL, or SIGCONT within the
    session."""
    if target is None or target.tg is t.tg:
        return True
    c, tc = t.creds, target.creds
    if {c.euid, c.uid} & {tc.suid, tc.uid} or c.capable(CAP_KILL):
        return True
    return signo == sig.SIGCONT and target.tg.sid == t.tg.sid


def _leader(tg: ThreadGroup) -> Task | None:
    """The task whose credentials a signal to the process is checked against."""
    live = tg.live_tasks()
    if live:
        return live[0]
    return tg.tasks[0] if tg.tasks else None  # a zombie: its last credentials


def kill(t: Task, a: Args) -> int:
    """kill(2): pid > 0, 0 (own group), -1 (all but init), < -1 (a group);
    EPERM where the caller may signal none of them (for -1, as Linux, only
    when none at all was found)."""
    pid, signo = s32(a[0]), _signo(a[1], allow_zero=True)
    groups = _groups_for(t, pid)
    if not groups:
        raise SyscallError(errno.ESRCH)
    allowed = [g for g in groups if may_signal(t, _leader(g), signo)]
    if not allowed and pid != -1:
        raise SyscallError(errno.EPERM)
    if signo:
        for g in allowed:
            send_from(t, g, SigInfo(signo, code=sig.SI_USER, pid=t.pid, uid=t.creds.uid))
    return 0


def send_from(t: Task, g: ThreadGroup, info: SigInfo) -> None:
    """Send a caller's signal to process ``g``: si_pid as ``g``'s pid
    namespace names the caller (0 from an ancestor namespace), and from
    outside ``g``'s namespace for its init's protection."""
    ns = pidns.active(g)
    info = records.replace(info, pid=pidns.vpid(ns, t.tg))
    t.kernel.send_group(g, info, external=ns is not pidns.viewer(t))


def _thread(t: Task, tgid: int, tid: int) -> Task:
    ns = pidns.viewer(t)
    with t.kernel.lock:
        target = pidns.find_task(t.kernel, ns, tid)
    if target is None or target.exited or (tgid > 0 and pidns.vpid(ns, target.tg) != tgid):
        raise SyscallError(errno.ESRCH)
    return target


def tgkill(t: Task, a: Args) -> int:
    """tgkill(2)."""
    tgid, tid, signo = s32(a[0]), s32(a[1]), _signo(a[2], allow_zero=True)
    if tgid <= 0 or tid <= 0:
        raise SyscallError(errno.EINVAL)
    target = _thread(t, tgid, tid)
    if not may_signal(t, target, signo):
        raise SyscallError(errno.EPERM)
    if signo:
        check_queue_room(t, target, signo, sig.SI_TKILL)
        t.kernel.send_task(target, SigInfo(signo, code=sig.SI_TKILL, pid=t.pid,
                                           uid=t.creds.uid))
    return 0


def tkill(t: Task, a: Args) -> int:
    """tkill(2)."""
    tid, signo = s32(a[0]), _signo(a[1], allow_zero=True)
    if tid <= 0:
        raise SyscallError(errno.EINVAL)
    target = _thread(t, 0, tid)
    if not may_signal(t, target, signo):
        raise SyscallError(errno.EPERM)
    if signo:
        check_queue_room(t, target, signo, sig.SI_TKILL)
        t.kernel.send_task(target, SigInfo(signo, code=sig.SI_TKILL, pid=t.pid,
                                           uid=t.creds.uid))
    return 0


def rt_sigqueueinfo(t: Task, a: Args) -> int:
    """rt_sigqueueinfo(2): a signal with the caller's siginfo (code must be < 0)."""
    pid, signo = s32(a[0]), _signo(a[1])
    raw = t.mm.copy_in(a[2], 128)
    code = int.from_bytes(raw[8:12], "little", signed=True)
    if (code >= 0 or code == sig.SI_TKILL) and pid != t.pid:  # no posing as the kernel
        raise SyscallError(errno.EPERM)  # or as tgkill to another process
    groups = _groups_for(t, pid) if pid > 0 else []
    if not groups:
        raise SyscallError(errno.ESRCH)
    live = groups[0].live_tasks()
    if live:
        check_queue_room(t, live[0], signo, code)
    value = int.from_bytes(raw[24:32], "little")
    t.kernel.send_group(groups[0], SigInfo(signo, code=code, pid=t.pid, uid=t.creds.uid,
                                           value=value))
    return 0


def rt_tgsigqueueinfo(t: Task, a: Args) -> int:
    """rt_tgsigqueueinfo(2): rt_sigqueueinfo to one thread of a thread group;
    only a thread signalling itself may pose as the kernel or tgkill."""
    tgid, tid, signo = s32(a[0]), s32(a[1]), _signo(a[2], allow_zero=True)
    raw = t.mm.copy_in(a[3], 128)
    if tgid <= 0 or tid <= 0:
        raise SyscallError(errno.EINVAL)
    code = int.from_bytes(raw[8:12], "little", signed=True)
    if (code >= 0 or code == sig.SI_TKILL) and tid != t.tid:
        raise SyscallError(errno.EPERM)
    target = _thread(t, tgid, tid)
    if not may_signal(t, target, signo):
        raise SyscallError(errno.EPERM)
    if signo:
        check_queue_room(t, target, signo, code)
        value = int.from_bytes(raw[24:32], "little")
        t.kernel.send_task(target, SigInfo(signo, code=code, pid=t.pid, uid=t.creds.uid,
                                           value=value))
    return 0


ENTRIES: list[Entry] = [
    supported("rt_sigaction", rt_sigaction),
    supported("rt_sigprocmask", rt_sigprocmask),
    supported("rt_sigreturn", rt_sigreturn),
    supported("sigaltstack", sigaltstack),
    supported("rt_sigpending", rt_sigpending),
    supported("rt_sigsuspend", rt_sigsuspend),
    supported("pause", pause),
    supported("rt_sigtimedwait", rt_sigtimedwait),
    supported("kill", kill),
    supported("tgkill", tgkill),
    supported("tkill", tkill),
    supported("rt_sigqueueinfo", rt_sigqueueinfo),
    supported("rt_tgsigqueueinfo", rt_tgsigqueueinfo),
]
