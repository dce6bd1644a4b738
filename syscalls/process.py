"""Process identity and lifetime: exit, ids, TLS, rlimits, scheduling queries."""

from __future__ import annotations

import errno
import os
from typing import TYPE_CHECKING

from sentry.kernel.errors import SyscallError
from sentry.kernel.task import TaskExit, exit_status
from syscalls.abi import RLIMIT, U64, s32
from syscalls.table import Entry, error, partial, supported

if TYPE_CHECKING:
    from sentry.kernel.task import Task

Args = tuple[int, ...]

ARCH_SET_GS = 0x1001
ARCH_SET_FS = 0x1002
ARCH_GET_FS = 0x1003
ARCH_GET_GS = 0x1004
ARCH_GET_CPUID = 0x1011
ARCH_SET_CPUID = 0x1012
RLIM_INFINITY = U64
RLIMIT_NLIMITS = 16
RLIMIT_STACK = 3
RLIMIT_NOFILE = 7
USER_TOP = 0x7FFFFFFFF000

# Linux's defaults for a fresh init process (what `ulimit -a` shows in a container).
DEFAULT_RLIMITS: dict[int, tuple[int, int]] = {
    0: (RLIM_INFINITY, RLIM_INFINITY),  # CPU
    1: (RLIM_INFINITY, RLIM_INFINITY),  # FSIZE
    2: (RLIM_INFINITY, RLIM_INFINITY),  # DATA
    RLIMIT_STACK: (8 << 20, RLIM_INFINITY),
    4: (0, RLIM_INFINITY),  # CORE
    5: (RLIM_INFINITY, RLIM_INFINITY),  # RSS
    6: (4096, 4096),  # NPROC
    RLIMIT_NOFILE: (1024, 4096),
    8: (64 << 20, 64 << 20),  # MEMLOCK
    9: (RLIM_INFINITY, RLIM_INFINITY),  # AS
    10: (RLIM_INFINITY, RLIM_INFINITY),  # LOCKS
    11: (4096, 4096),  # SIGPENDING
    12: (819200, 819200),  # MSGQUEUE
    13: (0, 0),  # NICE
    14: (0, 0),  # RTPRIO
    15: (RLIM_INFINITY, RLIM_INFINITY),  # RTTIME
}


def exit(t: Task, a: Args) -> int:  # noqa: A001 - the syscall's name
    """exit(2): with one thread per process for now, the process ends."""
    raise TaskExit(exit_status(a[0]))


def exit_group(t: Task, a: Args) -> int:
    """exit_group(2)."""
    raise TaskExit(exit_status(a[0]))


def getpid(t: Task, a: Args) -> int:
    """getpid(2): the sandbox's own pid namespace (init is 1)."""
    return t.pid


def getppid(t: Task, a: Args) -> int:
    """getppid(2): 0 for the sandbox's init, as in a container."""
    return t.ppid


def gettid(t: Task, a: Args) -> int:
    """gettid(2)."""
    return t.tid


def getuid(t: Task, a: Args) -> int:
    """getuid(2)."""
    return t.creds.uid


def geteuid(t: Task, a: Args) -> int:
    """geteuid(2)."""
    return t.creds.euid


def getgid(t: Task, a: Args) -> int:
    """getgid(2)."""
    return t.creds.gid


def getegid(t: Task, a: Args) -> int:
    """getegid(2)."""
    return t.creds.egid


def getpgrp(t: Task, a: Args) -> int:
    """getpgrp(2): init leads its own process group."""
    return t.pid


def getpgid(t: Task, a: Args) -> int:
    """getpgid(2)."""
    pid = s32(a[0])
    if pid not in (0, t.pid):
        raise SyscallError(errno.ESRCH)
    return t.pid


def getsid(t: Task, a: Args) -> int:
    """getsid(2)."""
    return getpgid(t, a)


def set_tid_address(t: Task, a: Args) -> int:
    """set_tid_address(2): recorded for thread exit (CLONE_CHILD_CLEARTID)."""
    t.clear_child_tid = a[0]
    return t.tid


def set_robust_list(t: Task, a: Args) -> int:
    """set_robust_list(2): recorded; the list is walked when threads exit."""
    if a[1] != 24:  # sizeof(struct robust_list_head)
        raise SyscallError(errno.EINVAL)
    t.robust_list = (a[0], a[1])
    return 0


def arch_prctl(t: Task, a: Args) -> int:
    """arch_prctl(2): FS base (TLS) is set by the stub before it returns."""
    code, addr = s32(a[0]), a[1]
    if code == ARCH_SET_FS:
        if addr >= USER_TOP:
            raise SyscallError(errno.EPERM)
        t.set_fs_base(addr)
        return 0
    if code == ARCH_GET_FS:
        t.mm.copy_out(addr, t.fs_base.to_bytes(8, "little"))
        return 0
    if code == ARCH_GET_GS:
        t.mm.copy_out(addr, bytes(8))
        return 0
    if code == ARCH_GET_CPUID:
        return 1
    if code in (ARCH_SET_GS, ARCH_SET_CPUID):
        raise SyscallError(errno.EPERM)
    raise SyscallError(errno.EINVAL)


def _rlimit(t: Task, resource: int) -> tuple[int, int]:
    if not 0 <= resource < RLIMIT_NLIMITS:
        raise SyscallError(errno.EINVAL)
    return t.rlimits.get(resource, DEFAULT_RLIMITS[resource])


def prlimit64(t: Task, a: Args) -> int:
    """prlimit64(2) on the calling process (pid 0 or its own)."""
    pid, resource, new, old = s32(a[0]), s32(a[1]), a[2], a[3]
    if pid not in (0, t.pid):
        raise SyscallError(errno.ESRCH)
    cur = _rlimit(t, resource)
    if new:
        soft, hard = RLIMIT.unpack(t.mm.copy_in(new, RLIMIT.size))
        if soft > hard:
            raise SyscallError(errno.EINVAL)
        if hard > cur[1] and t.creds.euid != 0:
            raise SyscallError(errno.EPERM)
        if resource == RLIMIT_NOFILE and hard > 1 << 20:
            raise SyscallError(errno.EPERM)
        t.rlimits[resource] = (soft, hard)
        if resource == RLIMIT_NOFILE:
            t.fds.limit = min(soft, 1 << 20)
    if old:
        t.mm.copy_out(old, RLIMIT.pack(*cur))
    return 0


def getrlimit(t: Task, a: Args) -> int:
    """getrlimit(2)."""
    t.mm.copy_out(a[1], RLIMIT.pack(*_rlimit(t, s32(a[0]))))
    return 0


def setrlimit(t: Task, a: Args) -> int:
    """setrlimit(2)."""
    return prlimit64(t, (0, a[0], a[1], 0, 0, 0))


def sched_getaffinity(t: Task, a: Args) -> int:
    """sched_getaffinity(2): the CPUs the sandbox may use, as a mask of longs."""
    pid, size, addr = s32(a[0]), a[1], a[2]
    if pid not in (0, t.pid):
        raise SyscallError(errno.ESRCH)
    cpus = os.sched_getaffinity(0)
    nbytes = max(8, ((max(cpus) // 64) + 1) * 8)
    if size < nbytes or size & 7:
        raise SyscallError(errno.EINVAL)
    mask = sum(1 << c for c in cpus)
    t.mm.copy_out(addr, mask.to_bytes(nbytes, "little"))
    return nbytes


def sched_yield(t: Task, a: Args) -> int:
    """sched_yield(2)."""
    os.sched_yield()
    return 0


def umask(t: Task, a: Args) -> int:
    """umask(2)."""
    old = t.umask
    t.umask = a[0] & 0o777
    return old


ENTRIES: list[Entry] = [
    supported("exit", exit),
    supported("exit_group", exit_group),
    supported("getpid", getpid),
    supported("getppid", getppid),
    supported("gettid", gettid),
    supported("getuid", getuid),
    supported("geteuid", geteuid),
    supported("getgid", getgid),
    supported("getegid", getegid),
    supported("getpgrp", getpgrp),
    partial("getpgid", getpgid, note="own process only until process groups land"),
    partial("getsid", getsid, note="own process only until sessions land"),
    supported("set_tid_address", set_tid_address),
    supported("set_robust_list", set_robust_list),
    partial("arch_prctl", arch_prctl, note="ARCH_SET_FS/ARCH_GET_FS; no GS"),
    supported("prlimit64", prlimit64),
    supported("getrlimit", getrlimit),
    supported("setrlimit", setrlimit),
    supported("sched_getaffinity", sched_getaffinity),
    supported("sched_yield", sched_yield),
    supported("umask", umask),
    error("rseq", errno.ENOSYS, note="glibc falls back without it"),
]
