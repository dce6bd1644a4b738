"""ioctl(PROCMAP_QUERY) on /proc/<pid>/maps (Linux 6.11): one VMA by address.

Tools that would parse maps ask for the mapping at (or after) an address
instead: struct procmap_query in, the VMA's range, r/w/x/s flags, page
size, offset, device and inode, and its name out, as fs/proc/task_mmu.c's
do_procmap_query.  The answers agree with what maps shows (offset, device
and inode are 0 here, as in our maps); no build ID is read (size 0, as
Linux for a VMA without one).
"""

from __future__ import annotations

import errno
import struct
from typing import Any

from sentry.kernel.errors import SyscallError
from sentry.mm.layout import PAGE_SIZE
from sentry.procfs.nodes import ProcFile, SnapshotFile
from sentry.procfs.process import heap_range
from sentry.vfs.file import FileDescription

PROCMAP_QUERY = 0xC0686611  # _IOWR('f', 17, struct procmap_query)
QUERY = struct.Struct("<QQQQQQQQQIIIIQQ")  # struct procmap_query, 104 bytes
MIN_SIZE = 24  # offsetofend(struct procmap_query, query_addr)
VMA_READABLE, VMA_WRITABLE, VMA_EXECUTABLE, VMA_SHARED = 0x1, 0x2, 0x4, 0x8
COVERING_OR_NEXT_VMA, FILE_BACKED_VMA = 0x10, 0x20
_FLAGS = VMA_READABLE | VMA_WRITABLE | VMA_EXECUTABLE | VMA_SHARED | COVERING_OR_NEXT_VMA \
    | FILE_BACKED_VMA
PROT_READ, PROT_WRITE, PROT_EXEC, MAP_SHARED = 1, 2, 4, 1


def _vma_flags(v: Any) -> int:
    f = 0
    for prot, bit in ((PROT_READ, VMA_READABLE), (PROT_WRITE, VMA_WRITABLE),
                      (PROT_EXEC, VMA_EXECUTABLE)):
        if v.prot & prot:
            f |= bit
    return f | (VMA_SHARED if v.flags & MAP_SHARED else 0)


def query(task: Any, tg: Any, arg: int) -> int:
    """PROCMAP_QUERY: ``arg`` points at a struct procmap_query in ``task``'s memory."""
    mm = task.mm
    (usize,) = struct.unpack("<Q", mm.copy_in(arg, 8))
    if usize < MIN_SIZE:
        raise SyscallError(errno.EINVAL)
    if usize > PAGE_SIZE:
        raise SyscallError(errno.E2BIG)
    raw = mm.copy_in(arg, min(usize, QUERY.size))
    if usize > QUERY.size and any(mm.copy_in(arg + QUERY.size, usize - QUERY.size)):
        raise SyscallError(errno.E2BIG)  # copy_struct_from_user: unknown fields set
    q = list(QUERY.unpack(raw.ljust(QUERY.size, b"\0")))
    flags, addr = q[1], q[2]
    name_size, build_id_size, name_addr, build_id_addr = q[11], q[12], q[13], q[14]
    if flags & ~_FLAGS:
        raise SyscallError(errno.EINVAL)
    if (not name_size and name_addr) or (not build_id_size and build_id_addr):
        raise SyscallError(errno.EINVAL)
    if tg.zombie or tg.mm is None:
        raise SyscallError(errno.ESRCH)
    want = flags & (VMA_READABLE | VMA_WRITABLE | VMA_EXECUTABLE | VMA_SHARED)
    found = None
    for v in tg.mm.vmas():
        if v.end <= addr:
            continue
        if v.start > addr and not flags & COVERING_OR_NEXT_VMA:
            break
        file_backed = v.name.startswith("/")  # what maps names by its path
        if _vma_flags(v) & want == want and (file_backed or not flags & FILE_BACKED_VMA):
            found = v
            break
        if not flags & COVERING_OR_NEXT_VMA:
            break
    if found is None:
        raise SyscallError(errno.ENOENT)
    name = found.name
    lo, hi = heap_range(tg)
    if not name and lo and found.start < hi and found.end > lo:
        name = "[heap]"
    q[3], q[4], q[5], q[6] = found.start, found.end, _vma_flags(found), PAGE_SIZE
    q[7] = q[8] = q[9] = q[10] = 0  # offset, inode, device: as maps shows them
    if name_size:
        text = name.encode(errors="surrogateescape") + b"\0" if name else b""
        if len(text) > name_size:
            raise SyscallError(errno.ENAMETOOLONG)
        if text:
            mm.copy_out(name_addr, text)
        q[11] = len(text)
    q[12] = 0  # no build ID
    mm.copy_out(arg, QUERY.pack(*q)[:min(usize, QUERY.size)])
    return 0


class MapsFile(SnapshotFile):
    """An open /proc/<pid>/maps: its text, and PROCMAP_QUERY."""

    def ioctl(self, cmd: int, arg: int, task: object) -> int:
        if cmd != PROCMAP_QUERY:
            raise SyscallError(errno.ENOTTY)
        ref = self.inode.ref
        tg = ref.tg() if ref is not None else None
        if tg is None:
            raise SyscallError(errno.ESRCH)
        return query(task, tg, arg)


class MapsInode(ProcFile):
    """/proc/<pid>/maps."""

    def open(self, flags: int) -> FileDescription:
        desc = super().open(flags)
        assert isinstance(desc, SnapshotFile)
        return MapsFile(self, desc.data or b"", flags)
