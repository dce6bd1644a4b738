"""Signal syscalls.  Until signal delivery lands, dispositions and masks are
recorded and reported back faithfully; faults kill the task."""

from __future__ import annotations

import errno
import signal as _signal
from typing import TYPE_CHECKING

from sentry.kernel.errors import SyscallError
from syscalls.abi import SIGACTION, STACK_T, U64S, s32
from syscalls.table import Entry, partial

if TYPE_CHECKING:
    from sentry.kernel.task import Task

Args = tuple[int, ...]

NSIG = 64
SIGSET_SIZE = 8
UNBLOCKABLE = (1 << (_signal.SIGKILL - 1)) | (1 << (_signal.SIGSTOP - 1))
SIG_BLOCK, SIG_UNBLOCK, SIG_SETMASK = 0, 1, 2
SS_ONSTACK = 1
SS_DISABLE = 2
SS_AUTODISARM = 1 << 31
MINSIGSTKSZ = 2048


def rt_sigaction(t: Task, a: Args) -> int:
    """rt_sigaction(2): record the disposition (delivery comes with signals)."""
    sig, act, oact, size = s32(a[0]), a[1], a[2], a[3]
    if size != SIGSET_SIZE or not 1 <= sig <= NSIG:
        raise SyscallError(errno.EINVAL)
    old = t.sigactions.get(sig, bytes(SIGACTION.size))
    new = t.mm.copy_in(act, SIGACTION.size) if act else None
    if new is not None and sig in (_signal.SIGKILL, _signal.SIGSTOP):
        raise SyscallError(errno.EINVAL)
    if oact:
        t.mm.copy_out(oact, old)
    if new is not None:
        handler, flags, restorer, mask = SIGACTION.unpack(new)
        t.sigactions[sig] = SIGACTION.pack(handler, flags, restorer, mask & ~UNBLOCKABLE)
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
        t.sigmask = new & ~UNBLOCKABLE
    if oset:
        t.mm.copy_out(oset, U64S.pack(old))
    return 0


def sigaltstack(t: Task, a: Args) -> int:
    """sigaltstack(2): recorded for signal delivery."""
    new, old = a[0], a[1]
    if old:
        sp, flags, size = t.altstack
        t.mm.copy_out(old, STACK_T.pack(sp, flags, 0, size))
    if new:
        sp, flags, _, size = STACK_T.unpack(t.mm.copy_in(new, STACK_T.size))
        mode = flags & ~SS_AUTODISARM
        if mode not in (0, SS_DISABLE, SS_ONSTACK):
            raise SyscallError(errno.EINVAL)
        if mode == SS_DISABLE:
            t.altstack = (0, SS_DISABLE, 0)
        else:
            if size < MINSIGSTKSZ:
                raise SyscallError(errno.ENOMEM)
            t.altstack = (sp, flags & SS_AUTODISARM, size)
    return 0


ENTRIES: list[Entry] = [
    partial("rt_sigaction", rt_sigaction, note="recorded; delivery arrives with signals"),
    partial("rt_sigprocmask", rt_sigprocmask, note="recorded; delivery arrives with signals"),
    partial("sigaltstack", sigaltstack, note="recorded; delivery arrives with signals"),
]
