"""SIGBUS for a file mapping's pages past the end of its file.

Linux maps no page past a file's last one: touching one through a mapping
(shared or private) is SIGBUS (BUS_ADRERR), not zero memory; once the file
grows to cover it, the same access works.  Here a mapping's stub pages are
memory-file pages that exist whatever the file's size, so at mmap time the
part past the (page-rounded) end is made PROT_NONE in the stub while the
VMA keeps its protection (a "guard").  A fault in a guard (Task._fault asks
:meth:`EofGuards.eof_fault`) is decided then: still past the end, SIGBUS;
the file has grown, the pages get the VMA's protection and the access is
retried.

A Sentry-held file (tmpfs, memfd) shrinking under live mappings guards the
pages it loses in every address space mapping it (FileBacking.shrunk),
applied to another process's stub at its next trap (Linux: at once).
Limits (partial): a Gofer file's shrink does not, and the Sentry's own
copies (read(2) into such a page) are not refused.  A fork's child inherits the guards; a guard is
dropped whenever its range is unmapped; mprotect keeps it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from sentry.mm.layout import PAGE_SIZE, page_round_up
from sentry.mm.vma import PROT_NONE
from sentry.mm.vma_table import OP_PROTECT, StubOp, VmaTable

NO_GUARD, RETRY, SIGBUS = 0, 1, 2
Fill = Callable[[int, int], bytes]  # (file offset, length) -> the file's bytes


class _Guard(NamedTuple):
    lo: int
    hi: int
    source: Any  # the file (its ``size`` is read at fault time)
    pos: int  # file offset of ``lo``
    fill: Fill | None  # a private mapping's copy: what to read in when the file grew

    def cut(self, lo: int, hi: int) -> _Guard:
        return _Guard(lo, hi, self.source, self.pos + lo - self.lo, self.fill)


class EofGuards(VmaTable):
    """The guarded ranges of one address space (sorted, disjoint)."""

    _guards: list[_Guard] | None = None

    def _guard_past_eof(self, addr: int, length: int, source: Any, pgoff: int, prot: int,
                        fill: Fill | None = None, size: int | None = None) -> None:
        """Guard what of [addr, addr+length), mapping file offset ``pgoff``
        on, lies past the end of ``source`` (a file with a ``size``; ``size``
        when the caller knows better) (lock held).  ``fill``: the mapping is
        a private copy, refilled from it (what it returns is the truth about
        the file's end: a Gofer file's cached size may be stale)."""
        first = page_round_up(int(source.size if size is None else size))
        if prot == PROT_NONE or pgoff + length <= first:
            return
        skip = max(first - pgoff, 0)
        lo, hi = addr + skip, addr + length
        self._drop_guards(lo, hi)
        guards = self._guards = list(self._guards or ())
        guards.append(_Guard(lo, hi, source, pgoff + skip, fill))
        guards.sort()
        self.pending.append(StubOp(OP_PROTECT, lo, hi - lo, PROT_NONE))

    def _drop_guards(self, start: int, end: int) -> None:
        """Forget guards in [start, end) (unmapped, or given the VMA's prot)."""
        if not self._guards:
            return
        out = []
        for g in self._guards:
            if g.hi <= start or g.lo >= end:
                out.append(g)
                continue
            if g.lo < start:
                out.append(g.cut(g.lo, start))
            if g.hi > end:
                out.append(g.cut(end, g.hi))
        self._guards = out

    def _reguard(self, start: int, end: int, prot: int) -> None:
        """mprotect gave [start, end) ``prot`` in the stub: guards there stay
        PROT_NONE (or go, with PROT_NONE itself)."""
        if not self._guards:
            return
        if prot == PROT_NONE:
            self._drop_guards(start, end)
            return
        for g in self._guards:
            lo, hi = max(g.lo, start), min(g.hi, end)
            if lo < hi:
                self.pending.append(StubOp(OP_PROTECT, lo, hi - lo, PROT_NONE))

    def guard_shrunk(self, backing: Any) -> None:
        """``backing``'s file shrank: guard this address space's mappings of
        it past the new end (the ops reach the stub at its next trap)."""
        with self.lock:
            for v in list(self._vmas):
                if v.backing is backing and v.prot != PROT_NONE:
                    pos = backing.file_offset(v.offset)
                    self._guard_past_eof(v.start, v.length, backing.source, pos, v.prot)

    def _fork_guards(self, child: EofGuards) -> None:
        """fork: the child's copies of guarded pages are guarded too (lock held;
        only where the child maps them: MADV_DONTFORK ranges are not there)."""
        for v in child._vmas:
            if hasattr(v.backing, "mapped_by"):
                v.backing.mapped_by(child)  # type: ignore[union-attr]
        kept = []
        for g in self._guards or ():
            for v in child._vmas:
                lo, hi = max(g.lo, v.start), min(g.hi, v.end)
                if lo < hi:
                    kept.append(g.cut(lo, hi))
                    child.pending.append(StubOp(OP_PROTECT, lo, hi - lo, PROT_NONE))
        child._guards = kept or None

    def eof_fault(self, addr: int) -> int:
        """What a SIGSEGV at ``addr`` is: NO_GUARD (a real fault), RETRY (the
        file grew: the pages are opened, run again) or SIGBUS."""
        with self.lock:
            g = next((g for g in self._guards or () if g.lo <= addr < g.hi), None)
            if g is None:
                return NO_GUARD
            i = self._find(addr)
            v = self._vmas[i] if i >= 0 else None
            if v is None or v.prot == PROT_NONE:
                self._drop_guards(g.lo, g.hi)  # stale: not a mapped page now
                return NO_GUARD
            page = addr - addr % PAGE_SIZE
            pos = g.pos + page - g.lo
            hi = min(g.hi, v.end)
            data = b""
            if g.fill is not None:
                data = g.fill(pos, hi - page)
                end = pos + len(data)
            else:
                end = int(g.source.size)
            if pos >= end:
                return SIGBUS
            hi = min(hi, page + page_round_up(end - pos))
            self._drop_guards(page, hi)
            if data:
                self.copy_out_force(page, data[:hi - page])
            self.pending.append(StubOp(OP_PROTECT, page, hi - page, v.prot))
            return RETRY
