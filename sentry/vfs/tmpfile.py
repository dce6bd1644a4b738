"""open(O_TMPFILE): an unnamed regular file in a directory's filesystem.

Facts about Linux that shape this module (open(2), fs/namei.c
do_tmpfile, vfs_tmpfile):

* O_TMPFILE is __O_TMPFILE together with O_DIRECTORY; with O_CREAT, or
  without write access (O_WRONLY or O_RDWR), it is EINVAL.  The path names a
  directory (ENOENT, ENOTDIR), which must be writable and searchable
  (EACCES) on a writable mount (EROFS); a filesystem that cannot make such
  files answers EOPNOTSUPP.
* The file has no name: /proc/self/fd shows "/dir/#INO (deleted)".  Without
  O_EXCL it may be given one, once, by linkat(fd, "", dirfd, name,
  AT_EMPTY_PATH) or linkat of /proc/self/fd/N with AT_SYMLINK_FOLLOW;
  with O_EXCL an unlinked file cannot be linked (ENOENT), as any file
  whose last link is gone; once linked it is an ordinary file.

The file is made here by creating it under a name no one can see (the
directory is locked by ``TREE_LOCK`` throughout) and removing that name at
once, without change events: what is left is an open file with no link,
as Linux's.
"""

from __future__ import annotations

import errno
import itertools
from typing import TYPE_CHECKING

from sentry.kernel.errors import SyscallError
from sentry.vfs.dentry import TREE_LOCK, Dentry
from sentry.vfs.inode import S_IFREG

if TYPE_CHECKING:
    from collections.abc import Callable

    from sentry.vfs.file import FileDescription
    from sentry.vfs.resolve import FsContext

O_ACCMODE, O_RDONLY = 3, 0
O_CREAT, O_EXCL, O_DIRECTORY = 0o100, 0o200, 0o200000
O_TMPFILE_BIT = 0o20000000
O_TMPFILE = O_TMPFILE_BIT | O_DIRECTORY
_names = itertools.count(1)


def check_flags(flags: int) -> None:
    """EINVAL unless the flags make a valid O_TMPFILE open."""
    if flags & (O_TMPFILE | O_CREAT) != O_TMPFILE or flags & O_ACCMODE == O_RDONLY \
            or flags & O_ACCMODE == O_ACCMODE:
        raise SyscallError(errno.EINVAL)


def open_tmpfile(ctx: FsContext, d: Dentry, flags: int, mode: int,
                 writable: Callable[[Dentry], None],
                 check: Callable[[Dentry, int], None]) -> FileDescription:
    """The description of a new unnamed file in directory ``d`` (resolved by
    the caller; ``writable`` raises EROFS, ``check`` EACCES)."""
    with TREE_LOCK:
        writable(d)
        check(d, 2 | 1)  # MAY_WRITE | MAY_EXEC
        inode = d.inode
        if not hasattr(type(inode), "create") or getattr(inode.fs, "name", "") not in (
                "tmpfs", "overlay"):
            raise SyscallError(errno.EOPNOTSUPP)
        hidden = b".pyvisor-tmpfile-%d" % next(_names)
        new = inode.create(hidden, S_IFREG | (mode & 0o7777), ctx.uid, ctx.gid)
        desc = new.open(flags & ~(O_TMPFILE | O_CREAT | O_EXCL))
        inode.unlink(hidden)
        d.forget_child(hidden)
        dentry = Dentry(b"#%d" % new.ino, d, new, d.mount)
        dentry.dead = True
        new.tmpfile_linkable = not flags & O_EXCL  # type: ignore[attr-defined]
        desc.dentry = dentry  # type: ignore[attr-defined]
        return desc


def may_link(inode: object, dead: bool) -> None:
    """linkat of a file with no link left: only an O_TMPFILE file opened
    without O_EXCL, and only once (ENOENT otherwise, Linux's I_LINKABLE)."""
    if not dead or getattr(inode, "nlink", 1) > 0:
        return
    if not getattr(inode, "tmpfile_linkable", False):
        raise SyscallError(errno.ENOENT)
    inode.tmpfile_linkable = False  # type: ignore[attr-defined]
