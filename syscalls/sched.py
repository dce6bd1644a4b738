"""Scheduling: affinity, policy and priority queries, and sched_yield.

Every call here takes a pid that is really a *thread* id: 0 is the caller, any
other value is a task of the sandbox's pid namespace, a thread as much as a
process leader.  glibc's ``pthread_getattr_np`` asks ``sched_getaffinity`` of
the thread's own tid, and the JVM aborts at start when that fails, so a lookup
by process id alone is not enough.

The sandbox has one policy, SCHED_OTHER with priority 0, as gVisor has: the
Sentry runs every task on host threads it schedules itself, so a real-time
policy could not be honoured.  The affinity mask a task sets is kept (and
inherited over clone) so that it reads back as set; it does not pin host
threads (``sentry/placement.py`` decides where the sandbox runs).
"""

from __future__ import annotations

import errno
import os
import struct
from typing import TYPE_CHECKING

from sentry import placement
from sentry.kernel.errors import SyscallError
from syscalls.abi import I32, s32
from syscalls.table import Entry, partial, supported

if TYPE_CHECKING:
    from sentry.kernel.task import Task

Args = tuple[int, ...]

SCHED_OTHER = 0
SCHED_FIFO = 1
SCHED_RR = 2
SCHED_BATCH = 3
SCHED_IDLE = 5
SCHED_DEADLINE = 6
SCHED_RESET_ON_FORK = 0x40000000
# sched_get_priority_max/min, as Linux answers them for each known policy.
PRIORITY_RANGE = {
    SCHED_OTHER: (0, 0), SCHED_BATCH: (0, 0), SCHED_IDLE: (0, 0), SCHED_DEADLINE: (0, 0),
    SCHED_FIFO: (1, 99), SCHED_RR: (1, 99),
}


def target(t: Task, pid: int) -> Task:
    """The task a sched_* call names: 0 is the caller, else any live thread of
    the sandbox by its tid (a process's pid is its leader's tid); ESRCH if none."""
    if pid == 0:
        return t
    with t.kernel.lock:
        task = t.kernel.tasks.get(pid) if pid > 0 else None
    if task is None or task.exited:
        raise SyscallError(errno.ESRCH)
    return task


def check_same_owner(t: Task, task: Task) -> None:
    """Changing another task's scheduling needs CAP_SYS_NICE (root here) or
    the caller's euid equal to the target's uid or euid (Linux's
    check_same_owner); EPERM otherwise."""
    me, them = t.creds, task.creds
    if me.euid != 0 and me.euid not in (them.uid, them.euid):
        raise SyscallError(errno.EPERM)


def _mask_size() -> int:
    """cpumask_size(): bytes of whole longs that cover every CPU the sandbox knows."""
    return ((max(placement.sandbox_cpus()) // 64) + 1) * 8


def allowed_cpus(task: Task) -> frozenset[int]:
    """The CPUs ``task`` may run on: what it set, or the sandbox's whole set."""
    return task.cpu_mask if task.cpu_mask is not None else placement.sandbox_cpus()


def sched_getaffinity(t: Task, a: Args) -> int:
    """sched_getaffinity(2): the task's CPUs as a mask of longs; returns its size."""
    pid, size, addr = s32(a[0]), a[1], a[2]
    nbytes = _mask_size()
    if size < nbytes or size & 7:
        raise SyscallError(errno.EINVAL)
    task = target(t, pid)
    mask = sum(1 << c for c in allowed_cpus(task))
    t.mm.copy_out(addr, mask.to_bytes(nbytes, "little"))
    return nbytes


def sched_setaffinity(t: Task, a: Args) -> int:
    """sched_setaffinity(2): keeps the mask, cut to the sandbox's CPUs (EINVAL
    when nothing is left, as Linux refuses a mask outside the cpuset).  A shorter
    buffer than the kernel's mask is zero-extended, a longer one truncated."""
    pid, size, addr = s32(a[0]), a[1], a[2]
    nbytes = _mask_size()
    raw = t.mm.copy_in(addr, min(size, nbytes)) if size else b""
    task = target(t, pid)
    bits = int.from_bytes(raw, "little")
    cpus = frozenset(c for c in placement.sandbox_cpus() if bits >> c & 1)
    check_same_owner(t, task)
    if not cpus:
        raise SyscallError(errno.EINVAL)
    task.cpu_mask = None if cpus == placement.sandbox_cpus() else cpus
    return 0


def _checked_pid(t: Task, pid: int) -> Task:
    """sched_{get,set}{param,scheduler} refuse a negative pid with EINVAL."""
    if pid < 0:
        raise SyscallError(errno.EINVAL)
    return target(t, pid)


def sched_getscheduler(t: Task, a: Args) -> int:
    """sched_getscheduler(2): every task is SCHED_OTHER."""
    _checked_pid(t, s32(a[0]))
    return SCHED_OTHER


def sched_getparam(t: Task, a: Args) -> int:
    """sched_getparam(2): priority 0, SCHED_OTHER's only one."""
    pid, addr = s32(a[0]), a[1]
    if addr == 0:
        raise SyscallError(errno.EINVAL)
    _checked_pid(t, pid)
    t.mm.copy_out(addr, I32.pack(0))
    return 0


def _read_priority(t: Task, addr: int) -> int:
    if addr == 0:
        raise SyscallError(errno.EINVAL)
    return struct.unpack("<i", t.mm.copy_in(addr, 4))[0]


def sched_setscheduler(t: Task, a: Args) -> int:
    """sched_setscheduler(2): SCHED_OTHER (and BATCH/IDLE, which Linux also
    treats as fair-share) with priority 0 is accepted and changes nothing; a
    real-time policy is refused with EPERM, as Linux refuses a task without
    CAP_SYS_NICE, because the Sentry cannot honour it."""
    pid, policy, addr = s32(a[0]), s32(a[1]), a[2]
    if pid < 0:
        raise SyscallError(errno.EINVAL)
    policy &= ~SCHED_RESET_ON_FORK
    if policy not in PRIORITY_RANGE or policy == SCHED_DEADLINE:
        raise SyscallError(errno.EINVAL)
    prio = _read_priority(t, addr)
    lo, hi = PRIORITY_RANGE[policy]
    if not lo <= prio <= hi:
        raise SyscallError(errno.EINVAL)
    check_same_owner(t, target(t, pid))
    if policy in (SCHED_FIFO, SCHED_RR):
        raise SyscallError(errno.EPERM)
    return 0


def sched_setparam(t: Task, a: Args) -> int:
    """sched_setparam(2): only priority 0 is valid under SCHED_OTHER."""
    pid, addr = s32(a[0]), a[1]
    if pid < 0:
        raise SyscallError(errno.EINVAL)
    prio = _read_priority(t, addr)
    check_same_owner(t, target(t, pid))
    if prio != 0:
        raise SyscallError(errno.EINVAL)
    return 0


def sched_get_priority_max(t: Task, a: Args) -> int:
    """sched_get_priority_max(2): Linux's range for the policy."""
    rng = PRIORITY_RANGE.get(s32(a[0]))
    if rng is None:
        raise SyscallError(errno.EINVAL)
    return rng[1]


def sched_get_priority_min(t: Task, a: Args) -> int:
    """sched_get_priority_min(2)."""
    rng = PRIORITY_RANGE.get(s32(a[0]))
    if rng is None:
        raise SyscallError(errno.EINVAL)
    return rng[0]


def getcpu(t: Task, a: Args) -> int:
    """getcpu(2): the lowest CPU the task may run on, node 0.  The Sentry does
    not track which host CPU a stub last ran on (and the answer may be stale
    on return anyway, as the man page warns); it is always one of the task's
    allowed CPUs.  The third argument (tcache) is unused since Linux 2.6.24."""
    cpu_addr, node_addr = a[0], a[1]
    if cpu_addr:
        t.mm.copy_out(cpu_addr, struct.pack("<I", min(allowed_cpus(t))))
    if node_addr:
        t.mm.copy_out(node_addr, struct.pack("<I", 0))
    return 0


def sched_yield(t: Task, a: Args) -> int:
    """sched_yield(2)."""
    os.sched_yield()
    return 0


ENTRIES: list[Entry] = [
    supported("sched_getaffinity", sched_getaffinity),
    partial("sched_setaffinity", sched_setaffinity,
            note="kept and read back; does not pin host threads"),
    supported("sched_getscheduler", sched_getscheduler),
    supported("sched_getparam", sched_getparam),
    partial("sched_setscheduler", sched_setscheduler,
            note="SCHED_OTHER/BATCH/IDLE only; real-time policies EPERM"),
    supported("sched_setparam", sched_setparam),
    supported("sched_get_priority_max", sched_get_priority_max),
    supported("sched_get_priority_min", sched_get_priority_min),
    supported("sched_yield", sched_yield),
    partial("getcpu", getcpu, note="the task's lowest allowed CPU; node 0"),
]
