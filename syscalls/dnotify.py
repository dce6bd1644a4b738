"""dnotify: fcntl(F_NOTIFY) on a directory descriptor (Linux's fs/notify/dnotify).

What Linux does and this module follows:

* F_NOTIFY with DN_* bits watches the directory (its entries and itself)
  for the named kinds of change; each one sends the descriptor's owner a
  signal (SIGIO, or F_SETSIG's with si_fd = the descriptor), the owner being
  set to the caller's process by F_NOTIFY itself. Without DN_MULTISHOT the
  watch goes after its first signal. F_NOTIFY with no DN_* bits, or closing
  the descriptor (in the same descriptor table), removes it.
* DN_CREATE also hears names moved in, DN_DELETE names moved out, and
  DN_RENAME only a rename within the directory: a rename's IN_MOVED_FROM and
  IN_MOVED_TO (same cookie) both reaching this directory.
* A non-directory is ENOTDIR.

Events come from sentry/vfs/notify.py, as inotify's do.
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING, Any

from sentry.kernel.errors import SyscallError
from sentry.kernel.sigio import F_OWNER_PID, POLL_MSG, send_io_signal
from sentry.vfs import notify

if TYPE_CHECKING:
    from sentry.kernel.task import Task
    from sentry.vfs.file import FileDescription

DN_ACCESS, DN_MODIFY, DN_CREATE, DN_DELETE, DN_RENAME, DN_ATTRIB = 1, 2, 4, 8, 0x10, 0x20
DN_MULTISHOT = 0x80000000
# Which inotify-style events each DN_* bit hears (DN_RENAME: see DirWatch).
_MAP = ((notify.IN_ACCESS, DN_ACCESS), (notify.IN_MODIFY, DN_MODIFY),
        (notify.IN_CREATE | notify.IN_MOVED_TO, DN_CREATE),
        (notify.IN_DELETE | notify.IN_MOVED_FROM, DN_DELETE), (notify.IN_ATTRIB, DN_ATTRIB))


class DirWatch:
    """One descriptor table's F_NOTIFY on one open directory: a notify.py
    listener that signals the description's owner."""

    def __init__(self, desc: FileDescription, inode: Any, fd: int, mask: int) -> None:
        self.desc, self.inode, self.fd, self.mask = desc, inode, fd, mask
        self.moved_from = 0  # the cookie of the last name moved out of here

    def __call__(self, mask: int, name: bytes, cookie: int) -> None:
        hit = 0
        for events, dn in _MAP:
            if mask & events:
                hit |= dn
        if mask & notify.IN_MOVED_FROM:
            self.moved_from = cookie
        if mask & notify.IN_MOVED_TO and cookie and cookie == self.moved_from:
            hit |= DN_RENAME
        if not hit & self.mask:
            return
        if not self.mask & DN_MULTISHOT:
            _remove(self)
        send_io_signal(self.desc, self.fd, POLL_MSG)


def _watches(desc: FileDescription) -> dict[int, DirWatch]:
    return desc.__dict__.setdefault("dnotify", {})


def _remove(w: DirWatch) -> None:
    table = _watches(w.desc)
    for key, other in list(table.items()):
        if other is w:
            del table[key]
    notify.remove_watch(w.inode, w)


def fcntl_notify(t: Task, f: FileDescription, fd: int, arg: int) -> int:
    """fcntl(fd, F_NOTIFY, arg)."""
    key = id(t.fds)
    old = _watches(f).get(key)
    mask = arg & 0xFFFFFFFF
    if not mask & ~DN_MULTISHOT:
        if old is not None:
            _remove(old)
        return 0
    inode = getattr(f, "inode", None)
    if inode is None or not inode.is_dir():
        raise SyscallError(errno.ENOTDIR)
    f.__dict__["owner"] = (F_OWNER_PID, t.tg.tgid)
    if old is not None:
        old.fd = fd
        old.mask |= mask
        return 0
    w = DirWatch(f, inode, fd, mask)
    _watches(f)[key] = w
    notify.add_watch(inode, w)
    return 0


def flush(t: Task, f: FileDescription) -> None:
    """close(2) of a descriptor of ``f``: this table's F_NOTIFY on it goes."""
    table = f.__dict__.get("dnotify")
    if table:
        w = table.get(id(t.fds))
        if w is not None:
            _remove(w)
