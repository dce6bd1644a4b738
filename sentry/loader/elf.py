"""Parsing and validation of ELF executables and ``#!`` scripts (no memory, no I/O).

Everything here reads bytes an application handed to execve, so every field is
hostile input: a length, an offset or a count is checked before it is used, and the
only exception that leaves :func:`parse_elf` or :func:`parse_shebang` is
:class:`ElfError` carrying the errno Linux would give.

Facts about Linux's binfmt_elf and binfmt_script that shape this module:

- Only the first BINPRM_BUF_SIZE (256) bytes are read before the format is chosen;
  a file shorter than that is zero-padded.  So an ELF file shorter than its 64-byte
  header fails with ENOEXEC (its fields read as zero), not with EIO.
- The program header table is read with a separate read: a table that is not
  entirely inside the file is a short read, which Linux reports as EIO.  The same
  goes for the PT_INTERP path.
- ``e_phentsize`` must equal sizeof(Elf64_Phdr) (56) and the whole table must be at
  most 64 KiB (so at most 1170 entries), else ENOEXEC.
- A PT_LOAD is mmapped from the file at ``p_offset`` rounded down to a page, so
  ``p_vaddr`` and ``p_offset`` must agree modulo the page size; Linux's mmap fails
  otherwise.  We copy rather than map, but keep the rule so that what we accept is
  what Linux accepts.
- The first PT_INTERP wins; the last PT_GNU_STACK wins; without PT_GNU_STACK an
  x86-64 stack is not executable (READ_IMPLIES_EXEC no longer applies to 64-bit).
- The ``#!`` line is parsed from those same 256 bytes: interpreter, then at most one
  argument that is the rest of the line (inner whitespace kept), spaces and tabs
  trimmed at both ends.
"""

from __future__ import annotations

import errno
import mmap
import struct

from sentry.mm.layout import PAGE_SIZE
from shm.records import record

# e_ident and header constants (elf(5)).
ELFMAG = b"\x7fELF"
ELFCLASS64 = 2
ELFDATA2LSB = 1
EV_CURRENT = 1
ET_EXEC = 2
ET_DYN = 3
EM_X86_64 = 62

# Program header types and flags.
PT_LOAD = 1
PT_INTERP = 3
PT_PHDR = 6
PT_GNU_STACK = 0x6474E551
PF_X = 1
PF_W = 2
PF_R = 4

EHDR_SIZE = 64
PHDR_SIZE = 56
MAX_PHDR_TABLE = 65536  # Linux's load_elf_phdrs limit, in bytes
MAX_PHNUM = MAX_PHDR_TABLE // PHDR_SIZE
PATH_MAX = 4096
BINPRM_BUF_SIZE = 256  # how much of the file Linux reads to choose a format
_U64 = 1 << 64

# Elf64_Ehdr after e_ident: e_type, e_machine, e_version, e_entry, e_phoff, e_shoff,
# e_flags, e_ehsize, e_phentsize, e_phnum, e_shentsize, e_shnum, e_shstrndx.
_EHDR = struct.Struct("<HHIQQQIHHHHHH")
# Elf64_Phdr: p_type, p_flags, p_offset, p_vaddr, p_paddr, p_filesz, p_memsz, p_align.
_PHDR = struct.Struct("<IIQQQQQQ")


class ElfError(Exception):
    """The file cannot be executed; ``errno`` is what execve returns (positive)."""

    def __init__(self, err: int, message: str) -> None:
        super().__init__(err, message)
        self.errno = err
        self.message = message

    def __str__(self) -> str:
        name = errno.errorcode.get(self.errno, str(self.errno))
        return f"{name}: {self.message}"


@record(frozen=True, slots=True)
class Segment:
    """One PT_LOAD: ``memsz`` bytes at ``vaddr``, the first ``filesz`` from the file."""

    vaddr: int
    memsz: int
    offset: int
    filesz: int
    prot: int  # PROT_* bits from p_flags
    align: int


@record(frozen=True, slots=True)
class ElfInfo:
    """What the loader needs from a validated ELF file; addresses are unbiased."""

    e_type: int  # ET_EXEC or ET_DYN
    entry: int
    phoff: int
    phentsize: int
    phnum: int
    segments: tuple[Segment, ...]  # PT_LOAD entries, in file order
    interp: bytes | None  # PT_INTERP path without its NUL
    stack_executable: bool
    phdr_vaddr: int | None  # where the program headers are in memory, if mapped


def _prot_from_flags(p_flags: int) -> int:
    prot = 0
    if p_flags & PF_R:
        prot |= mmap.PROT_READ
    if p_flags & PF_W:
        prot |= mmap.PROT_WRITE
    if p_flags & PF_X:
        prot |= mmap.PROT_EXEC
    return prot


def _check_ident(view: memoryview) -> None:
    if len(view) < 4 or bytes(view[:4]) != ELFMAG:
        raise ElfError(errno.ENOEXEC, "not an ELF file")
    if len(view) < EHDR_SIZE:
        # Linux reads the zero-padded 256-byte buffer; the zero fields then fail.
        raise ElfError(errno.ENOEXEC, "ELF header truncated")
    if view[4] != ELFCLASS64:
        raise ElfError(errno.ENOEXEC, f"ELF class {view[4]} is not ELFCLASS64")
    if view[5] != ELFDATA2LSB:
        raise ElfError(errno.ENOEXEC, f"ELF data encoding {view[5]} is not little-endian")
    if view[6] != EV_CURRENT:
        raise ElfError(errno.ENOEXEC, f"ELF ident version {view[6]} is not EV_CURRENT")


def _parse_segment(
    p_flags: int, off: int, vaddr: int, filesz: int, memsz: int, align: int, size: int, index: int
) -> Segment:
    where = f"PT_LOAD #{index}"
    if filesz > memsz:
        raise ElfError(errno.ENOEXEC, f"{where}: p_filesz {filesz:#x} > p_memsz {memsz:#x}")
    if off + filesz > size:
        raise ElfError(errno.EIO, f"{where}: file data [{off:#x}, +{filesz:#x}) past EOF")
    if vaddr + memsz >= _U64:
        raise ElfError(errno.ENOEXEC, f"{where}: p_vaddr + p_memsz overflows")
    if (vaddr - off) % PAGE_SIZE:
        raise ElfError(errno.ENOEXEC, f"{where}: p_vaddr and p_offset differ modulo the page")
    return Segment(
        vaddr=vaddr,
        memsz=memsz,
        offset=off,
        filesz=filesz,
        prot=_prot_from_flags(p_flags),
        align=align,
    )


def _read_interp(view: memoryview, off: int, filesz: int) -> bytes:
    if filesz < 2 or filesz > PATH_MAX:
        raise ElfError(errno.ENOEXEC, f"PT_INTERP size {filesz} out of range")
    if off + filesz > len(view):
        raise ElfError(errno.EIO, "PT_INTERP path past EOF")
    raw = bytes(view[off : off + filesz])
    if raw[-1] != 0:
        raise ElfError(errno.ENOEXEC, "PT_INTERP path is not NUL-terminated")
    path = raw[: raw.index(0)]
    if not path:
        raise ElfError(errno.ENOEXEC, "PT_INTERP path is empty")
    return path


def parse_elf(data: bytes | bytearray | memoryview) -> ElfInfo:
    """Validate an x86-64 ELF executable and return what loading it needs.

    Raises ElfError (never IndexError or struct.error) for anything Linux's
    binfmt_elf would refuse, with the same errno.
    """
    view = memoryview(data).cast("B")
    size = len(view)
    _check_ident(view)
    (
        e_type,
        e_machine,
        _e_version,
        e_entry,
        e_phoff,
        _e_shoff,
        _e_flags,
        _e_ehsize,
        e_phentsize,
        e_phnum,
        _e_shentsize,
        _e_shnum,
        _e_shstrndx,
    ) = _EHDR.unpack_from(view, 16)
    if e_type not in (ET_EXEC, ET_DYN):
        raise ElfError(errno.ENOEXEC, f"e_type {e_type} is neither ET_EXEC nor ET_DYN")
    if e_machine != EM_X86_64:
        raise ElfError(errno.ENOEXEC, f"e_machine {e_machine} is not EM_X86_64")
    if e_phentsize != PHDR_SIZE:
        raise ElfError(errno.ENOEXEC, f"e_phentsize {e_phentsize} != {PHDR_SIZE}")
    if not 1 <= e_phnum <= MAX_PHNUM:
        raise ElfError(errno.ENOEXEC, f"e_phnum {e_phnum} out of range 1..{MAX_PHNUM}")
    if e_phoff + e_phnum * PHDR_SIZE > size:
        raise ElfError(errno.EIO, "program header table past EOF")

    segments: list[Segment] = []
    interp: bytes | None = None
    stack_executable = False
    pt_phdr: int | None = None
    for i in range(e_phnum):
        (p_type, p_flags, p_offset, p_vaddr, _p_paddr, p_filesz, p_memsz, p_align) = (
            _PHDR.unpack_from(view, e_phoff + i * PHDR_SIZE)
        )
        if p_type == PT_LOAD:
            segments.append(
                _parse_segment(
                    p_flags, p_offset, p_vaddr, p_filesz, p_memsz, p_align, size, len(segments)
                )
            )
        elif p_type == PT_INTERP and interp is None:
            interp = _read_interp(view, p_offset, p_filesz)
        elif p_type == PT_GNU_STACK:
            stack_executable = bool(p_flags & PF_X)
        elif p_type == PT_PHDR and pt_phdr is None:
            pt_phdr = p_vaddr
    if not segments:
        raise ElfError(errno.ENOEXEC, "no PT_LOAD segment")

    phdr_vaddr = pt_phdr
    if phdr_vaddr is None:
        # As Linux does without PT_PHDR: the table is wherever the PT_LOAD holding
        # e_phoff puts it (usually the first page of the first segment).
        for seg in segments:
            if seg.offset <= e_phoff < seg.offset + seg.filesz:
                phdr_vaddr = e_phoff - seg.offset + seg.vaddr
                break
    return ElfInfo(
        e_type=e_type,
        entry=e_entry,
        phoff=e_phoff,
        phentsize=e_phentsize,
        phnum=e_phnum,
        segments=tuple(segments),
        interp=interp,
        stack_executable=stack_executable,
        phdr_vaddr=phdr_vaddr,
    )


def _spacetab(c: int) -> bool:
    return c in (0x20, 0x09)


def _cstr(buf: bytes, start: int, end: int) -> bytes:
    """buf[start:end] cut at the first NUL, as the kernel's C string would be."""
    part = buf[start:end]
    nul = part.find(0)
    return part if nul < 0 else part[:nul]


def parse_shebang(data: bytes | bytearray | memoryview) -> tuple[bytes, bytes | None] | None:
    """Parse a ``#!`` line as Linux's binfmt_script does.

    Returns None when the file does not start with ``#!`` (try the next format),
    else ``(interpreter, optional_argument)``.  Raises ElfError(ENOEXEC) when the
    line names no interpreter or the interpreter path was cut off by the 256-byte
    buffer (Linux refuses rather than run a truncated path).
    """
    head = bytes(memoryview(data).cast("B")[:BINPRM_BUF_SIZE])
    if head[:2] != b"#!":
        return None
    buf = head.ljust(BINPRM_BUF_SIZE, b"\0")
    last = BINPRM_BUF_SIZE - 1  # the kernel overwrites this byte with a NUL
    end = buf.find(b"\n")
    if end < 0:
        # No newline in the buffer: usable only if the interpreter path visibly ends.
        first = next((i for i in range(2, last + 1) if not _spacetab(buf[i])), None)
        if first is None:
            raise ElfError(errno.ENOEXEC, "#! line is all blanks")
        if not any(_spacetab(buf[i]) or buf[i] == 0 for i in range(first, last + 1)):
            raise ElfError(errno.ENOEXEC, "#! interpreter path longer than the buffer")
        end = last
    while end > 2 and _spacetab(buf[end - 1]):
        end -= 1
    name = next((i for i in range(2, end) if not _spacetab(buf[i])), None)
    if name is None:
        raise ElfError(errno.ENOEXEC, "#! line names no interpreter")
    sep = next((i for i in range(name, end) if _spacetab(buf[i]) or buf[i] == 0), end)
    interp = _cstr(buf, name, sep)
    if not interp:
        raise ElfError(errno.ENOEXEC, "#! interpreter is empty")
    arg: bytes | None = None
    if sep < end and buf[sep] != 0:
        start = next((i for i in range(sep, end) if not _spacetab(buf[i])), None)
        if start is not None:
            arg = _cstr(buf, start, end)
    return interp, arg


def shebang_argv(
    interp: bytes, arg: bytes | None, filename: bytes, argv: list[bytes]
) -> list[bytes]:
    """The argv a script's interpreter runs with: Linux replaces argv[0] by the
    script's path and puts the interpreter (and its one argument) in front."""
    new = [interp]
    if arg is not None:
        new.append(arg)
    new.append(filename)
    new.extend(argv[1:])
    return new
