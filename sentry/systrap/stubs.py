"""The systrap platform's hand-off: a stub thread's sysmsg slot, seen from the Sentry.

A typed wrapper over the cffi module: it checks what it passes to C and turns C
return codes into exceptions here, in one place. This module holds what the
syscall path touches (the register layout, the wait/wake policy and
`StubThread`'s slot access); making stub processes (the zygote, `Platform`,
`StubProcess`) is sentry/systrap/processes.py's, whose docstring has the
start-up order that matters.
"""

from __future__ import annotations

import os
import struct
import time
from typing import TYPE_CHECKING

from sentry import placement
from sentry.mm.address_space import StubOp
from sentry.systrap import objects

if TYPE_CHECKING:
    from sentry.systrap.processes import StubProcess

try:
    from sentry.systrap._stub import ffi, lib
except ImportError as exc:  # pragma: no cover - depends on the install
    raise ImportError(
        "the systrap stub is not compiled: run `pip install -e .` "
        "(or `python3 sentry/systrap/_build_stub.py`)"
    ) from exc

# 13: syscall patching (via_patch, kick_deferred, use_gs, SLOT_RESYNC);
# 14: a stub holds its own arena and the common one (OP_RECV_FD);
# 15: no stub nor the zygote holds the common arena (stub_start_zygote(sock))
EXPECTED_ABI = 15
if lib.stub_abi_version() != EXPECTED_ABI:  # pragma: no cover
    raise ImportError(
        f"stale systrap stub build (ABI {lib.stub_abi_version()}, want {EXPECTED_ABI}): "
        "rebuild with `pip install -e .`"
    )

# ucontext gregs indices, the order the slot stores registers in.
R8, R9, R10, R11, R12, R13, R14, R15 = range(8)
RDI, RSI, RBP, RBX, RDX, RAX, RCX, RSP, RIP, EFL = range(8, 18)
NREGS = lib.STUB_NREGS

REGS = struct.Struct(f"<{NREGS}Q")
# A syscall's number and arguments only (R8 R9 R10 .. RDI RSI .. RDX RAX): the
# dispatch path unpacks seven registers, not eighteen (measured: half the cost).
SYSCALL_REGS = struct.Struct("<3Q40x2Q16x2Q")
OP = struct.Struct("<5Q")
SLOT_REGS_OFF = ffi.offsetof("struct stub_slot", "regs")
SLOT_OPS_OFF = ffi.offsetof("struct stub_slot", "ops")

SPIN_MAX = 60_000  # ~20 us of TSC: spin no longer than a futex round trip costs
# Never stop spinning entirely: a sleeping side's wake-up costs tens of us on an
# idle VM (deep idle states), so a policy that decays to pure futex sleeps
# settles at ~60 us a syscall there instead of ~5 us (measured).
SPIN_FLOOR = 8_000
WAIT_SLICE_NS = 100_000_000  # wake up this often to check the stub is still alive
# Placement (sentry/placement.py): a stub thread on the home CPU that runs this
# long without trapping is computing, and gets the sandbox's whole CPU set; a
# let-out thread that traps again within QUICK_NS, NARROW_AFTER times in a row,
# comes home.
WIDEN_AFTER_NS = 20_000_000
QUICK_NS = 1_000_000
NARROW_AFTER = 32

# The hot path's names, bound once: a cffi lib attribute costs a lookup each time.
_SYSCALL_RETURN = lib.sentry_syscall_return
_SLOT_EVENT = lib.SLOT_EVENT
_OP_MAP = lib.OP_MAP
_U64 = 0xFFFFFFFFFFFFFFFF


class StubError(Exception):
    """The platform could not do what the Sentry asked (a host-side failure)."""


class StubDied(Exception):
    """The stub process went away underneath the Sentry."""

    def __init__(self, pid: int, status: int) -> None:
        super().__init__(f"stub {pid} died (wait status {status:#x})")
        self.pid = pid
        self.status = status


_FXSAVE_MXCSR = 24
_FXSAVE_REGS = slice(32, 416)  # x87/MMX then XMM registers
_XSTATE_BV = 512  # the XSAVE header, after the 512-byte legacy area
_XSTATE_VECTOR_BITS = 0xE4  # AVX, AVX-512 opmask, ZMM_Hi256, Hi16_ZMM: init state


def init_fp_state(area: bytes) -> bytes:
    """A stub's saved FPU area turned into Linux's state for a new image: x87
    control word 0x37f, MXCSR 0x1f80 (no sticky exception flags), every x87
    and vector register zero; other XSAVE components (e.g. PKRU) as they were."""
    if len(area) < 512:
        return area
    out = bytearray(area)
    out[0:24] = struct.pack("<HHHHQQ", 0x037F, 0, 0, 0, 0, 0)  # FCW FSW FTW FOP FIP FDP
    struct.pack_into("<I", out, _FXSAVE_MXCSR, 0x1F80)
    out[_FXSAVE_REGS] = bytes(_FXSAVE_REGS.stop - _FXSAVE_REGS.start)
    if len(out) >= _XSTATE_BV + 8:
        bv = struct.unpack_from("<Q", out, _XSTATE_BV)[0]
        struct.pack_into("<Q", out, _XSTATE_BV, (bv & ~_XSTATE_VECTOR_BITS) | 0x3)
    return bytes(out)


class StubThread:
    """One stub thread's sysmsg slot, seen from the Sentry.

    Hand-offs: on the home CPU (sentry/placement.py) neither side spins, since
    the other cannot run while it does; a thread let out to the whole CPU set
    (``wide``), or any thread when the sandbox is not pinned (``spins``), is
    answered across CPUs, where spinning for a few us beats a futex wake-up."""

    __slots__ = ("proc", "index", "slot", "base", "regs_off", "view", "fs_base", "host_tid",
                 "spin", "spins", "wide", "quick", "ops_queued")

    def __init__(self, proc: StubProcess, index: int) -> None:
        mf = proc.platform.mf
        self.proc = proc
        self.index = index
        self.base = proc.slots_off + index * lib.STUB_SLOT_STRIDE
        self.slot = ffi.cast("struct stub_slot *", mf.address + self.base)
        self.regs_off = self.base + SLOT_REGS_OFF
        self.view = mf.view
        self.fs_base = 0
        self.host_tid = proc.pid if index == 0 else 0
        self.wide = False
        self.quick = 0
        self.ops_queued = False
        self.spins = placement.home_cpu() is None
        self.spin = SPIN_MAX // 2 if self.spins else 0
        self.slot.spin_ok = int(self.spins)

    def kick(self) -> None:
        """Interrupt the application code this thread is running (an EVENT_INTERRUPT
        follows; a kick that finds the thread already in the Sentry is harmless)."""
        if self.host_tid:
            lib.sentry_kick(self.proc.pid, self.host_tid)

    def _wait(self, rc: int, want: int) -> None:
        while rc < 0:
            if self.proc.poll_dead():
                raise StubDied(self.proc.pid, self.proc.exit_status or 0)
            if want == lib.SLOT_EVENT and not self.spins:
                self._widen()  # running application code this long: computing
            rc = lib.sentry_wait(self.slot, want, 0, WAIT_SLICE_NS)

    def _adapt(self, rc: int) -> None:
        """Spin while spinning pays: the stub usually answers within the budget on
        a machine with a free core; on a busy one spinning only steals the CPU
        the stub needs, so the budget decays, down to a floor."""
        if rc == 0:
            self.spin = min(SPIN_MAX, self.spin * 2 + 1000)
        elif rc == 1:
            self.spin = max(SPIN_FLOOR, self.spin // 2)

    def _widen(self) -> None:
        """Let this thread's application code run on any of the sandbox's CPUs."""
        if placement.pin_thread(self.host_tid, wide=True):
            self.wide = self.spins = True
            self.quick = 0
            self.spin = SPIN_MAX // 2
            self.slot.spin_ok = 1

    def _narrow(self, ran_ns: int) -> None:
        """Bring a let-out thread home once it traps often again."""
        if ran_ns >= QUICK_NS:
            self.quick = 0
            return
        self.quick += 1
        if self.quick >= NARROW_AFTER and placement.pin_thread(self.host_tid, wide=False):
            self.wide = self.spins = False
            self.spin = 0
            self.slot.spin_ok = 0

    def wait_event(self) -> int:
        """Block (GIL released) until the stub reports a trap or fault."""
        self._wait(lib.sentry_wait(self.slot, lib.SLOT_EVENT, self.spin, WAIT_SLICE_NS),
                   lib.SLOT_EVENT)
        return self.slot.event

    def reply_and_wait(self) -> int:
        """Resume the application with the registers in the slot; wait for the next event."""
        return self._run_app(None)

    def syscall_return(self, rax: int) -> int:
        """The hot path: RAX := ``rax``, resume, wait for the next event.

        _run_app's work for the common case, inlined: no ops queued, the thread
        not let out (``wide``), so no clock read and one C call."""
        if self.ops_queued or self.wide:
            return self._run_app(rax & _U64)
        spins = self.spins
        rc = _SYSCALL_RETURN(self.slot, rax & _U64, self.spin,
                             WAIT_SLICE_NS if spins else WIDEN_AFTER_NS)
        if spins:
            self._adapt(rc)
        if rc < 0:
            self._wait(rc, _SLOT_EVENT)
        return self.slot.event

    def _run_app(self, rax: int | None) -> int:
        """Resume the application (only RAX changed when ``rax`` is given, else
        every register in the slot) and wait for its next event."""
        reply = lib.SLOT_REPLY
        if self.ops_queued:
            self.ops_queued = False
            reply = lib.SLOT_REPLY_OPS
            if rax is not None:
                self.set_reg(RAX, rax)
                rax = None
        # On the home CPU ``spin`` is 0 (a plain hand-off) and a first wait of
        # WIDEN_AFTER_NS tells a computing thread (_wait widens it).
        spins, wide = self.spins, self.wide
        timeout = WAIT_SLICE_NS if spins else WIDEN_AFTER_NS
        start = time.monotonic_ns() if wide else 0
        if rax is None:
            rc = lib.sentry_post_wait(self.slot, reply, lib.SLOT_EVENT, self.spin, timeout)
        else:
            rc = lib.sentry_syscall_return(self.slot, rax, self.spin, timeout)
        if spins:
            self._adapt(rc)
        if rc < 0:
            self._wait(rc, lib.SLOT_EVENT)
        if wide:
            self._narrow(time.monotonic_ns() - start)
        return self.slot.event

    # -- parking (sentry/kernel/task.py: Task.park_until_done) ---------------
    def park(self) -> None:
        """This thread's syscall may now be finished by another Sentry thread."""
        lib.sentry_park(self.slot)

    def park_wait(self, timeout_ns: int) -> int:
        """0: the syscall was finished and the app trapped again; 1: handed back;
        negative: timed out."""
        return lib.sentry_park_wait(self.slot, timeout_ns)

    def claim(self) -> bool:
        """Take a parked syscall over (False: handed back or finished already)."""
        return bool(lib.sentry_claim(self.slot))

    def claimed_return(self, rax: int) -> None:
        """Finish a claimed syscall with ``rax``: the application resumes."""
        lib.sentry_claimed_return(self.slot, rax & 0xFFFFFFFFFFFFFFFF)

    def unpark(self) -> bool:
        """Hand a parked syscall back to its own thread (False: taken over)."""
        return bool(lib.sentry_unpark(self.slot))

    def unclaim(self) -> None:
        """Hand a claimed syscall back to its own thread."""
        lib.sentry_unclaim(self.slot)

    def get_regs(self) -> tuple[int, ...]:
        return REGS.unpack_from(self.view, self.regs_off)

    def syscall_regs(self) -> tuple[int, int, int, int, int, int, int]:
        """R8, R9, R10, RDI, RSI, RDX, RAX of a syscall event: its arguments and
        number without the other eleven registers."""
        return SYSCALL_REGS.unpack_from(self.view, self.regs_off)

    def set_regs(self, regs: tuple[int, ...] | list[int]) -> None:
        REGS.pack_into(self.view, self.regs_off, *regs)

    def set_reg(self, index: int, value: int) -> None:
        struct.pack_into("<Q", self.view, self.regs_off + 8 * index, value & 0xFFFFFFFFFFFFFFFF)

    def set_fs(self, base: int) -> None:
        """Have the stub set the thread's FS base before it returns to the app."""
        self.fs_base = base
        self.slot.fs_base = base
        self.slot.set_fs = 1

    def resync(self) -> None:
        """An event that came through the syscall trampoline has no signal
        frame: have the stub enter its handler (sentry/systrap/patch.py) before
        anything that reads or loads the frame's FPU state."""
        if not self.slot.via_patch:
            return
        rc = lib.sentry_post_wait(self.slot, lib.SLOT_RESYNC, lib.SLOT_OPS_DONE,
                                  SPIN_MAX if self.spins else 0, WAIT_SLICE_NS)
        self._wait(rc, lib.SLOT_OPS_DONE)

    def save_fp(self) -> bytes:
        """The FPU state of the code this thread interrupted (stopped in an event)."""
        self.resync()
        self.apply_ops([StubOp(lib.OP_SAVE_FP, 0, 0, 0, 0)])
        return self._fp_area(min(int(self.slot.fp_size), lib.STUB_SLOT_FP_MAX))

    def clone_fp(self) -> bytes:
        """The FPU state of a thread stopped in a clone, fork, vfork or clone3
        trap: the stub saved it with the registers, so no OP_SAVE_FP round trip."""
        size = int(self.slot.fp_size)
        if self.slot.event != lib.EVENT_SYSCALL or not 0 < size <= lib.STUB_SLOT_FP_MAX:
            return self.save_fp()
        return self._fp_area(size)

    def _fp_area(self, size: int) -> bytes:
        off = self.base + lib.STUB_SLOT_FP_OFF
        return bytes(self.view[off : off + size])

    def restore_fp(self, data: bytes) -> None:
        """Have the stub load ``data`` as the FPU state when it next resumes."""
        if not 0 < len(data) <= lib.STUB_SLOT_FP_MAX:
            return
        self.resync()
        off = self.base + lib.STUB_SLOT_FP_OFF
        self.view[off : off + len(data)] = data
        self.slot.fp_size = len(data)
        self.slot.fp_restore = 1

    def exit_thread(self) -> None:
        """Make this host thread exit (it is stopped in an event); its slot is freed."""
        self.slot.nops = 1
        OP.pack_into(self.view, self.base + SLOT_OPS_OFF, lib.OP_EXIT_THREAD, 0, 0, 0, 0)
        lib.sentry_post(self.slot, lib.SLOT_OPS)
        self.proc.free_thread(self.index)

    def fault(self) -> tuple[int, int, int]:
        """(signal, si_code, address) of a fault event.  The slot is writable
        by the application, so si_code is taken as the kernel's 32-bit int
        (the low half, signed) whatever the 64-bit field holds: a larger one
        made signal delivery fail to pack the siginfo, killing the sandbox."""
        s = self.slot
        code = int(s.fault_code) & 0xFFFFFFFF
        if code >= 1 << 31:
            code -= 1 << 32
        return int(s.fault_signo), code, int(s.fault_addr)

    def queue_ops(self, ops: list[StubOp]) -> bool:
        """Put ``ops`` in the slot for the stub to apply with the next reply, before
        the application runs (no OPS round trip); False when they do not fit.
        Their result is not reported: a failure ends the stub process."""
        if not 0 < len(ops) <= lib.STUB_MAX_OPS:
            return False
        objects_base = self.proc.platform.mf.objects_base
        if any(op.kind == _OP_MAP and op.offset >= objects_base for op in ops):
            return False  # a shared object to receive first: apply_ops, under its lock
        self._write_ops(ops)
        self.ops_queued = True  # the next reply is SLOT_REPLY_OPS
        return True

    def apply_queued(self) -> None:
        """Apply now the ops queued for the next reply (a ptrace-stop comes
        first: the tracer reads and pokes the address space they make)."""
        if not self.ops_queued:
            return
        self.ops_queued = False
        rc = lib.sentry_post_wait(self.slot, lib.SLOT_OPS, lib.SLOT_OPS_DONE,
                                  SPIN_MAX if self.spins else 0, WAIT_SLICE_NS)
        self._wait(rc, lib.SLOT_OPS_DONE)
        if int(self.slot.op_result) < 0:
            raise StubError("stub could not apply queued address-space ops")

    def _write_ops(self, batch: list[StubOp]) -> None:
        """One batch (at most STUB_MAX_OPS) into the slot's ops area."""
        base = self.base + SLOT_OPS_OFF
        for i, op in enumerate(batch):
            prot, offset = op.prot, op.offset
            if op.kind == _OP_MAP:  # which of its files: prot's high half (stub.c)
                fd, offset, _arena = self.proc.map_target(offset)
                prot |= fd << 32
            OP.pack_into(self.view, base + i * OP.size, op.kind, op.addr, op.length, prot,
                         offset)
        self.slot.nops = len(batch)
        self.slot.op_result = 0

    def apply_ops(self, ops: list[StubOp]) -> int:
        """Have the stub apply address-space changes, in order, while it waits in
        its handler; the stub must be stopped in an event."""
        objects_base = self.proc.platform.mf.objects_base
        if any(op.kind == _OP_MAP and op.offset >= objects_base for op in ops):
            with self.proc.object_lock:
                ops, sent = objects.expand_ops(self.proc, ops)
                if sent:
                    try:
                        objects.send_objects(self.proc, sent)
                    except OSError:  # its end is closed: the stub is gone or going
                        self.proc.kill()
                        raise StubDied(self.proc.pid, self.proc.exit_status or 0) from None
                return self._apply_ops(ops)
        return self._apply_ops(ops)

    def _apply_ops(self, ops: list[StubOp]) -> int:
        maxops = lib.STUB_MAX_OPS
        res = 0
        for start in range(0, len(ops), maxops):
            self._write_ops(ops[start : start + maxops])
            rc = lib.sentry_post_wait(self.slot, lib.SLOT_OPS, lib.SLOT_OPS_DONE,
                                      SPIN_MAX if self.spins else 0, WAIT_SLICE_NS)
            self._wait(rc, lib.SLOT_OPS_DONE)
            res = int(self.slot.op_result)
            if res < 0:
                raise StubError(f"stub could not apply address-space ops: {os.strerror(-res)}")
        return res
