"""kcmp(2): whether two processes share a kernel object (a file, the address
space, the fd table, the fs context, the signal handlers, the System V undo
list, an epoll target), as checkpoint tools and systemd ask.

The answer orders the objects (0 equal, 1 less, 2 greater) without telling
their addresses, as Linux's kptr_obfuscate does: the Sentry's object ids are
mixed with a random key per type, chosen once per sandbox, so the order is
stable within a sandbox and means nothing outside it. Objects Linux leaves
unallocated until first use (the I/O context; an undo list before any
SEM_UNDO or thread) compare as two NULLs: equal.
"""

from __future__ import annotations

import errno
import os
import struct
from typing import TYPE_CHECKING, Any

from sentry.kernel.errors import SyscallError
from sentry.kernel.namespaces import ipc_of
from syscalls.abi import s32
from syscalls.mm import ptrace_access_target
from syscalls.table import Entry, supported

if TYPE_CHECKING:
    from sentry.kernel.task import Task

Args = tuple[int, ...]

KCMP_FILE, KCMP_VM, KCMP_FILES, KCMP_FS, KCMP_SIGHAND, KCMP_IO, KCMP_SYSVSEM, \
    KCMP_EPOLL_TFD = range(8)
KCMP_TYPES = 8
EPOLL_SLOT = struct.Struct("<III")  # efd, tfd, toff
_KEYS = [int.from_bytes(os.urandom(8), "little") for _ in range(KCMP_TYPES)]


def _order(a: object | None, b: object | None, kind: int) -> int:
    if a is b:
        return 0
    ka = 0 if a is None else (id(a) ^ _KEYS[kind]) & ((1 << 64) - 1)
    kb = 0 if b is None else (id(b) ^ _KEYS[kind]) & ((1 << 64) - 1)
    return int(ka < kb) | (int(ka > kb) << 1)


def _file(task: Task, fd: int) -> Any:
    try:
        return task.tg.fds.get(fd)
    except SyscallError:
        raise SyscallError(errno.EBADF) from None


def _undo_list(task: Task) -> object | None:
    """The process's System V undo list, or None where Linux has none yet:
    one exists once a SEM_UNDO was made or a thread was created (glibc's
    pthread_create passes CLONE_SYSVSEM, which allocates it); a fork child
    starts without one."""
    tg = task.tg
    return tg if len(tg.tasks) > 1 or ipc_of(task).sem.undo.get(tg.tgid) else None


def _epoll_target(t: Task, task2: Task, addr: int) -> Any:
    efd, tfd, toff = EPOLL_SLOT.unpack(t.mm.copy_in(addr, EPOLL_SLOT.size))
    ep = _file(task2, s32(efd))
    interest = getattr(ep, "interest", None)
    if not isinstance(interest, dict):
        raise SyscallError(errno.EINVAL)
    entry = interest.get(s32(tfd))
    if entry is None or toff != 0:  # one registration per fd number here
        raise SyscallError(errno.ENOENT)
    return entry[0]


def kcmp(t: Task, a: Args) -> int:
    """kcmp(2)."""
    pid1, pid2, kind, idx1, idx2 = s32(a[0]), s32(a[1]), s32(a[2]), a[3], a[4]
    task1 = ptrace_access_target(t, pid1)
    task2 = ptrace_access_target(t, pid2)
    if not 0 <= kind < KCMP_TYPES:
        raise SyscallError(errno.EINVAL)
    g1, g2 = task1.tg, task2.tg
    if kind == KCMP_FILE:
        return _order(_file(task1, s32(idx1)), _file(task2, s32(idx2)), kind)
    if kind == KCMP_EPOLL_TFD:
        f1 = _file(task1, s32(idx1))
        return _order(f1, _epoll_target(t, task2, idx2), kind)
    pairs = {
        KCMP_VM: (g1.mm, g2.mm),
        KCMP_FILES: (g1.fds, g2.fds),
        KCMP_FS: (g1.fs, g2.fs),
        KCMP_SIGHAND: (g1.sigactions, g2.sigactions),
        KCMP_IO: (None, None),
        KCMP_SYSVSEM: (_undo_list(task1), _undo_list(task2)),
    }
    x, y = pairs[kind]
    return _order(x, y, kind)


ENTRIES: list[Entry] = [supported("kcmp", kcmp)]
