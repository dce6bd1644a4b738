"""ptrace(2): the requests, over the Sentry's own tracer/tracee state.

The stops, the wait reports and the hooks live in sentry/kernel/ptrace.py;
this module checks a request's target and arguments as Linux does (ESRCH
for a task not traced by the caller or not stopped, EIO for an unknown
request or a bad user-area offset, EPERM for a forbidden attach) and moves
registers, memory and siginfo between the tracer and the stopped tracee.

Register formats (x86-64): struct user_regs_struct (27 words, NT_PRSTATUS)
and the 512-byte FXSAVE area (user_fpregs_struct, NT_PRFPREG), and the XSAVE
area (NT_X86_XSTATE, with XCR0 at offset 464 as Linux's regset has it).  The debug
registers of struct user are kept but never armed (no hardware watchpoints).
"""

from __future__ import annotations

import errno
import struct
from typing import TYPE_CHECKING

from sentry.kernel import ptrace as pt
from sentry.kernel import signals as sig
from sentry.kernel.errors import SyscallError
from sentry.kernel.signals import SigInfo
from sentry.systrap import stubs
from syscalls.abi import IOVEC, U64S, s32
from syscalls.table import Entry, partial

if TYPE_CHECKING:
    from sentry.kernel.task import Task

Args = tuple[int, ...]
U64 = (1 << 64) - 1

TRACEME, PEEKTEXT, PEEKDATA, PEEKUSER, POKETEXT, POKEDATA, POKEUSER = range(7)
CONT, KILL, SINGLESTEP = 7, 8, 9
GETREGS, SETREGS, GETFPREGS, SETFPREGS, ATTACH, DETACH = 12, 13, 14, 15, 16, 17
SYSCALL = 24
SETOPTIONS, GETEVENTMSG, GETSIGINFO, SETSIGINFO = 0x4200, 0x4201, 0x4202, 0x4203
GETREGSET, SETREGSET, SEIZE, INTERRUPT, LISTEN = 0x4204, 0x4205, 0x4206, 0x4207, 0x4208
GETSIGMASK, SETSIGMASK = 0x420A, 0x420B
GET_SYSCALL_INFO = 0x420E

NT_PRSTATUS, NT_PRFPREG, NT_X86_XSTATE = 1, 2, 0x202
SW_RESERVED_OFF = 464  # fxsave's software-reserved bytes
XSAVE_HDR_END = 576  # the XSAVE header: 512..575
AUDIT_ARCH_X86_64 = 0xC000003E
USER_REGS = struct.Struct("<27Q")
USER_REGS_SIZE = USER_REGS.size  # 216
FPREGS_SIZE = 512
MXCSR_OFF = 24
MXCSR_MASK = 0xFFFF
DEBUGREG_OFF = 848  # offsetof(struct user, u_debugreg)
TASK_SIZE_MAX = 0x7FFFFFFFF000  # the top of user space: breakpoints go below it
ATTACH_WAIT_S = 5.0  # how long an attach waits for a stopped task to trap
USER_SIZE = 912  # sizeof(struct user)
USER_CS, USER_SS = 0x33, 0x2B
# Flags a tracer may change in eflags (Linux's FLAG_MASK): CF PF AF ZF SF TF DF OF RF AC.
FLAG_MASK = 0x1 | 0x4 | 0x10 | 0x40 | 0x80 | 0x100 | 0x400 | 0x800 | 0x10000 | 0x40000
# struct user_regs_struct's fields -> slot index (None: not a slot register)
_R = stubs
USER_ORDER: tuple[int | str, ...] = (
    _R.R15, _R.R14, _R.R13, _R.R12, _R.RBP, _R.RBX, _R.R11, _R.R10, _R.R9, _R.R8, _R.RAX,
    _R.RCX, _R.RDX, _R.RSI, _R.RDI, "orig_rax", _R.RIP, "cs", _R.EFL, _R.RSP, "ss",
    "fs_base", "gs_base", "ds", "es", "fs", "gs",
)
SYSINFO_HEAD = struct.Struct("<BxxxIQQ")  # op, arch, instruction_pointer, stack_pointer


# -- registers -----------------------------------------------------------------

def _user_regs(t: Task, ts: pt.TraceState) -> bytes:
    regs = ts.regs or [0] * stubs.NREGS
    out = []
    for f in USER_ORDER:
        if isinstance(f, int):
            out.append(regs[f])
        elif f == "orig_rax":
            out.append(ts.orig_rax & U64)
        elif f == "cs":
            out.append(USER_CS)
        elif f == "ss":
            out.append(USER_SS)
        elif f == "fs_base":
            out.append(t.fs_base)
        else:
            out.append(0)
    return USER_REGS.pack(*out)


def _set_user_reg(t: Task, ts: pt.TraceState, index: int, value: int) -> None:
    f = USER_ORDER[index]
    regs = ts.regs
    if regs is None:
        raise SyscallError(errno.ESRCH)
    value &= U64
    if f == stubs.EFL:
        regs[f] = (regs[f] & ~FLAG_MASK) | (value & FLAG_MASK)
    elif isinstance(f, int):
        regs[f] = value
    elif f == "orig_rax":
        ts.orig_rax = value
    elif f == "fs_base":
        if value >= 1 << 47:
            raise SyscallError(errno.EIO)
        if value != t.fs_base:
            t.set_fs_base(value)
    # cs, ss and the other segment registers: x86-64 user code has one
    # value for each; a different one is ignored.


def _set_user_regs(t: Task, ts: pt.TraceState, raw: bytes) -> None:
    vals = USER_REGS.unpack(raw)
    if vals[21] >= 1 << 47:  # fs_base beyond the user range
        raise SyscallError(errno.EIO)
    for i, v in enumerate(vals):
        _set_user_reg(t, ts, i, v)


def _fp_area(t: Task, ts: pt.TraceState) -> bytes:
    """The tracee's FPU state: what the tracer set at this stop, else its
    stub's.  A stub that died meanwhile (the tracee was killed) is ESRCH to
    the tracer, never an error of the tracer's own stub."""
    if ts.fp is not None:
        return ts.fp
    try:
        return t.thread.save_fp()
    except (stubs.StubDied, stubs.StubError):
        raise SyscallError(errno.ESRCH) from None


def _fpregs(t: Task, ts: pt.TraceState) -> bytes:
    area = _fp_area(t, ts)
    return bytes(area[:FPREGS_SIZE]).ljust(FPREGS_SIZE, b"\0")


def _set_fpregs(t: Task, ts: pt.TraceState, raw: bytes) -> None:
    area = _fp_area(t, ts)
    fx = bytearray(raw[:FPREGS_SIZE])
    # MXCSR's reserved bits would make the stub's FPU restore fault: Linux
    # masks them (mxcsr_feature_mask) and so do we.
    mxcsr = struct.unpack_from("<I", fx, MXCSR_OFF)[0] & MXCSR_MASK
    struct.pack_into("<I", fx, MXCSR_OFF, mxcsr)
    new = bytes(fx) + bytes(area[FPREGS_SIZE:])
    ts.fp = new
    t.thread.restore_fp(new)


def _peek_user(t: Task, ts: pt.TraceState, off: int) -> int:
    if off & 7 or off >= USER_SIZE:
        raise SyscallError(errno.EIO)
    if off < USER_REGS_SIZE:
        return USER_REGS.unpack(_user_regs(t, ts))[off // 8]
    if DEBUGREG_OFF <= off < DEBUGREG_OFF + 64:
        return ts.debugreg[(off - DEBUGREG_OFF) // 8]
    return 0


def _poke_user(t: Task, ts: pt.TraceState, off: int, value: int) -> None:
    if off & 7 or off >= USER_SIZE:
        raise SyscallError(errno.EIO)
    if off < USER_REGS_SIZE:
        _set_user_reg(t, ts, off // 8, value)
    elif DEBUGREG_OFF <= off < DEBUGREG_OFF + 64:
        n = (off - DEBUGREG_OFF) // 8
        if n < 4 and value & U64 >= TASK_SIZE_MAX:
            raise SyscallError(errno.EINVAL)  # a breakpoint address in the kernel's half
        ts.debugreg[n] = value & U64
    else:
        raise SyscallError(errno.EIO)


# -- attaching -----------------------------------------------------------------

def _traceme(t: Task) -> int:
    k = t.kernel
    with k.lock:
        parent = t.tg.parent
        if t.ptrace is not None or parent is None or parent.zombie:
            raise SyscallError(errno.EPERM)
        pt.attach(t, parent, seized=False)
    return 0


def _attach(t: Task, pid: int, request: int, addr: int, data: int) -> int:
    seize = request == SEIZE
    if seize:
        if addr:
            raise SyscallError(errno.EIO)
        if data & ~pt.O_MASK:
            raise SyscallError(errno.EINVAL)
    k = t.kernel
    with k.lock:
        target = k.tasks.get(pid)
        if target is None or target.exited:
            raise SyscallError(errno.ESRCH)
        if target.tg is t.tg or target.ptrace is not None or target.tg.exiting:
            raise SyscallError(errno.EPERM)
        if not pt.may_access(t, target):
            raise SyscallError(errno.EPERM)
        ts = pt.attach(target, t.tg, seized=seize, options=data if seize else 0)
        if seize and target.tg.stopped:
            ts.trap_stop = True  # reported once the group stop ends
    if not seize:
        k.send_task(target, SigInfo(sig.SIGSTOP, code=sig.SI_USER, pid=t.pid, uid=t.creds.uid))
        with k.lock:  # a stopped task is in a ptrace-stop when attach returns
            if target.tg.stopped:
                target.wake()
                k.child_exit.wait_for(lambda: ts.stopped or target.exited
                                      or target.ptrace is not ts, timeout=ATTACH_WAIT_S)
    return 0


# -- the call ----------------------------------------------------------------------

def ptrace(t: Task, a: Args) -> int:
    """ptrace(2)."""
    request, pid, addr, data = a[0] & 0xFFFFFFFF, s32(a[1]), a[2], a[3]
    if request == TRACEME:
        return _traceme(t)
    k = t.kernel
    with k.lock:
        target = k.tasks.get(pid) if pid > 0 else None
    if target is None:
        raise SyscallError(errno.ESRCH)
    if request in (ATTACH, SEIZE):
        return _attach(t, pid, request, addr, data)
    if request in (KILL, INTERRUPT):
        with k.lock:
            ts = target.ptrace
            if ts is None or ts.tracer is not t.tg:
                raise SyscallError(errno.ESRCH)
        if request == KILL:
            k.send_task(target, SigInfo(sig.SIGKILL, code=sig.SI_USER))
            return 0
        if not ts.seized:
            raise SyscallError(errno.EIO)
        with k.lock:
            if not ts.stopped:
                ts.trap_stop = True
        target.wake()
        return 0
    tracee, ts = pt.stopped_tracee(t, pid)
    return _stopped_request(t, tracee, ts, request, addr, data)


def _stopped_request(t: Task, tracee: Task, ts: pt.TraceState, request: int, addr: int,
                     data: int) -> int:
    mm = tracee.mm
    if request in (PEEKTEXT, PEEKDATA, PEEKUSER):
        if request == PEEKUSER:
            word = _peek_user(tracee, ts, addr)
        else:
            try:
                word = U64S.unpack(mm.copy_in(addr, 8))[0]
            except SyscallError:
                raise SyscallError(errno.EIO) from None
        t.mm.copy_out(data, U64S.pack(word))
        return 0
    if request in (POKETEXT, POKEDATA):
        try:
            mm.copy_out_force(addr, U64S.pack(data & U64))
        except SyscallError:
            raise SyscallError(errno.EIO) from None
        return 0
    if request == POKEUSER:
        _poke_user(tracee, ts, addr, data)
        return 0
    if request in (CONT, SYSCALL, SINGLESTEP, LISTEN):
        mode = {CONT: pt.CONT, SYSCALL: pt.SYSCALL, SINGLESTEP: pt.SINGLESTEP,
                LISTEN: pt.LISTEN}[request]
        if request == LISTEN and (not ts.seized or ts.kind != pt.STOP_GROUP):
            raise SyscallError(errno.EIO)
        pt.resume(tracee, ts, mode, data & 0xFFFFFFFF if request != LISTEN else 0)
        return 0
    if request == DETACH:
        signo = data & 0xFFFFFFFF
        if signo > sig.NSIG:
            raise SyscallError(errno.EIO)
        with t.kernel.lock:
            pt.detach(tracee, signo)
        return 0
    return _state_request(t, tracee, ts, request, addr, data)


def _state_request(t: Task, tracee: Task, ts: pt.TraceState, request: int, addr: int,
                   data: int) -> int:
    mm = t.mm
    if request == GETREGS:
        mm.copy_out(data, _user_regs(tracee, ts))
    elif request == SETREGS:
        _set_user_regs(tracee, ts, mm.copy_in(data, USER_REGS_SIZE))
    elif request == GETFPREGS:
        mm.copy_out(data, _fpregs(tracee, ts))
    elif request == SETFPREGS:
        _set_fpregs(tracee, ts, mm.copy_in(data, FPREGS_SIZE))
    elif request in (GETREGSET, SETREGSET):
        _regset(t, tracee, ts, request, addr, data)
    elif request == SETOPTIONS:
        if data & ~pt.O_MASK:
            raise SyscallError(errno.EINVAL)
        ts.options = data
    elif request == GETEVENTMSG:
        mm.copy_out(data, U64S.pack(ts.eventmsg))
    elif request == GETSIGINFO:
        if ts.siginfo is None:
            raise SyscallError(errno.EINVAL)
        mm.copy_out(data, ts.siginfo.pack())
    elif request == SETSIGINFO:
        signo, _errno, code = struct.unpack("<iii", mm.copy_in(data, 12))
        if ts.siginfo is None:
            raise SyscallError(errno.EINVAL)
        ts.siginfo = SigInfo(signo, code=code)
    elif request == GETSIGMASK:
        if addr != 8:
            raise SyscallError(errno.EINVAL)
        mm.copy_out(data, U64S.pack(tracee.sigmask))
    elif request == SETSIGMASK:
        if addr != 8:
            raise SyscallError(errno.EINVAL)
        tracee.sigmask = U64S.unpack(mm.copy_in(data, 8))[0] & ~sig.UNBLOCKABLE
    elif request == GET_SYSCALL_INFO:
        return _syscall_info(t, tracee, ts, addr, data)
    else:
        raise SyscallError(errno.EIO)
    return 0


def _xstate(t: Task, ts: pt.TraceState) -> bytes:
    """NT_X86_XSTATE: the XSAVE area (standard format) with XCR0 in the first
    software-reserved word, where ptrace puts it and gdb reads it."""
    area = bytearray(_fp_area(t, ts))
    if len(area) < XSAVE_HDR_END:
        raise SyscallError(errno.EINVAL)  # no XSAVE: the tracer uses NT_PRFPREG
    magic, _ext, features = struct.unpack_from("<IIQ", area, SW_RESERVED_OFF)
    if magic != sig.FP_XSTATE_MAGIC1:
        raise SyscallError(errno.EINVAL)
    area[SW_RESERVED_OFF:FPREGS_SIZE] = struct.pack("<Q", features).ljust(48, b"\0")
    return bytes(area)


def _set_xstate(t: Task, ts: pt.TraceState, raw: bytes) -> None:
    """Keep the frame's software bytes (the stub's sigreturn needs them) and
    only feature bits this CPU saves, as Linux validates the header."""
    area = bytearray(_fp_area(t, ts))
    features = struct.unpack_from("<Q", area, SW_RESERVED_OFF + 8)[0]
    new = bytearray(raw[:len(area)]) + area[len(raw):]
    new[SW_RESERVED_OFF:FPREGS_SIZE] = area[SW_RESERVED_OFF:FPREGS_SIZE]
    bv = struct.unpack_from("<Q", new, FPREGS_SIZE)[0] & features
    new[FPREGS_SIZE:XSAVE_HDR_END] = struct.pack("<Q", bv).ljust(64, b"\0")
    mxcsr = struct.unpack_from("<I", new, MXCSR_OFF)[0] & MXCSR_MASK
    struct.pack_into("<I", new, MXCSR_OFF, mxcsr)
    ts.fp = bytes(new)
    t.thread.restore_fp(ts.fp)


_REGSETS = {
    NT_PRSTATUS: (_user_regs, _set_user_regs),
    NT_PRFPREG: (_fpregs, _set_fpregs),
    NT_X86_XSTATE: (_xstate, _set_xstate),
}


def _regset(t: Task, tracee: Task, ts: pt.TraceState, request: int, note: int,
            iov_addr: int) -> None:
    base, length = IOVEC.unpack(t.mm.copy_in(iov_addr, IOVEC.size))
    if note not in _REGSETS:
        raise SyscallError(errno.EINVAL)
    get, put = _REGSETS[note]
    cur = get(tracee, ts)
    n = min(length, len(cur))
    if request == GETREGSET:
        t.mm.copy_out(base, cur[:n])
    else:  # a partial set keeps the rest as it is, as Linux's regset copyin
        if note == NT_X86_XSTATE and length != len(cur):
            raise SyscallError(errno.EFAULT)  # Linux takes the whole area only
        put(tracee, ts, t.mm.copy_in(base, n) + cur[n:])
    t.mm.copy_out(iov_addr + 8, U64S.pack(n))


def _syscall_info(t: Task, tracee: Task, ts: pt.TraceState, size: int, addr: int) -> int:
    """PTRACE_GET_SYSCALL_INFO: op, arch, ip, sp, then the entry's number and
    arguments or the exit's value; returns the full size Linux would."""
    regs = ts.regs or [0] * stubs.NREGS
    head = SYSINFO_HEAD.pack(0, AUDIT_ARCH_X86_64, regs[stubs.RIP], regs[stubs.RSP])
    if ts.kind == pt.STOP_ENTER:
        nr, args = ts.orig_rax & U64, tuple(regs[i] for i in (
            stubs.RDI, stubs.RSI, stubs.RDX, stubs.R10, stubs.R8, stubs.R9))
        info = bytes([1]) + head[1:] + struct.pack("<Q6Q", nr, *args)
    elif ts.kind == pt.STOP_EXIT:
        rval = regs[stubs.RAX]
        signed = rval - (1 << 64) if rval >> 63 else rval
        is_error = 1 if -4095 <= signed < 0 else 0
        info = bytes([2]) + head[1:] + struct.pack("<qB", signed, is_error)
    else:
        info = head
    if size:
        t.mm.copy_out(addr, info[:size])
    return len(info)


ENTRIES: list[Entry] = [
    partial("ptrace", ptrace, note="the Sentry's own, for tasks of the sandbox: stops, regs, "
            "fpregs, PRSTATUS/PRFPREG/X86_XSTATE regsets, memory, options, events, "
            "syscall info, single step; no debug registers armed, no SYSEMU, "
            "PEEKSIGINFO, ARCH_PRCTL, GET_THREAD_AREA or seccomp stops (EIO)"),
]
