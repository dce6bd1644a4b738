"""Process identity and lifetime: exit, ids, TLS, rlimits, scheduling queries."""

from __future__ import annotations

import errno
import struct
from typing import TYPE_CHECKING

from sentry.kernel import cputimers, pidns, ptrace_wait, rlimits
from sentry.kernel import fork as fork_mod
from sentry.kernel.creds import CAP_SYS_RESOURCE
from sentry.kernel.errors import SyscallError
from sentry.kernel.signals import SigInfo
from sentry.kernel.task_exits import TaskExit, exit_status
from sentry.kernel.threadgroup import ThreadGroup, describe_status
from sentry.vfs import vfs
from sentry.vfs.description import dentry_of
from sentry.vfs.file import O_NONBLOCK
from sentry.vfs.mount import path_of
from syscalls import sched
from syscalls.abi import I32, RLIMIT, s32
from syscalls.pidfd import PidFd
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


def exit(t: Task, a: Args) -> int:  # noqa: A001 - the syscall's name
    """exit(2): with one thread per process for now, the process ends."""
    raise TaskExit(exit_status(a[0]), group=False)


def exit_group(t: Task, a: Args) -> int:
    """exit_group(2)."""
    raise TaskExit(exit_status(a[0]))


def getpid(t: Task, a: Args) -> int:
    """getpid(2): the id in the caller's pid namespace (init is 1)."""
    return pidns.vpid(pidns.viewer(t), t.tg)


def getppid(t: Task, a: Args) -> int:
    """getppid(2): 0 for the sandbox's init, as in a container, and for a
    parent outside the caller's pid namespace."""
    return pidns.vpid(pidns.viewer(t), t.tg.parent)


def gettid(t: Task, a: Args) -> int:
    """gettid(2)."""
    return pidns.vtid(pidns.viewer(t), t)


def set_tid_address(t: Task, a: Args) -> int:
    """set_tid_address(2): recorded for thread exit (CLONE_CHILD_CLEARTID)."""
    t.clear_child_tid = a[0]
    return pidns.vtid(pidns.viewer(t), t)


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
    """prlimit64(2): pid 0 is the caller, any other is a task of the sandbox by
    its tid (a thread's id names its process, as on Linux); limits belong to the
    thread group.  Without CAP_SYS_RESOURCE (not root) only one's own ids' tasks."""
    pid, resource, new, old = s32(a[0]), s32(a[1]), a[2], a[3]
    tg_task = _prlimit_target(t, pid)
    cur = _rlimit(tg_task, resource)
    if new:
        soft, hard = RLIMIT.unpack(t.mm.copy_in(new, RLIMIT.size))
        if soft > hard:
            raise SyscallError(errno.EINVAL)
        if hard > cur[1] and not t.creds.capable(CAP_SYS_RESOURCE):
            raise SyscallError(errno.EPERM)
        if resource == rlimits.RLIMIT_NOFILE and hard > t.kernel.sysctl.nr_open:
            raise SyscallError(errno.EPERM)
        tg_task.rlimits[resource] = (soft, hard)
        if resource == rlimits.RLIMIT_NOFILE:
            tg_task.fds.limit = rlimits.fd_limit(soft)
        if resource == RLIMIT_CPU:
            cputimers.watch_cpu_limit(t.kernel, tg_task.tg)
    if old:
        t.mm.copy_out(old, RLIMIT.pack(*cur))
    return 0


def _prlimit_target(t: Task, pid: int) -> Task:
    """The task whose thread group's limits prlimit64 reads or sets."""
    if pid in (0, t.tid):
        return t
    target = sched.target(t, pid)
    me, them = t.creds, target.creds  # check_prlimit_permission()
    if not me.capable(CAP_SYS_RESOURCE) and not (
            me.uid == them.uid == them.euid == them.suid
            and me.gid == them.gid == them.egid == them.sgid):
        raise SyscallError(errno.EPERM)
    return target


def getrlimit(t: Task, a: Args) -> int:
    """getrlimit(2)."""
    t.mm.copy_out(a[1], RLIMIT.pack(*_rlimit(t, s32(a[0]))))
    return 0


def setrlimit(t: Task, a: Args) -> int:
    """setrlimit(2)."""
    return prlimit64(t, (0, a[0], a[1], 0, 0, 0))


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
    supported("set_tid_address", set_tid_address),
    supported("set_robust_list", set_robust_list),
    partial("arch_prctl", arch_prctl, note="ARCH_SET_FS/ARCH_GET_FS; no GS"),
    supported("prlimit64", prlimit64),
    supported("getrlimit", getrlimit),
    supported("setrlimit", setrlimit),
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
RLIMIT_CPU = 0
ARG_MAX_PTRS = 0x7FFFFFFF
MAX_ARG_STRLEN = 32 * 4096  # one argv/envp string, counting its NUL (Linux)


def fork(t: Task, a: Args) -> int:
    """fork(2)."""
    return fork_mod.do_clone(t, 17, 0, 0, 0, 0)


def vfork(t: Task, a: Args) -> int:
    """vfork(2): the child shares memory and the parent waits for its exec or exit."""
    return fork_mod.do_clone(t, fork_mod.CLONE_VM | fork_mod.CLONE_VFORK | 17, 0, 0, 0, 0)


def _string_array(t: Task, addr: int) -> list[bytes]:
    """execve's argv or envp.  A string without a NUL in its first
    MAX_ARG_STRLEN bytes is E2BIG, as Linux's copy_strings says (the reader's
    ENAMETOOLONG is the answer for paths, not for arguments)."""
    try:
        return t.mm.read_cstring_array(addr, MAX_ARG_STRLEN, ARG_MAX_PTRS)
    except SyscallError as exc:
        if exc.errno == errno.ENAMETOOLONG:
            raise SyscallError(errno.E2BIG) from None
        raise


def execve(t: Task, a: Args) -> int:
    """execve(2)."""
    path = t.mm.read_cstring(a[0], 4096)
    if not path:
        raise SyscallError(errno.ENOENT)
    argv = _string_array(t, a[1])
    envp = _string_array(t, a[2])
    fork_mod.do_execve(t, path, argv, envp)
    return 0


AT_FDCWD, AT_SYMLINK_NOFOLLOW, AT_EMPTY_PATH = -100, 0x100, 0x1000


def execveat(t: Task, a: Args) -> int:
    """execveat(2): a path relative to a directory descriptor, or with
    AT_EMPTY_PATH the file a descriptor names (fexecve); AT_SYMLINK_NOFOLLOW
    refuses a final symlink (ELOOP). The program is found by its path, so a
    descriptor whose file has no name left (memfd, unlinked) cannot be run."""
    dirfd, flags = s32(a[0]), s32(a[4])
    if flags & ~(AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW):
        raise SyscallError(errno.EINVAL)
    path = t.mm.read_cstring(a[1], 4096)
    ctx = t.tg.fs
    if not path:
        if not flags & AT_EMPTY_PATH:
            raise SyscallError(errno.ENOENT)
        d = dentry_of(t.fds.get(dirfd))
        if d is None or d.dead:
            raise SyscallError(errno.ENOENT)
        path = path_of(d, ctx.root)
    elif not path.startswith(b"/") and dirfd != AT_FDCWD:
        d = dentry_of(t.fds.get(dirfd))
        if d is None or not d.inode.is_dir():
            raise SyscallError(errno.ENOTDIR)
        path = path_of(d, ctx.root).rstrip(b"/") + b"/" + path
    if flags & AT_SYMLINK_NOFOLLOW and vfs.stat(ctx, None, path, follow=False).mode \
            & 0o170000 == 0o120000:
        raise SyscallError(errno.ELOOP)
    argv = _string_array(t, a[2])
    envp = _string_array(t, a[3])
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


def _report(c: ThreadGroup, options: int) -> int | None:
    """The wait status ``c`` has for a wait with ``options``, without consuming
    it: a zombie's exit, a stop not yet reported (WUNTRACED), a continue
    (WCONTINUED); None when it has nothing this wait asks about."""
    if c.zombie and not c.reaped:
        return c.exit_status
    if options & WUNTRACED and c.stopped and not c.stop_reported:
        return (c.stop_signal << 8) | 0x7F
    if options & WCONTINUED and c.continued:
        return 0xFFFF
    return None


def _wait_child(t: Task, pid: int, options: int) -> tuple[ThreadGroup, int] | None:
    """A child with something to report, and its wait status: a zombie (reaped
    unless WNOWAIT), a new stop (WUNTRACED), a continue (WCONTINUED).  None with
    WNOHANG when nothing is ready.

    The sleep ends only on what this wait can take (``_waitable``): a wake-up
    for anything else (another child's exit, a stop or a continue this wait
    does not ask about) must not end it, or the loop would spin holding the
    kernel lock that the awaited child needs in order to exit (Go's os/exec
    waits for one child with waitid(WNOWAIT) while other children are zombies).
    """
    k = t.kernel

    def ready() -> tuple[ThreadGroup, int] | None:
        traced = ptrace_wait.wait_report(t, pid, options, not options & WNOWAIT)
        if traced is not None:  # ptrace-stops and tracee exits come first
            return traced
        kids = [c for c in t.tg.children if _matches(t, c, pid, options)]
        if not kids:
            if ptrace_wait.has_tracees(t, pid):
                return None
            raise SyscallError(errno.ECHILD)
        for c in kids:
            status = _report(c, options)
            if status is None:
                continue
            if not options & WNOWAIT:
                if c.zombie:
                    k.reap(c)
                elif status == 0xFFFF:
                    c.continued = False
                else:
                    c.stop_reported = True
            return c, status
        return None

    with k.lock:
        while True:
            got = ready()
            if got is not None or options & WNOHANG:
                return got
            t.wait_cond(k.child_exit, lambda: _waitable(t, pid, options), None)


def _waitable(t: Task, pid: int, options: int) -> bool:
    """Whether ``ready()`` would end the wait: a matching child has something
    to report, or no child matches any more (ECHILD).  Pure: it consumes nothing."""
    if ptrace_wait.wait_pending(t, pid):
        return True
    kids = [c for c in t.tg.children if _matches(t, c, pid, options)]
    if not kids:
        return not ptrace_wait.has_tracees(t, pid)
    return any(_report(c, options) is not None for c in kids)


def _rusage(child: ThreadGroup) -> bytes:
    ut = child.utime_ns + child.child_utime_ns
    st = child.stime_ns + child.child_stime_ns
    rss = max(child.maxrss_kb, child.child_maxrss_kb)
    return struct.pack("<qqqqq", ut // 10**9, (ut % 10**9) // 1000, st // 10**9,
                       (st % 10**9) // 1000, rss) + bytes(104)


NO_PID = 1 << 40  # a pid no process has: a wait for it finds no child (ECHILD)


def _global_wait_pid(t: Task, pid: int) -> int:
    """A wait's pid argument, named in the caller's pid namespace, as a
    sandbox-wide id (pid > 0, or a process group < -1)."""
    ns = pidns.viewer(t)
    if ns is None or pid in (0, -1):
        return pid
    with t.kernel.lock:
        if pid > 0:
            g = pidns.find_tg(t.kernel, ns, pid)
            return g.tgid if g is not None else NO_PID
        pgid = pidns.global_pgid(ns, t.kernel, -pid)
        return -pgid if pgid > 0 else -NO_PID


def wait4(t: Task, a: Args) -> int:
    """wait4(2)."""
    pid, status_addr, options, rusage = s32(a[0]), a[1], a[2] & 0xFFFFFFFF, a[3]
    if options & ~(WNOHANG | WUNTRACED | WCONTINUED | WNOTHREAD | WALL | WCLONE):
        raise SyscallError(errno.EINVAL)
    if pid == -(1 << 31):  # -INT_MIN is no process group (Linux: ESRCH)
        raise SyscallError(errno.ESRCH)
    got = _wait_child(t, _global_wait_pid(t, pid), options)
    if got is None:
        return 0
    child, status = got
    if status_addr:
        t.mm.copy_out(status_addr, I32.pack(status))
    if rusage:
        t.mm.copy_out(rusage, _rusage(child))
    return pidns.vpid(pidns.viewer(t), child)


def waitid(t: Task, a: Args) -> int:
    """waitid(2): only exited children (WEXITED); stops arrive with job control."""
    idtype, ident, infop, options = s32(a[0]), s32(a[1]), a[2], a[3] & 0xFFFFFFFF
    if not options & (WEXITED | WUNTRACED | WCONTINUED):
        raise SyscallError(errno.EINVAL)
    if idtype == P_ALL:
        pid = -1
    elif idtype == P_PID:
        pid = _global_wait_pid(t, ident) if ident > 0 else ident
    elif idtype == P_PGID:
        pid = _global_wait_pid(t, -ident) if ident > 0 else 0
    elif idtype == P_PIDFD:
        pid = pidfd_target(t, ident, options)
    else:
        raise SyscallError(errno.EINVAL)
    wait_opts = (options & (WNOHANG | WNOWAIT | WCONTINUED)) | WALL
    if options & WUNTRACED:  # WSTOPPED for waitid
        wait_opts |= WUNTRACED
    # A nonblocking pidfd (PIDFD_NONBLOCK) waits as WNOHANG, and says EAGAIN
    # rather than 0 when nothing is ready and the caller did not ask WNOHANG.
    nonblock = idtype == P_PIDFD and bool(t.fds.get(ident).flags & O_NONBLOCK)
    got = _wait_child(t, pid, wait_opts | (WNOHANG if nonblock else 0))
    if got is None and nonblock and not options & WNOHANG:
        raise SyscallError(errno.EAGAIN)
    if infop:
        if got is None:
            t.mm.copy_out(infop, bytes(128))
        else:
            child, status = got
            info = child_siginfo(pidns.vpid(pidns.viewer(t), child), t.creds.uid, status)
            if status & 0xFF == 0x7F and ptrace_wait.traces(t, child.tgid):
                info.code = ptrace_wait.CLD_TRAPPED  # a ptrace-stop, to its tracer
            t.mm.copy_out(infop, info.pack())
    return 0


def pidfd_target(t: Task, fd: int, options: int) -> int:
    """waitid(P_PIDFD): the process a pidfd names (EBADF for another file)."""
    desc = t.fds.get(fd)
    if not isinstance(desc, PidFd):
        raise SyscallError(errno.EBADF)
    return desc.tg.tgid


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
    return pidns.vpid(pidns.viewer(t), t.tg)


def _seen(t: Task, pgid: int) -> int:
    """A process group or session id as the caller's pid namespace names it."""
    with t.kernel.lock:
        return pidns.vpgid(pidns.viewer(t), t.kernel, pgid)


def getpgrp(t: Task, a: Args) -> int:
    """getpgrp(2)."""
    return _seen(t, t.tg.pgid)


def _process(t: Task, pid_arg: int) -> ThreadGroup:
    """The process a pid argument names (0: the caller), or ESRCH."""
    pid = s32(pid_arg)
    with t.kernel.lock:
        g = t.tg if pid == 0 else pidns.find_tg(t.kernel, pidns.viewer(t), pid)
    if g is None:
        raise SyscallError(errno.ESRCH)
    return g


def getpgid(t: Task, a: Args) -> int:
    """getpgid(2)."""
    return _seen(t, _process(t, a[0]).pgid)


def getsid(t: Task, a: Args) -> int:
    """getsid(2)."""
    return _seen(t, _process(t, a[0]).sid)


PROCESS_ENTRIES: list[Entry] = [
    supported("fork", fork),
    supported("vfork", vfork),
    supported("execve", execve),
    partial("execveat", execveat, note="by path: a file with no name left (memfd) cannot run"),
    supported("wait4", wait4),
    supported("waitid", waitid),
    supported("setpgid", setpgid),
    supported("setsid", setsid),
    supported("getpgrp", getpgrp),
    supported("getpgid", getpgid),
    supported("getsid", getsid),
]

ENTRIES += PROCESS_ENTRIES
