"""Extended attributes: none are stored (no filesystem in the sandbox keeps
them), so the calls answer as Linux does for a file without attributes."""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING

from sentry.kernel.errors import SyscallError
from sentry.vfs import vfs
from syscalls.abi import s32
from syscalls.path import ctx_of, path_arg
from syscalls.table import Entry, partial

if TYPE_CHECKING:
    from sentry.kernel.task import Task

Args = tuple[int, ...]


def _xattr_target(t: Task, a: Args, follow: bool) -> None:
    """Resolve the path argument, for its errors (ENOENT, ENOTDIR, ELOOP...)."""
    path = path_arg(t, a[0])
    vfs.stat(ctx_of(t), None, path, follow=follow)


def getxattr(t: Task, a: Args) -> int:
    """getxattr(2): no attribute exists (ENODATA, as for an unset one)."""
    _xattr_target(t, a, True)
    raise SyscallError(errno.ENODATA)


def lgetxattr(t: Task, a: Args) -> int:
    """lgetxattr(2)."""
    _xattr_target(t, a, False)
    raise SyscallError(errno.ENODATA)


def fgetxattr(t: Task, a: Args) -> int:
    """fgetxattr(2)."""
    t.fds.get(s32(a[0]))
    raise SyscallError(errno.ENODATA)


def listxattr(t: Task, a: Args) -> int:
    """listxattr(2): an empty list."""
    _xattr_target(t, a, True)
    return 0


def llistxattr(t: Task, a: Args) -> int:
    """llistxattr(2)."""
    _xattr_target(t, a, False)
    return 0


def flistxattr(t: Task, a: Args) -> int:
    """flistxattr(2)."""
    t.fds.get(s32(a[0]))
    return 0


def setxattr(t: Task, a: Args) -> int:
    """setxattr(2) and friends: the filesystems here keep no attributes."""
    raise SyscallError(errno.EOPNOTSUPP)


ENTRIES: list[Entry] = [
    partial("getxattr", getxattr, note="no attributes are stored"),
    partial("lgetxattr", lgetxattr, note="no attributes are stored"),
    partial("fgetxattr", fgetxattr, note="no attributes are stored"),
    partial("listxattr", listxattr, note="always an empty list"),
    partial("llistxattr", llistxattr, note="always an empty list"),
    partial("flistxattr", flistxattr, note="always an empty list"),
    partial("setxattr", setxattr, note="EOPNOTSUPP"),
    partial("lsetxattr", setxattr, note="EOPNOTSUPP"),
    partial("fsetxattr", setxattr, note="EOPNOTSUPP"),
    partial("removexattr", setxattr, note="EOPNOTSUPP"),
    partial("lremovexattr", setxattr, note="EOPNOTSUPP"),
    partial("fremovexattr", setxattr, note="EOPNOTSUPP"),
]
