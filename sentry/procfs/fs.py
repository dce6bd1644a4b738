"""ProcFilesystem: the filesystem object, /proc's root directory, /proc/self.

Construct it with the kernel and mount it like any Sentry filesystem::

    fs = ProcFilesystem(kernel)           # reads host cpuinfo/meminfo once
    mount = ns.mount(fs, resolve(ctx, b"/proc"), "proc")
    fs.attach(mount)                      # optional: lets procfs prune dentries

or in one call, ``mount_procfs(ns, at, kernel)``.

Why ``attach``: the VFS caches every dentry it looks up, and /proc/<pid>
names come and go with processes.  Stale entries cost memory only (every pid
inode re-checks its process, see nodes.py), so procfs forgets the cached
dentries of dead pids under the mounts it knows.  It learns its mounts from
``attach`` and also by itself, from the namespace of anyone who resolves
/proc/self or /proc/thread-self.

Lock order: dentry.TREE_LOCK -> ProcDir._lock.  ``Kernel.lock`` is not taken
under TREE_LOCK here: lookups read the pid tables with single dict operations.
"""

from __future__ import annotations

import errno
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING

from sentry.kernel.errors import SyscallError
from sentry.kernel.task import current_task
from sentry.procfs.hostinfo import HostInfo, host_info
from sentry.procfs.nodes import ProcDir, ProcessRef, ProcLink, random_uuid
from sentry.procfs.piddir import parse_number, pid_dir
from sentry.procfs.system import system_table
from sentry.vfs.dentry import TREE_LOCK
from sentry.vfs.inode import Filesystem, Inode, StatFs

if TYPE_CHECKING:
    from sentry.kernel.kernel import Kernel
    from sentry.vfs.dentry import Dentry
    from sentry.vfs.mount import Mount, MountNamespace
    from sentry.vfs.resolve import FsContext

PROC_SUPER_MAGIC = 0x9FA0


class ProcFilesystem(Filesystem):
    """/proc for one sandbox's kernel (fstype "proc")."""

    name = "proc"
    magic = PROC_SUPER_MAGIC

    def __init__(self, kernel: Kernel, *, host: HostInfo | None = None) -> None:
        # Not readonly at the filesystem level: a few files take writes
        # (comm, oom_score_adj); every other file refuses them itself.
        super().__init__(readonly=False, source="proc")
        self.kernel = kernel
        self.host = host if host is not None else host_info()
        self.boot_id = random_uuid()
        self._mounts: weakref.WeakSet[Mount] = weakref.WeakSet()
        self.root: RootDir = RootDir(self)

    def statfs(self) -> StatFs:
        return StatFs(type=self.magic, bsize=4096, fsid=self.dev)

    def options(self) -> str:
        return "rw,nosuid,nodev,noexec,relatime"

    # -- knowing our mounts (dentry pruning) ---------------------------------
    def attach(self, mount: Mount) -> None:
        """Tell procfs where it is mounted, so it can drop dead pids' dentries."""
        if mount.fs is self:
            self._mounts.add(mount)

    def note_namespace(self, ns: MountNamespace | None) -> None:
        """Learn every mount of this procfs in ``ns`` (mount(2) does not tell us)."""
        if ns is None:
            return
        for m in ns.all_mounts():
            if m.fs is self:
                self._mounts.add(m)

    def note_namespace_link(self, ctx: FsContext) -> Dentry | None:
        """follow_link of self and thread-self: learn the reader's procfs mounts,
        then answer None so the walk follows the link's text as usual."""
        self.note_namespace(ctx.ns)
        return None

    def forget_dead(self, is_live: Callable[[int], bool]) -> None:
        """Drop cached dentries of /proc/<n> for processes that are gone."""
        with TREE_LOCK:
            for m in list(self._mounts):
                root = m.root
                for name in list(root.children):
                    n = parse_number(name)
                    if n is not None and not is_live(n):
                        root.forget_child(name)


class RootDir(ProcDir):
    """/proc: the system files, self, thread-self, then one directory per process."""

    def __init__(self, fs: ProcFilesystem) -> None:
        super().__init__(fs)
        self.pfs = fs
        table = system_table(fs)
        table[b"self"] = lambda: ProcLink(fs, _self_target, fs.note_namespace_link)
        table[b"thread-self"] = lambda: ProcLink(fs, _thread_self_target,
                                                 fs.note_namespace_link)
        self.table = dict(sorted(table.items()))

    def _is_live(self, n: int) -> bool:
        k = self.pfs.kernel
        g = k.thread_groups.get(n)
        if g is None:
            t = k.tasks.get(n)
            g = t.tg if t is not None else None
        return g is not None and not g.reaped

    def listing(self) -> list[bytes]:
        k = self.pfs.kernel
        with k.lock:
            pids = sorted(g.tgid for g in k.thread_groups.values() if not g.reaped)
        self.pfs.forget_dead(self._is_live)
        return [*self.table, *(str(p).encode() for p in pids)]

    def exists(self, name: bytes) -> bool:
        if name in self.table:
            return True
        n = parse_number(name)
        return n is not None and self._is_live(n)

    def make(self, name: bytes) -> Inode:
        maker = self.table.get(name)
        if maker is not None:
            return maker()
        n = parse_number(name)
        if n is None:
            raise SyscallError(errno.ENOENT)
        return pid_dir(self.pfs, ProcessRef(self.pfs.kernel, n))

    def lookup(self, name: bytes) -> Inode:
        if name not in self.table:
            # A new pid is being looked up: a good moment to drop dead ones.
            self.pfs.forget_dead(self._is_live)
            with self._lock:
                for stale in [k for k in self._kids
                              if k not in self.table and not self._is_live(int(k))]:
                    del self._kids[stale]
        return super().lookup(name)


def _self_target() -> bytes:
    t = current_task()
    if t is None:
        raise SyscallError(errno.ENOENT)  # no process: the Sentry itself, or a test
    return str(t.tg.tgid).encode()


def _thread_self_target() -> bytes:
    t = current_task()
    if t is None:
        raise SyscallError(errno.ENOENT)
    return f"{t.tg.tgid}/task/{t.tid}".encode()


def mount_procfs(ns: MountNamespace, at: Dentry, kernel: Kernel,
                 host: HostInfo | None = None) -> Mount:
    """Mount a new procfs for ``kernel`` at directory ``at`` (as boot does)."""
    fs = ProcFilesystem(kernel, host=host)
    m = ns.mount(fs, at, "proc")
    fs.attach(m)
    return m
