"""mremap(2) over the VMA table: shrink, grow in place, move, duplicate.

Split out of address_space.py (AddressSpace inherits it).  Facts that shaped it:

* A VMA maps one contiguous memfd range, so growing memory in place first tries
  to reserve the memfd range right after the old one; when that is taken,
  private memory is re-homed (sparse copy into a fresh range, a single
  OP_MAP), while a shared backing another VMA still uses cannot move, so the
  extension becomes a second VMA with its own backing (Linux would show one
  VMA; a later mremap spanning both gives EFAULT).  A shared file mapping grows
  over the file's next pages (sentry/mm/filemap.py), wherever they are.
* Moving memory never copies: the moved VMA keeps its memfd offsets, so the stub
  just does OP_UNMAP old + OP_MAP new.

Lock order as vma_table.py: methods run with ``lock`` held (mremap takes it).
"""

from __future__ import annotations

import bisect
import errno

from sentry.kernel.errors import SyscallError
from sentry.mm.filemap import FileBacking
from sentry.mm.layout import APP_END, APP_START, PAGE_SIZE, page_round_up
from sentry.mm.vma import MREMAP_DONTUNMAP, MREMAP_FIXED, MREMAP_MAYMOVE, Backing, Vma
from sentry.mm.vma_table import OP_MAP, OP_UNMAP, StubOp, VmaTable, err


class Remapper(VmaTable):
    """mremap and the placement helpers it shares with mmap."""

    # -- mremap ---------------------------------------------------------------

    def mremap(
        self, old_addr: int, old_len: int, new_len: int, flags: int, new_addr: int = 0
    ) -> int:
        """mremap(2): shrink, grow in place, or move (without copying); returns the address.

        Like Linux, a plain shrink may span several VMAs, while growing or moving
        needs the old range inside one VMA (else EFAULT). old_len 0 duplicates a
        shared mapping at a new address.
        """
        if flags & ~(MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP):
            raise err(errno.EINVAL)
        maymove = bool(flags & MREMAP_MAYMOVE)
        fixed = bool(flags & MREMAP_FIXED)
        dontunmap = bool(flags & MREMAP_DONTUNMAP)
        if (fixed or dontunmap) and not maymove:
            raise err(errno.EINVAL)
        if old_addr % PAGE_SIZE or old_len < 0 or new_len < 0:
            raise err(errno.EINVAL)
        old_len, new_len = page_round_up(old_len), page_round_up(new_len)
        if new_len == 0 or (dontunmap and old_len != new_len):
            raise err(errno.EINVAL)
        if fixed:
            if new_addr % PAGE_SIZE or new_addr < APP_START or new_addr + new_len > APP_END:
                raise err(errno.EINVAL)
            if new_addr < old_addr + old_len and old_addr < new_addr + new_len:
                raise err(errno.EINVAL)
        with self.lock:
            i = self._find(old_addr)
            if i < 0:
                raise err(errno.EFAULT)
            v = self._vmas[i]
            if old_len == 0:
                return self._duplicate(v, old_addr, new_len, maymove, new_addr if fixed else None)
            self._unshare(old_addr, old_addr + old_len)  # moves and resizes work on own memory
            v = self._vmas[i]
            if not (fixed or dontunmap) and new_len <= old_len:
                self._unmap(old_addr + new_len, old_addr + old_len, emit=True)
                return old_addr
            if old_len > v.end - old_addr:
                pgoff = self._file_span(i, old_addr, old_addr + old_len)
                if pgoff is None:
                    raise err(errno.EFAULT)
                return self._remap_file(i, old_addr, old_len, new_len, pgoff, maymove,
                                        new_addr if fixed else None, dontunmap)
            if fixed:
                self._unmap(new_addr, new_addr + new_len, emit=True)
                if new_len < old_len:
                    self._unmap(old_addr + new_len, old_addr + old_len, emit=True)
                    old_len = new_len
                return self._move(old_addr, old_len, new_addr, new_len, dontunmap)
            old_end, new_end = old_addr + old_len, old_addr + new_len
            if (
                not dontunmap
                and old_end == v.end
                and new_end <= APP_END
                and self._is_free(old_end, new_end)
            ):
                self._grow_in_place(old_addr, old_len, new_len)
                return old_addr
            if not maymove:
                raise err(errno.ENOMEM)
            dest = self._get_unmapped_area(0, new_len, False)
            return self._move(old_addr, old_len, dest, new_len, dontunmap)

    def _file_span(self, i: int, start: int, end: int) -> int | None:
        """The file offset of ``start`` when [start, end) is one file mapping
        that this table keeps as several VMAs (one per run of the file's
        pages, which Linux would show as one VMA): same backing, protection
        and flags, consecutive addresses and file offsets; else None."""
        v = self._vmas[i]
        b = v.backing
        if not isinstance(b, FileBacking):
            return None
        first = b.file_offset(v.offset + start - v.start)
        expect_addr, expect_off = v.end, first + v.end - start
        for w in self._vmas[i + 1:]:
            if expect_addr >= end:
                break
            if (w.start != expect_addr or w.backing is not b or w.prot != v.prot
                    or w.vmflags != v.vmflags or b.file_offset(w.offset) != expect_off):
                return None
            expect_addr, expect_off = w.end, expect_off + w.length
        return first if expect_addr >= end else None

    def _remap_file(self, i: int, old_addr: int, old_len: int, new_len: int, pgoff: int,
                    maymove: bool, fixed_addr: int | None, dontunmap: bool) -> int:
        """mremap of a file mapping spanning several VMAs (see _file_span):
        grown in place over the file's next pages, or mapped afresh over the
        same file pages at the destination and the old range unmapped."""
        v = self._vmas[i]
        b = v.backing
        assert isinstance(b, FileBacking)
        old_end = old_addr + old_len

        def pieces_at(addr: int, pos: int, length: int) -> list[Vma]:
            out, at = [], addr
            for off, n in b.runs(pos, length, hold=True):
                out.append(Vma(at, at + n, v.prot, True, off, v.name, b, v.vmflags))
                at += n
            return out

        if (fixed_addr is None and not dontunmap and old_addr + new_len <= APP_END
                and self._is_free(old_end, old_addr + new_len)):
            self._place(pieces_at(old_end, pgoff + old_len, new_len - old_len))
            return old_addr
        if not maymove:
            raise err(errno.ENOMEM)
        if fixed_addr is not None:
            self._unmap(fixed_addr, fixed_addr + new_len, emit=True)
            dest = fixed_addr
        else:
            dest = self._get_unmapped_area(0, new_len, False)
        self._place(pieces_at(dest, pgoff, new_len))
        if not dontunmap:
            self._unmap(old_addr, old_end, emit=True)
        return dest

    def _duplicate(
        self, v: Vma, old_addr: int, new_len: int, maymove: bool, fixed_addr: int | None
    ) -> int:
        """mremap with old_len 0: a second mapping of the same shared pages."""
        if not v.shared or v.backing is None:
            raise err(errno.EINVAL)
        if not maymove:
            raise err(errno.ENOMEM)
        b = v.backing
        off = v.offset + old_addr - v.start
        if not isinstance(b, FileBacking) and off + new_len > b.offset + b.length:
            raise err(errno.EINVAL)
        if fixed_addr is not None:
            self._unmap(fixed_addr, fixed_addr + new_len, emit=True)
            dest = fixed_addr
        else:
            dest = self._get_unmapped_area(0, new_len, False)
        if isinstance(b, FileBacking):
            runs = b.runs(b.file_offset(off), new_len, hold=True)
        else:
            b.hold()
            runs = [(off, new_len)]
        pieces, pos = [], dest
        for o, n in runs:
            pieces.append(Vma(pos, pos + n, v.prot, True, o, v.name, b, v.vmflags))
            pos += n
        self._place(pieces)
        return dest

    def _grow_backing(self, v: Vma, new_len: int) -> tuple[list[Vma], list[Vma]]:
        """Extend a detached VMA's memory to new_len bytes.

        Returns the VMAs that now describe [v.start, v.start + new_len) and the
        old claims to _release once they are in the table. Raises ENOMEM before any
        visible change. ``v``'s claim on its memory transfers to the result.
        """
        mf = self.mf
        old_len = v.length
        delta = new_len - old_len
        if delta <= 0:
            return [v], []
        b = v.backing
        if isinstance(b, FileBacking):  # the file's next pages, wherever they are
            pieces, pos = [v], v.end
            for off, n in b.runs(b.file_offset(v.offset) + old_len, delta, hold=True):
                pieces.append(Vma(pos, pos + n, v.prot, True, off, v.name, b, v.vmflags))
                pos += n
            return pieces, []
        if b is None:
            if not self.arena.reserve(v.offset + old_len, delta):
                off = self.arena.allocate(new_len)
                mf.copy(v.offset, off, old_len)
                old = v.clone()
                v.offset = off
                v.end = v.start + new_len
                return [v], [old]
            v.end = v.start + new_len
            return [v], []
        if v.offset + old_len == b.offset + b.length and mf.reserve(b.offset + b.length, delta):
            b.length += delta
            v.end = v.start + new_len
            return [v], []
        if b.refs == 1:  # nobody else maps this backing: re-home it
            off = mf.allocate_object(new_len)
            mf.copy(v.offset, off, old_len)
            old = v.clone()
            v.offset, v.backing, v.end = off, Backing(off, new_len, b.source), v.start + new_len
            return [v], [old]
        off = mf.allocate_object(delta)
        extra = Vma(
            v.end, v.start + new_len, v.prot, True, off, v.name, Backing(off, delta), v.vmflags
        )
        return [v, extra], []

    def _grow_in_place(self, old_addr: int, old_len: int, new_len: int) -> None:
        """Grow the tail [old_addr, +old_len) of a VMA into the free space after it."""
        i, j = self._isolate(old_addr, old_addr + old_len)
        v = self._vmas[i]
        try:
            pieces, olds = self._grow_backing(v.clone(), new_len)
        except SyscallError:
            self._merge_range(i, j)
            raise
        self._delete(i, j)
        self._insert(i, pieces)
        for o in olds:
            self._release(o)
        for k, p in enumerate(pieces):
            if k == 0 and p.offset == v.offset:  # the old part is already mapped
                if p.length > old_len:
                    self.pending.append(
                        StubOp(
                            OP_MAP,
                            p.start + old_len,
                            p.length - old_len,
                            p.prot,
                            p.offset + old_len,
                        )
                    )
            else:
                self.pending.append(StubOp(OP_MAP, p.start, p.length, p.prot, p.offset))
        self._merge_range(i, i + len(pieces))

    def _move(self, old_addr: int, old_len: int, dest: int, new_len: int, dontunmap: bool) -> int:
        """Move [old_addr, +old_len) (inside one VMA) to the free range at dest, growing it."""
        i, j = self._isolate(old_addr, old_addr + old_len)
        v = self._vmas[i]
        fresh = None
        try:
            if dontunmap and not v.shared:
                fresh = self.arena.allocate(old_len)
            moved = v.clone()
            moved.start, moved.end = dest, dest + old_len
            pieces, olds = self._grow_backing(moved, new_len)
        except SyscallError:
            if fresh is not None:
                self.mf.free(fresh, old_len)
            self._merge_range(i, j)
            raise
        if dontunmap:
            # The old range stays mapped: shared memory still shows the same pages,
            # private memory is fresh zero pages (its old pages moved).
            if v.backing is not None:
                v.backing.hold()
            else:
                assert fresh is not None
                v.offset = fresh
                self.pending.append(StubOp(OP_MAP, v.start, v.length, v.prot, v.offset))
            self._merge_range(i, j)
        else:
            self._delete(i, j)
            self.pending.append(StubOp(OP_UNMAP, old_addr, old_len))
        for o in olds:
            self._release(o)
        self._place(pieces)
        return dest

    def _place(self, pieces: list[Vma]) -> None:
        """Insert VMAs into a free range and tell the stub to map them."""
        i = bisect.bisect_left(self._starts, pieces[0].start)
        self._insert(i, pieces)
        for p in pieces:
            self.pending.append(StubOp(OP_MAP, p.start, p.length, p.prot, p.offset))
        self._merge_range(i, i + len(pieces))
