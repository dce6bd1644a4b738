"""seccomp for the application: strict mode and classic-BPF filters that a
program installs on itself (seccomp(2), prctl(PR_SET_SECCOMP)), checked by the
Sentry before each of its syscalls, as gVisor's Sentry checks them.

Why in the Sentry and not the host: the application's syscalls never reach
the host kernel, so a filter the host enforced would see only the stub's
calls. The Sentry runs the program over Linux's ``struct seccomp_data`` (nr,
AUDIT_ARCH_X86_64, the instruction pointer, six arguments) and acts on the
verdict, in Linux's precedence when several filters are stacked (the lowest
action as a signed value wins: KILL_PROCESS, KILL_THREAD, TRAP, ERRNO,
USER_NOTIF, TRACE, LOG, ALLOW).

What each action does here:

* ALLOW and LOG run the call (LOG also writes the debug log);
* ERRNO returns -data (at most 4095) without running it;
* TRAP queues SIGSYS (si_code SYS_SECCOMP, si_call_addr, si_syscall,
  si_arch, si_errno = data) forced past a mask or SIG_IGN, and the call
  returns its own number, as Linux's syscall rollback leaves RAX;
* TRACE, with no tracer attached, fails with ENOSYS; USER_NOTIF without a
  listener (none can be made: SECCOMP_FILTER_FLAG_NEW_LISTENER is refused)
  fails with ENOSYS too;
* KILL_THREAD ends the thread, or the process when it is the last thread,
  with SIGSYS and a core flag; KILL_PROCESS ends the process the same way.

A program is checked when it is installed, with Linux's rules (the allowed
opcodes, 32-bit aligned loads inside seccomp_data, forward jumps inside the
program, a final return, scratch memory written before it is read, no
division by a zero constant): anything else is EINVAL, and a chain longer
than Linux's 32768-instruction path limit is ENOMEM.

Filters are immutable and shared: a fork or clone child inherits its
parent's chain, execve keeps it, and a new filter makes a new chain whose
tail is the old one.
"""

from __future__ import annotations

import errno
import logging
import signal
import struct
from typing import Any

from sentry.kernel.errors import SyscallError
from sentry.systrap.stubs import RIP

log = logging.getLogger("pyvisor")

AUDIT_ARCH_X86_64 = 0xC000003E
SECCOMP_MODE_DISABLED, SECCOMP_MODE_STRICT, SECCOMP_MODE_FILTER = 0, 1, 2

RET_KILL_PROCESS = 0x80000000
RET_KILL_THREAD = 0x00000000
RET_TRAP = 0x00030000
RET_ERRNO = 0x00050000
RET_USER_NOTIF = 0x7FC00000
RET_TRACE = 0x7FF00000
RET_LOG = 0x7FFC0000
RET_ALLOW = 0x7FFF0000
RET_ACTION_FULL = 0xFFFF0000
RET_DATA = 0x0000FFFF
KNOWN_ACTIONS = frozenset({RET_KILL_PROCESS, RET_KILL_THREAD, RET_TRAP, RET_ERRNO,
                           RET_USER_NOTIF, RET_TRACE, RET_LOG, RET_ALLOW})
SYS_SECCOMP = 1  # si_code of a TRAP's SIGSYS
MAX_ERRNO = 4095

BPF_MAXINSNS = 4096
MAX_INSNS_PER_PATH = 32768
SECCOMP_DATA_SIZE = 64
BPF_MEMWORDS = 16
SOCK_FILTER = struct.Struct("<HBBI")  # code, jt, jf, k

# Classic BPF opcodes (linux/bpf_common.h, linux/filter.h).
LD, LDX, ST, STX, ALU, JMP, RET, MISC = range(8)
W, ABS, IMM, MEM, LEN = 0x00, 0x20, 0x00, 0x60, 0x80
ADD, SUB, MUL, DIV, OR, AND, LSH, RSH, NEG, MOD, XOR = (
    0x00, 0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0x80, 0x90, 0xA0)
JA, JEQ, JGT, JGE, JSET = 0x00, 0x10, 0x20, 0x30, 0x40
K, X = 0x00, 0x08
RVAL_A = 0x10
TAX, TXA = 0x00, 0x80
U32 = 0xFFFFFFFF

_ALU_OPS = (ADD, SUB, MUL, DIV, OR, AND, LSH, RSH, MOD, XOR)
ALLOWED = frozenset(
    {LD | W | ABS, LD | W | LEN, LDX | W | LEN, RET | K, RET | RVAL_A, LD | IMM, LDX | IMM,
     MISC | TAX, MISC | TXA, LD | MEM, LDX | MEM, ST, STX, ALU | NEG, JMP | JA}
    | {ALU | op | src for op in _ALU_OPS for src in (K, X)}
    | {JMP | op | src for op in (JEQ, JGT, JGE, JSET) for src in (K, X)}
)


def _einval() -> SyscallError:
    return SyscallError(errno.EINVAL)


def check_program(raw: bytes) -> tuple[tuple[int, int, int, int], ...]:
    """Decode and check a sock_filter array as Linux's bpf_check_classic and
    seccomp_check_filter do; the decoded instructions, or EINVAL."""
    n = len(raw) // SOCK_FILTER.size
    if not 0 < n <= BPF_MAXINSNS:
        raise _einval()
    prog = tuple(SOCK_FILTER.iter_unpack(raw[:n * SOCK_FILTER.size]))
    for pc, (code, jt, jf, k) in enumerate(prog):
        if code not in ALLOWED:
            raise _einval()
        cls = code & 0x07
        if code == LD | W | ABS and (k >= SECCOMP_DATA_SIZE or k & 3):
            raise _einval()
        if cls == ALU and code & 0x08 == K:
            op = code & 0xF0
            if op in (DIV, MOD) and k == 0:
                raise _einval()
            if op in (LSH, RSH) and k >= 32:
                raise _einval()
        if code in (LD | MEM, LDX | MEM, ST, STX) and k >= BPF_MEMWORDS:
            raise _einval()
        if cls == JMP:
            if code == JMP | JA:
                if k >= n - pc - 1:
                    raise _einval()
            elif pc + 1 + jt >= n or pc + 1 + jf >= n:
                raise _einval()
    if prog[-1][0] & 0x07 != RET:
        raise _einval()
    _check_memory(prog)
    return prog


def _check_memory(prog: tuple[tuple[int, int, int, int], ...]) -> None:
    """check_load_and_stores(): every scratch word is written on every path
    before it is read."""
    masks = [0xFFFF] * len(prog)
    valid = 0
    for pc, (code, jt, jf, k) in enumerate(prog):
        valid &= masks[pc]
        if code in (ST, STX):
            valid |= 1 << k
        elif code in (LD | MEM, LDX | MEM):
            if not valid & (1 << k):
                raise _einval()
        elif code & 0x07 == JMP:
            if code == JMP | JA:
                masks[pc + 1 + k] &= valid
            else:
                masks[pc + 1 + jt] &= valid
                masks[pc + 1 + jf] &= valid
            valid = 0xFFFF


def run(prog: tuple[tuple[int, int, int, int], ...], data: bytes) -> int:
    """Run a checked program over a packed seccomp_data; its u32 return."""
    a = x = 0
    mem = [0] * BPF_MEMWORDS
    pc = 0
    while True:
        code, jt, jf, k = prog[pc]
        pc += 1
        cls = code & 0x07
        if cls == JMP:
            op = code & 0xF0
            if op == JA:
                pc += k
                continue
            v = x if code & X else k
            if op == JEQ:
                hit = a == v
            elif op == JGT:
                hit = a > v
            elif op == JGE:
                hit = a >= v
            else:
                hit = bool(a & v)
            pc += jt if hit else jf
        elif cls == LD:
            mode = code & 0xE0
            if mode == ABS:
                a = int.from_bytes(data[k:k + 4], "little")
            elif mode == LEN:
                a = SECCOMP_DATA_SIZE
            elif mode == MEM:
                a = mem[k]
            else:
                a = k
        elif cls == RET:
            return a if code & RVAL_A else k
        elif cls == ALU:
            op = code & 0xF0
            v = x if code & X else k
            if op == ADD:
                a = (a + v) & U32
            elif op == SUB:
                a = (a - v) & U32
            elif op == MUL:
                a = (a * v) & U32
            elif op == DIV:
                if not v:
                    return 0
                a //= v
            elif op == MOD:
                if not v:
                    return 0
                a %= v
            elif op == OR:
                a |= v
            elif op == AND:
                a &= v
            elif op == XOR:
                a ^= v
            elif op == LSH:
                a = (a << (v & 31)) & U32
            elif op == RSH:
                a >>= v & 31
            else:  # NEG
                a = -a & U32
        elif cls == LDX:
            mode = code & 0xE0
            x = SECCOMP_DATA_SIZE if mode == LEN else mem[k] if mode == MEM else k
        elif cls == ST:
            mem[k] = a
        elif cls == STX:
            mem[k] = x
        else:  # MISC
            if code & 0xF8 == TXA:
                a = x
            else:
                x = a


class Filter:
    """One installed program and the chain it was stacked on."""

    __slots__ = ("prog", "prev", "log", "insns")

    def __init__(self, prog: tuple[tuple[int, int, int, int], ...], prev: Filter | None,
                 log_actions: bool) -> None:
        self.prog = prog
        self.prev = prev
        self.log = log_actions
        self.insns = len(prog) + 4 + (prev.insns if prev is not None else 0)
        if self.insns > MAX_INSNS_PER_PATH:
            raise SyscallError(errno.ENOMEM)


def _s32(v: int) -> int:
    return v - (1 << 32) if v & 0x80000000 else v


def evaluate(chain: Filter, nr: int, args: tuple[int, ...], ip: int) -> tuple[int, int]:
    """(action, data) of the whole chain for one syscall."""
    data = struct.pack("<iIQ6Q", _s32(nr & U32), AUDIT_ARCH_X86_64, ip,
                       *(v & ((1 << 64) - 1) for v in args))
    best = RET_ALLOW
    f: Filter | None = chain
    while f is not None:
        ret = run(f.prog, data)
        if _s32(ret & RET_ACTION_FULL) < _s32(best & RET_ACTION_FULL):
            best = ret
        f = f.prev
    action = best & RET_ACTION_FULL
    if action not in KNOWN_ACTIONS:
        action = RET_KILL_PROCESS
    return action, best & RET_DATA


# -- enforcement (called from the task loop) -----------------------------------

STRICT = "strict"
"""A task's seccomp state in strict mode (a Filter chain in filter mode)."""
STRICT_ALLOWED = frozenset({0, 1, 15, 60})  # read, write, rt_sigreturn, exit


def mode_of(state: object) -> int:
    """PR_GET_SECCOMP's answer, and /proc/PID/status's Seccomp field."""
    if state is None:
        return SECCOMP_MODE_DISABLED
    return SECCOMP_MODE_STRICT if state is STRICT else SECCOMP_MODE_FILTER


def filter_count(state: object) -> int:
    """How many filters are stacked (/proc/PID/status's Seccomp_filters)."""
    n, f = 0, state if isinstance(state, Filter) else None
    while f is not None:
        n, f = n + 1, f.prev
    return n


def gate(task: Any, nr: int, args: tuple[int, ...], handler: Any) -> Any:
    """The handler to run for this syscall of a task under seccomp: its own
    when allowed, else one that carries out the verdict."""
    state = task.seccomp
    if state is STRICT:
        if nr in STRICT_ALLOWED:
            return handler
        return _killer(signal.SIGKILL, process=True)
    action, data = evaluate(state, nr, args, task.regs[RIP] if task.regs else 0)
    if action == RET_ALLOW:
        return handler
    if action == RET_LOG:
        log.info("seccomp: task %d syscall %d allowed and logged", task.tid, nr)
        return handler
    if state.log or action in (RET_KILL_PROCESS, RET_KILL_THREAD, RET_TRAP):
        log.info("seccomp: task %d syscall %d action %#x", task.tid, nr, action)
    if action == RET_ERRNO:
        err = min(data, MAX_ERRNO)
        return lambda t, a: -err
    if action == RET_TRAP:
        return lambda t, a: _trap(t, nr, data)
    if action in (RET_TRACE, RET_USER_NOTIF):
        return lambda t, a: -errno.ENOSYS
    return _killer(signal.SIGSYS, process=action == RET_KILL_PROCESS)


def _trap(task: Any, nr: int, data: int) -> int:
    """SECCOMP_RET_TRAP: SIGSYS forced on the thread; RAX keeps the number."""
    from sentry.kernel.signals import SigAction, SigInfo, bit

    ip = task.regs[RIP] if task.regs else 0
    with task.kernel.lock:
        if task.sigmask & bit(signal.SIGSYS) or task.tg.action(signal.SIGSYS).handler == 1:
            task.tg.sigactions[signal.SIGSYS] = SigAction()
            task.sigmask &= ~bit(signal.SIGSYS)
        task.pending.add(SigInfo(signal.SIGSYS, code=SYS_SECCOMP, addr=ip, errno=data,
                                 syscall=nr, arch=AUDIT_ARCH_X86_64))
    return nr


def _killer(signo: int, process: bool) -> Any:
    """A handler that ends the thread (or the process) as if by ``signo``,
    with a core flag for SIGSYS as Linux's seccomp kill dumps core."""

    def kill(task: Any, a: tuple[int, ...]) -> int:
        from sentry.kernel.task_exits import TaskExit

        status = signo | (0x80 if signo == signal.SIGSYS else 0)
        alone = len(task.tg.live_tasks()) <= 1
        if process or alone:
            with task.kernel.lock:
                task.kernel._kill_group(task.tg, signo)
                task.tg.exit_status = status
            raise TaskExit(status)
        raise TaskExit(status, group=False)

    return kill
