"""Dentries: the names of inodes within one mount.

A dentry is (mount, parent, name, inode).  Each mount has its own tree of
dentries starting at its root dentry (whose ``parent`` is None), so the same
filesystem mounted twice gives two trees over shared inodes, and "which mount
am I in" is a field, never a search.  Children found by a lookup are cached, so
a path is looked up in its filesystem once (for the gofer-backed root: one 9P
walk per path); the VFS keeps the cache right on create, unlink and rename, the
only ways names change (the gofer root is read-only, so no one else changes it).

The cache is bounded where a cached name costs something outside the Sentry,
as Linux's dcache and gVisor's gofer filesystem (maxCachedDentries) bound
theirs.  A filesystem whose class sets ``evictable`` (the Gofer-backed ones,
where every cached inode holds Gofer fids, and the overlay above them) gets
directories whose ``children`` is a *weak* map, and every dentry looked up or
created there is put at the young end of one bounded LRU of strong references
(:data:`DENTRY_LRU`, :data:`MAX_CACHED_DENTRIES`).  A dentry therefore lives as
long as anything holds it:

* an open file description (``desc.dentry``), a task's cwd or root, a mount
  (its root and its mountpoint), a procfs link, a running exec;
* a live descendant (``parent`` is a strong reference, so a referenced file
  keeps its whole path);
* or the LRU, for the most recently used names.

Once none does, Python's reference counting frees it at once (no cycles: a
parent never holds its children strongly), its weak entry vanishes from its
parent's map and the inodes below it go the same way; a Gofer inode then hands
its fids to the client to be clunked (goferfs.py).  Weak references were chosen
over explicit reference counts because every holder above (fd tables, forked
FsContexts, exec, procfs) already holds a plain reference: the interpreter
counts them exactly, with no get/put to forget on some error path.  A name is
never cached twice: while a dentry is alive its weak entry is there, so a
second lookup finds the same object (and the same open fifo, the same
``dead`` flag); once gone, it is rebuilt from the filesystem, which keeps
everything that exists only in the Sentry (tmpfs and overlay upper files,
whiteouts, inode numbers) in its own strong structures.
Other filesystems (tmpfs, procfs, devfs...) keep plain dicts: their names
cost Sentry memory only and they forget them themselves.

Lock order (outermost first):
  TREE_LOCK (this module: the dentry trees and the mount table)
  -> a filesystem's own locks (overlay copy-up lock, tmpfs lock)
  -> an inode's data lock
  -> pipe conditions.
TREE_LOCK is an RLock held by the VFS across "resolve the parent, check, change
the name", which makes rename and create atomic against each other; it is never
held while a file description blocks (opening a fifo, reading a pipe).  It also
guards the LRU.  Freeing a dentry (when the LRU drops it, or when its last
holder lets go, under any lock) runs no code that takes a lock: weak-map entry
removal and a Gofer inode's finalizer, which only queues its fids.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import MutableMapping
from typing import TYPE_CHECKING

from sentry.vfs.inode import Inode

if TYPE_CHECKING:
    from sentry.vfs.mount import Mount

TREE_LOCK = threading.RLock()

MAX_CACHED_DENTRIES = 4096
"""Recently used names of evictable filesystems kept beyond those held
(gVisor's default is 1000).  Each keeps at most one Gofer fid of a regular
file (two host descriptors in the Gofer) or a directory's walk fid, well under
the Gofer's MAX_FIDS (16384) and its descriptor limit."""


class DentryLru:
    """The most recently used dentries of evictable filesystems, by strong
    reference; the oldest is dropped past ``limit`` (TREE_LOCK held)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._order: OrderedDict[Dentry, None] = OrderedDict()

    def __len__(self) -> int:
        return len(self._order)

    def touch(self, d: Dentry) -> None:
        order = self._order
        try:
            order.move_to_end(d)
        except KeyError:
            order[d] = None
            while len(order) > self.limit:
                order.popitem(last=False)

    def clear(self) -> None:
        self._order.clear()


DENTRY_LRU = DentryLru(MAX_CACHED_DENTRIES)


def child_map(weak: bool) -> MutableMapping[bytes, object]:
    """A directory's name -> child map: weak (entries vanish with their value)
    for evictable filesystems, a plain dict otherwise (goferfs and overlay use
    it for their inode caches too)."""
    return weakref.WeakValueDictionary() if weak else {}


class Dentry:
    """A name for an inode in one mount's tree."""

    __slots__ = ("name", "parent", "inode", "mount", "children", "mounted", "dead", "evictable",
                 "__weakref__")

    def __init__(self, name: bytes, parent: Dentry | None, inode: Inode, mount: Mount) -> None:
        self.name = name
        self.parent = parent
        self.inode = inode
        self.mount = mount
        # Evictable: this dentry's children are held weakly and kept by the LRU.
        self.evictable: bool = getattr(mount.fs, "evictable", False)
        self.children: MutableMapping[bytes, Dentry] = (
            child_map(True) if self.evictable and inode.is_dir() else {})  # type: ignore[assignment]
        # The mount stacked on this dentry (its root hides this directory).
        self.mounted: Mount | None = None
        # Unlinked or removed: an open file keeps it, paths show " (deleted)".
        self.dead = False

    def __repr__(self) -> str:
        return f"<Dentry {self.name!r} ino={self.inode.ino}>"

    def is_mount_root(self) -> bool:
        return self.parent is None

    def child(self, name: bytes) -> Dentry:
        """The cached or freshly looked-up child ``name`` (ENOENT if none).

        Does not cross mount points: :func:`sentry.vfs.mount.follow_mounts` does.
        """
        with TREE_LOCK:
            d = self.children.get(name)
            if d is None:
                inode = self.inode.lookup(name)
                d = Dentry(name, self, inode, self.mount)
                self.children[name] = d
            if self.evictable:
                DENTRY_LRU.touch(d)
            return d

    def cached_child(self, name: bytes) -> Dentry | None:
        return self.children.get(name)

    def add_child(self, name: bytes, inode: Inode) -> Dentry:
        """Record a name the VFS just created in this directory."""
        with TREE_LOCK:
            d = Dentry(name, self, inode, self.mount)
            self.children[name] = d
            if self.evictable:
                DENTRY_LRU.touch(d)
            return d

    def drop_child(self, name: bytes) -> None:
        """Forget a name that was removed; its dentry becomes dead."""
        with TREE_LOCK:
            d = self.children.pop(name, None)
            if d is not None:
                d.dead = True

    def forget_child(self, name: bytes) -> None:
        """Forget a cached child without killing it (it will be looked up again)."""
        with TREE_LOCK:
            self.children.pop(name, None)

    def move_to(self, newparent: Dentry, newname: bytes) -> None:
        """Rename bookkeeping: this dentry now lives at newparent/newname."""
        with TREE_LOCK:
            assert self.parent is not None
            if self.parent.children.get(self.name) is self:
                del self.parent.children[self.name]
            newparent.drop_child(newname)
            self.parent = newparent
            self.name = newname
            newparent.children[newname] = self
            if newparent.evictable:
                DENTRY_LRU.touch(self)

    def is_ancestor_of(self, other: Dentry) -> bool:
        """True if ``other`` is this dentry or lies below it in the same mount."""
        d: Dentry | None = other
        while d is not None:
            if d is self:
                return True
            d = d.parent
        return False
