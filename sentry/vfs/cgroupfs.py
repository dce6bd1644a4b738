"""The sandbox's cgroup v2 hierarchy (fstype ``cgroup2``), as gVisor's
cgroupfs gives a container one: groups made with mkdir, processes moved by
writing cgroup.procs, children born in their parent's group (or the one
clone3's CLONE_INTO_CGROUP names).

What a group holds is Linux's core interface (cgroup-v2.rst): cgroup.procs,
cgroup.threads, cgroup.controllers, cgroup.subtree_control, cgroup.stat,
cgroup.max.depth, cgroup.max.descendants, and below the root cgroup.type,
cgroup.events and cgroup.kill.  No controller is modelled (no resource is
limited here, so none is offered: cgroup.controllers is empty and enabling
one in cgroup.subtree_control is ENOENT, Linux's answer for a controller
the group does not have).  Every cgroup2 mount shows the same hierarchy,
one per sandbox (``Kernel``), as Linux's.  A group with processes or
child groups cannot be removed (EBUSY).
"""

from __future__ import annotations

import errno
import stat as _stat
import threading
import weakref
from typing import TYPE_CHECKING, Any

from sentry.kernel import pidns
from sentry.kernel.errors import SyscallError
from sentry.kernel.task import current_task
from sentry.procfs.nodes import ProcDir, ProcFile
from sentry.vfs.inode import Filesystem, Inode, StatFs

if TYPE_CHECKING:
    from sentry.kernel.kernel import Kernel
    from sentry.kernel.threadgroup import ThreadGroup

CGROUP2_SUPER_MAGIC = 0x63677270
KNOWN_CONTROLLERS = frozenset({"cpuset", "cpu", "io", "memory", "hugetlb", "pids", "rdma",
                               "misc"})
SIGKILL = 9


class Cgroup:
    """One group: its children by name and (weakly) its processes."""

    def __init__(self, hierarchy: Hierarchy, parent: Cgroup | None, name: bytes) -> None:
        self.hierarchy = hierarchy
        self.parent = parent
        self.name = name
        self.children: dict[bytes, Cgroup] = {}
        self.removed = False

    def path(self) -> bytes:
        parts = []
        g: Cgroup | None = self
        while g is not None and g.parent is not None:
            parts.append(g.name)
            g = g.parent
        return b"/" + b"/".join(reversed(parts))

    def depth(self) -> int:
        return 0 if self.parent is None else self.parent.depth() + 1

    def members(self) -> list[ThreadGroup]:
        """Its live processes (a zombie has left its group)."""
        h = self.hierarchy
        return [tg for tg, g in list(h.member_of.items())
                if g is self and not tg.zombie and not tg.reaped]

    def descendants(self) -> list[Cgroup]:
        out = []
        for c in self.children.values():
            out.append(c)
            out.extend(c.descendants())
        return out


class Hierarchy:
    """The sandbox's one cgroup v2 tree and which group each process is in
    (absent: the root)."""

    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel
        self.root = Cgroup(self, None, b"")
        self.member_of: weakref.WeakKeyDictionary[ThreadGroup, Cgroup] = \
            weakref.WeakKeyDictionary()
        self.lock = threading.RLock()

    def group_of(self, tg: ThreadGroup) -> Cgroup:
        return self.member_of.get(tg, self.root)

    def move(self, tg: ThreadGroup, group: Cgroup) -> None:
        with self.lock:
            if group.removed:
                raise SyscallError(errno.ENOENT)
            self.member_of[tg] = group


_lock = threading.Lock()


def hierarchy_of(kernel: Kernel) -> Hierarchy:
    """The sandbox's hierarchy (kept on its Kernel), made when first needed."""
    with _lock:
        h = getattr(kernel, "cgroup2", None)
        if h is None:
            h = Hierarchy(kernel)
            kernel.cgroup2 = h  # type: ignore[attr-defined]
        return h


def on_fork(kernel: Kernel, parent: ThreadGroup, child: ThreadGroup,
            into: Cgroup | None = None) -> None:
    """A new process is in its parent's group, or ``into`` (CLONE_INTO_CGROUP)."""
    h = getattr(kernel, "cgroup2", None)
    if h is None:
        return  # no cgroup2 was ever mounted: everyone is in the root
    with h.lock:
        group = into if into is not None else h.member_of.get(parent)
        if group is not None:
            h.member_of[child] = group


class Cgroup2Fs(Filesystem):
    """A mount of the sandbox's cgroup v2 hierarchy."""

    name = "cgroup2"
    magic = CGROUP2_SUPER_MAGIC

    def __init__(self, kernel: Kernel) -> None:
        super().__init__(source="cgroup2")
        self.hierarchy = hierarchy_of(kernel)
        self.root = CgroupDir(self, self.hierarchy.root)

    def statfs(self) -> StatFs:
        return StatFs(type=self.magic, bsize=4096, fsid=self.dev)

    def options(self) -> str:
        return "rw,nosuid,nodev,noexec,relatime"


def _viewer() -> Any:
    t = current_task()
    return pidns.viewer(t) if t is not None else None


class CgroupDir(ProcDir):
    """One group's directory: its interface files and its child groups."""

    def __init__(self, fs: Cgroup2Fs, group: Cgroup) -> None:
        super().__init__(fs, mode=0o755)
        self.cfs = fs
        self.group = group

    def _files(self) -> dict[bytes, tuple[Any, Any]]:
        g = self.group
        files: dict[bytes, tuple[Any, Any]] = {
            # Linux ends the list with a newline only when it is not empty
            b"cgroup.controllers": (lambda: b"", None),
            b"cgroup.max.depth": (lambda: b"max\n", _ignore),
            b"cgroup.max.descendants": (lambda: b"max\n", _ignore),
            b"cgroup.procs": (lambda: self._procs(threads=False), self._write_procs),
            b"cgroup.stat": (lambda: b"nr_descendants %d\nnr_dying_descendants 0\n"
                             % len(g.descendants()), None),
            b"cgroup.subtree_control": (lambda: b"", _subtree_control),
            b"cgroup.threads": (lambda: self._procs(threads=True), self._write_procs),
        }
        if g.parent is not None:
            files[b"cgroup.events"] = (lambda: b"populated %d\nfrozen 0\n" % self._populated(),
                                       None)
            files[b"cgroup.kill"] = (None, self._kill)
            files[b"cgroup.type"] = (lambda: b"domain\n", None)
        return files

    def listing(self) -> list[bytes]:
        with self.cfs.hierarchy.lock:
            kids = sorted(self.group.children)
        return sorted(self._files()) + kids

    def exists(self, name: bytes) -> bool:
        return name in self._files() or name in self.group.children

    def make(self, name: bytes) -> Inode:
        files = self._files()
        if name in files:
            gen, writer = files[name]
            mode = (0o444 if gen is not None else 0) | (0o200 if writer is not None else 0)
            return ProcFile(self.cfs, gen or (lambda: b""), mode=mode, writer=writer)
        child = self.group.children.get(name)
        if child is None:
            raise SyscallError(errno.ENOENT)
        return CgroupDir(self.cfs, child)

    def alive(self) -> None:  # type: ignore[override]
        if self.group.removed:
            raise SyscallError(errno.ENOENT)

    # -- the interface files ---------------------------------------------
    def _procs(self, threads: bool) -> bytes:
        ns = _viewer()
        ids: list[int] = []
        for tg in self.group.members():
            if threads:
                ids += [pidns.vtid(ns, t) for t in tg.live_tasks()]
            else:
                ids.append(pidns.vpid(ns, tg))
        return b"".join(b"%d\n" % i for i in sorted(i for i in ids if i))

    def _write_procs(self, data: bytes) -> None:
        """A pid (0: the writer) moves that process, all its threads, here."""
        t = current_task()
        try:
            pid = int(data.strip())
        except ValueError:
            raise SyscallError(errno.EINVAL) from None
        if t is None or pid < 0:
            raise SyscallError(errno.EINVAL)
        k = self.cfs.hierarchy.kernel
        with k.lock:
            tg = t.tg if pid == 0 else pidns.find_tg(k, pidns.viewer(t), pid)
            if tg is None:
                task = pidns.find_task(k, pidns.viewer(t), pid)
                tg = task.tg if task is not None else None
        if tg is None or tg.zombie:
            raise SyscallError(errno.ESRCH)
        self.cfs.hierarchy.move(tg, self.group)

    def _populated(self) -> int:
        return int(any(g.members() for g in [self.group, *self.group.descendants()]))

    def _kill(self, data: bytes) -> None:
        """cgroup.kill: "1" kills every process in the group and below."""
        if data.strip() != b"1":
            raise SyscallError(errno.ERANGE)
        k = self.cfs.hierarchy.kernel
        with k.lock:
            for g in [self.group, *self.group.descendants()]:
                for tg in g.members():
                    k._kill_group(tg, SIGKILL)

    # -- groups ------------------------------------------------------------
    def mkdir(self, name: bytes, mode: int, uid: int, gid: int) -> Inode:
        h = self.cfs.hierarchy
        with h.lock:
            if self.group.removed:
                raise SyscallError(errno.ENOENT)
            if name in self.group.children or name in self._files():
                raise SyscallError(errno.EEXIST)
            self.group.children[name] = Cgroup(h, self.group, name)
        return self.lookup(name)

    def rmdir(self, name: bytes) -> None:
        h = self.cfs.hierarchy
        with h.lock:
            child = self.group.children.get(name)
            if child is None:
                raise SyscallError(errno.ENOTDIR if name in self._files() else errno.ENOENT)
            if child.children or child.members():
                raise SyscallError(errno.EBUSY)
            child.removed = True
            del self.group.children[name]
        with self._lock:
            self._kids.pop(name, None)

    def create(self, name: bytes, mode: int, uid: int, gid: int) -> Inode:
        raise SyscallError(errno.EPERM)

    def unlink(self, name: bytes) -> None:
        raise SyscallError(errno.EPERM)


def _ignore(data: bytes) -> None:
    """A limit this hierarchy does not enforce ("max" only)."""
    if data.strip() != b"max":
        try:
            int(data.strip())
        except ValueError:
            raise SyscallError(errno.EINVAL) from None


def _subtree_control(data: bytes) -> None:
    """"+name"/"-name": no controller is offered, so enabling one is ENOENT
    (an unknown name EINVAL); disabling one that is not enabled is fine."""
    for tok in data.split():
        word = tok.decode("ascii", "replace")
        if word[:1] not in "+-" or word[1:] not in KNOWN_CONTROLLERS:
            raise SyscallError(errno.EINVAL)
        if word[0] == "+":
            raise SyscallError(errno.ENOENT)


def group_of_dir(inode: Inode) -> Cgroup | None:
    """The group a cgroup2 directory inode is (CLONE_INTO_CGROUP), or None."""
    if isinstance(inode, CgroupDir) and _stat.S_ISDIR(inode.mode):
        return inode.group
    return None
