"""Whole-process wall time: native vs pyvisor vs gVisor's runsc, in one run.

Every case starts one process per round (``benchmark.pedantic``, one iteration
per round) and times it from ``fork`` to ``wait``, start-up included. Each loop
program also runs with N = 0, so the session summary (bench/conftest.py) can
give the cost of one loop iteration as (t(N) - t(0)) / N. Ratios between
runners are what to read: these machines are noisy 2-vCPU VMs.

Run: python3 -m pytest bench/bench_syscalls.py --benchmark-only
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from runners import NOPATCH, RUNNERS

REPO = Path(__file__).resolve().parent.parent
PROGRAMS = Path(__file__).resolve().parent / "programs"
BUSYBOX = "/bin/busybox"
TIMEOUT = 600  # seconds for one process; a hung sandbox fails the case


@dataclass(frozen=True, slots=True)
class Workload:
    name: str
    program: str  # a stem in programs/ (compiled at session start) or an absolute path
    args: tuple[str, ...] = ()
    n: int | None = None  # loop count at --bench-scale 1 (about 1 s under pyvisor)
    per_iter: str = ""  # what one iteration does


WORKLOADS = (
    Workload("startup", BUSYBOX, ("true",)),
    Workload("compute", "compute"),
    Workload("getppid", "syscall_loop", n=60_000, per_iter="1 getppid"),
    Workload("clock_gettime", "clock_loop", n=2_000_000,
             per_iter="1 clock_gettime(MONOTONIC), libc (the vDSO)"),
    Workload("write64", "write_loop", n=60_000, per_iter="1 write, 64 B"),
    Workload("mmap64k", "mmap_loop", n=8_000, per_iter="mmap+touch+munmap"),
    Workload("brk64k", "brk_loop", n=8_000, per_iter="2 brk + touch"),
)


# Also run with syscall patching off (PYVISOR_PATCH=0, sentry/systrap/patch.py):
# the summary's "syscall patching" table compares on, off and gVisor-systrap.
PATCH_WORKLOADS = ("getppid", "write64")


def _runners(w: Workload) -> tuple[str, ...]:
    if w.name not in PATCH_WORKLOADS:
        return RUNNERS
    i = RUNNERS.index("pyvisor") + 1
    return (*RUNNERS[:i], NOPATCH, *RUNNERS[i:])


def _cases() -> list[pytest.param]:
    # Runners innermost, so the three runs of one workload sit next to each
    # other in time and drift in the machine's load hits them alike.
    cases = []
    for w in WORKLOADS:
        for n in (None,) if w.n is None else (0, w.n):
            for r in _runners(w):
                tag = w.name if n is None else f"{w.name}-N{'0' if n == 0 else ''}"
                cases.append(pytest.param(w, n, r, id=f"{tag}-{r}"))
    return cases


@pytest.mark.parametrize(("workload", "n", "runner"), _cases())
def test_process(
    benchmark,  # noqa: ANN001 (pytest-benchmark's fixture)
    request: pytest.FixtureRequest,
    programs: dict[str, Path],
    prefixes: dict[str, list[str] | str],
    measure: Callable[..., None],
    workload: Workload,
    n: int | None,
    runner: str,
) -> None:
    prefix = prefixes[runner]
    if isinstance(prefix, str):
        pytest.skip(prefix)
    if workload.program.startswith("/"):
        if not os.access(workload.program, os.X_OK):
            pytest.skip(f"{workload.program} missing (apt-get install -y busybox-static)")
        program = workload.program
    else:
        program = str(programs[workload.program])
    if n is not None:
        n = 0 if n == 0 else max(1, round(n * request.config.getoption("--bench-scale")))
    argv = [*prefix, program, *workload.args, *(() if n is None else (str(n),))]

    rounds = request.config.getoption("--bench-rounds")
    if runner == "native":
        rounds *= 4  # cheap, and t(N) - t(0) is a small difference natively

    measure(benchmark, argv, workload=workload.name, per_iter=workload.per_iter,
            runner=runner, n=n, rounds=rounds,
            group=workload.name if n is None else f"{workload.name} N={n}")
