"""Everything else a small program asks of its kernel: uname, getrandom, futex."""

from __future__ import annotations

import errno
import os
import struct
import time as _time
from typing import TYPE_CHECKING

from sentry.kernel import namespaces, timens
from sentry.kernel.errors import SyscallError
from sentry.kernel.futex import futex_key
from sentry.procfs.system import memory_kb
from syscalls.abi import TIMESPEC, U32, s32
from syscalls.table import Entry, partial, supported

if TYPE_CHECKING:
    from sentry.kernel.task import Task

Args = tuple[int, ...]

UTS_FIELD = 65
GRND_NONBLOCK = 1
GRND_RANDOM = 2
GRND_INSECURE = 4

FUTEX_WAIT = 0
FUTEX_WAKE = 1
FUTEX_REQUEUE = 3
FUTEX_CMP_REQUEUE = 4
FUTEX_WAKE_OP = 5
FUTEX_WAIT_BITSET = 9
FUTEX_WAKE_BITSET = 10
FUTEX_PRIVATE_FLAG = 128
FUTEX_CLOCK_REALTIME = 256
FUTEX_CMD_MASK = ~(FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME)


def uname(t: Task, a: Args) -> int:
    """uname(2): the sandbox's identity, not the host's."""
    u = namespaces.uts_of(t)
    fields = (u.sysname, u.nodename, u.release, u.version, u.machine, u.domainname)
    buf = b"".join(f.encode()[: UTS_FIELD - 1].ljust(UTS_FIELD, b"\0") for f in fields)
    t.mm.copy_out(a[0], buf)
    return 0


def getrandom(t: Task, a: Args) -> int:
    """getrandom(2): from the host's CSPRNG, through the Sentry."""
    buf, count, flags = a[0], a[1], a[2] & 0xFFFFFFFF
    if flags & ~(GRND_NONBLOCK | GRND_RANDOM | GRND_INSECURE) or (
        flags & GRND_RANDOM and flags & GRND_INSECURE
    ):
        raise SyscallError(errno.EINVAL)
    count = min(count, 33554431)  # Linux caps one call at 32 MiB - 1
    if count:
        t.mm.copy_out(buf, os.urandom(count))
    return count


def futex(t: Task, a: Args) -> int:
    """futex(2): WAIT/WAKE and their BITSET forms."""
    addr, op, val, timeout, _uaddr2, val3 = a
    cmd = s32(op) & FUTEX_CMD_MASK
    if addr & 3:
        raise SyscallError(errno.EINVAL)
    private = bool(s32(op) & FUTEX_PRIVATE_FLAG)
    key = futex_key(t.mm, addr, private)
    manager = t.kernel.futexes
    if cmd in (FUTEX_WAIT, FUTEX_WAIT_BITSET):
        bitset = 0xFFFFFFFF if cmd == FUTEX_WAIT else val3 & 0xFFFFFFFF
        deadline = None
        if timeout:
            sec, nsec = TIMESPEC.unpack(t.mm.copy_in(timeout, TIMESPEC.size))
            if sec < 0 or not 0 <= nsec < 1_000_000_000:
                raise SyscallError(errno.EINVAL)
            ns = sec * 1_000_000_000 + nsec
            if cmd == FUTEX_WAIT:  # relative
                deadline = _time.monotonic() + ns / 1e9
            else:  # absolute on CLOCK_MONOTONIC or CLOCK_REALTIME
                clk = 0 if s32(op) & FUTEX_CLOCK_REALTIME else 1
                deadline = _time.monotonic() + (ns - _time.clock_gettime_ns(clk)) / 1e9

        def load() -> int:
            return U32.unpack(t.mm.copy_in(addr, 4))[0]

        manager.wait(key, load, val & 0xFFFFFFFF, deadline, bitset, t.check_interrupt, t)
        return 0
    if cmd in (FUTEX_WAKE, FUTEX_WAKE_BITSET):
        bitset = 0xFFFFFFFF if cmd == FUTEX_WAKE else val3 & 0xFFFFFFFF
        t.mm.copy_in(addr, 4)  # EFAULT on a bad address, as Linux
        return manager.wake(key, val & 0x7FFFFFFF, bitset)
    if cmd in (FUTEX_REQUEUE, FUTEX_CMP_REQUEUE):
        uaddr2 = _uaddr2
        if uaddr2 & 3:
            raise SyscallError(errno.EINVAL)
        # Both counts are ints (val2 travels in the timeout argument): Linux
        # refuses negative ones rather than reading them as huge.
        nwake, nmove = s32(val), s32(timeout)
        if nwake < 0 or nmove < 0:
            raise SyscallError(errno.EINVAL)
        if not private:  # a shared key is found through the page: EFAULT as Linux
            t.mm.copy_in(addr, 4)
            t.mm.copy_in(uaddr2, 4)
        check = None
        if cmd == FUTEX_CMP_REQUEUE:
            expected = val3 & 0xFFFFFFFF

            def check() -> bool:
                return U32.unpack(t.mm.copy_in(addr, 4))[0] == expected

        key2 = futex_key(t.mm, uaddr2, private)
        return manager.requeue(key, key2, nwake, nmove, check)
    if cmd == FUTEX_WAKE_OP:
        return _wake_op(t, key, futex_key(t.mm, _uaddr2, private), _uaddr2,
                        val & 0x7FFFFFFF, timeout & 0x7FFFFFFF, val3 & 0xFFFFFFFF)
    raise SyscallError(errno.ENOSYS)


FUTEX_WAITV = struct.Struct("<QQII")  # val, uaddr, flags, __reserved
FUTEX_WAITV_MAX = 128
FUTEX2_SIZE_U32 = 0x02
FUTEX2_SIZE_MASK = 0x03
FUTEX2_PRIVATE = FUTEX_PRIVATE_FLAG
FUTEX2_VALID = FUTEX2_SIZE_MASK | FUTEX2_PRIVATE


def futex_waitv(t: Task, a: Args) -> int:
    """futex_waitv(2): wait on up to 128 32-bit futexes at once until one is
    woken (its index is returned), with an absolute timeout on
    CLOCK_MONOTONIC or CLOCK_REALTIME; the checks are Linux's."""
    waiters, timeout, clockid = a[0], a[3], s32(a[4])
    nr, flags = a[1] & 0xFFFFFFFF, a[2] & 0xFFFFFFFF
    if flags or not waiters or not 0 < nr <= FUTEX_WAITV_MAX:
        raise SyscallError(errno.EINVAL)
    deadline = None
    if timeout:
        if clockid not in (0, 1):
            raise SyscallError(errno.EINVAL)
        sec, nsec = TIMESPEC.unpack(t.mm.copy_in(timeout, TIMESPEC.size))
        if sec < 0 or not 0 <= nsec < 1_000_000_000:
            raise SyscallError(errno.EINVAL)
        ns = sec * 1_000_000_000 + nsec
        deadline = _time.monotonic() + (ns - _time.clock_gettime_ns(clockid)) / 1e9
    raw = t.mm.copy_in(waiters, nr * FUTEX_WAITV.size)
    words = []
    for i in range(nr):
        val, uaddr, wflags, reserved = FUTEX_WAITV.unpack_from(raw, i * FUTEX_WAITV.size)
        if wflags & ~FUTEX2_VALID or reserved or wflags & FUTEX2_SIZE_MASK != FUTEX2_SIZE_U32:
            raise SyscallError(errno.EINVAL)
        if uaddr & 3:
            raise SyscallError(errno.EINVAL)
        key = futex_key(t.mm, uaddr, bool(wflags & FUTEX2_PRIVATE))

        def load(uaddr: int = uaddr) -> int:
            return U32.unpack(t.mm.copy_in(uaddr, 4))[0]

        words.append((key, load, val))  # a val past 32 bits never matches: EAGAIN
    return t.kernel.futexes.wait_any(words, deadline, t.check_interrupt)


def _wake_op(t: Task, key: tuple[int, int], key2: tuple[int, int], uaddr2: int, nwake: int,
             nwake2: int, encoded: int) -> int:
    """FUTEX_WAKE_OP: *uaddr2 = op(old, oparg); wake on uaddr; if cmp(old) wake on uaddr2.

    The read-modify-write is done by the Sentry, not the CPU: it is atomic with
    respect to other syscalls, not to another thread's plain stores (partial).
    """
    op, cmp_op = (encoded >> 28) & 0xF, (encoded >> 24) & 0xF
    oparg, cmparg = (encoded >> 12) & 0xFFF, encoded & 0xFFF
    if op & 8:  # FUTEX_OP_OPARG_SHIFT
        oparg = 1 << (oparg & 31)
        op &= 7
    ops = {0: lambda o: oparg, 1: lambda o: o + oparg, 2: lambda o: o | oparg,
           3: lambda o: o & ~oparg, 4: lambda o: o ^ oparg}
    cmps = {0: lambda o: o == cmparg, 1: lambda o: o != cmparg, 2: lambda o: o < cmparg,
            3: lambda o: o <= cmparg, 4: lambda o: o > cmparg, 5: lambda o: o >= cmparg}
    if op not in ops or cmp_op not in cmps:
        raise SyscallError(errno.ENOSYS)
    old = U32.unpack(t.mm.copy_in(uaddr2, 4))[0]
    t.mm.copy_out(uaddr2, U32.pack(ops[op](old) & 0xFFFFFFFF))
    manager = t.kernel.futexes
    woken = manager.wake(key, nwake)
    signed_old = old - (1 << 32) if old & (1 << 31) else old
    if cmps[cmp_op](signed_old):
        woken += manager.wake(key2, nwake2)
    return woken



def restart_syscall(t: Task, a: Args) -> int:
    """restart_syscall(2): the Sentry restarts an interrupted call by running
    it again, never through this call, so no restart block is ever pending:
    a direct call gets EINTR, as Linux's do_no_restart_syscall gives."""
    raise SyscallError(errno.EINTR)

ENTRIES: list[Entry] = [
    supported("restart_syscall", restart_syscall),
    supported("uname", uname),
    supported("getrandom", getrandom),
    partial("futex", futex, note="no PI futexes; WAKE_OP is not atomic against plain stores; "
            "a shared file page past the file's end is EFAULT"),
    supported("futex_waitv", futex_waitv),
]


SYSINFO = struct.Struct("<q3Q6QHxxxxxxQQI4x")  # uptime, loads, ram/swap, procs, high, unit


def sysinfo(t: Task, a: Args) -> int:
    """sysinfo(2): uptime since the sandbox booted, the host's memory, our process count."""
    k = t.kernel
    up_ns = _time.monotonic_ns() - k.boot_monotonic_ns + timens.offset(t.tg, timens.CLOCK_BOOTTIME)
    up = up_ns // 10**9 + (1 if up_ns % 10**9 else 0)  # rounded up, as Linux's
    total_kb = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 1024
    _, _, free, _, _, shared = memory_kb(k, total_kb)
    with k.lock:
        procs = len(k.tasks)
    t.mm.copy_out(a[0], SYSINFO.pack(up, 0, 0, 0, total_kb * 1024, free * 1024, shared * 1024,
                                     0, 0, 0, min(procs, 0xFFFF), 0, 0, 1))
    return 0


ENTRIES += [
    supported("sysinfo", sysinfo),
]
