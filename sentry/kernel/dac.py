"""Discretionary access control: the mode-bit checks Linux makes on a path.

Why here and not in the VFS: the check needs the calling task's credentials
(effective ids and supplementary groups, which setuid(2) and friends change),
and the VFS knows no tasks.  The VFS calls :attr:`FsContext.permission` with a
dentry and a MAY_* mask at each check point (directory search, open, making
and removing names, truncate); :func:`check` is what the sandbox installs there.

The rules are Linux's generic_permission() without ACLs, for the fs uid and
gid (which follow the effective ids unless setfsuid(2) moved them): the
owner's, the group's or the others' bits, in that order of precedence; then
the capabilities, never the uid: CAP_DAC_READ_SEARCH reads any file and reads
or searches any directory, CAP_DAC_OVERRIDE also writes anything and executes
a file with at least one x bit. Owner-only operations (chmod, utimes, the
sticky directory rule) pass for the owner or with CAP_FOWNER; chown and chgrp
follow chown_ok()/chgrp_ok() (CAP_CHOWN, or the owner giving the file to a
group it is in).
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING

from sentry.kernel.creds import (
    CAP_CHOWN,
    CAP_DAC_OVERRIDE,
    CAP_DAC_READ_SEARCH,
    CAP_FOWNER,
    NO_ID,
    Credentials,
)
from sentry.kernel.errors import SyscallError
from sentry.kernel.task import current_task

if TYPE_CHECKING:
    from sentry.vfs.dentry import Dentry

MAY_EXEC, MAY_WRITE, MAY_READ = 1, 2, 4
S_ISVTX = 0o1000
S_IFMT, S_IFDIR = 0o170000, 0o040000


def mode_allows(mode: int, uid: int, gid: int, c: Credentials, mask: int) -> bool:
    """acl_permission_check(): whether the mode bits alone give ``c`` ``mask``."""
    if uid == c.fsuid:
        bits = (mode >> 6) & 7
    elif c.in_group(gid):
        bits = (mode >> 3) & 7
    else:
        bits = mode & 7
    return not mask & ~bits


def allowed(mode: int, uid: int, gid: int, c: Credentials, mask: int) -> bool:
    """generic_permission(): the mode bits, then the DAC capabilities."""
    if mode_allows(mode, uid, gid, c, mask):
        return True
    if mode & S_IFMT == S_IFDIR:
        if not mask & MAY_WRITE and c.capable(CAP_DAC_READ_SEARCH):
            return True
        return c.capable(CAP_DAC_OVERRIDE)
    if mask == MAY_READ and c.capable(CAP_DAC_READ_SEARCH):
        return True
    if not mask & MAY_EXEC or mode & 0o111:
        return c.capable(CAP_DAC_OVERRIDE)
    return False


def check(d: Dentry, mask: int) -> None:
    """FsContext.permission: EACCES unless the calling task may ``mask`` ``d``."""
    task = current_task()
    if task is None:  # the Sentry's own lookups (boot, the OCI control plane)
        return
    inode = d.inode
    mode, c = inode.mode, task.creds
    uid = inode.uid
    if uid == c.fsuid and not mask & ~(mode >> 6):  # the owner's bits allow it: the
        return  # common case of every path component, without two calls
    if not allowed(mode, uid, inode.gid, c, mask):
        raise SyscallError(errno.EACCES)


def owner_or_root(d: Dentry, sticky_parent: Dentry | None = None) -> None:
    """EPERM unless the caller owns ``d`` (or is root): chmod and utimes.

    With ``sticky_parent`` (unlink, rmdir, rename take ``d`` out of it), the
    rule is the sticky directory's: only when the directory has S_ISVTX, and
    owning the directory also allows it (a shared /tmp keeps users apart).
    """
    task = current_task()
    if task is None:
        return
    c = task.creds
    if c.fsuid == d.inode.uid or c.capable(CAP_FOWNER):
        return
    if sticky_parent is not None:
        parent = sticky_parent.inode
        if not parent.mode & S_ISVTX or c.fsuid == parent.uid:
            return
    raise SyscallError(errno.EPERM)


def chown_check(d: Dentry, uid: int, gid: int) -> None:
    """FsContext.chown_check: Linux's chown_ok() and chgrp_ok(); ``uid``/``gid``
    are uid_t values, NO_ID leaving that id as it is."""
    task = current_task()
    if task is None:
        return
    c = task.creds
    inode = d.inode
    if c.capable(CAP_CHOWN):
        return
    if uid != NO_ID and not (uid == inode.uid and c.fsuid == inode.uid):
        raise SyscallError(errno.EPERM)
    if gid != NO_ID and not (c.fsuid == inode.uid and (gid == inode.gid or c.in_group(gid))):
        raise SyscallError(errno.EPERM)
