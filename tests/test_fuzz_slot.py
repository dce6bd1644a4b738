"""Fuzzing the sysmsg slot decoder: what the Sentry reads from a stub's slot.

The slot lives in the memory file, which the stub process maps: application
code that finds it can write any field (DESIGN.md section 3: "the Sentry
treats every field as untrusted").  The Sentry reads the event word, the
registers (the syscall number and arguments), the fault record (signal,
si_code, address) and the FPU area's size.  Whatever bytes the slot holds:

- the registers decode to NREGS unsigned 64-bit values (the task loop picks
  a handler only for a number below NR_SYSCALLS);
- the fault record becomes a signal the kernel can queue and *deliver*: the
  siginfo it is packed into (SigInfo.pack, in signal delivery) must not fail,
  whatever si_code the slot claims;
- the FPU area read is bounded by the slot's own area.

The slot is decoded by the real StubThread over a plain buffer laid out as
``struct stub_slot`` (no stub process: the decoder is the code under test).
"""

from __future__ import annotations

import struct

from fuzzing import fuzz
from hypothesis import example
from hypothesis import strategies as st

from sentry.kernel import signals as sig
from sentry.kernel.signals import SigInfo
from sentry.systrap import stubs
from sentry.systrap.stubs import NREGS, StubThread, ffi, lib

STRIDE = lib.STUB_SLOT_STRIDE
FAULT_OFF = ffi.offsetof("struct stub_slot", "fault_signo")


def _thread_over(buf: bytearray) -> StubThread:
    """A StubThread whose slot is ``buf`` (what Platform/StubProcess set up)."""
    th = StubThread.__new__(StubThread)
    th.base = 0
    th.view = memoryview(buf)
    th.slot = ffi.cast("struct stub_slot *", ffi.from_buffer(buf))
    th.regs_off = stubs.SLOT_REGS_OFF
    return th


def _fault_signal(th: StubThread) -> SigInfo:
    """The task's decoding of a fault event (Task._fault) up to the siginfo."""
    signo, code, addr = th.fault()
    if not 1 <= signo <= sig.NSIG:
        signo = sig.SIGKILL
    return SigInfo(signo, code=code, addr=addr or 0)


u64 = st.one_of(st.sampled_from([0, 1, 11, 64, 65, 1 << 31, (1 << 32) - 1, 1 << 32, 1 << 40,
                                 (1 << 63), (1 << 64) - 1]), st.integers(0, (1 << 64) - 1))


@fuzz(head=st.binary(min_size=0, max_size=STRIDE), fault=st.tuples(u64, u64, u64),
      fp_size=st.integers(0, (1 << 32) - 1))
@example(head=b"", fault=(11, 1 << 40, 0), fp_size=0)  # si_code beyond 32 bits
@example(head=b"", fault=(11, (1 << 64) - 1, (1 << 64) - 1), fp_size=(1 << 32) - 1)
def test_slot_decodes_whatever_it_holds(head: bytes, fault: tuple[int, int, int],
                                        fp_size: int) -> None:
    buf = bytearray(STRIDE)
    buf[: len(head)] = head
    struct.pack_into("<QQQ", buf, FAULT_OFF, *fault)
    th = _thread_over(buf)
    th.slot.fp_size = fp_size
    regs = th.get_regs()
    assert len(regs) == NREGS and all(0 <= r < 1 << 64 for r in regs)
    info = _fault_signal(th)
    packed = info.pack()  # what signal delivery writes to the application's stack
    assert len(packed) == 128
    area = th._fp_area(min(int(th.slot.fp_size), lib.STUB_SLOT_FP_MAX))
    assert len(area) <= lib.STUB_SLOT_FP_MAX
    assert isinstance(th.slot.event, int)


test_slot_decodes_whatever_it_holds_long = test_slot_decodes_whatever_it_holds.long
