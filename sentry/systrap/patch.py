"""Syscall patching: take the signal out of the hot path, as gVisor's systrap does.

A syscall that trapped (SIGSYS) from glibc's usual sequence
``mov $nr,%eax; syscall`` (``b8 imm32 0f 05``, 7 bytes) is rewritten in the
application's text into ``jmp *abs32`` (``ff 24 25 abs32``).  ``abs32`` is an
entry of the patch table, a 64 KiB anonymous mapping at ``STUB_PATCH_BASE``
(0x050f0000) in the application's address space: entry ``k`` points to
per-site code there (``mov $nr,%eax; movabs $ret,%rcx; jmp *entry0``) and
entry 0 to the stub's trampoline (stub_patch.inc), which hands the call to
the Sentry through the thread's slot as the SIGSYS handler does, without a
signal.  The Sentry handles both alike (same registers: RIP = RCX = the
address after the site, R11 = RFLAGS), so ptrace syscall-stops, strace and
the application's seccomp filters (sentry/kernel/seccomp.py) see every call.

Facts and choices:

* The table's address ends in the bytes ``0f 05``, so the patched site's
  last two bytes are still ``syscall``: a thread that had executed the old
  ``mov`` just before the rewrite traps as it always did.  The other five
  bytes change in one locked 8-byte compare-and-exchange
  (``sentry_patch_cas8``) that stays inside a cache line, so a thread running
  the same code sees the old instruction or the new one, never a mix; a site
  whose 8 bytes would split a cache line stays on SIGSYS.  The exchange also
  fails harmlessly if the application rewrote the bytes meanwhile.
* Nothing is written through to a file or to memory another process sees:
  shared mappings are never patched, and a private page still shared (the
  image cache's file text, or text shared with a fork child until written,
  VmaTable._unshare) is first given its own copy, one page, then remapped
  before the exchange.  The table too is copied before it is written, as a
  fork child shares it.
* Calls that must keep their signal frame stay on SIGSYS: rt_sigreturn,
  clone, fork, vfork, clone3, execve, execveat.  Whatever else needs a frame
  (a signal delivered on the way out, an FPU state to load) asks the stub for
  a resync first (StubThread.resync): the trampoline enters the handler
  through a trapping syscall.
* A traced task (ptrace) is not patched, so a tracer reads the text it
  expects.  An application that reads its own code sees the patched bytes
  (as under gVisor); one that rewrites a patched site simply overwrites it,
  and the new instruction traps as any other.
* If the application maps, unmaps or re-protects anything over the table,
  every site is first restored to its original bytes and patching stops for
  that address space.
* Needs the FSGSBASE instructions (the trampoline finds its slot through the
  GS base); off without them.  ``PYVISOR_PATCH=0`` turns it off.
"""

from __future__ import annotations

import ctypes
import os
import struct
from typing import Any

from sentry.systrap._stub import lib

BASE = lib.STUB_PATCH_BASE
SIZE = lib.STUB_PATCH_SIZE
CODE_OFF = 0x4000  # per-site code after the pointer table
SITE_CODE = 24  # b8 imm32 | 48 b9 imm64 | ff 24 25 abs32 | cc cc
MAX_SITES = min(CODE_OFF // 8 - 1, (SIZE - CODE_OFF) // SITE_CODE)
PROT_RX = 0x5
MAP_PRIVATE_ANON_NOREPLACE = 0x02 | 0x20 | 0x100000

# Keep their signal frame: the Sentry reads or rebuilds it for these.
NEVER = frozenset({15, 56, 57, 58, 59, 322, 435})

_RIP_OFF = 8 * 16  # ucontext gregs index of RIP in the slot's registers
_VIA_PATCH_OFF = 240  # struct stub_slot.via_patch
_U64 = struct.Struct("<Q")
_AT_HWCAP2 = 26
_HWCAP2_FSGSBASE = 1 << 1


def _have_fsgsbase() -> bool:
    libc = ctypes.CDLL(None)
    libc.getauxval.restype = ctypes.c_ulong
    libc.getauxval.argtypes = [ctypes.c_ulong]
    return bool(libc.getauxval(_AT_HWCAP2) & _HWCAP2_FSGSBASE)


HAVE_FSGSBASE = _have_fsgsbase()
ENABLED = HAVE_FSGSBASE and os.environ.get("PYVISOR_PATCH", "1") != "0"
assert BASE + SIZE <= 1 << 31 and (BASE >> 16) & 0xFFFF == 0x050F


def site_code(nr: int, ret: int) -> bytes:
    """The per-site code: RAX := nr, RCX := the return address, on to the trampoline."""
    return (b"\xb8" + nr.to_bytes(4, "little") + b"\x48\xb9" + ret.to_bytes(8, "little")
            + b"\xff\x24\x25" + BASE.to_bytes(4, "little") + b"\xcc\xcc")


def patched_bytes(k: int) -> bytes:
    """What the 7 bytes of site ``k`` become: ``jmp *(BASE + 8k)``."""
    return b"\xff\x24\x25" + (BASE + 8 * k).to_bytes(4, "little")


class PatchState:
    """One address space's patched sites (AddressSpace.patch_state)."""

    __slots__ = ("sites", "seen", "next_k", "table", "dead", "frozen", "busy")

    def __init__(self) -> None:
        # site -> (table entry, syscall number, old 8 bytes, new 8 bytes)
        self.sites: dict[int, tuple[int, int, bytes, bytes]] = {}
        self.seen: set[int] = set()  # return addresses found unpatchable
        self.next_k = 1
        self.table = False  # the table is mapped
        self.dead = False  # given up for this address space
        self.frozen = False  # no new sites: another stub process maps this memory
        self.busy = False  # patch.py itself is writing the table

    def fork(self) -> PatchState:
        """The child's: its memory (text and table) is a copy of the parent's."""
        c = PatchState()
        c.sites, c.seen = dict(self.sites), set(self.seen)
        c.next_k, c.table, c.dead = self.next_k, self.table, self.dead
        return c

    def guard(self, mm: Any, start: int, end: int) -> None:
        """VmaTable._isolate's and _unshare's hook: an application's operation
        over the table restores every site first (mm.lock held)."""
        if not self.table or end <= BASE or start >= BASE + SIZE or self.dead or self.busy:
            return
        self.dead = True
        for site, (_k, _nr, old, new) in self.sites.items():
            _exchange(mm, site, new, old)
        self.sites.clear()


def freeze(mm: Any) -> None:
    """CLONE_VM without a thread (vfork, posix_spawn): a second stub process
    maps the same memory, and an op applied to make a patch safe (the table's
    map, a page's private copy) would reach one stub only.  Patched sites stay
    (the new stub maps the table with every other VMA); no new ones."""
    if mm.patch_state is None:
        mm.patch_state = PatchState()
    mm.patch_state.frozen = True


def on_trap(task: Any, th: Any, nr: int) -> None:
    """A syscall event: if it came by SIGSYS from a patchable site, patch it."""
    view, regs_off = th.view, th.regs_off
    if view[th.base + _VIA_PATCH_OFF]:
        return
    rip = _U64.unpack_from(view, regs_off + _RIP_OFF)[0]
    mm = task.mm
    st = mm.patch_state
    if st is None:
        st = mm.patch_state = PatchState()
    if rip in st.seen or st.dead or st.frozen:
        return
    # A patched site that traps again was rewritten by the application (or a
    # thread was between its two instructions): look at it afresh.
    site = rip - 7
    if nr in NEVER or site % 64 > 56:  # the 8 exchanged bytes would split a cache line
        st.seen.add(rip)
        return
    with mm.lock:
        st.busy = True
        try:
            if not _patch(task, mm, st, site, nr):
                st.seen.add(rip)
        finally:
            st.busy = False


def _patch(task: Any, mm: Any, st: PatchState, site: int, nr: int) -> bool:
    try:
        old = mm.copy_in(site, 8)
    except Exception:  # noqa: BLE001 - unmapped or unreadable: leave it alone
        return False
    if old[:5] != b"\xb8" + nr.to_bytes(4, "little") or old[5:7] != b"\x0f\x05":
        return False
    i = mm._find(site)
    if i < 0:
        return False
    v = mm._vmas[i]
    if v.shared or not v.prot & 0x4 or site + 8 > v.end:
        return False
    if not st.table and not _map_table(mm, st):
        return False
    known = st.sites.get(site)
    if known is not None and known[1] == nr:
        k = known[0]  # its table entry still says the same
    elif st.next_k > MAX_SITES:
        return False
    else:
        k = st.next_k
        st.next_k += 1
        code_at = BASE + CODE_OFF + SITE_CODE * (k - 1)
        mm.copy_out_force(BASE + 8 * k, code_at.to_bytes(8, "little"))
        mm.copy_out_force(code_at, site_code(nr, site + 7))
        task._flush_mm()  # the table (or its private copy) mapped before any site uses it
    new = patched_bytes(k) + old[7:]
    done = _exchange(mm, site, old, new)
    if done:
        st.sites[site] = (k, nr, old, new)
    task._flush_mm()  # a page given its own copy is mapped before the code runs on
    return done


def _map_table(mm: Any, st: PatchState) -> bool:
    try:
        mm.mmap(BASE, SIZE, PROT_RX, MAP_PRIVATE_ANON_NOREPLACE)
    except Exception:  # noqa: BLE001 - the application holds that range: no patching
        st.dead = True
        return False
    st.table = True
    mm.copy_out_force(BASE, lib.stub_patch_entry_addr().to_bytes(8, "little"))
    return True


def _exchange(mm: Any, site: int, old: bytes, new: bytes) -> bool:
    """Swap 8 bytes of private text atomically, on a page of its own (copied
    first if it is still shared), and have the stub map that page before the
    application runs on (the caller flushes the pending ops)."""
    i = mm._find(site)
    if i < 0:
        return False
    v = mm._vmas[i]
    if v.shared or site + 8 > v.end:
        return False
    if v.backing is not None:
        page = site & ~0xFFF
        mm._isolate(page, page + 0x1000)
        mm._unshare(page, page + 0x1000)
    pieces = mm._translate(site, 8, 0)
    if len(pieces) != 1:
        return False
    addr = mm.mf.address + pieces[0][0]
    return bool(lib.sentry_patch_cas8(addr, _U64.unpack(old)[0], _U64.unpack(new)[0]))
