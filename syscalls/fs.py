"""File-descriptor syscalls: read/write and friends, stat on fds, ioctl, fcntl,
poll, dup.  Paths arrive with the VFS (sentry/vfs)."""

from __future__ import annotations

import errno
import os
import struct
from typing import TYPE_CHECKING

from sentry.kernel import parking
from sentry.kernel.errors import SyscallError
from sentry.kernel.signals import SIGPIPE, SigInfo
from sentry.vfs.description import dentry_of
from sentry.vfs.file import O_CLOEXEC, O_NONBLOCK, SETFL_MASK, FileDescription
from sentry.vfs.locks import END as LOCK_END
from sentry.vfs.locks import F_RDLCK, F_UNLCK, F_WRLCK, LOCKS
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

F_DUPFD = 0
F_GETFD = 1
F_SETFD = 2
F_GETFL = 3
F_SETFL = 4
F_DUPFD_CLOEXEC = 1030
FD_CLOEXEC = 1
FIONREAD = 0x541B
FIONBIO = 0x5421
FIONCLEX = 0x5450
FIOCLEX = 0x5451
F_GETLK, F_SETLK, F_SETLKW = 5, 6, 7
F_SETOWN, F_GETOWN, F_SETSIG, F_GETSIG = 8, 9, 10, 11
F_OFD_GETLK, F_OFD_SETLK, F_OFD_SETLKW = 36, 37, 38
F_NOTIFY = 1026
F_SETPIPE_SZ, F_GETPIPE_SZ = 1031, 1032
FLOCK = struct.Struct("<hh4xqqi4x")  # l_type, l_whence, (pad), l_start, l_len, l_pid
O_DIRECT = 0o40000
MAX_LOFF = (1 << 63) - 1  # the largest loff_t: file sizes and offsets end here


def read(t: Task, a: Args) -> int:
    """read(2). A pipe's read may be finished by the writer (sentry/kernel/parking.py)."""
    f = t.fds.get(s32(a[0]))
    if not f.readable():
        raise SyscallError(errno.EBADF)
    count = min(a[2], MAX_RW_COUNT)
    read_into = getattr(f, "read_into", None)
    if read_into is not None and count and parking.can_park(t):
        return read_into(t, a[1], count)
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


def _verify_area(pos: int, count: int) -> None:
    """Linux's rw_verify_area for an explicit offset: EINVAL for a count with the
    top bit set, a negative offset, or an end past the largest loff_t (a file
    could otherwise grow beyond what lseek and stat can return)."""
    if count > MAX_LOFF or pos < 0 or pos + count > MAX_LOFF:
        raise SyscallError(errno.EINVAL)


def pread64(t: Task, a: Args) -> int:
    """pread64(2)."""
    f = t.fds.get(s32(a[0]))
    _verify_area(s64(a[3]), a[2])
    if not f.readable():
        raise SyscallError(errno.EBADF)
    data = f.pread(min(a[2], MAX_RW_COUNT), a[3])
    if data:
        t.mm.copy_out(a[1], data)
    return len(data)


def pwrite64(t: Task, a: Args) -> int:
    """pwrite64(2)."""
    f = t.fds.get(s32(a[0]))
    _verify_area(s64(a[3]), a[2])
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


def preadv(t: Task, a: Args) -> int:
    """preadv(2): one pread at the offset (pos_l; on x86-64 pos_h is shifted out)
    scattered into the buffers."""
    f = t.fds.get(s32(a[0]))
    iovs = read_iovecs(t, a[1], a[2])
    total = min(sum(n for _, n in iovs), MAX_RW_COUNT)
    _verify_area(s64(a[3]), total)
    if not f.readable():
        raise SyscallError(errno.EBADF)
    data = f.pread(total, a[3]) if total else b""
    off = 0
    for base, n in iovs:
        if off >= len(data):
            break
        chunk = data[off : off + n]
        t.mm.copy_out(base, chunk)
        off += len(chunk)
    return len(data)


def pwritev(t: Task, a: Args) -> int:
    """pwritev(2): the buffers gathered into one pwrite at the offset."""
    f = t.fds.get(s32(a[0]))
    iovs = read_iovecs(t, a[1], a[2])
    total = min(sum(n for _, n in iovs), MAX_RW_COUNT)
    _verify_area(s64(a[3]), total)
    if not f.writable():
        raise SyscallError(errno.EBADF)
    parts = []
    left = total
    for base, n in iovs:
        n = min(n, left)
        if n:
            parts.append(t.mm.copy_in(base, n))
            left -= n
    return f.pwrite(b"".join(parts), a[3]) if parts else 0


RWF_HIPRI, RWF_DSYNC, RWF_SYNC = 1, 2, 4  # hints with nothing to do here


def _rwf(flags: int) -> None:
    if flags & ~(RWF_HIPRI | RWF_DSYNC | RWF_SYNC):
        raise SyscallError(errno.EOPNOTSUPP)  # RWF_NOWAIT, RWF_APPEND, unknown


def preadv2(t: Task, a: Args) -> int:
    """preadv2(2): offset -1 reads at the file position (readv)."""
    _rwf(a[5] & 0xFFFFFFFF)
    if s64(a[3]) == -1:
        return readv(t, a)
    return preadv(t, a)


def pwritev2(t: Task, a: Args) -> int:
    """pwritev2(2): offset -1 writes at the file position (writev)."""
    _rwf(a[5] & 0xFFFFFFFF)
    if s64(a[3]) == -1:
        return writev(t, a)
    return pwritev(t, a)


def fadvise64(t: Task, a: Args) -> int:
    """fadvise64(2): advice is accepted and ignored (the page cache is the
    Sentry's); EBADF, ESPIPE for pipes, EINVAL for unknown advice or length."""
    f = t.fds.get(s32(a[0]))
    if getattr(f, "pipe", None) is not None:
        raise SyscallError(errno.ESPIPE)
    if not 0 <= s32(a[3]) <= 5 or s64(a[2]) < 0:
        raise SyscallError(errno.EINVAL)
    return 0


def lseek(t: Task, a: Args) -> int:
    """lseek(2)."""
    whence = s32(a[2])
    if whence not in (os.SEEK_SET, os.SEEK_CUR, os.SEEK_END, os.SEEK_DATA, os.SEEK_HOLE):
        raise SyscallError(errno.EINVAL)
    return t.fds.get(s32(a[0])).seek(s64(a[1]), whence)


def close(t: Task, a: Args) -> int:
    """close(2): also drops the process's record locks on that file (POSIX)."""
    fd = s32(a[0])
    f = t.fds.get(fd)
    if getattr(f, "lock_owners", None):
        LOCKS.release_owner(_lock_key(f), t.pid)
    t.fds.close(fd)
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
    """ioctl(2): the generic fd requests here, the rest by the file (terminals,
    pipes' FIONREAD)."""
    fd, cmd = s32(a[0]), a[1] & 0xFFFFFFFF
    f = t.fds.get(fd)
    if cmd == FIOCLEX or cmd == FIONCLEX:
        t.fds.set_cloexec(fd, cmd == FIOCLEX)
        return 0
    if cmd == FIONBIO and not hasattr(f, "host_fd"):
        on = struct.unpack("<i", t.mm.copy_in(a[2], 4))[0]
        f.flags = (f.flags | O_NONBLOCK) if on else (f.flags & ~O_NONBLOCK)
        return 0
    if cmd == FIONREAD and getattr(f, "read_pages", None) is not None:
        left = max(0, f.stat().size - f.seek(0, os.SEEK_CUR))
        t.mm.copy_out(a[2], struct.pack("<i", min(left, 0x7FFFFFFF)))
        return 0
    return f.ioctl(cmd, a[2], t)


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
    if cmd in (F_GETLK, F_SETLK, F_SETLKW, F_OFD_GETLK, F_OFD_SETLK, F_OFD_SETLKW):
        return _record_lock(t, f, cmd, arg)
    if cmd == F_GETPIPE_SZ:
        return getattr(getattr(f, "pipe", None), "capacity", 0) or _einval()
    if cmd == F_SETPIPE_SZ:
        pipe = getattr(f, "pipe", None)
        if pipe is None:
            raise SyscallError(errno.EBADF)
        return pipe.set_capacity(arg & 0xFFFFFFFF)
    if cmd in (F_GETOWN, F_SETOWN, F_NOTIFY, F_SETSIG, F_GETSIG):
        return 0
    raise SyscallError(errno.EINVAL)


def _einval() -> int:
    raise SyscallError(errno.EINVAL)


def _lock_key(f: FileDescription) -> int:
    d = dentry_of(f)
    if d is None:
        raise SyscallError(errno.EBADF)
    return id(d.inode)


def _record_lock(t: Task, f: FileDescription, cmd: int, arg: int) -> int:
    """F_GETLK/F_SETLK/F_SETLKW (and the OFD forms, owned by the description)."""
    kind, whence, start, length, _pid = FLOCK.unpack(t.mm.copy_in(arg, FLOCK.size))
    if kind not in (F_RDLCK, F_WRLCK, F_UNLCK):
        raise SyscallError(errno.EINVAL)
    if whence == os.SEEK_CUR:
        start += f.seek(0, os.SEEK_CUR)
    elif whence == os.SEEK_END:
        start += f.stat().size
    elif whence != os.SEEK_SET:
        raise SyscallError(errno.EINVAL)
    if length < 0:
        start, length = start + length, -length
    if start < 0:
        raise SyscallError(errno.EINVAL)
    end = start + length if length else LOCK_END
    key = _lock_key(f)
    ofd = cmd in (F_OFD_GETLK, F_OFD_SETLK, F_OFD_SETLKW)
    owner = -id(f) if ofd else t.pid
    if cmd in (F_GETLK, F_OFD_GETLK):
        c = LOCKS.conflict(key, owner, kind, start, end)
        if c is None:
            out = FLOCK.pack(F_UNLCK, os.SEEK_SET, start, length, 0)
        else:
            out = FLOCK.pack(c.kind, os.SEEK_SET, c.start,
                             0 if c.end == LOCK_END else c.end - c.start,
                             -1 if c.owner < 0 else c.owner)
        t.mm.copy_out(arg, out)
        return 0
    if kind == F_RDLCK and not f.readable() or kind == F_WRLCK and not f.writable():
        raise SyscallError(errno.EBADF)
    f.lock_owners = getattr(f, "lock_owners", set()) | {owner}  # type: ignore[attr-defined]
    LOCKS.set(key, owner, kind, start, end, cmd in (F_SETLKW, F_OFD_SETLKW), t.check_interrupt)
    return 0


def flock(t: Task, a: Args) -> int:
    """flock(2): LOCK_SH / LOCK_EX / LOCK_UN, LOCK_NB."""
    f = t.fds.get(s32(a[0]))
    op = s32(a[1])
    kinds = {1: F_RDLCK, 2: F_WRLCK, 8: F_UNLCK}
    kind = kinds.get(op & ~4)
    if kind is None:
        raise SyscallError(errno.EINVAL)
    key = _lock_key(f)
    LOCKS.flock(key, id(f), kind, not op & 4, t.check_interrupt)
    f.flock_key = key  # type: ignore[attr-defined]  # dropped with the description
    return 0


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


def sendfile(t: Task, a: Args) -> int:
    """sendfile(2): in-Sentry copy between two descriptions, in 1 MiB pieces."""
    out_f, in_f = t.fds.get(s32(a[0])), t.fds.get(s32(a[1]))
    if not in_f.readable() or not out_f.writable():
        raise SyscallError(errno.EBADF)
    count = min(a[3], MAX_RW_COUNT)
    offset = None
    if a[2]:
        offset = struct.unpack("<q", t.mm.copy_in(a[2], 8))[0]
        if offset < 0:
            raise SyscallError(errno.EINVAL)
    done = 0
    while done < count:
        n = min(count - done, 1 << 20)
        data = in_f.pread(n, offset + done) if offset is not None else in_f.read(n)
        if not data:
            break
        wrote = _write(t, out_f, data) if done == 0 else _write_more(t, out_f, data)
        done += wrote
        if wrote < len(data):
            if offset is None:
                in_f.seek(wrote - len(data), os.SEEK_CUR)
            break
    if offset is not None:
        t.mm.copy_out(a[2], struct.pack("<q", offset + done))
    return done


def _write_more(t: Task, f: FileDescription, data: bytes) -> int:
    """A later piece of a transfer: an error ends it early with what was done."""
    try:
        return _write(t, f, data)
    except SyscallError:
        return 0


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
    supported("sendfile", sendfile),
    partial("pipe2", pipe2, note="O_DIRECT (packet mode) is accepted as a byte stream"),
    supported("read", read),
    supported("write", write),
    supported("pread64", pread64),
    supported("pwrite64", pwrite64),
    supported("readv", readv),
    supported("writev", writev),
    supported("preadv", preadv),
    supported("pwritev", pwritev),
    partial("preadv2", preadv2, note="RWF_HIPRI/DSYNC/SYNC ignored; no RWF_NOWAIT/APPEND"),
    partial("pwritev2", pwritev2, note="RWF_HIPRI/DSYNC/SYNC ignored; no RWF_NOWAIT/APPEND"),
    partial("fadvise64", fadvise64, note="advice accepted and ignored"),
    supported("lseek", lseek),
    supported("close", close),
    supported("close_range", close_range),
    supported("fstat", fstat),
    partial("ioctl", ioctl, note="terminal ioctls, FIONBIO, FIONREAD, FIOCLEX"),
    partial("fcntl", fcntl, note="locks are advisory among the sandbox's processes"),
    supported("flock", flock),
    supported("dup", dup),
    supported("dup2", dup2),
    supported("dup3", dup3),
]
