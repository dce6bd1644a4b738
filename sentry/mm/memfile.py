"""The memory memfd: every byte of application memory lives in one file.

Facts about the kernel API this module relies on (Linux, shmem/tmpfs):

* ``memfd_create`` gives an anonymous tmpfs file. ``ftruncate`` to 1 TiB costs
  nothing: pages are allocated on first write and a read of a hole returns zeros.
  memfd files are created with VM_NORESERVE, so mapping all of it does not count
  against the overcommit limit.
* ``MFD_EXEC`` (Linux 6.3+) asks for an executable memfd explicitly; with
  ``vm.memfd_noexec=1`` a memfd without it cannot be mapped PROT_EXEC, which the
  stub needs for application code. Older kernels reject the flag with EINVAL, and
  there every memfd is executable, so we retry without it.
* ``fallocate(PUNCH_HOLE | KEEP_SIZE)`` frees the pages of a range immediately and
  makes every existing mapping of it read zeros; a later write allocates a fresh
  zero page. That is how freed memory is both returned to the host and cleared
  before the offsets are handed out again.
* A read fault on a hole of a shared shmem mapping allocates a page (there is no
  shared zero page as for private anonymous memory), so even Sentry reads of
  never-written memory materialise it. Harmless for correctness; tests that
  check sparseness look before they read.
* ``lseek(SEEK_DATA / SEEK_HOLE)`` on shmem works at page granularity, so copying
  only data extents keeps a mostly untouched region (an 8 MiB stack) sparse in a
  forked child.

The allocator only hands out offsets; it never touches the mapping of a stub.
Besides application memory, the memfd holds the pages of files mapped shared
(sentry/mm/filemap.py), which is what makes those mappings coherent.
Lock order: AddressSpace.lock (and FileBacking.lock) before MemoryFile.lock,
never the reverse; ``free_soon`` takes no lock, for garbage-collector callers.
"""

from __future__ import annotations

import bisect
import collections
import ctypes
import errno
import mmap
import os
import threading

from sentry.kernel.errors import SyscallError
from sentry.mm.layout import PAGE_SIZE, page_round_up

MFD_EXEC = 0x10
FALLOC_FL_KEEP_SIZE = 0x01
FALLOC_FL_PUNCH_HOLE = 0x02
_MAP_NORESERVE = 0x4000

# libc through the interpreter's own symbols: find_library("c") would run
# `ldconfig -p` in a subprocess on every Sentry start.
_libc = ctypes.CDLL(None, use_errno=True)
_fallocate = _libc.fallocate
_fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long]
_fallocate.restype = ctypes.c_int

# Copy data extents in chunks of at most this many bytes so one huge extent does
# not need a huge temporary (memoryview slice assignment is a single memmove, but
# keeping chunks bounded keeps the GIL hold time bounded too).
_COPY_CHUNK = 64 << 20


class MemoryFile:
    """One sparse memfd holding all application memory, mapped RW in the Sentry.

    ``fd`` is what stubs map (MAP_SHARED|MAP_FIXED) at application addresses;
    ``view`` is the Sentry's only window onto application memory; ``address`` is
    the base of that window for C code in the platform.
    """

    def __init__(self, size: int = 1 << 40) -> None:
        if size <= 0 or size % PAGE_SIZE:
            raise ValueError(f"memory file size must be a positive page multiple: {size}")
        try:
            fd = os.memfd_create("pyvisor-memory", os.MFD_CLOEXEC | MFD_EXEC)
        except OSError as e:
            if e.errno != errno.EINVAL:
                raise
            fd = os.memfd_create("pyvisor-memory", os.MFD_CLOEXEC)
        try:
            os.ftruncate(fd, size)
            flags = mmap.MAP_SHARED | getattr(mmap, "MAP_NORESERVE", _MAP_NORESERVE)
            buf = mmap.mmap(fd, size, flags=flags, prot=mmap.PROT_READ | mmap.PROT_WRITE)
        except BaseException:
            os.close(fd)
            raise
        self.fd: int = fd
        self.size: int = size
        self.buf: mmap.mmap = buf
        # The ctypes object exports the buffer; drop it at once so close() works.
        anchor = ctypes.c_char.from_buffer(buf)
        self.address: int = ctypes.addressof(anchor)
        del anchor
        self.view: memoryview = memoryview(buf)
        self.lock = threading.Lock()
        # Free ranges below the bump pointer, sorted, disjoint, never adjacent.
        self._free: list[tuple[int, int]] = []
        self._top = 0
        self._closed = False
        # Ranges given up where freeing is not safe (free_soon); thread-safe deque.
        self._doomed: collections.deque[tuple[int, int]] = collections.deque()

    # -- allocation ---------------------------------------------------------

    def allocate(self, length: int) -> int:
        """Return the offset of a fresh, zero, page-aligned range of ``length``.

        First fit in the free list, else bump. The range is zero because every
        freed range was hole-punched and the bump region was never written.
        """
        length = self._check_length(length)
        self._reap()
        with self.lock:
            for i, (start, end) in enumerate(self._free):
                if end - start >= length:
                    if end - start == length:
                        del self._free[i]
                    else:
                        self._free[i] = (start + length, end)
                    return start
            if self._top + length > self.size:
                raise SyscallError(errno.ENOMEM)
            start = self._top
            self._top += length
            return start

    def reserve(self, offset: int, length: int) -> bool:
        """Claim exactly [offset, offset+length) if all of it is free.

        Used to grow a backing in place (brk, mremap) and to place a new mapping
        next to its neighbour's backing so the two VMAs can merge.
        """
        length = self._check_length(length)
        if offset < 0 or offset % PAGE_SIZE:
            return False
        self._reap()
        end = offset + length
        with self.lock:
            if offset >= self._top:
                if end > self.size:
                    return False
                if offset > self._top:
                    self._insert_free(self._top, offset)
                self._top = end
                return True
            i = bisect.bisect_right(self._free, offset, key=lambda r: r[0]) - 1
            if i < 0:
                return False
            # Free ranges never touch the bump pointer (see _insert_free).
            fstart, fend = self._free[i]
            if not (fstart <= offset and end <= fend):
                return False
            pieces = [r for r in ((fstart, offset), (end, fend)) if r[0] < r[1]]
            self._free[i : i + 1] = pieces
            return True

    def free(self, offset: int, length: int) -> None:
        """Hole-punch [offset, offset+length) and make it allocatable again.

        Raises ValueError on a range that is not currently allocated: that is a
        memory-manager bug, and silently double-freeing would hand one page to two
        owners.
        """
        length = self._check_length(length)
        end = offset + length
        if offset < 0 or offset % PAGE_SIZE or end > self._top:
            raise ValueError(f"free of unallocated range [{offset:#x}, {end:#x})")
        with self.lock:
            i = bisect.bisect_right(self._free, offset, key=lambda r: r[0])
            if (i > 0 and self._free[i - 1][1] > offset) or (
                i < len(self._free) and self._free[i][0] < end
            ):
                raise ValueError(f"double free of [{offset:#x}, {end:#x})")
            self._punch(offset, length)
            self._insert_free(offset, end)

    def free_many(self, ranges: list[tuple[int, int]]) -> None:
        """free() each (offset, length), adjacent ranges punched as one (a process's
        memory is mostly allocated in a row: one fallocate instead of several)."""
        merged: list[list[int]] = []
        for offset, length in sorted(ranges):
            end = offset + self._check_length(length)
            if merged and merged[-1][1] == offset:
                merged[-1][1] = end
            else:
                merged.append([offset, end])
        for start, end in merged:
            self.free(start, end - start)

    def zero(self, offset: int, length: int) -> None:
        """Zero a range (hole punch) without giving it back to the allocator."""
        length = self._check_length(length)
        if offset < 0 or offset % PAGE_SIZE or offset + length > self.size:
            raise ValueError(f"zero of bad range [{offset:#x}, +{length:#x})")
        self._punch(offset, length)

    def copy(self, src_off: int, dst_off: int, length: int) -> None:
        """Make [dst_off, +length) a copy of [src_off, +length), staying sparse.

        Only data extents of the source are copied; holes in the source stay
        holes in the destination, which must be a fresh :meth:`allocate` range
        (all holes, as allocate promises: every caller copies into one).  Not
        punching it again saves a fallocate per VMA on every fork.
        """
        if length <= 0:
            return
        view = self.view
        end = src_off + length
        pos = src_off
        while pos < end:
            try:
                data = os.lseek(self.fd, pos, os.SEEK_DATA)
            except OSError as e:
                if e.errno == errno.ENXIO:  # no data after pos
                    return
                raise
            if data >= end:
                return
            hole = min(os.lseek(self.fd, data, os.SEEK_HOLE), end)
            while data < hole:
                n = min(hole - data, _COPY_CHUNK)
                d = dst_off + (data - src_off)
                # In-kernel copy: no page faults in the Sentry's mapping for the
                # fresh destination pages (each costs microseconds in a VM).
                try:
                    done = os.copy_file_range(self.fd, self.fd, n, data, d)
                except OSError:
                    done = 0
                if done <= 0:
                    view[d : d + n] = view[data : data + n]
                    done = n
                data += done
            pos = hole

    def free_soon(self, ranges: list[tuple[int, int]]) -> None:
        """free() these ranges at the next allocation.  For callers that may run
        anywhere, even inside this object's lock: a garbage-collector finalizer
        (a shared-mapped file's pages, sentry/mm/filemap.py)."""
        self._doomed.extend(ranges)

    def _reap(self) -> None:
        while True:
            try:
                offset, length = self._doomed.popleft()
            except IndexError:
                return
            self.free(offset, length)

    @property
    def used(self) -> int:
        """Bytes currently allocated (for leak checks and accounting)."""
        self._reap()
        with self.lock:
            return self._top - sum(end - start for start, end in self._free)

    # -- lifetime -----------------------------------------------------------

    def close(self) -> None:
        """Unmap and close the memfd. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self.view.release()
        self.buf.close()
        os.close(self.fd)

    def __enter__(self) -> MemoryFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals ----------------------------------------------------------

    @staticmethod
    def _check_length(length: int) -> int:
        if length <= 0:
            raise ValueError(f"bad length {length}")
        return page_round_up(length)

    def _punch(self, offset: int, length: int) -> None:
        mode = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE
        if _fallocate(self.fd, mode, offset, length) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"fallocate(PUNCH_HOLE): {os.strerror(err)}")

    def _insert_free(self, start: int, end: int) -> None:
        """Insert a free range, coalescing with neighbours and the bump pointer.

        Caller holds self.lock.
        """
        free = self._free
        i = bisect.bisect_right(free, start, key=lambda r: r[0])
        if i > 0 and free[i - 1][1] == start:
            i -= 1
            start = free[i][0]
            del free[i]
        if i < len(free) and free[i][0] == end:
            end = free[i][1]
            del free[i]
        if end == self._top:
            self._top = start
        else:
            free.insert(i, (start, end))
