"""File-descriptor syscalls: read/write and friends, stat on fds, ioctl, fcntl,
poll, dup.  Paths arrive with the VFS (sentry/vfs)."""

from __future__ import annotations

import errno
import os
import struct
from typing import TYPE_CHECKING

from sentry.kernel.errors import SyscallError
from sentry.kernel.signals import SIGPIPE, SigInfo
from sentry.vfs.file import O_CLOEXEC, O_NONBLOCK, SETFL_MASK, FileDescription
from sentry.vfs.pipe import make_pipe
from syscalls.abi import (
    MAX_RW_COUNT,
    pack_stat,
    read_iovecs,
    s32,
    s64,
)
from syscalls.table import Entry, partial, supported

if TYPE_CHECKING:
    from sentry.kernel.task import Task

Args = tuple[int, ...]

AT_FDCWD = -100
AT_EMPTY_PATH = 0x1000
F_DUPFD = 0
F_GETFD = 1
F_SETFD = 2
F_GETFL = 3
F_SETFL = 4
F_DUPFD_CLOEXEC = 1030
FD_CLOEXEC = 1
O_DIRECT = 0o40000


def read(t: Task, a: Args) -> int:
    """read(2)."""
    f = t.fds.get(s32(a[0]))
    if not f.readable():
        raise SyscallError(errno.EBADF)
    count = min(a[2], MAX_RW_COUNT)
    data = f.read(count)
    if data:
        t.mm.copy_out(a[1], data)
    return len(data)


def _write(t: Task, f: FileDescription, data: bytes) -> int:
    """One write; a broken pipe also raises SIGPIPE at the writer, as Linux does."""
    try:
        return f.write(data)
    except SyscallError as exc:
        if exc.errno == errno.EPIPE:
            t.kernel.send_task(t, SigInfo(SIGPIPE, pid=t.pid, uid=t.creds.uid))
        raise


def write(t: Task, a: Args) -> int:
    """write(2)."""
    f = t.fds.get(s32(a[0]))
    if not f.writable():
        raise SyscallError(errno.EBADF)
    count = min(a[2], MAX_RW_COUNT)
    return _write(t, f, t.mm.copy_in(a[1], count)) if count else 0


def pread64(t: Task, a: Args) -> int:
    """pread64(2)."""
    f = t.fds.get(s32(a[0]))
    if s64(a[3]) < 0:
        raise SyscallError(errno.EINVAL)
    if not f.readable():
        raise SyscallError(errno.EBADF)
    data = f.pread(min(a[2], MAX_RW_COUNT), a[3])
    if data:
        t.mm.copy_out(a[1], data)
    return len(data)


def pwrite64(t: Task, a: Args) -> int:
    """pwrite64(2)."""
    f = t.fds.get(s32(a[0]))
    if s64(a[3]) < 0:
        raise SyscallError(errno.EINVAL)
    if not f.writable():
        raise SyscallError(errno.EBADF)
    return f.pwrite(t.mm.copy_in(a[1], min(a[2], MAX_RW_COUNT)), a[3])


def readv(t: Task, a: Args) -> int:
    """readv(2): one read for the whole vector, scattered into the buffers."""
    f = t.fds.get(s32(a[0]))
    if not f.readable():
        raise SyscallError(errno.EBADF)
    iovs = read_iovecs(t, a[1], a[2])
    total = min(sum(n for _, n in iovs), MAX_RW_COUNT)
    data = f.read(total) if total else b""
    off = 0
    for base, n in iovs:
        if off >= len(data):
            break
        chunk = data[off : off + n]
        t.mm.copy_out(base, chunk)
        off += len(chunk)
    return len(data)


def writev(t: Task, a: Args) -> int:
    """writev(2): the buffers gathered into one write."""
    f = t.fds.get(s32(a[0]))
    if not f.writable():
        raise SyscallError(errno.EBADF)
    iovs = read_iovecs(t, a[1], a[2])
    parts = []
    total = 0
    for base, n in iovs:
        n = min(n, MAX_RW_COUNT - total)
        if n:
            parts.append(t.mm.copy_in(base, n))
            total += n
    data = b"".join(parts)
    return _write(t, f, data) if data else 0


def lseek(t: Task, a: Args) -> int:
    """lseek(2)."""
    whence = s32(a[2])
    if whence not in (os.SEEK_SET, os.SEEK_CUR, os.SEEK_END, os.SEEK_DATA, os.SEEK_HOLE):
        raise SyscallError(errno.EINVAL)
    return t.fds.get(s32(a[0])).seek(s64(a[1]), whence)


def close(t: Task, a: Args) -> int:
    """close(2)."""
    t.fds.close(s32(a[0]))
    return 0


def close_range(t: Task, a: Args) -> int:
    """close_range(2): CLOSE_RANGE_CLOEXEC marks instead of closing."""
    first, last, flags = a[0] & 0xFFFFFFFF, a[1] & 0xFFFFFFFF, a[2]
    if flags & ~0x6 or first > last:
        raise SyscallError(errno.EINVAL)
    t.fds.close_range(first, last, cloexec_only=bool(flags & 0x4))
    return 0


def fstat(t: Task, a: Args) -> int:
    """fstat(2)."""
    t.mm.copy_out(a[1], pack_stat(t.fds.get(s32(a[0])).stat()))
    return 0


def ioctl(t: Task, a: Args) -> int:
    """ioctl(2): dispatched to the file (terminal ioctls, FIONBIO, FIONREAD)."""
    return t.fds.get(s32(a[0])).ioctl(a[1] & 0xFFFFFFFF, a[2], t)


def fcntl(t: Task, a: Args) -> int:
    """fcntl(2): descriptor and status flags, duplication."""
    fd, cmd, arg = s32(a[0]), s32(a[1]), a[2]
    f = t.fds.get(fd)
    if cmd in (F_DUPFD, F_DUPFD_CLOEXEC):
        minfd = s32(arg)
        if minfd < 0 or minfd >= t.fds.limit:
            raise SyscallError(errno.EINVAL)
        return t.fds.install(f, minfd=minfd, cloexec=cmd == F_DUPFD_CLOEXEC)
    if cmd == F_GETFD:
        return FD_CLOEXEC if t.fds.get_cloexec(fd) else 0
    if cmd == F_SETFD:
        t.fds.set_cloexec(fd, bool(arg & FD_CLOEXEC))
        return 0
    if cmd == F_GETFL:
        return f.flags
    if cmd == F_SETFL:
        f.flags = (f.flags & ~SETFL_MASK) | (arg & SETFL_MASK)
        return 0
    raise SyscallError(errno.EINVAL)


def dup(t: Task, a: Args) -> int:
    """dup(2)."""
    return t.fds.install(t.fds.get(s32(a[0])))


def dup2(t: Task, a: Args) -> int:
    """dup2(2): same fd is a no-op that still checks the fd."""
    old, new = s32(a[0]), s32(a[1])
    f = t.fds.get(old)
    if old == new:
        return new
    t.fds.install_at(new, f)
    return new


def dup3(t: Task, a: Args) -> int:
    """dup3(2): EINVAL for equal fds or flags other than O_CLOEXEC."""
    old, new, flags = s32(a[0]), s32(a[1]), a[2]
    if old == new or flags & ~O_CLOEXEC:
        raise SyscallError(errno.EINVAL)
    t.fds.install_at(new, t.fds.get(old), cloexec=bool(flags & O_CLOEXEC))
    return new


def pipe2(t: Task, a: Args) -> int:
    """pipe2(2)."""
    flags = a[1] & 0xFFFFFFFF
    if flags & ~(O_CLOEXEC | O_NONBLOCK | O_DIRECT):
        raise SyscallError(errno.EINVAL)
    r, w = make_pipe(flags & O_NONBLOCK)
    cloexec = bool(flags & O_CLOEXEC)
    rfd = t.fds.install(r, cloexec=cloexec)
    try:
        wfd = t.fds.install(w, cloexec=cloexec)
    except SyscallError:
        t.fds.close(rfd)
        raise
    try:
        t.mm.copy_out(a[0], struct.pack("<ii", rfd, wfd))
    except SyscallError:
        t.fds.close(rfd)
        t.fds.close(wfd)
        raise
    return 0


def pipe(t: Task, a: Args) -> int:
    """pipe(2)."""
    return pipe2(t, (a[0], 0, 0, 0, 0, 0))


ENTRIES: list[Entry] = [
    supported("pipe", pipe),
    partial("pipe2", pipe2, note="O_DIRECT (packet mode) is accepted as a byte stream"),
    supported("read", read),
    supported("write", write),
    supported("pread64", pread64),
    supported("pwrite64", pwrite64),
    supported("readv", readv),
    supported("writev", writev),
    supported("lseek", lseek),
    supported("close", close),
    supported("close_range", close_range),
    supported("fstat", fstat),
    partial("ioctl", ioctl, note="terminal ioctls, FIONBIO, FIONREAD"),
    partial("fcntl", fcntl, note="descriptor/status flags and F_DUPFD*; no locks yet"),
    supported("dup", dup),
    supported("dup2", dup2),
    supported("dup3", dup3),
]
