"""Extended attributes: get/set/list/remove, by path (following symlinks or
not) and by descriptor.

Stored by tmpfs and the overlay's upper layer (``sentry/vfs/xattr.py``); the
Gofer-backed tree seen without an overlay keeps none. The checks are Linux's,
in its order: the path lookup, EROFS for a write on a read-only mount, the
flags (EINVAL), the name (ERANGE when empty or longer than 255 bytes), the
value size (E2BIG past 64 KiB), then xattr_permission():

* ``security.*`` and ``system.*``: no mode check; setting or removing a
  ``security.*`` name needs CAP_SYS_ADMIN (commoncap, with no LSM loaded),
  and ``security.capability`` needs CAP_SETFCAP instead. ``system.*`` (POSIX
  ACLs) is not supported: EOPNOTSUPP, which getfacl and cp -a accept.
* ``trusted.*``: CAP_SYS_ADMIN, else EPERM to write and ENODATA to read;
  listxattr leaves these names out for a caller without it.
* ``user.*``: only regular files and directories (EPERM to write, ENODATA to
  read on anything else); a sticky directory's attributes only for its owner
  or CAP_FOWNER; then the mode bits (EACCES), for write or read.
* any other prefix: the mode bits, then EOPNOTSUPP.

Why ``user.*`` on tmpfs although the uname release predates Linux 6.6's
tmpfs support for it: gVisor's tmpfs keeps ``user.*`` too, and programs that
use it (cp -a, rsync -X, tar --xattrs, systemd's journal) run inside.
``security.capability`` is stored but not honoured at execve: file
capabilities are not modelled.
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING

from sentry.kernel.creds import CAP_FOWNER, CAP_SETFCAP, CAP_SYS_ADMIN
from sentry.kernel.errors import SyscallError
from sentry.vfs import iflags, notify
from sentry.vfs.resolve import resolve
from sentry.vfs.xattr import (
    XATTR_CREATE,
    XATTR_LIST_MAX,
    XATTR_NAME_MAX,
    XATTR_REPLACE,
    XATTR_SIZE_MAX,
)
from syscalls.abi import s32
from syscalls.path import ctx_of, fd_dentry, path_arg
from syscalls.table import Entry, partial, supported

if TYPE_CHECKING:
    from sentry.kernel.task import Task
    from sentry.vfs.dentry import Dentry

Args = tuple[int, ...]

MAY_WRITE, MAY_READ = 2, 4
S_ISVTX = 0o1000
_KNOWN = (b"user.", b"trusted.", b"security.")


# --- the target and the name --------------------------------------------------

def _by_path(t: Task, addr: int, follow: bool) -> Dentry:
    return resolve(ctx_of(t), path_arg(t, addr), follow=follow)


def _name(t: Task, addr: int) -> bytes:
    """The attribute name: ERANGE when empty or XATTR_NAME_MAX+1 bytes or more."""
    try:
        name = t.mm.read_cstring(addr, XATTR_NAME_MAX + 1)
    except SyscallError as e:
        if e.errno == errno.ENAMETOOLONG:
            raise SyscallError(errno.ERANGE) from None
        raise
    if not name:
        raise SyscallError(errno.ERANGE)
    return name


def _writable(d: Dentry) -> None:
    if d.mount.readonly:
        raise SyscallError(errno.EROFS)


# --- xattr_permission() and the security hook ---------------------------------

def _permission(t: Task, d: Dentry, name: bytes, mask: int) -> None:
    write = bool(mask & MAY_WRITE)
    c = t.creds
    inode = d.inode
    if write and iflags.frozen(inode):  # xattr_permission: immutable or append-only
        raise SyscallError(errno.EPERM)
    if name.startswith((b"security.", b"system.")):
        return
    if name.startswith(b"trusted."):
        if not c.capable(CAP_SYS_ADMIN):
            raise SyscallError(errno.EPERM if write else errno.ENODATA)
        return
    if name.startswith(b"user."):
        if not (inode.is_reg() or inode.is_dir()):
            raise SyscallError(errno.EPERM if write else errno.ENODATA)
        if (write and inode.is_dir() and inode.mode & S_ISVTX
                and c.fsuid != inode.uid and not c.capable(CAP_FOWNER)):
            raise SyscallError(errno.EPERM)
    ctx_of(t).check(d, mask)


def _security_write(t: Task, name: bytes) -> None:
    """cap_inode_setxattr/removexattr: who may change ``security.*``."""
    if not name.startswith(b"security."):
        return
    cap = CAP_SETFCAP if name == b"security.capability" else CAP_SYS_ADMIN
    if not t.creds.capable(cap):
        raise SyscallError(errno.EPERM)


def _handled(name: bytes) -> None:
    """EOPNOTSUPP for a namespace no filesystem here keeps (system.*, unknown)."""
    if not name.startswith(_KNOWN):
        raise SyscallError(errno.EOPNOTSUPP)


# --- the four operations ------------------------------------------------------

def _set(t: Task, d: Dentry | None, a: Args) -> int:
    name_addr, value_addr, size, flags = a[1], a[2], a[3], s32(a[4])
    if d is not None:
        _writable(d)
    if flags & ~(XATTR_CREATE | XATTR_REPLACE):
        raise SyscallError(errno.EINVAL)
    name = _name(t, name_addr)
    if size > XATTR_SIZE_MAX:
        raise SyscallError(errno.E2BIG)
    value = t.mm.copy_in(value_addr, size) if size else b""
    if d is None:
        raise SyscallError(errno.EOPNOTSUPP)
    _permission(t, d, name, MAY_WRITE)
    _security_write(t, name)
    _handled(name)
    d.inode.set_xattr(name, value, flags)
    notify.emit(d, notify.IN_ATTRIB)
    return 0


def _get(t: Task, d: Dentry | None, a: Args) -> int:
    name_addr, value_addr, size = a[1], a[2], a[3]
    name = _name(t, name_addr)
    size = min(size, XATTR_SIZE_MAX)
    if d is None:
        raise SyscallError(errno.ENODATA)
    _permission(t, d, name, MAY_READ)
    _handled(name)
    value = d.inode.get_xattr(name)
    if size:
        if len(value) > size:
            raise SyscallError(errno.ERANGE)
        t.mm.copy_out(value_addr, value)
    return len(value)


def _list(t: Task, d: Dentry | None, a: Args) -> int:
    list_addr, size = a[1], min(a[2], XATTR_LIST_MAX)
    names = [] if d is None else d.inode.list_xattr()
    if not t.creds.capable(CAP_SYS_ADMIN):
        names = [n for n in names if not n.startswith(b"trusted.")]
    out = b"".join(n + b"\0" for n in names)
    if size:
        if len(out) > size:
            raise SyscallError(errno.ERANGE)
        t.mm.copy_out(list_addr, out)
    return len(out)


def _remove(t: Task, d: Dentry | None, a: Args) -> int:
    if d is not None:
        _writable(d)
    name = _name(t, a[1])
    if d is None:
        raise SyscallError(errno.EOPNOTSUPP)
    _permission(t, d, name, MAY_WRITE)
    _security_write(t, name)
    _handled(name)
    d.inode.remove_xattr(name)
    notify.emit(d, notify.IN_ATTRIB)
    return 0


def setxattr(t: Task, a: Args) -> int:
    """setxattr(2)."""
    return _set(t, _by_path(t, a[0], True), a)


def lsetxattr(t: Task, a: Args) -> int:
    """lsetxattr(2): the symlink itself."""
    return _set(t, _by_path(t, a[0], False), a)


def fsetxattr(t: Task, a: Args) -> int:
    """fsetxattr(2)."""
    return _set(t, fd_dentry(t, a[0]), a)


def getxattr(t: Task, a: Args) -> int:
    """getxattr(2): with size 0, the value's length."""
    return _get(t, _by_path(t, a[0], True), a)


def lgetxattr(t: Task, a: Args) -> int:
    """lgetxattr(2)."""
    return _get(t, _by_path(t, a[0], False), a)


def fgetxattr(t: Task, a: Args) -> int:
    """fgetxattr(2)."""
    return _get(t, fd_dentry(t, a[0]), a)


def listxattr(t: Task, a: Args) -> int:
    """listxattr(2): NUL-terminated names; with size 0, the list's length."""
    return _list(t, _by_path(t, a[0], True), a)


def llistxattr(t: Task, a: Args) -> int:
    """llistxattr(2)."""
    return _list(t, _by_path(t, a[0], False), a)


def flistxattr(t: Task, a: Args) -> int:
    """flistxattr(2)."""
    return _list(t, fd_dentry(t, a[0]), a)


def removexattr(t: Task, a: Args) -> int:
    """removexattr(2)."""
    return _remove(t, _by_path(t, a[0], True), a)


def lremovexattr(t: Task, a: Args) -> int:
    """lremovexattr(2)."""
    return _remove(t, _by_path(t, a[0], False), a)


def fremovexattr(t: Task, a: Args) -> int:
    """fremovexattr(2)."""
    return _remove(t, fd_dentry(t, a[0]), a)


_STORED = "kept by tmpfs and the overlay; EOPNOTSUPP on Gofer-backed binds"

ENTRIES: list[Entry] = [
    supported("getxattr", getxattr),
    supported("lgetxattr", lgetxattr),
    supported("fgetxattr", fgetxattr),
    supported("listxattr", listxattr),
    supported("llistxattr", llistxattr),
    supported("flistxattr", flistxattr),
    partial("setxattr", setxattr, note=_STORED),
    partial("lsetxattr", lsetxattr, note=_STORED),
    partial("fsetxattr", fsetxattr, note=_STORED),
    partial("removexattr", removexattr, note=_STORED),
    partial("lremovexattr", lremovexattr, note=_STORED),
    partial("fremovexattr", fremovexattr, note=_STORED),
]
