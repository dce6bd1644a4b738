"""Fuzzing the ELF loader and the ``#!`` parser with structured hostile files.

tests/test_loader.py mutates a few valid files byte by byte.  These build
files from hostile *structure* instead, the cases a byte flip rarely reaches:
program header tables that are truncated, overlap the ELF header or run past
the end of the file, huge e_phnum and e_phoff, PT_LOADs that overlap one
another or wrap the address space, memsz far beyond filesz, several PT_INTERP
with paths that are empty, unterminated, past EOF or huge, and interpreters
that are themselves hostile.  parse_elf may raise only ElfError (ENOEXEC,
EIO); load_elf only ElfError or SyscallError (ENOMEM from the address space),
and a loaded image must sit inside the application range.  parse_shebang, fed
arbitrary first bytes, returns None, a (interpreter, argument) pair with the
properties Linux's binfmt_script gives it, or raises ElfError(ENOEXEC).
"""

from __future__ import annotations

import errno
import struct

from fuzzing import fuzz
from hypothesis import example
from hypothesis import strategies as st
from loader_support import INTERP, SIMPLE, FakeMM, load

from sentry.kernel.errors import SyscallError
from sentry.loader import ElfError, parse_elf, parse_shebang
from sentry.loader import elf as E
from sentry.mm.layout import APP_END, APP_START

PAGE = 4096
U64 = (1 << 64) - 1
# Numbers at the edges: zero, a page, sizes near the file's, and the top of u64.
edgy = st.one_of(
    st.sampled_from([0, 1, 7, 56, 64, PAGE - 1, PAGE, PAGE + 1, 0x400000, 1 << 32, 1 << 47,
                     (1 << 63), U64 - PAGE, U64 - 1, U64]),
    st.integers(0, 4 * PAGE),
    st.integers(0, U64),
)
ptypes = st.sampled_from([E.PT_LOAD, E.PT_LOAD, E.PT_LOAD, E.PT_INTERP, E.PT_PHDR,
                          E.PT_GNU_STACK, 0, 4, 0x6474E550, 0xFFFFFFFF])
phdrs = st.tuples(ptypes, st.integers(0, 7), edgy, edgy, edgy, edgy, edgy)


@st.composite
def hostile_elf(draw: st.DrawFn) -> bytes:
    """An ELF header, a program header table of hostile entries at a hostile
    place, and a body of drawn bytes (paths, NULs, code)."""
    entries = draw(st.lists(phdrs, max_size=8))
    phnum = draw(st.one_of(st.just(len(entries)), st.sampled_from([0, 1, 0xFFFF, 0x10000 - 1]),
                           st.integers(0, 100)))
    phoff = draw(st.one_of(st.just(64), st.sampled_from([0, 8, 63, U64, U64 - 55]),
                           st.integers(0, 8 * PAGE)))
    e_type = draw(st.sampled_from([E.ET_EXEC, E.ET_DYN, E.ET_DYN, 1, 4]))
    table = b"".join(E._PHDR.pack(t, f, off, va, va, fs, ms, al & U64)
                     for t, f, off, va, fs, ms, al in entries)
    body = draw(st.one_of(
        st.binary(max_size=512),
        st.sampled_from([b"/lib/ld.so\0", b"\0", b"", b"/x" * 3000 + b"\0", b"noslash",
                         b"/lib/ld.so"]),
    ))
    head = E.ELFMAG + bytes([2, 1, 1]) + bytes(9) + E._EHDR.pack(
        e_type & 0xFFFF, E.EM_X86_64, 1, draw(edgy), phoff & U64, 0, 0, 64,
        draw(st.sampled_from([56, 56, 56, 0, 32, 64])), phnum & 0xFFFF, 64, 0, 0)
    blob = bytearray(head)
    place = phoff if phoff <= 8 * PAGE else 64
    if len(blob) < place:
        blob += bytes(place - len(blob))
    blob[place:place + len(table)] = table  # may overlap (and overwrite) the header
    blob += body
    cut = draw(st.one_of(st.none(), st.integers(0, len(blob))))
    return bytes(blob if cut is None else blob[:cut])


@fuzz(quick=60, blob=hostile_elf())
@example(blob=b"\x7fELF")
@example(blob=E.ELFMAG + bytes([2, 1, 1]) + bytes(9)
         + E._EHDR.pack(E.ET_EXEC, E.EM_X86_64, 1, 0, U64 - 55, 0, 0, 64, 56, 1, 64, 0, 0))
def test_parse_raises_only_elferror(blob: bytes) -> None:
    try:
        info = parse_elf(blob)
    except ElfError as exc:
        assert exc.errno in (errno.ENOEXEC, errno.EIO), exc
        return
    for seg in info.segments:
        assert seg.filesz <= seg.memsz and seg.offset + seg.filesz <= len(blob)
        assert seg.vaddr + seg.memsz <= U64
    assert info.interp is None or (info.interp and b"\0" not in info.interp)


test_parse_raises_only_elferror_long = test_parse_raises_only_elferror.long


@fuzz(quick=60, blob=hostile_elf(),
      interp=st.one_of(hostile_elf(), st.just(INTERP), st.just(SIMPLE), st.binary(max_size=64),
                       st.sampled_from([errno.ENOENT, errno.EACCES, errno.ELOOP])))
def test_load_raises_only_errno_errors(blob: bytes, interp: bytes | int) -> None:
    def open_interp(_path: bytes) -> bytes:
        if isinstance(interp, int):
            raise SyscallError(interp)
        return interp

    try:
        _, res = load(blob, FakeMM(max_map=64 << 20), open_interp=open_interp)
    except ElfError as exc:
        assert 0 < exc.errno < 4096
        return
    except SyscallError as exc:
        assert 0 < exc.errno < 4096
        return
    assert res.stack_pointer % 16 == 0 and APP_START <= res.entry < APP_END


test_load_raises_only_errno_errors_long = test_load_raises_only_errno_errors.long


@fuzz(head=st.one_of(
    st.binary(max_size=300).map(lambda b: b"#!" + b),
    st.lists(st.sampled_from([b" ", b"\t", b"\0", b"\n", b"/bin/sh", b"-x", b"a" * 250, b"\r"]),
             max_size=12).map(lambda parts: b"#!" + b"".join(parts)),
    st.binary(max_size=8),
))
@example(head=b"#!" + b" " * 254)
@example(head=b"#!" + b"/" * 300)
@example(head=b"#!/bin/sh ")  # an empty argument, as Linux passes it
@example(head=b"#!/bin/sh /bin/sh ")  # "/bin/sh " with its blank: no newline, as Linux
@example(head=b"#!/bin/sh /bin/sh \x00\n")  # a NUL before the newline: "/bin/sh ", as Linux
def test_shebang(head: bytes) -> None:
    try:
        got = parse_shebang(head)
    except ElfError as exc:
        assert exc.errno == errno.ENOEXEC
        return
    if got is None:
        assert head[:2] != b"#!"
        return
    interp, arg = got
    assert interp and not any(c in interp for c in b" \t\0\n")
    assert len(interp) < E.BINPRM_BUF_SIZE and interp in head
    if arg is not None:  # may be empty: "#!/bin/sh " without a newline passes "" (as Linux)
        assert b"\0" not in arg and b"\n" not in arg and arg in head
        assert not arg or arg[0] not in b" \t"
        line = head[:E.BINPRM_BUF_SIZE]
        # Linux trims blanks before the newline only: without a newline, or
        # with a NUL ending the argument before the blanks that precede it
        # ("#!/bin/sh a \0\n" passes "a "), trailing blanks stay.
        if b"\n" in line and b"\0" not in line[:line.index(b"\n")]:
            assert not arg or arg[-1] not in b" \t"


test_shebang_long = test_shebang.long


def test_edge_table_is_a_seed() -> None:
    """The header the phoff example uses really reaches the table check."""
    blob = (E.ELFMAG + bytes([2, 1, 1]) + bytes(9)
            + E._EHDR.pack(E.ET_EXEC, E.EM_X86_64, 1, 0, U64 - 55, 0, 0, 64, 56, 1, 64, 0, 0))
    try:
        parse_elf(blob)
    except ElfError as exc:
        assert exc.errno == errno.EIO
    assert struct.calcsize("<IIQQQQQQ") == 56
