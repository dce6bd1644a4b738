"""Escape attempts: an application that jumps into the stub's trusted syscall
instruction gets only the stub's allowlist; anything else kills it (SIGSYS),
and garbage in its own sysmsg slot hurts nobody but itself."""

from __future__ import annotations

import pytest
from helpers import Programs, assert_no_process_left, run_sandbox
from sentry.systrap._stub import lib

SIGSYS_STATUS = 128 + 31
STUB_SYSCALL_INSN = lib.STUB_CODE_ADDR + lib.stub_syscall_ip_offset() - 2

FORBIDDEN = [
    "getpid",  # an ordinary syscall, but not on the allowlist
    "openat",  # a host file
    "execve",  # a host program
    "kill",  # a host process
    "mmap_anon",  # memory that is not the sandbox's memory file
    "mmap_other_fd",  # another descriptor
    "mprotect_stub",  # the stub's own code
    "futex_outside",  # a futex outside the stub region
    "arch_prctl_gs",  # only ARCH_SET_FS is allowed
]


@pytest.mark.sandbox
@pytest.mark.parametrize("mode", FORBIDDEN)
def test_forbidden_syscall_from_stub_ip_kills(programs: Programs, mode: str) -> None:
    prog = programs.path("escape_stub")
    res = run_sandbox([prog, hex(STUB_SYSCALL_INSN), mode])
    assert res.returncode == SIGSYS_STATUS, res.describe()
    assert res.out == f"trying {mode}\n", res.describe()
    assert "ESCAPED" not in res.out
    assert "Traceback" not in res.err
    assert_no_process_left(str(prog))


@pytest.mark.sandbox
def test_allowed_futex_on_stub_region_is_harmless(programs: Programs) -> None:
    prog = programs.path("escape_stub")
    res = run_sandbox([prog, hex(STUB_SYSCALL_INSN), "futex_wake_stub"])
    assert res.returncode == 0, res.describe()
    # The control block is unmapped in every stub: the wake finds nothing there.
    assert "futex wake returned -14" in res.out


@pytest.mark.sandbox
def test_scribbled_slot_hurts_only_the_application(programs: Programs) -> None:
    prog = programs.path("escape_stub")
    res = run_sandbox([prog, hex(STUB_SYSCALL_INSN), "scribble_slot"])
    assert "Traceback" not in res.err, res.describe()
    assert res.returncode == 0, res.describe()
    assert "after scribble getpid=1" in res.out


@pytest.mark.sandbox
def test_int80_syscall_is_enosys_not_a_kill(programs: Programs) -> None:
    """A 32-bit syscall (int $0x80) gets ENOSYS from the stub's filter: the
    host never runs it, and the process lives (Linux would run it natively
    with IA32 emulation, so this is a stated difference, not a differential
    test)."""
    prog = programs.path("int80_syscall")
    res = run_sandbox([prog])
    assert res.returncode == 0, res.describe()
    assert res.out == "getpid: ENOSYS\nwrite: ENOSYS\nalive\n", res.describe()
    assert "int80 write" not in res.out + res.err
