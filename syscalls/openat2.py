"""openat2(2): openat with a versioned ``struct open_how`` and RESOLVE_* limits
on how the path may be walked.

Why it matters beyond the LTP: container runtimes (runc, crun) and systemd
open paths inside an untrusted tree with RESOLVE_IN_ROOT / RESOLVE_BENEATH so
that a planted symlink cannot lead them out; inside the sandbox they get the
same guarantee, enforced at each step of one walk (sentry/vfs/resolve.py).

Argument checks, in Linux's order: the struct size (EINVAL under the first
version's 24 bytes, E2BIG over a page or with non-zero bytes past what this
kernel knows), then unknown open flags or resolve bits, IN_ROOT with BENEATH,
a mode without O_CREAT/O_TMPFILE or with bits beyond 07777 (EINVAL), O_PATH
with flags it does not allow (EINVAL, where openat silently drops them), and
RESOLVE_CACHED with O_CREAT, O_TRUNC or O_TMPFILE (EAGAIN: it could not be
served from the cache alone).
"""

from __future__ import annotations

import errno
import struct
from typing import TYPE_CHECKING

from sentry.kernel.errors import SyscallError
from sentry.vfs import vfs
from sentry.vfs.description import dentry_of
from sentry.vfs.file import O_CLOEXEC
from sentry.vfs.resolve import RESOLVE_ALL, RESOLVE_BENEATH, RESOLVE_CACHED, RESOLVE_IN_ROOT
from syscalls.abi import s32
from syscalls.path import ctx_of, path_arg
from syscalls.table import Entry, supported

if TYPE_CHECKING:
    from sentry.kernel.task import Task

Args = tuple[int, ...]

OPEN_HOW = struct.Struct("<QQQ")  # flags, mode, resolve
OPEN_HOW_SIZE_VER0 = OPEN_HOW.size
PAGE_SIZE = 4096
AT_FDCWD = -100

O_CREAT = 0o100
O_TRUNC = 0o1000
O_DIRECTORY = 0o200000
O_NOFOLLOW = 0o400000
O_LARGEFILE = 0o100000
O_PATH = 0o10000000
O_TMPFILE_BIT = 0o20000000  # __O_TMPFILE
VALID_OPEN_FLAGS = 0o37777703  # everything build_open_flags() accepts
O_PATH_FLAGS = O_DIRECTORY | O_NOFOLLOW | O_PATH | O_CLOEXEC


def _open_how(t: Task, addr: int, size: int) -> tuple[int, int, int]:
    if size < OPEN_HOW_SIZE_VER0:
        raise SyscallError(errno.EINVAL)
    if size > PAGE_SIZE:
        raise SyscallError(errno.E2BIG)
    raw = t.mm.copy_in(addr, size)
    if any(raw[OPEN_HOW_SIZE_VER0:]):
        raise SyscallError(errno.E2BIG)
    return OPEN_HOW.unpack_from(raw)


def _check(flags: int, mode: int, resolve: int) -> None:
    if flags & ~VALID_OPEN_FLAGS or resolve & ~RESOLVE_ALL:
        raise SyscallError(errno.EINVAL)
    if resolve & RESOLVE_IN_ROOT and resolve & RESOLVE_BENEATH:
        raise SyscallError(errno.EINVAL)
    if flags & (O_CREAT | O_TMPFILE_BIT):
        if mode & ~0o7777:
            raise SyscallError(errno.EINVAL)
    elif mode:
        raise SyscallError(errno.EINVAL)
    if flags & O_PATH and flags & ~O_PATH_FLAGS:
        raise SyscallError(errno.EINVAL)
    if resolve & RESOLVE_CACHED and flags & (O_CREAT | O_TRUNC | O_TMPFILE_BIT):
        raise SyscallError(errno.EAGAIN)


def openat2(t: Task, a: Args) -> int:
    """openat2(2)."""
    flags, mode, resolve = _open_how(t, a[2], a[3])
    _check(flags, mode, resolve)
    path = path_arg(t, a[1])
    ctx = ctx_of(t)
    fd = s32(a[0])
    start = None
    if fd != AT_FDCWD and (resolve or not path.startswith(b"/")):
        start = dentry_of(t.fds.get(fd))
        if start is None:
            raise SyscallError(errno.ENOTDIR)
        if not start.inode.is_dir():
            raise SyscallError(errno.ENOTDIR)
    if resolve & ~RESOLVE_CACHED:
        ctx = ctx.restricted(start if start is not None else ctx.cwd, resolve)
    desc = vfs.open(ctx, start, path, flags & ~O_LARGEFILE, mode, t.tg.umask)
    try:
        return t.fds.install(desc, cloexec=bool(flags & O_CLOEXEC))
    except SyscallError:
        desc.release()
        raise


ENTRIES: list[Entry] = [
    supported("openat2", openat2),
]
