"""The memory file: all application memory, in arenas of their own memfds.

The Sentry sees it as one range of offsets, mapped read/write at ``address``
(``view``/``buf``): offsets [0, common_size) are the *common* arena, each
address space's arena (sentry/mm/arena.py) has a window of ``arena_size``
after it, and shared objects' arenas, each its own size, come last.
Everything that takes an offset (free, zero, copy, the views) works on any
arena; what is allocated where is the caller's choice: private memory and
stub slots from an address space's arena; shared anonymous memory and the
image cache's program text as shared objects (``allocate_object``: a file
each, the text sealed read-only); tmpfs and SysV pages from arenas of their
file's own (``object_arena``, sentry/mm/filemap.py).  Nothing is allocated
from the common arena any more (``allocate``: the unit tests'), and no stub
holds its descriptor: a stub holds its own arena's and the shared object it
last received (docs/security.md, "Memory isolation").

Facts about the kernel API this module relies on (Linux, shmem/tmpfs):

* ``memfd_create`` gives an anonymous tmpfs file. ``ftruncate`` to a large
  size costs nothing: pages are allocated on first write and a read of a hole
  returns zeros; memfds are VM_NORESERVE, so mapping them whole does not count
  against the overcommit limit.  The window that holds them is one
  PROT_NONE reservation, each arena mapped over its part with MAP_FIXED.
* ``fallocate(PUNCH_HOLE | KEEP_SIZE)`` frees the pages of a range at once and
  makes every existing mapping of it read zeros; that is how freed memory is
  returned to the host and cleared before its offsets are handed out again.
* A read fault on a hole of a shared shmem mapping allocates a page, so even
  Sentry reads of never-written memory materialise it; tests that check
  sparseness look before they read.
* ``lseek(SEEK_DATA / SEEK_HOLE)`` on shmem works at page granularity, so fork
  copies only data extents (``copy``: copy_file_range from one arena's file to
  another's), keeping a mostly untouched 8 MiB stack sparse in the child.

Lock order: AddressSpace.lock (and FileBacking.lock) before an arena's lock,
before this object's ``_lock``; ``free_soon`` takes no lock, for
garbage-collector callers.
"""

from __future__ import annotations

import bisect
import collections
import ctypes
import errno
import mmap
import os
import resource
import threading

from sentry.kernel.errors import SyscallError
from sentry.mm.arena import Arena, make_memfd
from sentry.mm.layout import PAGE_SIZE, page_round_up
from sentry.mm.ranges import RangeAllocator

ARENA_SIZE = 1 << 35  # an address space's private memory: 32 GiB, sparse
MAX_ARENAS = 1024
OBJECT_SPACE = 1 << 40  # the windows of shared objects' arenas, each its own size
_MAP_NORESERVE = 0x4000
_MAP_FIXED = 0x10
_PROT_RW = mmap.PROT_READ | mmap.PROT_WRITE

_libc = ctypes.CDLL(None, use_errno=True)
_mmap = _libc.mmap
_mmap.restype = ctypes.c_void_p
_mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int,
                  ctypes.c_long]
_mprotect = _libc.mprotect
_mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]

# Copy data extents in chunks of at most this many bytes (bounded GIL holds
# when the in-kernel copy is refused and the views copy instead).
_COPY_CHUNK = 64 << 20
_MOVE_CHUNK = 128 << 10
_GUARD = PAGE_SIZE  # unused offsets after each shared object's window


def _fd_base() -> int:
    """The lowest descriptor number for arena files: high, so the Sentry's
    filter can tell them from its other descriptors by number alone.  The soft
    RLIMIT_NOFILE is raised to the hard one first (boot, before confinement)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (OSError, ValueError):
            pass
    if soft == resource.RLIM_INFINITY:
        soft = 1 << 20
    # Not higher than needed: the kernel sizes a descriptor table to its
    # highest number (8 bytes a slot), memory a small memory limit counts.
    return 1024 if soft >= 4096 else max(64, soft // 4)


class MemoryFile:
    """The arenas of one sandbox and the Sentry's window onto all of them.

    ``view`` is the Sentry's only window onto application memory; ``address``
    is its base for C code in the platform; ``common`` is an arena no stub
    holds (the unit tests' ``allocate``); ``fd_base`` the lowest descriptor
    number of any arena's file.
    """

    def __init__(self, size: int = 1 << 37, *, arena_size: int = ARENA_SIZE,
                 max_arenas: int = MAX_ARENAS) -> None:
        for n in (size, arena_size):
            if n <= 0 or n % PAGE_SIZE:
                raise ValueError(f"memory file size must be a positive page multiple: {n}")
        self.objects_base = size + arena_size * max_arenas
        self.size: int = self.objects_base + OBJECT_SPACE
        self.arena_size = arena_size
        self.fd_base = _fd_base()
        flags = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | _MAP_NORESERVE
        buf = mmap.mmap(-1, self.size, flags=flags, prot=_PROT_RW)
        anchor = ctypes.c_char.from_buffer(buf)
        self.address: int = ctypes.addressof(anchor)
        del anchor
        _mprotect(self.address, self.size, 0)  # outside the arenas: a Sentry bug faults
        self.buf: mmap.mmap = buf
        self.view: memoryview = memoryview(buf)
        self._lock = threading.Lock()
        self._slots: list[Arena | None] = [None] * max_arenas
        self._free_slots = list(range(max_arenas - 1, -1, -1))  # pop() gives the lowest
        self._object_windows = RangeAllocator(self.objects_base, OBJECT_SPACE)
        self._object_bases: list[int] = []  # sorted, for arena_of
        self._objects: dict[int, Arena] = {}
        self._closed = False
        # Ranges given up where freeing is not safe (free_soon); thread-safe deque.
        self._doomed: collections.deque[tuple[int, int]] = collections.deque()
        self.common = self._open_arena(0, size, "pyvisor-memory", permanent=True)
        self.common_size = size

    # -- arenas -------------------------------------------------------------

    def new_arena(self) -> Arena:
        """A fresh arena for one address space (ENOMEM when every window is taken,
        EMFILE's cousin: the host refused the file)."""
        with self._lock:
            if not self._free_slots or self._closed:
                raise SyscallError(errno.ENOMEM)
            k = self._free_slots.pop()
        base = self.common_size + k * self.arena_size
        try:
            arena = self._open_arena(base, self.arena_size, "pyvisor-mm")
        except OSError as e:
            with self._lock:
                self._free_slots.append(k)
            raise SyscallError(errno.ENOMEM if e.errno != errno.EMFILE else errno.EAGAIN) from None
        self._slots[k] = arena
        return arena

    def object_arena(self, size: int, *, sealable: bool = False) -> Arena:
        """A new shared object's arena of ``size`` bytes, nothing allocated in
        it yet: a file of its own, which a stub gets only when it maps it.
        Its window is followed by an unused guard page, so no offset of one
        object ever continues another's (VMAs and file runs merge by offset).
        The owner allocates from it; its last free retires it."""
        size = self._check_length(size)
        with self._lock:
            if self._closed:
                raise SyscallError(errno.ENOMEM)
            base = self._object_windows.allocate(size + _GUARD)
        try:
            arena = self._open_arena(base, size, "pyvisor-shared", sealable=sealable)
        except OSError as e:
            with self._lock:
                self._object_windows.release(base, size + _GUARD)
            raise SyscallError(errno.ENOMEM if e.errno != errno.EMFILE else errno.EAGAIN) from None
        arena.shared_object = True
        with self._lock:
            bisect.insort(self._object_bases, base)
            self._objects[base] = arena
        return arena

    def allocate_object(self, length: int, *, sealable: bool = False) -> int:
        """The offset of a new shared object of ``length`` bytes, in an arena
        of its own (the whole of it).  ``sealable``: it can be sealed
        read-only later (``seal``)."""
        length = self._check_length(length)
        return self.object_arena(length, sealable=sealable).allocate(length)

    def seal(self, offset: int) -> None:
        """Make the shared object at ``offset`` read-only for every stub."""
        self.arena_of(offset).seal()

    def _open_arena(self, base: int, size: int, name: str, *, permanent: bool = False,
                    sealable: bool = False) -> Arena:
        fd = make_memfd(name, size, self.fd_base, sealable=sealable)
        flags = mmap.MAP_SHARED | _MAP_FIXED | _MAP_NORESERVE
        if _mmap(self.address + base, size, _PROT_RW, flags, fd, 0) != self.address + base:
            err = ctypes.get_errno()
            os.close(fd)
            raise OSError(err, f"cannot map an arena: {os.strerror(err)}")
        return Arena(self, base, size, fd, permanent=permanent)

    def retire(self, arena: Arena) -> None:
        """Close an arena nothing uses any more and give its window back."""
        with self._lock:
            if arena.closed or arena.permanent:
                return
            arena.closed = True
            if arena.shared_object:
                self._object_bases.remove(arena.base)
                del self._objects[arena.base]
            else:
                k = (arena.base - self.common_size) // self.arena_size
                self._slots[k] = None
        flags = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | _MAP_FIXED | _MAP_NORESERVE
        _mmap(self.address + arena.base, arena.size, 0, flags, -1, 0)
        os.close(arena.fd)
        with self._lock:
            if arena.shared_object:
                self._object_windows.release(arena.base, arena.size + _GUARD)
            else:
                self._free_slots.append(k)
                self._free_slots.sort(reverse=True)

    def arena_of(self, offset: int) -> Arena:
        """The arena whose window holds ``offset`` (ValueError if none does)."""
        if 0 <= offset < self.common_size:
            return self.common
        if offset >= self.objects_base:
            with self._lock:
                i = bisect.bisect_right(self._object_bases, offset) - 1
                arena = self._objects[self._object_bases[i]] if i >= 0 else None
            if arena is None or offset >= arena.base + arena.size:
                raise ValueError(f"offset {offset:#x} is in no arena")
            return arena
        k = (offset - self.common_size) // self.arena_size
        arena = self._slots[k] if 0 <= k < len(self._slots) else None
        if arena is None:
            raise ValueError(f"offset {offset:#x} is in no arena")
        return arena

    def fd_at(self, offset: int) -> tuple[int, int]:
        """(descriptor, file offset) of a global offset, for lseek and the stubs."""
        arena = self.arena_of(offset)
        return arena.fd, offset - arena.base

    def arenas(self) -> list[Arena]:
        with self._lock:
            return ([self.common] + [a for a in self._slots if a is not None]
                    + list(self._objects.values()))

    # -- allocation (the common arena) and offsets of any arena ---------------

    def allocate(self, length: int) -> int:
        """A fresh zero range of the common arena, which no stub can map
        (no stub holds its file): nothing of the Sentry's uses it (tmpfs pages are their
        files' own objects); the memory file's unit tests do."""
        return self.common.allocate(self._check_length(length))

    def reserve(self, offset: int, length: int) -> bool:
        """Claim exactly [offset, offset+length) of whichever arena holds it, if free."""
        length = self._check_length(length)
        try:
            arena = self.arena_of(offset)
        except ValueError:
            return False
        return arena.reserve(offset, length)

    def free(self, offset: int, length: int) -> None:
        """Hole-punch [offset, offset+length) and make it allocatable again.
        ValueError on a range that is not allocated: a memory-manager bug."""
        length = self._check_length(length)
        self.arena_of(offset).free(offset, length)

    def free_many(self, ranges: list[tuple[int, int]]) -> None:
        """free() each (offset, length), adjacent ranges punched as one."""
        merged: list[list[int]] = []
        for offset, length in sorted(ranges):
            end = offset + self._check_length(length)
            if merged and merged[-1][1] == offset and self._same_arena(merged[-1][0], offset):
                merged[-1][1] = end
            else:
                merged.append([offset, end])
        for start, end in merged:
            self.free(start, end - start)

    def _same_arena(self, a: int, b: int) -> bool:
        return self.arena_of(a) is self.arena_of(b)

    def zero(self, offset: int, length: int) -> None:
        """Zero a range (hole punch) without giving it back to the allocator."""
        length = self._check_length(length)
        arena = self.arena_of(offset)
        if offset % PAGE_SIZE or offset + length > arena.base + arena.size:
            raise ValueError(f"zero of bad range [{offset:#x}, +{length:#x})")
        arena.punch(offset, length)

    def copy(self, src_off: int, dst_off: int, length: int) -> None:
        """Make [dst_off, +length) a copy of [src_off, +length), staying sparse.

        Only data extents of the source are copied; holes stay holes in the
        destination, which must be a fresh allocation (all holes).  The two
        ranges may be in different arenas (fork): copy_file_range between the
        files, no page faults in the Sentry's window."""
        if length <= 0:
            return
        src_fd, src_local = self.fd_at(src_off)
        dst_fd, dst_local = self.fd_at(dst_off)
        view = self.view
        end = src_local + length
        pos = src_local
        while pos < end:
            try:
                data = os.lseek(src_fd, pos, os.SEEK_DATA)
            except OSError as e:
                if e.errno == errno.ENXIO:  # no data after pos
                    return
                raise
            if data >= end:
                return
            hole = min(os.lseek(src_fd, data, os.SEEK_HOLE), end)
            while data < hole:
                n = min(hole - data, _COPY_CHUNK)
                d = dst_local + (data - src_local)
                try:
                    done = os.copy_file_range(src_fd, dst_fd, n, data, d)
                except OSError:
                    done = 0
                if done <= 0:
                    s, t = src_off + (data - src_local), dst_off + (data - src_local)
                    view[t : t + n] = view[s : s + n]
                    done = n
                data += done
            pos = hole

    def move(self, src_off: int, dst_off: int, length: int) -> None:
        """``copy``, punching the source behind it a chunk at a time, so moving
        a program's text into a shared object of its own (share_readonly)
        never holds two copies of all of it: under a small memory limit the
        transient counts.  The source must be mapped by no stub yet."""
        for pos in range(0, length, _MOVE_CHUNK):
            n = min(_MOVE_CHUNK, length - pos)
            self.copy(src_off + pos, dst_off + pos, n)
            self.zero(src_off + pos, n)

    def free_soon(self, ranges: list[tuple[int, int]]) -> None:
        """free() these ranges at the next allocation: for callers that may run
        anywhere, even inside an arena's lock (a garbage-collector finalizer)."""
        self._doomed.extend(ranges)

    def reap(self) -> None:
        """Free what free_soon deferred."""
        while True:
            try:
                offset, length = self._doomed.popleft()
            except IndexError:
                return
            self.free(offset, length)

    @property
    def used(self) -> int:
        """Bytes currently allocated in every arena (leak checks, accounting)."""
        self.reap()
        return sum(a.used for a in self.arenas())

    def blocks_bytes(self) -> int:
        """Host memory the arenas' files hold (st_blocks), for usage reports."""
        return sum(a.host_bytes() for a in self.arenas())

    @property
    def fd(self) -> int:
        """The common arena's descriptor."""
        return self.common.fd

    # -- lifetime -----------------------------------------------------------

    def close(self) -> None:
        """Unmap the window and close every arena's file. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self.view.release()
        self.buf.close()
        for a in self.arenas():
            a.closed = True
            os.close(a.fd)

    def __enter__(self) -> MemoryFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @staticmethod
    def _check_length(length: int) -> int:
        if length <= 0:
            raise ValueError(f"bad length {length}")
        return page_round_up(length)
