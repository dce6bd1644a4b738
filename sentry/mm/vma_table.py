"""The VMA table and user-memory access that every AddressSpace operation builds on.

This module owns the data structure (a sorted list of VMAs plus a parallel list of
their starts for bisect), the host ops it emits, and the copy routines; the syscall
semantics (mmap, munmap, mremap, brk, ...) live in address_space.py.

StubOp semantics, which the platform implements:

* OP_MAP: ``mmap(addr, length, prot, MAP_SHARED|MAP_FIXED, memfd, offset)``. A
  fixed shared mapping replaces whatever was there, so replacing a mapping needs
  no OP_UNMAP first.
* OP_UNMAP: ``munmap(addr, length)``; the range may contain holes.
* OP_PROTECT: ``mprotect(addr, length, prot)`` over a fully mapped range.

Facts that shaped this module:

* Freed memfd ranges are hole-punched, so a range handed out again reads zeros.
  Because the memfd is shared by every address space, a freed range may be given
  to another process before this stub has applied its OP_UNMAP; while other
  threads of this address space may still be running application code, set
  ``defer_frees`` and call ``commit_frees()`` after the stub applied the ops.
* Linux merges adjacent compatible anonymous VMAs; we merge when the memfd
  ranges are contiguous too, and try to make them contiguous (``_map_new``
  reserves the memfd range next to its neighbour's) so brk growth keeps one
  "[heap]" VMA most of the time.
* x86 cannot express write-only or exec-only pages: anything mapped with any of
  R/W/X is readable, as gVisor's "effective permissions" model it.

* A shared VMA of a file maps the file's own pages (filemap.FileBacking); the
  file, not the VMA, owns them, so releasing the last such VMA frees nothing
  (``Backing.last_unmapped``), except a Gofer file's cache, which is written
  back then.  A released backing is kept alive until ``commit_frees`` when frees
  are deferred, so its pages outlive the stub's view of them.

Lock order: ``lock`` (an RLock, so a caller may hold it across several calls,
e.g. a futex compare-and-swap) before a file's locks, FileBacking.lock and
``MemoryFile.lock``; the backing reference-count lock (vma.py) is a leaf.
Methods whose names start with an underscore expect the lock to be held.
"""

from __future__ import annotations

import bisect
import errno
import struct
import threading
from collections.abc import Callable
from typing import Any, NamedTuple

from sentry.kernel.errors import SyscallError
from sentry.mm.arena import Arena
from sentry.mm.layout import (
    APP_END,
    APP_START,
    MAP_32BIT_BASE,
    MAP_32BIT_END,
    MMAP_BASE,
    page_round_down,
    page_round_up,
)
from sentry.mm.memfile import MemoryFile
from sentry.mm.vma import PROT_EXEC, PROT_READ, PROT_WRITE, Backing, Vma

OP_MAP = 1
OP_UNMAP = 2
OP_PROTECT = 3

RWX = PROT_READ | PROT_WRITE | PROT_EXEC
READABLE = RWX  # see "effective permissions" above
_ZERO_PUNCH_MIN = 64 << 10  # zero_out punches holes for ranges at least this big


class StubOp(NamedTuple):
    """One host operation the stub must perform on its view of the memfd."""

    kind: int  # OP_MAP, OP_UNMAP or OP_PROTECT
    addr: int
    length: int
    prot: int = 0
    offset: int = 0  # memfd offset, OP_MAP only


def err(code: int) -> SyscallError:
    return SyscallError(code)


def _host_map_limit() -> int:
    """The host's vm.max_map_count less what a stub process maps besides the
    application's VMAs (its region, with room to spare): each VMA is a host
    mapping in the stub, and a stub the host refuses a mapping dies.  Read
    at import, before the Sentry is confined."""
    try:
        with open("/proc/sys/vm/max_map_count") as f:
            return int(f.read()) - STUB_MAPPINGS_RESERVE
    except (OSError, ValueError):
        return 65530 - STUB_MAPPINGS_RESERVE


STUB_MAPPINGS_RESERVE = 64


class _Limits:
    """vm.max_map_count (sentry/kernel/sysctl.py sets it): the most VMAs an
    address space may have; a mapping or split beyond it is ENOMEM, with
    Linux's bounds (do_mmap refuses once the count is above the limit; a
    split needs the count below it).  What is enforced is never above what
    the host lets a stub process map (``host``)."""

    max_map_count = 65530
    host = _host_map_limit()

    def effective(self) -> int:
        return min(self.max_map_count, self.host)


limits = _Limits()


class VmaTable:
    """The VMAs of one address space, the pending stub ops, and user-memory copies."""

    patch_state: Any = None  # sentry/systrap/patch.py's PatchState, once a syscall trapped

    def __init__(self, mf: MemoryFile, arena: Arena | None = None) -> None:
        self.mf = mf
        # Private memory comes from this address space's own arena: no other
        # process's stub holds its descriptor (sentry/mm/arena.py).
        self.arena = arena if arena is not None else mf.new_arena()
        self.arena.hold()
        self._arena_held = True
        self.lock = threading.RLock()
        self.pending: list[StubOp] = []
        # The program break: the heap is [brk_start, page_round_up(current_brk)).
        # (The value is not called "brk": that name is the brk(2) method.)
        self.brk_start = 0
        self.current_brk = 0
        self.defer_frees = False
        self._deferred: list[tuple[int, int]] = []
        self._keep: list[Backing] = []  # released backings kept alive until commit_frees
        self._vmas: list[Vma] = []
        self._starts: list[int] = []  # _vmas[i].start, kept in step for bisect
        self._view = mf.view

    # -- platform interface -------------------------------------------------

    def take_pending(self) -> list[StubOp]:
        """Return and clear the ops the stub must apply before the app runs again."""
        with self.lock:
            ops, self.pending = self.pending, []
            return ops

    def commit_frees(self) -> None:
        """Free memfd ranges held back by ``defer_frees`` (after the stub unmapped them)."""
        with self.lock:
            deferred, self._deferred = self._deferred, []
            self._keep = []
            self.mf.free_many(deferred)

    def futex_key(self, addr: int) -> tuple[int, int]:
        """The futex key of the word at ``addr``: ``(0, memory-file offset)`` in a
        shared mapping, the same in every process and mapping of that page (Linux
        keys those by inode or shmem object and page), else ``(id(self), addr)``
        (Linux's mm-private key).  EFAULT if ``addr`` is unmapped."""
        with self.lock:
            i = self._find(addr)
            if i < 0:
                raise err(errno.EFAULT)
            v = self._vmas[i]
            if v.shared:
                off = v.offset + addr - v.start
                b: Any = v.backing
                size = getattr(getattr(b, "source", None), "size", None)
                if size is not None and hasattr(b, "file_offset") \
                        and b.file_offset(off) >= page_round_up(int(size)):
                    raise err(errno.EFAULT)  # past its file's end: no page to key
                return (0, off)
            return (id(self), addr)

    # -- user memory access ---------------------------------------------------

    def copy_in(self, addr: int, length: int) -> bytes:
        """Read application memory; EFAULT if any byte is unmapped or unreadable."""
        if length <= 0:
            if length == 0:
                return b""
            raise err(errno.EFAULT)
        view = self._view
        with self.lock:
            i = bisect.bisect_right(self._starts, addr) - 1
            if i >= 0:
                v = self._vmas[i]
                if addr + length <= v.end and v.prot & READABLE:
                    off = v.offset + addr - v.start
                    return bytes(view[off : off + length])
            parts = self._translate(addr, length, READABLE)
            return b"".join([bytes(view[o : o + n]) for o, n in parts])

    def copy_in_force(self, addr: int, length: int) -> bytes:
        """Read application memory ignoring protection (a checkpoint saves
        PROT_NONE and write-only pages too); EFAULT on a gap."""
        if length <= 0:
            return b""
        view = self._view
        with self.lock:
            return b"".join([bytes(view[o : o + n]) for o, n in self._translate(addr, length, 0)])

    def copy_out(self, addr: int, data: bytes | bytearray | memoryview) -> None:
        """Write application memory; EFAULT if any byte is unmapped or read-only."""
        self._write(addr, data, PROT_WRITE)

    def fill_out(self, addr: int, length: int, fill: Callable[[list[memoryview]], int]) -> int:
        """Let ``fill`` write application memory [addr, addr+length) in place
        (os.preadv of a donated host descriptor, sentry/vfs/gofer_hostfd.py:
        one copy, no bytes object in between); EFAULT, with nothing written,
        unless all of it is mapped writable.  Returns what ``fill`` returns."""
        view = self._view
        with self.lock:
            pieces = self._translate(addr, length, PROT_WRITE)
            return fill([view[o : o + n] for o, n in pieces])

    def copy_out_force(self, addr: int, data: bytes | bytearray | memoryview) -> None:
        """Write application memory ignoring protection (loader, ptrace-like pokes)."""
        with self.lock:
            self._unshare(addr, addr + max(1, len(memoryview(data).cast("B"))))
        self._write(addr, data, 0)

    def zero_out(self, addr: int, length: int) -> None:
        """Zero application memory (needs PROT_WRITE); big ranges are hole-punched."""
        if length <= 0:
            if length == 0:
                return
            raise err(errno.EFAULT)
        view = self._view
        with self.lock:
            for off, n in self._translate(addr, length, PROT_WRITE):
                lo, hi = page_round_up(off), page_round_down(off + n)
                if n >= _ZERO_PUNCH_MIN and hi > lo:
                    view[off:lo] = bytes(lo - off)
                    self.mf.zero(lo, hi - lo)
                    view[hi : off + n] = bytes(off + n - hi)
                else:
                    view[off : off + n] = bytes(n)

    def read_cstring(self, addr: int, limit: int) -> bytes:
        """Read a NUL-terminated string (without the NUL) of fewer than ``limit`` bytes.

        ENAMETOOLONG if no NUL is found in the first ``limit`` bytes; EFAULT if the
        scan reaches an unmapped or unreadable byte first.
        """
        buf, view = self.mf.buf, self._view
        out: list[bytes] = []
        pos, remaining = addr, limit
        with self.lock:
            while remaining > 0:
                i = self._find(pos)
                if i < 0 or not self._vmas[i].prot & READABLE:
                    raise err(errno.EFAULT)
                v = self._vmas[i]
                n = min(remaining, v.end - pos)
                off = v.offset + pos - v.start
                k = buf.find(b"\0", off, off + n)
                if k >= 0:
                    out.append(bytes(view[off:k]))
                    return b"".join(out)
                out.append(bytes(view[off : off + n]))
                pos += n
                remaining -= n
        raise err(errno.ENAMETOOLONG)

    def read_cstring_array(self, addr: int, limit: int, max_count: int) -> list[bytes]:
        """A NULL-terminated array of string pointers (execve's argv and envp):
        each string as read_cstring reads it; E2BIG past ``max_count`` strings.

        One pass under the lock, pointers read a VMA's worth at a time: a
        program's environment is ~40 strings, and a copy_in and a read_cstring
        call per string were ~100 us of every execve."""
        out: list[bytes] = []
        if not addr:
            return out
        buf, view = self.mf.buf, self._view
        pos = addr
        with self.lock:
            while True:
                i = self._find(pos)
                if i < 0 or not self._vmas[i].prot & READABLE:
                    raise err(errno.EFAULT)
                v = self._vmas[i]
                count = min((v.end - pos) // 8, 512)
                if count == 0:  # a pointer straddling two VMAs
                    ptrs: tuple[int, ...] = struct.unpack("<Q", self.copy_in(pos, 8))
                else:
                    off = v.offset + pos - v.start
                    ptrs = struct.unpack_from(f"<{count}Q", view, off)
                for ptr in ptrs:
                    if not ptr:
                        return out
                    j = self._find(ptr)
                    w = self._vmas[j] if j >= 0 else None
                    k = -1
                    if w is not None and w.prot & READABLE:  # the string within one VMA
                        soff = w.offset + ptr - w.start
                        k = buf.find(b"\0", soff, soff + min(limit, w.end - ptr))
                    if k >= 0:
                        out.append(bytes(view[soff:k]))
                    else:  # crossing VMAs, unreadable, or too long: the careful way
                        out.append(self.read_cstring(ptr, limit))
                    if len(out) > max_count:
                        raise err(errno.E2BIG)
                pos += 8 * len(ptrs)

    # -- internals: table maintenance (lock held) -----------------------------

    def _find(self, addr: int) -> int:
        """Index of the VMA containing addr, or -1."""
        i = bisect.bisect_right(self._starts, addr) - 1
        if i >= 0 and addr < self._vmas[i].end:
            return i
        return -1

    def _is_free(self, start: int, end: int) -> bool:
        """Whether no VMA intersects [start, end)."""
        i = bisect.bisect_left(self._starts, end) - 1
        return i < 0 or self._vmas[i].end <= start

    def _is_mapped(self, start: int, end: int) -> bool:
        """Whether every page of [start, end) is in some VMA."""
        i = self._find(start)
        if i < 0:
            return False
        vmas = self._vmas
        while vmas[i].end < end:
            i += 1
            if i == len(vmas) or vmas[i].start != vmas[i - 1].end:
                return False
        return True

    def _overlapping(self, start: int, end: int) -> list[tuple[Vma, int, int]]:
        """(vma, lo, hi) for each VMA intersecting [start, end), clipped to it."""
        i = max(bisect.bisect_right(self._starts, start) - 1, 0)
        out = []
        for v in self._vmas[i:]:
            if v.start >= end:
                break
            if v.end > start:
                out.append((v, max(v.start, start), min(v.end, end)))
        return out

    def _translate(self, addr: int, length: int, need: int) -> list[tuple[int, int]]:
        """memfd (offset, length) pieces for [addr, addr+length); EFAULT on a gap.

        ``need`` is a mask of which some bit must be in each VMA's prot (0: any).
        """
        i = self._find(addr)
        if i < 0:
            raise err(errno.EFAULT)
        vmas = self._vmas
        out = []
        pos, end = addr, addr + length
        while True:
            v = vmas[i]
            if need and not v.prot & need:
                raise err(errno.EFAULT)
            n = min(end, v.end) - pos
            out.append((v.offset + pos - v.start, n))
            pos += n
            if pos >= end:
                return out
            i += 1
            if i == len(vmas) or vmas[i].start != pos:
                raise err(errno.EFAULT)

    def _write(self, addr: int, data: bytes | bytearray | memoryview, need: int) -> None:
        src = memoryview(data).cast("B")
        length = src.nbytes
        if length == 0:
            return
        view = self._view
        with self.lock:
            i = bisect.bisect_right(self._starts, addr) - 1
            if i >= 0:
                v = self._vmas[i]
                if addr + length <= v.end and (not need or v.prot & need):
                    off = v.offset + addr - v.start
                    view[off : off + length] = src
                    return
            pos = 0
            for off, n in self._translate(addr, length, need):
                view[off : off + n] = src[pos : pos + n]
                pos += n

    def _insert(self, i: int, vmas: list[Vma]) -> None:
        self._vmas[i:i] = vmas
        self._starts[i:i] = [v.start for v in vmas]

    def _delete(self, i: int, j: int) -> list[Vma]:
        removed = self._vmas[i:j]
        del self._vmas[i:j]
        del self._starts[i:j]
        return removed

    def check_new_mapping(self) -> None:
        """ENOMEM when the address space has more mappings than vm.max_map_count."""
        if len(self._vmas) > limits.effective():
            raise err(errno.ENOMEM)

    def check_split(self, start: int, end: int) -> None:
        """ENOMEM when removing [start, end) would split one mapping in two
        while the count is at vm.max_map_count (munmap, as Linux)."""
        i = self._find(start)
        if i >= 0 and self._vmas[i].start < start and end < self._vmas[i].end \
                and len(self._vmas) >= limits.effective():
            raise err(errno.ENOMEM)

    def _split_at(self, addr: int) -> None:
        """Make addr a VMA boundary if some VMA strictly contains it."""
        i = self._find(addr)
        if i < 0 or self._vmas[i].start == addr:
            return
        v = self._vmas[i]
        right = v.clone()
        right.start = addr
        right.offset = v.offset + (addr - v.start)
        v.end = addr
        if v.backing is not None:
            v.backing.hold()
        self._insert(i + 1, [right])

    def _isolate(self, start: int, end: int) -> tuple[int, int]:
        """Split so VMAs [i, j) cover exactly the mapped parts of [start, end)."""
        if self.patch_state is not None:  # an op over the syscall-patch table
            self.patch_state.guard(self, start, end)  # (sentry/systrap/patch.py)
        self._split_at(start)
        self._split_at(end)
        return bisect.bisect_left(self._starts, start), bisect.bisect_left(self._starts, end)

    def _merge_range(self, i: int, j: int) -> None:
        """Merge compatible neighbours at the boundaries of and inside [i, j)."""
        vmas = self._vmas
        for k in range(min(j, len(vmas) - 1), max(i, 1) - 1, -1):
            a, b = vmas[k - 1], vmas[k]
            if a.can_merge(b):
                a.end = b.end
                if b.backing is not None:
                    b.backing.drop()  # a is the same backing: never the last
                self._delete(k, k + 1)

    def _free_range(self, offset: int, length: int) -> None:
        if self.defer_frees:
            self._deferred.append((offset, length))
        else:
            self.mf.free(offset, length)

    def _unshare(self, start: int, end: int) -> None:
        """Give each private VMA overlapping [start, end) that still shares its
        memory with another address space its own copy, and remap it.

        Private memory that is not writable may share a Backing, a sealed
        file of its own, with other address spaces (the image cache's program
        text, share_readonly), shared at fork like shared memory: nothing
        ever changes it in place.  Whatever could change it calls this first,
        and the copy goes into this address space's own arena: mprotect adding
        PROT_WRITE, a zeroing madvise, mremap, and forced writes
        (copy_out_force).  The copy is a whole VMA, whatever the share count:
        a VMA may cover only part of its backing, which is freed as one range
        when its last user lets go.
        """
        if self.patch_state is not None:  # madvise or mremap over the patch table
            self.patch_state.guard(self, start, end)
        for v, _lo, _hi in self._overlapping(start, end):
            if v.backing is None or v.shared:
                continue
            offset = self.arena.allocate(v.length)
            self.mf.copy(v.offset, offset, v.length)
            self._release(v)
            v.backing, v.offset = None, offset
            self.pending.append(StubOp(OP_MAP, v.start, v.length, v.prot, offset))

    def _release(self, v: Vma) -> None:
        """Drop v's claim on its memory: private ranges are freed now, backings at 0 refs."""
        b = v.backing
        if b is None:
            self._free_range(v.offset, v.length)
        else:
            if v.shared and v.prot & PROT_WRITE:
                b.written_through()
            if b.drop():
                if self.defer_frees:
                    self._keep.append(b)  # its pages stay until the stub unmapped them
                b.last_unmapped(self._free_range)

    def _unmap(self, start: int, end: int, *, emit: bool) -> tuple[int, int] | None:
        """Remove [start, end); return the extent of what was removed, if anything."""
        if start >= end:
            return None
        i, j = self._isolate(start, end)
        if i == j:
            return None
        removed = self._delete(i, j)
        for v in removed:
            self._release(v)
        extent = (removed[0].start, removed[-1].end)
        self._drop_guards(*extent)
        if emit:
            self.pending.append(StubOp(OP_UNMAP, extent[0], extent[1] - extent[0]))
        return extent

    def _drop_guards(self, start: int, end: int) -> None:
        """Forget SIGBUS guards in an unmapped range (sentry/mm/eofguard.py)."""

    def _map_new(
        self, start: int, length: int, prot: int, shared: bool, name: str, vmflags: int = 0
    ) -> None:
        """Map fresh zero memory at the free range [start, start+length).

        A private range is placed in the memfd right after its left neighbour's (or
        right before its right neighbour's) when that space is free, so the VMAs
        merge; otherwise anywhere.
        """
        mf = self.mf
        i = bisect.bisect_left(self._starts, start)
        v = Vma(start, start + length, prot, shared, 0, name, None, vmflags)
        if shared:  # a shared object: a file of its own (memfile.allocate_object)
            v.offset = mf.allocate_object(length)
            v.backing = Backing(v.offset, length)
        else:
            placed = False
            if i > 0:
                left = self._vmas[i - 1]
                v.offset = left.offset + left.length
                placed = left.can_merge(v) and self.arena.reserve(v.offset, length)
            if not placed and i < len(self._vmas):
                right = self._vmas[i]
                v.offset = right.offset - length
                placed = v.can_merge(right) and self.arena.reserve(v.offset, length)
            if not placed:
                v.offset = self.arena.allocate(length)
        self._insert(i, [v])
        self.pending.append(StubOp(OP_MAP, start, length, prot, v.offset))
        self._merge_range(i, i + 1)

    def _get_unmapped_area(self, hint: int, length: int, low32: bool) -> int:
        """Pick a free range for a non-fixed mapping, as Linux's x86-64 allocator does."""
        floor, ceil = (MAP_32BIT_BASE, MAP_32BIT_END) if low32 else (APP_START, APP_END)
        if hint:
            hint = max(page_round_down(hint), APP_START)
            if hint >= floor and hint + length <= ceil and self._is_free(hint, hint + length):
                return hint
        if low32:
            addr = self._gap_bottom_up(length, floor, ceil)
        else:
            addr = self._gap_top_down(length, APP_START, MMAP_BASE)
            if addr is None:  # Linux falls back to searching everything
                addr = self._gap_top_down(length, APP_START, APP_END)
        if addr is None:
            raise err(errno.ENOMEM)
        return addr

    def _gap_top_down(self, length: int, floor: int, ceil: int) -> int | None:
        """Highest address a with [a, a+length) free inside [floor, ceil)."""
        vmas = self._vmas
        hi = ceil
        for k in range(bisect.bisect_left(self._starts, ceil) - 1, -2, -1):
            lo = max(vmas[k].end if k >= 0 else floor, floor)
            if hi - lo >= length:
                return hi - length
            if k < 0:
                break
            hi = min(hi, vmas[k].start)
            if hi - floor < length:
                break
        return None

    def _gap_bottom_up(self, length: int, floor: int, ceil: int) -> int | None:
        """Lowest address a with [a, a+length) free inside [floor, ceil)."""
        vmas = self._vmas
        k = bisect.bisect_right(self._starts, floor) - 1
        lo = max(vmas[k].end, floor) if k >= 0 else floor
        for idx in range(k + 1, len(vmas) + 1):
            hi = min(vmas[idx].start, ceil) if idx < len(vmas) else ceil
            if hi - lo >= length:
                return lo
            if idx == len(vmas):
                break
            lo = max(lo, vmas[idx].end)
            if ceil - lo < length:
                break
        return None
