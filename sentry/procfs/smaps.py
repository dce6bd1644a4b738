"""/proc/<pid>/smaps, smaps_rollup and pagemap: what each mapping holds.

Programs read these to see what is resident and locked (the LTP's mlock05
checks Rss and Locked of an mlock'ed range; mmap12 the pagemap present bit
of a MAP_POPULATE'd one). "Resident" is a page the memory file holds
(Accounting.residency, the same answer mincore gives): touched, populated or
locked. Nothing here is ever swapped, there are no huge pages and no KSM,
so those fields are 0. A page of a private VMA is Private_Dirty and
Anonymous (a private file mapping is a copy of the file here, not the page
cache's pages), one of a shared VMA Shared_Dirty; Pss equals Rss (we do not
count how many processes map a shared page).

pagemap (Documentation/admin-guide/mm/pagemap.rst): one 64-bit entry per
virtual page; bit 63 present, bit 61 a file page or shared anonymous page.
The frame number (bits 0-54) is 0, as Linux shows callers without
CAP_SYS_ADMIN: there is no physical frame to show. A read must start and
end on an entry (EINVAL otherwise, as pagemap_read).
"""

from __future__ import annotations

import errno
import stat as _stat
import struct
import threading
from typing import TYPE_CHECKING

from sentry.kernel.errors import SyscallError
from sentry.mm.layout import PAGE_SIZE
from sentry.mm.vma import (
    PROT_EXEC,
    PROT_READ,
    PROT_WRITE,
    VM_DONTFORK,
    VM_GROWSDOWN,
    VM_LOCKED,
    VM_NOMAYWRITE,
    VM_WIPEONFORK,
)
from sentry.procfs.nodes import ProcessRef, ProcInode
from sentry.procfs.process import heap_range, maps_line
from sentry.vfs.description import InodeFile, seek_position
from sentry.vfs.file import FileDescription

if TYPE_CHECKING:
    from sentry.kernel.threadgroup import ThreadGroup
    from sentry.mm.vma import Vma
    from sentry.vfs.inode import Filesystem

PM_PRESENT = 1 << 63
PM_FILE = 1 << 61
TASK_SIZE = 0x7FFFFFFFF000  # x86-64's user address space: pagemap's end
MAX_ENTRIES = 1 << 16  # per read, as Linux's pagemap_read works in batches

_SMAPS_FIELDS = ("Rss", "Pss", "Pss_Dirty", "Shared_Clean", "Shared_Dirty", "Private_Clean",
                 "Private_Dirty", "Referenced", "Anonymous", "KSM", "LazyFree", "AnonHugePages",
                 "ShmemPmdMapped", "FilePmdMapped", "Shared_Hugetlb", "Private_Hugetlb", "Swap",
                 "SwapPss", "Locked")
_ROLLUP_FIELDS = ("Rss", "Pss", "Pss_Dirty", "Pss_Anon", "Pss_File", "Pss_Shmem",
                  "Shared_Clean", "Shared_Dirty", "Private_Clean", "Private_Dirty", "Referenced",
                  "Anonymous", "KSM", "LazyFree", "AnonHugePages", "ShmemPmdMapped",
                  "FilePmdMapped", "Shared_Hugetlb", "Private_Hugetlb", "Swap", "SwapPss",
                  "Locked")


def _kb(name: str, nbytes: int) -> str:
    return f"{name + ':':<16}{nbytes >> 10:>8} kB\n"


def _counts(v: Vma, resident: int) -> dict[str, int]:
    """The byte counts of one VMA with ``resident`` bytes present."""
    c = dict.fromkeys(_ROLLUP_FIELDS, 0)
    c["Rss"] = c["Pss"] = c["Pss_Dirty"] = c["Referenced"] = resident
    if v.shared:
        c["Shared_Dirty"] = c["Pss_Shmem"] = resident
    else:
        c["Private_Dirty"] = c["Anonymous"] = c["Pss_Anon"] = resident
    if v.vmflags & VM_LOCKED:
        c["Locked"] = resident
    return c


def _vm_flags(v: Vma) -> str:
    """VmFlags: Linux's two-letter mnemonics, in its order."""
    f = []
    for bit, name in ((PROT_READ, "rd"), (PROT_WRITE, "wr"), (PROT_EXEC, "ex")):
        if v.prot & bit:
            f.append(name)
    if v.shared:
        f.append("sh")
    f += ["mr"] + ([] if v.vmflags & VM_NOMAYWRITE else ["mw"]) + ["me"]
    if v.shared:
        f.append("ms")
    if v.name == "[stack]" or v.vmflags & VM_GROWSDOWN:
        f.append("gd")
    if v.vmflags & VM_LOCKED:
        f.append("lo")
    if v.vmflags & VM_DONTFORK:
        f.append("dc")
    if v.prot & PROT_WRITE and not v.shared:
        f.append("ac")
    if v.vmflags & VM_WIPEONFORK:
        f.append("wf")
    return " ".join(f)


def _residency(tg: ThreadGroup) -> list[tuple[Vma, bytes]]:
    if tg.zombie or tg.mm is None:
        return []
    return tg.mm.residency()


def smaps(tg: ThreadGroup) -> bytes:
    """/proc/<pid>/smaps: each maps line followed by its counts."""
    heap = heap_range(tg)
    out = []
    for v, vec in _residency(tg):
        out.append(maps_line(v.start, v.end, v.prot, v.shared, v.name, heap))
        c = _counts(v, vec.count(1) * PAGE_SIZE)
        text = [_kb("Size", v.length), _kb("KernelPageSize", PAGE_SIZE),
                _kb("MMUPageSize", PAGE_SIZE)]
        text += [_kb(k, c[k]) for k in _SMAPS_FIELDS]
        text.append(f"{'THPeligible:':<16}{0:>8}\n")
        text.append(f"VmFlags: {_vm_flags(v)}\n")
        out.append("".join(text).encode())
    return b"".join(out)


def smaps_rollup(tg: ThreadGroup) -> bytes:
    """/proc/<pid>/smaps_rollup: the sums, under one line spanning every VMA."""
    rows = _residency(tg)
    total = dict.fromkeys(_ROLLUP_FIELDS, 0)
    for v, vec in rows:
        for k, n in _counts(v, vec.count(1) * PAGE_SIZE).items():
            total[k] += n
    start, end = (rows[0][0].start, rows[-1][0].end) if rows else (0, 0)
    head = maps_line(start, end, 0, False, "[rollup]", (0, 0))
    return head + "".join(_kb(k, total[k]) for k in _ROLLUP_FIELDS).encode()


class PagemapInode(ProcInode):
    """/proc/<pid>/pagemap (mode 0400, the process's owner)."""

    def __init__(self, fs: Filesystem, ref: ProcessRef) -> None:
        super().__init__(fs, _stat.S_IFREG | 0o400, ref)

    def open(self, flags: int) -> FileDescription:
        tg = self.alive()
        if tg is None or tg.zombie:
            raise SyscallError(errno.ESRCH)
        return PagemapFile(self, flags, tg)


class PagemapFile(InodeFile):
    """An open pagemap: the offset is 8 bytes per virtual page."""

    def __init__(self, inode: PagemapInode, flags: int, tg: ThreadGroup) -> None:
        super().__init__(inode, flags)
        self.tg = tg
        self.offset = 0
        self._lock = threading.Lock()

    def pread(self, count: int, offset: int) -> bytes:
        if offset % 8 or count % 8:
            raise SyscallError(errno.EINVAL)
        first = offset // 8
        n = min(count // 8, MAX_ENTRIES, max(TASK_SIZE // PAGE_SIZE - first, 0))
        if n <= 0:
            return b""
        entries = [0] * n
        lo, hi = first * PAGE_SIZE, (first + n) * PAGE_SIZE
        for v, vec in _residency(self.tg):
            if v.end <= lo or v.start >= hi:
                continue
            flag = PM_FILE if v.shared else 0
            for addr in range(max(v.start, lo), min(v.end, hi), PAGE_SIZE):
                if vec[(addr - v.start) // PAGE_SIZE]:
                    entries[addr // PAGE_SIZE - first] = PM_PRESENT | flag
        return struct.pack(f"<{n}Q", *entries)

    def read(self, count: int) -> bytes:
        with self._lock:
            out = self.pread(count, self.offset)
            self.offset += len(out)
            return out

    def seek(self, offset: int, whence: int) -> int:
        with self._lock:
            self.offset = seek_position(self.offset, 0, offset, whence)
            return self.offset
