"""Shared file mappings: a file's pages in the memory file.

A MAP_SHARED mapping of a file must show every process, and read(2)/write(2),
the same bytes, and its stores must reach the file.  As gVisor's MM does, the
mapping does not copy the file: the stub maps the file's *own* pages of the
memory file (gVisor: tmpfs regular files keep their data in the MemoryFile and
hand those ranges to the MM; gofer files keep a page cache there and write dirty
pages back).  Two kinds of file backing do that here:

* :class:`FileBacking`: the pages ARE the file.  A Sentry-held file (tmpfs, the
  overlay's upper files, /dev/shm, memfd_create) moves its data into one the first time it is
  mapped shared (sentry/vfs/tmpfs.py) and from then on read/write/truncate go
  through it, so stores through any mapping and write(2) meet in one place.
  Its pages live as long as the file object does.
* :class:`WritebackBacking`: a cache of a file the Sentry does not hold (the
  Gofer's), shared by every mapping of that inode and by read/write on it while
  any mapping exists (``cached_for`` is how sentry/vfs asks).  Once a writable
  mapping has existed it is written back to the file on msync and fsync, and
  when the last mapping goes (munmap, exit, execve): stores are never silently
  dropped.  The Gofer has no way to tell us of changes made on the host while
  a mapping is alive; they are not seen (and may be overwritten) until then.

Facts this relies on:

* A VMA maps one contiguous memory-file range (vma_table.py), but a file grows,
  and a page already mapped by a running process cannot move (its stub keeps
  using the old page until it next traps).  So file pages are allocated in
  ``CHUNK``-sized pieces whose memory-file offset never changes, each new piece
  placed right after its file neighbour when that space is free; a mapping is
  one VMA per contiguous run, and contiguous runs merge back into one VMA.
* Linux zero-fills the part of a file between the old and new size on truncate
  and on a write past EOF; a store past EOF through a shared mapping is SIGBUS
  there.  We do not raise SIGBUS, so the zeroing on growth is what keeps such a
  store from resurfacing as file data.
* Futex keys for shared mappings are the memory-file offset of the word
  (VmaTable.futex_key): unique while the page exists, the same in every process
  and every mapping, as Linux's (inode, page index) keys.

Lock order: AddressSpace.lock -> TmpFile._lock -> FileBacking.lock ->
MemoryFile.lock.  A write-back cache does its file's I/O (Gofer requests)
under its FileBacking.lock (filling a chunk, read/write through it): the
Gofer client's locks come after it, and nothing of the MM is taken there.
"""

from __future__ import annotations

import bisect
import errno
import os
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

from sentry.kernel.errors import SyscallError
from sentry.mm.arena import Arena
from sentry.mm.layout import PAGE_SIZE, page_round_down, page_round_up
from sentry.mm.memfile import MemoryFile
from sentry.mm.vma import Backing

CHUNK = 256 << 10  # bytes of file per memory-file piece (a page multiple)
_MAX_GROWTH = 1 << 30  # a growing file's next arena: at most this much more
FreeFn = Callable[[int, int], None]


class FileBacking(Backing):
    """The memory-file pages of one file: chunk index -> memory-file offset.

    ``refs`` (from Backing) counts the VMAs mapping any of it; ``offset`` and
    ``length`` are unused (a file backing is not one range).
    """

    __slots__ = ("mf", "lock", "chunks", "_bases", "_index", "_arenas", "writable", "dead",
                 "mappers",
                 "__weakref__")

    def __init__(self, mf: MemoryFile, source: object | None = None) -> None:
        super().__init__(0, 0, source)
        self.refs = 0
        self.mf = mf
        self.lock = threading.Lock()
        self.chunks: dict[int, int] = {}
        self._bases: list[int] = []  # sorted memory-file offsets of the chunks
        self._index: dict[int, int] = {}  # memory-file offset -> chunk index
        # The file's own shared objects (memory-file arenas) its chunks are
        # allocated from, newest last: never the common arena, which no
        # stub holds (docs/security.md, "Memory isolation").
        self._arenas: list[Arena] = []
        self.writable = False  # some mapping of it could store (writeback needed)
        self.dead = False
        self.mappers: weakref.WeakSet[Any] | None = None  # address spaces that map it

    # -- chunk table (lock held) ---------------------------------------------

    def _ensure(self, first: int, last: int) -> None:
        """Give chunks [first, last] memory, a run of missing ones in one piece
        placed after its left neighbour when that memory is free."""
        mf = self.mf
        idx = first
        while idx <= last:
            if idx in self.chunks:
                idx += 1
                continue
            end = idx
            while end + 1 <= last and end + 1 not in self.chunks:
                end += 1
            n = (end - idx + 1) * CHUNK
            base = self._place(self.chunks.get(idx - 1), n)
            for k in range(idx, end + 1):
                off = base + (k - idx) * CHUNK
                try:
                    self._filled(k, off)
                except BaseException:
                    # Never keep a chunk that does not hold the file's bytes:
                    # a writeback of it would overwrite them.
                    mf.free(off, (end - k + 1) * CHUNK)
                    raise
                self.chunks[k] = off
                bisect.insort(self._bases, off)
                self._index[off] = k
            idx = end + 1

    def _place(self, left: int | None, n: int) -> int:
        """The memory-file offset of ``n`` fresh bytes of this file's own
        arenas: right after the left neighbour chunk ``left`` when that is
        free in its arena, else in the newest arena, else in a new one as big
        as the file's memory so far (so a growing file needs few files;
        its pages are sparse, only the Sentry's window is reserved)."""
        if left is not None and self.mf.arena_of(left).reserve(left + CHUNK, n):
            return left + CHUNK
        self._arenas = [a for a in self._arenas if not a.closed]
        if self._arenas:
            try:
                return self._arenas[-1].allocate(n)
            except (SyscallError, ValueError):
                pass  # full, or retired meanwhile (its last chunk freed)
        size = max(n, min(len(self.chunks) * CHUNK, _MAX_GROWTH))
        arena = self.mf.object_arena(size)
        self._arenas.append(arena)
        return arena.allocate(n)

    def _filled(self, idx: int, off: int) -> None:
        """A new chunk's first contents (zero here; a cache reads its file)."""

    def _observe_size(self) -> None:
        """A cache notices a file shrunk behind it (lock held); see below."""

    # -- what the MM asks ------------------------------------------------------

    def runs(self, pos: int, length: int, *, hold: bool = False) -> list[tuple[int, int]]:
        """Memory-file (offset, length) runs holding file bytes [pos, pos+length),
        allocating what is missing; ENOMEM when the memory file is full.

        ``hold``: take a reference for each run (the caller makes one VMA of
        each) under this backing's lock, so a concurrent last unmap of a cache
        either sees them or has already retired it (ENODEV: ask again)."""
        if pos < 0 or pos % PAGE_SIZE or length <= 0:
            raise SyscallError(errno.EINVAL)
        end = pos + length
        out: list[tuple[int, int]] = []
        with self.lock:
            if self.dead:
                raise SyscallError(errno.ENODEV)
            self._observe_size()
            self._ensure(pos // CHUNK, (end - 1) // CHUNK)
            p = pos
            while p < end:
                idx, within = divmod(p, CHUNK)
                n = min(CHUNK - within, end - p)
                off = self.chunks[idx] + within
                if out and out[-1][0] + out[-1][1] == off:
                    out[-1] = (out[-1][0], out[-1][1] + n)
                else:
                    out.append((off, n))
                p += n
            if hold:
                for _ in out:
                    self.hold()
        return out

    def file_offset(self, mf_off: int) -> int:
        """The file offset whose byte lives at memory-file offset ``mf_off``."""
        with self.lock:
            i = bisect.bisect_right(self._bases, mf_off) - 1
            if i < 0 or mf_off >= self._bases[i] + CHUNK:
                raise ValueError(f"{mf_off:#x} is not in this file's pages")
            base = self._bases[i]
            return self._index[base] * CHUNK + (mf_off - base)

    def last_unmapped(self, free: FreeFn) -> None:
        """No VMA maps this file any more: its pages belong to the file still."""

    def mapped_by(self, mm: Any) -> None:
        """An address space maps these pages (told of a shrink: :meth:`shrunk`)."""
        with self.lock:
            if self.mappers is None:
                self.mappers = weakref.WeakSet()
            self.mappers.add(mm)

    def shrunk(self) -> None:
        """The file got shorter: every address space mapping it guards the
        pages now past its end (SIGBUS, sentry/mm/eofguard.py), as Linux's
        truncate unmaps them.  Called without the file's or this lock held
        (each address space's lock comes first in the lock order)."""
        with self.lock:
            mms = list(self.mappers or ())
        for mm in mms:
            mm.guard_shrunk(self)

    def written_through(self) -> None:
        # Sentry-held files only: a cache's writeback updates the host's times.
        src: Any = self.source
        if src is not None and not isinstance(self, WritebackBacking):
            src.mtime_ns = src.ctime_ns = time.time_ns()

    # -- file data (the file's own read/write/truncate) ------------------------

    def read(self, pos: int, count: int) -> bytes:
        """Bytes [pos, pos+count); chunks never given memory read as zeros."""
        view = self.mf.view
        out = bytearray()
        end = pos + count
        with self.lock:
            while pos < end:
                idx, within = divmod(pos, CHUNK)
                n = min(CHUNK - within, end - pos)
                base = self.chunks.get(idx)
                if base is None:
                    out += bytes(n)
                else:
                    out += view[base + within:base + within + n]
                pos += n
        return bytes(out)

    def write(self, pos: int, data: bytes | memoryview) -> int:
        """Store ``data`` at ``pos`` (allocating chunks); returns its length."""
        src = memoryview(data).cast("B")
        if not src.nbytes:
            return 0
        view = self.mf.view
        end = pos + src.nbytes
        with self.lock:
            self._ensure(pos // CHUNK, (end - 1) // CHUNK)
            done = 0
            while pos < end:
                idx, within = divmod(pos, CHUNK)
                n = min(CHUNK - within, end - pos)
                base = self.chunks[idx] + within
                view[base:base + n] = src[done:done + n]
                done += n
                pos += n
        return src.nbytes

    def zero(self, pos: int, end: int) -> None:
        """Make file bytes [pos, end) zero: whole pages are hole-punched (their
        memory returns to the host), partial pages cleared."""
        with self.lock:
            self._zero(pos, end)

    def _zero(self, pos: int, end: int) -> None:
        if pos >= end:
            return
        view = self.mf.view
        for idx in range(pos // CHUNK, (end - 1) // CHUNK + 1):
            base = self.chunks.get(idx)
            if base is None:
                continue
            lo = max(pos, idx * CHUNK) - idx * CHUNK + base
            hi = min(end, (idx + 1) * CHUNK) - idx * CHUNK + base
            plo, phi = page_round_up(lo), page_round_down(hi)
            if phi > plo:
                view[lo:plo] = bytes(plo - lo)
                self.mf.zero(plo, phi - plo)
                view[phi:hi] = bytes(hi - phi)
            else:
                view[lo:hi] = bytes(hi - lo)

    def seek_data(self, pos: int, hole: bool, size: int) -> int:
        """SEEK_DATA / SEEK_HOLE over the file's pages (page granularity, as
        tmpfs): what a mapping stored counts as data too."""
        if pos >= size:
            raise SyscallError(errno.ENXIO)
        with self.lock:
            p = pos
            while p < size:
                idx, within = divmod(p, CHUNK)
                base = self.chunks.get(idx)
                stop = min((idx + 1) * CHUNK, size)
                if base is None:
                    if hole:
                        return p
                    p = stop
                    continue
                fd, at = self.mf.fd_at(base + within)
                limit = at + (stop - idx * CHUNK) - within
                try:
                    found = os.lseek(fd, at, os.SEEK_HOLE if hole else os.SEEK_DATA)
                except OSError as e:
                    if e.errno != errno.ENXIO:
                        raise
                    found = limit if hole else -1
                if 0 <= found < limit:
                    return min(size, p + (found - at))
                p = stop
        if hole:
            return size
        raise SyscallError(errno.ENXIO)

    def blocks(self, size: int) -> int:
        """512-byte blocks of the file's pages that hold data (st_blocks)."""
        total = 0
        pos = 0
        while pos < size:
            try:
                data = self.seek_data(pos, False, size)
            except SyscallError:
                break
            hole = self.seek_data(data, True, size)
            total += page_round_up(hole) - page_round_down(data)
            pos = hole
        return total // 512

    def take_ranges(self) -> list[tuple[int, int]]:
        """Forget every chunk and return their memory-file ranges (to be freed)."""
        with self.lock:
            self.dead = True
            ranges = [(off, CHUNK) for off in self.chunks.values()]
            self.chunks.clear()
            self._bases.clear()
            self._index.clear()
        return ranges


# -- caches of files the Sentry does not hold --------------------------------

_cache_lock = threading.Lock()
# (device, inode number) -> the live cache: by the file, not the inode object,
# since a filesystem may hold two objects for one file over time.
_caches: dict[tuple[int, int], WritebackBacking] = {}


def _key(inode: Any) -> tuple[int, int]:
    return (inode.fs.dev, inode.ino)


class WritebackBacking(FileBacking):
    """Shared pages of a file kept elsewhere (the Gofer): filled from the file,
    written back on msync and when the last mapping goes.

    The file's size is the file's (``inode.size``).  ftruncate and write(2)
    past the end come through the cache (description.py) and clear what it
    holds past the old end; a truncation by path or O_TRUNC is noticed at the
    cache's next use, when the size is found smaller.  A gap: a truncation and
    a regrowth both by path between two uses go unseen, and the writeback then
    puts the old bytes back (Linux would have zeroed them).
    """

    __slots__ = ("_size",)

    def __init__(self, mf: MemoryFile, source: object | None = None) -> None:
        super().__init__(mf, source)
        self._size = int(getattr(source, "size", 0))

    def _observe_size(self) -> None:
        size = int(self.source.size)  # type: ignore[attr-defined]
        if size < self._size:
            self._zero(size, self._size)
        self._size = size

    def _filled(self, idx: int, off: int) -> None:
        inode: Any = self.source
        size = inode.size
        if idx * CHUNK >= size:
            return
        data = inode.read_at(idx * CHUNK, min(CHUNK, size - idx * CHUNK))
        if data:
            self.mf.view[off:off + len(data)] = data

    def read(self, pos: int, count: int) -> bytes:
        """The cached bytes (the file's own where no chunk is cached yet)."""
        return self.read_through(pos, count)

    def sync(self, pos: int = 0, end: int | None = None) -> None:
        """Write file bytes [pos, end) (clipped to the file's size) back to it."""
        if not self.writable:
            return
        inode: Any = self.source
        with self.lock:
            self._observe_size()
            size = inode.size
            end = size if end is None else min(end, size)
            pieces = sorted(k for k in self.chunks if k * CHUNK < end and (k + 1) * CHUNK > pos)
        for idx in pieces:
            lo, hi = max(pos, idx * CHUNK), min(end, (idx + 1) * CHUNK)
            data = self.read(lo, hi - lo)
            done = 0
            while done < len(data):
                done += inode.write_at(lo + done, data[done:])

    def read_through(self, pos: int, count: int) -> bytes:
        """read(2) of the file while mapped: cached chunks (what mappings
        stored) from the cache, the rest from the file."""
        inode: Any = self.source
        out = []
        view = self.mf.view
        with self.lock:
            self._observe_size()
            end = min(inode.size, pos + count)
            while pos < end:
                idx, within = divmod(pos, CHUNK)
                n = min(CHUNK - within, end - pos)
                base = self.chunks.get(idx)
                if base is None:
                    piece = inode.read_at(pos, n)
                    out.append(piece)
                    if len(piece) < n:
                        break
                else:
                    out.append(bytes(view[base + within:base + within + n]))
                pos += n
        return b"".join(out)

    def write_through(self, pos: int, data: bytes) -> int:
        """write(2) of the file while mapped: to the file, and into the cached
        chunks so every mapping sees it at once."""
        inode: Any = self.source
        view = self.mf.view
        with self.lock:
            self._observe_size()
            if pos > self._size:  # the gap is a hole: not what mappings stored past EOF
                self._zero(self._size, pos)
            n = inode.write_at(pos, data)
            self._size = max(self._size, pos + n)
            done, end = 0, pos + n
            while pos < end:
                idx, within = divmod(pos, CHUNK)
                k = min(CHUNK - within, end - pos)
                base = self.chunks.get(idx)
                if base is not None:
                    view[base + within:base + within + k] = data[done:done + k]
                done += k
                pos += k
        return n

    def last_unmapped(self, free: FreeFn) -> None:
        with self.lock:
            if self.refs > 0 or self.dead:
                return  # mapped again meanwhile (runs(hold=True)), or already retired
            self.dead = True
        with _cache_lock:
            if _caches.get(_key(self.source)) is self:
                del _caches[_key(self.source)]
        try:
            self.sync()
        except (SyscallError, OSError):
            # No caller left to tell (munmap, exit); Linux also reports a lost
            # writeback only to a later fsync.  msync does raise it.
            pass
        finally:
            for off, n in self.take_ranges():
                free(off, n)


def writeback_for(inode: object, mf: MemoryFile) -> WritebackBacking:
    """The one live cache of ``inode`` (made on first use)."""
    with _cache_lock:
        b = _caches.get(_key(inode))
        if b is None or b.dead:
            b = _caches[_key(inode)] = WritebackBacking(mf, inode)
        return b


def cached_for(inode: object | None) -> WritebackBacking | None:
    """The live cache of ``inode`` if some shared mapping of it exists: read(2)
    and write(2) go through it then, so they see what mappings stored."""
    if not _caches or inode is None:
        return None
    b = _caches.get(_key(inode))
    return None if b is None or b.dead else b
