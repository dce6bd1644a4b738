"""Program text kept across execs: Linux's page cache, for the loader's read-only pages.

Why: execve of a static binary used to copy every PT_LOAD segment into fresh
memory, ~660 KB for a small static glibc program: ~700 us of page faults and
copying per exec, a quarter of a shell's fork+exec. The pages that are never
written (text and read-only data) are the same for every exec of the same
file, so the first exec leaves them here and later ones map them.

How they stay safe to share: they are private VMAs over a refcounted Backing,
a file of their own sealed against writable mappings (moved there from the
loading process's own arena by share_readonly; sentry/mm/arena.py), as fork
shares them (AddressSpace.fork); nothing writes them in place (the stub maps
them without PROT_WRITE and the seal refuses a writable mapping even from the
stub's trusted instruction; copy_out needs PROT_WRITE) and
whatever could change them (mprotect adding PROT_WRITE, a zeroing madvise,
mremap, forced writes) gives the address space its own copy first
(VmaTable._unshare). The cache holds one reference per piece, so the pages
outlive the processes until the entry is evicted.

Which file: the entry is found by size and head/tail bytes and then compared
byte for byte with the file read for this exec (~20 us for a 1 MB file), so a
changed file is never served stale pages; when the exec got its bytes from
here (below) they are the same object and the comparison is free.

The file's bytes are kept too, keyed by what stat says of it (device, inode,
size, mtime, ctime: any write changes ctime), so an exec of an unchanged file
does not read it again (rootfs.read_executable): ~100 us of Gofer reads and
joining a 1 MB file. Read-only Gofer files are cached for good by the page
cache anyway (goferfs.PageCache); writable ones are stat'ed afresh at open.

Bounded: at most ``max_bytes`` of file data and cached pages together, least
recently used first out.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import TYPE_CHECKING

from sentry import memlimit
from sentry.bytes_lru import BytesLru

if TYPE_CHECKING:
    from sentry.mm.address_space import AddressSpace
    from sentry.mm.memfile import MemoryFile
    from sentry.mm.vma import Backing

DEFAULT_MAX_BYTES = memlimit.cache_bytes(64 << 20)  # less under a memory limit
_PEEK = 256


class _Entry:
    __slots__ = ("data", "pieces", "size")

    def __init__(self, data: bytes, pieces: list[tuple[int, int, Backing]]) -> None:
        self.data = data
        self.pieces = pieces  # (offset from the image's bias, prot, backing)
        self.size = len(data) + sum(b.length for _, _, b in pieces)


class ImageCache:
    """The read-only pages of recently loaded ELF images, per memory file."""

    def __init__(self, mf: MemoryFile, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.mf = mf
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._entries: OrderedDict[tuple[int, bytes, bytes], _Entry] = OrderedDict()
        self._bytes = 0
        self.hits = 0
        self._files = BytesLru(max_bytes)  # executables' bytes, by stat identity

    @staticmethod
    def _key(data: bytes) -> tuple[int, bytes, bytes]:
        return (len(data), data[:_PEEK], data[-_PEEK:])

    def attach(self, mm: AddressSpace, data: bytes, bias: int, name: str) -> bool:
        """Map the cached read-only pages of ``data`` at ``bias`` into ``mm``;
        False (nothing mapped) when this exact file is not cached."""
        key = self._key(data)
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or (entry.data is not data and entry.data != data):
                return False
            self._entries.move_to_end(key)
            self.hits += 1
            for rel, prot, backing in entry.pieces:
                mm.map_backing(bias + rel, prot, backing, name)
        return True

    def remember(self, mm: AddressSpace, data: bytes, bias: int, start: int, end: int) -> None:
        """Keep the read-only pages ``mm`` holds for ``data`` (loaded at ``bias``,
        spanning [start, end)) for later execs of the same file."""
        if len(data) > self.max_bytes // 4:
            return
        key = self._key(data)
        with self._lock:
            if key in self._entries:
                return
            pieces = [(s - bias, prot, b) for s, _n, prot, b in mm.share_readonly(start, end)]
            if not pieces:
                return
            entry = _Entry(data, pieces)
            self._entries[key] = entry
            self._bytes += entry.size
            while self._bytes > self.max_bytes and len(self._entries) > 1:
                self._evict(next(iter(self._entries)))

    def file_bytes(self, key: tuple[int, ...]) -> bytes | None:
        """The bytes kept for the file stat describes as ``key``, if any."""
        return self._files.get(key)

    def keep_file(self, key: tuple[int, ...], data: bytes) -> None:
        """Keep an executable's bytes for its next exec (bounded like the pages)."""
        if len(data) <= self.max_bytes // 4:
            self._files.put(key, data)

    def _evict(self, key: tuple[int, bytes, bytes]) -> None:
        entry = self._entries.pop(key)
        self._bytes -= entry.size
        for _rel, _prot, backing in entry.pieces:
            if backing.drop():  # no VMA left: no stub maps these pages any more
                self.mf.free(backing.offset, backing.length)

    def clear(self) -> None:
        """Drop every entry (their pages are freed once no VMA uses them)."""
        with self._lock:
            while self._entries:
                self._evict(next(iter(self._entries)))
            self._files.clear()
