"""Address spaces as plain data: each VMA with its pages, and back.

Pages are read through the address space's own API (``copy_in_force``, what
/proc/PID/mem's reads stand on) and written back with ``copy_out_force``, so
this module does not care how many memory files there are.  Only chunks that
are not all zero are stored: an 8 MiB stack reservation costs nothing.

Private memory (anonymous, a file's private mapping, program text shared with
the image cache) is saved as the VMA's bytes and restored as private
anonymous memory with the same name, protection and flags.  Shared anonymous
memory (MAP_SHARED|MAP_ANONYMOUS, kept across fork) is saved once per backing
and restored as one backing that every VMA of every process maps again.  A
shared mapping of a file cannot be saved yet (its pages are the file's):
CheckpointError names it.
"""

from __future__ import annotations

import bisect
from typing import TYPE_CHECKING, Any

from sentry.checkpoint.quiesce import CheckpointError
from sentry.mm.address_space import AddressSpace
from sentry.mm.filemap import FileBacking
from sentry.mm.layout import APP_END, APP_START, PAGE_SIZE
from sentry.mm.vma import Backing, Vma
from sentry.mm.vma_table import OP_MAP, StubOp

if TYPE_CHECKING:
    from sentry.mm.memfile import MemoryFile

CHUNK = 64 * 1024
_ZERO = bytes(CHUNK)


class SharedTable:
    """Shared backings met while saving (id -> index) or made while restoring."""

    def __init__(self) -> None:
        self.index: dict[int, int] = {}
        self.lengths: list[int] = []
        self.made: dict[int, Backing] = {}


def _chunks(mm: AddressSpace, start: int, end: int) -> list[list[Any]]:
    """[[offset from start, bytes], ...] for the chunks that are not zero."""
    out: list[list[Any]] = []
    pos = start
    while pos < end:
        n = min(CHUNK, end - pos)
        data = mm.copy_in_force(pos, n)
        if data != _ZERO[:n]:
            if out and out[-1][0] + len(out[-1][1]) == pos - start:
                out[-1][1] += data  # one run for neighbours
            else:
                out.append([pos - start, data])
        pos += n
    return out


def save(mm: AddressSpace, shared: SharedTable, who: str) -> dict[str, Any]:
    """``mm`` as plain data; ``who`` names the process in errors."""
    vmas: list[dict[str, Any]] = []
    with mm.lock:
        raw = list(mm._vmas)  # noqa: SLF001 - the table is what is saved
        for v in raw:
            rec: dict[str, Any] = {"start": v.start, "end": v.end, "prot": v.prot,
                                   "shared": v.shared, "name": v.name, "vmflags": v.vmflags}
            if v.shared:
                b = v.backing
                if b is None or isinstance(b, FileBacking):
                    raise CheckpointError(
                        f"{who}: the shared file mapping {v.name or '?'} at {v.start:#x} "
                        "cannot be saved")
                idx = shared.index.get(id(b))
                if idx is None:
                    idx = shared.index[id(b)] = len(shared.lengths)
                    shared.lengths.append(b.length)
                rec["backing"] = idx
                rec["window"] = v.offset - b.offset
            rec["data"] = _chunks(mm, v.start, v.end)
            vmas.append(rec)
        return {"brk_start": mm.brk_start, "current_brk": mm.current_brk,
                "auxv": mm.saved_auxv, "vmas": vmas}


def restore(mf: MemoryFile, data: dict[str, Any], shared: SharedTable,
            lengths: list[int]) -> AddressSpace:
    """A new address space as saved; its ``pending`` maps every VMA (the
    stub applies them before the task's first instruction)."""
    mm = AddressSpace(mf)
    mm.brk_start = int(data["brk_start"])
    mm.current_brk = int(data["current_brk"])
    mm.saved_auxv = bytes(data["auxv"])
    try:
        with mm.lock:
            for rec in data["vmas"]:
                start, end = int(rec["start"]), int(rec["end"])
                if (not APP_START <= start < end <= APP_END or (start | end) % PAGE_SIZE
                        or (mm._starts and start < mm._vmas[-1].end)):  # noqa: SLF001
                    raise ValueError(f"bad VMA {start:#x}-{end:#x}")  # never the stub's
                prot, length = int(rec["prot"]) & 7, end - start
                if rec["shared"]:
                    idx = int(rec["backing"])
                    b = shared.made.get(idx)
                    if b is None:
                        blen = int(lengths[idx])
                        # a shared object: a file of its own, as VmaTable._map_new makes one
                        b = shared.made[idx] = Backing(mf.allocate_object(blen), blen)
                    else:
                        b.hold()
                    window = int(rec["window"])
                    if not 0 <= window <= b.length - length:
                        raise ValueError(f"bad shared window at {start:#x}")
                    v = Vma(start, end, prot, True, b.offset + window, str(rec["name"]), b,
                            int(rec["vmflags"]))
                else:
                    v = Vma(start, end, prot, False, mm.arena.allocate(length), str(rec["name"]),
                            None, int(rec["vmflags"]))
                i = bisect.bisect_left(mm._starts, start)  # noqa: SLF001
                mm._insert(i, [v])  # noqa: SLF001
                mm.pending.append(StubOp(OP_MAP, start, length, prot, v.offset))
            for rec in data["vmas"]:
                start = int(rec["start"])
                for off, chunk in rec["data"]:
                    if not 0 <= int(off) <= int(rec["end"]) - start - len(chunk):
                        raise ValueError(f"bad page run in VMA {start:#x}")
                    mm.copy_out_force(start + int(off), bytes(chunk))
    except BaseException:
        mm.release()
        mm.commit_frees()
        raise
    return mm
