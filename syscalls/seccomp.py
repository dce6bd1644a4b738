"""seccomp(2) and prctl's PR_SET_SECCOMP / PR_GET_SECCOMP: the application
filtering its own syscalls; the filters run in the Sentry
(sentry/kernel/seccomp.py, which says what each action does here).

Checks in Linux's order: the operation and its flags (EINVAL); for a filter,
reading ``struct sock_fprog`` (EFAULT), its length (EINVAL), then
no_new_privs or CAP_SYS_ADMIN (EACCES), then the program itself (EFAULT,
EINVAL); a task in strict mode cannot switch to filter mode nor the reverse
(EINVAL). SECCOMP_FILTER_FLAG_NEW_LISTENER (user notification) is refused
with EINVAL: no listener descriptor is modelled, so a program that needs one
learns it at install time rather than hanging later.
"""

from __future__ import annotations

import errno
import struct
from typing import TYPE_CHECKING

from sentry.kernel import seccomp as sc
from sentry.kernel.creds import CAP_SYS_ADMIN
from sentry.kernel.errors import SyscallError
from syscalls.table import Entry, partial

if TYPE_CHECKING:
    from sentry.kernel.task import Task

Args = tuple[int, ...]

SECCOMP_SET_MODE_STRICT = 0
SECCOMP_SET_MODE_FILTER = 1
SECCOMP_GET_ACTION_AVAIL = 2
SECCOMP_GET_NOTIF_SIZES = 3
FLAG_TSYNC = 1
FLAG_LOG = 2
FLAG_SPEC_ALLOW = 4
FLAG_NEW_LISTENER = 8
FLAG_TSYNC_ESRCH = 16
FLAG_WAIT_KILLABLE_RECV = 32
FILTER_FLAGS = (FLAG_TSYNC | FLAG_LOG | FLAG_SPEC_ALLOW | FLAG_NEW_LISTENER | FLAG_TSYNC_ESRCH
                | FLAG_WAIT_KILLABLE_RECV)
SOCK_FPROG = struct.Struct("<H6xQ")  # len, (padding), filter pointer
NOTIF_SIZES = struct.Struct("<HHH")  # seccomp_notif, seccomp_notif_resp, seccomp_data
PR_GET_SECCOMP = 21
PR_SET_SECCOMP = 22
AVAILABLE = frozenset({sc.RET_KILL_PROCESS, sc.RET_KILL_THREAD, sc.RET_TRAP, sc.RET_ERRNO,
                       sc.RET_TRACE, sc.RET_LOG, sc.RET_ALLOW})


def _set_strict(t: Task) -> int:
    if t.seccomp is not None and t.seccomp is not sc.STRICT:
        raise SyscallError(errno.EINVAL)
    t.seccomp = sc.STRICT
    return 0


def _set_filter(t: Task, flags: int, addr: int) -> int:
    if flags & ~FILTER_FLAGS:
        raise SyscallError(errno.EINVAL)
    if flags & FLAG_TSYNC and flags & FLAG_NEW_LISTENER and not flags & FLAG_TSYNC_ESRCH:
        raise SyscallError(errno.EINVAL)
    if flags & FLAG_NEW_LISTENER:
        raise SyscallError(errno.EINVAL)
    length, prog_addr = SOCK_FPROG.unpack(t.mm.copy_in(addr, SOCK_FPROG.size))
    if not 0 < length <= sc.BPF_MAXINSNS:
        raise SyscallError(errno.EINVAL)
    if not t.tg.prctl.get("no_new_privs") and not t.creds.capable(CAP_SYS_ADMIN):
        raise SyscallError(errno.EACCES)
    prog = sc.check_program(t.mm.copy_in(prog_addr, length * sc.SOCK_FILTER.size))
    if t.seccomp is sc.STRICT:
        raise SyscallError(errno.EINVAL)
    chain = sc.Filter(prog, t.seccomp, bool(flags & FLAG_LOG))  # type: ignore[arg-type]
    if flags & FLAG_TSYNC:
        for other in t.tg.live_tasks():
            if other.seccomp is sc.STRICT:
                raise SyscallError(errno.ESRCH) if flags & FLAG_TSYNC_ESRCH \
                    else SyscallError(errno.EINVAL)
        for other in t.tg.live_tasks():
            other.seccomp = chain
    t.seccomp = chain
    return 0


def seccomp(t: Task, a: Args) -> int:
    """seccomp(2)."""
    op, flags, uargs = a[0] & 0xFFFFFFFF, a[1] & 0xFFFFFFFF, a[2]
    if op == SECCOMP_SET_MODE_STRICT:
        if flags or uargs:
            raise SyscallError(errno.EINVAL)
        return _set_strict(t)
    if op == SECCOMP_SET_MODE_FILTER:
        return _set_filter(t, flags, uargs)
    if op == SECCOMP_GET_ACTION_AVAIL:
        if flags:
            raise SyscallError(errno.EINVAL)
        action = int.from_bytes(t.mm.copy_in(uargs, 4), "little")
        if action not in AVAILABLE:
            raise SyscallError(errno.EOPNOTSUPP)
        return 0
    if op == SECCOMP_GET_NOTIF_SIZES:
        if flags:
            raise SyscallError(errno.EINVAL)
        t.mm.copy_out(uargs, NOTIF_SIZES.pack(80, 24, sc.SECCOMP_DATA_SIZE))
        return 0
    raise SyscallError(errno.EINVAL)


def prctl_seccomp(t: Task, option: int, a: Args) -> int:
    """prctl(PR_GET_SECCOMP) and prctl(PR_SET_SECCOMP, mode, filter)."""
    if option == PR_GET_SECCOMP:
        return sc.mode_of(t.seccomp)
    mode = a[1]
    if mode == sc.SECCOMP_MODE_STRICT:
        return _set_strict(t)
    if mode == sc.SECCOMP_MODE_FILTER:
        return _set_filter(t, 0, a[2])
    raise SyscallError(errno.EINVAL)


ENTRIES: list[Entry] = [
    partial("seccomp", seccomp,
            note="filters run in the Sentry; no user notification (NEW_LISTENER: EINVAL)"),
]
