"""File handles: name_to_handle_at(2) and open_by_handle_at(2).

A handle here names a file the Sentry knows (tmpfs, overlay, procfs, Gofer
files alike): the filesystem's device number and the inode number, 16
bytes, type FILEID_INO64_GEN-like (1). It never holds a host handle (the
Gofer's files are named by the Sentry's own inode numbers), so nothing about
the host leaks and a forged handle opens only a file the sandbox already
named. open_by_handle_at finds the file among the ones handed out: the
Sentry keeps the last HANDLES_KEPT named files (a handle older than that,
or of a file since removed, is ESTALE, as a handle of a deleted file is on
Linux). Linux's checks and their order: flags, the path, the handle's size
(0 or too small: EOVERFLOW with the size needed written back; over
MAX_HANDLE_SZ: EINVAL), then the mount id; opening needs
CAP_DAC_READ_SEARCH (EPERM).
"""

from __future__ import annotations

import errno
import struct
import threading
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from sentry.kernel.creds import CAP_DAC_READ_SEARCH
from sentry.kernel.errors import SyscallError
from sentry.procfs.fds import mount_id
from sentry.vfs import vfs
from sentry.vfs.description import dentry_of
from sentry.vfs.file import O_CLOEXEC
from syscalls.abi import s32
from syscalls.path import AT_EMPTY_PATH, AT_FDCWD, AT_SYMLINK_FOLLOW, ctx_of, dirfd_arg, path_arg
from syscalls.table import Entry, partial

if TYPE_CHECKING:
    from sentry.kernel.task import Task

Args = tuple[int, ...]

AT_HANDLE_MNT_ID_UNIQUE, AT_HANDLE_CONNECTABLE, AT_HANDLE_FID = 0x001, 0x002, 0x200
MAX_HANDLE_SZ = 128
HEADER = struct.Struct("<Ii")  # handle_bytes, handle_type
BODY = struct.Struct("<QQ")  # inode number, filesystem device
HANDLE_TYPE = 1
HANDLES_KEPT = 4096

_lock = threading.Lock()
_named: OrderedDict[tuple[int, int], Any] = OrderedDict()  # (dev, ino) -> dentry


def name_to_handle_at(t: Task, a: Args) -> int:
    """name_to_handle_at(2)."""
    flags = a[4] & 0xFFFFFFFF
    if flags & ~(AT_SYMLINK_FOLLOW | AT_EMPTY_PATH | AT_HANDLE_FID | AT_HANDLE_MNT_ID_UNIQUE
                 | AT_HANDLE_CONNECTABLE):
        raise SyscallError(errno.EINVAL)
    if flags & AT_HANDLE_CONNECTABLE and flags & AT_HANDLE_FID:
        raise SyscallError(errno.EINVAL)
    path = path_arg(t, a[1])
    if not path and not flags & AT_EMPTY_PATH:
        raise SyscallError(errno.ENOENT)
    d = vfs.resolve(ctx_of(t), path, dirfd_dentry=dirfd_arg(t, a[0], path),
                    follow=bool(flags & AT_SYMLINK_FOLLOW), allow_empty=not path)
    if flags & AT_HANDLE_CONNECTABLE and not d.inode.is_dir() and d.dead:
        raise SyscallError(errno.EINVAL)
    size, _type = HEADER.unpack(t.mm.copy_in(a[2], HEADER.size))
    if size > MAX_HANDLE_SZ:
        raise SyscallError(errno.EINVAL)
    result = 0
    if size < BODY.size:
        out = HEADER.pack(BODY.size, 255)  # FILEID_INVALID and the size it takes
        result = -errno.EOVERFLOW
    else:
        key = (d.inode.fs.dev, d.inode.ino)
        with _lock:
            _named[key] = d
            _named.move_to_end(key)
            while len(_named) > HANDLES_KEPT:
                _named.popitem(last=False)
        out = HEADER.pack(BODY.size, HANDLE_TYPE) + BODY.pack(key[1], key[0])
    t.mm.copy_out(a[3], struct.pack("<i", mount_id(d.mount)))
    t.mm.copy_out(a[2], out)
    if result:
        raise SyscallError(-result)
    return 0


def open_by_handle_at(t: Task, a: Args) -> int:
    """open_by_handle_at(2): the file a handle of this sandbox names."""
    mount_fd, flags = s32(a[0]), a[2] & 0xFFFFFFFF
    if not t.creds.capable(CAP_DAC_READ_SEARCH):
        raise SyscallError(errno.EPERM)
    if mount_fd != AT_FDCWD and dentry_of(t.fds.get(mount_fd)) is None:
        raise SyscallError(errno.EBADF)
    size, htype = HEADER.unpack(t.mm.copy_in(a[1], HEADER.size))
    if size == 0 or size > MAX_HANDLE_SZ:
        raise SyscallError(errno.EINVAL)
    raw = t.mm.copy_in(a[1] + HEADER.size, size)
    if htype != HANDLE_TYPE or size != BODY.size:
        raise SyscallError(errno.ESTALE)
    ino, dev = BODY.unpack(raw)
    with _lock:
        d = _named.get((dev, ino))
    if d is None or d.dead and d.inode.nlink == 0:
        raise SyscallError(errno.ESTALE)
    desc = vfs.open(ctx_of(t), d, b"", flags & ~O_CLOEXEC, 0, allow_empty=True)
    return t.fds.install(desc, cloexec=bool(flags & O_CLOEXEC))


ENTRIES: list[Entry] = [
    partial("name_to_handle_at", name_to_handle_at,
            note="Sentry handles (fs device, inode number) of files named in this sandbox"),
    partial("open_by_handle_at", open_by_handle_at,
            note="the last 4096 files named by name_to_handle_at; older: ESTALE"),
]
