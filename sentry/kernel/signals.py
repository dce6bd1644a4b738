"""Signals: dispositions, pending queues, and the x86-64 signal frame.

Facts about Linux signals this module follows (signal(7), x86 signal.c):

- Dispositions are per process (shared by threads); masks and thread-directed
  pending signals are per thread; process-directed signals wait in a shared
  queue until some thread that does not block them takes them.
- Standard signals (1-31) coalesce: a second instance while one is pending is
  dropped.  Real-time signals (32-64) queue.
- The frame the kernel pushes is struct rt_sigframe: the return address
  (sa_restorer), a ucontext (flags, link, stack_t, sigcontext of 256 bytes,
  signal mask), then a siginfo of 128 bytes.  The sigcontext's first 18 words
  are the general registers in the same order as the stub's slot (R8..R15,
  RDI, RSI, RBP, RBX, RDX, RAX, RCX, RSP, RIP, EFLAGS), so frames are built
  straight from the slot.  At handler entry RSP+8 is 16-byte aligned.
- The frame carries the interrupted code's FPU state (the stub's host signal
  frame holds it; the stub copies it out on request and back at rt_sigreturn),
  64-byte aligned above the rt_sigframe, with FP_XSTATE_MAGIC2 after it as
  Linux writes it.
"""

from __future__ import annotations

import signal as _signal
import struct
from typing import Any

from shm.records import record

NSIG = 64
SIGRTMIN = 32

SIG_DFL = 0
SIG_IGN = 1

SA_NOCLDSTOP = 0x00000001
SA_NOCLDWAIT = 0x00000002
SA_SIGINFO = 0x00000004
SA_RESTORER = 0x04000000
SA_ONSTACK = 0x08000000
SA_RESTART = 0x10000000
SA_NODEFER = 0x40000000
SA_RESETHAND = 0x80000000

SS_ONSTACK = 1
SS_DISABLE = 2
SS_AUTODISARM = 1 << 31

SI_USER = 0
SI_KERNEL = 0x80
SI_TKILL = -6
CLD_EXITED = 1
CLD_KILLED = 2
CLD_DUMPED = 3

SIGKILL = int(_signal.SIGKILL)
SIGSTOP = int(_signal.SIGSTOP)
SIGCHLD = int(_signal.SIGCHLD)
SIGPIPE = int(_signal.SIGPIPE)
SIGXFSZ = int(_signal.SIGXFSZ)
SIGSEGV = int(_signal.SIGSEGV)
SIGCONT = int(_signal.SIGCONT)
UNBLOCKABLE = (1 << (SIGKILL - 1)) | (1 << (SIGSTOP - 1))

# Default actions.
TERM, CORE, IGNORE, STOP, CONT = "term", "core", "ignore", "stop", "cont"
_DEFAULTS = {
    _signal.SIGHUP: TERM, _signal.SIGINT: TERM, _signal.SIGQUIT: CORE, _signal.SIGILL: CORE,
    _signal.SIGTRAP: CORE, _signal.SIGABRT: CORE, _signal.SIGBUS: CORE, _signal.SIGFPE: CORE,
    _signal.SIGKILL: TERM, _signal.SIGUSR1: TERM, _signal.SIGSEGV: CORE, _signal.SIGUSR2: TERM,
    _signal.SIGPIPE: TERM, _signal.SIGALRM: TERM, _signal.SIGTERM: TERM, 16: TERM,
    _signal.SIGCHLD: IGNORE, _signal.SIGCONT: CONT, _signal.SIGSTOP: STOP,
    _signal.SIGTSTP: STOP, _signal.SIGTTIN: STOP, _signal.SIGTTOU: STOP,
    _signal.SIGURG: IGNORE, _signal.SIGXCPU: CORE, _signal.SIGXFSZ: CORE,
    _signal.SIGVTALRM: TERM, _signal.SIGPROF: TERM, _signal.SIGWINCH: IGNORE,
    _signal.SIGIO: TERM, _signal.SIGPWR: TERM, _signal.SIGSYS: CORE,
}


def default_action(sig: int) -> str:
    return _DEFAULTS.get(sig, TERM)  # real-time signals terminate by default


def bit(sig: int) -> int:
    return 1 << (sig - 1)


SIGACTION = struct.Struct("<QQQQ")  # handler, flags, restorer, mask


@record(slots=True)
class SigAction:
    handler: int = SIG_DFL
    flags: int = 0
    restorer: int = 0
    mask: int = 0

    def pack(self) -> bytes:
        return SIGACTION.pack(self.handler, self.flags, self.restorer, self.mask)

    @classmethod
    def unpack(cls, raw: bytes) -> SigAction:
        h, f, r, m = SIGACTION.unpack(raw)
        return cls(h, f & 0xFFFFFFFF, r, m & ~UNBLOCKABLE)


@record(slots=True)
class SigInfo:
    signo: int
    code: int = SI_USER
    pid: int = 0
    uid: int = 0
    status: int = 0  # SIGCHLD: exit status or signal
    addr: int = 0  # faults: si_addr; seccomp's SIGSYS: si_call_addr
    value: int = 0  # sigqueue value
    errno: int = 0  # si_errno (seccomp's SIGSYS: the filter's data)
    syscall: int = 0  # seccomp's SIGSYS: si_syscall
    arch: int = 0  # seccomp's SIGSYS: si_arch
    on_take: Any = None  # called when dequeued (POSIX timers count overruns until then)
    band: int = 0  # SIGIO/F_SETSIG's si_band (poll events); with it, si_fd
    fd: int = 0

    def pack(self) -> bytes:
        buf = bytearray(128)
        struct.pack_into("<iii", buf, 0, self.signo, self.errno, self.code)
        if self.band:
            struct.pack_into("<qi", buf, 16, self.band, self.fd)
        elif self.syscall or self.arch:
            struct.pack_into("<QiI", buf, 16, self.addr, self.syscall, self.arch)
        elif self.addr:
            struct.pack_into("<Q", buf, 16, self.addr)
        else:
            struct.pack_into("<iI", buf, 16, self.pid, self.uid)
            if self.signo == SIGCHLD:
                struct.pack_into("<i", buf, 24, self.status)
            else:
                struct.pack_into("<Q", buf, 24, self.value)
        return bytes(buf)


class PendingSignals:
    """A pending set: one queued instance per standard signal, a queue for RT ones."""

    __slots__ = ("mask", "queue")

    def __init__(self) -> None:
        self.mask = 0
        self.queue: dict[int, list[SigInfo]] = {}

    def add(self, info: SigInfo) -> bool:
        sig = info.signo
        if sig < SIGRTMIN and self.mask & bit(sig):
            return False
        self.mask |= bit(sig)
        self.queue.setdefault(sig, []).append(info)
        return True

    def take(self, blocked: int) -> SigInfo | None:
        """The lowest-numbered pending signal not in ``blocked`` (synchronous
        signals first, as Linux does), removed from the set."""
        ready = self.mask & ~blocked
        if not ready:
            return None
        sync = ready & (bit(SIGSEGV) | bit(7) | bit(4) | bit(8) | bit(5) | bit(31))
        pick = sync or ready
        sig = (pick & -pick).bit_length()
        q = self.queue[sig]
        info = q.pop(0)
        if not q:
            del self.queue[sig]
            self.mask &= ~bit(sig)
        if info.on_take is not None:
            info.on_take()
        return info

    def discard(self, sig: int) -> None:
        self.mask &= ~bit(sig)
        self.queue.pop(sig, None)


# --- the frame -------------------------------------------------------------

UC_FP_XSTATE = 0x1
UC_SIGCONTEXT_SS = 0x2
UC_STRICT_RESTORE_SS = 0x4
# 18 regs; cs gs fs ss; err trapno oldmask cr2 fpstate; 8 reserved words
SIGCONTEXT = struct.Struct("<18QHHHHQQQQQ64x")
UCONTEXT_HEAD = struct.Struct("<QQQiiQ")  # uc_flags, uc_link, ss_sp, ss_flags, pad, ss_size
FRAME_SIZE = 8 + UCONTEXT_HEAD.size + SIGCONTEXT.size + 8 + 128
UC_OFF = 8
MCONTEXT_OFF = UC_OFF + UCONTEXT_HEAD.size
SIGMASK_OFF = MCONTEXT_OFF + SIGCONTEXT.size
SIGINFO_OFF = SIGMASK_OFF + 8
USER_CS = 0x33
USER_SS = 0x2B
REDZONE = 128
EFLAGS_DF = 0x400
EFLAGS_TF = 0x100
EFLAGS_RF = 0x10000
# The flags a sigreturn may set (Linux's FIX_EFLAGS): AC OF DF TF SF ZF AF PF CF RF.
FIX_EFLAGS = 0x40000 | 0x800 | 0x400 | 0x100 | 0x80 | 0x40 | 0x10 | 0x4 | 0x1 | 0x10000

RSP_INDEX = 15
RIP_INDEX = 16
EFL_INDEX = 17
RAX_INDEX = 13
RDI_INDEX = 8
RSI_INDEX = 9
RDX_INDEX = 12


FP_XSTATE_MAGIC1 = 0x46505853
FP_XSTATE_MAGIC2 = 0x46505845
FXSAVE_SIZE = 512


def fp_area_size(head: bytes) -> int:
    """The size of an FPU area from its first 512 bytes (xsave's software bytes)."""
    magic, _extended, _features, xsize = struct.unpack_from("<IIQI", head, 464)
    if magic == FP_XSTATE_MAGIC1 and FXSAVE_SIZE <= xsize <= 0x2000:
        return xsize
    return FXSAVE_SIZE


def build_frame(
    regs: list[int], act: SigAction, info: SigInfo, old_mask: int,
    altstack: tuple[int, int, int], fault_addr: int = 0, fpstate: bytes = b"",
) -> tuple[int, bytes, list[int], int, bytes]:
    """The frame for delivering ``info`` with ``act``: (address, bytes, new
    registers, FPU area address, FPU area bytes).

    ``regs`` are the interrupted registers (slot order); ``altstack`` is the
    task's (sp, flags, size); ``fpstate`` the interrupted FPU state.
    """
    sp = regs[RSP_INDEX]
    ss_sp, ss_flags, ss_size = altstack
    on_alt = ss_size and ss_sp <= sp < ss_sp + ss_size
    if act.flags & SA_ONSTACK and not (ss_flags & SS_DISABLE) and ss_size and not on_alt:
        sp = ss_sp + ss_size
    else:
        sp -= REDZONE
    fp_addr = 0
    fp_bytes = b""
    uc_flags = UC_SIGCONTEXT_SS | UC_STRICT_RESTORE_SS
    if len(fpstate) >= FXSAVE_SIZE:
        fp_bytes = fpstate + struct.pack("<I", FP_XSTATE_MAGIC2)
        sp = (sp - len(fp_bytes)) & ~63
        fp_addr = sp
        if len(fpstate) > FXSAVE_SIZE:
            uc_flags |= UC_FP_XSTATE
    sp -= FRAME_SIZE
    sp = (sp & ~15) - 8
    stack_flags = SS_ONSTACK if on_alt else (ss_flags & ~SS_AUTODISARM) if ss_size else SS_DISABLE
    head = UCONTEXT_HEAD.pack(uc_flags, 0, ss_sp, stack_flags, 0, ss_size)
    mctx = SIGCONTEXT.pack(*regs[:18], USER_CS, 0, 0, USER_SS, 0, 14 if fault_addr else 0,
                           old_mask & 0xFFFFFFFF, fault_addr, fp_addr)
    frame = (struct.pack("<Q", act.restorer) + head + mctx + struct.pack("<Q", old_mask)
             + info.pack())
    new = list(regs)
    new[RSP_INDEX] = sp
    new[RIP_INDEX] = act.handler
    new[RDI_INDEX] = info.signo
    new[RSI_INDEX] = sp + SIGINFO_OFF
    new[RDX_INDEX] = sp + UC_OFF
    new[RAX_INDEX] = 0
    new[EFL_INDEX] = regs[EFL_INDEX] & ~(EFLAGS_DF | EFLAGS_TF | EFLAGS_RF)
    return sp, frame, new, fp_addr, fp_bytes


def parse_frame(raw: bytes, current: list[int]
                ) -> tuple[list[int], int, tuple[int, int, int], int]:
    """Registers, signal mask, sigaltstack and FPU area address saved in a frame
    being returned from (``raw`` starts at the ucontext).  Flags are sanitized
    as Linux does."""
    uc_flags, _link, ss_sp, ss_flags, _pad, ss_size = UCONTEXT_HEAD.unpack_from(raw, 0)
    vals = SIGCONTEXT.unpack_from(raw, UCONTEXT_HEAD.size)
    regs = list(vals[:18])
    regs[EFL_INDEX] = (current[EFL_INDEX] & ~FIX_EFLAGS) | (regs[EFL_INDEX] & FIX_EFLAGS)
    (mask,) = struct.unpack_from("<Q", raw, UCONTEXT_HEAD.size + SIGCONTEXT.size)
    return regs, mask & ~UNBLOCKABLE, (ss_sp, ss_flags, ss_size), vals[26]


UCONTEXT_SIZE = UCONTEXT_HEAD.size + SIGCONTEXT.size + 8
