"""The memory manager (sentry/mm) against a model, on a real memfd; no stub needed.

A hypothesis state machine drives an AddressSpace with random
mmap/munmap/mprotect/mremap/madvise/writes and checks it against a page-map
model, replaying the pending StubOps on a simulated stub so the ops are proven
to produce the same mappings and contents. The targeted tests of each
syscall are tests/test_mm.py.
"""

from __future__ import annotations

import errno
import struct

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from mm_support import BASE, PRIV, RW, SHARED, P, errno_of

from sentry.kernel.errors import SyscallError
from sentry.mm.address_space import OP_MAP, OP_PROTECT, OP_UNMAP, AddressSpace
from sentry.mm.layout import APP_END, APP_START
from sentry.mm.memfile import MemoryFile
from sentry.mm.vma import (
    MADV_DONTNEED,
    MAP_FIXED,
    MAP_SHARED,
    MREMAP_FIXED,
    MREMAP_MAYMOVE,
    PROT_NONE,
    PROT_READ,
    PROT_WRITE,
)

WINDOW = 40  # pages at BASE that the state machine plays in
_TAG = struct.Struct("<Q")


class MmModel(RuleBasedStateMachine):
    """Random memory syscalls against a page-map model and a simulated stub.

    The model maps page number -> [prot, shared, tag]; the tag is what the first
    8 bytes of the page hold. The simulated stub maps page number -> (memfd offset,
    prot) and is updated only from pending StubOps, so checking it against the
    model checks the ops too.
    """

    def __init__(self) -> None:
        super().__init__()
        self.mf = MemoryFile(1 << 30)
        self.a = AddressSpace(self.mf)
        self.model: dict[int, list] = {}
        self.stub: dict[int, tuple[int, int]] = {}
        self.next_tag = 1

    def teardown(self) -> None:
        self.a.release()
        assert self.mf.used == 0
        self.mf.close()

    # helpers
    def _page(self, i: int) -> int:
        return BASE // P + i

    def _apply_ops(self) -> None:
        for op in self.a.take_pending():
            first, n = op.addr // P, op.length // P
            assert op.addr % P == 0 and op.length % P == 0 and op.length > 0
            assert APP_START <= op.addr and op.addr + op.length <= APP_END
            if op.kind == OP_MAP:
                for k in range(n):
                    self.stub[first + k] = (op.offset + k * P, op.prot)
            elif op.kind == OP_UNMAP:
                for k in range(n):
                    self.stub.pop(first + k, None)
            else:
                assert op.kind == OP_PROTECT
                for k in range(n):
                    assert first + k in self.stub, "mprotect of an unmapped page"
                    self.stub[first + k] = (self.stub[first + k][0], op.prot)

    def _vma_span(self, addr: int) -> tuple[int, int] | None:
        for v in self.a.vmas():
            if v.start <= addr < v.end:
                return v.start, v.end
        return None

    # rules
    @rule(
        start=st.integers(0, WINDOW - 1),
        n=st.integers(1, 8),
        prot=st.sampled_from([PROT_NONE, PROT_READ, RW]),
        shared=st.booleans(),
    )
    def mmap_fixed(self, start, n, prot, shared):
        addr = BASE + start * P
        self.a.mmap(addr, n * P, prot, (SHARED if shared else PRIV) | MAP_FIXED)
        for k in range(n):
            self.model[self._page(start + k)] = [prot, shared, 0]

    @rule(start=st.integers(0, WINDOW - 1), n=st.integers(1, 8))
    def munmap(self, start, n):
        self.a.munmap(BASE + start * P, n * P)
        for k in range(n):
            self.model.pop(self._page(start + k), None)

    @rule(
        start=st.integers(0, WINDOW - 1),
        n=st.integers(1, 8),
        prot=st.sampled_from([PROT_NONE, PROT_READ, RW]),
    )
    def mprotect(self, start, n, prot):
        pages = [self._page(start + k) for k in range(n)]
        if all(p in self.model for p in pages):
            self.a.mprotect(BASE + start * P, n * P, prot)
            for p in pages:
                self.model[p][0] = prot
        else:
            assert errno_of(self.a.mprotect, BASE + start * P, n * P, prot) == errno.ENOMEM

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def write(self, data):
        page = data.draw(st.sampled_from(sorted(self.model)))
        tag = self.next_tag
        self.next_tag += 1
        if self.model[page][0] & PROT_WRITE:
            self.a.copy_out(page * P, _TAG.pack(tag))
        else:
            assert errno_of(self.a.copy_out, page * P, b"x") == errno.EFAULT
            self.a.copy_out_force(page * P, _TAG.pack(tag))
        self.model[page][2] = tag

    @rule(start=st.integers(0, WINDOW - 1), n=st.integers(1, 8))
    def dontneed(self, start, n):
        pages = [self._page(start + k) for k in range(n)]
        try:
            self.a.madvise(BASE + start * P, n * P, MADV_DONTNEED)
        except SyscallError as e:
            assert e.errno == errno.ENOMEM and not all(p in self.model for p in pages)
        for p in pages:
            if p in self.model and not self.model[p][1]:
                self.model[p][2] = 0

    @rule(
        start=st.integers(0, WINDOW - 1),
        old_n=st.integers(1, 6),
        new_n=st.integers(1, 10),
        dest=st.one_of(st.none(), st.integers(0, WINDOW - 1)),
        maymove=st.booleans(),
    )
    def mremap(self, start, old_n, new_n, dest, maymove):
        old = BASE + start * P
        span = self._vma_span(old)
        flags = MREMAP_MAYMOVE if maymove or dest is not None else 0
        if dest is not None:
            flags |= MREMAP_FIXED
        new_addr = BASE + dest * P if dest is not None else 0
        snapshot = {p: list(v) for p, v in self.model.items()}
        try:
            got = self.a.mremap(old, old_n * P, new_n * P, flags, new_addr)
        except SyscallError as e:
            if e.errno == errno.EFAULT:
                shrink = dest is None and new_n <= old_n
                assert span is None or (not shrink and old + old_n * P > span[1])
            elif e.errno == errno.EINVAL:
                assert (
                    dest is not None and new_addr < old + old_n * P and old < (new_addr + new_n * P)
                )
            else:
                assert e.errno == errno.ENOMEM and not maymove and dest is None
            assert self.model == snapshot
            return
        assert span is not None
        oldp, gotp = old // P, got // P
        if dest is None and new_n <= old_n:
            assert got == old
            for k in range(new_n, old_n):
                self.model.pop(oldp + k, None)
            return
        if dest is not None:
            for k in range(new_n):
                self.model.pop(gotp + k, None)
        moved = [snapshot.get(oldp + k) for k in range(min(old_n, new_n))]
        prot, shared = snapshot[oldp][0], snapshot[oldp][1]
        for k in range(old_n):
            self.model.pop(oldp + k, None)
        for k in range(new_n):
            if k < len(moved):
                assert moved[k] is not None
                self.model[gotp + k] = list(moved[k])
            else:
                self.model[gotp + k] = [prot, shared, 0]

    # invariants
    @invariant()
    def table_matches_model_and_stub(self):
        self._apply_ops()
        raw = self.a._vmas
        for x, y in zip(raw, raw[1:], strict=False):
            assert x.start < x.end <= y.start
            assert not x.can_merge(y), (x, y)
        pages = {}
        for v in self.a.vmas():
            for k in range((v.end - v.start) // P):
                pages[v.start // P + k] = (v.prot, v.flags == MAP_SHARED, v.offset + k * P)
        assert {p: (m[0], m[1]) for p, m in self.model.items()} == {
            p: x[:2] for p, x in pages.items()
        }
        assert set(self.stub) == set(pages)
        for p, (prot, _shared, off) in pages.items():
            assert self.stub[p] == (off, prot)
            assert _TAG.unpack(self.mf.view[off : off + 8])[0] == self.model[p][2]
        # Accounting: private ranges plus each shared backing once.
        backings = {id(v.backing): v.backing.length for v in raw if v.backing is not None}
        private = sum(v.end - v.start for v in raw if v.backing is None)
        assert self.mf.used == private + sum(backings.values())


TestMmModel = MmModel.TestCase
TestMmModel.settings = settings(
    max_examples=200,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
