"""File-descriptor syscalls: read/write and friends, stat on fds, ioctl, fcntl,
poll, dup.  Paths arrive with the VFS (sentry/vfs)."""

from __future__ import annotations

import errno
import os
import time
from typing import TYPE_CHECKING

from sentry.kernel.errors import SyscallError
from sentry.kernel.signals import SIGPIPE, SigInfo
from sentry.vfs.file import O_CLOEXEC, POLLNVAL, SETFL_MASK, FileDescription
from syscalls.abi import (
    MAX_RW_COUNT,
    POLLFD,
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


def newfstatat(t: Task, a: Args) -> int:
    """newfstatat(2): AT_EMPTY_PATH on an fd; paths need the VFS."""
    path = t.mm.read_cstring(a[1], 4096)
    if not path:
        if not a[3] & AT_EMPTY_PATH:
            raise SyscallError(errno.ENOENT)
        t.mm.copy_out(a[2], pack_stat(t.fds.get(s32(a[0])).stat()))
        return 0
    raise SyscallError(errno.ENOENT)


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


def _poll_fds(t: Task, addr: int, nfds: int, timeout_s: float | None) -> int:
    if nfds > t.fds.limit:
        raise SyscallError(errno.EINVAL)
    raw = bytearray(t.mm.copy_in(addr, POLLFD.size * nfds)) if nfds else bytearray()
    entries = [POLLFD.unpack_from(raw, i * POLLFD.size) for i in range(nfds)]
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while True:
        ready = 0
        results = []
        for fd, events, _ in entries:
            if fd < 0:
                results.append(0)
                continue
            try:
                f = t.fds.get(fd)
            except SyscallError:
                results.append(POLLNVAL)
                ready += 1
                continue
            got = f.poll(events & 0xFFFF, 0)
            results.append(got)
            if got:
                ready += 1
        remaining = None if deadline is None else deadline - time.monotonic()
        if ready or (remaining is not None and remaining <= 0):
            break
        if len(entries) == 1 and entries[0][0] >= 0:
            # One fd: let the file block for us instead of polling in a loop.
            got = t.fds.get(entries[0][0]).poll(entries[0][1] & 0xFFFF, remaining)
            if got or remaining is not None:
                results = [got]
                ready = 1 if got else 0
                break
        time.sleep(min(0.01, remaining) if remaining is not None else 0.01)
    for i, (fd, events, _) in enumerate(entries):
        POLLFD.pack_into(raw, i * POLLFD.size, fd, events, results[i])
    if nfds:
        t.mm.copy_out(addr, bytes(raw))
    return ready


def poll(t: Task, a: Args) -> int:
    """poll(2) over the task's files."""
    ms = s32(a[2])
    return _poll_fds(t, a[0], a[1], None if ms < 0 else ms / 1000)


ENTRIES: list[Entry] = [
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
    partial("newfstatat", newfstatat, note="AT_EMPTY_PATH on an fd only until the VFS lands"),
    partial("ioctl", ioctl, note="terminal ioctls, FIONBIO, FIONREAD"),
    partial("fcntl", fcntl, note="descriptor/status flags and F_DUPFD*; no locks yet"),
    supported("dup", dup),
    supported("dup2", dup2),
    supported("dup3", dup3),
    partial("poll", poll, note="stdio and Sentry files"),
]
