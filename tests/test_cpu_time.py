"""CPU-time accounting against Linux (sentry/kernel/cputime.py, cputimers.py):
the thread, process and child CPU clocks (by pthread_getcpuclockid and
clock_getcpuclockid ids too), times() and getrusage() user and system time
(the Sentry's time on a task's syscalls is its system time), ITIMER_VIRTUAL
and ITIMER_PROF, POSIX timers on CPU clocks, the overrun count of a timer
set in the past, coarse clocks that never read behind the vDSO, and
RLIMIT_CPU's SIGXCPU then SIGKILL."""

from __future__ import annotations

import pytest
from helpers import Programs, assert_same_as_native, run_native, run_sandbox


@pytest.mark.sandbox
def test_cpu_clocks_and_timers_match_linux(programs: Programs) -> None:
    prog = programs.path("cpu_clocks")
    assert_same_as_native(prog, markers=(
        "thread clock advances 1", "other thread clock readable 1",
        "child clock >= 20ms 1", "foreign thread clock -1 errno 22",
        "times utime grows 1", "times stime grows 1", "rusage self stime>0 1",
        "children user 1 system 1", "signals seen 1 disarmed 1",
        "fired not early 1", "settime NULL -1 errno 22",
        "overrun signal 12 code -2 count>=9999 1", "coarse never back 1",
        "rlimit cpu: killed by 9 after SIGXCPU 1", "done"))


@pytest.mark.sandbox
def test_children_maxrss_matches_linux(programs: Programs) -> None:
    """ru_maxrss of a reaped child (getrusage and wait4), and none from a child
    auto-reaped while SIGCHLD is ignored."""
    assert_same_as_native(programs.path("rusage_maxrss"), markers=(
        "wait4 maxrss ~64MiB 1", "children maxrss ~64MiB 1", "auto-reaped child not counted 1"))


@pytest.mark.sandbox
@pytest.mark.parametrize("mode,marker", [("busy", "busy child seen running: often"),
                                         ("block", "blocked child: S")])
def test_proc_state_letter_of_a_task_in_a_syscall(programs: Programs, mode: str,
                                                  marker: str) -> None:
    """/proc/PID/stat shows R while the Sentry works on a child's syscall and S
    once it waits (sentry/kernel/cputime.py ``running``): a parent that polls
    for 'S' to know its child blocked (LTP's semctl01, futex_cmp_requeue01)
    must not see it as soon as the child enters the call."""
    prog = programs.path("proc_state")
    nat = run_native([prog, mode])
    assert nat.returncode == 0 and marker.encode() in nat.stdout, nat
    box = run_sandbox([prog, mode])
    assert (box.returncode, box.stdout) == (0, nat.stdout), box
