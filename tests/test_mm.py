"""Unit tests for the memory manager (sentry/mm) on a real memfd; no stub needed.

Targeted tests of each syscall's semantics, user memory copies and fork; the
randomized model check is tests/test_mm_model.py.
"""

from __future__ import annotations

import errno
import os

import pytest
from mm_support import BASE, PRIV, RW, SHARED, P, errno_of

from sentry.mm.address_space import OP_MAP, OP_PROTECT, OP_UNMAP, AddressSpace, StubOp
from sentry.mm.layout import APP_END, APP_START, MMAP_BASE
from sentry.mm.memfile import MemoryFile
from sentry.mm.vma import (
    MADV_DONTFORK,
    MADV_DONTNEED,
    MADV_FREE,
    MADV_WILLNEED,
    MADV_WIPEONFORK,
    MAP_32BIT,
    MAP_ANONYMOUS,
    MAP_FIXED,
    MAP_FIXED_NOREPLACE,
    MAP_PRIVATE,
    MREMAP_DONTUNMAP,
    MREMAP_FIXED,
    MREMAP_MAYMOVE,
    PROT_NONE,
    PROT_READ,
    PROT_WRITE,
)


@pytest.fixture
def aspace(mf):
    return AddressSpace(mf)


def has_data(mf: MemoryFile, off: int, length: int) -> bool:
    """Whether any page of the memfd range holds allocated data (not a hole)."""
    try:
        fd, local = mf.fd_at(off)
        return os.lseek(fd, local, os.SEEK_DATA) < local + length
    except OSError as e:
        assert e.errno == errno.ENXIO
        return False


def vma_at(a: AddressSpace, addr: int):
    return next(v for v in a.vmas() if v.start <= addr < v.end)


# -- MemoryFile ---------------------------------------------------------------


def test_memfile_allocate_free_coalesce(mf):
    a = mf.allocate(1)
    b = mf.allocate(2 * P)
    c = mf.allocate(P)
    assert (a, b, c) == (0, P, 3 * P)
    mf.free(a, P)
    mf.free(b, 2 * P)  # coalesces with a
    assert mf.allocate(3 * P) == 0  # first fit takes the coalesced range
    mf.free(c, P)  # the top range gives the bump pointer back
    assert mf.used == 3 * P
    assert mf.allocate(P) == 3 * P
    with pytest.raises(ValueError):
        mf.free(10 * P, P)  # never allocated
    mf.free(0, P)
    with pytest.raises(ValueError):
        mf.free(0, P)  # double free


def test_memfile_free_many_merges_adjacent_ranges(mf):
    a, b, c = (mf.allocate(P) for _ in range(3))
    d = mf.allocate(2 * P)
    mf.view[a : a + 4] = b"data"
    punched = []
    real = mf.common.punch
    mf.common.punch = lambda off, n: (punched.append((off, n)), real(off, n))
    mf.free_many([(c, P), (a, P), (d, 2 * P), (b, P)])
    assert (b, c, d) == (a + P, a + 2 * P, a + 3 * P)  # a fresh file allocates in a row
    assert punched == [(a, 5 * P)], "one hole punched for the run"
    assert mf.used == 0 and bytes(mf.view[a : a + 4]) == bytes(4)
    with pytest.raises(ValueError):
        mf.free_many([(a, P)])


def test_memfile_exhaustion_and_reserve():
    with MemoryFile(16 * P) as f:
        assert f.allocate(16 * P) == 0
        assert errno_of(f.allocate, P) == errno.ENOMEM
        f.free(4 * P, 4 * P)
        assert f.reserve(5 * P, 2 * P)  # claims the middle of a free range
        assert not f.reserve(4 * P, 2 * P)  # half taken
        assert f.allocate(P) == 4 * P
        assert f.allocate(P) == 7 * P
        assert errno_of(f.allocate, P) == errno.ENOMEM


def test_memfile_free_punches_hole_and_zeroes(mf):
    off = mf.allocate(4 * P)
    mf.view[off : off + 4 * P] = b"\x5a" * (4 * P)
    assert has_data(mf, off, 4 * P)
    mf.free(off, 4 * P)
    assert not has_data(mf, off, 4 * P)
    assert mf.allocate(4 * P) == off
    assert bytes(mf.view[off : off + 4 * P]) == bytes(4 * P)


def test_memfile_address_is_the_sentry_mapping(mf):
    import ctypes

    mf.view[123:128] = b"hello"
    assert ctypes.string_at(mf.address + 123, 5) == b"hello"


def test_memfile_copy_stays_sparse(mf):
    size = 8 << 20
    src = mf.allocate(size)
    dst = mf.allocate(size)
    mf.view[src + 5 * P : src + 5 * P + 3] = b"abc"
    mf.view[src + size - 1 : src + size] = b"z"
    # dst is a fresh allocation, all holes, as copy requires
    blocks_before = os.fstat(mf.fd).st_blocks
    mf.copy(src, dst, size)
    # Only the two data pages were materialised (st_blocks is in 512-byte units).
    # Check before reading: a read fault on a shmem hole allocates a page.
    assert os.fstat(mf.fd).st_blocks - blocks_before <= 2 * P // 512
    assert not has_data(mf, dst + 6 * P, size - 8 * P)
    assert bytes(mf.view[dst + 5 * P : dst + 5 * P + 3]) == b"abc"
    assert mf.view[dst + size - 1] == ord("z")


# -- mmap ---------------------------------------------------------------------------


def test_mmap_top_down_hint_and_pending(aspace):
    a1 = aspace.mmap(0, 3 * P, RW, PRIV)
    a2 = aspace.mmap(0, P, RW, PRIV)
    assert a1 == MMAP_BASE - 3 * P
    assert a2 == a1 - P
    hint = aspace.mmap(BASE + 1, P, PROT_READ, PRIV)  # hint rounded down, free
    assert hint == BASE
    again = aspace.mmap(BASE, P, PROT_READ, PRIV)  # taken: falls back to top-down
    assert again == a2 - P
    ops = aspace.take_pending()
    assert [op.kind for op in ops] == [OP_MAP] * 4
    assert ops[0] == StubOp(OP_MAP, a1, 3 * P, RW, vma_at(aspace, a1).offset)
    assert aspace.pending == []


def test_mmap_argument_errors(aspace):
    assert errno_of(aspace.mmap, 0, P, RW, MAP_ANONYMOUS) == errno.EINVAL  # no type
    assert errno_of(aspace.mmap, 0, 0, RW, PRIV) == errno.EINVAL
    assert errno_of(aspace.mmap, BASE + 1, P, RW, PRIV | MAP_FIXED) == errno.EINVAL
    assert errno_of(aspace.mmap, APP_END - P, 2 * P, RW, PRIV | MAP_FIXED) == errno.ENOMEM
    assert errno_of(aspace.mmap, 0, P, RW, PRIV | MAP_FIXED) == errno.ENOMEM
    assert errno_of(aspace.mmap, 0, 1 << 50, RW, PRIV) == errno.ENOMEM
    validate = 0x03 | MAP_ANONYMOUS  # MAP_SHARED_VALIDATE rejects unknown flags
    assert errno_of(aspace.mmap, 0, P, RW, validate | 1 << 30) == errno.EOPNOTSUPP
    assert errno_of(aspace.mmap, 0, P, RW, MAP_PRIVATE) == errno.ENODEV  # files: later


def test_mmap_fixed_replaces_and_frees(aspace, mf):
    aspace.mmap(BASE, 4 * P, RW, PRIV | MAP_FIXED)
    aspace.copy_out(BASE, b"x" * (4 * P))
    old = vma_at(aspace, BASE).offset
    aspace.take_pending()
    aspace.mmap(BASE + P, P, PROT_READ, PRIV | MAP_FIXED)
    # The replaced page was punched (checked before any read faults a page in).
    assert not has_data(mf, old + P, P)
    assert aspace.copy_in(BASE + P, 4) == bytes(4)
    assert aspace.copy_in(BASE, 1) == b"x" and aspace.copy_in(BASE + 2 * P, 1) == b"x"
    assert [(v.start, v.end, v.prot) for v in aspace.vmas()] == [
        (BASE, BASE + P, RW),
        (BASE + P, BASE + 2 * P, PROT_READ),
        (BASE + 2 * P, BASE + 4 * P, RW),
    ]
    (op,) = aspace.take_pending()  # MAP_FIXED over the old mapping needs no unmap
    assert op.kind == OP_MAP and op.addr == BASE + P
    assert errno_of(aspace.mmap, BASE + 3 * P, 2 * P, RW, PRIV | MAP_FIXED_NOREPLACE) == (
        errno.EEXIST
    )
    assert aspace.mmap(BASE + 4 * P, P, RW, PRIV | MAP_FIXED_NOREPLACE) == BASE + 4 * P


def test_mmap_32bit_and_exhaustion(aspace):
    low = aspace.mmap(0, P, RW, PRIV | MAP_32BIT)
    assert 1 << 30 <= low and low + P <= 1 << 31
    assert aspace.mmap(0, P, RW, PRIV | MAP_32BIT) == low + P  # bottom-up, like Linux
    # More than the memory file holds: ENOMEM, and nothing is left behind.
    assert errno_of(aspace.mmap, 0, 1 << 33, RW, PRIV) == errno.ENOMEM
    assert len(aspace.vmas()) == 1


def test_mmap_top_down_skips_full_gaps(aspace):
    top = MMAP_BASE
    aspace.mmap(top - 2 * P, 2 * P, RW, PRIV | MAP_FIXED)
    aspace.mmap(top - 5 * P, 2 * P, RW, PRIV | MAP_FIXED)  # leaves a 1-page gap
    assert aspace.mmap(0, 2 * P, RW, PRIV) == top - 7 * P
    assert aspace.mmap(0, P, RW, PRIV) == top - 3 * P


def test_mmap_adjacent_private_mappings_merge(aspace):
    aspace.mmap(BASE, P, RW, PRIV | MAP_FIXED)
    aspace.mmap(BASE + P, P, RW, PRIV | MAP_FIXED)
    aspace.mmap(BASE + 2 * P, P, RW, PRIV | MAP_FIXED, name="other")  # names differ
    assert [(v.start, v.end) for v in aspace.vmas()] == [
        (BASE, BASE + 2 * P),
        (BASE + 2 * P, BASE + 3 * P),
    ]


# -- munmap ------------------------------------------------------------------------


def test_munmap_splits_and_frees(aspace, mf):
    aspace.mmap(BASE, 5 * P, RW, PRIV | MAP_FIXED)
    for i in range(5):
        aspace.copy_out(BASE + i * P, bytes([i + 1]) * P)
    off = vma_at(aspace, BASE).offset
    aspace.take_pending()
    aspace.munmap(BASE + P, 2 * P)
    assert aspace.take_pending() == [StubOp(OP_UNMAP, BASE + P, 2 * P)]
    left, right = aspace.vmas()
    assert (left.start, left.end, left.offset) == (BASE, BASE + P, off)
    assert (right.start, right.end, right.offset) == (BASE + 3 * P, BASE + 5 * P, off + 3 * P)
    assert aspace.copy_in(BASE + 3 * P, 1) == b"\x04"
    assert aspace.copy_in(BASE + 4 * P, 1) == b"\x05"
    assert not has_data(mf, off + P, 2 * P)
    assert has_data(mf, off + 3 * P, P)
    assert errno_of(aspace.copy_in, BASE + P, 1) == errno.EFAULT
    aspace.munmap(BASE, 10 * P)  # holes are fine
    assert aspace.vmas() == [] and mf.used == 0
    aspace.munmap(BASE, P)  # nothing there: no op
    assert aspace.take_pending() == [StubOp(OP_UNMAP, BASE, 5 * P)]


def test_munmap_errors(aspace):
    assert errno_of(aspace.munmap, BASE + 1, P) == errno.EINVAL
    assert errno_of(aspace.munmap, BASE, 0) == errno.EINVAL
    assert errno_of(aspace.munmap, APP_END - P, 2 * P) == errno.EINVAL


def test_shared_backing_freed_with_last_vma(aspace, mf):
    addr = aspace.mmap(BASE, 4 * P, RW, SHARED | MAP_FIXED)
    aspace.copy_out(addr, b"s" * (4 * P))
    off = vma_at(aspace, addr).offset
    aspace.munmap(addr + P, P)  # like shmem: pages stay until the last mapping goes
    assert has_data(mf, off + P, P)
    aspace.munmap(addr, P)
    assert has_data(mf, off, 4 * P)
    assert mf.arena_of(off).shared_object  # a file of its own, not the common arena's
    aspace.munmap(addr + 2 * P, 2 * P)
    assert mf.used == 0
    with pytest.raises(ValueError):  # the object's file is closed with its last mapping
        mf.arena_of(off)


# -- mprotect ----------------------------------------------------------------------


def test_mprotect_split_merge_and_fault(aspace):
    aspace.mmap(BASE, 4 * P, RW, PRIV | MAP_FIXED)
    aspace.take_pending()
    aspace.mprotect(BASE + P, 2 * P, PROT_READ)
    assert aspace.take_pending() == [StubOp(OP_PROTECT, BASE + P, 2 * P, PROT_READ)]
    assert [(v.start, v.prot) for v in aspace.vmas()] == [
        (BASE, RW),
        (BASE + P, PROT_READ),
        (BASE + 3 * P, RW),
    ]
    assert errno_of(aspace.copy_out, BASE + P, b"x") == errno.EFAULT
    assert errno_of(aspace.copy_out, BASE + P - 1, b"xy") == errno.EFAULT
    aspace.copy_out_force(BASE + P, b"forced")
    assert aspace.copy_in(BASE + P, 6) == b"forced"
    aspace.mprotect(BASE + P, 2 * P, PROT_NONE)
    assert errno_of(aspace.copy_in, BASE + P, 1) == errno.EFAULT
    aspace.mprotect(BASE, 4 * P, RW)
    assert [(v.start, v.end) for v in aspace.vmas()] == [(BASE, BASE + 4 * P)]  # merged again
    assert errno_of(aspace.mprotect, BASE, 5 * P, PROT_READ) == errno.ENOMEM
    assert vma_at(aspace, BASE).prot == RW  # nothing changed
    assert errno_of(aspace.mprotect, BASE + 1, P, PROT_READ) == errno.EINVAL
    assert errno_of(aspace.mprotect, BASE, P, 0x100) == errno.EINVAL
    aspace.mprotect(BASE + 1000 * P, 0, PROT_READ)  # length 0: success


# -- mremap -------------------------------------------------------------------------


def test_mremap_shrink_and_grow_in_place(aspace, mf):
    aspace.mmap(BASE, 4 * P, RW, PRIV | MAP_FIXED)
    aspace.copy_out(BASE, b"keep")
    aspace.take_pending()
    assert aspace.mremap(BASE, 4 * P, 2 * P, 0) == BASE
    assert aspace.take_pending() == [StubOp(OP_UNMAP, BASE + 2 * P, 2 * P)]
    off = vma_at(aspace, BASE).offset
    assert aspace.mremap(BASE, 2 * P, 6 * P, 0) == BASE
    (v,) = aspace.vmas()
    assert (v.start, v.end) == (BASE, BASE + 6 * P)
    assert aspace.copy_in(BASE, 4) == b"keep"
    assert aspace.copy_in(BASE + 5 * P, 4) == bytes(4)
    ops = aspace.take_pending()
    if v.offset == off:  # extended in the memfd: only the new part is mapped
        assert ops == [StubOp(OP_MAP, BASE + 2 * P, 4 * P, RW, off + 2 * P)]
    else:
        assert ops == [StubOp(OP_MAP, BASE, 6 * P, RW, v.offset)]
    assert mf.used == 6 * P


def test_mremap_grow_in_place_rehomes_when_memfd_neighbour_taken(aspace, mf):
    aspace.mmap(BASE, 2 * P, RW, PRIV | MAP_FIXED)
    aspace.copy_out(BASE + P, b"data")
    aspace.mmap(0, P, RW, PRIV)  # takes the memfd range after ours
    aspace.take_pending()
    assert aspace.mremap(BASE, 2 * P, 3 * P, 0) == BASE
    (op,) = aspace.take_pending()
    assert (op.kind, op.addr, op.length) == (OP_MAP, BASE, 3 * P)
    assert aspace.copy_in(BASE + P, 4) == b"data"
    assert mf.used == 4 * P  # the old range was freed


def test_mremap_move_keeps_contents_without_copy(aspace):
    aspace.mmap(BASE, 2 * P, RW, PRIV | MAP_FIXED)
    aspace.mmap(BASE + 2 * P, P, PROT_READ, PRIV | MAP_FIXED)  # blocks growth
    aspace.copy_out(BASE, b"move me")
    off = vma_at(aspace, BASE).offset
    assert errno_of(aspace.mremap, BASE, 2 * P, 4 * P, 0) == errno.ENOMEM
    aspace.take_pending()
    new = aspace.mremap(BASE, 2 * P, 2 * P, MREMAP_MAYMOVE | MREMAP_FIXED, BASE + 8 * P)
    assert new == BASE + 8 * P
    assert aspace.take_pending() == [
        StubOp(OP_UNMAP, BASE, 2 * P),
        StubOp(OP_MAP, new, 2 * P, RW, off),
    ]
    assert aspace.copy_in(new, 7) == b"move me"
    moved = aspace.mremap(new, 2 * P, 3 * P, MREMAP_MAYMOVE)
    assert moved == new  # free space after it: grown in place
    aspace.mmap(new + 3 * P, P, RW, PRIV | MAP_FIXED)
    far = aspace.mremap(new, 3 * P, 5 * P, MREMAP_MAYMOVE)
    assert far != new and aspace.copy_in(far, 7) == b"move me"
    assert errno_of(aspace.copy_in, new, 1) == errno.EFAULT


def test_mremap_errors(aspace):
    aspace.mmap(BASE, 2 * P, RW, PRIV | MAP_FIXED)
    aspace.mmap(BASE + 2 * P, P, PROT_READ, PRIV | MAP_FIXED)
    mm = MREMAP_MAYMOVE
    assert errno_of(aspace.mremap, BASE + 1, P, P, 0) == errno.EINVAL
    assert errno_of(aspace.mremap, BASE, P, 0, 0) == errno.EINVAL
    assert errno_of(aspace.mremap, BASE, P, P, 8) == errno.EINVAL
    assert errno_of(aspace.mremap, BASE, P, P, MREMAP_FIXED, BASE + 9 * P) == errno.EINVAL
    assert errno_of(aspace.mremap, BASE, P, 2 * P, mm | MREMAP_DONTUNMAP) == errno.EINVAL
    assert errno_of(aspace.mremap, BASE, 2 * P, 2 * P, mm | MREMAP_FIXED, BASE + P) == (
        errno.EINVAL
    )
    assert errno_of(aspace.mremap, BASE + 9 * P, P, 2 * P, mm) == errno.EFAULT
    assert errno_of(aspace.mremap, BASE, 3 * P, 4 * P, mm) == errno.EFAULT  # two VMAs
    assert errno_of(aspace.mremap, BASE, 0, P, mm) == errno.EINVAL  # private dup
    assert aspace.mremap(BASE, 3 * P, P, 0) == BASE  # shrink may span VMAs
    assert [(v.start, v.end) for v in aspace.vmas()] == [(BASE, BASE + P)]


def test_mremap_dontunmap_and_shared(aspace):
    aspace.mmap(BASE, P, RW, PRIV | MAP_FIXED)
    aspace.copy_out(BASE, b"priv")
    new = aspace.mremap(BASE, P, P, MREMAP_MAYMOVE | MREMAP_DONTUNMAP)
    assert aspace.copy_in(new, 4) == b"priv"
    assert aspace.copy_in(BASE, 4) == bytes(4)  # old range: fresh zero pages
    s = aspace.mmap(BASE + 16 * P, 2 * P, RW, SHARED | MAP_FIXED)
    dup = aspace.mremap(s, 0, 2 * P, MREMAP_MAYMOVE)  # old_len 0: same pages twice
    aspace.copy_out(s, b"both")
    assert aspace.copy_in(dup, 4) == b"both"
    assert aspace.mremap(s, 2 * P, 3 * P, 0) == s  # grows beside its twin
    aspace.copy_out(s + 2 * P, b"tail")
    assert aspace.copy_in(s + 2 * P, 4) == b"tail"
    assert aspace.copy_in(dup, 4) == b"both"


# -- madvise -------------------------------------------------------------------------


def test_madvise(aspace, mf):
    aspace.mmap(BASE, 3 * P, RW, PRIV | MAP_FIXED)
    s = aspace.mmap(BASE + 8 * P, P, RW, SHARED | MAP_FIXED)
    aspace.copy_out(BASE, b"a" * (3 * P))
    aspace.copy_out(s, b"shared")
    aspace.madvise(BASE + P, P, MADV_DONTNEED)
    assert not has_data(mf, vma_at(aspace, BASE).offset + P, P)
    assert aspace.copy_in(BASE + P, P) == bytes(P)
    assert aspace.copy_in(BASE, 1) == b"a" and aspace.copy_in(BASE + 2 * P, 1) == b"a"
    aspace.madvise(s, P, MADV_DONTNEED)
    assert aspace.copy_in(s, 6) == b"shared"  # shared memory keeps its data
    aspace.madvise(BASE, 3 * P, MADV_FREE)
    assert aspace.copy_in(BASE, 3 * P) == bytes(3 * P)
    assert errno_of(aspace.madvise, BASE, 4 * P, MADV_WILLNEED) == errno.ENOMEM
    assert errno_of(aspace.madvise, BASE + 1, P, MADV_DONTNEED) == errno.EINVAL
    assert errno_of(aspace.madvise, BASE, P, 77) == errno.EINVAL
    aspace.madvise(BASE, 0, MADV_DONTNEED)


# -- brk -----------------------------------------------------------------------------


def test_brk(aspace):
    start = 0x5555_0000_0123
    aspace.set_brk_start(start)
    b0 = aspace.brk(0)
    assert b0 == start + P - 0x123 and aspace.brk_start == b0
    assert aspace.brk(b0 - 1) == b0  # below the start: unchanged
    assert aspace.brk(b0 + 10) == b0 + 10  # unaligned value kept, page mapped
    aspace.copy_out(b0, b"heap")
    assert aspace.brk(b0 + 3 * P) == b0 + 3 * P
    assert [(v.start, v.end, v.name) for v in aspace.vmas()] == [(b0, b0 + 3 * P, "[heap]")]
    assert aspace.copy_in(b0, 4) == b"heap"
    assert aspace.brk(b0 + P) == b0 + P
    assert errno_of(aspace.copy_in, b0 + P, 1) == errno.EFAULT
    assert aspace.brk(b0 + 2 * P) == b0 + 2 * P
    assert aspace.copy_in(b0 + P, 4) == bytes(4)  # shrink then grow gives zeros
    aspace.mmap(b0 + 4 * P, P, RW, PRIV | MAP_FIXED)
    assert aspace.brk(b0 + 8 * P) == b0 + 2 * P  # would run into a mapping
    assert aspace.brk(b0) == b0
    assert aspace.vmas()[0].start == b0 + 4 * P


def test_brk_out_of_memory():
    with MemoryFile(4 * P, arena_size=4 * P, max_arenas=1) as f:
        a = AddressSpace(f)
        a.set_brk_start(BASE)
        assert a.brk(BASE + 4 * P) == BASE + 4 * P
        assert a.brk(BASE + 5 * P) == BASE + 4 * P


# -- user memory -----------------------------------------------------------------------


def test_copy_across_vmas_and_cstrings(aspace):
    aspace.mmap(BASE, P, RW, PRIV | MAP_FIXED)
    aspace.mmap(BASE + P, P, PROT_READ | PROT_WRITE | 4, PRIV | MAP_FIXED)  # won't merge
    assert len(aspace.vmas()) == 2
    data = bytes(range(256)) * 4
    aspace.copy_out(BASE + P - 500, data)
    assert aspace.copy_in(BASE + P - 500, len(data)) == data
    aspace.copy_out(BASE + P - 3, b"abcdef\0")
    assert aspace.read_cstring(BASE + P - 3, 100) == b"abcdef"
    assert aspace.read_cstring(BASE + P - 3, 7) == b"abcdef"
    assert errno_of(aspace.read_cstring, BASE + P - 3, 6) == errno.ENAMETOOLONG
    aspace.copy_out(BASE + 2 * P - 4, b"xyzw")  # no NUL before the end of the mapping
    assert errno_of(aspace.read_cstring, BASE + 2 * P - 4, 100) == errno.EFAULT
    assert errno_of(aspace.copy_in, BASE + 2 * P - 4, 5) == errno.EFAULT
    assert errno_of(aspace.copy_out, BASE - 1, b"ab") == errno.EFAULT
    assert aspace.copy_in(BASE, 0) == b""
    aspace.zero_out(BASE + 10, 2 * P - 20)
    assert aspace.copy_in(BASE + 10, 2 * P - 20) == bytes(2 * P - 20)
    assert aspace.copy_in(BASE + 2 * P - 10, 10) == bytes(6) + b"xyzw"


def test_cstring_array_as_read_cstring_reads_each(aspace):
    """execve's argv/envp reader: the same strings and errors as one
    read_cstring per pointer, with pointers and strings across VMA edges."""
    aspace.mmap(BASE, P, RW, PRIV | MAP_FIXED)
    aspace.mmap(BASE + P, P, PROT_READ | PROT_WRITE | 4, PRIV | MAP_FIXED)  # won't merge
    aspace.mmap(BASE + 2 * P, P, RW, PRIV | MAP_FIXED)
    ptrs = [BASE + 64, BASE + P - 3, BASE + P + 100]  # the second crosses a VMA edge
    for addr, text in zip(ptrs, (b"first", b"across", b""), strict=True):
        aspace.copy_out(addr, text + b"\0")
    array = BASE + 2 * P - 12  # the second pointer straddles the next edge
    aspace.copy_out(array, b"".join(p.to_bytes(8, "little") for p in [*ptrs, 0]))
    want = [aspace.read_cstring(p, 4096) for p in ptrs]
    assert want == [b"first", b"across", b""]
    assert aspace.read_cstring_array(array, 4096, 10) == want
    assert aspace.read_cstring_array(0, 4096, 10) == []
    assert errno_of(aspace.read_cstring_array, array, 4096, 2) == errno.E2BIG
    assert errno_of(aspace.read_cstring_array, array, 4, 10) == errno.ENAMETOOLONG
    aspace.copy_out(array, (BASE + 3 * P + 8).to_bytes(8, "little"))  # unmapped
    assert errno_of(aspace.read_cstring_array, array, 4096, 10) == errno.EFAULT
    assert errno_of(aspace.read_cstring_array, BASE + 3 * P - 4, 4096, 10) == errno.EFAULT


def test_deferred_frees(aspace, mf):
    aspace.defer_frees = True
    aspace.mmap(BASE, 2 * P, RW, PRIV | MAP_FIXED)
    aspace.munmap(BASE, 2 * P)
    assert mf.used == 2 * P  # held until the stub has unmapped it
    aspace.commit_frees()
    assert mf.used == 0


# -- fork and release -----------------------------------------------------------------


def test_fork_copies_private_and_shares_shared(aspace, mf):
    p = aspace.mmap(BASE, 2 * P, RW, PRIV | MAP_FIXED)
    s = aspace.mmap(BASE + 4 * P, P, RW, SHARED | MAP_FIXED)
    stack = aspace.mmap(0, 8 << 20, RW, PRIV, name="[stack]")
    aspace.copy_out(stack + (8 << 20) - 8, b"top!top!")
    aspace.copy_out(p, b"parent")
    aspace.copy_out(s, b"common")
    aspace.mmap(BASE + 8 * P, P, RW, PRIV | MAP_FIXED)
    aspace.madvise(BASE + 8 * P, P, MADV_DONTFORK)
    aspace.mmap(BASE + 10 * P, P, RW, PRIV | MAP_FIXED)
    aspace.copy_out(BASE + 10 * P, b"wipe")
    aspace.madvise(BASE + 10 * P, P, MADV_WIPEONFORK)
    blocks = mf.blocks_bytes()
    child = aspace.fork()
    assert mf.blocks_bytes() - blocks <= 4 * P  # the stack stayed sparse
    assert [op.kind for op in child.pending] == [OP_MAP] * 4
    assert {(op.addr, op.length) for op in child.pending} == {
        (v.start, v.end - v.start) for v in child.vmas()
    }
    assert errno_of(child.copy_in, BASE + 8 * P, 1) == errno.EFAULT  # DONTFORK
    assert child.copy_in(BASE + 10 * P, 4) == bytes(4)  # WIPEONFORK
    assert child.copy_in(stack + (8 << 20) - 8, 8) == b"top!top!"
    child.copy_out(p, b"child!")
    assert aspace.copy_in(p, 6) == b"parent"
    child.copy_out(s, b"CHILD!")
    assert aspace.copy_in(s, 6) == b"CHILD!"
    aspace.munmap(s, P)  # the child still holds the shared page
    assert child.copy_in(s, 6) == b"CHILD!"
    child.release()
    assert child.pending == [StubOp(OP_UNMAP, APP_START, APP_END - APP_START)]
    assert child.vmas() == []
    aspace.release()
    assert mf.used == 0


def test_fork_keeps_the_parents_arena_from_the_child(aspace, mf):
    """The child's ops map only its own arena and shared objects: writable
    private memory is copied into the child's arena, read-only private memory
    moved once into a sealed object both share (the parent's stub remaps it),
    never left in the parent's arena, a file the child's stub must never
    hold (docs/security.md, "Memory isolation")."""
    rw = aspace.mmap(BASE, P, RW, PRIV | MAP_FIXED)
    ro = aspace.mmap(BASE + 2 * P, 2 * P, RW, PRIV | MAP_FIXED)
    aspace.copy_out(rw, b"data")
    aspace.copy_out(ro, b"text")
    aspace.mprotect(ro, 2 * P, PROT_READ)
    aspace.take_pending()
    child = aspace.fork()
    assert child.arena is not aspace.arena
    arenas = {mf.arena_of(op.offset) for op in child.pending}
    assert aspace.arena not in arenas and child.arena in arenas
    (moved,) = [a for a in arenas if a is not child.arena]
    assert moved.sealed
    assert aspace.take_pending() == [StubOp(OP_MAP, ro, 2 * P, PROT_READ, moved.base)]
    assert (child.copy_in(rw, 4), child.copy_in(ro, 4)) == (b"data", b"text")
    child.release()
    aspace.release()
    assert mf.used == 0


def test_fork_shares_read_only_pages_until_they_can_change(aspace, mf):
    """Private memory without PROT_WRITE is shared at fork, not copied (moved
    once into a sealed file of its own); each way to change it (mprotect +W,
    a zeroing madvise, mremap, a forced write) first gives that address
    space its own copy, remapped in its stub."""
    ro = aspace.mmap(BASE, 3 * P, RW, PRIV | MAP_FIXED)
    aspace.copy_out(ro, b"text" + bytes(P - 4) + b"two!" + bytes(P - 4) + b"three")
    aspace.mprotect(ro, 3 * P, PROT_READ)
    used = mf.used
    child = aspace.fork()
    assert mf.used == used, "nothing copied"
    assert child.copy_in(ro, 4) == b"text"
    assert errno_of(child.copy_out, ro, b"x") == errno.EFAULT  # still read-only
    child.take_pending()
    child.mprotect(ro, P, RW)  # the first page: the child's own copy, remapped
    assert [op.kind for op in child.take_pending()] == [OP_MAP, OP_PROTECT]
    child.copy_out(ro, b"TEXT")
    assert (aspace.copy_in(ro, 4), child.copy_in(ro, 4)) == (b"text", b"TEXT")
    child.madvise(ro + P, P, MADV_DONTNEED)
    assert (aspace.copy_in(ro + P, 4), child.copy_in(ro + P, 4)) == (b"two!", bytes(4))
    aspace.copy_out_force(ro + 2 * P, b"THREE")  # as the loader or a poke writes
    assert (aspace.copy_in(ro + 2 * P, 5), child.copy_in(ro + 2 * P, 5)) == (b"THREE", b"three")
    moved = child.mremap(ro + 2 * P, P, 2 * P, MREMAP_MAYMOVE)
    assert child.copy_in(moved, 5) == b"three"
    child.release()
    aspace.release()
    assert mf.used == 0, "every shared and copied range freed once"


def test_share_readonly_moves_pages_into_a_sealed_object(aspace, mf):
    """The image cache's pieces (share_readonly): a sealed file each, mapped
    by this address space's stub in place of its own pages."""
    ro = aspace.mmap(BASE, 2 * P, RW, PRIV | MAP_FIXED)
    aspace.copy_out(ro, b"text")
    aspace.mprotect(ro, 2 * P, PROT_READ)
    aspace.take_pending()
    ((start, length, _prot, backing),) = aspace.share_readonly(ro, ro + 2 * P)
    assert (start, length) == (ro, 2 * P) and mf.arena_of(backing.offset).sealed
    assert aspace.take_pending() == [StubOp(OP_MAP, ro, 2 * P, PROT_READ, backing.offset)]
    assert aspace.copy_in(ro, 4) == b"text"
    aspace.release()
    assert backing.drop()  # share_readonly's reference, the last
    mf.free(backing.offset, backing.length)
    assert mf.used == 0
