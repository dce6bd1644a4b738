"""The stub section is copied to a fixed address in processes that hold nothing
else: it must not reach outside itself.  And the seccomp program must say what
bpf.py's docstring says."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
from sentry.systrap._stub import lib

from sentry.systrap import _stub, bpf


def _section_disassembly() -> tuple[int, int, list[str]]:
    objdump = shutil.which("objdump")
    if objdump is None:
        pytest.skip("objdump not found (apt-get install binutils)")
    so = _stub.__file__
    headers = subprocess.run([objdump, "-h", so], capture_output=True, text=True, check=True)
    m = re.search(r"pyvisor_stub\s+([0-9a-f]+)\s+([0-9a-f]+)", headers.stdout)
    assert m, "no pyvisor_stub section in the stub module"
    size, vma = int(m.group(1), 16), int(m.group(2), 16)
    dis = subprocess.run([objdump, "-d", "--section=pyvisor_stub", so], capture_output=True,
                         text=True, check=True)
    return vma, vma + size, dis.stdout.splitlines()


def test_stub_section_is_self_contained() -> None:
    start, end, lines = _section_disassembly()
    insns = [ln for ln in lines if re.match(r"\s+[0-9a-f]+:\t", ln)]
    assert insns, "empty disassembly"
    for ln in insns:
        assert "@plt" not in ln, ln
        assert "%fs" not in ln, f"TLS access in the stub (the app owns %fs): {ln}"
        if "(%rip)" in ln:
            ref = re.search(r"# ([0-9a-f]+)", ln)
            inside = ref is not None and start <= int(ref.group(1), 16) < end
            assert inside, f"reference leaves the section: {ln}"
        m = re.search(r"\b(call|jmp|j[a-z]+)\s+([0-9a-f]+) <", ln)
        if m:
            target = int(m.group(2), 16)
            assert start <= target < end, f"branch leaves the stub section: {ln}"
        # Indirect only through a register or a slot field (%gs: the
        # syscall trampoline's return, stub_patch.inc).
        assert not re.search(r"\b(call|jmp)\s+\*", ln) or "%r" in ln or "*%gs:" in ln, ln


def test_stub_fits_its_region() -> None:
    assert 0 < lib.stub_code_size() <= lib.STUB_CODE_SIZE


def _run_filter(prog: bytes, nr: int, ip: int, args: tuple[int, ...] = (0,) * 6,
                arch: int = bpf.AUDIT_ARCH_X86_64) -> int:
    """A tiny classic-BPF interpreter for the opcodes bpf.py emits."""
    import struct

    data = struct.pack("<iIQ6Q", nr, arch, ip, *args)
    insns = [struct.unpack_from("<HBBI", prog, i) for i in range(0, len(prog), 8)]
    pc, acc = 0, 0
    while True:
        code, jt, jf, k = insns[pc]
        if code == bpf.BPF_LD_W_ABS:
            acc = struct.unpack_from("<I", data, k)[0]
            pc += 1
        elif code == bpf.BPF_JMP_JEQ_K:
            pc += 1 + (jt if acc == k else jf)
        elif code == bpf.BPF_JMP_JGE_K:
            pc += 1 + (jt if acc >= k else jf)
        elif code == bpf.BPF_RET_K:
            return k
        else:
            raise AssertionError(f"unexpected opcode {code:#x}")


IP = lib.STUB_CODE_ADDR + lib.stub_syscall_ip_offset()
PROG = bpf.stub_filter(IP, lib.STUB_REGION_START, lib.STUB_REGION_END, lib.STUB_MEMFD_FD)
SLOT = lib.STUB_SLOTS_ADDR


@pytest.mark.parametrize(
    ("nr", "ip", "args", "want"),
    [
        (39, 0x401000, (0,) * 6, bpf.SECCOMP_RET_TRAP),  # app getpid: trapped
        (2, 0x401000, (0,) * 6, bpf.SECCOMP_RET_TRAP),  # app open: trapped
        (39, IP, (0,) * 6, bpf.SECCOMP_RET_KILL_PROCESS),  # getpid from the stub: kill
        (15, IP, (0,) * 6, bpf.SECCOMP_RET_ALLOW),  # rt_sigreturn
        (202, IP, (SLOT, 0, 1, 0, 0, 0), bpf.SECCOMP_RET_ALLOW),  # futex wait on a slot
        (202, IP, (SLOT, 1, 1, 0, 0, 0), bpf.SECCOMP_RET_ALLOW),  # futex wake on a slot
        (202, IP, (SLOT, 9, 1, 0, 0, 2), bpf.SECCOMP_RET_ALLOW),  # FUTEX_WAIT_BITSET
        (202, IP, (SLOT, 10, 1, 0, 0, 1), bpf.SECCOMP_RET_ALLOW),  # FUTEX_WAKE_BITSET
        (202, IP, (0x601000, 10, 1, 0, 0, 1), bpf.SECCOMP_RET_KILL_PROCESS),  # outside
        (202, IP, (SLOT, 6, 1, 0, 0, 0), bpf.SECCOMP_RET_KILL_PROCESS),  # FUTEX_LOCK_PI
        (202, IP, (0x601000, 0, 1, 0, 0, 0), bpf.SECCOMP_RET_KILL_PROCESS),  # outside
        (9, IP, (0x400000, 4096, 3, 0x11, 3, 0), bpf.SECCOMP_RET_ALLOW),  # own arena map
        # fd 4, where the common arena was: no stub holds it, and the rule
        # refuses it too (a channel between processes the Sentry would not see)
        (9, IP, (0x400000, 4096, 3, 0x11, 4, 0), bpf.SECCOMP_RET_KILL_PROCESS),
        (9, IP, (0x400000, 4096, 3, 0x22, -1 & (2**64 - 1), 0), bpf.SECCOMP_RET_KILL_PROCESS),
        (9, IP, (0x400000, 4096, 3, 0x11, 6, 0), bpf.SECCOMP_RET_ALLOW),  # the object received
        (9, IP, (0x400000, 4096, 3, 0x11, 5, 0), bpf.SECCOMP_RET_KILL_PROCESS),  # its socket
        (9, IP, (0x400000, 4096, 3, 0x11, 7, 0), bpf.SECCOMP_RET_KILL_PROCESS),  # other fd
        (47, IP, (5, 0x1000, 0, 0, 0, 0), bpf.SECCOMP_RET_ALLOW),  # recvmsg on its socket
        (47, IP, (3, 0x1000, 0, 0, 0, 0), bpf.SECCOMP_RET_KILL_PROCESS),  # on anything else
        (292, IP, (0, 6, 0, 0, 0, 0), bpf.SECCOMP_RET_ALLOW),  # dup3 onto the object fd
        (292, IP, (0, 7, 0, 0, 0, 0), bpf.SECCOMP_RET_KILL_PROCESS),  # onto another
        (292, IP, (0, 6, 0x80000, 0, 0, 0), bpf.SECCOMP_RET_KILL_PROCESS),  # with flags
        (3, IP, (0, 0, 0, 0, 0, 0), bpf.SECCOMP_RET_ALLOW),  # close where a fd lands
        (3, IP, (3, 0, 0, 0, 0, 0), bpf.SECCOMP_RET_KILL_PROCESS),  # close of its arena
        (9, IP, (0x400000, 4096, 3, 0x11, 2, 0), bpf.SECCOMP_RET_KILL_PROCESS),  # other fd
        (9, IP, (0x400000, 4096, 3, 0x11, 3 | 1 << 32, 0), bpf.SECCOMP_RET_KILL_PROCESS),
        (9, IP, (SLOT, 4096, 3, 0x11, 3, 0), bpf.SECCOMP_RET_KILL_PROCESS),  # into the stub
        (10, IP, (SLOT, 4096, 7, 0, 0, 0), bpf.SECCOMP_RET_KILL_PROCESS),  # mprotect stub
        (11, IP, (0x400000, 4096, 0, 0, 0, 0), bpf.SECCOMP_RET_ALLOW),  # munmap app memory
        (158, IP, (0x1002, 0x1000, 0, 0, 0, 0), bpf.SECCOMP_RET_ALLOW),  # ARCH_SET_FS
        (158, IP, (0x1001, 0x1000, 0, 0, 0, 0), bpf.SECCOMP_RET_KILL_PROCESS),  # SET_GS
        (59, IP, (0,) * 6, bpf.SECCOMP_RET_KILL_PROCESS),  # execve
        (56, IP, (0,) * 6, bpf.SECCOMP_RET_KILL_PROCESS),  # clone of a process
        (56, IP, (0x11, 0, 0, 0, 0, 0), bpf.SECCOMP_RET_KILL_PROCESS),  # fork-like clone
        (56, IP, (0x1250F00, 0x1000, 0, 0, 0, 0), bpf.SECCOMP_RET_ALLOW),  # a stub thread
        (56, IP, (0x50F00, 0x1000, 0, 0, 0, 0), bpf.SECCOMP_RET_KILL_PROCESS),
        (60, IP, (0,) * 6, bpf.SECCOMP_RET_ALLOW),  # exit of one stub thread
        (231, IP, (0,) * 6, bpf.SECCOMP_RET_KILL_PROCESS),  # exit_group
        (24, IP, (0,) * 6, bpf.SECCOMP_RET_ALLOW),  # sched_yield: waiting on the same CPU
        (24, 0x401000, (0,) * 6, bpf.SECCOMP_RET_TRAP),  # the app's own: the Sentry's
    ],
)
def test_filter_policy(nr: int, ip: int, args: tuple[int, ...], want: int) -> None:
    assert _run_filter(PROG, nr, ip, args) == want


def test_other_architectures_get_enosys_from_the_filter() -> None:
    """int $0x80 (AUDIT_ARCH_I386): answered by the filter, never run, never
    trapped to the Sentry (which implements the x86-64 ABI only)."""
    for ip in (0x401000, IP):  # from the application, and from the stub's own instruction
        got = _run_filter(PROG, 20, ip, arch=0x40000003)
        assert got == bpf.SECCOMP_RET_ERRNO | bpf.ENOSYS


def test_ip_checked_on_both_words() -> None:
    # Same low 32 bits as the stub's instruction, different high word: trapped.
    assert _run_filter(PROG, 39, IP & 0xFFFFFFFF) == bpf.SECCOMP_RET_TRAP
