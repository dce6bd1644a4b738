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
from dataclasses import dataclass
from pathlib import Path

import pytest
from runners import RUNNERS

GOAL = 0.5  # wanted pyvisor/runsc cost ratio of one iteration, at most


@dataclass(frozen=True, slots=True)
class Workload:
    name: str
    program: str  # a stem in programs/, compiled at session start; it takes N as argv[1]
    n: int  # loop count at --bench-scale 1 (about 1 s of loop under pyvisor)
    per_iter: str  # what one iteration does


# N keeps one pyvisor loop near 1 s, so that the noise of the start-up in
# t(N) - t(0) (+-20 ms on these VMs) stays a small part of the difference.
# pyvisor's costs when N was last set (2 vCPU VM, stop 9): fork + wait
# ~0.6 ms, fork + exec + wait ~1.6 ms, pipe round trip ~40 us, futex round trip
# ~20 us. (Stop 8's N: 500, 200, 6000, 5000, for costs 2-4x higher.)
WORKLOADS = (
    Workload("fork", "fork_loop", 1_500, "fork+_exit+wait"),
    Workload("exec", "exec_loop", 600, "fork+execve+wait"),
    Workload("pipe", "pipe_pingpong", 25_000, "1 B pipe round trip"),
    Workload("futex", "futex_pingpong", 40_000, "futex round trip"),
)


def _cases() -> list[pytest.param]:
    # Runners innermost, so the three runs of one workload sit next to each
    # other in time and drift in the machine's load hits them alike.
    return [
        pytest.param(w, n, r, id=f"{w.name}-N{'0' if n == 0 else ''}-{r}")
        for w in WORKLOADS
        for n in (0, w.n)
        for r in RUNNERS
    ]


@pytest.mark.parametrize(("workload", "n", "runner"), _cases())
def test_process(
    benchmark,  # noqa: ANN001 (pytest-benchmark's fixture)
    request: pytest.FixtureRequest,
    programs: dict[str, Path],
    prefixes: dict[str, list[str] | str],
    measure: Callable[..., None],
    workload: Workload,
    n: int,
    runner: str,
) -> None:
    prefix = prefixes[runner]
    if isinstance(prefix, str):
        pytest.skip(prefix)
    if n:
        n = max(1, round(n * request.config.getoption("--bench-scale")))
    # An absolute program path: exec_loop re-executes its own argv[0].
    argv = [*prefix, str(programs[workload.program].resolve()), str(n)]

    rounds = request.config.getoption("--bench-rounds")
    if runner == "native":
        rounds *= 4  # cheap, and t(N) - t(0) is a small difference natively

    measure(benchmark, argv, workload=workload.name, per_iter=workload.per_iter,
            runner=runner, n=n, rounds=rounds, group=f"{workload.name} N={n}", goal=GOAL)
