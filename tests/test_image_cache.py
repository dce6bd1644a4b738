"""Program text kept across execs (sentry/mm/image_cache.py) with the real loader
and memory manager: a second load of the same file maps the first load's
read-only pages instead of copying, writable pages stay private, a changed file
is loaded afresh, and pages are freed once neither the cache nor a process
holds them."""

from __future__ import annotations

import mmap
from pathlib import Path

import pytest
from helpers import run_native, run_sandbox

from sentry.loader.loader import load_elf
from sentry.mm.address_space import AddressSpace
from sentry.mm.image_cache import ImageCache
from sentry.mm.memfile import MemoryFile
from sentry.mm.vma_table import OP_MAP

BUSYBOX = Path("/bin/busybox")


def _load(mf: MemoryFile, data: bytes, cache: ImageCache | None) -> AddressSpace:
    mm = AddressSpace(mf)
    load_elf(mm, data, argv=[b"busybox"], envp=[], execfn=b"/bin/busybox", open_interp=None,
             creds=(0, 0, 0, 0), hwcap=0, hwcap2=0, minsigstksz=2048, random16=bytes(16),
             image_cache=cache)
    return mm


def _image_vmas(mm: AddressSpace) -> list:
    return [v for v in mm.vmas() if v.name == "/bin/busybox"]


def _contents(mm: AddressSpace) -> list[bytes]:
    return [mm.copy_in(v.start, v.end - v.start) for v in _image_vmas(mm)
            if v.prot & mmap.PROT_READ]


@pytest.fixture
def exe() -> bytes:
    if not BUSYBOX.is_file():
        pytest.skip("needs busybox-static (apt-get install busybox-static)")
    return BUSYBOX.read_bytes()


def test_second_load_maps_the_first_loads_text(mf: MemoryFile, exe: bytes) -> None:
    cache = ImageCache(mf)
    used = mf.used
    plain = _load(mf, exe, None)
    plain_grew = mf.used - used
    first = _load(mf, exe, cache)
    used = mf.used
    second = _load(mf, bytes(bytearray(exe)), cache)  # equal bytes, another object
    assert cache.hits == 1
    shared = [v for v in _image_vmas(second) if not v.prot & mmap.PROT_WRITE]
    assert shared and all(v.offset in {w.offset for w in _image_vmas(first)} for v in shared)
    saved = plain_grew - (mf.used - used)
    assert saved == sum(v.end - v.start for v in shared), "read-only pages not allocated again"
    assert _contents(second) == _contents(first) == _contents(plain)
    assert [op.kind for op in second.take_pending()].count(OP_MAP) >= len(shared)
    for mm in (plain, first, second):
        mm.release()


def test_writes_to_cached_text_stay_private(mf: MemoryFile, exe: bytes) -> None:
    cache = ImageCache(mf)
    first = _load(mf, exe, cache)
    second = _load(mf, exe, cache)
    text = next(v for v in _image_vmas(second) if v.prot & mmap.PROT_EXEC)
    before = first.copy_in(text.start, 16)
    second.mprotect(text.start, mmap.PAGESIZE, text.prot | mmap.PROT_WRITE)
    second.copy_out(text.start, b"\xcc" * 16)
    assert second.copy_in(text.start, 16) == b"\xcc" * 16
    assert first.copy_in(text.start, 16) == before
    third = _load(mf, exe, cache)
    assert third.copy_in(text.start, 16) == before
    for mm in (first, second, third):
        mm.release()


def test_a_changed_file_is_loaded_afresh(mf: MemoryFile, exe: bytes) -> None:
    cache = ImageCache(mf)
    first = _load(mf, exe, cache)
    text = next(v for v in _image_vmas(first) if v.prot & mmap.PROT_EXEC)
    file_off = len(exe) // 2  # inside the text segment of a static busybox
    changed = bytearray(exe)
    changed[file_off] ^= 0xFF
    second = _load(mf, bytes(changed), cache)
    assert cache.hits == 0
    assert _contents(second) != _contents(first)
    assert text.start < 1 << 47
    first.release()
    second.release()


def test_pages_freed_when_neither_cache_nor_process_holds_them(mf: MemoryFile,
                                                                exe: bytes) -> None:
    cache = ImageCache(mf)
    mms = [_load(mf, exe, cache) for _ in range(3)]
    for mm in mms:
        mm.release()
    assert mf.used > 0, "the cache keeps the text"
    cache.clear()
    assert mf.used == 0
    small = ImageCache(mf, max_bytes=1)  # nothing fits: nothing is kept
    mm = _load(mf, exe, small)
    mm.release()
    assert mf.used == 0


@pytest.mark.sandbox
def test_an_executable_changed_in_place_runs_as_changed(exe: bytes) -> None:
    """Same size, same inode, new bytes (e_machine flipped by dd): the next
    exec must see the new file (ENOEXEC, then the shell's script fallback), not
    the bytes kept from the last exec. Differential: as natively."""
    script = (
        "D=$(/bin/busybox mktemp -d) && B=$D/busybox && /bin/busybox cp /bin/busybox $B && "
        "$B echo first && $B echo again && "
        "printf '\\377' | /bin/busybox dd of=$B bs=1 seek=18 conv=notrunc 2>/dev/null; "
        "$B echo stale 2>/dev/null; echo status=$?; /bin/busybox rm -rf $D"
    )
    argv = ["/bin/busybox", "sh", "-c", script]
    native, boxed = run_native(argv), run_sandbox(argv)
    assert native.out.splitlines()[:2] == ["first", "again"]
    assert "stale" not in native.out
    assert boxed.out == native.out, boxed.describe()
    assert (boxed.returncode, boxed.err) == (native.returncode, native.err), boxed.describe()


def test_kept_file_bytes_are_bounded(mf: MemoryFile) -> None:
    cache = ImageCache(mf, max_bytes=4096)
    cache.keep_file((1,), b"a" * 2000)  # more than a quarter: not kept
    assert cache.file_bytes((1,)) is None
    cache.keep_file((2,), b"b" * 1000)
    for k in range(3, 8):
        cache.keep_file((k,), b"c" * 1000)
    assert cache.file_bytes((2,)) is None, "least recently used out"
    assert cache.file_bytes((7,)) == b"c" * 1000
    cache.clear()
    assert cache.file_bytes((7,)) is None
