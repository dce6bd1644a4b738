"""Scheduling parameters: policy, real-time priority, nice and I/O priority,
recorded per thread with Linux's rules for who may change what.

The sandbox's threads all run at the host's ordinary priority (a stub cannot
be made real-time or nicer than the Sentry without giving it host powers), so
these calls record what the application asked and report it back, as gVisor
does; the rules (valid values, EPERM and EACCES, RLIMIT_RTPRIO and
RLIMIT_NICE, CAP_SYS_NICE, SCHED_RESET_ON_FORK) are Linux's, because programs
and test suites probe them.

Calls: sched_setscheduler, sched_getscheduler, sched_setparam, sched_getparam,
sched_get_priority_max/min, sched_rr_get_interval, sched_setattr,
sched_getattr, sched_getaffinity, sched_setaffinity (a mask per thread, cut
to the sandbox's CPUs), sched_yield, getpriority, setpriority, ioprio_get,
ioprio_set, getcpu.
"""

from __future__ import annotations

import errno
import os
import struct
from typing import TYPE_CHECKING

from sentry import placement
from sentry.kernel import rlimits
from sentry.kernel.creds import CAP_SYS_ADMIN, CAP_SYS_NICE
from sentry.kernel.errors import SyscallError
from sentry.kernel.schedparams import SchedState
from shm.records import replace as _replace
from syscalls.abi import I32, TIMESPEC, s32
from syscalls.table import Entry, partial, supported

if TYPE_CHECKING:
    from sentry.kernel.task import Task

Args = tuple[int, ...]

SCHED_OTHER, SCHED_FIFO, SCHED_RR, SCHED_BATCH, SCHED_IDLE, SCHED_DEADLINE = 0, 1, 2, 3, 5, 6
SCHED_RESET_ON_FORK = 0x40000000
SCHED_FLAG_RESET_ON_FORK = 0x01
SCHED_FLAG_KEEP_POLICY = 0x08
SCHED_FLAG_KEEP_PARAMS = 0x10
SCHED_FLAG_ALL = 0x7F
RT_POLICIES = (SCHED_FIFO, SCHED_RR)
FAIR_POLICIES = (SCHED_OTHER, SCHED_BATCH, SCHED_IDLE)
RR_INTERVAL_NS = 100_000_000  # RR_TIMESLICE
RLIMIT_NICE, RLIMIT_RTPRIO = 13, 14
PRIO_PROCESS, PRIO_PGRP, PRIO_USER = 0, 1, 2
IOPRIO_WHO_PROCESS, IOPRIO_WHO_PGRP, IOPRIO_WHO_USER = 1, 2, 3
IOPRIO_CLASS_RT, IOPRIO_CLASS_IDLE = 1, 3
SCHED_ATTR = struct.Struct("<IIQiIQQQII")  # size, policy, flags, nice, priority, dl x3, util
SCHED_ATTR_VER0 = 48
PAGE = 4096


def state(t: Task) -> SchedState:
    return t.sched


def _target(t: Task, pid: int) -> Task:
    if pid < 0:  # the param, scheduler and attr calls check this first
        raise SyscallError(errno.EINVAL)
    return _by_pid(t, pid)


def _by_pid(t: Task, pid: int) -> Task:
    """find_process_by_pid(): 0 is the caller; no such thread (a negative pid
    included) is ESRCH.  A process's leader is still found after it exited
    until the process is reaped (a zombie, or a leader that called
    pthread_exit while other threads run on), as Linux keeps its task until
    release_task()."""
    if pid == 0:
        return t
    target = t.kernel.tasks.get(pid)
    if target is not None and not target.exited:
        return target
    tg = t.kernel.thread_groups.get(pid)  # its leader's last state
    leader = next((x for x in tg.tasks if x.tid == pid), None) if tg is not None else None
    if leader is None or tg.reaped:
        raise SyscallError(errno.ESRCH)
    return leader


def target(t: Task, pid: int) -> Task:
    """The task a call names: 0 is the caller, else any live thread of the
    sandbox by its tid (a process's pid is its leader's tid); EINVAL for a
    negative pid, ESRCH for none."""
    return _target(t, pid)


def _same_owner(t: Task, target: Task) -> bool:
    c, tc = t.creds, target.creds
    return c.euid in (tc.euid, tc.uid)


def _can_nice(t: Task, target: Task, nice: int) -> bool:
    """can_nice(): RLIMIT_NICE allows 20 - nice, or CAP_SYS_NICE."""
    return 20 - nice <= rlimits.get(target.tg, RLIMIT_NICE)[0] or t.creds.capable(CAP_SYS_NICE)


def _set(t: Task, target: Task, policy: int, priority: int, nice: int | None,
         reset: bool) -> None:
    """__sched_setscheduler()'s checks, then the new parameters."""
    old = state(target)
    nice = old.nice if nice is None else max(-20, min(19, nice))
    if policy not in (*FAIR_POLICIES, *RT_POLICIES):
        raise SyscallError(errno.EINVAL)
    if not 0 <= priority <= 99 or (policy in RT_POLICIES) != (priority != 0):
        raise SyscallError(errno.EINVAL)
    if not t.creds.capable(CAP_SYS_NICE):
        if policy in FAIR_POLICIES and nice < old.nice and not _can_nice(t, target, nice):
            raise SyscallError(errno.EPERM)
        if policy in RT_POLICIES:
            rtprio = rlimits.get(target.tg, RLIMIT_RTPRIO)[0]
            if policy != old.policy and not rtprio:
                raise SyscallError(errno.EPERM)
            if priority > old.priority and priority > rtprio:
                raise SyscallError(errno.EPERM)
        if old.policy == SCHED_IDLE and policy != SCHED_IDLE \
                and not _can_nice(t, target, old.nice):
            raise SyscallError(errno.EPERM)
        if not _same_owner(t, target):
            raise SyscallError(errno.EPERM)
        if old.reset_on_fork and not reset:
            raise SyscallError(errno.EPERM)
    target.sched = _replace(old, policy=policy, priority=priority, nice=nice,
                            reset_on_fork=reset)


def _read_priority(t: Task, addr: int) -> int:
    if not addr:
        raise SyscallError(errno.EINVAL)
    (prio,) = I32.unpack(t.mm.copy_in(addr, I32.size))
    return prio


def sched_setscheduler(t: Task, a: Args) -> int:
    """sched_setscheduler(2)."""
    pid, policy = s32(a[0]), s32(a[1])
    if not a[2] or pid < 0:
        raise SyscallError(errno.EINVAL)
    prio = _read_priority(t, a[2])
    target = _target(t, pid)
    reset = bool(policy & SCHED_RESET_ON_FORK) if policy >= 0 else False
    policy &= ~SCHED_RESET_ON_FORK
    _set(t, target, policy, prio, None, reset)
    return 0


def sched_setparam(t: Task, a: Args) -> int:
    """sched_setparam(2): the priority under the current policy."""
    pid = s32(a[0])
    if not a[1] or pid < 0:
        raise SyscallError(errno.EINVAL)
    prio = _read_priority(t, a[1])
    target = _target(t, pid)
    old = state(target)
    _set(t, target, old.policy, prio, None, old.reset_on_fork)
    return 0


def sched_getscheduler(t: Task, a: Args) -> int:
    """sched_getscheduler(2)."""
    s = state(_target(t, s32(a[0])))
    return s.policy | (SCHED_RESET_ON_FORK if s.reset_on_fork else 0)


def sched_getparam(t: Task, a: Args) -> int:
    """sched_getparam(2)."""
    pid = s32(a[0])
    if not a[1] or pid < 0:
        raise SyscallError(errno.EINVAL)
    s = state(_target(t, pid))
    t.mm.copy_out(a[1], I32.pack(s.priority))
    return 0


def sched_get_priority_max(t: Task, a: Args) -> int:
    """sched_get_priority_max(2)."""
    policy = s32(a[0])
    if policy in RT_POLICIES:
        return 99
    if policy in (*FAIR_POLICIES, SCHED_DEADLINE):
        return 0
    raise SyscallError(errno.EINVAL)


def sched_get_priority_min(t: Task, a: Args) -> int:
    """sched_get_priority_min(2)."""
    policy = s32(a[0])
    if policy in RT_POLICIES:
        return 1
    if policy in (*FAIR_POLICIES, SCHED_DEADLINE):
        return 0
    raise SyscallError(errno.EINVAL)


def sched_rr_get_interval(t: Task, a: Args) -> int:
    """sched_rr_get_interval(2): RR's time slice; 0 for the others (EEVDF's answer)."""
    s = state(_target(t, s32(a[0])))
    ns = RR_INTERVAL_NS if s.policy == SCHED_RR else 0
    t.mm.copy_out(a[1], TIMESPEC.pack(ns // 10**9, ns % 10**9))
    return 0


def sched_getattr(t: Task, a: Args) -> int:
    """sched_getattr(2): as much of struct sched_attr as the caller's size holds."""
    pid, addr, size, flags = s32(a[0]), a[1], a[2] & 0xFFFF_FFFF, a[3]
    if not addr or pid < 0 or size > PAGE or size < SCHED_ATTR_VER0 or flags:
        raise SyscallError(errno.EINVAL)
    s = state(_target(t, pid))
    size = min(size, SCHED_ATTR.size)
    dl = s.dl if s.policy == SCHED_DEADLINE else (0, 0, 0)
    raw = SCHED_ATTR.pack(size, s.policy, SCHED_FLAG_RESET_ON_FORK if s.reset_on_fork else 0,
                          s.nice if s.policy in FAIR_POLICIES else 0, s.priority, *dl, 0,
                          0)  # no utilization clamping (as a kernel without uclamp)
    t.mm.copy_out(addr, raw[:size])
    return 0


DL_PERIOD_MIN_NS = 100 * 1000  # kernel.sched_deadline_period_min_us
DL_PERIOD_MAX_NS = (1 << 22) * 1000  # kernel.sched_deadline_period_max_us
DL_BW_LIMIT = 0.95  # kernel.sched_rt_runtime_us / sched_rt_period_us


def _check_deadline(runtime: int, deadline: int, period: int) -> bool:
    """Linux's __checkparam_dl: 1024 ns <= runtime <= deadline <= period
    (period 0 means deadline), no sign bits, the period within the sysctls."""
    if deadline == 0 or runtime < 1024 or (deadline | period) >> 63:
        return False
    period = period or deadline
    if period < deadline or deadline < runtime:
        return False
    return DL_PERIOD_MIN_NS <= period <= DL_PERIOD_MAX_NS


def _set_deadline(t: Task, target: Task, prio: int, dl: tuple[int, int, int],
                  reset: bool) -> None:
    """SCHED_DEADLINE: checked and admitted as Linux does (CAP_SYS_NICE; the
    sandbox's deadline tasks together may reserve at most 95% of its CPUs,
    else EBUSY), then recorded: the host runs the stub as an ordinary
    thread, so the reservation is the application's view, not a guarantee."""
    if prio != 0 or not _check_deadline(*dl):
        raise SyscallError(errno.EINVAL)
    if not t.creds.capable(CAP_SYS_NICE):
        raise SyscallError(errno.EPERM)
    runtime, deadline, period = dl
    with t.kernel.lock:
        others = [x.sched.dl for x in t.kernel.tasks.values()
                  if x is not target and not x.exited and x.sched.policy == SCHED_DEADLINE]
    used = sum(r / (p or d) for r, d, p in others)
    if used + runtime / (period or deadline) > DL_BW_LIMIT * len(placement.sandbox_cpus()):
        raise SyscallError(errno.EBUSY)
    target.sched = _replace(state(target), policy=SCHED_DEADLINE, priority=0, nice=0,
                            reset_on_fork=reset, dl=(runtime, deadline, period or deadline))


def sched_setattr(t: Task, a: Args) -> int:
    """sched_setattr(2): fair, real-time and deadline policies (the last
    admitted and recorded: see _set_deadline)."""
    pid, addr, flags = s32(a[0]), a[1], a[2]
    if flags:
        raise SyscallError(errno.EINVAL)
    if not addr or pid < 0:
        raise SyscallError(errno.EINVAL)
    (size,) = struct.unpack("<I", t.mm.copy_in(addr, 4))
    size = size or SCHED_ATTR_VER0
    if size < SCHED_ATTR_VER0 or size > PAGE:
        t.mm.copy_out(addr, struct.pack("<I", SCHED_ATTR.size))
        raise SyscallError(errno.E2BIG)
    raw = t.mm.copy_in(addr, size)
    if size > SCHED_ATTR.size and any(raw[SCHED_ATTR.size:]):
        t.mm.copy_out(addr, struct.pack("<I", SCHED_ATTR.size))
        raise SyscallError(errno.E2BIG)
    raw = raw[:SCHED_ATTR.size].ljust(SCHED_ATTR.size, b"\0")
    _, policy, sflags, nice, prio, runtime, deadline, period, *_ = SCHED_ATTR.unpack(raw)
    nice = nice - (1 << 32) if nice >= 1 << 31 else nice
    if policy >= 1 << 31 or sflags & ~SCHED_FLAG_ALL:
        raise SyscallError(errno.EINVAL)
    target = _target(t, pid)
    old = state(target)
    if sflags & SCHED_FLAG_KEEP_POLICY:
        policy = old.policy
    if policy == SCHED_DEADLINE:
        if sflags & SCHED_FLAG_KEEP_PARAMS:
            if old.policy != SCHED_DEADLINE:
                raise SyscallError(errno.EINVAL)
            runtime, deadline, period = old.dl
        _set_deadline(t, target, prio, (runtime, deadline, period),
                      bool(sflags & SCHED_FLAG_RESET_ON_FORK))
        return 0
    if sflags & SCHED_FLAG_KEEP_PARAMS:
        prio, nice = old.priority, old.nice
    _set(t, target, policy, prio, nice if policy in FAIR_POLICIES else None,
         bool(sflags & SCHED_FLAG_RESET_ON_FORK))
    return 0


# --- affinity -----------------------------------------------------------------------

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
    task = _by_pid(t, pid)
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
    task = _by_pid(t, pid)
    bits = int.from_bytes(raw, "little")
    cpus = frozenset(c for c in placement.sandbox_cpus() if bits >> c & 1)
    if not _same_owner(t, task) and not t.creds.capable(CAP_SYS_NICE):
        raise SyscallError(errno.EPERM)
    if not cpus:
        raise SyscallError(errno.EINVAL)
    task.cpu_mask = None if cpus == placement.sandbox_cpus() else cpus
    return 0


# --- nice --------------------------------------------------------------------------

def _prio_targets(t: Task, which: int, who: int) -> list[Task]:
    """The threads getpriority/setpriority name."""
    if which == PRIO_PROCESS:
        return [_target(t, who)] if who >= 0 else []
    with t.kernel.lock:
        live = [x for x in t.kernel.tasks.values() if not x.exited]
    if which == PRIO_PGRP:
        pgid = who or t.tg.pgid
        return [x for x in live if x.tg.pgid == pgid]
    if which == PRIO_USER:
        uid = who or t.creds.uid
        return [x for x in live if x.creds.uid == uid]
    raise SyscallError(errno.EINVAL)


def getpriority(t: Task, a: Args) -> int:
    """getpriority(2): the raw syscall returns 20 - nice (glibc converts)."""
    which, who = s32(a[0]), s32(a[1])
    if which not in (PRIO_PROCESS, PRIO_PGRP, PRIO_USER):
        raise SyscallError(errno.EINVAL)
    found = _prio_targets(t, which, who)
    if not found:
        raise SyscallError(errno.ESRCH)
    return max(20 - state(x).nice for x in found)


def setpriority(t: Task, a: Args) -> int:
    """setpriority(2): nice clamped to [-20, 19]; lowering it needs RLIMIT_NICE
    or CAP_SYS_NICE (EACCES); another user's threads need CAP_SYS_NICE (EPERM)."""
    which, who, nice = s32(a[0]), s32(a[1]), s32(a[2])
    if which not in (PRIO_PROCESS, PRIO_PGRP, PRIO_USER):
        raise SyscallError(errno.EINVAL)
    nice = max(-20, min(19, nice))
    found = _prio_targets(t, which, who)
    if not found:
        raise SyscallError(errno.ESRCH)
    err = 0
    for x in found:
        if not _same_owner(t, x) and not t.creds.capable(CAP_SYS_NICE):
            err = errno.EPERM
            continue
        old = state(x)
        if nice < old.nice and not _can_nice(t, x, nice):
            err = errno.EACCES
            continue
        x.sched = _replace(old, nice=nice)
    if err:
        raise SyscallError(err)
    return 0


# --- I/O priority ------------------------------------------------------------------

def _io_targets(t: Task, which: int, who: int) -> list[Task]:
    mapping = {IOPRIO_WHO_PROCESS: PRIO_PROCESS, IOPRIO_WHO_PGRP: PRIO_PGRP,
               IOPRIO_WHO_USER: PRIO_USER}
    if which not in mapping:
        raise SyscallError(errno.EINVAL)
    found = _prio_targets(t, mapping[which], who)
    if not found:
        raise SyscallError(errno.ESRCH)
    return found


def ioprio_get(t: Task, a: Args) -> int:
    """ioprio_get(2): the highest priority among the named threads."""
    found = _io_targets(t, s32(a[0]), s32(a[1]))
    return min((state(x).ioprio for x in found), key=lambda p: (p == 0, p))


def ioprio_set(t: Task, a: Args) -> int:
    """ioprio_set(2): classes NONE, RT (CAP_SYS_ADMIN), BE and IDLE, levels 0-7."""
    which, who, prio = s32(a[0]), s32(a[1]), s32(a[2])
    cls, level = prio >> 13, prio & 0x1FFF
    if cls > IOPRIO_CLASS_IDLE or level > 7 or (cls == 0 and level):
        raise SyscallError(errno.EINVAL)
    if cls == IOPRIO_CLASS_RT and not t.creds.capable(CAP_SYS_ADMIN):
        raise SyscallError(errno.EPERM)
    for x in _io_targets(t, which, who):
        if not _same_owner(t, x) and not t.creds.capable(CAP_SYS_NICE):
            raise SyscallError(errno.EPERM)
        x.sched = _replace(state(x), ioprio=prio)
    return 0


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
    partial("sched_setscheduler", sched_setscheduler,
            note="recorded and reported; threads keep the host's ordinary priority"),
    supported("sched_getscheduler", sched_getscheduler),
    partial("sched_setparam", sched_setparam, note="recorded and reported"),
    supported("sched_getparam", sched_getparam),
    supported("sched_get_priority_max", sched_get_priority_max),
    supported("sched_get_priority_min", sched_get_priority_min),
    supported("sched_rr_get_interval", sched_rr_get_interval),
    partial("sched_setattr", sched_setattr, note="recorded, not enforced (SCHED_DEADLINE "
            "admitted against 95% of the CPUs)"),
    supported("sched_getattr", sched_getattr),
    supported("getpriority", getpriority),
    partial("setpriority", setpriority, note="nice recorded and reported, not applied"),
    supported("ioprio_get", ioprio_get),
    partial("ioprio_set", ioprio_set, note="recorded and reported, not applied"),
    partial("getcpu", getcpu, note="the task's lowest allowed CPU; node 0"),
    supported("sched_getaffinity", sched_getaffinity),
    partial("sched_setaffinity", sched_setaffinity,
            note="recorded and reported, cut to the sandbox's CPUs; threads are not pinned"),
    supported("sched_yield", sched_yield),
]
