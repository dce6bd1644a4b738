"""The kernel object: what every task of one sandbox shares.

The syscall table is handed in at boot (sentry/sandbox.py): the kernel never
imports ``syscalls/``, as gVisor's boot wires ``syscalls/linux`` into its kernel.

Lock order: ``lock`` (the process tree, pid tables, pending signals) first;
then a FutexManager's or an FdTable's own leaf lock.  ``lock`` is never held
while waiting on a stub.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from sentry.kernel import pidns, ptrace
from sentry.kernel.errors import SyscallError
from sentry.kernel.futex import FutexManager
from sentry.kernel.ipc import IpcNamespace
from sentry.kernel.signals import (
    CLD_EXITED,
    CONT,
    IGNORE,
    SA_NOCLDSTOP,
    SA_NOCLDWAIT,
    SIG_DFL,
    SIG_IGN,
    SIGCHLD,
    SIGCONT,
    SIGKILL,
    SIGSTOP,
    SigInfo,
    bit,
    default_action,
)
from sentry.kernel.sysctl import Sysctls
from sentry.kernel.threadgroup import ThreadGroup, describe_status, new_reaper
from sentry.net.netconfig import NetConfig
from shm.records import field, record

if TYPE_CHECKING:
    from sentry.kernel.task import Task

log = logging.getLogger("pyvisor")

CLD_STOPPED = 5
CLD_CONTINUED = 6
STOP_SIGNALS = (19, 20, 21, 22)  # SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU

Handler = Callable[[Any, tuple[int, ...]], int]


class LiveTable(dict):  # type: ignore[type-arg]
    """The kernel's pid -> task and thread group tables, changed by every
    fork and exit while other threads look through them (ps, /proc, kill of
    a group, the pids limit), many without the kernel's lock.  Iterating a
    dict another thread changes raises RuntimeError ("dictionary changed
    size during iteration": a task's exit among 1,000 did); here every view
    is a snapshot taken in one C call, which the GIL makes atomic."""

    def values(self):  # type: ignore[override]
        return list(dict.values(self))

    def items(self):  # type: ignore[override]
        return list(dict.items(self))

    def keys(self):  # type: ignore[override]
        return list(dict.keys(self))

    def __iter__(self):  # type: ignore[override]
        return iter(list(dict.keys(self)))
PID_MAX = 4194304


DEFAULT_RELEASE = "6.1.0"


def release_error(release: str) -> str | None:
    """Why ``release`` cannot be uname's release (None when it can): it must
    fit the 65-byte field with its NUL and be printable ASCII without spaces,
    as programs parse it ("6.1.0", "5.15.0-91-generic")."""
    if not release:
        return "empty"
    if len(release) > 64:
        return "longer than 64 characters"
    if not all(33 <= ord(c) < 127 for c in release):
        return "not printable ASCII without spaces"
    return None


@record(frozen=True, slots=True)
class Utsname:
    """What uname(2) reports: the sandbox's own identity, not the host's.

    The release is a current long-term kernel's (6.1, Debian bookworm's):
    programs read it to decide what to use, and the calls they then try are
    either implemented or fail with ENOSYS, which every common runtime
    probes for. gVisor reports 4.4.0, which makes programs (and test suites:
    statx, for one) switch off what the sandbox does support.
    ``SandboxOptions.kernel_release`` overrides it."""

    sysname: str = "Linux"
    nodename: str = "pyvisor"
    release: str = DEFAULT_RELEASE
    version: str = "#1 SMP PREEMPT_DYNAMIC pyvisor"
    machine: str = "x86_64"
    domainname: str = "(none)"


@record(frozen=True, slots=True)
class Usage:
    """A sandbox's resource use, honest to what it measures:

    - ``user_ns``: CPU time of the stub processes, where application code runs
      (what getrusage reports as user time), live and exited;
    - ``kernel_ns``: CPU time of the Sentry process, the application kernel that
      serves every syscall (Linux would count that work as system time);
    - ``memory_bytes``: pages of the memory file that hold data: every byte of
      application memory, nothing reserved but untouched;
    - ``tasks``: live tasks (threads), as the pids cgroup counts them.
    """

    user_ns: int
    kernel_ns: int
    memory_bytes: int
    tasks: int


@record
class Kernel:
    """Shared kernel state of one sandbox."""

    dispatch: Sequence[Handler | None]
    syscall_name: Callable[[int], str]
    strace: bool = False
    strace_sink: Callable[[str], None] | None = None
    uts: Utsname = field(default_factory=Utsname)
    platform: Any = None
    boot_monotonic_ns: int = field(default_factory=time.monotonic_ns)
    futexes: FutexManager = field(default_factory=FutexManager)
    ipc: IpcNamespace = field(default_factory=IpcNamespace)  # System V objects
    # Interfaces and routes (sentry/net/netconfig.py): lo until a network is attached.
    netconfig: NetConfig = field(default_factory=NetConfig)
    # The writable tunables of /proc/sys (sentry/kernel/sysctl.py).
    sysctl: Sysctls = field(default_factory=Sysctls)
    lock: threading.RLock = field(default_factory=threading.RLock)
    thread_groups: dict[int, ThreadGroup] = field(default_factory=lambda: LiveTable())
    tasks: dict[int, Task] = field(default_factory=lambda: LiveTable())
    init: ThreadGroup | None = None
    done: threading.Event = field(default_factory=threading.Event)
    init_status: int = 0
    fatal: BaseException | None = None
    mf: Any = None  # the memory file (sentry/mm/memfile.py): all application memory
    image_cache: Any = None  # program text kept across execs (sentry/mm/image_cache.py)
    frozen: bool = False  # OCI pause: tasks are held before they return to the app
    # A pod member's pause: its tasks (those in its mount namespace) are held.
    frozen_namespaces: frozenset[Any] = frozenset()
    holding: bool = False  # frozen, or some namespace is (the hot path's one check)
    quiescing: bool = False  # checkpoint: blocked syscalls end to be restarted later
    # A container's init ignores signals it has no handler for (_init_ignores).
    protect_init: bool = False
    pids_limit: int | None = None  # the container's pids limit (kernel/fork.py enforces it)
    pids_pending: int = 0  # clones charged against it, their task not yet registered
    exited_cpu_ns: int = 0  # CPU time of the stub processes of exited thread groups
    _next_pid: int = 1
    _reported: set[int] = field(default_factory=set)
    child_exit: threading.Condition = field(init=False)

    def __post_init__(self) -> None:
        self.child_exit = threading.Condition(self.lock)

    # -- logging ---------------------------------------------------------
    def report_unsupported(self, nr: int) -> None:
        """Name an unimplemented syscall once in the debug log (it got ENOSYS)."""
        with self.lock:
            if nr in self._reported:
                return
            self._reported.add(nr)
        log.info("unsupported syscall %s (%d): returned ENOSYS", self.syscall_name(nr), nr)

    def emit_strace(self, line: str) -> None:
        if self.strace_sink is not None:
            self.strace_sink(line)
        else:
            log.info("%s", line)

    # -- ids -------------------------------------------------------------
    def alloc_pid(self, want: int = 0) -> int:
        """The next free id, counting up and wrapping like Linux's pid allocator;
        ``want`` (clone3's set_tid): that id, or EEXIST when it is taken."""
        with self.lock:
            if want:
                if want in self.tasks or want in self.thread_groups:
                    raise SyscallError(errno.EEXIST)
                return want
            pid_max = self.sysctl.pid_max
            for _ in range(pid_max):
                pid = self._next_pid
                self._next_pid = pid + 1 if pid + 1 < pid_max else 300
                if pid >= pid_max:  # pid_max was lowered: wrap now
                    pid, self._next_pid = 300, 301
                if pid not in self.tasks and pid not in self.thread_groups:
                    return pid
        raise RuntimeError("pid space exhausted")

    # -- signals ---------------------------------------------------------
    def _init_ignores(self, tg: ThreadGroup, sig: int, external: bool) -> bool:
        """Linux's rule for the init of a pid namespace (SIGNAL_UNKILLABLE): a
        signal whose handler is SIG_DFL is dropped; one sent from outside the
        namespace (``external``: `docker kill`, `docker stop`'s SIGKILL) still
        delivers SIGKILL and SIGSTOP.  So `docker stop` of a `sleep` waits for
        the grace time and ends with 137, as with runc and gVisor.

        Containers only (``protect_init``): `runsc.py do` runs a host command,
        and `kill -TERM $$` there ends it as it does on the host (issue 4's
        differential tests hold it to that)."""
        if pidns.is_ns_init(tg):  # a nested pid namespace's init: always protected
            return (tg.action(sig).handler == SIG_DFL
                    and not (external and sig in (SIGKILL, SIGSTOP)))
        return (self.protect_init and tg is self.init and tg.action(sig).handler == SIG_DFL
                and not (external and sig in (SIGKILL, SIGSTOP)))

    def send_group(self, tg: ThreadGroup, info: SigInfo, external: bool = False) -> None:
        """Queue a process-directed signal and wake a thread that can take it."""
        with self.lock:
            if tg.zombie:
                return
            sig = info.signo
            if self._init_ignores(tg, sig, external):
                return
            act = tg.action(sig)
            if sig == SIGKILL:
                self._kill_group(tg, sig)
                return
            if sig == SIGCONT:
                self._continue(tg)
            elif sig in STOP_SIGNALS:
                tg.pending.discard(SIGCONT)
            live = tg.live_tasks()
            # A blocked signal is never dropped as ignored: the disposition may
            # change before it is unblocked, and sigwaitinfo takes it; a tracer
            # hears of ignored signals too (Linux's sig_ignored).
            blocked = any(t.sigmask & bit(sig) for t in live)
            traced = any(t.ptrace is not None for t in tg.tasks)
            if not blocked and not traced:
                if act.handler == SIG_IGN and sig != SIGCHLD:
                    return
                if act.handler == SIG_DFL and default_action(sig) in (IGNORE, CONT):
                    return
            tg.pending.add(info)
            for t in live:
                if not t.sigmask & bit(sig):
                    t.wake()
                    break

    def _continue(self, tg: ThreadGroup) -> None:
        """SIGCONT resumes a stopped process (whatever its disposition), and the
        parent hears about it (WCONTINUED, SIGCHLD with CLD_CONTINUED)."""
        for s in STOP_SIGNALS:  # every queue, the threads' too (prepare_signal)
            tg.pending.discard(s)
            for t in tg.tasks:
                t.pending.discard(s)
        if not tg.stopped:
            return
        tg.stopped = False
        tg.continued = True
        for t in tg.live_tasks():
            t.wake()
        self.child_exit.notify_all()
        parent = tg.parent
        if parent is not None and not parent.action(SIGCHLD).flags & SA_NOCLDSTOP:
            self.send_group(parent, SigInfo(SIGCHLD, code=CLD_CONTINUED, pid=tg.tgid,
                                            status=SIGCONT))

    def stop_group(self, tg: ThreadGroup, signo: int) -> None:
        """A stop signal's default action: the process stops until SIGCONT."""
        with self.lock:
            if tg.stopped or tg.exiting:
                return
            tg.stopped = True
            tg.stop_signal = signo
            tg.stop_reported = False
            self.child_exit.notify_all()
            parent = tg.parent
            if parent is not None and not parent.action(SIGCHLD).flags & SA_NOCLDSTOP:
                self.send_group(parent, SigInfo(SIGCHLD, code=CLD_STOPPED, pid=tg.tgid,
                                                status=signo))

    def send_task(self, task: Task, info: SigInfo) -> None:
        """Queue a thread-directed signal (tkill, faults, SIGPIPE).  Faults
        (a positive si_code) reach even a container's init, as in Linux."""
        with self.lock:
            if info.code <= 0 and self._init_ignores(task.tg, info.signo, False):
                return
            if info.signo == SIGKILL:
                self._kill_group(task.tg, SIGKILL)
                return
            task.pending.add(info)
            task.wake()

    def _kill_group(self, tg: ThreadGroup, sig: int) -> None:
        if not tg.exiting:
            tg.exiting = True
            tg.exit_status = sig
        for t in tg.live_tasks():
            t.kill()

    # -- freezing (OCI pause / resume) --------------------------------------
    def freeze(self, namespace: Any = None) -> None:
        """Hold every task before it next runs application code, as the cgroup
        freezer does for runc's pause.  Tasks running application code are kicked
        out of it now; tasks inside a syscall finish it first (it may block, as
        a sleep does) and are held on their way back; new tasks are held before
        their first instruction.  Held tasks still die of SIGKILL.  With
        ``namespace`` (a pod member's mount namespace), only the tasks of the
        processes in it, as pausing one container of a pod freezes its cgroup
        only."""
        self._set_frozen(True, namespace)

    def thaw(self, namespace: Any = None) -> None:
        """Let every held task go on (signals that came meanwhile are delivered)."""
        self._set_frozen(False, namespace)

    def holds(self, task: Task) -> bool:
        """Whether a freeze holds ``task`` now (called only when ``holding``)."""
        if self.frozen:
            return True
        namespaces = self.frozen_namespaces
        return bool(namespaces) and getattr(task.tg.fs, "ns", None) in namespaces

    def _set_frozen(self, frozen: bool, namespace: Any = None) -> None:
        """Flip the flag, then wake every task so it sees it (Task._resume)."""
        with self.lock:
            if namespace is None:
                self.frozen = frozen
            elif frozen:
                self.frozen_namespaces = self.frozen_namespaces | {namespace}
            else:
                self.frozen_namespaces = self.frozen_namespaces - {namespace}
            self.holding = self.frozen or bool(self.frozen_namespaces)
            tasks = list(self.tasks.values())
        for t in tasks:
            t.wake()

    # -- accounting ------------------------------------------------------------
    def usage(self) -> Usage:
        """What the sandbox uses now (OCI events): see :class:`Usage`."""
        with self.lock:
            groups = [g for g in self.thread_groups.values() if not g.zombie]
            tasks = len(self.tasks)
            app_ns = self.exited_cpu_ns + sum(g.utime_ns for g in groups)
            procs = [g.proc for g in groups if g.proc is not None and g.proc.exit_status is None]
        app_ns += sum(p.cpu_ns() for p in procs)
        memory = 0
        if self.mf is not None:
            with contextlib.suppress(OSError):
                memory = self.mf.blocks_bytes()
        return Usage(user_ns=app_ns, kernel_ns=time.process_time_ns(), memory_bytes=memory,
                     tasks=tasks)

    # -- the process tree --------------------------------------------------
    def register(self, tg: ThreadGroup, task: Task) -> None:
        with self.lock:
            self.thread_groups[tg.tgid] = tg
            self.tasks[task.tid] = task
            tg.tasks.append(task)
            if tg.parent is not None:
                tg.parent.children.append(tg)
            if self.init is None:
                self.init = tg

    def task_exited(self, task: Task) -> None:
        """Bookkeeping when one thread is gone; the last one makes the group a zombie."""
        with self.lock:
            self.tasks.pop(task.tid, None)
            pidns.task_gone(task)
            tg = task.tg
            if tg.live_tasks():
                return
            self._zombify(tg)

    def _zombify(self, tg: ThreadGroup) -> None:
        tg.zombie = True
        if tg.tracees:
            ptrace.tracer_exited(tg)  # detached, or killed with PTRACE_O_EXITKILL
        # SEM_UNDO (lock order: kernel -> ipc), in the process's IPC namespace
        (getattr(tg.namespaces, "ipc", None) or self.ipc).process_exited(tg.tgid)
        if tg.tty is not None and tg.sid == tg.tgid:
            # A session leader's exit hangs its terminal up for the foreground
            # group (SIGHUP, SIGCONT), as Linux's disassociate_ctty does.
            tg.tty.release_session(self, tg.sid, leader_exit=True)
        tg.tty = None
        self.exited_cpu_ns += tg.utime_ns
        if tg.real_timer is not None:
            tg.real_timer.cancel()
        for timer in tg.posix_timers.values():
            timer.cancel()
        for waiter in tg.vfork_waiters:
            waiter.set()
        tg.vfork_waiters.clear()
        init = self.init
        if pidns.is_ns_init(tg):
            self._ns_init_exited(tg)
        else:
            reaper = new_reaper(tg, init)
            for child in tg.children:
                child.parent = reaper
                if reaper is not None:
                    reaper.children.append(child)
                    if child.zombie and reaper is not pidns.init_of(child, init):
                        # its exit is the new parent's news
                        self.send_group(reaper, SigInfo(SIGCHLD, code=CLD_EXITED,
                                                        pid=pidns.vpid(reaper.pidns, child)))
            tg.children = []
        if tg is init:
            self.init_status = tg.exit_status
            for other in list(self.thread_groups.values()):
                if other is not tg:
                    self._kill_group(other, SIGKILL)
            self.done.set()
        parent = tg.parent
        if parent is None:
            self.thread_groups.pop(tg.tgid, None)
            pidns.reaped(tg)
            tg.reaped = True
            self.child_exit.notify_all()
            return
        act = parent.action(SIGCHLD)
        if (act.handler == SIG_IGN or act.flags & SA_NOCLDWAIT
                or (parent.zombie and pidns.is_ns_init(parent))):
            # auto-reaped (a dead namespace init's children too): not the
            # parent's children's usage
            self.reap(tg, account=False)
        elif 0 < tg.exit_signal <= 64:  # legacy clone takes 0-255; Linux sends only valid ones
            code, status = describe_status(tg.exit_status)
            self.send_group(parent, SigInfo(tg.exit_signal, code=code or CLD_EXITED,
                                            pid=pidns.vpid(parent.pidns, tg), status=status))
        self.child_exit.notify_all()

    def _ns_init_exited(self, tg: ThreadGroup) -> None:
        """A nested pid namespace's init is exiting (zap_pid_namespace): every
        other process in the namespace is killed, and its children stay its
        own, reaped as they die (those already dead now)."""
        for other in pidns.init_exiting(tg):
            self._kill_group(other, SIGKILL)
        for child in list(tg.children):
            if child.zombie:
                self.reap(child, account=False)

    def reap(self, tg: ThreadGroup, account: bool = True) -> None:
        """Remove a zombie for good (wait4 took it, or its parent ignores SIGCHLD:
        then, as on Linux, its usage is not added to the parent's children's)."""
        with self.lock:
            tg.reaped = True
            self.thread_groups.pop(tg.tgid, None)
            pidns.reaped(tg)
            if tg.parent is not None:
                if tg in tg.parent.children:
                    tg.parent.children.remove(tg)
                if not account:
                    return
                tg.parent.child_utime_ns += tg.utime_ns + tg.child_utime_ns
                tg.parent.child_stime_ns += tg.stime_ns + tg.child_stime_ns
                tg.parent.child_maxrss_kb = max(tg.parent.child_maxrss_kb, tg.maxrss_kb,
                                                tg.child_maxrss_kb)

    def shutdown(self) -> None:
        """Kill every task (the sandbox is ending)."""
        with self.lock:
            for tg in list(self.thread_groups.values()):
                self._kill_group(tg, SIGKILL)
