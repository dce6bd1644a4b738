"""strace-format lines: argument kinds, memory reads that fail, results and errnos."""

from __future__ import annotations

import struct

import pytest

from syscalls.numbers import NAMES, NUMBERS
from syscalls.strace import KINDS, SIGNATURES, format_call, format_result, quote


class FakeMem:
    """A few mapped regions; anything else faults, as an unmapped app address would."""

    def __init__(self, regions: dict[int, bytes]) -> None:
        self.regions = regions

    def _find(self, addr: int, length: int) -> bytes:
        for base, data in self.regions.items():
            if base <= addr and addr + length <= base + len(data):
                return data[addr - base : addr - base + length]
        raise OSError(14, "Bad address")

    def copy_in(self, addr: int, length: int) -> bytes:
        return self._find(addr, length)

    def read_cstring(self, addr: int, limit: int) -> bytes:
        for base, data in self.regions.items():
            if base <= addr < base + len(data):
                return data[addr - base :].split(b"\0", 1)[0][:limit]
        raise OSError(14, "Bad address")


HELLO, PATH, LONG, ARGV, IOV, ACT, SET = (0x1000 * k for k in range(1, 8))
MEM = FakeMem(
    {
        HELLO: b"hello\n\0",
        PATH: b"/etc/passwd\0",
        LONG: b"a" * 40 + b"\0",
        ARGV: struct.pack("<3Q", PATH, HELLO, 0),
        IOV: struct.pack("<4Q", HELLO, 6, PATH, 4),
        ACT: struct.pack("<4Q", 0x401000, 0x14000000, 0x402000, 1 << 9),  # mask bit 9: USR1
        SET: struct.pack("<Q", (1 << 1) | (1 << 14)),
    }
)
AT_FDCWD_32 = 0xFFFFFF9C
AT_FDCWD_64 = (1 << 64) - 100


def call(name: str, *args: int) -> str:
    return format_call(NUMBERS[name], args + (0,) * (6 - len(args)), MEM)


def test_signatures_are_real_syscalls_with_known_kinds() -> None:
    """A typo in the table must fail here, not silently print a wrong trace."""
    assert len(SIGNATURES) >= 120
    assert set(SIGNATURES) <= set(NAMES.values())
    assert {k for sig in SIGNATURES.values() for k in sig} <= set(KINDS)
    assert all(len(sig) <= 6 for sig in SIGNATURES.values())


def test_write_prints_the_buffer() -> None:
    assert call("write", 1, HELLO, 6) + format_result(1, 6) == 'write(1, "hello\\n", 6) = 6'
    assert call("write", 1, HELLO, 0) == 'write(1, "", 0)'


def test_read_prints_the_buffer_pointer() -> None:
    """The buffer is filled by the call, so its contents are not known yet."""
    assert call("read", 3, HELLO, 100) == "read(3, 0x1000, 100)"


def test_openat_fdcwd_and_flags() -> None:
    assert (
        call("openat", AT_FDCWD_32, PATH, 0o2000000)
        == 'openat(AT_FDCWD, "/etc/passwd", O_RDONLY|O_CLOEXEC)'
    )
    # O_WRONLY|O_CREAT|O_TRUNC: the mode is printed only when O_CREAT is set.
    assert (
        call("openat", AT_FDCWD_64, PATH, 0o1101, 0o644)
        == 'openat(AT_FDCWD, "/etc/passwd", O_WRONLY|O_CREAT|O_TRUNC, 0644)'
    )
    assert call("openat", 5, PATH, 0o200002) == 'openat(5, "/etc/passwd", O_RDWR|O_DIRECTORY)'
    assert call("open", PATH, 0) == 'open("/etc/passwd", O_RDONLY)'


def test_error_results_have_errno_names() -> None:
    nr = NUMBERS["openat"]
    assert format_result(nr, -2) == " = -1 ENOENT (No such file or directory)"
    assert format_result(nr, (1 << 64) - 13) == " = -1 EACCES (Permission denied)"
    assert format_result(nr, -4095).startswith(" = -1 4095 (")
    assert format_result(nr, -4096) == " = -4096"  # outside the errno range
    assert format_result(nr, -512) == " = ? ERESTARTSYS (To be restarted if SA_RESTART is set)"
    assert format_result(nr, 3) == " = 3"


def test_hex_results_and_no_return() -> None:
    assert format_result(NUMBERS["mmap"], 0x7F0000001000) == " = 0x7f0000001000"
    assert format_result(NUMBERS["brk"], 0x555555559000) == " = 0x555555559000"
    assert format_result(NUMBERS["mmap"], -12) == " = -1 ENOMEM (Cannot allocate memory)"
    assert format_result(NUMBERS["exit_group"], 0) == " = ?"


def test_unreadable_pointer_prints_hex() -> None:
    assert call("write", 1, 0xDEAD0000, 5) == "write(1, 0xdead0000, 5)"
    assert call("openat", AT_FDCWD_32, 0xDEAD0000, 0) == "openat(AT_FDCWD, 0xdead0000, O_RDONLY)"
    assert call("execve", 0xBAD, 0xBAD, 0) == "execve(0xbad, 0xbad, NULL)"
    assert call("rt_sigaction", 2, 0xBAD, 0, 8) == "rt_sigaction(SIGINT, 0xbad, NULL, 8)"


def test_broken_memory_object_is_tolerated() -> None:
    class Broken:
        def copy_in(self, addr: int, length: int) -> bytes:
            raise RuntimeError("boom")

        def read_cstring(self, addr: int, limit: int) -> bytes:
            raise RuntimeError("boom")

    assert format_call(NUMBERS["write"], (1, 0x10, 3, 0, 0, 0), Broken()) == "write(1, 0x10, 3)"


def test_truncation_at_32() -> None:
    assert call("write", 1, LONG, 40) == f'write(1, "{"a" * 32}"..., 40)'
    assert call("write", 1, LONG, 32) == f'write(1, "{"a" * 32}", 32)'
    assert call("memfd_create", LONG, 1) == f'memfd_create("{"a" * 32}"..., MFD_CLOEXEC)'
    # Paths are printed whole, as strace does: a cut path would mislead.
    assert call("chdir", LONG) == f'chdir("{"a" * 40}")'


def test_quote_escapes_like_strace() -> None:
    assert quote(b'a"b\\c\t\r\n') == '"a\\"b\\\\c\\t\\r\\n"'
    assert quote(b"\x7fELF\x02\x01\x00") == '"\\177ELF\\2\\1\\0"'
    assert quote(b"\x001") == '"\\0001"'  # full octal before an octal digit
    assert quote(b"ab", more=True) == '"ab"...'


def test_memory_and_signal_decoders() -> None:
    assert call("execve", PATH, ARGV, ARGV) == (
        'execve("/etc/passwd", ["/etc/passwd", "hello\\n"], 0x4000 /* 2 vars */)'
    )
    assert call("writev", 1, IOV, 2) == (
        'writev(1, [{iov_base="hello\\n", iov_len=6}, {iov_base="/etc", iov_len=4}], 2)'
    )
    assert call("rt_sigaction", 17, ACT, 0, 8) == (
        "rt_sigaction(SIGCHLD, {sa_handler=0x401000, sa_mask=[USR1], "
        "sa_flags=SA_RESTORER|SA_RESTART, sa_restorer=0x402000}, NULL, 8)"
    )
    assert call("rt_sigprocmask", 0, SET, 0, 8) == "rt_sigprocmask(SIG_BLOCK, [INT TERM], NULL, 8)"
    assert call("kill", 123, 9) == "kill(123, SIGKILL)"


@pytest.mark.parametrize(
    ("name", "args", "text"),
    [
        ("mmap", (0, 8192, 3, 0x22, (1 << 64) - 1, 0),
         "mmap(NULL, 8192, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)"),
        ("mmap", (0x7F00, 4096, 0, 0x12, 3, 0x28000),
         "mmap(0x7f00, 4096, PROT_NONE, MAP_PRIVATE|MAP_FIXED, 3, 0x28000)"),
        ("mprotect", (0x7F00, 4096, 5), "mprotect(0x7f00, 4096, PROT_READ|PROT_EXEC)"),
        ("clone", (0x01200011, 0, 0, 0x7000, 0),
         "clone(CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD, NULL, NULL, 0x7000, 0)"),
        ("futex", (0x7000, 129, 1), "futex(0x7000, FUTEX_WAKE_PRIVATE, 1)"),
        ("fcntl", (3, 1), "fcntl(3, F_GETFD)"),
        ("fcntl", (3, 2, 1), "fcntl(3, F_SETFD, FD_CLOEXEC)"),
        ("arch_prctl", (0x1002, 0x7F00), "arch_prctl(ARCH_SET_FS, 0x7f00)"),
        ("newfstatat", (AT_FDCWD_32, PATH, 0x7F00, 0x1000),
         'newfstatat(AT_FDCWD, "/etc/passwd", 0x7f00, AT_EMPTY_PATH)'),
        ("unlinkat", (4, PATH, 0x200), 'unlinkat(4, "/etc/passwd", AT_REMOVEDIR)'),
        ("access", (PATH, 0), 'access("/etc/passwd", F_OK)'),
        ("umask", (0o22,), "umask(022)"),
        ("lseek", (3, (1 << 64) - 1, 1), "lseek(3, -1, SEEK_CUR)"),
        ("clock_gettime", (1, 0x7F00), "clock_gettime(CLOCK_MONOTONIC, 0x7f00)"),
        ("pipe2", (0x7F00, 0o2004000), "pipe2(0x7f00, O_NONBLOCK|O_CLOEXEC)"),
        ("getpid", (), "getpid()"),
        ("exit_group", (0,), "exit_group(0)"),
        ("rseq", (0x7F00, 32, 0, 0x53053053), "rseq(0x7f00, 32, 0, 0x53053053)"),
    ],
)  # fmt: skip
def test_symbolic_arguments(name: str, args: tuple[int, ...], text: str) -> None:
    assert call(name, *args) == text


def test_unknown_syscalls_print_six_hex_args() -> None:
    text = "syscall_500(0x1, 0x2, 0x3, 0x10, 0x5, 0x6)"
    assert format_call(500, (1, 2, 3, 0x10, 5, 6), MEM) == text
    # Known to Linux but without a signature here: name, still six raw arguments.
    nr = NUMBERS["kexec_load"]
    assert format_call(nr, (1, 2, 0, 0, 0, 0), MEM) == "kexec_load(0x1, 0x2, 0, 0, 0, 0)"
