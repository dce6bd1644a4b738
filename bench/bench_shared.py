"""Shared-memory workloads: native vs pyvisor vs gVisor's runsc, in one run.

Three loops over memory shared between processes (issue 13's bench list): a
futex ping-pong between two processes on MAP_SHARED anonymous memory (shared
futex keys), a POSIX-semaphore ping-pong (sem_open: /dev/shm files mapped
MAP_SHARED), and a MAP_SHARED page-touch loop (mmap a 16-page /dev/shm file,
store to each page, munmap).  As in bench_processes.py every case times one
whole process per round and also runs with N = 0, so the summary gives one
iteration's cost as (t(N) - t(0)) / N per runner, against the goal of at most
half of runsc-ptrace's cost.

Run: python3 -m pytest bench/bench_shared.py --benchmark-only
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
    program: str  # a stem in programs/; it takes N as argv[1]
    n: int  # loop count at --bench-scale 1
    per_iter: str


# N set from one loaded 2-vCPU run (pyvisor): about 1 s of loop each.
WORKLOADS = (
    Workload("shared-futex", "shared_futex_pingpong", 20_000, "cross-process futex round trip"),
    Workload("sem", "sem_pingpong", 5_000, "POSIX semaphore round trip"),
    Workload("shared-touch", "shared_touch_loop", 1_000, "mmap+16 page stores+munmap"),
)


def _cases() -> list[pytest.param]:
    return [
        pytest.param(w, n, r, id=f"{w.name}-N{'0' if n == 0 else ''}-{r}")
        for w in WORKLOADS
        for n in (0, w.n)
        for r in RUNNERS
    ]


@pytest.mark.parametrize(("workload", "n", "runner"), _cases())
def test_shared(
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
    argv = [*prefix, str(programs[workload.program].resolve()), str(n)]
    rounds = request.config.getoption("--bench-rounds")
    if runner == "native":
        rounds *= 4
    measure(benchmark, argv, workload=workload.name, per_iter=workload.per_iter,
            runner=runner, n=n, rounds=rounds, group=f"{workload.name} N={n}", goal=GOAL)
