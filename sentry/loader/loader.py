"""Load a parsed ELF executable (and its interpreter) into an address space.

This is the Sentry's binfmt_elf: it copies PT_LOAD segments into anonymous memory,
places a PIE and the ELF interpreter, sets the brk start and builds the initial
stack (strings, AT_RANDOM, auxv, envp, argv, argc) exactly as Linux lays it out,
so that glibc, musl and ld.so find what they expect.

Facts that shape this module:

- Segments are copied, not file-mapped: the Sentry opens no host file after
  start-up and application memory lives in the memory memfd, so a "file mapping"
  is anonymous memory filled with the file's bytes.  Fresh anonymous memory is
  zero, which gives bss for free.  Bytes of a page that belong to no segment are
  zero here, where Linux would show the file's bytes; nothing sane reads them.
- Two segments may share a page (the end of .text and the start of .rodata, say).
  Each page is mapped once, and ends up with the union of the protections of the
  segments that touch it, as Linux's page-granular mmap effectively gives.  Where
  two segments overlap byte-wise, the later one in the file wins, as a later
  MAP_FIXED would.
- Everything that can fail because of the file or the arguments is checked
  before the first mmap, so on such a failure the address space is untouched.
  Failures after that (the memory manager running out) leave a half-built image
  that the caller must discard, as Linux kills a task past the point of no return.
- Errno choices: a layout that does not fit the application's part of the address
  space, or collides with the stack or the interpreter, is ENOMEM (what Linux's
  MAP_FIXED gets above TASK_SIZE; below mmap_min_addr it would be EPERM, but one
  "does not fit" errno is simpler to reason about).  An entry point outside the
  application range is EINVAL, as Linux's BAD_ADDR check.  Any problem with the
  interpreter file is ELIBBAD; a missing interpreter keeps the opener's errno
  (ENOENT).  Argument strings over the limits are E2BIG.
- Linux randomises the stack top, the PIE base and the brk; we do not (layout.py
  fixes them), which keeps runs reproducible.  AT_RANDOM still carries the
  caller's random bytes, since libc seeds its stack protector from them.
"""

from __future__ import annotations

import errno
import functools
import mmap
import struct
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from sentry import vdso
from sentry.kernel.errors import SyscallError
from sentry.loader.elf import ET_DYN, PHDR_SIZE, ElfError, ElfInfo, Segment, parse_elf
from sentry.mm.layout import (
    APP_END,
    APP_START,
    ELF_ET_DYN_BASE,
    INTERP_BASE,
    PAGE_SIZE,
    STACK_SIZE,
    STACK_TOP,
    page_round_down,
    page_round_up,
)
from shm.records import record

MAP_FIXED = 0x10  # Linux x86-64; Python's mmap module does not export it

# Auxiliary vector keys (include/uapi/linux/auxvec.h, getauxval(3)).
AT_NULL = 0
AT_PHDR = 3
AT_PHENT = 4
AT_PHNUM = 5
AT_PAGESZ = 6
AT_BASE = 7
AT_FLAGS = 8
AT_ENTRY = 9
AT_UID = 11
AT_EUID = 12
AT_GID = 13
AT_EGID = 14
AT_PLATFORM = 15
AT_HWCAP = 16
AT_CLKTCK = 17
AT_SECURE = 23
AT_RANDOM = 25
AT_HWCAP2 = 26
AT_EXECFN = 31
AT_SYSINFO_EHDR = 33
AT_MINSIGSTKSZ = 51

PLATFORM = b"x86_64"
CLK_TCK = 100
MAX_ARG_STRLEN = 32 * PAGE_SIZE  # per string, counting its NUL (Linux)
ARG_MAX = 32 * PAGE_SIZE  # the floor Linux keeps for the total, whatever the rlimit
STACK_LIMIT = STACK_SIZE  # RLIMIT_STACK; strings + pointers may use a quarter of it

_Q = struct.Struct("<Q")
_U64_MASK = (1 << 64) - 1


class AddressSpaceLike(Protocol):
    """The part of sentry.mm's AddressSpace the loader uses (kept structural so the
    loader does not depend on the memory manager's concrete class)."""

    def mmap(self, addr: int, length: int, prot: int, flags: int, *, name: str = "") -> int: ...

    def mprotect(self, addr: int, length: int, prot: int) -> None: ...

    def munmap(self, addr: int, length: int) -> None: ...

    def copy_out_force(self, addr: int, data: bytes) -> None: ...

    def set_brk_start(self, addr: int) -> None: ...


@record(frozen=True, slots=True)
class LoadResult:
    """Where the new image lives; what the task's registers start from."""

    entry: int  # first instruction: the interpreter's entry if any, else the program's
    stack_pointer: int  # points at argc, 16-byte aligned
    brk_start: int
    load_bias: int  # added to the program's p_vaddr (0 for ET_EXEC), modulo 2**64
    interp_base: int  # the interpreter's bias (AT_BASE), 0 without an interpreter
    phdr: int  # AT_PHDR
    phnum: int
    exe_entry: int  # AT_ENTRY: the program's own entry, biased


@record(frozen=True, slots=True)
class _Placed:
    """An ELF image with its bias chosen and its page range computed."""

    info: ElfInfo
    data: memoryview
    bias: int
    start: int  # page-aligned lowest mapped address
    end: int  # page-aligned end of the highest segment

    def overlaps(self, start: int, end: int) -> bool:
        return self.start < end and start < self.end


def _max_alignment(segments: Sequence[Segment]) -> int:
    """Largest power-of-two p_align, at least a page (Linux's maximum_alignment)."""
    align = PAGE_SIZE
    for seg in segments:
        if seg.align > align and seg.align & (seg.align - 1) == 0:
            align = seg.align
    return align


def _place(info: ElfInfo, data: memoryview, base: int, what: str) -> _Placed:
    """Choose the bias (ET_DYN lands its lowest page at ``base``) and check the
    image fits the application's address range."""
    loaded = [s for s in info.segments if s.memsz]
    if not loaded:
        raise ElfError(errno.ENOEXEC, f"{what}: every PT_LOAD is empty")
    low = page_round_down(min(s.vaddr for s in loaded))
    high = page_round_up(max(s.vaddr + s.memsz for s in loaded))
    bias = 0
    if info.e_type == ET_DYN:
        bias = (base - low) & ~(_max_alignment(loaded) - 1)
    start, end = low + bias, high + bias
    if start < APP_START or end > APP_END:
        raise ElfError(
            errno.ENOMEM,
            f"{what}: image [{start:#x}, {end:#x}) outside the application address range",
        )
    return _Placed(info=info, data=data, bias=bias, start=start, end=end)


def _page_plan(segments: Sequence[Segment], bias: int) -> list[tuple[int, int, int]]:
    """Split the segments' page ranges into disjoint runs ``(start, end, prot)``,
    where prot is the union over the segments touching that run."""
    edges: list[tuple[int, int, int]] = []  # (address, +1 open / -1 close, prot)
    for seg in segments:
        if seg.memsz:
            edges.append((page_round_down(seg.vaddr + bias), 1, seg.prot))
            edges.append((page_round_up(seg.vaddr + seg.memsz + bias), -1, seg.prot))
    edges.sort()
    runs: list[tuple[int, int, int]] = []
    active: dict[int, int] = {}  # prot -> how many open segments have it
    prev = 0
    for addr, kind, prot in edges:
        if active and addr > prev:
            union = 0
            for p in active:
                union |= p
            if runs and runs[-1][1] == prev and runs[-1][2] == union:
                runs[-1] = (runs[-1][0], addr, union)
            else:
                runs.append((prev, addr, union))
        active[prot] = active.get(prot, 0) + kind
        if not active[prot]:
            del active[prot]
        prev = addr
    return runs


class ImageCacheLike(Protocol):
    """sentry.mm.image_cache.ImageCache as the loader sees it."""

    def attach(self, mm: Any, data: bytes, bias: int, name: str) -> bool: ...

    def remember(self, mm: Any, data: bytes, bias: int, start: int, end: int) -> None: ...


def _file_bytes(placed: _Placed) -> bytes | None:
    """The whole file as bytes (the cache's key), when the image is a view of one."""
    obj = placed.data.obj
    return obj if isinstance(obj, bytes) and len(obj) == placed.data.nbytes else None


def _map_image(mm: AddressSpaceLike, placed: _Placed, name: str,
               cache: ImageCacheLike | None = None) -> None:
    """Map each page once (RW), copy the file bytes, then set final protections.

    With ``cache``, the read-only pages of a file loaded before are mapped from
    it and only the writable runs are filled; a first load leaves its read-only
    pages there."""
    runs = _page_plan(placed.info.segments, placed.bias)
    data = _file_bytes(placed) if cache is not None else None
    if data is not None and cache is not None and cache.attach(mm, data, placed.bias, name):
        _fill_runs(mm, placed, [r for r in runs if r[2] & mmap.PROT_WRITE], name)
        return
    _fill_runs(mm, placed, runs, name)
    if data is not None and cache is not None:
        cache.remember(mm, data, placed.bias, placed.start, placed.end)


def _fill_runs(mm: AddressSpaceLike, placed: _Placed, runs: list[tuple[int, int, int]],
               name: str) -> None:
    """Map ``runs`` (RW), copy the file bytes that fall in them, set their protections."""
    rw = mmap.PROT_READ | mmap.PROT_WRITE
    flags = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | MAP_FIXED
    span_start: int | None = None
    span_end = 0
    for start, end, _prot in runs:  # merge adjacent runs into one mapping
        if span_start is not None and start == span_end:
            span_end = end
            continue
        if span_start is not None:
            mm.mmap(span_start, span_end - span_start, rw, flags, name=name)
        span_start, span_end = start, end
    if span_start is not None:
        mm.mmap(span_start, span_end - span_start, rw, flags, name=name)
    for seg in placed.info.segments:
        if not seg.filesz:
            continue
        lo, hi = seg.vaddr + placed.bias, seg.vaddr + placed.bias + seg.filesz
        for start, end, _prot in runs:
            a, b = max(lo, start), min(hi, end)
            if a < b:
                off = seg.offset + a - lo
                mm.copy_out_force(a, bytes(placed.data[off : off + b - a]))
    for start, end, prot in runs:
        if prot != rw:
            mm.mprotect(start, end - start, prot)


def _open_interpreter(path: bytes, open_interp: Callable[[bytes], bytes] | None) -> memoryview:
    shown = path.decode(errors="backslashreplace")
    if open_interp is None:
        raise ElfError(errno.ENOENT, f"interpreter {shown}: no file opener given")
    try:
        return memoryview(open_interp(path)).cast("B")
    except ElfError:
        raise
    except (SyscallError, OSError) as exc:
        err = exc.errno if isinstance(exc.errno, int) and exc.errno > 0 else errno.EIO
        raise ElfError(err, f"interpreter {shown}: {exc}") from exc


def _parse_interpreter(data: memoryview, path: bytes) -> ElfInfo:
    """Anything wrong with the interpreter file is ELIBBAD, as in gVisor and Linux."""
    shown = path.decode(errors="backslashreplace")
    try:
        info = parse_elf(data)
    except ElfError as exc:
        raise ElfError(errno.ELIBBAD, f"interpreter {shown}: {exc.message}") from exc
    if info.e_type != ET_DYN:
        raise ElfError(errno.ELIBBAD, f"interpreter {shown} is not ET_DYN")
    if info.interp is not None:
        raise ElfError(errno.ELIBBAD, f"interpreter {shown} has its own PT_INTERP")
    return info


def _check_strings(argv: Sequence[bytes], envp: Sequence[bytes], execfn: bytes) -> None:
    """E2BIG exactly where Linux's prepare_arg_pages/copy_strings would say it."""
    for s in (execfn, *argv, *envp):
        if 0 in s:
            raise ValueError("argument strings must not contain NUL bytes")
        if len(s) + 1 > MAX_ARG_STRLEN:
            raise ElfError(errno.E2BIG, f"argument string of {len(s)} bytes is too long")
    limit = max(min(STACK_LIMIT // 4, (8 << 20) // 4 * 3), ARG_MAX)
    pointers = (max(len(argv), 1) + len(envp)) * 8
    strings = sum(len(s) + 1 for s in (execfn, *argv, *envp))
    if pointers + strings > limit:
        raise ElfError(errno.E2BIG, f"arguments and environment exceed {limit} bytes")


def _build_stack(
    argv: Sequence[bytes],
    envp: Sequence[bytes],
    execfn: bytes,
    random16: bytes,
    aux: list[tuple[int, int]],
) -> tuple[int, bytes]:
    """Lay out the initial stack below STACK_TOP; return (sp, bytes from sp to top).

    From the top down, as Linux's bprm and create_elf_tables leave it: an 8-byte
    zero word, execfn, envp strings, argv strings (argv[0] lowest), alignment to
    16, the platform string, the 16 AT_RANDOM bytes, then (16-byte aligned at the
    bottom) argc, argv pointers, NULL, envp pointers, NULL, auxv pairs, AT_NULL.
    Auxv entries whose value is an address into this area are given with
    placeholder keys and filled in here.
    """
    p = STACK_TOP - 8
    p -= len(execfn) + 1
    execfn_at = p
    env_at: list[int] = []
    for s in reversed(envp):
        p -= len(s) + 1
        env_at.append(p)
    env_at.reverse()
    arg_at: list[int] = []
    for s in reversed(argv):
        p -= len(s) + 1
        arg_at.append(p)
    arg_at.reverse()
    strings_at = p
    p &= ~15
    p -= len(PLATFORM) + 1
    platform_at = p
    p -= 16
    random_at = p

    resolved = {AT_PLATFORM: platform_at, AT_RANDOM: random_at, AT_EXECFN: execfn_at}
    auxv = [(k, resolved.get(k, v)) for k, v in aux] + [(AT_NULL, 0)]
    words = [len(argv), *arg_at, 0, *env_at, 0]
    for k, v in auxv:
        words += [k, v]
    sp = (p - 8 * len(words)) & ~15

    image = bytearray(STACK_TOP - sp)
    table = b"".join(_Q.pack(w & _U64_MASK) for w in words)
    image[0 : len(table)] = table
    image[random_at - sp : random_at - sp + 16] = random16
    image[platform_at - sp : platform_at - sp + len(PLATFORM)] = PLATFORM
    blob = b"".join(s + b"\0" for s in (*argv, *envp, execfn))
    image[strings_at - sp : strings_at - sp + len(blob)] = blob
    return sp, bytes(image)


def load_elf(
    mm: AddressSpaceLike,
    exe: bytes | bytearray | memoryview,
    *,
    argv: list[bytes],
    envp: list[bytes],
    execfn: bytes,
    open_interp: Callable[[bytes], bytes] | None,
    creds: tuple[int, ...],
    hwcap: int,
    hwcap2: int,
    minsigstksz: int,
    random16: bytes,
    image_cache: ImageCacheLike | None = None,
) -> LoadResult:
    """Load ``exe`` (and its PT_INTERP) into ``mm`` and build the initial stack.

    ``mm`` should be a fresh address space.  ``creds`` is (uid, euid, gid, egid),
    optionally with a fifth item, AT_SECURE;
    ``hwcap``/``hwcap2``/``minsigstksz`` come from :func:`host_auxv` so that libc
    picks code paths the CPU supports; ``random16`` seeds AT_RANDOM;
    ``image_cache`` keeps read-only pages across loads (sentry/mm/image_cache.py).  Raises
    ElfError for a bad file, bad interpreter or oversized arguments (before
    touching ``mm``); SyscallError from ``mm`` itself passes through.
    """
    if len(random16) != 16:
        raise ValueError("random16 must be 16 bytes")
    uid, euid, gid, egid, *more = creds
    secure = more[0] if more else 0
    if not argv:
        argv = [b""]  # Linux >= 5.18 never starts a program with argc == 0
    _check_strings(argv, envp, execfn)
    data = memoryview(exe).cast("B")
    info = parse_elf(data)
    exe_name = execfn.decode(errors="backslashreplace")
    prog = _place(info, data, ELF_ET_DYN_BASE, "executable")
    stack_start = STACK_TOP - STACK_SIZE
    if prog.overlaps(stack_start, STACK_TOP):
        raise ElfError(errno.ENOMEM, "executable overlaps the stack")

    interp: _Placed | None = None
    interp_name = ""
    if info.interp is not None:
        idata = _open_interpreter(info.interp, open_interp)
        iinfo = _parse_interpreter(idata, info.interp)
        interp_name = info.interp.decode(errors="backslashreplace")
        try:
            interp = _place(iinfo, idata, INTERP_BASE, f"interpreter {interp_name}")
        except ElfError as exc:
            raise ElfError(errno.ELIBBAD, exc.message) from exc
        if interp.overlaps(stack_start, STACK_TOP) or interp.overlaps(prog.start, prog.end):
            raise ElfError(errno.ENOMEM, "interpreter overlaps the executable or the stack")

    exe_entry = (info.entry + prog.bias) & _U64_MASK
    entry = exe_entry if interp is None else (interp.info.entry + interp.bias) & _U64_MASK
    if not APP_START <= entry < APP_END:
        raise ElfError(errno.EINVAL, f"entry point {entry:#x} outside the application range")
    phdr = 0 if info.phdr_vaddr is None else (info.phdr_vaddr + prog.bias) & _U64_MASK
    interp_base = 0 if interp is None else interp.bias
    aux = [
        (AT_MINSIGSTKSZ, minsigstksz),
        (AT_HWCAP, hwcap),
        (AT_PAGESZ, PAGE_SIZE),
        (AT_CLKTCK, CLK_TCK),
        (AT_PHDR, phdr),
        (AT_PHENT, PHDR_SIZE),
        (AT_PHNUM, info.phnum),
        (AT_BASE, interp_base),
        (AT_FLAGS, 0),
        (AT_ENTRY, exe_entry),
        (AT_UID, uid),
        (AT_EUID, euid),
        (AT_GID, gid),
        (AT_EGID, egid),
        (AT_SECURE, secure),
        (AT_RANDOM, 0),
        (AT_HWCAP2, hwcap2),
        (AT_EXECFN, 0),
        (AT_PLATFORM, 0),
    ]
    if vdso.base():
        aux.insert(0, (AT_SYSINFO_EHDR, vdso.base()))  # first, as Linux's ARCH_DLINFO
    sp, stack_image = _build_stack(argv, envp, execfn, random16, aux)

    # Point of no return: everything below only fails if the memory manager does.
    _map_image(mm, prog, exe_name, image_cache)
    if interp is not None:
        _map_image(mm, interp, interp_name, image_cache)
    brk_start = prog.end
    mm.set_brk_start(brk_start)
    stack_prot = mmap.PROT_READ | mmap.PROT_WRITE
    if info.stack_executable:
        stack_prot |= mmap.PROT_EXEC
    mm.mmap(
        stack_start,
        STACK_SIZE,
        stack_prot,
        mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | MAP_FIXED,
        name="[stack]",
    )
    mm.copy_out_force(sp, stack_image)
    return LoadResult(
        entry=entry,
        stack_pointer=sp,
        brk_start=brk_start,
        load_bias=prog.bias & _U64_MASK,
        interp_base=interp_base,
        phdr=phdr,
        phnum=info.phnum,
        exe_entry=exe_entry,
    )


@functools.cache
def host_auxv() -> dict[int, int]:
    """AT_HWCAP, AT_HWCAP2 and AT_MINSIGSTKSZ from the Sentry's own auxv.

    The application runs on the same CPU, so libc's CPU-feature and signal-stack
    decisions should see the host's values.  Only these three keys are returned:
    the others (AT_SYSINFO_EHDR, AT_RANDOM, ...) are Sentry addresses and secrets.
    Read once and cached; call it before the Sentry's seccomp filter forbids open.
    """
    wanted = (AT_HWCAP, AT_HWCAP2, AT_MINSIGSTKSZ)
    with open("/proc/self/auxv", "rb") as f:
        raw = f.read()
    out: dict[int, int] = {}
    for off in range(0, len(raw) - 15, 16):
        key, value = struct.unpack_from("<QQ", raw, off)
        if key == AT_NULL:
            break
        if key in wanted:
            out[key] = value
    return out
