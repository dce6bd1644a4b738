"""Dentries: the names of inodes within one mount.

A dentry is (mount, parent, name, inode).  Each mount has its own tree of
dentries starting at its root dentry (whose ``parent`` is None), so the same
filesystem mounted twice gives two trees over shared inodes, and "which mount
am I in" is a field, never a search.  Children found by a lookup are cached, so
a path is looked up in its filesystem once (for the gofer-backed root: one 9P
walk per path); the VFS keeps the cache right on create, unlink and rename, the
only ways names change (the gofer root is read-only, so no one else changes it).

Lock order (outermost first):
  TREE_LOCK (this module: the dentry trees and the mount table)
  -> a filesystem's own locks (overlay copy-up lock, tmpfs lock)
  -> an inode's data lock
  -> pipe conditions.
TREE_LOCK is an RLock held by the VFS across "resolve the parent, check, change
the name", which makes rename and create atomic against each other; it is never
held while a file description blocks (opening a fifo, reading a pipe).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from sentry.vfs.inode import Inode

if TYPE_CHECKING:
    from sentry.vfs.mount import Mount

TREE_LOCK = threading.RLock()


class Dentry:
    """A name for an inode in one mount's tree."""

    __slots__ = ("name", "parent", "inode", "mount", "children", "mounted", "dead")

    def __init__(self, name: bytes, parent: Dentry | None, inode: Inode, mount: Mount) -> None:
        self.name = name
        self.parent = parent
        self.inode = inode
        self.mount = mount
        self.children: dict[bytes, Dentry] = {}
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
            if d is not None:
                return d
            inode = self.inode.lookup(name)
            d = Dentry(name, self, inode, self.mount)
            self.children[name] = d
            return d

    def cached_child(self, name: bytes) -> Dentry | None:
        return self.children.get(name)

    def add_child(self, name: bytes, inode: Inode) -> Dentry:
        """Record a name the VFS just created in this directory."""
        with TREE_LOCK:
            d = Dentry(name, self, inode, self.mount)
            self.children[name] = d
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

    def is_ancestor_of(self, other: Dentry) -> bool:
        """True if ``other`` is this dentry or lies below it in the same mount."""
        d: Dentry | None = other
        while d is not None:
            if d is self:
                return True
            d = d.parent
        return False
