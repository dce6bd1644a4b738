"""A first-fit allocator of page-aligned ranges inside one window of offsets.

Both levels of the memory file use it (sentry/mm/memfile.py): the offsets one
arena hands out inside its own window, and nothing else; it never touches
memory, so the caller punches what it frees.
"""

from __future__ import annotations

import bisect
import errno

from sentry.kernel.errors import SyscallError
from sentry.mm.layout import PAGE_SIZE


class RangeAllocator:
    """Ranges of [base, base + size): a sorted, disjoint, never-adjacent free
    list below a bump pointer.  Not thread-safe: the owner locks."""

    __slots__ = ("base", "limit", "_free", "_top")

    def __init__(self, base: int, size: int) -> None:
        self.base = base
        self.limit = base + size
        self._free: list[tuple[int, int]] = []
        self._top = base

    def allocate(self, length: int) -> int:
        """First fit in the free list, else bump; ENOMEM when the window is full."""
        for i, (start, end) in enumerate(self._free):
            if end - start >= length:
                if end - start == length:
                    del self._free[i]
                else:
                    self._free[i] = (start + length, end)
                return start
        if self._top + length > self.limit:
            raise SyscallError(errno.ENOMEM)
        start = self._top
        self._top += length
        return start

    def reserve(self, offset: int, length: int) -> bool:
        """Claim exactly [offset, offset+length) if all of it is free."""
        if offset < self.base or offset % PAGE_SIZE:
            return False
        end = offset + length
        if offset >= self._top:
            if end > self.limit:
                return False
            if offset > self._top:
                self._insert_free(self._top, offset)
            self._top = end
            return True
        i = bisect.bisect_right(self._free, offset, key=lambda r: r[0]) - 1
        if i < 0:
            return False
        fstart, fend = self._free[i]  # free ranges never touch the bump pointer
        if not (fstart <= offset and end <= fend):
            return False
        self._free[i : i + 1] = [r for r in ((fstart, offset), (end, fend)) if r[0] < r[1]]
        return True

    def check_allocated(self, offset: int, length: int) -> None:
        """ValueError unless all of [offset, offset+length) is allocated: freeing
        anything else is a memory-manager bug that would give a page two owners."""
        end = offset + length
        if offset < self.base or offset % PAGE_SIZE or end > self._top:
            raise ValueError(f"free of unallocated range [{offset:#x}, {end:#x})")
        i = bisect.bisect_right(self._free, offset, key=lambda r: r[0])
        if (i > 0 and self._free[i - 1][1] > offset) or (
            i < len(self._free) and self._free[i][0] < end
        ):
            raise ValueError(f"double free of [{offset:#x}, {end:#x})")

    def release(self, offset: int, length: int) -> None:
        """Make an allocated range free again (checked by the caller first)."""
        self._insert_free(offset, offset + length)

    @property
    def used(self) -> int:
        return self._top - self.base - sum(end - start for start, end in self._free)

    def _insert_free(self, start: int, end: int) -> None:
        """Insert a free range, coalescing with neighbours and the bump pointer."""
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
