"""PID namespaces (pid_namespaces(7)): the ids a process has at each level.

Every task keeps its sandbox-wide id (``Task.tid``, ``ThreadGroup.tgid``):
that is its pid in the sandbox's first pid namespace, which is ``None``
here, and every kernel table (``Kernel.tasks``, ``Kernel.thread_groups``,
/proc) is keyed by it.  A process made in a nested namespace also gets a
local id in that namespace and in each one between it and the first
(Linux's ``struct pid`` numbers); :class:`PidNamespace` maps those both
ways.  Syscalls translate at the boundary: what a caller passes or is told
is a pid in its own active namespace (``ThreadGroup.pidns``), so
:func:`vpid` / :func:`find_tg` and friends are the only conversions.

Linux's rules kept here:

* the first process made in a namespace is its init (pid 1) and the reaper
  of orphans inside it; when it exits, every other process of the namespace
  is killed (SIGKILL) and no process can be made in it any more (ENOMEM);
* a process sees the processes of its namespace and of the namespaces below
  it, never those above: a parent outside shows as pid 0 (getppid);
* unshare(CLONE_NEWPID) and setns() change only the namespace the caller's
  next children go to (/proc/PID/ns/pid_for_children), never the caller's.

The lock is ``Kernel.lock`` (callers that change the tables hold it).
"""

from __future__ import annotations

import errno
import weakref
from typing import TYPE_CHECKING, Any

from sentry.kernel.errors import SyscallError

if TYPE_CHECKING:
    from sentry.kernel.kernel import Kernel
    from sentry.kernel.task import Task
    from sentry.kernel.threadgroup import ThreadGroup

MAX_LEVEL = 32  # Linux's MAX_PID_NS_LEVEL: a deeper namespace is ENOSPC


class PidNamespace:
    """A pid namespace below the sandbox's first: local ids both ways."""

    def __init__(self, parent: PidNamespace | None, owner: Any = None) -> None:
        self.parent = parent
        self.owner = owner  # the user namespace it was made in (None: the first)
        self.level = 1 if parent is None else parent.level + 1
        self.tgs: dict[int, ThreadGroup] = {}
        self.tasks: dict[int, Task] = {}
        # Object -> id stays after the id is freed (weakly held), so what a
        # reaped child's pid was can still be told (wait4 returns it).
        self.tg_ids: weakref.WeakKeyDictionary[ThreadGroup, int] = weakref.WeakKeyDictionary()
        self.task_ids: weakref.WeakKeyDictionary[Task, int] = weakref.WeakKeyDictionary()
        self.init: ThreadGroup | None = None
        self.dead = False  # its init has exited: no new process may enter
        self._next = 1

    def alloc(self, pid_max: int, want: int = 0) -> int:
        """A free local id (``want``: that one, EEXIST when taken); ids wrap
        to 2 as Linux's (1 is the init's for good)."""
        if want:
            if want in self.tasks or want in self.tgs:
                raise SyscallError(errno.EEXIST)
            return want
        for _ in range(pid_max):
            pid = self._next
            self._next = pid + 1 if pid + 1 < pid_max else 2
            if pid not in self.tasks and pid not in self.tgs:
                return pid
        raise SyscallError(errno.EAGAIN)


def chain(ns: PidNamespace | None) -> list[PidNamespace]:
    """``ns`` and its ancestors, the sandbox's first (None) left out."""
    out = []
    while ns is not None:
        out.append(ns)
        ns = ns.parent
    return out


def active(tg: ThreadGroup) -> PidNamespace | None:
    """The namespace ``tg`` is in (None: the sandbox's first)."""
    return getattr(tg, "pidns", None)


def for_children(tg: ThreadGroup) -> PidNamespace | None:
    """Where ``tg``'s next children go (/proc/PID/ns/pid_for_children)."""
    s = getattr(tg, "namespaces", None)
    nxt = getattr(s, "pid_children", None) if s is not None else None
    return nxt if nxt is not None else active(tg)


def is_visible_from(ns: PidNamespace | None, viewer: PidNamespace | None) -> bool:
    """Whether ``ns`` is ``viewer`` or below it."""
    while True:
        if ns is viewer:
            return True
        if ns is None:
            return False
        ns = ns.parent


def vpid(ns: PidNamespace | None, tg: ThreadGroup | None) -> int:
    """``tg``'s pid as seen from ``ns`` (0: not visible there)."""
    if tg is None:
        return 0
    if ns is None:
        return tg.tgid
    return ns.tg_ids.get(tg, 0)


def vtid(ns: PidNamespace | None, task: Task) -> int:
    """``task``'s thread id as seen from ``ns`` (0: not visible there)."""
    if ns is None:
        return task.tid
    return ns.task_ids.get(task, 0)


def vpgid(ns: PidNamespace | None, kernel: Kernel, pgid: int) -> int:
    """A process group or session id (a sandbox-wide id) as seen from ``ns``:
    its leader's id there, 0 when the leader is not visible (Linux's
    pid_vnr of a pid the namespace has no number for)."""
    if ns is None or not pgid:
        return pgid
    leader = kernel.thread_groups.get(pgid)
    if leader is not None:
        return vpid(ns, leader)
    t = kernel.tasks.get(pgid)
    return vtid(ns, t) if t is not None else 0


def global_pgid(ns: PidNamespace | None, kernel: Kernel, pgid: int) -> int:
    """The sandbox-wide id of process group ``pgid`` named from ``ns`` (-1: none)."""
    if ns is None:
        return pgid
    g = ns.tgs.get(pgid)
    return g.tgid if g is not None else -1


def find_tg(kernel: Kernel, ns: PidNamespace | None, pid: int) -> ThreadGroup | None:
    """The process whose pid in ``ns`` is ``pid``."""
    if ns is None:
        return kernel.thread_groups.get(pid)
    return ns.tgs.get(pid)


def find_task(kernel: Kernel, ns: PidNamespace | None, tid: int) -> Task | None:
    """The thread whose id in ``ns`` is ``tid``."""
    if ns is None:
        return kernel.tasks.get(tid)
    return ns.tasks.get(tid)


def visible_tgs(kernel: Kernel, ns: PidNamespace | None) -> list[ThreadGroup]:
    """Every process ``ns`` can name."""
    if ns is None:
        return list(kernel.thread_groups.values())
    return list(ns.tgs.values())


def check_unshared(tg: ThreadGroup) -> None:
    """EINVAL when ``tg`` already chose another namespace for its children
    (Linux's copy_pid_ns: a second unshare(CLONE_NEWPID), or clone with
    CLONE_NEWPID after one)."""
    if for_children(tg) is not active(tg):
        raise SyscallError(errno.EINVAL)


def check_set_tid(tids: list[int], ns: PidNamespace | None, caller_userns: Any,
                  capable: bool) -> None:
    """clone3's set_tid (the innermost level's id first): each id asked for
    needs CAP_CHECKPOINT_RESTORE or CAP_SYS_ADMIN (``capable``) in the user
    namespace owning that level's pid namespace, which the caller has only
    when that user namespace is its own or one below it (alloc_pid's
    checkpoint_restore_ns_capable): else EPERM."""
    levels: list[PidNamespace | None] = list(chain(ns))
    levels.append(None)
    for want, level in zip(tids, levels, strict=False):
        if not want:
            continue
        owner = level.owner if level is not None else None
        if not capable or not _covers(caller_userns, owner):
            raise SyscallError(errno.EPERM)


def _covers(mine: Any, owner: Any) -> bool:
    """Whether user namespace ``owner`` is ``mine`` or below it (None: the first)."""
    while True:
        if owner is mine:
            return True
        if owner is None:
            return False
        owner = owner.parent


def new_child_ns(parent: PidNamespace | None, owner: Any = None) -> PidNamespace:
    """A namespace below ``parent`` (ENOSPC past Linux's 32 levels), made
    in user namespace ``owner``."""
    ns = PidNamespace(parent, owner)
    if ns.level > MAX_LEVEL:
        raise SyscallError(errno.ENOSPC)
    return ns


def enter(kernel: Kernel, tg: ThreadGroup, task: Task, ns: PidNamespace | None,
          want: list[int] | None = None) -> None:
    """Give a new process (``tg`` with its first thread ``task``) ids in
    ``ns`` and each namespace above it (``want``: clone3's set_tid, the
    innermost first, past the sandbox-wide id).  Under ``Kernel.lock``;
    ENOMEM when ``ns``'s init has exited."""
    tg.pidns = ns  # type: ignore[attr-defined]
    levels = chain(ns)
    if ns is not None and ns.dead:
        raise SyscallError(errno.ENOMEM)
    want = want or []
    got: list[tuple[PidNamespace, int]] = []
    try:
        for i, level in enumerate(levels):  # a new namespace's first id is 1: its init
            pid = level.alloc(kernel.sysctl.pid_max, want[i] if i < len(want) else 0)
            level.tgs[pid] = tg
            level.tasks[pid] = task
            got.append((level, pid))
    except SyscallError:
        for level, pid in got:
            level.tgs.pop(pid, None)
            level.tasks.pop(pid, None)
        raise
    for level, pid in got:
        level.tg_ids[tg] = pid
        level.task_ids[task] = pid
    if ns is not None and ns.init is None:
        ns.init = tg


def enter_thread(kernel: Kernel, task: Task) -> None:
    """A new thread's ids in its process's namespaces (under ``Kernel.lock``)."""
    for level in chain(active(task.tg)):
        tid = level.alloc(kernel.sysctl.pid_max)
        level.tasks[tid] = task
        level.task_ids[task] = tid


def task_gone(task: Task) -> None:
    """A thread other than a process's leader is gone: its ids are free.
    (A leader's id lasts as long as its process, zombie included.)"""
    for level in chain(active(task.tg)):
        tid = level.task_ids.get(task)
        if tid is not None and level.tgs.get(tid) is not task.tg \
                and level.tasks.get(tid) is task:
            level.tasks.pop(tid, None)


def reaped(tg: ThreadGroup) -> None:
    """A process is gone for good: its ids and its threads' are free."""
    for level in chain(active(tg)):
        pid = level.tg_ids.get(tg)
        if pid is not None and level.tgs.get(pid) is tg:
            level.tgs.pop(pid, None)
        for t in tg.tasks:
            tid = level.task_ids.get(t)
            if tid is not None and level.tasks.get(tid) is t:
                level.tasks.pop(tid, None)


def init_of(tg: ThreadGroup, fallback: ThreadGroup | None) -> ThreadGroup | None:
    """The reaper of ``tg``'s orphans: its namespace's init (``fallback``,
    the sandbox's init, for the first namespace)."""
    ns = active(tg)
    return fallback if ns is None else ns.init


def is_ns_init(tg: ThreadGroup) -> bool:
    """Whether ``tg`` is the init of a nested namespace."""
    ns = active(tg)
    return ns is not None and ns.init is tg


def init_exiting(tg: ThreadGroup) -> list[ThreadGroup]:
    """``tg``, a nested namespace's init, is exiting: the namespace takes no
    new process, and every other process in it (or below) is to be killed."""
    ns = active(tg)
    assert ns is not None
    ns.dead = True
    return [g for g in ns.tgs.values() if g is not tg and not g.zombie]


def levels_of(tg: ThreadGroup) -> list[int]:
    """``tg``'s pid at each level, the sandbox's first namespace first (NSpid)."""
    return [tg.tgid] + [ns.tg_ids.get(tg, 0) for ns in reversed(chain(active(tg)))]


def levels_of_task(task: Task) -> list[int]:
    """The same for a thread id."""
    return [task.tid] + [ns.task_ids.get(task, 0)
                         for ns in reversed(chain(active(task.tg)))]


def last_pid(kernel: Kernel, ns: PidNamespace | None) -> int:
    """/proc/sys/kernel/ns_last_pid: the id handed out last in ``ns``."""
    if ns is None:
        return kernel._next_pid - 1
    return ns._next - 1


def set_last_pid(kernel: Kernel, ns: PidNamespace | None, value: int) -> None:
    """Writing ns_last_pid: the next id ``ns`` hands out is ``value`` + 1
    (if free), as checkpoint/restore tools use it."""
    with kernel.lock:
        if ns is None:
            kernel._next_pid = value + 1
        else:
            ns._next = value + 1


def group_levels(kernel: Kernel, tg: ThreadGroup, pgid: int) -> list[int]:
    """A process group or session id of ``tg`` at each of its levels (NSpgid)."""
    return [pgid] + [vpgid(ns, kernel, pgid) for ns in reversed(chain(active(tg)))]


def viewer(t: Any) -> PidNamespace | None:
    """The namespace a calling task names processes in."""
    return active(t.tg)
