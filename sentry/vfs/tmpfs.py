"""tmpfs: files that live in the Sentry's memory.

Used for the overlay's writable upper layer, /dev (devtmpfs), /dev/shm and
/tmp-style mounts.  Regular files keep their bytes in a sparse dict of 4 KiB
pages, so ftruncate to a large size costs nothing, st_blocks counts the pages
really written (as Linux tmpfs does) and SEEK_DATA/SEEK_HOLE find real holes.

Timestamps follow Linux: creating, removing or renaming a name updates the
directory's mtime and ctime; writing or truncating a file updates its mtime and
ctime; link-count changes update ctime.  Reads and directory listings move
atime as the mount's atime mode says (relatime by default; sentry/vfs/atime.py).

A size limit (the ``size=`` mount option) counts the pages files really hold:
a write that needs a page beyond the limit is short, or ENOSPC if nothing fit,
as on Linux.  Pages are given back on truncate and when the last name of a
file goes (Linux waits for the last close too: a removed file still open here
stops counting against the limit early).

A file mapped MAP_SHARED keeps its data in the memory file instead
(``shared_backing``: the dict pages move into a sentry/mm/filemap.FileBacking
the first time), because a shared mapping must be the file's own pages: every
mapping, and read/write, then meet in the same bytes, as gVisor's tmpfs keeps
file data in its MemoryFile.  Such a file's st_blocks and SEEK_DATA come from
the memory file's holes, so what a mapping stored counts as data; its pages
are freed when the file object goes.  It stops counting against a size
limit once mapped (a gap: Linux counts its pages).

Lock order: ``TmpFs.lock`` (directory contents, link counts; re-entrant) ->
``TmpFile._lock`` (one file's pages) -> ``FileBacking.lock``.  All are below
dentry.TREE_LOCK; an address space's lock may be held above them (mmap).
"""

from __future__ import annotations

import errno
import threading
import weakref

from sentry.kernel.errors import SyscallError
from sentry.mm.filemap import CHUNK, FileBacking
from sentry.mm.memfile import MemoryFile
from sentry.vfs import iflags
from sentry.vfs.description import RegularFileDescription
from sentry.vfs.file import O_RDWR, Stat
from sentry.vfs.inode import (
    RENAME_EXCHANGE,
    RENAME_WHITEOUT,
    S_IFCHR,
    S_IFDIR,
    S_IFLNK,
    S_IFMT,
    S_IFREG,
    Filesystem,
    Inode,
    StatFs,
    check_rename_target,
    dtype_of,
    mknod_makes_regular,
    now_ns,
)

PAGE = 4096
O_LARGEFILE = 0o100000
F_ADD_SEALS = 1033
F_GET_SEALS = 1034
F_SEAL_SEAL = 0x1
F_SEAL_SHRINK = 0x2
F_SEAL_GROW = 0x4
F_SEAL_WRITE = 0x8
F_SEAL_FUTURE_WRITE = 0x10
F_SEAL_EXEC = 0x20
SEALS_KNOWN = 0x3F
NO_WRITES = F_SEAL_WRITE | F_SEAL_FUTURE_WRITE
TMPFS_MAGIC = 0x01021994
TMPFS_BLOCKS = 1 << 21  # the size statfs reports: 8 GiB of 4 KiB blocks


class TmpFs(Filesystem):
    """An in-memory filesystem instance."""

    name = "tmpfs"
    magic = TMPFS_MAGIC
    keeps_xattrs = True
    keeps_atime = True  # reads move atime by the mount's mode (sentry/vfs/atime.py)
    inode_flags = iflags.TMPFS_FLAGS

    def __init__(self, *, mode: int = 0o1777, uid: int = 0, gid: int = 0,
                 first_ino: int = 1, source: str = "tmpfs", readonly: bool = False,
                 size_limit: int | None = None) -> None:
        super().__init__(readonly=readonly, source=source)
        self.lock = threading.RLock()
        self._next = first_ino
        # None: unlimited (no accounting at all, the common case).
        self.limit_pages = None if size_limit is None else max(1, -(-size_limit // PAGE))
        self.used_pages = 0
        self._acct = threading.Lock()
        self.root: TmpDir = TmpDir(self, S_IFDIR | (mode & 0o7777), uid=uid, gid=gid)

    def charge(self, pages: int) -> bool:
        """Take ``pages`` from the size limit; False when they do not fit."""
        with self._acct:
            if self.used_pages + pages > self.limit_pages:  # type: ignore[operator]
                return False
            self.used_pages += pages
            return True

    def uncharge(self, pages: int) -> None:
        with self._acct:
            self.used_pages = max(0, self.used_pages - pages)

    def next_ino(self) -> int:
        with self.lock:
            n = self._next
            self._next += 1
            return n

    def statfs(self) -> StatFs:
        if self.limit_pages is not None:
            free = max(0, self.limit_pages - self.used_pages)
            return StatFs(type=self.magic, blocks=self.limit_pages, bfree=free, bavail=free,
                          files=1 << 20, ffree=1 << 20, fsid=self.dev)
        return StatFs(type=self.magic, blocks=TMPFS_BLOCKS, bfree=TMPFS_BLOCKS,
                      bavail=TMPFS_BLOCKS, files=1 << 20, ffree=1 << 20, fsid=self.dev)

    def options(self) -> str:
        base = super().options()
        if self.limit_pages is not None:
            base += f",size={self.limit_pages * PAGE // 1024}k"
        return base


class TmpFile(Inode):
    """A regular file: sparse 4 KiB pages, or the memory file's pages once it
    has been mapped shared (see the module docstring)."""

    def __init__(self, fs: Filesystem, mode: int, **kw: int) -> None:
        super().__init__(fs, mode, **kw)
        self._pages: dict[int, bytearray] = {}
        # Pages fallocate(2) took from a size-limited tmpfs and nothing wrote
        # yet: charged, read as zeros, no memory until written (shmem_fallocate).
        self._reserved: set[int] = set()
        self._store: FileBacking | None = None
        self._lock = threading.Lock()
        # File seals (fcntl F_ADD_SEALS): a tmpfs file starts sealed against
        # sealing; a memfd made with MFD_ALLOW_SEALING starts with none.
        self.seals = F_SEAL_SEAL
        # Pages count against a size-limited tmpfs until the last name goes.
        self._charged = getattr(fs, "limit_pages", None) is not None

    def shared_backing(self, mf: MemoryFile) -> FileBacking:
        """The file's pages in the memory file, for a MAP_SHARED mapping: made
        the first time (the dict pages move there) and the file's storage from
        then on, so mappings and read/write see one set of bytes."""
        with self._lock:
            if self._store is None:
                store = FileBacking(mf, self)  # VMAs keep the file (vm_file)
                for idx, page in sorted(self._pages.items()):
                    store.write(idx * PAGE, page)
                if self._charged:
                    self._charged = False
                    self.fs.uncharge(len(self._pages) + len(self._reserved))  # type: ignore[attr-defined]
                self._reserved = set()
                self._store = store
                self._pages = {}
                # The file and its store hold each other; the collector frees both.
                weakref.finalize(store, _free_chunks, mf, store.chunks)
            elif self._store.mf is not mf:
                raise SyscallError(errno.ENODEV)  # another sandbox's memory: never
            return self._store

    def stat(self) -> Stat:
        st = super().stat()
        store = self._store
        if store is not None:
            with self._lock:
                st.blocks = store.blocks(self.size)
        else:
            st.blocks = (len(self._pages) + len(self._reserved)) * (PAGE // 512)
        return st

    def read_at(self, offset: int, count: int) -> bytes:
        with self._lock:
            end = min(self.size, offset + count)
            if offset >= end:
                return b""
            if self._store is not None:
                return self._store.read(offset, end - offset)
            out = bytearray()
            pos = offset
            while pos < end:
                idx, off = divmod(pos, PAGE)
                n = min(PAGE - off, end - pos)
                page = self._pages.get(idx)
                out += page[off:off + n] if page is not None else bytes(n)
                pos += n
            return bytes(out)

    def write_at(self, offset: int, data: bytes) -> int:
        if not data:
            return 0
        with self._lock:
            if self.seals & (NO_WRITES | F_SEAL_GROW):
                if self.seals & NO_WRITES or offset + len(data) > self.size:
                    raise SyscallError(errno.EPERM)
            if self._store is not None:
                if offset > self.size:  # the gap reads zeros (see filemap.py)
                    self._store.zero(self.size, offset)
                pos = offset + self._store.write(offset, data)
            else:
                pos = self._write_pages(offset, data)
            self.size = max(self.size, pos)
            self.mtime_ns = self.ctime_ns = now_ns()
            return pos - offset

    def _write_pages(self, offset: int, data: bytes) -> int:
        pos = offset
        view = memoryview(data)
        while view:
            idx, off = divmod(pos, PAGE)
            n = min(PAGE - off, len(view))
            page = self._pages.get(idx)
            if page is None:
                if idx in self._reserved:
                    self._reserved.discard(idx)  # fallocate already charged it
                elif self._charged and not self.fs.charge(1):  # type: ignore[attr-defined]
                    break  # the tmpfs is full: a short write
                page = self._pages[idx] = bytearray(PAGE)
            page[off:off + n] = view[:n]
            view = view[n:]
            pos += n
        if pos == offset:
            raise SyscallError(errno.ENOSPC)
        return pos

    def truncate(self, size: int) -> None:
        if size < 0:
            raise SyscallError(errno.EINVAL)
        with self._lock:
            if (size < self.size and self.seals & F_SEAL_SHRINK) or (
                    size > self.size and self.seals & F_SEAL_GROW):
                raise SyscallError(errno.EPERM)
            if self._store is not None:
                # Shrinking clears what mappings may still show past the new
                # end; growing clears what they stored past the old one.
                lo, hi = sorted((size, self.size))
                self._store.zero(lo, hi)
            elif size < self.size:
                keep = (size + PAGE - 1) // PAGE
                gone = [i for i in self._pages if i >= keep]
                for idx in gone:
                    del self._pages[idx]
                freed = {i for i in self._reserved if i >= keep}
                self._reserved -= freed
                gone += freed
                if self._charged and gone:
                    self.fs.uncharge(len(gone))  # type: ignore[attr-defined]
                idx, off = divmod(size, PAGE)
                if off and idx in self._pages:
                    self._pages[idx][off:] = bytes(PAGE - off)
            shrunk = self._store if size < self.size else None
            if size != self.size:
                self.size = size
                self.mtime_ns = self.ctime_ns = now_ns()
        if shrunk is not None:
            shrunk.shrunk()  # mappings lose the pages (SIGBUS): after our lock

    def punch_hole(self, offset: int, length: int) -> None:
        """fallocate(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE): bytes
        [offset, offset + length) inside the file read as zeros, whole pages
        freed; the size stays. A write seal refuses it (EPERM), as shmem."""
        with self._lock:
            if self.seals & NO_WRITES:
                raise SyscallError(errno.EPERM)
            end = min(offset + length, self.size)
            if offset >= end:
                return
            if self._store is not None:
                self._store.zero(offset, end)
            else:
                first, last = -(-offset // PAGE), end // PAGE  # whole pages
                gone = [i for i in self._pages if first <= i < last]
                for idx in gone:
                    del self._pages[idx]
                freed = {i for i in self._reserved if first <= i < last}
                self._reserved -= freed
                gone += freed
                if self._charged and gone:
                    self.fs.uncharge(len(gone))  # type: ignore[attr-defined]
                for lo, hi in ((offset, min(end, first * PAGE)), (max(offset, last * PAGE), end)):
                    pos = lo
                    while pos < hi:
                        idx, off = divmod(pos, PAGE)
                        n = min(PAGE - off, hi - pos)
                        page = self._pages.get(idx)
                        if page is not None:
                            page[off:off + n] = bytes(n)
                        pos += n
            self.mtime_ns = self.ctime_ns = now_ns()

    def preallocate(self, offset: int, length: int) -> None:
        """fallocate(2)'s space: on a size-limited tmpfs, the pages of the range
        not held yet are charged now (ENOSPC, nothing taken, when they do not
        all fit), so later writes there cannot fail for space, as shmem's.
        An unlimited tmpfs has nothing to reserve."""
        with self._lock:
            if not self._charged or self._store is not None:
                return
            first, last = offset // PAGE, -(-(offset + length) // PAGE)
            if last - first > self.fs.limit_pages:  # type: ignore[attr-defined]
                raise SyscallError(errno.ENOSPC)
            new = {i for i in range(first, last)
                   if i not in self._pages and i not in self._reserved}
            if new and not self.fs.charge(len(new)):  # type: ignore[attr-defined]
                raise SyscallError(errno.ENOSPC)
            self._reserved |= new

    def seek_data(self, offset: int, hole: bool) -> int:
        with self._lock:
            if offset >= self.size:
                raise SyscallError(errno.ENXIO)
            if self._store is not None:
                return self._store.seek_data(offset, hole, self.size)
            idx = offset // PAGE
            if hole:
                while idx in self._pages:
                    idx += 1
                return min(max(offset, idx * PAGE), self.size)
            later = [i for i in self._pages if i >= idx]
            if not later:
                raise SyscallError(errno.ENXIO)
            pos = max(offset, min(later) * PAGE)
            if pos >= self.size:
                raise SyscallError(errno.ENXIO)
            return pos


def file_seals(desc: object, cmd: int, arg: int) -> int:
    """fcntl F_GET_SEALS / F_ADD_SEALS on a tmpfs file (memfd_create(2)'s
    sealing).  EINVAL for a file of another filesystem, EPERM to add seals
    without write access or once F_SEAL_SEAL is set, EBUSY for F_SEAL_WRITE
    while a writable shared mapping may exist."""
    inode = getattr(desc, "inode", None)
    if not isinstance(inode, TmpFile):
        raise SyscallError(errno.EINVAL)
    if cmd == F_GET_SEALS:
        return inode.seals
    if arg & ~SEALS_KNOWN:
        raise SyscallError(errno.EINVAL)
    if not desc.writable():  # type: ignore[attr-defined]
        raise SyscallError(errno.EPERM)
    with inode._lock:
        if inode.seals & F_SEAL_SEAL:
            raise SyscallError(errno.EPERM)
        store = inode._store
        if arg & F_SEAL_WRITE and store is not None and store.refs and store.writable:
            raise SyscallError(errno.EBUSY)
        inode.seals |= arg
    return 0


def _free_chunks(mf: MemoryFile, chunks: dict[int, int]) -> None:
    """A shared-mapped file and every mapping of it are gone: its memory-file
    pages are freed (soon: this runs from the garbage collector, anywhere)."""
    mf.free_soon([(off, CHUNK) for off in chunks.values()])


class MemfdDescription(RegularFileDescription):
    """An open memfd: a tmpfs file no directory names (memfd_create(2))."""

    def __init__(self, inode: TmpFile, name: bytes) -> None:
        super().__init__(inode, O_RDWR | O_LARGEFILE)
        self.name = name

    def link_name(self) -> bytes:
        """What /proc/self/fd/N reads as (Linux: "/memfd:NAME (deleted)")."""
        return b"/memfd:" + self.name + b" (deleted)"


_memfd_fs: TmpFs | None = None
_memfd_lock = threading.Lock()


def memfd_file(name: bytes, uid: int, gid: int, sealing: bool = False) -> MemfdDescription:
    """A new memfd: an unnamed file of the Sentry's internal tmpfs, mode 0777
    as Linux's shmem_file_setup gives, open read-write; ``sealing``
    (MFD_ALLOW_SEALING) leaves it without F_SEAL_SEAL."""
    global _memfd_fs
    with _memfd_lock:
        if _memfd_fs is None:
            _memfd_fs = TmpFs(source="memfd")
        fs = _memfd_fs
    inode = TmpFile(fs, S_IFREG | 0o777, uid=uid, gid=gid)
    inode.nlink = 0
    inode._charged = False
    if sealing:
        inode.seals = 0
    return MemfdDescription(inode, name)


class TmpSymlink(Inode):
    """A symlink: its body is the target string."""

    def __init__(self, fs: Filesystem, target: bytes, **kw: int) -> None:
        super().__init__(fs, S_IFLNK | 0o777, **kw)
        self.target = target
        self.size = len(target)

    def readlink(self) -> bytes:
        return self.target


def _release(inode: Inode) -> None:
    """The last name of ``inode`` is gone: its pages stop counting (see the header)."""
    if isinstance(inode, TmpFile) and inode.nlink <= 0 and inode._charged:
        with inode._lock:
            inode._charged = False
            inode.fs.uncharge(len(inode._pages) + len(inode._reserved))  # type: ignore[attr-defined]
            inode._reserved = set()


def is_whiteout(inode: Inode) -> bool:
    """An overlay whiteout: a character device 0:0 (the overlayfs convention)."""
    return (inode.mode & S_IFMT) == S_IFCHR and inode.rdev == 0


class TmpDir(Inode):
    """A directory: an insertion-ordered name -> inode dict."""

    fs: TmpFs

    def __init__(self, fs: TmpFs, mode: int, **kw: int) -> None:
        super().__init__(fs, mode, **kw)
        self.entries: dict[bytes, Inode] = {}
        # Set by the overlay on an upper directory that hides the lower one.
        self.opaque = False

    def _touch(self) -> None:
        self.mtime_ns = self.ctime_ns = now_ns()

    def _add(self, name: bytes, inode: Inode) -> Inode:
        if name in self.entries:
            raise SyscallError(errno.EEXIST)
        self.entries[name] = inode
        if inode.is_dir():
            self.nlink += 1
        self._touch()
        return inode

    def lookup(self, name: bytes) -> Inode:
        try:
            return self.entries[name]
        except KeyError:
            raise SyscallError(errno.ENOENT) from None

    def iterdir(self) -> list[tuple[bytes, int, int]]:
        with self.fs.lock:
            return [(n, i.ino, dtype_of(i.mode)) for n, i in self.entries.items()]

    def create(self, name: bytes, mode: int, uid: int, gid: int) -> Inode:
        with self.fs.lock:
            return self._add(name, TmpFile(self.fs, S_IFREG | (mode & 0o7777), uid=uid, gid=gid))

    def mkdir(self, name: bytes, mode: int, uid: int, gid: int) -> Inode:
        with self.fs.lock:
            return self._add(name, TmpDir(self.fs, S_IFDIR | (mode & 0o7777), uid=uid, gid=gid))

    def mknod(self, name: bytes, mode: int, rdev: int, uid: int, gid: int) -> Inode:
        if mknod_makes_regular(mode):
            return self.create(name, mode, uid, gid)
        with self.fs.lock:
            return self._add(name, Inode(self.fs, mode, uid=uid, gid=gid, rdev=rdev))

    def symlink(self, name: bytes, target: bytes, uid: int, gid: int) -> Inode:
        with self.fs.lock:
            return self._add(name, TmpSymlink(self.fs, target, uid=uid, gid=gid))

    def link(self, name: bytes, inode: Inode) -> None:
        if inode.fs is not self.fs:
            raise SyscallError(errno.EXDEV)
        if inode.is_dir():
            raise SyscallError(errno.EPERM)
        with self.fs.lock:
            self._add(name, inode)
            inode.nlink += 1
            inode.ctime_ns = now_ns()

    def unlink(self, name: bytes) -> None:
        with self.fs.lock:
            inode = self.lookup(name)
            if inode.is_dir():
                raise SyscallError(errno.EISDIR)
            del self.entries[name]
            inode.nlink -= 1
            inode.ctime_ns = now_ns()
            _release(inode)
            self._touch()

    def rmdir(self, name: bytes) -> None:
        with self.fs.lock:
            inode = self.lookup(name)
            if not isinstance(inode, TmpDir):
                raise SyscallError(errno.ENOTDIR)
            if inode.entries:
                raise SyscallError(errno.ENOTEMPTY)
            del self.entries[name]
            inode.nlink = 0
            self.nlink -= 1
            self._touch()

    def rename(self, oldname: bytes, newdir: Inode, newname: bytes, flags: int = 0) -> None:
        if not isinstance(newdir, TmpDir) or newdir.fs is not self.fs:
            raise SyscallError(errno.EXDEV)
        with self.fs.lock:
            src = self.lookup(oldname)
            dst = newdir.entries.get(newname)
            if flags & RENAME_EXCHANGE:
                if dst is None:
                    raise SyscallError(errno.ENOENT)
                self.entries[oldname], newdir.entries[newname] = dst, src
                if self is not newdir and src.is_dir() != dst.is_dir():
                    delta = 1 if src.is_dir() else -1
                    self.nlink -= delta
                    newdir.nlink += delta
                src.ctime_ns = dst.ctime_ns = now_ns()
                self._touch()
                newdir._touch()
                return
            if dst is src:
                return
            if dst is not None:
                check_rename_target(src, dst, flags,
                                    lambda: not (isinstance(dst, TmpDir) and dst.entries))
                if dst.is_dir():
                    dst.nlink = 0
                    newdir.nlink -= 1
                else:
                    dst.nlink -= 1
                    _release(dst)
                dst.ctime_ns = now_ns()
                del newdir.entries[newname]
            del self.entries[oldname]
            newdir.entries[newname] = src
            if src.is_dir():
                self.nlink -= 1
                newdir.nlink += 1
            if flags & RENAME_WHITEOUT:
                self.entries[oldname] = Inode(self.fs, S_IFCHR, rdev=0)
            src.ctime_ns = now_ns()
            self._touch()
            newdir._touch()
