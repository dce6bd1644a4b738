"""Where a sandbox runs: one home CPU, with compute-bound application threads let out.

Why one CPU: every syscall is a hand-off between a stub thread and the Sentry
thread serving it, and a blocked task is woken by another task's Sentry thread.
On a VM a futex wake-up that crosses CPUs costs ~25 us (the target vCPU is
halted); on the same CPU it is a context switch of ~1-2 us. Spinning hides the
cross-CPU cost for a lone syscall loop, but a pipe or futex ping-pong keeps four
threads busy (two stubs, two Sentry threads) and on a 2-vCPU machine the
spinners take the CPU their peer needs (measured on the project's machines:
pipe round trip 150 -> 72 us, futex 80 -> 38 us, fork+exec 3.3 -> 2.6 ms with
the whole sandbox on one CPU and no spinning). The Sentry's Python runs under
the GIL, so its threads never had more than one CPU's worth of work anyway.

What stays parallel: application code. A stub thread that runs for
``WIDEN_AFTER_NS`` without trapping is computing, and gets the sandbox's whole
CPU set (``StubThread`` in sentry/systrap/stubs.py widens and narrows it);
its syscalls then cross CPUs and spin again, as before.

What the application sees is unchanged: sched_getaffinity(2), /proc/cpuinfo
and /sys/devices/system/cpu report :func:`sandbox_cpus`, the set the sandbox
was given, not the home CPU.
"""

from __future__ import annotations

import os

_sandbox_cpus: frozenset[int] | None = None
_home: int | None = None


def _current_cpu() -> int | None:
    """The CPU this thread last ran on (field 39 of /proc/thread-self/stat)."""
    try:
        with open("/proc/thread-self/stat", "rb") as f:
            stat = f.read()
        return int(stat[stat.rindex(b")") + 2 :].split()[36])
    except (OSError, ValueError, IndexError):
        return None


def sandbox_cpus() -> frozenset[int]:
    """The CPUs the sandbox was given (before :func:`settle` narrowed this process)."""
    if _sandbox_cpus is not None:
        return _sandbox_cpus
    try:
        return frozenset(os.sched_getaffinity(0)) or frozenset({0})
    except OSError:
        return frozenset(range(os.cpu_count() or 1))


def home_cpu() -> int | None:
    """The CPU the sandbox's threads share, or None when they are not pinned."""
    return _home


def _pin_process(pid: int, cpu: int) -> bool:
    """Every thread of ``pid`` on ``cpu`` (sched_setaffinity moves one thread;
    threads started later inherit their creator's set).  Not through a /proc
    of another pid namespace (a Sentry in its own without a mount namespace
    to mount its own, PYVISOR_SENTRY_MOUNT_NS=0): /proc/PID there is some
    host process."""
    from sentry.pidns import procfs_is_foreign

    if procfs_is_foreign():
        return False
    try:
        tids = [int(t) for t in os.listdir(f"/proc/{pid}/task")]
    except OSError:
        return False
    for tid in tids:
        try:
            os.sched_setaffinity(tid, {cpu})
        except OSError:  # a thread that just ended
            continue
    return True


def settle(others: tuple[int, ...] = ()) -> None:
    """Pin the Sentry (every thread of this process) and ``others`` (the Gofer)
    to one CPU of the set: the one this thread runs on now, where the host's
    scheduler put it. Called once boot is done (before the stub zygote starts,
    so stubs inherit it): the Gofer and the Sentry import in parallel while
    they boot, and on one CPU they could not.

    Off with ``PYVISOR_CPU_PLACEMENT=spread`` (the earlier behaviour: no
    pinning, spinning hand-offs), e.g. to compare the two."""
    global _sandbox_cpus, _home
    if _sandbox_cpus is not None:
        return
    _sandbox_cpus = sandbox_cpus()
    if os.environ.get("PYVISOR_CPU_PLACEMENT") == "spread" or len(_sandbox_cpus) == 1:
        _home = min(_sandbox_cpus) if len(_sandbox_cpus) == 1 else None
        return
    cpu = _current_cpu()
    if cpu not in _sandbox_cpus:
        cpu = min(_sandbox_cpus)
    if not _pin_process(os.getpid(), cpu):
        return
    for pid in others:
        _pin_process(pid, cpu)
    _home = cpu


def pin_thread(tid: int, wide: bool) -> bool:
    """Put host thread ``tid`` on the home CPU, or (``wide``) on the whole set.
    False when it could not be moved (gone already, or no home)."""
    if _home is None:
        return False
    try:
        os.sched_setaffinity(tid, _sandbox_cpus if wide else {_home})
    except OSError:
        return False
    return True
