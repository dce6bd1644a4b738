"""A shared-mapped file's pages are shared objects of its own (docs/security.md,
"Memory isolation"): never in the common arena (which no stub holds), never
in another file's arena, and no run of the file straddles two of its arenas
as it grows (a stub maps one run from one descriptor)."""

from __future__ import annotations

import os

from sentry.mm.filemap import CHUNK, FileBacking
from sentry.mm.memfile import MemoryFile


def _arenas(mf: MemoryFile, b: FileBacking, size: int) -> list[object]:
    """The arena of each run of the file's first ``size`` bytes, checking
    that each run lies in one shared object's arena."""
    out = []
    for off, n in b.runs(0, size):
        arena = mf.arena_of(off)
        assert arena.shared_object, (hex(off), arena)
        assert mf.arena_of(off + n - 1) is arena, "a run straddles two arenas"
        out.append(arena)
    return out


def test_file_pages_live_in_objects_of_their_own() -> None:
    with MemoryFile(1 << 30) as mf:
        a, b = FileBacking(mf), FileBacking(mf)
        a.write(0, b"secret-a")
        b.write(0, b"secret-b")
        assert mf.common.used == 0
        assert not set(map(id, _arenas(mf, a, CHUNK))) & set(map(id, _arenas(mf, b, CHUNK)))
        # Interleaved growth: each file's next pieces never land in the other's.
        for k in range(1, 12):
            a.write(k * CHUNK, b"a")
            b.write(k * CHUNK, b"b")
        seen_a = _arenas(mf, a, 12 * CHUNK)
        seen_b = _arenas(mf, b, 12 * CHUNK)
        assert not set(map(id, seen_a)) & set(map(id, seen_b))
        assert a.read(0, 8) == b"secret-a" and b.read(11 * CHUNK, 1) == b"b"
        # SEEK_DATA/SEEK_HOLE read each piece's own file.
        assert a.seek_data(4096, False, 12 * CHUNK) == CHUNK
        assert a.seek_data(0, True, 12 * CHUNK) == 4096
        for off, n in a.take_ranges() + b.take_ranges():
            mf.free(off, n)
        assert mf.used == 0
        # The last free of each arena closed its file.
        assert [x for x in mf.arenas() if x.shared_object] == []
        assert all(x.closed for x in seen_a + seen_b)


def test_objects_are_never_contiguous() -> None:
    """A guard page follows each object's window: the next object's first
    offset never continues the last one's (VMAs and runs merge by offset)."""
    with MemoryFile(1 << 30) as mf:
        first = mf.allocate_object(CHUNK)
        second = mf.allocate_object(CHUNK)
        assert second != first + CHUNK
        fd, local = mf.fd_at(second)
        assert local == 0 and fd != mf.fd_at(first)[0]
        assert os.fstat(fd).st_size == CHUNK
        mf.free(first, CHUNK)
        mf.free(second, CHUNK)
