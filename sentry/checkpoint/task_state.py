"""Processes (thread groups) and tasks as plain data, and back.

A task is saved where quiesce.py held it: its registers are the ones in its
stub's slot (with the fast path's RAX, ``held_rax``), and its FPU state is
read from the stub (OP_SAVE_FP).  A task that was blocked in a syscall has
been rewound to re-execute it (restart semantics, quiesce.py), so there is
nothing of a syscall in progress to save.

Saved per process: pid, parent, process group, session, cwd, umask, exe,
argv, comm, rlimits, signal actions, pending signals, exit signal, prctl
values, CPU times, ITIMER_REAL, and for a zombie its exit status (so its
parent still reaps it).  Per task: tid, registers, FPU state, FS base, signal
mask, pending signals, sigaltstack, clear_child_tid, robust list, credentials.

Threads are saved each as a task; a restore makes them again in the new
stub process (restore.py).  Refused (CheckpointError naming the process):
ptrace, an application seccomp filter, a controlling terminal, namespaces of its own,
POSIX timers, an address space shared with another process (vfork).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sentry.checkpoint.quiesce import CheckpointError
from sentry.kernel import creds as kcreds
from sentry.kernel.signals import NSIG, PendingSignals, SigAction, SigInfo
from sentry.systrap.stubs import RAX

if TYPE_CHECKING:
    from sentry.kernel.task import Task
    from sentry.kernel.threadgroup import ThreadGroup

U64 = (1 << 64) - 1
SIGINFO_FIELDS = ("signo", "code", "pid", "uid", "status", "addr", "value", "errno",
                  "syscall", "arch")
CRED_FIELDS = ("uid", "euid", "suid", "gid", "egid", "sgid", "groups", "fsuid", "fsgid",
               "cap_permitted", "cap_effective", "cap_inheritable", "cap_bounding",
               "cap_ambient", "securebits")


def save_pending(p: PendingSignals) -> list[list[Any]]:
    return [[sig, [[getattr(i, f) for f in SIGINFO_FIELDS] for i in infos]]
            for sig, infos in p.queue.items()]


def _signo(value: Any) -> int:
    sig = int(value)
    if not 1 <= sig <= NSIG:
        raise ValueError(f"bad signal number {sig}")
    return sig


def restore_pending(saved: list[list[Any]]) -> PendingSignals:
    p = PendingSignals()
    for _sig, infos in saved:
        for vals in infos:
            info = SigInfo(**dict(zip(SIGINFO_FIELDS, (int(v) for v in vals), strict=True)))
            _signo(info.signo)
            p.add(info)
    return p


def _refuse_task(t: Task, who: str) -> None:
    if t.ptrace is not None or t.tg.tracees:
        raise CheckpointError(f"{who}: traced (ptrace) tasks cannot be saved")
    if t.seccomp is not None:
        raise CheckpointError(f"{who}: a seccomp filter of the application cannot be saved")


def save_task(t: Task) -> dict[str, Any]:
    """One held task (quiesce.py) as data."""
    regs = list(t.thread.get_regs())
    if t.held_rax is not None:
        regs[RAX] = t.held_rax & U64
    c = t.creds
    return {"tid": t.tid, "regs": regs, "fp": t.thread.save_fp(), "fs_base": t.fs_base,
            "sigmask": t.sigmask, "pending": save_pending(t.pending),
            "altstack": list(t.altstack), "clear_child_tid": t.clear_child_tid,
            "robust_list": list(t.robust_list),
            "saved_sigmask": t.saved_sigmask,
            "creds": {f: (list(getattr(c, f)) if f == "groups" else getattr(c, f))
                      for f in CRED_FIELDS}}


def save_group(tg: ThreadGroup, who: str) -> dict[str, Any]:
    """A thread group's own state (its mm and fds are saved by the caller)."""
    live = sorted(tg.live_tasks(), key=lambda t: t.tid)
    for t in live:
        _refuse_task(t, who)
    if tg.tty is not None:
        raise CheckpointError(f"{who} has a controlling terminal, which cannot be saved "
                              "(run without a terminal)")
    if tg.namespaces is not None:
        raise CheckpointError(f"{who} has namespaces of its own, which cannot be saved")
    if tg.posix_timers:
        raise CheckpointError(f"{who} has POSIX timers (timer_create), which cannot be saved")
    itimer = list(tg.real_timer.get()) if tg.real_timer is not None else [0, 0]
    return {
        "tgid": tg.tgid, "parent": tg.parent.tgid if tg.parent is not None else None,
        "pgid": tg.pgid, "sid": tg.sid, "umask": tg.umask, "exe": tg.exe,
        "argv": list(tg.argv), "comm": tg.comm,
        "rlimits": [[k, list(v)] for k, v in tg.rlimits.items()],
        "sigactions": [[s, [a.handler, a.flags, a.restorer, a.mask]]
                       for s, a in tg.sigactions.items()],
        "pending": save_pending(tg.pending), "exit_signal": tg.exit_signal,
        "zombie": tg.zombie, "exit_status": tg.exit_status, "exiting": tg.exiting,
        "prctl": dict(tg.prctl), "times": [tg.cpu_ns(), tg.stime_ns, tg.child_utime_ns,
                                           tg.child_stime_ns],
        "itimer": itimer, "tasks": [save_task(t) for t in live],
    }


def restore_creds(saved: dict[str, Any]) -> kcreds.Credentials:
    vals = {f: (tuple(int(g) for g in saved[f]) if f == "groups" else int(saved[f]))
            for f in CRED_FIELDS}
    return kcreds.Credentials(**vals)


def apply_group(tg: ThreadGroup, rec: dict[str, Any]) -> None:
    """Set a new thread group's fields from ``rec`` (the tree is linked by the caller)."""
    tg.umask = int(rec["umask"])
    tg.exe = bytes(rec["exe"])
    tg.argv = [bytes(a) for a in rec["argv"]]
    tg.comm = bytes(rec["comm"])
    tg.rlimits = {int(k): (int(v[0]), int(v[1])) for k, v in rec["rlimits"]}
    tg.sigactions = {_signo(s): SigAction(*(int(x) for x in a)) for s, a in rec["sigactions"]}
    tg.pending = restore_pending(rec["pending"])
    tg.exit_signal = int(rec["exit_signal"])
    tg.zombie = bool(rec["zombie"])
    tg.exiting = bool(rec["exiting"])
    tg.exit_status = int(rec["exit_status"])
    tg.prctl = {str(k): int(v) for k, v in rec["prctl"].items()}
    tg.utime_ns, tg.stime_ns, tg.child_utime_ns, tg.child_stime_ns = (
        int(x) for x in rec["times"])


def apply_task(t: Task, rec: dict[str, Any]) -> None:
    t.sigmask = int(rec["sigmask"])
    t.pending = restore_pending(rec["pending"])
    a = rec["altstack"]
    t.altstack = (int(a[0]), int(a[1]), int(a[2]))
    t.clear_child_tid = int(rec["clear_child_tid"])
    r = rec["robust_list"]
    t.robust_list = (int(r[0]), int(r[1]))
    ss = rec["saved_sigmask"]
    t.saved_sigmask = None if ss is None else int(ss)
    t.boot_fp = bytes(rec["fp"]) or None

