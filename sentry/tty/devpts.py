"""devpts: /dev/pts with its ptmx, and the tty (5:0) and ptmx (5:2) drivers.

Opening ptmx allocates the lowest free index N, makes /dev/pts/N appear
(mode 0620, the opener's uid, group tty (5), as Docker and runc mount it) and
returns the master; the pair starts locked (unlockpt: TIOCSPTLCK 0) and the
entry disappears when the master is closed.  /dev/ptmx in devtmpfs (5:2)
opens the sandbox's current devpts (the one mounted last: the boot one, or
the one an OCI bundle mounts), as /dev/ptmx does on Linux for the initial
instance; devpts's own ptmx node opens its own instance.  /dev/tty (5:0)
opens the caller's controlling terminal again, or fails with ENXIO.

Entry points: :func:`mount_devpts` (boot, OCI mounts), :func:`install_drivers`.
"""

from __future__ import annotations

import errno
import os
import threading
import weakref
from typing import TYPE_CHECKING

from sentry.kernel.errors import SyscallError
from sentry.kernel.task import current_task
from sentry.tty.files import MasterFile, ReplicaFile, open_replica
from sentry.tty.terminal import Terminal
from sentry.vfs.dentry import TREE_LOCK
from sentry.vfs.file import FileDescription
from sentry.vfs.inode import DEVICES, DT_CHR, S_IFCHR, S_IFDIR, DeviceRegistry, Filesystem, Inode

if TYPE_CHECKING:
    from sentry.vfs.dentry import Dentry
    from sentry.vfs.mount import Mount, MountNamespace

DEVPTS_SUPER_MAGIC = 0x1CD1
PTY_REPLICA_MAJOR = 136
TTYAUX_MAJOR, TTY_MINOR, PTMX_MINOR = 5, 0, 2
TTY_GID = 5
MAX_PTYS = 4096
O_NOCTTY = 0o400

_default: DevPtsFs | None = None
_default_lock = threading.Lock()


class _PtmxNode(Inode):
    """devpts's own ptmx node: opens a new pair of this instance."""

    def open(self, flags: int) -> FileDescription:
        fs = self.fs
        assert isinstance(fs, DevPtsFs)
        return fs.open_master(self, flags)


class _ReplicaNode(Inode):
    """/dev/pts/N: opens the replica of pair N while its master lives."""

    def __init__(self, fs: DevPtsFs, term: Terminal, uid: int) -> None:
        super().__init__(fs, S_IFCHR | 0o620, uid=uid, gid=TTY_GID,
                         rdev=os.makedev(PTY_REPLICA_MAJOR, term.index))
        self.term = term

    def open(self, flags: int) -> FileDescription:
        return open_replica(self.term, flags, self)


class _PtsRoot(Inode):
    """The devpts root: "ptmx" and one entry per live pair."""

    def lookup(self, name: bytes) -> Inode:
        fs = self.fs
        assert isinstance(fs, DevPtsFs)
        if name == b"ptmx":
            return fs.ptmx
        if name.isdigit() and (len(name) == 1 or name[0] != ord("0")):
            with fs.lock:
                term = fs.terms.get(int(name))
            if term is not None and term.replica_inode is not None:
                return term.replica_inode
        raise SyscallError(errno.ENOENT)

    def iterdir(self) -> list[tuple[bytes, int, int]]:
        fs = self.fs
        assert isinstance(fs, DevPtsFs)
        with fs.lock:
            terms = sorted(fs.terms.items())
        out = [(b"ptmx", fs.ptmx.ino, DT_CHR)]
        out += [(b"%d" % i, tm.replica_inode.ino, DT_CHR) for i, tm in terms
                if tm.replica_inode is not None]
        return out


class DevPtsFs(Filesystem):
    """One devpts instance: its pairs, numbered from 0."""

    name = "devpts"
    magic = DEVPTS_SUPER_MAGIC

    def __init__(self) -> None:
        super().__init__(source="devpts")
        self.lock = threading.Lock()
        self.terms: dict[int, Terminal] = {}
        self.root = _PtsRoot(self, S_IFDIR | 0o755)
        self.ptmx = _PtmxNode(self, S_IFCHR | 0o666, rdev=os.makedev(TTYAUX_MAJOR, PTMX_MINOR))
        self._mounts: weakref.WeakSet[Mount] = weakref.WeakSet()

    def options(self) -> str:
        return "rw,nosuid,noexec,relatime,gid=5,mode=620,ptmxmode=666"

    def attach(self, mount: Mount) -> None:
        """Remember a mount of this instance (to drop a closed pair's dentries)."""
        self._mounts.add(mount)

    def new_terminal(self, uid: int = 0) -> Terminal:
        """Allocate the lowest free index; /dev/pts/N exists from now on."""
        with self.lock:
            index = next((i for i in range(MAX_PTYS) if i not in self.terms), None)
            if index is None:
                raise SyscallError(errno.ENOSPC)
            term = Terminal(index, on_gone=self._remove)
            term.replica_inode = _ReplicaNode(self, term, uid)
            term.master_inode = self.ptmx
            self.terms[index] = term
        return term

    def open_master(self, node: Inode, flags: int) -> MasterFile:
        """open(2) of a ptmx node: a new pair, its master returned."""
        task = current_task()
        uid = task.creds.fsuid if task is not None else 0
        term = self.new_terminal(uid)
        if task is not None:
            term.kernel = task.kernel
        term.master_inode = node
        return MasterFile(term, flags, node)

    def _remove(self, term: Terminal) -> None:
        with self.lock:
            if self.terms.get(term.index) is term:
                del self.terms[term.index]
        name = b"%d" % term.index
        with TREE_LOCK:
            for m in list(self._mounts):
                d = m.root.cached_child(name)
                if d is not None and d.inode is term.replica_inode:
                    m.root.drop_child(name)


def default_devpts() -> DevPtsFs | None:
    """The instance /dev/ptmx (5:2) opens."""
    return _default


def _open_ptmx(inode: Inode, flags: int) -> FileDescription:
    fs = _default
    if fs is None:
        raise SyscallError(errno.ENXIO)
    return fs.open_master(inode, flags)


def _open_tty(inode: Inode, flags: int) -> FileDescription:
    """/dev/tty: the caller's controlling terminal, a new open file of it."""
    task = current_task()
    term = task.tg.tty if task is not None else None
    if term is None:
        raise SyscallError(errno.ENXIO)
    if term.hung_up:
        raise SyscallError(errno.EIO)
    return ReplicaFile(term, flags | O_NOCTTY, inode)


def install_drivers(registry: DeviceRegistry = DEVICES) -> None:
    """Register the tty (5:0) and ptmx (5:2) drivers in ``registry``."""
    registry.register(TTYAUX_MAJOR, TTY_MINOR, _open_tty)
    registry.register(TTYAUX_MAJOR, PTMX_MINOR, _open_ptmx)


def mount_devpts(ns: MountNamespace, at: Dentry, *, options: str | None = None,
                 make_default: bool = True) -> Mount:
    """Mount a new devpts instance at ``at`` (boot: /dev/pts; OCI: where the
    bundle asks).  It becomes the instance /dev/ptmx opens unless
    ``make_default`` is false."""
    global _default
    install_drivers()
    fs = DevPtsFs()
    m = ns.mount(fs, at, "devpts", options)
    fs.attach(m)
    if make_default:
        with _default_lock:
            _default = fs
    return m
