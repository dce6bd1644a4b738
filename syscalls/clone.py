"""clone(2) and clone3(2): the argument checks and CLONE_PIDFD; the new task
itself is sentry/kernel/fork.py's.

Facts about Linux that shape this module (kernel/fork.c):

* clone3's ``struct clone_args`` is versioned by size: 64 bytes (VER0), 80
  (set_tid) and 88 (cgroup).  Smaller than 64 is EINVAL, larger than a page
  E2BIG, and bytes past the 88 this kernel knows must be zero (E2BIG).  A bad
  pointer is EFAULT.
* clone3 takes the low 32 clone flags plus CLONE_CLEAR_SIGHAND and
  CLONE_INTO_CGROUP; CLONE_DETACHED and the CSIGNAL bits (the exit signal
  has its own field) are EINVAL, as are CLONE_CLEAR_SIGHAND with
  CLONE_SIGHAND, an exit signal with CLONE_THREAD or CLONE_PARENT, an exit
  signal above 64, a stack without a size or a size without a stack.
* set_tid names the new task's ids, the innermost pid namespace's first (more
  than the levels is EINVAL); each needs CAP_SYS_ADMIN or
  CAP_CHECKPOINT_RESTORE over that namespace (EPERM; sentry/kernel/pidns.py),
  a taken id is EEXIST, an id outside 1..pid_max EINVAL.
* CLONE_PIDFD gives the parent a pidfd (close-on-exec) for the child: clone
  writes it where parent_tid points (so CLONE_PIDFD with
  CLONE_PARENT_SETTID is EINVAL there), clone3 to its own ``pidfd`` field.
  CLONE_PIDFD with CLONE_THREAD or CLONE_DETACHED is EINVAL (Linux 6.1).
* CLONE_PARENT (and CLONE_THREAD) from the sandbox's init is EINVAL: init has
  no parent inside it.
* CLONE_INTO_CGROUP needs a descriptor of a cgroup v2 directory
  (sentry/vfs/cgroupfs.py); the child starts in that group.  Anything else
  is EBADF.
"""

from __future__ import annotations

import errno
import struct
from typing import TYPE_CHECKING

from sentry.kernel import fork as fork_mod
from sentry.kernel import pidns
from sentry.kernel.errors import SyscallError
from sentry.vfs import cgroupfs
from sentry.vfs.description import dentry_of
from syscalls.pidfd import PidFd
from syscalls.table import Entry, partial

if TYPE_CHECKING:
    from sentry.kernel.task import Task

Args = tuple[int, ...]

CLONE_PIDFD = fork_mod.CLONE_PIDFD
CLONE_PARENT = fork_mod.CLONE_PARENT
CLONE_THREAD = fork_mod.CLONE_THREAD
CLONE_SIGHAND = fork_mod.CLONE_SIGHAND
CLONE_DETACHED = fork_mod.CLONE_DETACHED
CLONE_PARENT_SETTID = fork_mod.CLONE_PARENT_SETTID
CLONE_NEWTIME = 0x80
CLONE_CLEAR_SIGHAND = fork_mod.CLONE_CLEAR_SIGHAND
CLONE_INTO_CGROUP = 0x200000000
CSIGNAL = 0xFF
CAP_CHECKPOINT_RESTORE = 40
SIZE_VER0, SIZE_VER1, SIZE_VER2 = 64, 80, 88
PAGE = 4096
ARGS = struct.Struct("<11Q")
INT_MAX = 0x7FFFFFFF


def _check_parent(t: Task, flags: int) -> None:
    if flags & CLONE_PARENT and t.tg is t.kernel.init:
        raise SyscallError(errno.EINVAL)


def _prepare_pidfd(t: Task, addr: int) -> None:
    """EFAULT before the child exists, not after."""
    t.mm.copy_out(addr, b"\0\0\0\0")


def _give_pidfd(t: Task, tid: int, addr: int) -> None:
    with t.kernel.lock:
        tg = pidns.find_tg(t.kernel, pidns.viewer(t), tid)
    if tg is None:  # it was reaped already (SIGCHLD ignored): still a valid pidfd
        raise SyscallError(errno.ESRCH)
    fd = t.fds.install(PidFd(tg, 0), cloexec=True)
    t.mm.copy_out(addr, fd.to_bytes(4, "little", signed=True))


def clone(t: Task, a: Args) -> int:
    """clone(2): x86-64 argument order is flags, stack, parent_tid, child_tid, tls."""
    flags = a[0] & 0xFFFFFFFFFFFFFFFF
    if flags & CLONE_PIDFD:
        if flags & (CLONE_THREAD | CLONE_DETACHED | CLONE_PARENT_SETTID):
            raise SyscallError(errno.EINVAL)
    _check_parent(t, flags)
    flags &= 0xFFFFFFFF
    if flags & CLONE_PIDFD:
        _prepare_pidfd(t, a[2])
    tid = fork_mod.do_clone(t, flags, a[1], a[2], a[3], a[4])
    if flags & CLONE_PIDFD:
        _give_pidfd(t, tid, a[2])
    return tid


def _read_args(t: Task, addr: int, size: int) -> tuple[int, ...]:
    if size > PAGE:
        raise SyscallError(errno.E2BIG)
    if size < SIZE_VER0:
        raise SyscallError(errno.EINVAL)
    raw = t.mm.copy_in(addr, size)
    if size > SIZE_VER2 and any(raw[SIZE_VER2:]):
        raise SyscallError(errno.E2BIG)
    return ARGS.unpack(raw[:SIZE_VER2].ljust(SIZE_VER2, b"\0"))


def clone3(t: Task, a: Args) -> int:
    """clone3(2)."""
    (flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid,
     set_tid_size, cgroup) = _read_args(t, a[0], a[1])
    size = a[1]
    if set_tid_size > 32 or (not set_tid and set_tid_size) or (set_tid and not set_tid_size):
        raise SyscallError(errno.EINVAL)
    if exit_signal & ~CSIGNAL or exit_signal > 64:
        raise SyscallError(errno.EINVAL)
    if flags & CLONE_INTO_CGROUP and (cgroup > INT_MAX or size < SIZE_VER2):
        raise SyscallError(errno.EINVAL)
    tids: list[int] = []
    if set_tid_size:
        raw = t.mm.copy_in(set_tid, 4 * set_tid_size)
        tids = [int.from_bytes(raw[i:i + 4], "little", signed=True)
                for i in range(0, len(raw), 4)]
    # clone3_args_valid
    if flags & ~(0xFFFFFFFF | CLONE_CLEAR_SIGHAND | CLONE_INTO_CGROUP):
        raise SyscallError(errno.EINVAL)
    if flags & (CLONE_DETACHED | (CSIGNAL & ~CLONE_NEWTIME)):
        raise SyscallError(errno.EINVAL)
    if flags & CLONE_SIGHAND and flags & CLONE_CLEAR_SIGHAND:
        raise SyscallError(errno.EINVAL)
    if flags & (CLONE_THREAD | CLONE_PARENT) and exit_signal:
        raise SyscallError(errno.EINVAL)
    if bool(stack) != bool(stack_size):
        raise SyscallError(errno.EINVAL)
    if flags & CLONE_PIDFD and flags & (CLONE_THREAD | CLONE_DETACHED):
        raise SyscallError(errno.EINVAL)
    # alloc_pid: one id per pid namespace level, the innermost first
    if any(not 0 < w < t.kernel.sysctl.pid_max for w in tids):
        raise SyscallError(errno.EINVAL)
    _check_parent(t, flags)
    into = None
    if flags & CLONE_INTO_CGROUP:
        desc = t.fds.get(int(cgroup))  # EBADF for a descriptor that is not open
        d = dentry_of(desc)
        into = cgroupfs.group_of_dir(d.inode) if d is not None else None
        if into is None:
            raise SyscallError(errno.EBADF)  # not a cgroup2 directory
    if flags & CLONE_PIDFD:
        _prepare_pidfd(t, pidfd)
    sp = stack + stack_size if stack else 0
    # CLONE_NEWTIME shares its bit with the legacy exit signal's field
    flags = (flags & ~CSIGNAL) | (flags & CLONE_NEWTIME)
    tid = fork_mod.do_clone(t, flags | exit_signal, sp, parent_tid, child_tid, tls,
                            set_tid=tids, into_cgroup=into)
    if flags & CLONE_PIDFD:
        _give_pidfd(t, tid, pidfd)
    return tid


ENTRIES: list[Entry] = [
    partial("clone", clone, note="processes and threads, CLONE_PIDFD, CLONE_PARENT; "
            "namespaces as unshare (pid namespaces nest; net EINVAL); namespace "
            "flags with CLONE_THREAD EINVAL"),
    partial("clone3", clone3, note="as clone, plus set_tid (one id per pid namespace "
            "level), CLONE_NEWTIME, CLONE_CLEAR_SIGHAND and CLONE_INTO_CGROUP"),
]
