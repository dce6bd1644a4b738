"""Generic file descriptions over the Inode interface.

Every filesystem's regular files share one description (an offset over
``Inode.read_at``/``write_at``), and every directory one getdents
implementation (a snapshot of ``Inode.iterdir`` with "." and ".." first), so a
filesystem only says how to read its bytes and list its names.

Directory offsets: entry *i* of the snapshot has d_off *i + 1*, so
``lseek(fd, d_off, SEEK_SET)`` resumes after that entry and telldir/seekdir
work.  The snapshot is taken on the first getdents and again after a seek to 0
(rewinddir); POSIX leaves names added or removed after opendir unspecified.

Lock order: a description's ``_lock`` (offset) is taken before the inode's
data lock; neither is held while calling into the VFS tree.
"""

from __future__ import annotations

import errno
import struct
import threading
from typing import TYPE_CHECKING, Any

from sentry.kernel.errors import SyscallError
from sentry.mm.filemap import cached_for
from sentry.vfs import atime, notify
from sentry.vfs.file import O_ACCMODE, O_APPEND, FileDescription, Stat
from sentry.vfs.inode import DT_DIR, Inode, StatFs
from shm.records import record

if TYPE_CHECKING:
    from sentry.vfs.dentry import Dentry

SEEK_SET = 0
SEEK_CUR = 1
SEEK_END = 2
SEEK_DATA = 3
SEEK_HOLE = 4
MAX_FILE_SIZE = (1 << 63) - 1


def seek_position(current: int, size: int, offset: int, whence: int) -> int:
    """lseek(2)'s SEEK_SET/SEEK_CUR/SEEK_END arithmetic for a file of ``size``
    at ``current``: EINVAL for another whence or a negative result."""
    if whence == SEEK_SET:
        new = offset
    elif whence == SEEK_CUR:
        new = current + offset
    elif whence == SEEK_END:
        new = size + offset
    else:
        raise SyscallError(errno.EINVAL)
    if not 0 <= new <= MAX_FILE_SIZE:  # vfs_setpos: a loff_t, never past s_maxbytes
        raise SyscallError(errno.EINVAL)
    return new


O_PATH = 0o10000000

_DIRENT64 = struct.Struct("<QqHB")  # d_ino, d_off, d_reclen, d_type; then name, NUL
_DIRENT_OLD = struct.Struct("<QqH")  # d_ino, d_off, d_reclen; then name, NUL, pad, d_type


@record(frozen=True, slots=True)
class DirEntry:
    """One linux_dirent64 record before packing."""

    ino: int
    off: int
    type: int
    name: bytes

    def reclen(self) -> int:
        return (_DIRENT64.size + len(self.name) + 1 + 7) & ~7

    def pack(self) -> bytes:
        n = self.reclen()
        head = _DIRENT64.pack(self.ino, self.off, n, self.type)
        return head + self.name + bytes(n - len(head) - len(self.name))

    def pack_old(self) -> bytes:
        """The old getdents(2) record, struct linux_dirent: the type is the
        record's last byte, after the name's NUL and padding."""
        n = (_DIRENT_OLD.size + len(self.name) + 2 + 7) & ~7
        head = _DIRENT_OLD.pack(self.ino, self.off, n)
        return head + self.name + bytes(n - len(head) - len(self.name) - 1) \
            + bytes((self.type,))


class InodeFile(FileDescription):
    """A description of an inode, remembering the dentry it was opened by."""

    def __init__(self, inode: Inode, flags: int) -> None:
        super().__init__(flags)
        self.inode = inode
        self.dentry: Dentry | None = None  # set by vfs.open

    def stat(self) -> Stat:
        return self.inode.stat()

    def statfs(self) -> StatFs:
        return self.inode.statfs()

    def release(self) -> None:
        notify.emit(self.dentry, notify.IN_CLOSE_WRITE if self.writable()
                    else notify.IN_CLOSE_NOWRITE)
        super().release()


class RegularFileDescription(InodeFile):
    """An open regular file: offset, O_APPEND, pread/pwrite, SEEK_DATA/HOLE."""

    def __init__(self, inode: Inode, flags: int) -> None:
        super().__init__(inode, flags)
        self.offset = 0
        self._lock = threading.Lock()

    # A Gofer file mapped MAP_SHARED has a live cache the mappings store into;
    # read/write go through it then (sentry/mm/filemap.py).
    def _read_at(self, offset: int, count: int) -> bytes:
        cache = cached_for(self.inode)
        if cache is not None:
            return cache.read_through(offset, count)
        return self.inode.read_at(offset, count)

    def _write_at(self, offset: int, data: bytes) -> int:
        cache = cached_for(self.inode)
        if cache is not None:
            return cache.write_through(offset, data)
        return self.inode.write_at(offset, data)

    def read(self, count: int) -> bytes:
        with self._lock:
            data = self._read_at(self.offset, count)
            self.offset += len(data)
        notify.emit(self.dentry, notify.IN_ACCESS)
        atime.touch(self)
        return data

    def _read_to(self, mm: Any, addr: int, offset: int, count: int) -> int:
        """``_read_at`` into application memory: the inode copies its cached
        pages straight there when it can (goferfs.py ``read_to``)."""
        read_to = getattr(self.inode, "read_to", None)
        if read_to is None or cached_for(self.inode) is not None:
            data = self._read_at(offset, count)
            if data:
                mm.copy_out(addr, data)
            return len(data)
        return read_to(mm, addr, offset, count)

    def read_to(self, mm: Any, addr: int, count: int) -> int:
        """read(2) into application memory at ``addr`` (what ``read`` and a
        copy_out do, without the bytes in between)."""
        if type(self).read is not RegularFileDescription.read:  # a subclass's own read
            data = self.read(count)
            if data:
                mm.copy_out(addr, data)
            return len(data)
        with self._lock:
            n = self._read_to(mm, addr, self.offset, count)
            self.offset += n
        notify.emit(self.dentry, notify.IN_ACCESS)
        atime.touch(self)
        return n

    def pread_to(self, mm: Any, addr: int, count: int, offset: int) -> int:
        """pread(2) into application memory, as ``read_to``."""
        if type(self).pread is not RegularFileDescription.pread:
            data = self.pread(count, offset)
            if data:
                mm.copy_out(addr, data)
            return len(data)
        if offset < 0:
            raise SyscallError(errno.EINVAL)
        n = self._read_to(mm, addr, offset, count)
        notify.emit(self.dentry, notify.IN_ACCESS)
        atime.touch(self)
        return n

    def write(self, data: bytes) -> int:
        with self._lock:
            if self.flags & O_APPEND:
                self.offset = self.inode.size
            if self.offset + len(data) > MAX_FILE_SIZE:  # rw_verify_area: the end
                raise SyscallError(errno.EINVAL)  # overflows loff_t (EFBIG is s_maxbytes')
            n = self._write_at(self.offset, data)
            self.offset += n
        notify.emit(self.dentry, notify.IN_MODIFY)
        return n

    def pread(self, count: int, offset: int) -> bytes:
        if offset < 0:
            raise SyscallError(errno.EINVAL)
        data = self._read_at(offset, count)
        notify.emit(self.dentry, notify.IN_ACCESS)
        atime.touch(self)
        return data

    def pwrite(self, data: bytes, offset: int) -> int:
        if offset < 0:
            raise SyscallError(errno.EINVAL)
        if self.flags & O_APPEND:  # Linux: pwrite on O_APPEND appends
            offset = self.inode.size
        n = self._write_at(offset, data)
        notify.emit(self.dentry, notify.IN_MODIFY)
        return n

    def seek(self, offset: int, whence: int) -> int:
        with self._lock:
            if whence in (SEEK_DATA, SEEK_HOLE):
                if offset < 0:
                    raise SyscallError(errno.ENXIO)
                new = self.inode.seek_data(offset, whence == SEEK_HOLE)
            else:
                new = seek_position(self.offset, self.inode.size, offset, whence)
            self.offset = new
            return new

    def truncate(self, length: int) -> None:
        """ftruncate(2): EINVAL unless open for writing."""
        if not self.writable() or length < 0:
            raise SyscallError(errno.EINVAL)
        old = self.inode.size
        self.inode.setattr(size=length)
        cache = cached_for(self.inode)
        if cache is not None:  # what mappings show past either end reads zeros
            cache.zero(min(old, length), max(old, length))
        notify.emit(self.dentry, notify.IN_MODIFY)

    def read_pages(self, offset: int, length: int) -> bytes:
        """Bytes for mmap(MAP_PRIVATE) of this file (short at EOF)."""
        return self.inode.read_pages(offset, length)


class DirectoryDescription(InodeFile):
    """An open directory: getdents64 over a snapshot of the names."""

    def __init__(self, inode: Inode, flags: int) -> None:
        super().__init__(inode, flags)
        self.pos = 0
        self._entries: list[DirEntry] | None = None
        self._lock = threading.Lock()

    def read(self, count: int) -> bytes:
        raise SyscallError(errno.EISDIR)

    def write(self, data: bytes) -> int:
        raise SyscallError(errno.EISDIR)

    def pread(self, count: int, offset: int) -> bytes:
        raise SyscallError(errno.EISDIR)

    def pwrite(self, data: bytes, offset: int) -> int:
        raise SyscallError(errno.EISDIR)

    def _snapshot(self) -> list[DirEntry]:
        if self._entries is None:
            parent_ino = self.inode.ino
            if self.dentry is not None:
                parent_ino = _parent_ino(self.dentry)
            names = [(b".", self.inode.ino, DT_DIR), (b"..", parent_ino, DT_DIR)]
            names += self.inode.iterdir()
            self._entries = [DirEntry(ino, i + 1, t, n) for i, (n, ino, t) in enumerate(names)]
        return self._entries

    def readdir(self, count: int) -> list[DirEntry]:
        """Up to ``count`` entries from the current position, advancing it."""
        with self._lock:
            entries = self._snapshot()
            out = entries[self.pos:self.pos + max(count, 0)]
            self.pos += len(out)
            return out

    def getdents(self, count: int) -> bytes:
        """getdents(2)'s old records."""
        return self.getdents64(count, old=True)

    def getdents64(self, count: int, old: bool = False) -> bytes:
        """Packed linux_dirent64 records (``old``: linux_dirent) fitting in
        ``count`` bytes; b"" at the end. A removed directory lists nothing:
        ENOENT, as Linux's IS_DEADDIR."""
        if self.dentry is not None and self.dentry.dead:
            raise SyscallError(errno.ENOENT)
        notify.emit(self.dentry, notify.IN_ACCESS)
        atime.touch(self)
        with self._lock:
            entries = self._snapshot()
            out = bytearray()
            while self.pos < len(entries):
                rec = entries[self.pos].pack_old() if old else entries[self.pos].pack()
                if len(out) + len(rec) > count:
                    if not out:
                        raise SyscallError(errno.EINVAL)
                    break
                out += rec
                self.pos += 1
            return bytes(out)

    def seek(self, offset: int, whence: int) -> int:
        with self._lock:
            if whence == SEEK_SET:
                new = offset
            elif whence == SEEK_CUR:
                new = self.pos + offset
            else:
                raise SyscallError(errno.EINVAL)
            if new < 0:
                raise SyscallError(errno.EINVAL)
            if new == 0:
                self._entries = None  # rewinddir sees new names
            self.pos = new
            return new


def _parent_ino(d: Dentry) -> int:
    """The inode number of ".." as getdents reports it (crossing a mount root)."""
    while d.parent is None:
        mp = d.mount.mountpoint
        if mp is None:
            return d.inode.ino
        d = mp
    return d.parent.inode.ino


class PathDescription(InodeFile):
    """An O_PATH descriptor: names a file for fstat, fchdir, *at() and nothing else."""

    def __init__(self, inode: Inode, flags: int) -> None:
        super().__init__(inode, flags & ~O_ACCMODE)

    def readable(self) -> bool:
        return False

    def writable(self) -> bool:
        return False

    def read(self, count: int) -> bytes:
        raise SyscallError(errno.EBADF)

    def write(self, data: bytes) -> int:
        raise SyscallError(errno.EBADF)

    def pread(self, count: int, offset: int) -> bytes:
        raise SyscallError(errno.EBADF)

    def pwrite(self, data: bytes, offset: int) -> int:
        raise SyscallError(errno.EBADF)

    def seek(self, offset: int, whence: int) -> int:
        raise SyscallError(errno.EBADF)

    def release(self) -> None:  # an O_PATH descriptor tells watches nothing
        FileDescription.release(self)

    def ioctl(self, cmd: int, arg: int, task: object) -> int:
        raise SyscallError(errno.EBADF)

    def poll(self, events: int, timeout_s: float | None) -> int:
        from sentry.vfs.file import POLLNVAL

        return POLLNVAL


def dentry_of(desc: FileDescription) -> Dentry | None:
    """The dentry a description was opened by (None for pipes, sockets, host stdio)."""
    return getattr(desc, "dentry", None)

