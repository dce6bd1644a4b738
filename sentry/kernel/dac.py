"""Discretionary access control: the mode-bit checks Linux makes on a path.

Why here and not in the VFS: the check needs the calling task's credentials
(effective ids and supplementary groups, which setuid(2) and friends change),
and the VFS knows no tasks.  The VFS calls :attr:`FsContext.permission` with a
dentry and a MAY_* mask at each check point (directory search, open, making
and removing names, truncate); :func:`check` is what the sandbox installs there.

The rules are Linux's generic_permission() without ACLs: root (euid 0, i.e.
CAP_DAC_OVERRIDE) passes every read and write and may search any directory;
anyone else gets the owner's, the group's or the others' bits, in that order
of precedence, and EACCES when a wanted bit is missing.  Executing a file is
checked by execve itself (it wants an x bit, even for root).
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING

from sentry.kernel.errors import SyscallError
from sentry.kernel.task import current_task

if TYPE_CHECKING:
    from sentry.vfs.dentry import Dentry

MAY_EXEC, MAY_WRITE, MAY_READ = 1, 2, 4
S_ISVTX = 0o1000


def allowed(mode: int, uid: int, gid: int, euid: int, egid: int, groups: tuple[int, ...],
            mask: int) -> bool:
    """Whether ids (euid, egid, groups) may ``mask`` an inode of mode/uid/gid."""
    if euid == 0:
        return True
    if uid == euid:
        bits = (mode >> 6) & 7
    elif gid == egid or gid in groups:
        bits = (mode >> 3) & 7
    else:
        bits = mode & 7
    return not mask & ~bits


def check(d: Dentry, mask: int) -> None:
    """FsContext.permission: EACCES unless the calling task may ``mask`` ``d``."""
    task = current_task()
    if task is None:  # the Sentry's own lookups (boot, the OCI control plane)
        return
    c = task.creds
    if c.euid == 0:
        return
    inode = d.inode
    if not allowed(inode.mode, inode.uid, inode.gid, c.euid, c.egid, c.groups, mask):
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
    euid = task.creds.euid
    if euid == 0 or euid == d.inode.uid:
        return
    if sticky_parent is not None:
        parent = sticky_parent.inode
        if not parent.mode & S_ISVTX or euid == parent.uid:
            return
    raise SyscallError(errno.EPERM)
