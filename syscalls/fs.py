"""File-descriptor syscalls: read/write and friends, stat on fds, ioctl, fcntl,
poll, dup.  Paths arrive with the VFS (sentry/vfs)."""

from __future__ import annotations

import errno
import os
import stat
import struct
from collections.abc import Callable
from typing import TYPE_CHECKING

from sentry.kernel import parking, rlimits
from sentry.kernel.creds import CAP_SYS_ADMIN, CAP_SYS_RESOURCE
from sentry.kernel.errors import SyscallError
from sentry.kernel.signals import SIGPIPE, SIGXFSZ, SigInfo
from sentry.vfs.description import PathDescription, dentry_of
from sentry.vfs.file import O_APPEND, O_CLOEXEC, O_NONBLOCK, SETFL_MASK, FileDescription
from sentry.vfs.locks import END as LOCK_END
from sentry.vfs.locks import F_RDLCK, F_UNLCK, F_WRLCK, LOCKS
from sentry.vfs.pipe import PipeFile, make_pipe
from sentry.vfs.tmpfs import F_ADD_SEALS, F_GET_SEALS, file_seals
from syscalls import dnotify, fcntl_cmds, fs_ioctl
from syscalls.abi import (
    MAX_RW_COUNT,
    pack_stat,
    read_iovecs,
    s32,
    s64,
)
from syscalls.namespaces import unshare_files
from syscalls.pieces import PIECE, takes_pieces, write_pieces
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
O_ASYNC = 0o20000
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
    read_to = getattr(f, "read_to", None)  # regular files: no bytes in between
    if read_to is not None:
        return read_to(t.mm, a[1], count)
    data = f.read(count)
    if data:
        t.mm.copy_out(a[1], data)
    return len(data)


def _write(t: Task, f: FileDescription, data: bytes) -> int:
    """One write; a broken pipe also raises SIGPIPE at the writer, as Linux
    does, also when the last reader left in the middle of a blocking write
    (pipe_write sends it with the bytes written so far)."""
    try:
        n = f.write(data)
    except SyscallError as exc:
        if exc.errno == errno.EPIPE:
            t.kernel.send_task(t, SigInfo(SIGPIPE, pid=t.pid, uid=t.creds.uid))
        raise
    if n < len(data) and isinstance(f, PipeFile) and not f.flags & O_NONBLOCK \
            and f.pipe.readers == 0:
        t.kernel.send_task(t, SigInfo(SIGPIPE, pid=t.pid, uid=t.creds.uid))
    return n


def fsize_room(t: Task, f: FileDescription, pos: int | None, count: int) -> int:
    """RLIMIT_FSIZE, as Linux's generic_write_check_limits: how many of
    ``count`` bytes a regular file may take at ``pos`` (None: the
    description's offset, or its end under O_APPEND); none at all is SIGXFSZ
    to the caller and EFBIG. Other kinds of file have no such limit."""
    limit = rlimits.get(t.tg, rlimits.RLIMIT_FSIZE)[0]
    if limit == rlimits.RLIM_INFINITY or not count:
        return count
    st = f.stat()
    if not stat.S_ISREG(st.mode):  # pipes, sockets, devices, host ttys
        return count
    if pos is None:
        pos = st.size if f.flags & O_APPEND else f.seek(0, os.SEEK_CUR)
    if pos >= limit:
        t.kernel.send_task(t, SigInfo(SIGXFSZ, pid=t.pid, uid=t.creds.uid))
        raise SyscallError(errno.EFBIG)
    return min(count, limit - pos)


def check_new_size(t: Task, size: int) -> None:
    """truncate to past RLIMIT_FSIZE (inode_newsize_ok): SIGXFSZ and EFBIG."""
    limit = rlimits.get(t.tg, rlimits.RLIMIT_FSIZE)[0]
    if limit != rlimits.RLIM_INFINITY and size > limit:
        t.kernel.send_task(t, SigInfo(SIGXFSZ, pid=t.pid, uid=t.creds.uid))
        raise SyscallError(errno.EFBIG)


def write(t: Task, a: Args) -> int:
    """write(2)."""
    f = t.fds.get(s32(a[0]))
    if not f.writable():
        raise SyscallError(errno.EBADF)
    count = fsize_room(t, f, None, min(a[2], MAX_RW_COUNT))
    if count > PIECE and takes_pieces(f):  # never the whole of it in the Sentry
        return write_pieces(t, [(a[1], count)], count, _piece_writer(t, f))
    return _write(t, f, t.mm.copy_in(a[1], count)) if count else 0


def _piece_writer(t: Task, f: FileDescription) -> Callable[[bytes, int], int]:
    """A piece of a large write (syscalls/pieces.py): SIGPIPE as ``_write``
    sends it, except to a socket's writer once bytes went (Linux's socket
    sends raise it only when nothing went; pipe_write always)."""
    socket = not isinstance(f, PipeFile)
    return lambda d, done: f.write(d) if done and socket else _write(t, f, d)


def _verify_area(pos: int, count: int) -> None:
    """Linux's rw_verify_area for an explicit offset: EINVAL for a count with the
    top bit set, a negative offset, or an end past the largest loff_t (a file
    could otherwise grow beyond what lseek and stat can return)."""
    if count > MAX_LOFF or pos < 0 or pos + count > MAX_LOFF:
        raise SyscallError(errno.EINVAL)


def _positional(f: FileDescription, write: bool) -> None:
    """ESPIPE for a file without positional I/O (pipes, sockets, fifos: no
    FMODE_PREAD/PWRITE), checked before the access mode, as Linux does."""
    name = "pwrite" if write else "pread"
    if getattr(type(f), name) is getattr(FileDescription, name):
        raise SyscallError(errno.ESPIPE)


def pread64(t: Task, a: Args) -> int:
    """pread64(2)."""
    f = t.fds.get(s32(a[0]))
    _verify_area(s64(a[3]), a[2])
    _positional(f, False)
    if not f.readable():
        raise SyscallError(errno.EBADF)
    pread_to = getattr(f, "pread_to", None)  # regular files: no bytes in between
    if pread_to is not None:
        return pread_to(t.mm, a[1], min(a[2], MAX_RW_COUNT), a[3])
    data = f.pread(min(a[2], MAX_RW_COUNT), a[3])
    if data:
        t.mm.copy_out(a[1], data)
    return len(data)


def pwrite64(t: Task, a: Args) -> int:
    """pwrite64(2)."""
    f = t.fds.get(s32(a[0]))
    _verify_area(s64(a[3]), a[2])
    _positional(f, True)
    if not f.writable():
        raise SyscallError(errno.EBADF)
    count = fsize_room(t, f, a[3], min(a[2], MAX_RW_COUNT))
    return f.pwrite(t.mm.copy_in(a[1], count), a[3]) if count else 0


def readv(t: Task, a: Args) -> int:
    """readv(2): one read for the whole vector, scattered into the buffers."""
    f = t.fds.get(s32(a[0]))
    if not f.readable():
        raise SyscallError(errno.EBADF)
    iovs = read_iovecs(t, a[1], a[2])
    total = min(sum(n for _, n in iovs), MAX_RW_COUNT)
    data = f.read(total) if total else b""
    _scatter(t, iovs, data)
    return len(data)


def writev(t: Task, a: Args) -> int:
    """writev(2): the buffers gathered into one write."""
    f = t.fds.get(s32(a[0]))
    if not f.writable():
        raise SyscallError(errno.EBADF)
    iovs = read_iovecs(t, a[1], a[2])
    parts = []
    total = 0
    room = fsize_room(t, f, None, min(sum(n for _, n in iovs), MAX_RW_COUNT))
    if room > PIECE and takes_pieces(f):  # never the whole of it in the Sentry
        return write_pieces(t, iovs, room, _piece_writer(t, f))
    for base, n in iovs:
        n = min(n, room - total)
        if n:
            parts.append(t.mm.copy_in(base, n))
            total += n
    data = b"".join(parts)
    return _write(t, f, data) if data else 0


RWF_HIPRI, RWF_DSYNC, RWF_SYNC, RWF_NOWAIT, RWF_APPEND = 1, 2, 4, 8, 16
# ... and NOAPPEND, ATOMIC, DONTCACHE and the newest bit, accepted as hints
# (this kind of host takes them all): every write here is already synchronous.
RWF_SUPPORTED = 0x1FF


def _scatter(t: Task, iovs: list[tuple[int, int]], data: bytes) -> None:
    off = 0
    for base, n in iovs:
        if off >= len(data):
            break
        chunk = data[off:off + n]
        t.mm.copy_out(base, chunk)
        off += len(chunk)


def _gather(t: Task, iovs: list[tuple[int, int]], room: int) -> bytes:
    parts = []
    total = 0
    for base, n in iovs:
        n = min(n, room - total)
        if n:
            parts.append(t.mm.copy_in(base, n))
            total += n
    return b"".join(parts)


def _rw_flags(flags: int) -> int:
    if flags & ~RWF_SUPPORTED:
        raise SyscallError(errno.EOPNOTSUPP)
    return flags


def preadv2(t: Task, a: Args) -> int:
    """preadv2(2): an offset of -1 reads at (and moves) the file offset, as readv."""
    f = t.fds.get(s32(a[0]))
    offset = s64(a[3])
    _rw_flags(s32(a[5]))
    if offset < -1:
        raise SyscallError(errno.EINVAL)
    if offset != -1:
        _positional(f, False)
    if not f.readable():
        raise SyscallError(errno.EBADF)
    iovs = read_iovecs(t, a[1], a[2])
    total = min(sum(n for _, n in iovs), MAX_RW_COUNT)
    if offset == -1:
        data = f.read(total) if total else b""
    else:
        _verify_area(offset, total)
        data = f.pread(total, offset) if total else b""
    _scatter(t, iovs, data)
    return len(data)


def preadv(t: Task, a: Args) -> int:
    """preadv(2): at an offset (pos_l; pos_h is 0 on a 64-bit kernel)."""
    if s64(a[3]) < 0:
        raise SyscallError(errno.EINVAL)
    return preadv2(t, (a[0], a[1], a[2], a[3], 0, 0))


def pwritev2(t: Task, a: Args) -> int:
    """pwritev2(2): -1 writes at the file offset; RWF_APPEND at the end."""
    f = t.fds.get(s32(a[0]))
    offset, flags = s64(a[3]), _rw_flags(s32(a[5]))
    if offset < -1:
        raise SyscallError(errno.EINVAL)
    if offset != -1:
        _positional(f, True)
    if not f.writable():
        raise SyscallError(errno.EBADF)
    iovs = read_iovecs(t, a[1], a[2])
    total = min(sum(n for _, n in iovs), MAX_RW_COUNT)
    if flags & RWF_APPEND:
        offset = f.stat().size
    if offset != -1:
        _verify_area(offset, total)
    pos = None if offset == -1 else offset
    data = _gather(t, iovs, fsize_room(t, f, pos, total))
    if not data:
        return 0
    return _write(t, f, data) if pos is None else f.pwrite(data, pos)


def pwritev(t: Task, a: Args) -> int:
    """pwritev(2)."""
    if s64(a[3]) < 0:
        raise SyscallError(errno.EINVAL)
    return pwritev2(t, (a[0], a[1], a[2], a[3], 0, 0))


def _seekable_file(t: Task, fd: int) -> FileDescription:
    """A descriptor fadvise may act on: ESPIPE for pipes, fifos and sockets."""
    f = t.fds.get(fd)
    mode = f.stat().mode
    if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
        raise SyscallError(errno.ESPIPE)
    return f


def fadvise64(t: Task, a: Args) -> int:
    """fadvise64(2): advice checked and accepted (the page cache is the Sentry's)."""
    _seekable_file(t, s32(a[0]))
    if s64(a[2]) < 0 or not 0 <= s32(a[3]) <= 5:
        raise SyscallError(errno.EINVAL)
    return 0


def readahead(t: Task, a: Args) -> int:
    """readahead(2): a readable regular file; nothing to do ahead of time."""
    f = t.fds.get(s32(a[0]))
    if not f.readable():
        raise SyscallError(errno.EBADF)
    if not stat.S_ISREG(f.stat().mode):
        raise SyscallError(errno.EINVAL)
    return 0


def sync_file_range(t: Task, a: Args) -> int:
    """sync_file_range(2): arguments checked; data written through the Sentry
    is already where a read finds it."""
    offset, nbytes, flags = s64(a[1]), s64(a[2]), s32(a[3])
    if flags & ~7 or offset < 0 or nbytes < 0 or offset + nbytes >= 1 << 63:
        raise SyscallError(errno.EINVAL)
    mode = t.fds.get(s32(a[0])).stat().mode
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode) or stat.S_ISBLK(mode)
            or stat.S_ISLNK(mode)):
        raise SyscallError(errno.ESPIPE)
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
    dnotify.flush(t, f)
    t.fds.close(fd)
    return 0


def close_range(t: Task, a: Args) -> int:
    """close_range(2): CLOSE_RANGE_CLOEXEC marks instead of closing;
    CLOSE_RANGE_UNSHARE first gives the process its own table (the sharers
    keep theirs open)."""
    first, last, flags = a[0] & 0xFFFFFFFF, a[1] & 0xFFFFFFFF, a[2]
    if flags & ~0x6 or first > last:
        raise SyscallError(errno.EINVAL)
    if flags & 0x2:
        unshare_files(t)
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
    if not isinstance(f, PathDescription):
        res = fs_ioctl.generic(t, f, cmd, a[2])
        if res is not None:
            return res
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
        if arg & O_ASYNC and not f.flags & O_ASYNC:
            f.__dict__["async_fd"] = fd  # si_fd of its SIGIO (Linux's fasync entry)
            pipe = getattr(f, "pipe", None)
            if pipe is not None and f not in pipe.async_ends:
                pipe.async_ends.append(f)
        f.flags = (f.flags & ~SETFL_MASK) | (arg & SETFL_MASK)
        return 0
    if cmd in (F_GETLK, F_SETLK, F_SETLKW, F_OFD_GETLK, F_OFD_SETLK, F_OFD_SETLKW):
        return _record_lock(t, f, cmd, arg)
    if cmd in fcntl_cmds.COMMANDS:
        return fcntl_cmds.handle(t, f, cmd, arg, fd)
    if cmd == F_NOTIFY:
        return dnotify.fcntl_notify(t, f, fd, arg)
    if cmd in (F_ADD_SEALS, F_GET_SEALS):
        return file_seals(f, cmd, arg & 0xFFFFFFFF)
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
    given = FLOCK.unpack(t.mm.copy_in(arg, FLOCK.size))
    kind, whence, start, length, _pid = given
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
        if c is None:  # Linux changes only l_type: the rest is what was given
            out = FLOCK.pack(F_UNLCK, *given[1:])
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
    c, sc = t.creds, t.kernel.sysctl
    privileged = c.capable(CAP_SYS_RESOURCE) or c.capable(CAP_SYS_ADMIN)
    r, w = make_pipe(flags & O_NONBLOCK, user=(c.uid, sc.pipe_user_pages_soft,
                                              sc.pipe_user_pages_hard, privileged))
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
    supported("preadv2", preadv2),
    supported("pwritev2", pwritev2),
    partial("fadvise64", fadvise64, note="advice checked, not acted on"),
    partial("readahead", readahead, note="checked; nothing is read ahead"),
    partial("sync_file_range", sync_file_range, note="checked; nothing to flush"),
    supported("lseek", lseek),
    supported("close", close),
    supported("close_range", close_range),
    supported("fstat", fstat),
    partial("ioctl", ioctl, note="terminal ioctls (TCGETS, TCGETA...), FIONBIO, FIONREAD, FIOCLEX, "
            "ioctl_ns (NS_GET_*), RNDGETENTCNT, FS_IOC_[GS]ETFLAGS (tmpfs, overlay), loop "
            "devices (LOOP_*, LOOP_CTL_*) and the block calls (BLKGETSIZE64...) on the RAM "
            "disk and loop devices, PROCMAP_QUERY on /proc/PID/maps; FICLONE is EOPNOTSUPP "
            "(no reflinks)"),
    partial("fcntl", fcntl, note="locks advisory within the sandbox; leases broken by "
            "conflicting opens; O_ASYNC's SIGIO for pipes only; dnotify (F_NOTIFY)"),
    supported("flock", flock),
    supported("dup", dup),
    supported("dup2", dup2),
    supported("dup3", dup3),
]
