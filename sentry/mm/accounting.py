"""What an address space holds, counted as Linux counts it for the resource
limits (RLIMIT_AS, RLIMIT_DATA, RLIMIT_MEMLOCK) and /proc/PID/status, and
mlock's VM_LOCKED state.

Why counted on demand instead of kept as running totals (Linux's total_vm,
data_vm, locked_vm): every path that maps, unmaps, splits, remaps or forks
would have to keep them right, and a wrong total refuses memory for good.
The limits are unlimited by default, so the syscall layer asks only when a
limit is finite; /proc asks when it is read. Nothing the Sentry holds is ever
swapped, so locking changes no page: it is the flag, its accounting, and
MCL_FUTURE's "lock what comes next".
"""

from __future__ import annotations

import errno

from sentry.kernel.errors import SyscallError
from sentry.mm.filemap import FileBacking
from sentry.mm.layout import PAGE_SIZE
from sentry.mm.vma import PROT_NONE, PROT_WRITE, VM_LOCKED, Vma
from sentry.mm.vma_table import VmaTable, err

STACK_NAME = "[stack]"


def is_data(v: Vma) -> bool:
    """Linux's is_data_mapping(): private, writable, not the stack."""
    return bool(v.prot & PROT_WRITE) and not v.shared and v.name != STACK_NAME


class Accounting(VmaTable):
    """Counts over the VMA table, and the mlock flag on its VMAs."""

    lock_future = False
    """mlockall(MCL_FUTURE): new mappings start locked (not inherited by fork)."""

    def total_bytes(self) -> int:
        """Everything mapped (VmSize, RLIMIT_AS)."""
        with self.lock:
            return sum(v.end - v.start for v in self._vmas)

    def data_bytes(self) -> int:
        """Private writable mappings (RLIMIT_DATA)."""
        with self.lock:
            return sum(v.end - v.start for v in self._vmas if is_data(v))

    def locked_bytes(self) -> int:
        """mlock'ed mappings (VmLck, RLIMIT_MEMLOCK)."""
        with self.lock:
            return sum(v.end - v.start for v in self._vmas if v.vmflags & VM_LOCKED)

    def vma_at(self, addr: int) -> Vma | None:
        """The mapping holding ``addr`` (what mremap would grow), or None."""
        with self.lock:
            i = self._find(addr)
            return self._vmas[i] if i >= 0 else None

    def bytes_in(self, start: int, end: int, locked_only: bool = False) -> int:
        """How much of [start, end) is mapped (and locked, with ``locked_only``):
        what a MAP_FIXED mapping replaces, or what mlock need not charge again."""
        with self.lock:
            return sum(hi - lo for v, lo, hi in self._overlapping(start, end)
                       if not locked_only or v.vmflags & VM_LOCKED)

    def set_locked(self, start: int, end: int, locked: bool) -> None:
        """mlock/munlock of [start, end): ENOMEM unless all of it is mapped."""
        with self.lock:
            if not self._is_mapped(start, end):
                raise err(errno.ENOMEM)
            i, j = self._isolate(start, end)
            for v in self._vmas[i:j]:
                v.vmflags = v.vmflags | VM_LOCKED if locked else v.vmflags & ~VM_LOCKED
            self._merge_range(i, j)

    def populate(self, start: int, end: int) -> None:
        """Make the accessible anonymous pages of [start, end) present, as
        mlock, MAP_LOCKED and MAP_POPULATE fault them in, which mincore then
        reports resident. A read through the Sentry's shared mapping of the
        memory file allocates a hole's page (shmem faults never map the zero
        page) and changes no byte, so a store racing from another thread is
        never lost (fallocate'd shmem pages would still read as holes). A
        file's pages (FileBacking) are the file's to fill and are left alone."""
        view = self._view
        with self.lock:
            for v, lo, hi in self._overlapping(start, end):
                if v.prot == PROT_NONE or isinstance(v.backing, FileBacking):
                    continue
                off = v.offset + lo - v.start
                for pos in range(off, off + hi - lo, PAGE_SIZE):
                    view[pos]  # noqa: B018 - the read is the point

    def set_all_locked(self, locked: bool) -> None:
        """mlockall(MCL_CURRENT) / munlockall: every mapping."""
        with self.lock:
            for v in self._vmas:
                v.vmflags = v.vmflags | VM_LOCKED if locked else v.vmflags & ~VM_LOCKED
            self._merge_range(0, len(self._vmas))

    def residency(self) -> list[tuple[Vma, bytes]]:
        """Each VMA (a copy) with mincore's byte per page, 1 where the memory
        file holds the page (/proc/PID/smaps' Rss and pagemap's present bit:
        touched, populated or locked pages; nothing is ever swapped)."""
        with self.lock:
            vmas = [v.clone() for v in self._vmas]
        out = []
        for v in vmas:
            try:
                vec = self.mincore(v.start, v.length)  # type: ignore[attr-defined]
            except SyscallError:  # unmapped since the snapshot
                vec = bytes(v.length // PAGE_SIZE)
            out.append((v, vec))
        return out
