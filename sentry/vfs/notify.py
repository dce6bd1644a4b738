"""File change notification (inotify's source): the VFS reports what happens
to a file, and every watch on it, or on its directory, hears of it.

Facts about Linux's fsnotify that shape this module:

* An event goes to the watches on the file itself (no name) and to those on
  the directory it sits in (with the file's name); a directory's own events
  carry IN_ISDIR.
* A file's own-only events (IN_DELETE_SELF, IN_MOVE_SELF) go to its watches
  only; IN_CREATE, IN_DELETE and IN_MOVED_FROM/TO go to the directory only.
  Where both hear, the directory's watch is told first. A removed file's
  IN_DELETE_SELF comes before its directory's IN_DELETE (the inode goes when
  its last name does, before the directory is told).
* Only changes made through this sandbox's kernel are seen: a file changed
  on the host behind a bind mount tells no one, as on a network filesystem.

A watch is kept on the inode object (``Inode._watches``); inotify's watch
also holds the dentry, so the dentry cache cannot forget the name and
hand out a second inode object for the same file. The check for
watches is one attribute read, so an unwatched file costs nearly nothing.

Lock order: ``WATCH_LOCK`` is a leaf around the watch lists; listeners are
called without it and queue events under their own lock (a leaf too).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sentry.vfs.dentry import Dentry

IN_ACCESS = 0x1
IN_MODIFY = 0x2
IN_ATTRIB = 0x4
IN_CLOSE_WRITE = 0x8
IN_CLOSE_NOWRITE = 0x10
IN_OPEN = 0x20
IN_MOVED_FROM = 0x40
IN_MOVED_TO = 0x80
IN_CREATE = 0x100
IN_DELETE = 0x200
IN_DELETE_SELF = 0x400
IN_MOVE_SELF = 0x800
IN_ISDIR = 0x40000000
SELF_ONLY = IN_DELETE_SELF | IN_MOVE_SELF
DIR_ONLY = IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO

WATCH_LOCK = threading.Lock()
_cookies = iter(range(1, 1 << 32))

# A listener: (mask, name, cookie) -> None; the watch filters by its own mask.
Listener = Callable[[int, bytes, int], None]


IN_UNMOUNT = 0x2000
# Every inode that has had a watch: an unmount finds its filesystem's here.
_WATCHED: weakref.WeakSet[Any] = weakref.WeakSet()


def watches_of(inode: Any) -> list[Listener]:
    return getattr(inode, "_watches", None) or []


def add_watch(inode: Any, listener: Listener) -> None:
    with WATCH_LOCK:
        inode._watches = [*watches_of(inode), listener]
        _WATCHED.add(inode)


def unmounted(fs: Any) -> None:
    """``fs`` is unmounted: each watch on one of its files hears IN_UNMOUNT
    (whatever its mask; the listener then drops the watch: IN_IGNORED), as
    fsnotify_unmount_inodes."""
    with WATCH_LOCK:
        inodes = [i for i in _WATCHED if getattr(i, "fs", None) is fs]
    for inode in inodes:
        mask = IN_UNMOUNT | (IN_ISDIR if inode.is_dir() else 0)
        for w in watches_of(inode):
            w(mask, b"", 0)


def remove_watch(inode: Any, listener: Listener) -> None:
    with WATCH_LOCK:
        inode._watches = [w for w in watches_of(inode) if w is not listener]


def new_cookie() -> int:
    """The cookie that ties an IN_MOVED_FROM to its IN_MOVED_TO."""
    return next(_cookies)


IN_EXCL_UNLINK = 0x04000000


def emit(d: Dentry | None, mask: int, cookie: int = 0) -> None:
    """Tell the watches of ``d``'s file and of its directory that ``mask``
    happened to it (the event kinds decide who hears, as in the docstring)."""
    if d is not None:
        emit_at(d.parent, d.name, d.inode, mask, cookie, unlinked=d.dead)


def emit_at(parent: Dentry | None, name: bytes, inode: Any, mask: int,
            cookie: int = 0, unlinked: bool = False) -> None:
    """:func:`emit` for the file ``inode`` named ``name`` in ``parent``
    (rename tells of the old name after the dentry has moved). A directory
    watch made with IN_EXCL_UNLINK does not hear of a child once ``unlinked``."""
    own = watches_of(inode)
    dir_watches = watches_of(parent.inode) if parent is not None else []
    if not own and not dir_watches:
        return
    if inode.is_dir():
        mask |= IN_ISDIR
    if not mask & SELF_ONLY:  # the directory hears first, as fsnotify_parent does
        for w in dir_watches:
            if not (unlinked and getattr(w, "mask", 0) & IN_EXCL_UNLINK):
                w(mask, name, cookie)
    if not mask & DIR_ONLY:
        for w in own:
            w(mask, b"", cookie)


def emit_self(inode: Any, mask: int) -> None:
    """An event of the inode alone (IN_DELETE_SELF when its last name goes).
    It carries no IN_ISDIR, even for a directory (LTP's inotify02 and
    inotify04 check what Linux reports for IN_MOVE_SELF and IN_DELETE_SELF)."""
    for w in watches_of(inode):
        w(mask, b"", 0)
