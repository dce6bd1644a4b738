"""Memory locking: mlock, mlock2, munlock, mlockall, munlockall.

Nothing the Sentry holds is ever swapped out, so locking moves no page; what
programs see of it is Linux's: the range checks, VM_LOCKED on the mappings
(VmLck in /proc/PID/status), RLIMIT_MEMLOCK charged unless the caller has
CAP_IPC_LOCK (EPERM with a zero limit, ENOMEM past it), and MCL_FUTURE
locking later mappings (mmap then fails with EAGAIN past the limit; see
``syscalls/mm.py``). fork does not pass locks on; execve drops them with the
old address space.
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING

from sentry.kernel import rlimits
from sentry.kernel.creds import CAP_IPC_LOCK
from sentry.kernel.errors import SyscallError
from sentry.mm.layout import APP_END, PAGE_SIZE, page_round_up
from syscalls.table import Entry, supported

if TYPE_CHECKING:
    from sentry.kernel.task import Task

Args = tuple[int, ...]

MLOCK_ONFAULT = 1
MCL_CURRENT, MCL_FUTURE, MCL_ONFAULT = 1, 2, 4


def lock_limit(t: Task) -> int | None:
    """RLIMIT_MEMLOCK's soft limit in bytes, or None when it does not bind
    (CAP_IPC_LOCK, or unlimited)."""
    limit = rlimits.get(t.tg, rlimits.RLIMIT_MEMLOCK)[0]
    if limit == rlimits.RLIM_INFINITY or t.creds.capable(CAP_IPC_LOCK):
        return None
    return limit


def _can_do_mlock(t: Task) -> None:
    """can_do_mlock(): EPERM with a zero limit and no CAP_IPC_LOCK."""
    if rlimits.get(t.tg, rlimits.RLIMIT_MEMLOCK)[0] == 0 and not t.creds.capable(CAP_IPC_LOCK):
        raise SyscallError(errno.EPERM)


def _range(addr: int, length: int) -> tuple[int, int]:
    """The page-aligned [start, end) mlock works on (ENOMEM past the top)."""
    start = addr & ~(PAGE_SIZE - 1)
    end = page_round_up(addr + length)
    if end > APP_END or end < start:
        raise SyscallError(errno.ENOMEM)
    return start, end


def _lock(t: Task, addr: int, length: int, onfault: bool = False) -> int:
    _can_do_mlock(t)
    start, end = _range(addr, length)
    if start == end:
        return 0
    limit = lock_limit(t)
    if limit is not None:
        locked = end - start + t.mm.locked_bytes() - t.mm.bytes_in(start, end, locked_only=True)
        if locked > limit:
            raise SyscallError(errno.ENOMEM)
    t.mm.set_locked(start, end, True)
    if not onfault:  # MLOCK_ONFAULT: pages come in as they are touched
        t.mm.populate(start, end)
    return 0


def mlock(t: Task, a: Args) -> int:
    """mlock(2)."""
    return _lock(t, a[0], a[1])


def mlock2(t: Task, a: Args) -> int:
    """mlock2(2): MLOCK_ONFAULT locks without making the pages present."""
    if a[2] & ~MLOCK_ONFAULT:
        raise SyscallError(errno.EINVAL)
    return _lock(t, a[0], a[1], bool(a[2] & MLOCK_ONFAULT))


def munlock(t: Task, a: Args) -> int:
    """munlock(2): ENOMEM if part of the range is not mapped."""
    start, end = _range(a[0], a[1])
    if start != end:
        t.mm.set_locked(start, end, False)
    return 0


def mlockall(t: Task, a: Args) -> int:
    """mlockall(2): MCL_CURRENT locks what is mapped (ENOMEM if it is more
    than the limit), MCL_FUTURE what will be."""
    flags = a[0] & 0xFFFFFFFF
    if not flags or flags & ~(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT) or flags == MCL_ONFAULT:
        raise SyscallError(errno.EINVAL)
    _can_do_mlock(t)
    limit = lock_limit(t)
    if flags & MCL_CURRENT and limit is not None and t.mm.total_bytes() > limit:
        raise SyscallError(errno.ENOMEM)
    t.mm.lock_future = bool(flags & MCL_FUTURE)
    if flags & MCL_CURRENT:
        t.mm.set_all_locked(True)
        if not flags & MCL_ONFAULT:
            t.mm.populate(0, APP_END)
    return 0


def munlockall(t: Task, a: Args) -> int:
    """munlockall(2): every mapping, and MCL_FUTURE, undone."""
    t.mm.lock_future = False
    t.mm.set_all_locked(False)
    return 0


ENTRIES: list[Entry] = [
    supported("mlock", mlock),
    supported("munlock", munlock),
    supported("mlock2", mlock2),
    supported("mlockall", mlockall),
    supported("munlockall", munlockall),
]
