"""Inode flags (chattr's, FS_IOC_GETFLAGS/FS_IOC_SETFLAGS) and what they
forbid; and the other refusal of writing a file: running it (ETXTBSY).

Why: Linux's tmpfs keeps four of them since 6.0 (append-only, immutable,
nodump, noatime), statx reports three, and the VFS refuses changes to an
immutable or append-only file with EPERM: writing opens (an append-only file
only with O_APPEND, never O_TRUNC), attribute changes, and unlinking,
renaming or linking it (or removing names from such a directory). Only a
filesystem whose ``inode_flags`` is not 0 keeps them; elsewhere the ioctls
are ENOTTY, as on a Linux filesystem without fileattr support.
"""

from __future__ import annotations

import errno
from typing import Any

from sentry.kernel.errors import SyscallError

FS_IMMUTABLE_FL = 0x10
FS_APPEND_FL = 0x20
FS_NODUMP_FL = 0x40
FS_NOATIME_FL = 0x80
TMPFS_FLAGS = FS_IMMUTABLE_FL | FS_APPEND_FL | FS_NODUMP_FL | FS_NOATIME_FL
STATX_ATTR_IMMUTABLE, STATX_ATTR_APPEND, STATX_ATTR_NODUMP = 0x10, 0x20, 0x40
_STATX = ((FS_IMMUTABLE_FL, STATX_ATTR_IMMUTABLE), (FS_APPEND_FL, STATX_ATTR_APPEND),
          (FS_NODUMP_FL, STATX_ATTR_NODUMP))
O_WRONLY, O_RDWR, O_TRUNC, O_APPEND = 0o1, 0o2, 0o1000, 0o2000


def statx_attributes(flags: int) -> tuple[int, int]:
    """(stx_attributes, stx_attributes_mask) for an inode with ``flags``."""
    attrs = 0
    for fl, attr in _STATX:
        if flags & fl:
            attrs |= attr
    return attrs, STATX_ATTR_IMMUTABLE | STATX_ATTR_APPEND | STATX_ATTR_NODUMP


def frozen(inode: Any) -> bool:
    """Immutable or append-only: no attribute change, no unlink, rename or link."""
    return bool(getattr(inode, "iflags", 0) & (FS_IMMUTABLE_FL | FS_APPEND_FL))


def check_unchanged(inode: Any) -> None:
    """EPERM for a change of an immutable or append-only file's attributes or names."""
    if frozen(inode):
        raise SyscallError(errno.EPERM)


def check_open(inode: Any, flags: int) -> None:
    """may_open's rules: no writing open of an immutable file; an append-only
    one only for appending, never truncated."""
    fl = getattr(inode, "iflags", 0)
    if not fl:
        return
    writing = flags & (O_WRONLY | O_RDWR) or flags & O_TRUNC
    if fl & FS_IMMUTABLE_FL and writing:
        raise SyscallError(errno.EPERM)
    if fl & FS_APPEND_FL and writing and (not flags & O_APPEND or flags & O_TRUNC):
        raise SyscallError(errno.EPERM)


def check_not_running(inode: Any) -> None:
    """ETXTBSY for writing a file that a live process is running (its
    mm->exe_file: Linux denies write access to it while the image lives)."""
    from sentry.kernel.task import current_task  # the VFS sits below the kernel

    task = current_task()
    if task is None:
        return
    k = task.kernel
    with k.lock:
        groups = list(k.thread_groups.values())
    for g in groups:
        exe = g.exe_file
        if exe is not None and not g.zombie and getattr(exe, "inode", None) is inode:
            raise SyscallError(errno.ETXTBSY)


def check_not_written(inode: Any) -> None:
    """ETXTBSY for running a file some descriptor has open for writing
    (Linux's deny_write_access at execve: i_writecount > 0).  Asked once per
    execve, so a walk over the live fd tables beats a count kept on every open
    and close."""
    from sentry.kernel.task import current_task  # the VFS sits below the kernel

    task = current_task()
    if task is None or inode is None:
        return
    k = task.kernel
    with k.lock:
        tables = {id(t.fds): t.fds for g in k.thread_groups.values() if not g.zombie
                  for t in g.live_tasks() if getattr(t, "fds", None) is not None}
    for fds in tables.values():
        for desc in fds.descriptions():
            if getattr(desc, "inode", None) is inode and desc.writable():
                raise SyscallError(errno.ETXTBSY)


def set_flags(inode: Any, new: int, owner_ok: bool, capable_immutable: bool) -> None:
    """FS_IOC_SETFLAGS on a filesystem that keeps flags: the owner (or
    CAP_FOWNER) may set them; changing immutable or append-only needs
    CAP_LINUX_IMMUTABLE (EPERM); a flag the filesystem does not keep is
    EOPNOTSUPP."""
    supported = inode.fs.inode_flags
    if new & ~supported:
        raise SyscallError(errno.EOPNOTSUPP)
    if not owner_ok:
        raise SyscallError(errno.EPERM)
    old = getattr(inode, "iflags", 0)
    if (old ^ new) & (FS_IMMUTABLE_FL | FS_APPEND_FL) and not capable_immutable:
        raise SyscallError(errno.EPERM)
    inode.iflags = new
