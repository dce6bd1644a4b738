"""Tests for sentry.loader: ELF parsing, #! parsing, and loading into a fake mm.

Real binaries on this machine are cross-checked against binutils' readelf, #! lines
against the host kernel's own execve, and host_auxv against libc's getauxval.
"""

from __future__ import annotations

import errno
import mmap
import os
import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from loader_support import (
    DYN_WITH_INTERP,
    INTERP,
    SIMPLE,
    TEXT,
    FakeMM,
    build_elf,
    decode_stack,
    load,
    patched,
)

from sentry.kernel.errors import SyscallError
from sentry.loader import ElfError, host_auxv, parse_elf, parse_shebang
from sentry.loader import elf as E
from sentry.loader import loader as L
from sentry.loader.elf import shebang_argv
from sentry.mm.layout import (
    APP_END,
    APP_START,
    ELF_ET_DYN_BASE,
    INTERP_BASE,
    PAGE_SIZE,
    STACK_SIZE,
    STACK_TOP,
    page_round_up,
)

R, W, X = mmap.PROT_READ, mmap.PROT_WRITE, mmap.PROT_EXEC
BUSYBOX = Path("/bin/busybox")
LS = Path("/bin/ls")


def readelf_loads(path: Path) -> list[tuple[int, int, int, int, int]]:
    """(offset, vaddr, filesz, memsz, prot) for each LOAD, as binutils sees them."""
    out = subprocess.run(
        ["readelf", "-lW", str(path)], capture_output=True, text=True, check=True
    ).stdout
    loads = []
    for line in out.splitlines():
        f = line.split()
        if f and f[0] == "LOAD":
            flags = "".join(f[6:-1])
            prot = (
                (R if "R" in flags else 0) | (W if "W" in flags else 0) | (X if "E" in flags else 0)
            )
            loads.append((int(f[1], 16), int(f[2], 16), int(f[4], 16), int(f[5], 16), prot))
    return loads


needs_readelf = pytest.mark.skipif(shutil.which("readelf") is None, reason="no binutils")


def need(path: Path) -> bytes:
    if not path.exists():
        pytest.skip(f"{path} not installed (apt-get install -y busybox-static)")
    return path.read_bytes()


@pytest.fixture(scope="module")
def static_pie(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("spie")
    (d / "m.c").write_text("int main(void) { return 0; }\n")
    r = subprocess.run(
        ["gcc", "-static-pie", "-O", "-o", str(d / "m"), str(d / "m.c")],
        capture_output=True,
        text=True,
    )
    if r.returncode != 0:
        pytest.skip(f"gcc -static-pie unavailable: {r.stderr[:200]}")
    return d / "m"


def interp_of(path: Path) -> bytes:
    info = parse_elf(path.read_bytes())
    assert info.interp is not None
    return Path(os.fsdecode(info.interp)).read_bytes()


# ---------------------------------------------------------------- parse_elf: real binaries


@needs_readelf
@pytest.mark.parametrize("path", [BUSYBOX, LS, Path("/lib64/ld-linux-x86-64.so.2")])
def test_segments_match_readelf(path: Path) -> None:
    info = parse_elf(need(path))
    got = [(s.offset, s.vaddr, s.filesz, s.memsz, s.prot) for s in info.segments]
    assert got == readelf_loads(path)


def test_busybox_is_static_exec() -> None:
    info = parse_elf(need(BUSYBOX))
    assert info.e_type == E.ET_EXEC and info.interp is None
    assert info.phentsize == 56 and info.phoff == 64 and info.phnum >= 2
    first = info.segments[0]
    # No PT_PHDR: the table is found through the PT_LOAD holding e_phoff.
    assert info.phdr_vaddr == first.vaddr + info.phoff - first.offset
    assert not info.stack_executable
    assert any(s.prot & X for s in info.segments)


def test_ls_is_pie_with_interpreter() -> None:
    info = parse_elf(need(LS))
    assert info.e_type == E.ET_DYN
    assert info.interp is not None and info.interp.startswith(b"/") and b"ld-linux" in info.interp
    assert info.phdr_vaddr == info.phoff  # PT_PHDR at 0x40 in a PIE
    assert min(s.vaddr for s in info.segments) == 0


def test_static_pie(static_pie: Path) -> None:
    info = parse_elf(static_pie.read_bytes())
    assert info.e_type == E.ET_DYN and info.interp is None


def test_gnu_stack_flag() -> None:
    seg = [(0x400000, b"x", 1, E.PF_R)]
    assert not parse_elf(build_elf(seg)).stack_executable
    rwx = build_elf(seg, extra=[(E.PT_GNU_STACK, E.PF_R | E.PF_W | E.PF_X, 0, 0, 0, 0)])
    assert parse_elf(rwx).stack_executable
    rw = build_elf(seg, extra=[(E.PT_GNU_STACK, E.PF_R | E.PF_W, 0, 0, 0, 0)])
    assert not parse_elf(rw).stack_executable


# ---------------------------------------------------------------- parse_elf: rejections


def _reject(data: bytes, err: int) -> None:
    with pytest.raises(ElfError) as ei:
        parse_elf(data)
    assert ei.value.errno == err, str(ei.value)
    assert ei.value.message


@pytest.mark.parametrize("data", [b"", b"hello world\n", b"\x7fEL", b"#!/bin/sh\n"])
def test_not_elf(data: bytes) -> None:
    _reject(data, errno.ENOEXEC)


def test_truncated_headers() -> None:
    _reject(SIMPLE[:40], errno.ENOEXEC)  # ELF header cut: Linux sees zeroed fields
    _reject(SIMPLE[: 64 + 56 + 10], errno.EIO)  # phdr table cut: a short read


@pytest.mark.parametrize(
    "offset,fmt,value,err",
    [
        (4, "B", 1, errno.ENOEXEC),  # ELFCLASS32
        (5, "B", 2, errno.ENOEXEC),  # big-endian
        (6, "B", 0, errno.ENOEXEC),  # EV_NONE
        (16, "<H", 1, errno.ENOEXEC),  # ET_REL
        (16, "<H", 4, errno.ENOEXEC),  # ET_CORE
        (18, "<H", 183, errno.ENOEXEC),  # EM_AARCH64
        (18, "<H", 3, errno.ENOEXEC),  # EM_386
        (54, "<H", 32, errno.ENOEXEC),  # e_phentsize of Elf32_Phdr
        (56, "<H", 0, errno.ENOEXEC),  # no program headers
        (56, "<H", 1171, errno.ENOEXEC),  # table over Linux's 64 KiB
        (56, "<H", 1170, errno.EIO),  # allowed count, but past EOF
        (32, "<Q", 1 << 63, errno.EIO),  # e_phoff far past EOF
    ],
)
def test_header_field_rejected(offset: int, fmt: str, value: int, err: int) -> None:
    _reject(patched(SIMPLE, offset, fmt, value), err)


PH0 = 64  # first (PT_LOAD) phdr of SIMPLE


def test_segment_rejections() -> None:
    size = len(SIMPLE)
    _reject(patched(SIMPLE, PH0 + 8, "<Q", size + PAGE_SIZE), errno.EIO)  # offset past EOF
    big = patched(SIMPLE, PH0 + 40, "<Q", size)
    _reject(patched(big, PH0 + 32, "<Q", size), errno.EIO)  # filesz past EOF
    _reject(patched(SIMPLE, PH0 + 40, "<Q", 0x10), errno.ENOEXEC)  # filesz > memsz
    _reject(patched(SIMPLE, PH0 + 16, "<Q", 0x400001), errno.ENOEXEC)  # vaddr !~ offset
    _reject(patched(SIMPLE, PH0 + 16, "<Q", (1 << 64) - PAGE_SIZE), errno.ENOEXEC)  # wraps
    no_load = patched(SIMPLE, PH0, "<I", 0x70000000)
    _reject(patched(no_load, PH0 + 56, "<I", 0x70000000), errno.ENOEXEC)


def test_interp_rejections() -> None:
    ph = 64  # PT_INTERP comes first in DYN_WITH_INTERP
    assert parse_elf(DYN_WITH_INTERP).interp == b"/lib/ld-test.so"
    no_nul = patched(DYN_WITH_INTERP, ph + 32, "<Q", 15)
    _reject(no_nul, errno.ENOEXEC)
    _reject(patched(DYN_WITH_INTERP, ph + 32, "<Q", 1), errno.ENOEXEC)
    _reject(patched(DYN_WITH_INTERP, ph + 32, "<Q", 5000), errno.ENOEXEC)
    _reject(patched(DYN_WITH_INTERP, ph + 8, "<Q", len(DYN_WITH_INTERP)), errno.EIO)


# ---------------------------------------------------------------- parse_elf: fuzz

FIELDS = st.sampled_from(
    [
        0,
        1,
        55,
        56,
        57,
        0xFFFF,
        0x7FFFFFFF,
        1 << 32,
        1 << 63,
        (1 << 64) - 1,
        PAGE_SIZE,
        0x400000,
        len(SIMPLE),
    ]
)


def _mutate(seed: bytes, limit: int, data: st.DataObject) -> bytes:
    buf = bytearray(seed)
    for _ in range(data.draw(st.integers(0, 6))):
        off = data.draw(st.integers(0, min(limit, len(buf)) - 8))
        if data.draw(st.booleans()):
            struct.pack_into("<Q", buf, off, data.draw(FIELDS))
        else:
            buf[off] = data.draw(st.integers(0, 255))
    cut = data.draw(st.one_of(st.none(), st.integers(0, len(buf))))
    return bytes(buf if cut is None else buf[:cut])


REAL_LS = LS.read_bytes() if LS.exists() else SIMPLE


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_fuzz_parse_only_raises_elferror(data: st.DataObject) -> None:
    """Mutated and truncated headers of synthetic files and of a real PIE."""
    seed = data.draw(st.sampled_from([SIMPLE, DYN_WITH_INTERP, INTERP, REAL_LS]))
    blob = _mutate(seed, 1024, data)
    try:
        info = parse_elf(blob)
    except ElfError as exc:
        assert exc.errno in (errno.ENOEXEC, errno.EIO)
        return
    for seg in info.segments:
        assert seg.filesz <= seg.memsz and seg.offset + seg.filesz <= len(blob)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_fuzz_load_only_raises_errno_errors(data: st.DataObject) -> None:
    exe = _mutate(data.draw(st.sampled_from([SIMPLE, DYN_WITH_INTERP])), 400, data)
    interp = _mutate(INTERP, 300, data)
    try:
        mm, res = load(exe, FakeMM(max_map=64 << 20), open_interp=lambda _p: interp)
    except (ElfError, SyscallError):
        return
    assert res.stack_pointer % 16 == 0 and APP_START <= res.entry < APP_END


# ---------------------------------------------------------------- parse_shebang


@pytest.mark.parametrize(
    "line,want",
    [
        (b"#!/bin/sh\n", (b"/bin/sh", None)),
        (b"#!/bin/sh", (b"/bin/sh", None)),
        (b"#! /bin/sh -e\n", (b"/bin/sh", b"-e")),
        (b"#!/usr/bin/env python3 -u  -x\nprint()\n", (b"/usr/bin/env", b"python3 -u  -x")),
        (b"#!\t/bin/sh\t-x \t\n", (b"/bin/sh", b"-x")),
        (b"#!/bin/sh   \t \n", (b"/bin/sh", None)),
        (b"#!/bin/sh\r\n", (b"/bin/sh\r", None)),
        (b"#!/bin/sh\0 -x\n", (b"/bin/sh", None)),
        (b"#!/bin/sh -a\0b\n", (b"/bin/sh", b"-a")),
        (b"#!/bin/sh " + b"a" * 300 + b"\n", (b"/bin/sh", b"a" * 245)),
        (b"#!/bin/sh" + b" " * 300 + b"\n", (b"/bin/sh", None)),
    ],
)
def test_shebang(line: bytes, want: tuple[bytes, bytes | None]) -> None:
    assert parse_shebang(line) == want


@pytest.mark.parametrize(
    "line",
    [
        b"#!\n",
        b"#!   \t\n",
        b"#!" + b" " * 300,
        b"#!",
        b"#!/" + b"x" * 300,
        b"#!   /" + b"y" * 260 + b" z\n",
    ],
)
def test_shebang_enoexec(line: bytes) -> None:
    with pytest.raises(ElfError) as ei:
        parse_shebang(line)
    assert ei.value.errno == errno.ENOEXEC


@pytest.mark.parametrize("data", [b"", b"#", b"\x7fELF", b" #!/bin/sh\n"])
def test_not_a_script(data: bytes) -> None:
    assert parse_shebang(data) is None


ECHO_LINES = [
    b"#!/bin/echo\n",
    b"#!/bin/echo a  b\n",
    b"#!  /bin/echo\t-n x \n",
    b"#!/bin/echo " + b"q" * 300 + b"\n",
    b"#!/bin/echo x\0y\n",
    b"#!\n",
]


@pytest.mark.skipif(not Path("/bin/echo").exists(), reason="no /bin/echo")
@pytest.mark.parametrize("line", ECHO_LINES)
def test_shebang_matches_host_kernel(line: bytes, tmp_path: Path) -> None:
    """Run the script natively: /bin/echo prints the argv the kernel built."""
    script = tmp_path / "s"
    script.write_bytes(line)
    script.chmod(0o755)
    try:
        native = subprocess.run([str(script), "u v"], capture_output=True).stdout
    except OSError as exc:
        with pytest.raises(ElfError) as ei:
            parse_shebang(line)
        assert ei.value.errno == exc.errno
        return
    parsed = parse_shebang(line)
    assert parsed is not None
    argv = shebang_argv(*parsed, os.fsencode(script), [b"s", b"u v"])
    words = argv[1:]
    if words and words[0] == b"-n":
        assert native == b" ".join(words[1:])
    else:
        assert native == b" ".join(words) + b"\n"


# ---------------------------------------------------------------- load_elf


def test_load_static_exec_stack_layout() -> None:
    exe = need(BUSYBOX)
    info = parse_elf(exe)
    mm, res = load(exe)
    assert res.load_bias == 0 and res.interp_base == 0
    assert res.entry == res.exe_entry == info.entry
    assert res.phdr == info.phdr_vaddr and res.phnum == info.phnum
    top = max(s.vaddr + s.memsz for s in info.segments)
    assert res.brk_start == mm.brk == page_round_up(top)
    for seg in info.segments:
        assert mm.read(seg.vaddr, seg.filesz) == exe[seg.offset : seg.offset + seg.filesz]
        bss_end = page_round_up(seg.vaddr + seg.memsz)
        assert mm.read(seg.vaddr + seg.filesz, bss_end - seg.vaddr - seg.filesz).count(0) == (
            bss_end - seg.vaddr - seg.filesz
        )
        assert mm.prot[seg.vaddr - seg.vaddr % PAGE_SIZE] == seg.prot

    sp = res.stack_pointer
    assert sp % 16 == 0
    argv, envp, aux = decode_stack(mm, sp)
    assert argv == [b"prog", b"arg1"] and envp == [b"A=1", b"HOME=/"]
    assert mm.read(aux[L.AT_RANDOM], 16) == bytes(range(16, 32))
    assert mm.cstr(aux[L.AT_EXECFN]) == b"/bin/prog"
    assert mm.cstr(aux[L.AT_PLATFORM]) == b"x86_64"
    assert aux[L.AT_PHDR] == info.phdr_vaddr and aux[L.AT_PHENT] == 56
    assert aux[L.AT_PHNUM] == info.phnum and aux[L.AT_ENTRY] == info.entry
    assert aux[L.AT_BASE] == 0 and aux[L.AT_FLAGS] == 0 and aux[L.AT_SECURE] == 0
    assert aux[L.AT_PAGESZ] == 4096 and aux[L.AT_CLKTCK] == 100
    assert (aux[L.AT_UID], aux[L.AT_EUID], aux[L.AT_GID], aux[L.AT_EGID]) == (1000, 1001, 100, 101)
    assert (aux[L.AT_HWCAP], aux[L.AT_HWCAP2], aux[L.AT_MINSIGSTKSZ]) == (0x1234, 2, 2048)
    assert 33 not in aux  # AT_SYSINFO_EHDR: there is no vDSO
    # Linux's string area: argv[0] lowest, execfn last, one zero word at the top.
    assert mm.read(STACK_TOP - 8, 8) == bytes(8)
    assert aux[L.AT_EXECFN] == STACK_TOP - 8 - len(b"/bin/prog") - 1
    strings = mm.read(mm.u64(sp + 8), STACK_TOP - 8 - mm.u64(sp + 8))
    assert strings == b"prog\0arg1\0A=1\0HOME=/\0/bin/prog\0"
    stack = STACK_TOP - STACK_SIZE
    assert mm.prot[stack] == R | W and mm.names[stack] == "[stack]"
    assert mm.prot[STACK_TOP - PAGE_SIZE] == R | W and STACK_TOP not in mm.prot


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.binary(max_size=40).filter(lambda b: 0 not in b), max_size=6),
    st.lists(st.binary(max_size=40).filter(lambda b: 0 not in b), max_size=6),
    st.binary(min_size=1, max_size=30).filter(lambda b: 0 not in b),
)
def test_stack_roundtrip(argv: list[bytes], envp: list[bytes], execfn: bytes) -> None:
    mm, res = load(SIMPLE, argv=argv, envp=envp, execfn=execfn)
    assert res.stack_pointer % 16 == 0
    got_argv, got_envp, aux = decode_stack(mm, res.stack_pointer)
    assert got_argv == (argv or [b""]) and got_envp == envp
    assert mm.cstr(aux[L.AT_EXECFN]) == execfn
    # Linux's order below the strings: platform string, then the random bytes.
    assert aux[L.AT_RANDOM] + 16 == aux[L.AT_PLATFORM]
    assert aux[L.AT_PLATFORM] + 7 <= mm.u64(res.stack_pointer + 8)


def test_shared_page_mapped_once_with_union_prot() -> None:
    mm, res = load(SIMPLE)  # text ends at 0x401800; data starts there, same page
    assert mm.read(0x400000, len(TEXT)) == TEXT
    assert mm.read(0x401800, 0x100) == b"D" * 0x100
    assert mm.read(0x401900, 0x3000 - 0x100) == bytes(0x2F00)  # bss
    assert mm.prot[0x400000] == R | X
    assert mm.prot[0x401000] == R | W | X
    assert mm.prot[0x402000] == mm.prot[0x404000] == R | W
    assert 0x405000 not in mm.prot
    assert res.brk_start == 0x405000 and mm.calls.count("mmap") == 2  # image + stack


def test_load_pie_with_interpreter() -> None:
    exe = need(LS)
    info = parse_elf(exe)
    ld = interp_of(LS)
    ldinfo = parse_elf(ld)
    seen: list[bytes] = []

    def opener(path: bytes) -> bytes:
        seen.append(path)
        return ld

    mm, res = load(exe, open_interp=opener)
    assert seen == [info.interp]
    assert res.load_bias == ELF_ET_DYN_BASE
    assert res.exe_entry == ELF_ET_DYN_BASE + info.entry
    assert res.interp_base == INTERP_BASE
    assert res.entry == INTERP_BASE + ldinfo.entry
    assert res.phdr == ELF_ET_DYN_BASE + info.phoff
    top = max(s.vaddr + s.memsz for s in info.segments)
    assert res.brk_start == mm.brk == page_round_up(ELF_ET_DYN_BASE + top)
    _, _, aux = decode_stack(mm, res.stack_pointer)
    assert aux[L.AT_BASE] == INTERP_BASE and aux[L.AT_ENTRY] == res.exe_entry
    assert aux[L.AT_PHDR] == res.phdr and mm.read(res.phdr, 4) == exe[64:68]
    for seg in ldinfo.segments:
        got = mm.read(INTERP_BASE + seg.vaddr, seg.filesz)
        assert got == ld[seg.offset : seg.offset + seg.filesz]
        assert mm.names[INTERP_BASE + seg.vaddr - seg.vaddr % PAGE_SIZE] == os.fsdecode(
            info.interp or b""
        )


def test_load_static_pie(static_pie: Path) -> None:
    exe = static_pie.read_bytes()
    info = parse_elf(exe)
    mm, res = load(exe)
    assert res.load_bias == ELF_ET_DYN_BASE and res.interp_base == 0
    assert res.entry == res.exe_entry == ELF_ET_DYN_BASE + info.entry


def test_synthetic_interpreter_and_bss() -> None:
    mm, res = load(DYN_WITH_INTERP, open_interp=lambda p: INTERP)
    assert res.entry == INTERP_BASE + 0x20 and res.interp_base == INTERP_BASE
    assert mm.read(INTERP_BASE + 0x1300, 0x10) == b"J" * 0x10
    assert mm.read(INTERP_BASE + 0x1310, 0x2000 - 0x10) == bytes(0x1FF0)
    assert mm.prot[INTERP_BASE] == R | X and mm.prot[INTERP_BASE + 0x1000] == R | W
    assert res.brk_start == ELF_ET_DYN_BASE + PAGE_SIZE  # the program's, not ld.so's


def test_pie_bias_honours_large_alignment() -> None:
    exe = build_elf([(0, b"x" * 64, 64, E.PF_R | E.PF_X)], e_type=E.ET_DYN, align=0x200000)
    _, res = load(exe)
    assert res.load_bias % 0x200000 == 0 and res.load_bias <= ELF_ET_DYN_BASE


def test_executable_stack() -> None:
    exe = build_elf(
        [(0x400000, b"x", 1, E.PF_R | E.PF_X)],
        extra=[(E.PT_GNU_STACK, E.PF_R | E.PF_W | E.PF_X, 0, 0, 0, 0)],
    )
    mm, _ = load(exe)
    assert mm.prot[STACK_TOP - PAGE_SIZE] == R | W | X


def _load_error(exe: bytes, **kw: object) -> tuple[FakeMM, ElfError]:
    mm = FakeMM()
    with pytest.raises(ElfError) as ei:
        load(exe, mm, **kw)
    return mm, ei.value


@pytest.mark.parametrize(
    "opener,err",
    [
        (None, errno.ENOENT),
        (lambda p: (_ for _ in ()).throw(FileNotFoundError(errno.ENOENT, "gone")), errno.ENOENT),
        (lambda p: (_ for _ in ()).throw(SyscallError(errno.EACCES)), errno.EACCES),
        (lambda p: b"#!/bin/sh\n", errno.ELIBBAD),
        (lambda p: SIMPLE, errno.ELIBBAD),  # ET_EXEC interpreter
        (lambda p: DYN_WITH_INTERP, errno.ELIBBAD),  # interpreter wants an interpreter
        (lambda p: INTERP[:100], errno.ELIBBAD),  # truncated
    ],
)
def test_interpreter_errors(opener: object, err: int) -> None:
    mm, exc = _load_error(DYN_WITH_INTERP, open_interp=opener)
    assert exc.errno == err and b"ld-test" in str(exc).encode()
    assert mm.calls == []  # refused before touching the address space


def test_e2big() -> None:
    limit = L.MAX_ARG_STRLEN
    load(SIMPLE, argv=[b"a" * (limit - 1)])
    for kw in (
        {"argv": [b"a" * limit]},
        {"envp": [b"e" * (limit - 1)] * 17},
        {"execfn": b"f" * limit},
    ):
        mm, exc = _load_error(SIMPLE, **kw)
        assert exc.errno == errno.E2BIG and mm.calls == []
    with pytest.raises(ValueError):
        load(SIMPLE, argv=[b"a\0b"])


@pytest.mark.parametrize(
    "exe,err",
    [
        (build_elf([(0x1000, b"x", 1, E.PF_R)]), errno.ENOMEM),  # below mmap_min_addr
        (build_elf([(APP_END - PAGE_SIZE, b"x", 2 * PAGE_SIZE, E.PF_R)]), errno.ENOMEM),
        (build_elf([(STACK_TOP - PAGE_SIZE, b"x", 1, E.PF_R)]), errno.ENOMEM),  # on the stack
        (build_elf([(0x400000, b"x", 1, E.PF_R)], entry=APP_END + 5), errno.EINVAL),
        (build_elf([(0x400000, b"", 0, E.PF_R)]), errno.ENOEXEC),  # nothing to load
    ],
)
def test_layout_errors(exe: bytes, err: int) -> None:
    mm, exc = _load_error(exe)
    assert exc.errno == err and mm.calls == []


def test_interpreter_colliding_with_program() -> None:
    exe = build_elf([(INTERP_BASE, b"x", 1, E.PF_R)], interp=b"/ld\0")
    mm, exc = _load_error(exe, open_interp=lambda p: INTERP)
    assert exc.errno == errno.ENOMEM and mm.calls == []


def test_mm_failure_passes_through() -> None:
    with pytest.raises(SyscallError):
        load(build_elf([(0x400000, b"x", 128 << 20, E.PF_R)]), FakeMM(max_map=64 << 20))


# ---------------------------------------------------------------- host_auxv


def test_host_auxv_matches_ld_show_auxv() -> None:
    """ld.so prints the kernel's raw auxv (getauxval would not do: glibc rewrites
    AT_HWCAP on x86-64)."""
    out = subprocess.run(
        ["/bin/true"], env={"LD_SHOW_AUXV": "1"}, capture_output=True, text=True
    ).stdout
    shown = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
    if "AT_HWCAP" not in shown:
        pytest.skip("the host's dynamic loader does not support LD_SHOW_AUXV")
    got = host_auxv()
    assert set(got) <= {L.AT_HWCAP, L.AT_HWCAP2, L.AT_MINSIGSTKSZ}
    assert got[L.AT_HWCAP] == int(shown["AT_HWCAP"].strip(), 16)
    if "AT_HWCAP2" in shown:
        assert got[L.AT_HWCAP2] == int(shown["AT_HWCAP2"].strip(), 16)
    if "AT_MINSIGSTKSZ" in shown:
        assert got[L.AT_MINSIGSTKSZ] == int(shown["AT_MINSIGSTKSZ"].strip())
    assert host_auxv() is got  # read once
