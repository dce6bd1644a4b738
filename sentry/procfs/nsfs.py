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

import stat as _stat
import threading
from typing import TYPE_CHECKING, Any

from sentry.kernel import namespaces
from sentry.vfs.dentry import Dentry
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
    return {b"uts": s.uts, b"ipc": s.ipc, b"user": s.user, b"cgroup": s.cgroup}.get(kind)


def ns_dentry(tg: ThreadGroup, kind: bytes) -> Dentry:
    """What following /proc/PID/ns/<kind> reaches."""
    m = _nsfs_mount()
    ino = namespaces.inode_number(tg, kind)
    inode = NsInode(m.fs, kind, capture(tg, kind), ino)  # type: ignore[arg-type]
    return Dentry(b"%s:[%d]" % (kind.split(b"_")[0], ino), None, inode, m)
