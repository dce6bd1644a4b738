"""What the loader's tests share: a fake address space and synthetic ELF files.

Why a module of its own: tests/test_loader.py and tests/test_fuzz_loader.py
both load programs into `FakeMM` (a dict of pages, stricter than the real
memory manager) and start from the same hand-built ELF images; the tests
themselves stay in their files.
"""

from __future__ import annotations

import errno
import mmap
import struct

from sentry.kernel.errors import SyscallError
from sentry.loader import LoadResult, load_elf
from sentry.loader import elf as E
from sentry.loader import loader as L
from sentry.mm.layout import APP_END, APP_START, PAGE_SIZE, page_round_up

# ---------------------------------------------------------------- fake address space


class FakeMM:
    """The memory manager's interface over a dict of pages.

    Stricter than the real one on purpose: a MAP_FIXED over an already mapped page
    fails, because the loader promises to map each page once (a second mapping
    would zero bytes already copied there).
    """

    def __init__(self, max_map: int = 1 << 40) -> None:
        self.prot: dict[int, int] = {}
        self.mem: dict[int, bytearray] = {}
        self.names: dict[int, str] = {}
        self.calls: list[str] = []
        self.brk: int | None = None
        self.max_map = max_map

    def mmap(self, addr: int, length: int, prot: int, flags: int, *, name: str = "") -> int:
        self.calls.append("mmap")
        assert flags & mmap.MAP_ANONYMOUS and flags & mmap.MAP_PRIVATE
        assert flags & L.MAP_FIXED and addr % PAGE_SIZE == 0 and length > 0
        if length > self.max_map:
            raise SyscallError(errno.ENOMEM)
        assert APP_START <= addr and addr + length <= APP_END
        pages = range(addr, addr + page_round_up(length), PAGE_SIZE)
        assert not any(p in self.prot for p in pages), f"remapped a page in {addr:#x}"
        for p in pages:
            self.prot[p] = prot
            self.names[p] = name
        return addr

    def _pages(self, addr: int, length: int) -> range:
        pages = range(addr - addr % PAGE_SIZE, addr + length, PAGE_SIZE)
        if not all(p in self.prot for p in pages):
            raise SyscallError(errno.EFAULT)
        return pages

    def mprotect(self, addr: int, length: int, prot: int) -> None:
        self.calls.append("mprotect")
        for p in self._pages(addr, length):
            self.prot[p] = prot

    def munmap(self, addr: int, length: int) -> None:
        raise AssertionError("the loader never unmaps")

    def copy_out_force(self, addr: int, data: bytes) -> None:
        self.calls.append("copy_out_force")
        self._pages(addr, len(data))
        done = 0
        while done < len(data):
            page, off = divmod(addr + done, PAGE_SIZE)
            n = min(PAGE_SIZE - off, len(data) - done)
            buf = self.mem.setdefault(page * PAGE_SIZE, bytearray(PAGE_SIZE))
            buf[off : off + n] = data[done : done + n]
            done += n

    def set_brk_start(self, addr: int) -> None:
        self.calls.append("set_brk_start")
        self.brk = addr

    def read(self, addr: int, length: int) -> bytes:
        self._pages(addr, length)
        out = bytearray()
        while len(out) < length:
            page, off = divmod(addr + len(out), PAGE_SIZE)
            n = min(PAGE_SIZE - off, length - len(out))
            buf = self.mem.get(page * PAGE_SIZE, bytes(PAGE_SIZE))
            out += buf[off : off + n]
        return bytes(out)

    def u64(self, addr: int) -> int:
        return int.from_bytes(self.read(addr, 8), "little")

    def cstr(self, addr: int) -> bytes:
        out = bytearray()
        while (b := self.read(addr + len(out), 1)) != b"\0":
            out += b
        return bytes(out)


def decode_stack(mm: FakeMM, sp: int) -> tuple[list[bytes], list[bytes], dict[int, int]]:
    """Read argc/argv/envp/auxv back the way libc's _start does."""
    argc = mm.u64(sp)
    p = sp + 8
    argv = [mm.cstr(mm.u64(p + 8 * i)) for i in range(argc)]
    p += 8 * argc
    assert mm.u64(p) == 0
    p += 8
    envp = []
    while (ptr := mm.u64(p)) != 0:
        envp.append(mm.cstr(ptr))
        p += 8
    p += 8
    auxv: dict[int, int] = {}
    while (key := mm.u64(p)) != L.AT_NULL:
        assert key not in auxv, f"duplicate auxv key {key}"
        auxv[key] = mm.u64(p + 8)
        p += 16
    return argv, envp, auxv


# ---------------------------------------------------------------- synthetic ELF files


def build_elf(
    segs: list[tuple[int, bytes, int, int]],
    *,
    e_type: int = E.ET_EXEC,
    entry: int | None = None,
    interp: bytes | None = None,
    extra: list[tuple[int, int, int, int, int, int]] = (),  # type: ignore[assignment]
    align: int = PAGE_SIZE,
) -> bytes:
    """An ELF with PT_LOADs (vaddr, data, memsz, p_flags), data placed congruently
    to vaddr modulo the page; ``extra`` phdrs are (type, flags, off, vaddr, filesz, memsz)."""
    nph = len(segs) + len(extra) + (interp is not None)
    cur = 64 + 56 * nph
    blob = bytearray(cur)
    phdrs: list[bytes] = []
    if interp is not None:
        phdrs.append(E._PHDR.pack(E.PT_INTERP, E.PF_R, cur, 0, 0, len(interp), len(interp), 1))
        blob += interp
        cur += len(interp)
    for vaddr, data, memsz, flags in segs:
        off = cur + (vaddr - cur) % PAGE_SIZE
        blob += bytes(off - cur) + data
        cur = off + len(data)
        phdrs.append(E._PHDR.pack(E.PT_LOAD, flags, off, vaddr, vaddr, len(data), memsz, align))
    for ptype, flags, off, vaddr, filesz, memsz in extra:
        phdrs.append(E._PHDR.pack(ptype, flags, off, vaddr, vaddr, filesz, memsz, 8))
    if entry is None:
        entry = segs[0][0]
    ident = E.ELFMAG + bytes([2, 1, 1]) + bytes(9)
    blob[0:64] = ident + E._EHDR.pack(
        e_type, E.EM_X86_64, 1, entry, 64, 0, 0, 64, 56, nph, 64, 0, 0
    )
    blob[64 : 64 + 56 * nph] = b"".join(phdrs)
    return bytes(blob)


def patched(data: bytes, offset: int, fmt: str, value: int) -> bytes:
    out = bytearray(data)
    struct.pack_into(fmt, out, offset, value)
    return bytes(out)


TEXT = bytes(range(256)) * 24  # 0x1800 bytes
SIMPLE = build_elf(
    [
        (0x400000, TEXT, len(TEXT), E.PF_R | E.PF_X),
        (0x401800, b"D" * 0x100, 0x3000, E.PF_R | E.PF_W),
    ],
    entry=0x400010,
)
INTERP = build_elf(
    [(0, b"I" * 0x300, 0x300, E.PF_R | E.PF_X), (0x1300, b"J" * 0x10, 0x2000, E.PF_R | E.PF_W)],
    e_type=E.ET_DYN,
    entry=0x20,
)
DYN_WITH_INTERP = build_elf(
    [(0, b"P" * 0x200, 0x200, E.PF_R | E.PF_X)],
    e_type=E.ET_DYN,
    entry=0x40,
    interp=b"/lib/ld-test.so\0",
)


def load(exe: bytes, mm: FakeMM | None = None, **kw: object) -> tuple[FakeMM, LoadResult]:
    mm = mm or FakeMM()
    args: dict[str, object] = dict(
        argv=[b"prog", b"arg1"],
        envp=[b"A=1", b"HOME=/"],
        execfn=b"/bin/prog",
        open_interp=None,
        creds=(1000, 1001, 100, 101),
        hwcap=0x1234,
        hwcap2=2,
        minsigstksz=2048,
        random16=bytes(range(16, 32)),
    )
    args.update(kw)
    return mm, load_elf(mm, exe, **args)  # type: ignore[arg-type]
