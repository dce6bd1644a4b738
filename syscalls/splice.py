"""Moving data between descriptors without user memory: splice, tee,
vmsplice and copy_file_range.

Facts about Linux's versions that shape this module (fs/splice.c,
fs/read_write.c):

* splice needs a pipe on at least one side (EINVAL otherwise; the same pipe
  on both sides is EINVAL too); an offset pointer on a pipe's side is ESPIPE;
  a file opened O_APPEND cannot be spliced into (EINVAL). It moves no more
  than the output pipe has room for, and returns 0 at the input's end.
  SPLICE_F_NONBLOCK (or the pipe's O_NONBLOCK) makes the pipe side EAGAIN
  rather than wait.
* tee copies from one pipe to another without consuming the input.
* vmsplice writes user memory into a pipe (or reads a pipe into it, from its
  read end).
* copy_file_range copies between regular files (EISDIR for a directory,
  EINVAL for other kinds, EBADF for an output opened O_APPEND), with its own
  offsets or the files'; overlapping ranges of one file are EINVAL.

Here every move is a copy through the Sentry; there is no page stealing.
"""

from __future__ import annotations

import errno
import os
import stat
import struct
from typing import TYPE_CHECKING

from sentry.kernel.errors import SyscallError
from sentry.vfs import iflags
from sentry.vfs.file import O_APPEND, O_NONBLOCK, FileDescription
from sentry.vfs.pipe import PipeFile
from syscalls.abi import MAX_RW_COUNT, read_iovecs, s32
from syscalls.fs import fsize_room
from syscalls.table import Entry, partial, supported

if TYPE_CHECKING:
    from sentry.kernel.task import Task

Args = tuple[int, ...]

SPLICE_F_MOVE, SPLICE_F_NONBLOCK, SPLICE_F_MORE, SPLICE_F_GIFT = 1, 2, 4, 8
SPLICE_FLAGS = SPLICE_F_MOVE | SPLICE_F_NONBLOCK | SPLICE_F_MORE | SPLICE_F_GIFT
CHUNK = 1 << 20
OFF = struct.Struct("<q")


def _offset(t: Task, addr: int) -> int | None:
    if not addr:
        return None
    (off,) = OFF.unpack(t.mm.copy_in(addr, OFF.size))
    if off < 0:
        raise SyscallError(errno.EINVAL)
    return off


def _nonblock(f: FileDescription, flags: int) -> bool:
    return bool(flags & SPLICE_F_NONBLOCK or f.flags & O_NONBLOCK)


def splice(t: Task, a: Args) -> int:
    """splice(2)."""
    in_f, out_f = t.fds.get(s32(a[0])), t.fds.get(s32(a[2]))
    count, flags = min(a[4], MAX_RW_COUNT), s32(a[5])
    if flags & ~SPLICE_FLAGS:
        raise SyscallError(errno.EINVAL)
    if not in_f.readable() or not out_f.writable():
        raise SyscallError(errno.EBADF)
    ipipe, opipe = isinstance(in_f, PipeFile), isinstance(out_f, PipeFile)
    if not ipipe and not opipe:
        raise SyscallError(errno.EINVAL)
    if (ipipe and a[1]) or (opipe and a[3]):
        raise SyscallError(errno.ESPIPE)
    if ipipe and opipe and in_f.pipe is out_f.pipe:  # type: ignore[attr-defined]
        raise SyscallError(errno.EINVAL)
    if not opipe and out_f.flags & O_APPEND:
        raise SyscallError(errno.EINVAL)
    if not ipipe and stat.S_ISDIR(in_f.stat().mode):
        raise SyscallError(errno.EINVAL)  # a directory has no splice_read
    # An anonymous-inode file (epoll, eventfd, timerfd, signalfd, inotify,
    # pidfd: no file type in its mode) has no splice_read or splice_write:
    # EINVAL before any wait on the pipe side, as do_splice's checks.
    if (not ipipe and not stat.S_IFMT(in_f.stat().mode)) or \
            (not opipe and not stat.S_IFMT(out_f.stat().mode)):
        raise SyscallError(errno.EINVAL)
    off_in, off_out = _offset(t, a[1]), _offset(t, a[3])
    if not count:
        return 0
    if opipe:
        room = out_f.pipe.room()  # type: ignore[attr-defined]
        if room <= 0 and _nonblock(out_f, flags):
            raise SyscallError(errno.EAGAIN)
        count = min(count, max(room, 1 if ipipe else 4096))
    else:
        count = fsize_room(t, out_f, off_out, count)
    if ipipe:
        data = in_f.pipe.read(count, _nonblock(in_f, flags))  # type: ignore[attr-defined]
    else:
        data = in_f.pread(count, off_in) if off_in is not None else in_f.read(count)
    if not data:
        return 0
    if opipe:
        n = out_f.pipe.write(data, _nonblock(out_f, flags))  # type: ignore[attr-defined]
    else:
        n = out_f.pwrite(data, off_out) if off_out is not None else out_f.write(data)
    if not ipipe and n < len(data) and off_in is None:
        in_f.seek(n - len(data), os.SEEK_CUR)  # give back what was not moved
    if off_in is not None:
        t.mm.copy_out(a[1], OFF.pack(off_in + n))
    if off_out is not None:
        t.mm.copy_out(a[3], OFF.pack(off_out + n))
    return n


def tee(t: Task, a: Args) -> int:
    """tee(2): pipe to pipe, the input kept."""
    in_f, out_f = t.fds.get(s32(a[0])), t.fds.get(s32(a[1]))
    count, flags = min(a[2], MAX_RW_COUNT), s32(a[3])
    if flags & ~SPLICE_FLAGS:
        raise SyscallError(errno.EINVAL)
    if not isinstance(in_f, PipeFile) or not isinstance(out_f, PipeFile) \
            or in_f.pipe is out_f.pipe:
        raise SyscallError(errno.EINVAL)
    if not in_f.readable() or not out_f.writable():
        raise SyscallError(errno.EBADF)
    if not count:
        return 0
    room = out_f.pipe.room()
    if room <= 0 and _nonblock(out_f, flags):
        raise SyscallError(errno.EAGAIN)
    data = in_f.pipe.peek(min(count, max(room, 1)), _nonblock(in_f, flags))
    return out_f.pipe.write(data, _nonblock(out_f, flags)) if data else 0


PIPE_PAGE = 4096  # one pipe buffer: what a full pipe's first free slot takes


def vmsplice(t: Task, a: Args) -> int:
    """vmsplice(2): user memory into a pipe's write end, or out of its read end."""
    f = t.fds.get(s32(a[0]))
    flags = s32(a[3])
    if flags & ~SPLICE_FLAGS:
        raise SyscallError(errno.EINVAL)
    if not isinstance(f, PipeFile):
        raise SyscallError(errno.EBADF)
    iovs = read_iovecs(t, a[1], a[2])
    total = min(sum(n for _, n in iovs), MAX_RW_COUNT)
    if f.writable():
        # As much as fits now, waiting (unless non-blocking) only while the
        # pipe is full: Linux's vmsplice returns a short count rather than
        # wait for room for everything (its caller may be the pipe's reader).
        room = f.pipe.room()
        left = min(total, room if room > 0 else PIPE_PAGE)
        parts = []
        for base, n in iovs:
            if left <= 0:
                break
            if n:
                parts.append(t.mm.copy_in(base, min(n, left)))
                left -= min(n, left)
        data = b"".join(parts)
        return f.pipe.write(data, _nonblock(f, flags)) if data else 0
    data = f.pipe.read(total, _nonblock(f, flags)) if total else b""
    done = 0
    for base, n in iovs:
        piece = data[done:done + n]
        if not piece:
            break
        t.mm.copy_out(base, piece)
        done += len(piece)
    return done


MAX_LFS_FILESIZE = (1 << 63) - 1


def copy_file_range(t: Task, a: Args) -> int:
    """copy_file_range(2)."""
    in_f, out_f = t.fds.get(s32(a[0])), t.fds.get(s32(a[2]))
    count, flags = a[4], s32(a[5])
    if flags:
        raise SyscallError(errno.EINVAL)
    # generic_file_rw_checks' order: kinds of file first, then the modes.
    st_in, st_out = in_f.stat(), out_f.stat()
    if stat.S_ISDIR(st_in.mode) or stat.S_ISDIR(st_out.mode):
        raise SyscallError(errno.EISDIR)
    if not stat.S_ISREG(st_in.mode) or not stat.S_ISREG(st_out.mode):
        raise SyscallError(errno.EINVAL)
    if not in_f.readable() or not out_f.writable() or out_f.flags & O_APPEND:
        raise SyscallError(errno.EBADF)
    off_in, off_out = _offset(t, a[1]), _offset(t, a[3])
    pos_in = off_in if off_in is not None else in_f.seek(0, os.SEEK_CUR)
    pos_out = off_out if off_out is not None else out_f.seek(0, os.SEEK_CUR)
    # generic_copy_file_checks: an immutable target (EPERM), offsets that
    # wrap (u64 sums), then the copy
    # shortened to the source's end, then the target's size limit (EFBIG).
    if getattr(getattr(out_f, "inode", None), "iflags", 0) & iflags.FS_IMMUTABLE_FL:
        raise SyscallError(errno.EPERM)
    if pos_in + count >= 1 << 64 or pos_out + count >= 1 << 64:
        raise SyscallError(errno.EOVERFLOW)
    count = 0 if pos_in >= st_in.size else min(count, st_in.size - pos_in)
    count = min(count, MAX_RW_COUNT)
    if count and pos_out >= MAX_LFS_FILESIZE:
        raise SyscallError(errno.EFBIG)
    count = min(count, MAX_LFS_FILESIZE - pos_out)
    same = (st_in.dev, st_in.ino) == (st_out.dev, st_out.ino)
    if same and pos_in < pos_out + count and pos_out < pos_in + count:
        raise SyscallError(errno.EINVAL)
    count = fsize_room(t, out_f, pos_out, count)
    done = 0
    while done < count:
        data = in_f.pread(min(count - done, CHUNK), pos_in + done)
        if not data:
            break
        n = out_f.pwrite(data, pos_out + done)
        done += n
        if n < len(data):
            break
    if off_in is not None:
        t.mm.copy_out(a[1], OFF.pack(off_in + done))
    else:
        in_f.seek(pos_in + done, os.SEEK_SET)
    if off_out is not None:
        t.mm.copy_out(a[3], OFF.pack(off_out + done))
    else:
        out_f.seek(pos_out + done, os.SEEK_SET)
    return done


ENTRIES: list[Entry] = [
    partial("splice", splice, note="a copy through the Sentry; no page moving"),
    supported("tee", tee),
    supported("vmsplice", vmsplice),
    supported("copy_file_range", copy_file_range),
]
