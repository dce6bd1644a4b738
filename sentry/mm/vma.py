"""Virtual memory areas: the records an AddressSpace keeps, and Linux's mm constants.

A VMA maps [start, end) of the application's address space onto the contiguous
memfd range [offset, offset + end - start). Who owns that memfd range depends on
the kind of mapping:

* private (MAP_PRIVATE anonymous): the VMA owns its range outright. Private pages
  are never shared between VMAs (fork copies them), so unmapping part of a private
  VMA frees exactly that part of the memfd at once.
* shared (MAP_SHARED anonymous): the range is a window into a ``Backing`` that
  several VMAs (in several address spaces after fork) may reference. Like a Linux
  shmem object, a backing keeps all its pages until the last VMA referencing it
  is gone; ``Backing.refs`` counts those VMAs.
* shared file mappings: the range is a window into the file's own pages, a
  ``filemap.FileBacking`` (a Backing subclass whose ``source`` is the file); the
  pages outlive the mappings (they are the file's), see sentry/mm/filemap.py.
"""

from __future__ import annotations

import mmap
import threading
from collections.abc import Callable
from typing import NamedTuple

# Protection bits (mmap module names where they exist).
PROT_NONE = 0
PROT_READ = mmap.PROT_READ
PROT_WRITE = mmap.PROT_WRITE
PROT_EXEC = mmap.PROT_EXEC
PROT_SEM = 0x8  # accepted and ignored, as on x86
PROT_GROWSDOWN = 0x0100_0000
PROT_GROWSUP = 0x0200_0000

# mmap flags. The mmap module lacks most of them; values are x86-64 Linux's.
MAP_SHARED = mmap.MAP_SHARED
MAP_PRIVATE = mmap.MAP_PRIVATE
MAP_SHARED_VALIDATE = 0x03
MAP_TYPE = 0x0F
MAP_FIXED = 0x10
MAP_ANONYMOUS = mmap.MAP_ANONYMOUS
MAP_32BIT = 0x40
MAP_GROWSDOWN = 0x0100
MAP_DENYWRITE = 0x0800
MAP_EXECUTABLE = 0x1000
MAP_LOCKED = 0x2000
MAP_NORESERVE = 0x4000
MAP_POPULATE = 0x8000
MAP_NONBLOCK = 0x10000
MAP_STACK = 0x20000
MAP_HUGETLB = 0x40000
MAP_SYNC = 0x80000
MAP_FIXED_NOREPLACE = 0x100000
MAP_UNINITIALIZED = 0x4000000
# Flags MAP_SHARED_VALIDATE accepts (anything else is EOPNOTSUPP); MAP_SYNC is
# only for DAX files, which we never have.
MAP_KNOWN = (
    MAP_TYPE
    | MAP_FIXED
    | MAP_ANONYMOUS
    | MAP_32BIT
    | MAP_GROWSDOWN
    | MAP_DENYWRITE
    | MAP_EXECUTABLE
    | MAP_LOCKED
    | MAP_NORESERVE
    | MAP_POPULATE
    | MAP_NONBLOCK
    | MAP_STACK
    | MAP_HUGETLB
    | MAP_FIXED_NOREPLACE
    | MAP_UNINITIALIZED
)

MREMAP_MAYMOVE = 1
MREMAP_FIXED = 2
MREMAP_DONTUNMAP = 4

MADV_NORMAL = 0
MADV_RANDOM = 1
MADV_SEQUENTIAL = 2
MADV_WILLNEED = 3
MADV_DONTNEED = 4
MADV_FREE = 8
MADV_REMOVE = 9
MADV_DONTFORK = 10
MADV_DOFORK = 11
MADV_MERGEABLE = 12
MADV_UNMERGEABLE = 13
MADV_HUGEPAGE = 14
MADV_NOHUGEPAGE = 15
MADV_DONTDUMP = 16
MADV_DODUMP = 17
MADV_WIPEONFORK = 18
MADV_KEEPONFORK = 19
MADV_COLD = 20
MADV_PAGEOUT = 21
MADV_POPULATE_READ = 22
MADV_POPULATE_WRITE = 23
MADV_DONTNEED_LOCKED = 24
MADV_COLLAPSE = 25
MADV_HWPOISON = 100
MADV_SOFT_OFFLINE = 101

# Per-VMA flags (fork behaviour set by madvise, ...); part of a VMA's identity for merging.
VM_DONTFORK = 1
VM_WIPEONFORK = 2
# A shared file mapping whose file was not open for writing (Linux: no
# VM_MAYWRITE): mprotect cannot add PROT_WRITE to it (EACCES).
VM_NOMAYWRITE = 4
# mlock'ed (mlock, mlockall): counted against RLIMIT_MEMLOCK; fork does not copy it.
VM_LOCKED = 8
# A private mapping of a file (its bytes copied at mmap time): still "file
# backed" for madvise, which refuses MADV_WIPEONFORK on it as on any file.
VM_FILECOPY = 16
# MAP_GROWSDOWN: a fault just below grows the mapping (sentry/mm/stackgrow.py).
VM_GROWSDOWN = 32


_REFS_LOCK = threading.Lock()


class Backing:
    """A refcounted memfd range that shared VMAs map windows of.

    ``refs`` counts VMAs (in any address space) referencing this backing; the
    memfd range is freed when it drops to zero.  Address spaces sharing one
    backing hold different locks, so the count changes only through
    :meth:`hold` and :meth:`drop` (one leaf lock for all backings: a lost
    update would free pages another process still maps).
    """

    __slots__ = ("offset", "length", "refs", "source")

    def __init__(self, offset: int, length: int, source: object | None = None) -> None:
        self.offset = offset
        self.length = length
        self.refs = 1
        self.source = source

    def hold(self) -> None:
        """One more VMA references this backing."""
        with _REFS_LOCK:
            self.refs += 1

    def drop(self) -> bool:
        """One VMA fewer; True when that was the last."""
        with _REFS_LOCK:
            self.refs -= 1
            return self.refs == 0

    def written_through(self) -> None:
        """A writable mapping of it went (munmap, exit) or was msync'ed: a
        file updates its mtime/ctime now (POSIX marks them for update between
        a store through a MAP_SHARED mapping and the next msync)."""

    def last_unmapped(self, free: Callable[[int, int], None]) -> None:
        """The last VMA referencing this backing is gone: give its memory back
        through ``free`` (the releasing table's, which may defer it).  A file's
        pages (sentry/mm/filemap.py) override this: they belong to the file."""
        free(self.offset, self.length)

    def __repr__(self) -> str:
        return f"Backing({self.offset:#x}, {self.length:#x}, refs={self.refs})"


class Vma:
    """One mapping: [start, end) -> memfd [offset, offset + end - start)."""

    __slots__ = ("start", "end", "prot", "shared", "offset", "name", "backing", "vmflags")

    def __init__(
        self,
        start: int,
        end: int,
        prot: int,
        shared: bool,
        offset: int,
        name: str = "",
        backing: Backing | None = None,
        vmflags: int = 0,
    ) -> None:
        self.start = start
        self.end = end
        self.prot = prot
        self.shared = shared
        self.offset = offset
        self.name = name
        self.backing = backing
        self.vmflags = vmflags

    @property
    def length(self) -> int:
        return self.end - self.start

    def clone(self) -> Vma:
        """A copy with the same fields (the caller fixes refcounts)."""
        return Vma(
            self.start,
            self.end,
            self.prot,
            self.shared,
            self.offset,
            self.name,
            self.backing,
            self.vmflags,
        )

    def can_merge(self, nxt: Vma) -> bool:
        """Whether ``nxt`` directly follows this VMA and is indistinguishable from it."""
        return (
            self.end == nxt.start
            and self.prot == nxt.prot
            and self.shared == nxt.shared
            and self.name == nxt.name
            and self.vmflags == nxt.vmflags
            and self.backing is nxt.backing
            and self.offset + (self.end - self.start) == nxt.offset
        )

    def __repr__(self) -> str:
        kind = "s" if self.shared else "p"
        return (
            f"Vma({self.start:#x}-{self.end:#x} prot={self.prot} {kind} "
            f"off={self.offset:#x} {self.name!r})"
        )


class VmaInfo(NamedTuple):
    """A read-only snapshot of one VMA, for /proc/self/maps and tests."""

    start: int
    end: int
    prot: int
    flags: int  # MAP_PRIVATE or MAP_SHARED
    offset: int  # memfd offset of start
    name: str
