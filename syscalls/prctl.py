"""prctl(2): the per-process and per-thread knobs a program may turn.

Most are kept and reported back (names, the death signal, dumpable, the
child-subreaper flag, which sentry/kernel/threadgroup.py new_reaper uses,
no_new_privs, the timer slack, THP-disable); capabilities, securebits and
seccomp go to their own modules.  Argument checks are Linux's
(kernel/sys.c), so a program probing an option sees the same errors.
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING

from sentry.kernel import schedparams
from sentry.kernel.errors import SyscallError
from syscalls import creds as cred_calls
from syscalls import seccomp as seccomp_calls
from syscalls.abi import s32
from syscalls.table import Entry, partial

if TYPE_CHECKING:
    from sentry.kernel.task import Task

Args = tuple[int, ...]

PR_SET_PDEATHSIG = 1
PR_GET_PDEATHSIG = 2
PR_GET_DUMPABLE = 3
PR_SET_DUMPABLE = 4
PR_GET_TIMING = 13
PR_SET_TIMING = 14
PR_SET_NAME = 15
PR_GET_NAME = 16
PR_GET_TSC = 25
PR_SET_TSC = 26
PR_GET_TIMERSLACK = 30
PR_SET_TIMERSLACK = 29
PR_SET_CHILD_SUBREAPER = 36
PR_GET_CHILD_SUBREAPER = 37
PR_SET_NO_NEW_PRIVS = 38
PR_GET_NO_NEW_PRIVS = 39
PR_GET_TID_ADDRESS = 40
PR_SET_THP_DISABLE = 41
PR_GET_THP_DISABLE = 42
PR_GET_SPECULATION_CTRL = 52

PR_TIMING_STATISTICAL = 0
PR_TSC_ENABLE = 1
PR_TSC_SIGSEGV = 2
PR_SPEC_NOT_AFFECTED = 0
SPEC_CONTROLS = (0, 1, 2)  # PR_SPEC_STORE_BYPASS, _INDIRECT_BRANCH, _L1D_FLUSH


def _unused(*args: int) -> None:
    """EINVAL when an argument the option does not take is nonzero."""
    if any(args):
        raise SyscallError(errno.EINVAL)


def _u32_out(t: Task, addr: int, value: int) -> int:
    t.mm.copy_out(addr, int(value).to_bytes(4, "little"))
    return 0


def prctl(t: Task, a: Args) -> int:
    """prctl(2)."""
    option = s32(a[0])
    if option in cred_calls.PRCTL_OPTIONS:
        return cred_calls.cap_prctl(t, option, a)
    if option in (seccomp_calls.PR_GET_SECCOMP, seccomp_calls.PR_SET_SECCOMP):
        return seccomp_calls.prctl_seccomp(t, option, a)
    handler = _OPTIONS.get(option)
    if handler is None:
        raise SyscallError(errno.EINVAL)
    return handler(t, a)


def _set_name(t: Task, a: Args) -> int:
    t.tg.comm = _name_at(t, a[1])[:15]
    return 0


def _get_name(t: Task, a: Args) -> int:
    t.mm.copy_out(a[1], t.tg.comm[:15].ljust(16, b"\0"))
    return 0


def _set_pdeathsig(t: Task, a: Args) -> int:
    if a[1] > 64:
        raise SyscallError(errno.EINVAL)
    t.tg.prctl["pdeathsig"] = a[1]
    return 0


def _get_pdeathsig(t: Task, a: Args) -> int:
    return _u32_out(t, a[1], t.tg.prctl.get("pdeathsig", 0))


def _get_dumpable(t: Task, a: Args) -> int:
    return int(t.tg.prctl.get("dumpable", 1))


def _set_dumpable(t: Task, a: Args) -> int:
    if a[1] not in (0, 1):
        raise SyscallError(errno.EINVAL)
    t.tg.prctl["dumpable"] = a[1]
    return 0


def _get_timing(t: Task, a: Args) -> int:
    return PR_TIMING_STATISTICAL


def _set_timing(t: Task, a: Args) -> int:
    """Only statistical process timing exists (PR_TIMING_TIMESTAMP is EINVAL)."""
    if a[1] != PR_TIMING_STATISTICAL:
        raise SyscallError(errno.EINVAL)
    return 0


def _get_tsc(t: Task, a: Args) -> int:
    return _u32_out(t, a[1], PR_TSC_ENABLE)


def _set_tsc(t: Task, a: Args) -> int:
    """RDTSC stays allowed: PR_TSC_ENABLE is accepted; PR_TSC_SIGSEGV is
    EINVAL, since making the stub thread's RDTSC fault is a host setting of
    that thread the Sentry cannot make (and a sandbox that said yes would let
    a program believe its RDTSC traps when it does not)."""
    if a[1] != PR_TSC_ENABLE:
        raise SyscallError(errno.EINVAL)
    return 0


def _get_timerslack(t: Task, a: Args) -> int:
    return t.sched.timer_slack_ns


def _set_timerslack(t: Task, a: Args) -> int:
    """The thread's timer slack (kept and reported: the Sentry's own timers
    are not coalesced by it); 0 restores the default the thread was created
    with.  Linux takes the unsigned long whole."""
    t.sched = schedparams.with_slack(t.sched, a[1])
    return 0


def _set_subreaper(t: Task, a: Args) -> int:
    t.tg.prctl["subreaper"] = 1 if a[1] else 0
    return 0


def _get_subreaper(t: Task, a: Args) -> int:
    return _u32_out(t, a[1], t.tg.prctl.get("subreaper", 0))


def _set_no_new_privs(t: Task, a: Args) -> int:
    if a[1] != 1:
        raise SyscallError(errno.EINVAL)
    _unused(*a[2:5])
    t.tg.prctl["no_new_privs"] = 1
    return 0


def _get_no_new_privs(t: Task, a: Args) -> int:
    _unused(*a[1:5])
    return int(t.tg.prctl.get("no_new_privs", 0))


def _get_tid_address(t: Task, a: Args) -> int:
    t.mm.copy_out(a[1], t.clear_child_tid.to_bytes(8, "little"))
    return 0


def _set_thp_disable(t: Task, a: Args) -> int:
    _unused(*a[2:5])
    t.tg.prctl["thp_disable"] = 1 if a[1] else 0
    return 0


def _get_thp_disable(t: Task, a: Args) -> int:
    _unused(*a[1:5])
    return int(t.tg.prctl.get("thp_disable", 0))


def _get_speculation_ctrl(t: Task, a: Args) -> int:
    """What the sandbox reports for every speculation control: not affected
    (the mitigations are the host kernel's, not the application's to set)."""
    _unused(*a[2:5])
    if a[1] not in SPEC_CONTROLS:
        raise SyscallError(errno.ENODEV)
    return PR_SPEC_NOT_AFFECTED


_OPTIONS = {
    PR_SET_NAME: _set_name, PR_GET_NAME: _get_name,
    PR_SET_PDEATHSIG: _set_pdeathsig, PR_GET_PDEATHSIG: _get_pdeathsig,
    PR_GET_DUMPABLE: _get_dumpable, PR_SET_DUMPABLE: _set_dumpable,
    PR_GET_TIMING: _get_timing, PR_SET_TIMING: _set_timing,
    PR_GET_TSC: _get_tsc, PR_SET_TSC: _set_tsc,
    PR_GET_TIMERSLACK: _get_timerslack, PR_SET_TIMERSLACK: _set_timerslack,
    PR_SET_CHILD_SUBREAPER: _set_subreaper, PR_GET_CHILD_SUBREAPER: _get_subreaper,
    PR_SET_NO_NEW_PRIVS: _set_no_new_privs, PR_GET_NO_NEW_PRIVS: _get_no_new_privs,
    PR_GET_TID_ADDRESS: _get_tid_address,
    PR_SET_THP_DISABLE: _set_thp_disable, PR_GET_THP_DISABLE: _get_thp_disable,
    PR_GET_SPECULATION_CTRL: _get_speculation_ctrl,
}


def _name_at(t: Task, addr: int) -> bytes:
    """Up to 16 bytes at ``addr``, cut at the first NUL (the string need not end)."""
    for n in (16, 8, 1):
        try:
            raw = t.mm.copy_in(addr, n)
            break
        except SyscallError:
            continue
    else:
        raise SyscallError(errno.EFAULT)
    return raw.split(b"\0", 1)[0]


ENTRIES: list[Entry] = [
    partial("prctl", prctl, note="names, PDEATHSIG recorded, dumpable, no_new_privs, "
            "capabilities, securebits, subreaper, timer slack (kept), THP-disable (kept); "
            "PR_SET_TSC only PR_TSC_ENABLE"),
]
