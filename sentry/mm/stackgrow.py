"""MAP_GROWSDOWN: a mapping that grows down when the page below it is touched.

Linux (mm/mmap.c, expand_downwards) grows a VM_GROWSDOWN VMA to cover a
faulting address below it when no other VMA is in the way, as long as an
accessible mapping below stays at least ``stack_guard_gap`` (256 pages)
away and the grown size keeps within RLIMIT_STACK; otherwise the access is
SIGSEGV.  Threads whose stacks a program maps this way (the LTP's mmap18)
rely on it.  Here the fault comes back from the stub as a SIGSEGV on an
unmapped address (Task._fault asks :meth:`StackGrowth.grow_down`), and the
growth is fresh private memory mapped right below, with the same protection
and flags, merged into one VMA (its pages move in the memory file when the
room below them is taken).  The Sentry's
own copies into such a hole are not grown (EFAULT, partial).
"""

from __future__ import annotations

import bisect

from sentry.mm.layout import APP_START, PAGE_SIZE
from sentry.mm.vma import PROT_NONE, VM_GROWSDOWN, Vma
from sentry.mm.vma_table import OP_MAP, StubOp, VmaTable

STACK_GUARD_GAP = 256 * PAGE_SIZE  # Linux's default stack_guard_gap


class StackGrowth(VmaTable):
    """Growing VM_GROWSDOWN mappings on a fault below them."""

    def grow_down(self, addr: int, limit: int) -> bool:
        """Grow the VM_GROWSDOWN mapping above ``addr`` down to cover it
        (``limit``: RLIMIT_STACK's soft value); False: a real fault."""
        with self.lock:
            if addr < APP_START or self._find(addr) >= 0:
                return False
            i = bisect.bisect_right(self._starts, addr)
            if i >= len(self._vmas):
                return False
            v = self._vmas[i]
            if not v.vmflags & VM_GROWSDOWN or v.shared or v.backing is not None:
                return False
            new_start = addr - addr % PAGE_SIZE
            if v.end - new_start > limit:
                return False
            if i > 0:
                prev = self._vmas[i - 1]
                if (not prev.vmflags & VM_GROWSDOWN and prev.prot != PROT_NONE
                        and new_start - prev.end < STACK_GUARD_GAP):
                    return False
            grow = v.start - new_start
            if not self.arena.reserve(v.offset - grow, grow):
                self._make_room_below(v, grow)
            else:
                self.arena.free(v.offset - grow, grow)  # _map_new reserves it again
            self._map_new(new_start, grow, v.prot, False, v.name, v.vmflags)
            return True

    def _make_room_below(self, v: Vma, grow: int) -> None:
        """Move ``v``'s pages to a fresh memory-file range with at least
        ``grow`` (and at least its own size: growth by page faults comes
        again) free bytes right below it, so the growth merges into one VMA
        as Linux's does.  Only the faulting thread runs on a stack, and it
        is stopped in its fault, so the copy races nothing that matters."""
        extra = max(grow, v.length)
        base = self.arena.allocate(extra + v.length)
        self.mf.copy(v.offset, base + extra, v.length)
        self._free_range(v.offset, v.length)
        self.arena.free(base, extra)
        v.offset = base + extra
        self.pending.append(StubOp(OP_MAP, v.start, v.length, v.prot, v.offset))
