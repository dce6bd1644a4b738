"""Process workloads: native vs pyvisor vs gVisor's runsc, in one run.

Four loops that exercise the process side of the Sentry rather than the bare
syscall round trip: fork + exit + wait, fork + execve + wait, a pipe ping-pong
between two processes and a futex ping-pong between two threads. Like
``bench_syscalls.py``, every case times one whole process per round
(``benchmark.pedantic``, one iteration per round), spawn to exit, and every
loop also runs with N = 0 (the second process or thread is still created), so
the session summary (bench/conftest.py) gives the cost of one iteration as
(t(N) - t(0)) / N, per runner, with the pyvisor/runsc ratio set against this
suite's goal: pyvisor at most half of runsc-ptrace's cost.

Run: python3 -m pytest bench/bench_processes.py --benchmark-only
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from runners import Loop, loop_cases, run_loop

GOAL = 0.5  # wanted pyvisor/runsc cost ratio of one iteration, at most


# N keeps one pyvisor loop near 1 s, so that the noise of the start-up in
# t(N) - t(0) (+-20 ms on these VMs) stays a small part of the difference.
# pyvisor's costs when N was last set (2 vCPU VM, stop 9): fork + wait
# ~0.6 ms, fork + exec + wait ~1.6 ms, pipe round trip ~40 us, futex round trip
# ~20 us. (Stop 8's N: 500, 200, 6000, 5000, for costs 2-4x higher.)
WORKLOADS = (
    Loop("fork", "fork_loop", 1_500, "fork+_exit+wait", goal=GOAL),
    Loop("exec", "exec_loop", 600, "fork+execve+wait", goal=GOAL),
    Loop("pipe", "pipe_pingpong", 25_000, "1 B pipe round trip", goal=GOAL),
    Loop("futex", "futex_pingpong", 40_000, "futex round trip", goal=GOAL),
)


@pytest.mark.parametrize(("workload", "n", "runner"), loop_cases(WORKLOADS))
def test_process(
    benchmark,  # noqa: ANN001 (pytest-benchmark's fixture)
    request: pytest.FixtureRequest,
    programs: dict[str, Path],
    prefixes: dict[str, list[str] | str],
    measure: Callable[..., None],
    workload: Loop,
    n: int,
    runner: str,
) -> None:
    run_loop(benchmark, request, programs, prefixes, measure, workload, n, runner)
