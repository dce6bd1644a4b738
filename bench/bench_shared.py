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
from pathlib import Path

import pytest
from runners import Loop, loop_cases, run_loop

GOAL = 0.5  # wanted pyvisor/runsc cost ratio of one iteration, at most


# N set from one loaded 2-vCPU run (pyvisor): about 1 s of loop each.
WORKLOADS = (
    Loop("shared-futex", "shared_futex_pingpong", 20_000, "cross-process futex round trip",
         goal=GOAL),
    Loop("sem", "sem_pingpong", 5_000, "POSIX semaphore round trip", goal=GOAL),
    Loop("shared-touch", "shared_touch_loop", 1_000, "mmap+16 page stores+munmap", goal=GOAL),
)


@pytest.mark.parametrize(("workload", "n", "runner"), loop_cases(WORKLOADS))
def test_shared(
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
