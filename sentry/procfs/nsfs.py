"""The files /proc/PID/ns/* open: one inode per namespace, for setns(2).

Linux's nsfs: each namespace is an inode (its number is the one the link
shows, "uts:[4026531838]"), opening the link gives a file that names the
namespace, and setns takes that file.  Here an open captures the namespace
object the process had at that moment (:class:`NsInode` ``target``), so the
file keeps naming it after the process moves on or exits, as on Linux.
These dentries belong to one hidden mount of one :class:`NsFs`, never
attached to any tree.
"""

from __future__ import annotations

import errno
import stat as _stat
import struct
import threading
from typing import TYPE_CHECKING, Any

from sentry.kernel import namespaces, pidns, timens
from sentry.kernel.errors import SyscallError
from sentry.vfs.dentry import Dentry
from sentry.vfs.description import RegularFileDescription
from sentry.vfs.file import FileDescription
from sentry.vfs.inode import Filesystem, Inode
from sentry.vfs.mount import Mount

if TYPE_CHECKING:
    from sentry.kernel.threadgroup import ThreadGroup

NSFS_MAGIC = 0x6E736673


class NsFs(Filesystem):
    """The pseudo-filesystem of namespace files."""

    name = "nsfs"
    magic = NSFS_MAGIC

    def __init__(self) -> None:
        super().__init__(source="nsfs")
        self.root = Inode(self, _stat.S_IFDIR | 0o555)


class NsInode(Inode):
    """One namespace as a file: ``kind`` (b"uts", ...) and the captured object
    (``target``; None: the sandbox's first namespace of that kind)."""

    def __init__(self, fs: NsFs, kind: bytes, target: Any, ino: int) -> None:
        super().__init__(fs, _stat.S_IFREG | 0o444, ino=ino)
        self.kind = kind
        self.target = target

    def open(self, flags: int) -> FileDescription:
        return NsFile(self, flags)


class NsFile(RegularFileDescription):
    """An open namespace file: ioctl_ns(2)'s queries (the rest as before)."""

    inode: NsInode

    def ioctl(self, cmd: int, arg: int, task: object) -> int:
        kind, target = self.inode.kind.split(b"_")[0], self.inode.target
        if cmd == NS_GET_NSTYPE:
            return NSTYPES[kind]
        if cmd == NS_GET_USERNS:
            return _open_user_ns(task, _owner(kind, target))
        if cmd == NS_GET_PARENT:
            if kind == b"pid":
                return _open_pid_parent(task, target)
            if kind != b"user":
                raise SyscallError(errno.EINVAL)  # not a hierarchical kind
            return _open_user_ns(task, _owner(kind, target))
        if cmd == NS_GET_OWNER_UID:
            if kind != b"user":
                raise SyscallError(errno.EINVAL)
            uid = 0 if target is None else target.owner_uid
            task.mm.copy_out(arg, struct.pack("<I", uid))  # type: ignore[attr-defined]
            return 0
        return super().ioctl(cmd, arg, task)


NSIO = 0xB7
NS_GET_USERNS, NS_GET_PARENT, NS_GET_NSTYPE, NS_GET_OWNER_UID = (
    NSIO << 8 | 1, NSIO << 8 | 2, NSIO << 8 | 3, NSIO << 8 | 4)
NSTYPES = {b"cgroup": 0x02000000, b"ipc": 0x08000000, b"mnt": 0x00020000,
           b"net": 0x40000000, b"pid": 0x20000000, b"time": 0x00000080,
           b"user": 0x10000000, b"uts": 0x04000000}
_ROOT_OWNER = object()  # "the parent of the sandbox's first user namespace": none


def _owner(kind: bytes, target: Any) -> Any:
    """The owning user namespace (a user namespace's parent; _ROOT_OWNER above
    the first one)."""
    if kind == b"user":
        return _ROOT_OWNER if target is None else target.parent
    return namespaces.owner_of(target)


def _open_user_ns(task: Any, userns: Any) -> int:
    """A new close-on-exec descriptor of user namespace ``userns`` (None: the
    first); EPERM for one outside the caller's own user namespace's subtree
    (the first one's owner among them), as Linux's open_related_ns."""
    mine = namespaces.nsset(task.tg).user
    if userns is _ROOT_OWNER:
        raise SyscallError(errno.EPERM)
    ns = userns
    while ns is not mine:
        if ns is None:
            raise SyscallError(errno.EPERM)
        ns = ns.parent
    return _install_ns_fd(task, b"user", userns)


def _install_ns_fd(task: Any, kind: bytes, ns: Any) -> int:
    """A new close-on-exec descriptor of namespace ``ns`` (an nsfs file named
    ``kind:[N]``), as the NS_GET_* ioctls return."""
    m = _nsfs_mount()
    ino = namespaces.number_of(kind, ns)
    inode = NsInode(m.fs, kind, ns, ino)  # type: ignore[arg-type]
    desc = inode.open(0)
    desc.dentry = Dentry(b"%s:[%d]" % (kind, ino), None, inode, m)  # type: ignore[attr-defined]
    return task.fds.install(desc, cloexec=True)


def _open_pid_parent(task: Any, ns: Any) -> int:
    """NS_GET_PARENT of a pid namespace: a descriptor of its parent, EPERM
    for the first one (no parent) or a parent outside the caller's own pid
    namespace's subtree (Linux's pidns_get_parent)."""
    parent = ns.parent if ns is not None else None
    if ns is None or not pidns.is_visible_from(parent, pidns.viewer(task)):
        raise SyscallError(errno.EPERM)
    return _install_ns_fd(task, b"pid", parent)


_lock = threading.Lock()
_mount: Mount | None = None


def _nsfs_mount() -> Mount:
    global _mount
    with _lock:
        if _mount is None:
            _mount = Mount(NsFs(), None, None, "nsfs")
        return _mount


def capture(tg: ThreadGroup, kind: bytes) -> Any:
    """The namespace object of ``kind`` that ``tg`` is in now."""
    s = namespaces.nsset(tg)
    if kind == b"mnt":
        return getattr(tg.fs, "ns", None)
    if kind == b"pid":
        return pidns.active(tg)
    if kind == b"pid_for_children":
        return pidns.for_children(tg)
    if kind == b"time":
        return timens.active(tg)
    if kind == b"time_for_children":
        return timens.for_children(tg)
    return {b"uts": s.uts, b"ipc": s.ipc, b"user": s.user, b"cgroup": s.cgroup}.get(kind)


def ns_dentry(tg: ThreadGroup, kind: bytes) -> Dentry:
    """What following /proc/PID/ns/<kind> reaches."""
    m = _nsfs_mount()
    ino = namespaces.inode_number(tg, kind)
    inode = NsInode(m.fs, kind, capture(tg, kind), ino)  # type: ignore[arg-type]
    return Dentry(b"%s:[%d]" % (kind.split(b"_")[0], ino), None, inode, m)
