"""Process identity and lifetime: exit, ids, TLS, rlimits, scheduling queries."""

from __future__ import annotations

import errno
import os
import struct
from typing import TYPE_CHECKING

from sentry import placement
from sentry.kernel import fork as fork_mod
from sentry.kernel import rlimits
from sentry.kernel.errors import SyscallError
from sentry.kernel.signals import SigInfo
from sentry.kernel.task import TaskExit, exit_status
from sentry.kernel.threadgroup import ThreadGroup, describe_status
from shm import records
from syscalls.abi import I32, NO_ID, RLIMIT, s32
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
USER_TOP = 0x7FFFFFFFF000
NGROUPS_MAX = 65536


def exit(t: Task, a: Args) -> int:  # noqa: A001 - the syscall's name
    """exit(2): with one thread per process for now, the process ends."""
    raise TaskExit(exit_status(a[0]), group=False)


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


def getgroups(t: Task, a: Args) -> int:
    """getgroups(2): the supplementary groups; size 0 asks only for the count."""
    groups = t.creds.groups
    size = s32(a[0])
    if size < 0:
        raise SyscallError(errno.EINVAL)
    if size == 0:
        return len(groups)
    if size < len(groups):
        raise SyscallError(errno.EINVAL)
    if groups:
        t.mm.copy_out(a[1], struct.pack(f"<{len(groups)}I", *groups))
    return len(groups)


def setgroups(t: Task, a: Args) -> int:
    """setgroups(2): needs CAP_SETGID (root here); changes the calling thread's
    credentials only, as Linux does (libc repeats it on every thread)."""
    size = s32(a[0])
    if not 0 <= size <= NGROUPS_MAX:
        raise SyscallError(errno.EINVAL)
    if t.creds.euid != 0:
        raise SyscallError(errno.EPERM)
    raw = t.mm.copy_in(a[1], size * 4) if size else b""
    groups = tuple(sorted(struct.unpack(f"<{size}I", raw)))  # Linux sorts them too
    if NO_ID in groups:  # (gid_t)-1 maps to no group: groups_from_user's EINVAL
        raise SyscallError(errno.EINVAL)
    t.creds = records.replace(t.creds, groups=groups)
    return 0


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
    if not 0 <= resource < rlimits.RLIMIT_NLIMITS:
        raise SyscallError(errno.EINVAL)
    return rlimits.get(t.tg, resource)


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
        if resource == rlimits.RLIMIT_NOFILE and hard > rlimits.NR_OPEN:
            raise SyscallError(errno.EPERM)
        t.rlimits[resource] = (soft, hard)
        if resource == rlimits.RLIMIT_NOFILE:
            t.fds.limit = rlimits.fd_limit(soft)
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
    cpus = placement.sandbox_cpus()
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
    supported("getgroups", getgroups),
    supported("setgroups", setgroups),
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


# --- processes: clone, exec, wait, groups ------------------------------------

WNOHANG = 1
WUNTRACED = 2
WEXITED = 4
WCONTINUED = 8
WNOWAIT = 0x01000000
WNOTHREAD = 0x20000000
WALL = 0x40000000
WCLONE = 0x80000000
P_ALL, P_PID, P_PGID, P_PIDFD = 0, 1, 2, 3
ARG_MAX_PTRS = 0x7FFFFFFF


def clone(t: Task, a: Args) -> int:
    """clone(2): x86-64 argument order is flags, stack, parent_tid, child_tid, tls."""
    return fork_mod.do_clone(t, a[0], a[1], a[2], a[3], a[4])


def fork(t: Task, a: Args) -> int:
    """fork(2)."""
    return fork_mod.do_clone(t, 17, 0, 0, 0, 0)


def vfork(t: Task, a: Args) -> int:
    """vfork(2): the child shares memory and the parent waits for its exec or exit."""
    return fork_mod.do_clone(t, fork_mod.CLONE_VM | fork_mod.CLONE_VFORK | 17, 0, 0, 0, 0)


def _string_array(t: Task, addr: int) -> list[bytes]:
    return t.mm.read_cstring_array(addr, 131072, ARG_MAX_PTRS)


def execve(t: Task, a: Args) -> int:
    """execve(2)."""
    path = t.mm.read_cstring(a[0], 4096)
    if not path:
        raise SyscallError(errno.ENOENT)
    argv = _string_array(t, a[1])
    envp = _string_array(t, a[2])
    fork_mod.do_execve(t, path, argv, envp)
    return 0


def _matches(t: Task, child: ThreadGroup, pid: int, options: int) -> bool:
    if pid > 0 and child.tgid != pid:
        return False
    if pid == 0 and child.pgid != t.tg.pgid:
        return False
    if pid < -1 and child.pgid != -pid:
        return False
    if options & WALL:
        return True
    is_clone = child.exit_signal != 17
    return is_clone == bool(options & WCLONE)


def _reportable(t: Task, pid: int, options: int) -> tuple[ThreadGroup, int] | None:
    """The first child matching (pid, options) with something to report, and its
    wait status, without consuming it; ECHILD when no child matches at all.

    The wait below sleeps on exactly this predicate: a cheaper "any child changed"
    hint woke for a zombie the caller does not wait for (waitid(P_PID) while an
    older child is an unreaped zombie) and spun with the kernel lock held, so
    the child being waited for could never exec or exit (CPython's test_waitid).
    """
    kids = [c for c in t.tg.children if _matches(t, c, pid, options)]
    if not kids:
        raise SyscallError(errno.ECHILD)
    for c in kids:
        if c.zombie and not c.reaped:
            return c, c.exit_status
        if options & WUNTRACED and c.stopped and not c.stop_reported:
            return c, (c.stop_signal << 8) | 0x7F
        if options & WCONTINUED and c.continued:
            return c, 0xFFFF
    return None


def _wait_child(t: Task, pid: int, options: int) -> tuple[ThreadGroup, int] | None:
    """A child with something to report, and its wait status: a zombie (reaped
    unless WNOWAIT), a new stop (WUNTRACED), a continue (WCONTINUED).  None with
    WNOHANG when nothing is ready."""
    k = t.kernel
    with k.lock:
        while True:
            got = _reportable(t, pid, options)
            if got is not None or options & WNOHANG:
                break
            t.wait_cond(k.child_exit, lambda: _reportable(t, pid, options) is not None, None)
        if got is not None and not options & WNOWAIT:
            c, status = got
            if c.zombie:
                k.reap(c)
            elif status == 0xFFFF:
                c.continued = False
            else:
                c.stop_reported = True
        return got


def _rusage(child: ThreadGroup) -> bytes:
    ut = child.utime_ns + child.child_utime_ns
    st = child.stime_ns + child.child_stime_ns
    return struct.pack("<qqqq", ut // 10**9, (ut % 10**9) // 1000, st // 10**9,
                       (st % 10**9) // 1000) + bytes(112)


def wait4(t: Task, a: Args) -> int:
    """wait4(2)."""
    pid, status_addr, options, rusage = s32(a[0]), a[1], a[2] & 0xFFFFFFFF, a[3]
    if options & ~(WNOHANG | WUNTRACED | WCONTINUED | WNOTHREAD | WALL | WCLONE):
        raise SyscallError(errno.EINVAL)
    got = _wait_child(t, pid, options)
    if got is None:
        return 0
    child, status = got
    if status_addr:
        t.mm.copy_out(status_addr, I32.pack(status))
    if rusage:
        t.mm.copy_out(rusage, _rusage(child))
    return child.tgid


def waitid(t: Task, a: Args) -> int:
    """waitid(2): only exited children (WEXITED); stops arrive with job control."""
    idtype, ident, infop, options = s32(a[0]), s32(a[1]), a[2], a[3] & 0xFFFFFFFF
    if not options & (WEXITED | WUNTRACED | WCONTINUED):
        raise SyscallError(errno.EINVAL)
    if idtype == P_ALL:
        pid = -1
    elif idtype == P_PID:
        pid = ident
    elif idtype == P_PGID:
        pid = -ident if ident else 0
    else:
        raise SyscallError(errno.EINVAL)
    wait_opts = (options & (WNOHANG | WNOWAIT | WCONTINUED)) | WALL
    if options & WUNTRACED:  # WSTOPPED for waitid
        wait_opts |= WUNTRACED
    got = _wait_child(t, pid, wait_opts)
    if infop:
        if got is None:
            t.mm.copy_out(infop, bytes(128))
        else:
            child, status = got
            t.mm.copy_out(infop, child_siginfo(child.tgid, t.creds.uid, status).pack())
    return 0


def child_siginfo(pid: int, uid: int, status: int) -> SigInfo:
    """waitid(2)'s siginfo for a child's wait status: CLD_* in si_code, the exit
    code or signal in si_status."""
    if status & 0xFF == 0x7F:
        code, value = 5, status >> 8  # CLD_STOPPED
    elif status == 0xFFFF:
        code, value = 6, 18  # CLD_CONTINUED, SIGCONT
    else:
        code, value = describe_status(status)
    return SigInfo(17, code=code, pid=pid, uid=uid, status=value)


def setpgid(t: Task, a: Args) -> int:
    """setpgid(2)."""
    pid, pgid = s32(a[0]), s32(a[1])
    if pgid < 0:
        raise SyscallError(errno.EINVAL)
    k = t.kernel
    with k.lock:
        target = t.tg if pid in (0, t.pid) else k.thread_groups.get(pid)
        if target is None or (target is not t.tg and target.parent is not t.tg):
            raise SyscallError(errno.ESRCH)
        if target.sid != t.tg.sid:
            raise SyscallError(errno.EPERM)
        if target.sid == target.tgid:
            raise SyscallError(errno.EPERM)  # a session leader cannot move
        pgid = pgid or target.tgid
        if pgid != target.tgid and not any(
            g.pgid == pgid and g.sid == t.tg.sid for g in k.thread_groups.values()
        ):
            raise SyscallError(errno.EPERM)
        target.pgid = pgid
    return 0


def setsid(t: Task, a: Args) -> int:
    """setsid(2)."""
    k = t.kernel
    with k.lock:
        if any(g.pgid == t.pid for g in k.thread_groups.values() if g is not t.tg):
            raise SyscallError(errno.EPERM)
        if t.tg.pgid == t.pid:
            raise SyscallError(errno.EPERM)
        t.tg.sid = t.tg.pgid = t.pid
        t.tg.tty = None  # a new session starts without a controlling terminal
    return t.pid


def getpgrp(t: Task, a: Args) -> int:
    """getpgrp(2)."""
    return t.tg.pgid


def _process(t: Task, pid_arg: int) -> ThreadGroup:
    """The process a pid argument names (0: the caller), or ESRCH."""
    pid = s32(pid_arg)
    with t.kernel.lock:
        g = t.tg if pid == 0 else t.kernel.thread_groups.get(pid)
    if g is None:
        raise SyscallError(errno.ESRCH)
    return g


def getpgid(t: Task, a: Args) -> int:
    """getpgid(2)."""
    return _process(t, a[0]).pgid


def getsid(t: Task, a: Args) -> int:
    """getsid(2)."""
    return _process(t, a[0]).sid


PROCESS_ENTRIES: list[Entry] = [
    partial("clone", clone, note="processes (fork/vfork/CLONE_VM); threads come later"),
    supported("fork", fork),
    supported("vfork", vfork),
    error("clone3", errno.ENOSYS, note="glibc falls back to clone"),
    supported("execve", execve),
    supported("wait4", wait4),
    supported("waitid", waitid),
    supported("setpgid", setpgid),
    supported("setsid", setsid),
    supported("getpgrp", getpgrp),
    supported("getpgid", getpgid),
    supported("getsid", getsid),
]

ENTRIES += PROCESS_ENTRIES
