"""The stub's seccomp filter, assembled here as classic BPF.

Facts about seccomp this relies on:

- libseccomp cannot compare the instruction pointer, so the program is written
  by hand: seccomp_data is {int nr; u32 arch; u64 instruction_pointer;
  u64 args[6]}, and BPF loads 32 bits at a time (little-endian: low word first).
- instruction_pointer is the address after the `syscall` instruction.
- When several filters are stacked the most severe action wins
  (KILL > TRAP > ERRNO > ALLOW), so a filter inherited from elsewhere could only
  make this one stricter.

The policy: a syscall from anywhere but the stub's one syscall instruction
traps (SIGSYS) and is served by the Sentry.  From that instruction only the
stub's allowlist passes, with argument checks; anything else kills the process.
A 32-bit syscall (``int $0x80``, the i386 numbering) is answered ENOSYS by the
filter itself, the host kernel never running it: the Sentry implements the
x86-64 ABI only, as gVisor does, and a program probing for the old ABI (trinity,
some runtimes) goes on.
What an application gains by jumping into the stub's instruction is therefore
exactly that allowlist: remapping pieces of the memory files the stub holds
below the stub region (MAP_SHARED|MAP_FIXED of its own address space's arena,
STUB_MEMFD_FD, or the shared object it last received, OBJECT_FD; never the
sandbox's common arena, which no stub holds and whose old number, 4, the rule
refuses as well), taking the next descriptor the Sentry
sent it off its own socket (recvmsg on SOCK_FD, dup3 to OBJECT_FD, close of the
number it landed on), unmapping or
re-protecting its own addresses below the stub region, futex wait/wake on the
stub's control words, sched_yield (how a stub waits for a Sentry thread on
the same CPU), rt_sigreturn, and setting its own FS base.  None of these
reach a host file, socket or process; the worst case is an application
corrupting or crashing its own stub, which the Sentry sees as the task dying.
For threads the stub also needs clone with exactly the thread flags (a new host
thread in the same, filtered, process), exit of one thread, and setting its own
signal mask and signal stack: an application using those directly can only
hide its own syscalls from itself (a blocked SIGSYS turns its next syscall into
a kill by the host kernel) or start a thread the Sentry does not serve.
"""

from __future__ import annotations

import struct

from shm.records import field, record

# BPF opcodes
BPF_LD_W_ABS = 0x20
BPF_JMP_JEQ_K = 0x15
BPF_JMP_JGE_K = 0x35
BPF_JMP_JGT_K = 0x25
BPF_JMP_JSET_K = 0x45
BPF_RET_K = 0x06
BPF_JMP_JA = 0x05

SECCOMP_RET_KILL_PROCESS = 0x80000000
SECCOMP_RET_TRAP = 0x00030000
SECCOMP_RET_ALLOW = 0x7FFF0000
SECCOMP_RET_ERRNO = 0x00050000
ENOSYS = 38

AUDIT_ARCH_X86_64 = 0xC000003E

OFF_NR = 0
OFF_ARCH = 4
OFF_IP_LO = 8
OFF_IP_HI = 12


def arg_lo(i: int) -> int:
    return 16 + 8 * i


def arg_hi(i: int) -> int:
    return 20 + 8 * i


NR_MMAP = 9
NR_SCHED_YIELD = 24
NR_MPROTECT = 10
NR_MUNMAP = 11
NR_RT_SIGRETURN = 15
NR_FUTEX = 202
NR_CLONE = 56
NR_EXIT = 60
NR_RT_SIGPROCMASK = 14
NR_SIGALTSTACK = 131
THREAD_CLONE_FLAGS = 0x1250F00  # VM|FS|FILES|SIGHAND|THREAD|SYSVSEM|CHILD_SETTID|CHILD_CLEARTID
NR_ARCH_PRCTL = 158
FUTEX_WAIT = 0
FUTEX_WAKE = 1
FUTEX_WAIT_BITSET = 9
FUTEX_WAKE_BITSET = 10
MAP_SHARED_FIXED = 0x11
# A stub's descriptors: STUB_MEMFD_FD (own arena), SOCK_FD (its socket from
# the Sentry), OBJECT_FD (the shared object it last received); 4 is unused.
# stub.h has the same numbers.
SOCK_FD = 5
OBJECT_FD = 6
NR_CLOSE = 3
NR_RECVMSG = 47
NR_DUP3 = 292
ARCH_SET_FS = 0x1002


@record
class Assembler:
    """A tiny BPF assembler with forward labels (jumps are resolved at the end)."""

    insns: list[tuple[int, int | str, int | str, int]] = field(default_factory=list)
    labels: dict[str, int] = field(default_factory=dict)

    def ld(self, off: int) -> None:
        self.insns.append((BPF_LD_W_ABS, 0, 0, off))

    def jeq(self, k: int, jt: int | str, jf: int | str) -> None:
        self.insns.append((BPF_JMP_JEQ_K, jt, jf, k))

    def jge(self, k: int, jt: int | str, jf: int | str) -> None:
        self.insns.append((BPF_JMP_JGE_K, jt, jf, k))

    def ret(self, k: int) -> None:
        self.insns.append((BPF_RET_K, 0, 0, k))

    def label(self, name: str) -> None:
        self.labels[name] = len(self.insns)

    def assemble(self) -> bytes:
        out = bytearray()
        for pc, (code, jt, jf, k) in enumerate(self.insns):
            jt_n = self._rel(pc, jt)
            jf_n = self._rel(pc, jf)
            out += struct.pack("<HBBI", code, jt_n, jf_n, k)
        return bytes(out)

    def _rel(self, pc: int, target: int | str) -> int:
        if isinstance(target, int):
            return target
        off = self.labels[target] - pc - 1
        if not 0 <= off < 256:
            raise ValueError(f"BPF jump to {target} out of range")
        return off


def _check_below_stub(a: Assembler, argn: int, region_hi: int, fail: str) -> None:
    """Continue only if args[argn] < region start (compared on the high word)."""
    a.ld(arg_hi(argn))
    a.jge(region_hi, fail, 0)


def stub_filter(syscall_ip: int, region_start: int, region_end: int, memfd_fd: int) -> bytes:
    """The filter every stub installs; see the module docstring for the policy."""
    if region_start & 0xFFFFFFFF or (region_end - 1) >> 32 != region_start >> 32:
        raise ValueError("stub region must start on a 4 GiB boundary and stay inside it")
    region_hi = region_start >> 32
    a = Assembler()
    a.ld(OFF_ARCH)
    a.jeq(AUDIT_ARCH_X86_64, 0, "foreign_arch")
    a.ld(OFF_IP_HI)
    a.jeq(syscall_ip >> 32, 0, "trap")
    a.ld(OFF_IP_LO)
    a.jeq(syscall_ip & 0xFFFFFFFF, 0, "trap")
    # From here on: the stub's own syscall instruction.
    a.ld(OFF_NR)
    a.jeq(NR_RT_SIGRETURN, "allow", 0)
    a.jeq(NR_FUTEX, "futex", 0)
    a.jeq(NR_MMAP, "mmap", 0)
    a.jeq(NR_MUNMAP, "below", 0)
    a.jeq(NR_MPROTECT, "below", 0)
    a.jeq(NR_ARCH_PRCTL, "arch_prctl", 0)
    a.jeq(NR_CLONE, "clone", 0)
    a.jeq(NR_EXIT, "allow", 0)
    a.jeq(NR_RT_SIGPROCMASK, "allow", 0)
    a.jeq(NR_SIGALTSTACK, "allow", 0)
    a.jeq(NR_SCHED_YIELD, "allow", 0)
    a.jeq(NR_RECVMSG, "recvmsg", 0)
    a.jeq(NR_DUP3, "dup3", 0)
    a.jeq(NR_CLOSE, "close", 0)
    a.ret(SECCOMP_RET_KILL_PROCESS)

    a.label("recvmsg")  # only from its own socket (OP_RECV_FD)
    a.ld(arg_hi(0))
    a.jeq(0, 0, "kill")
    a.ld(arg_lo(0))
    a.jeq(SOCK_FD, "allow", "kill")

    a.label("dup3")  # dup3(received, OBJECT_FD, 0)
    a.ld(arg_hi(1))
    a.jeq(0, 0, "kill")
    a.ld(arg_lo(1))
    a.jeq(OBJECT_FD, 0, "kill")
    a.ld(arg_hi(2))
    a.jeq(0, 0, "kill")
    a.ld(arg_lo(2))
    a.jeq(0, "allow", "kill")

    a.label("close")  # the received descriptor's first number, below 3
    a.ld(arg_hi(0))
    a.jeq(0, 0, "kill")
    a.ld(arg_lo(0))
    a.jge(3, "kill", "allow")

    a.label("clone")  # a thread of this very process, nothing else
    a.ld(arg_hi(0))
    a.jeq(0, 0, "kill")
    a.ld(arg_lo(0))
    a.jeq(THREAD_CLONE_FLAGS, "allow", "kill")

    a.label("futex")  # futex(uaddr in the stub region, FUTEX_WAIT|WAKE[_BITSET], ...)
    a.ld(arg_hi(0))
    a.jeq(region_hi, 0, "kill")
    a.ld(arg_lo(0))
    a.jge(region_end & 0xFFFFFFFF, "kill", 0)
    a.ld(arg_hi(1))
    a.jeq(0, 0, "kill")
    a.ld(arg_lo(1))
    a.jeq(FUTEX_WAIT, "allow", 0)
    a.jeq(FUTEX_WAKE, "allow", 0)
    a.jeq(FUTEX_WAIT_BITSET, "allow", 0)
    a.jeq(FUTEX_WAKE_BITSET, "allow", "kill")

    a.label("mmap")  # mmap(addr below the region, len, prot, MAP_SHARED|MAP_FIXED, memfd, off)
    a.ld(arg_hi(3))
    a.jeq(0, 0, "kill")
    a.ld(arg_lo(3))
    a.jeq(MAP_SHARED_FIXED, 0, "kill")
    a.ld(arg_hi(4))
    a.jeq(0, 0, "kill")
    a.ld(arg_lo(4))  # its own arena or the last object received, nothing else
    a.jeq(memfd_fd, "below", 0)
    a.jeq(OBJECT_FD, "below", "kill")
    a.label("below")  # munmap / mprotect / mmap: the address must lie below the region
    _check_below_stub(a, 0, region_hi, "kill")
    a.ret(SECCOMP_RET_ALLOW)

    a.label("arch_prctl")
    a.ld(arg_hi(0))
    a.jeq(0, 0, "kill")
    a.ld(arg_lo(0))
    a.jeq(ARCH_SET_FS, "allow", "kill")

    a.label("foreign_arch")  # int 0x80 (i386 numbering): no such ABI here
    a.ret(SECCOMP_RET_ERRNO | ENOSYS)
    a.label("allow")
    a.ret(SECCOMP_RET_ALLOW)
    a.label("trap")
    a.ret(SECCOMP_RET_TRAP)
    a.label("kill")
    a.ret(SECCOMP_RET_KILL_PROCESS)
    return a.assemble()
