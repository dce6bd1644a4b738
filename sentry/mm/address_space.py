"""An application address space: the memory syscalls over the VMA table.

mmap, munmap, mprotect, madvise, msync, mincore, mlock and brk with Linux's
semantics (argument checks and errno choices follow the man pages and mm/ of
Linux 6.x), plus fork and release; mremap is remap.py.  The table, the pending
stub ops and user-memory copies are in vma_table.py; the memory file and its
arenas are memfile.py and arena.py (private memory comes from the address
space's own arena, shared pages from the common one); shared file mappings
map the file's own pages (filemap.py).

Facts that shaped this module:

* Private anonymous memory is MAP_SHARED in the stub too: each private VMA owns
  memfd pages nobody else maps, so "private" is a property of the VMA table, and
  fork makes it real by copying (sparsely) into fresh memfd ranges.
* A VMA maps one contiguous memfd range, so growing memory in place (brk,
  mremap) first tries to reserve the memfd range right after the old one.
* Shared memory (anonymous or a file's pages) is shared by fork, never copied;
  MADV_DONTNEED keeps its contents (Linux drops only the page-table entries),
  MADV_REMOVE punches them out of the file.
* The stub region above APP_END is never named in an op: every range is clipped
  to or checked against [APP_START, APP_END).
"""

from __future__ import annotations

import bisect
import errno
import os
from collections.abc import Callable

from sentry.kernel.errors import SyscallError
from sentry.mm.accounting import Accounting
from sentry.mm.eofguard import EofGuards
from sentry.mm.filemap import FileBacking, WritebackBacking
from sentry.mm.layout import APP_END, APP_START, PAGE_SIZE, page_round_up
from sentry.mm.remap import Remapper
from sentry.mm.stackgrow import StackGrowth
from sentry.mm.vma import (
    MADV_COLD,
    MADV_DODUMP,
    MADV_DOFORK,
    MADV_DONTDUMP,
    MADV_DONTFORK,
    MADV_DONTNEED,
    MADV_DONTNEED_LOCKED,
    MADV_FREE,
    MADV_KEEPONFORK,
    MADV_REMOVE,
    MADV_WIPEONFORK,
    MAP_32BIT,
    MAP_ANONYMOUS,
    MAP_FIXED,
    MAP_FIXED_NOREPLACE,
    MAP_GROWSDOWN,
    MAP_KNOWN,
    MAP_PRIVATE,
    MAP_SHARED,
    MAP_SHARED_VALIDATE,
    MAP_TYPE,
    PROT_GROWSDOWN,
    PROT_GROWSUP,
    PROT_READ,
    PROT_SEM,
    PROT_WRITE,
    VM_DONTFORK,
    VM_FILECOPY,
    VM_GROWSDOWN,
    VM_LOCKED,
    VM_NOMAYWRITE,
    VM_WIPEONFORK,
    Backing,
    Vma,
    VmaInfo,
)
from sentry.mm.vma_table import OP_MAP, OP_PROTECT, OP_UNMAP, RWX, StubOp, err

__all__ = ["OP_MAP", "OP_PROTECT", "OP_UNMAP", "AddressSpace", "StubOp"]

MS_ASYNC = 1
MS_INVALIDATE = 2
MS_SYNC = 4


def _check_mmap(length: int, flags: int) -> tuple[bool, int]:
    """mmap's checks of the mapping type and length: (shared, rounded length)."""
    typ = flags & MAP_TYPE
    if typ == MAP_SHARED_VALIDATE:
        if flags & ~MAP_KNOWN:
            raise err(errno.EOPNOTSUPP)
        shared = True
    elif typ in (MAP_SHARED, MAP_PRIVATE):
        shared = typ == MAP_SHARED
    else:
        raise err(errno.EINVAL)
    if length <= 0:
        raise err(errno.EINVAL)
    length = page_round_up(length)
    if length > APP_END - APP_START:
        raise err(errno.ENOMEM)
    return shared, length

# madvise advice values Linux accepts that need nothing from us (MERGEABLE:
# /sys/kernel/mm/ksm is there, so programs expect KSM). Not here, so EINVAL
# as on a kernel built without MEMORY_FAILURE (sentry/procfs/kconfig.py):
# MADV_HWPOISON/SOFT_OFFLINE.
_MADV_NOOP = frozenset(
    {0, 1, 2, 3, 12, 13, 14, 15, MADV_DONTDUMP, MADV_DODUMP, MADV_COLD, 21, 22, 23, 25}
)
_FORK_ADVICE = {
    MADV_DONTFORK: (VM_DONTFORK, True),
    MADV_DOFORK: (VM_DONTFORK, False),
    MADV_WIPEONFORK: (VM_WIPEONFORK, True),
    MADV_KEEPONFORK: (VM_WIPEONFORK, False),
}
_HEAP = "[heap]"


class AddressSpace(Remapper, Accounting, EofGuards, StackGrowth):
    """The memory syscalls of one application address space (one stub process)."""

    saved_auxv = b""  # the image's auxiliary vector (/proc/PID/auxv), set at exec

    # -- brk ----------------------------------------------------------------

    def set_brk_start(self, addr: int) -> None:
        """Set where the heap starts (the loader calls this after the last segment)."""
        with self.lock:
            self.brk_start = self.current_brk = page_round_up(addr)

    def brk(self, addr: int) -> int:
        """brk(2): move the program break; returns the (possibly unchanged) break.

        Linux never fails brk with an errno: a request below the heap start, into
        another mapping, or past memory returns the old break. The break keeps the
        exact value asked for; the heap VMA covers it rounded up to a page.
        """
        with self.lock:
            old = self.current_brk
            if addr < self.brk_start or addr > APP_END:
                return old
            old_top, new_top = page_round_up(old), page_round_up(addr)
            if new_top < old_top:
                self._unmap(new_top, old_top, emit=True)
            elif new_top > old_top:
                if not self._is_free(old_top, new_top):
                    return old
                try:
                    self._map_new(old_top, new_top - old_top, PROT_READ | PROT_WRITE, False, _HEAP)
                except SyscallError:
                    return old
            self.current_brk = addr
            return addr

    # -- mmap / munmap / mprotect ------------------------------------------

    def mmap(self, addr: int, length: int, prot: int, flags: int, *, name: str = "",
             vmflags: int = 0) -> int:
        """mmap(2) of anonymous memory; returns the address.

        A mapping without MAP_ANONYMOUS is ENODEV here: file mappings come
        through :meth:`mmap_file` (shared) or as anonymous memory the caller
        fills (private).
        """
        shared, length = _check_mmap(length, flags)
        if not flags & MAP_ANONYMOUS:
            raise err(errno.ENODEV)
        prot &= RWX  # mmap ignores unknown prot bits
        if flags & MAP_GROWSDOWN and not shared:
            vmflags |= VM_GROWSDOWN
        with self.lock:
            addr, removed = self._claim(addr, length, flags)
            try:
                self._map_new(addr, length, prot, shared, name, vmflags)
            except SyscallError:
                self._undo_claim(removed)
                raise
            return addr

    def mmap_file(self, addr: int, length: int, prot: int, flags: int, backing: FileBacking,
                  pgoff: int, *, name: str = "", maywrite: bool = True) -> int:
        """mmap(2) MAP_SHARED of a file: VMAs over the file's own pages
        (``backing``, sentry/mm/filemap.py), one per contiguous run of them.
        ``maywrite`` False (the file is not open for writing) keeps mprotect
        from adding PROT_WRITE later."""
        shared, length = _check_mmap(length, flags)
        if not shared:
            raise err(errno.EINVAL)
        prot &= RWX
        with self.lock:
            addr, removed = self._claim(addr, length, flags)
            try:
                runs = backing.runs(pgoff, length, hold=True)
            except SyscallError:
                self._undo_claim(removed)
                if backing.refs == 0:
                    backing.last_unmapped(self._free_range)
                raise
            if prot & PROT_WRITE:
                backing.writable = True
            pieces, pos = [], addr
            vmflags = 0 if maywrite else VM_NOMAYWRITE
            for off, n in runs:
                pieces.append(Vma(pos, pos + n, prot, True, off, name, backing, vmflags))
                pos += n
            self._place(pieces)
            if hasattr(backing.source, "size"):
                self._guard_past_eof(addr, length, backing.source, pgoff, prot)
                backing.mapped_by(self)
            return addr

    def guard_copy(self, addr: int, length: int, source: object, pgoff: int,
                   fill: Callable[[int, int], bytes], size: int) -> None:
        """A private copy of a file mapped at ``addr``, whose file ended at
        ``size`` when copied: its pages past the end give SIGBUS
        (sentry/mm/eofguard.py)."""
        with self.lock:
            i = self._find(addr)
            if i >= 0:
                self._guard_past_eof(addr, page_round_up(length), source, pgoff,
                                     self._vmas[i].prot, fill, size)

    def _claim(self, addr: int, length: int, flags: int) -> tuple[int, tuple[int, int] | None]:
        """Where a new mapping goes, with what MAP_FIXED removed to make room."""
        self.check_new_mapping()
        if flags & (MAP_FIXED | MAP_FIXED_NOREPLACE):
            if addr % PAGE_SIZE:
                raise err(errno.EINVAL)
            if addr < APP_START or addr + length > APP_END:
                raise err(errno.ENOMEM)
            if flags & MAP_FIXED_NOREPLACE:
                if not self._is_free(addr, addr + length):
                    raise err(errno.EEXIST)
                return addr, None
            return addr, self._unmap(addr, addr + length, emit=False)
        return self._get_unmapped_area(addr, length, bool(flags & MAP_32BIT)), None

    def _undo_claim(self, removed: tuple[int, int] | None) -> None:
        """A failed MAP_FIXED mapping still unmapped what it replaced (as Linux)."""
        if removed is not None:
            self.pending.append(StubOp(OP_UNMAP, removed[0], removed[1] - removed[0]))

    def msync(self, addr: int, length: int, flags: int) -> None:
        """msync(2): write shared file pages in the range back to their files.

        Pages of Sentry-held files are the file already (nothing to do); a
        Gofer file's cache is written back for MS_SYNC and MS_ASYNC alike (the
        write is synchronous either way).  Holes in the range give ENOMEM after
        the mapped parts are done, as on Linux."""
        if addr % PAGE_SIZE or flags & ~(MS_ASYNC | MS_INVALIDATE | MS_SYNC):
            raise err(errno.EINVAL)
        if flags & MS_ASYNC and flags & MS_SYNC:
            raise err(errno.EINVAL)
        if length < 0:  # a size_t past the end of the address space
            raise err(errno.ENOMEM)
        end = addr + page_round_up(length)
        todo = []
        with self.lock:
            hole = length > 0 and not self._is_mapped(addr, end)
            spans = self._overlapping(addr, end)
            if flags & MS_INVALIDATE and any(v.vmflags & VM_LOCKED for v, _, _ in spans):
                raise err(errno.EBUSY)  # locked pages cannot be invalidated
            for v, lo, hi in spans:
                b = v.backing
                if b is not None and v.shared and v.prot & PROT_WRITE:
                    b.written_through()
                if isinstance(b, WritebackBacking):
                    pos = b.file_offset(v.offset + lo - v.start)
                    todo.append((b, pos, pos + hi - lo))
        for b, lo, hi in todo:
            b.sync(lo, hi)
        if hole:
            raise err(errno.ENOMEM)

    def mincore(self, addr: int, length: int) -> bytes:
        """mincore(2): one byte per page, 1 where the page holds data in the
        memory file (touched anonymous memory, a file's stored pages; an
        untouched page is 0, as Linux reports one never faulted in)."""
        if addr % PAGE_SIZE:
            raise err(errno.EINVAL)
        end = addr + page_round_up(length)
        if end > APP_END or end < addr:
            raise err(errno.ENOMEM)
        if end == addr:
            return b""
        out = bytearray((end - addr) // PAGE_SIZE)
        with self.lock:
            if not self._is_mapped(addr, end):
                raise err(errno.ENOMEM)
            for v, lo, hi in self._overlapping(addr, end):
                fd, local = self.mf.fd_at(v.offset)
                off = local + lo - v.start
                stop = off + hi - lo
                pos = off
                while pos < stop:
                    try:
                        data = os.lseek(fd, pos, os.SEEK_DATA)
                    except OSError:
                        break  # ENXIO: no data after pos
                    if data >= stop:
                        break
                    hole = min(os.lseek(fd, data, os.SEEK_HOLE), stop)
                    first = (lo + data - off - addr) // PAGE_SIZE
                    last = (lo + page_round_up(hole) - off - addr) // PAGE_SIZE
                    out[first:last] = b"\1" * (last - first)
                    pos = hole
        return bytes(out)

    def check_mapped(self, addr: int, length: int) -> None:
        """ENOMEM unless every page of [addr, addr+length) is mapped (mlock's
        and munlock's check: addr need not be aligned)."""
        end = page_round_up(addr + length)
        addr -= addr % PAGE_SIZE
        if end > APP_END or end < addr:
            raise err(errno.ENOMEM)
        with self.lock:
            if end > addr and not self._is_mapped(addr, end):
                raise err(errno.ENOMEM)

    def munmap(self, addr: int, length: int) -> None:
        """munmap(2): holes in the range are fine."""
        if addr % PAGE_SIZE or length <= 0:
            raise err(errno.EINVAL)
        end = addr + page_round_up(length)
        if end > APP_END:
            raise err(errno.EINVAL)
        with self.lock:
            self.check_split(max(addr, APP_START), end)
            self._unmap(max(addr, APP_START), end, emit=True)

    def mprotect(self, addr: int, length: int, prot: int) -> None:
        """mprotect(2); all-or-nothing (Linux may change a prefix before ENOMEM)."""
        if addr % PAGE_SIZE:
            raise err(errno.EINVAL)
        if length == 0:
            return
        if length < 0:
            raise err(errno.ENOMEM)
        growsdown = prot & PROT_GROWSDOWN
        if prot & PROT_GROWSUP or prot & ~(RWX | PROT_SEM | PROT_GROWSDOWN):
            raise err(errno.EINVAL)
        prot &= RWX
        end = addr + page_round_up(length)
        with self.lock:
            if growsdown:
                # Our stack is a plain VMA: PROT_GROWSDOWN means "down to its start".
                i = self._find(addr)
                if i < 0:
                    raise err(errno.ENOMEM)
                addr = self._vmas[i].start
            if end > APP_END or not self._is_mapped(addr, end):
                raise err(errno.ENOMEM)
            if prot & PROT_WRITE:
                if any(v.vmflags & VM_NOMAYWRITE for v, _, _ in self._overlapping(addr, end)):
                    raise err(errno.EACCES)
                self._unshare(addr, end)  # memory shared since a fork gets its own copy
            i, j = self._isolate(addr, end)
            for v in self._vmas[i:j]:
                v.prot = prot
                if prot & PROT_WRITE and isinstance(v.backing, FileBacking):
                    v.backing.writable = True  # its file needs writing back now
            self._merge_range(i, j)
            self.pending.append(StubOp(OP_PROTECT, addr, end - addr, prot))
            self._reguard(addr, end, prot)

    # -- madvise ------------------------------------------------------------

    def madvise(self, addr: int, length: int, advice: int) -> None:
        """madvise(2). Advice applies to the mapped parts, then holes give ENOMEM."""
        fork_flags = _FORK_ADVICE
        zeroing = advice in (MADV_DONTNEED, MADV_DONTNEED_LOCKED, MADV_FREE, MADV_REMOVE)
        if not (zeroing or advice in fork_flags or advice in _MADV_NOOP):
            raise err(errno.EINVAL)
        if addr % PAGE_SIZE or length < 0:
            raise err(errno.EINVAL)
        if length == 0:
            return
        end = addr + page_round_up(length)
        if end > APP_END:
            raise err(errno.ENOMEM)
        with self.lock:
            hole = not self._is_mapped(addr, end)
            if zeroing:
                spans = self._overlapping(addr, end)
                if advice != MADV_DONTNEED_LOCKED and any(
                    v.vmflags & VM_LOCKED for v, _, _ in spans
                ):
                    raise err(errno.EINVAL)  # locked pages stay
                self._unshare(addr, end)
                for v, lo, hi in self._overlapping(addr, end):
                    if advice == MADV_REMOVE:
                        if not v.shared:
                            raise err(errno.EINVAL)
                        if not v.prot & PROT_WRITE:
                            raise err(errno.EACCES)
                    elif advice == MADV_FREE and v.shared:
                        raise err(errno.EINVAL)
                    elif v.shared:
                        continue  # DONTNEED on shared memory drops PTEs, keeps data
                    self.mf.zero(v.offset + lo - v.start, hi - lo)
            elif advice in fork_flags:
                bit, on = fork_flags[advice]
                if advice == MADV_WIPEONFORK and any(
                    v.shared or v.vmflags & VM_FILECOPY
                    for v, _, _ in self._overlapping(addr, end)
                ):  # private anonymous memory only
                    raise err(errno.EINVAL)
                i, j = self._isolate(addr, end)
                for w in self._vmas[i:j]:
                    w.vmflags = (w.vmflags | bit) if on else (w.vmflags & ~bit)
                self._merge_range(i, j)
            if hole:
                raise err(errno.ENOMEM)

    # -- whole address space ------------------------------------------------

    def vmas(self) -> list[VmaInfo]:
        """A snapshot of the VMA table, sorted by address."""
        with self.lock:
            return [
                VmaInfo(
                    v.start,
                    v.end,
                    v.prot,
                    MAP_SHARED if v.shared else MAP_PRIVATE,
                    v.offset,
                    v.name,
                )
                for v in self._vmas
            ]

    def attachments(self, backing: Backing, offset: int) -> list[int]:
        """Where mappings of ``backing`` that begin at its memory-file
        ``offset`` start: one per System V shmat (sentry/kernel/ipc/shm.py
        counts shm_nattch this way, rather than by open/close hooks)."""
        with self.lock:
            return [v.start for v in self._vmas if v.backing is backing and v.offset == offset]

    def share_readonly(self, start: int, end: int) -> list[tuple[int, int, int, Backing]]:
        """Every private, unwritable VMA in [start, end) as ``(start, length, prot,
        backing)``, each given a Backing in a sealed file of its own (its pages
        moved there, so other processes' stubs may map them, read-only) and
        one more reference on it for the caller (sentry/mm/image_cache.py keeps
        a program's text this way, right after loading it: no stub maps this
        address space's pages yet, so they move without a second copy)."""
        out = []
        with self.lock:
            for v, _lo, _hi in self._overlapping(start, end):
                if v.shared or v.prot & PROT_WRITE or v.start < start or v.end > end:
                    continue
                if v.backing is None:
                    # Shared pages are a file of their own, sealed read-only
                    # (memfile.py): move them there once; this process's stub
                    # maps the new home.
                    offset = self.mf.allocate_object(v.length, sealable=True)
                    self.mf.move(v.offset, offset, v.length)  # loaded, not yet mapped
                    self.mf.seal(offset)
                    self._free_range(v.offset, v.length)
                    v.offset = offset
                    v.backing = Backing(offset, v.length)
                    self.pending.append(StubOp(OP_MAP, v.start, v.length, v.prot, offset))
                elif v.offset != v.backing.offset or v.length != v.backing.length:
                    continue  # a window of a bigger backing: not ours to hand out
                v.backing.hold()
                out.append((v.start, v.length, v.prot, v.backing))
        return out

    def map_backing(self, addr: int, prot: int, backing: Backing, name: str) -> None:
        """MAP_FIXED a private VMA over all of ``backing`` (taking a reference):
        shared pages that whatever would change them copies first (``_unshare``)."""
        end = addr + backing.length
        with self.lock:
            self._unmap(addr, end, emit=True)
            i = bisect.bisect_left(self._starts, addr)
            backing.hold()
            self._insert(i, [Vma(addr, end, prot & RWX, False, backing.offset, name, backing)])
            self.pending.append(StubOp(OP_MAP, addr, backing.length, prot & RWX, backing.offset))

    def fork(self) -> AddressSpace:
        """A child address space: private memory copied, shared memory shared.

        The child's writable private memory is a copy in its own arena
        (copy_file_range from the parent's arena's file, data extents only).
        Private memory that is not writable (program text and read-only
        data) is shared instead: sharing it in place would give the child's
        stub the parent's arena, every page the parent writes after the fork
        with it (docs/security.md), so the first fork moves it into a sealed
        shared object (``_seal_away``: one copy per image, not per fork; the
        image cache's text is one already).  Nobody can write such pages in
        place (no stub can map the file writable; copy_out needs PROT_WRITE)
        and whatever could change them copies them first
        (VmaTable._unshare), so fork+exit+wait copies no text.

        The child's ``pending`` maps every VMA; its stub starts with nothing mapped
        in the application range.
        """
        mf = self.mf
        child = AddressSpace(mf)
        with self.lock:
            child.brk_start, child.current_brk = self.brk_start, self.current_brk
            child.saved_auxv = self.saved_auxv
            if self.patch_state is not None:  # its patched text and table are copied too
                child.patch_state = self.patch_state.fork()
            try:
                for v in self._vmas:
                    if v.vmflags & VM_DONTFORK:
                        continue
                    if (v.backing is None and not v.prot & PROT_WRITE
                            and not v.vmflags & VM_WIPEONFORK):
                        self._seal_away(v)  # shared from now on, read-only for stubs
                    c = v.clone()
                    c.vmflags &= ~VM_LOCKED  # fork does not inherit mlock
                    if v.backing is not None:
                        v.backing.hold()
                    else:
                        c.offset = child.arena.allocate(v.length)
                        if not v.vmflags & VM_WIPEONFORK:
                            mf.copy(v.offset, c.offset, v.length)
                    child._vmas.append(c)
                    child._starts.append(c.start)
                    child.pending.append(StubOp(OP_MAP, c.start, c.length, c.prot, c.offset))
                self._fork_guards(child)
            except SyscallError:
                child.release()
                raise
        return child

    def _seal_away(self, v: Vma) -> None:
        """Move a private, unwritable VMA's pages into a sealed shared object
        (copied once; the old range freed once this process's stub has mapped
        the new one, ``defer_frees``) so fork can share them: no stub can map
        that file writable, and whichever process would change the pages gets
        its own copy first (VmaTable._unshare)."""
        offset = self.mf.allocate_object(v.length, sealable=True)
        self.mf.copy(v.offset, offset, v.length)
        self.mf.seal(offset)
        self._free_range(v.offset, v.length)
        v.offset = offset
        v.backing = Backing(offset, v.length)
        self.pending.append(StubOp(OP_MAP, v.start, v.length, v.prot, offset))

    def release(self) -> None:
        """Unmap everything (exit, execve): free backings, one big OP_UNMAP."""
        with self.lock:
            vmas, self._vmas, self._starts = self._vmas, [], []
            for v in vmas:
                self._release(v)
            self.pending = [StubOp(OP_UNMAP, APP_START, APP_END - APP_START)]
            held, self._arena_held = self._arena_held, False
        if held:
            self.arena.drop()
