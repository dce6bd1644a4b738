"""Who the benchmarks compare: native, pyvisor, and gVisor on two platforms.

- ``runsc``: Debian bookworm's gVisor (2022, ``apt-get install runsc``) on the
  ptrace platform: the bar of earlier rounds.
- ``systrap``: Debian trixie's gVisor (2024) on the systrap platform, gVisor's
  current default and this project's bar. Bookworm does not ship it, so
  ``bench/get_runsc_2024.sh`` fetches trixie's .deb through apt (a temporary
  source list, the system's own left alone) and extracts its static binary to
  /opt/runsc-2024; ``PYVISOR_RUNSC_2024`` names another path.

Debian's 2024 build panics in its Sentry on some heavier runs (a Go runtime
mismatch in that build, not ours): a case where it panics is skipped with that
reason instead of failing (see :func:`is_gvisor_panic`).

Plain module, not a conftest: the suites import ``RUNNERS`` from here (bench/
is on sys.path when pytest collects it), and the loop suites (processes,
network, shared memory) their one workload record and test body (``Loop``,
``loop_cases``, ``run_loop``).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RUNNERS = ("native", "pyvisor", "runsc", "systrap")
NOPATCH = "pyvisor-nopatch"  # pyvisor with PYVISOR_PATCH=0 (bench_syscalls.py only)
GVISOR = ("runsc", "systrap")
RUNSC_FLAGS = ("--platform=ptrace", "--network=none")
SYSTRAP_FLAGS = ("--platform=systrap", "--network=none")
RUNSC_2024_DEFAULT = "/opt/runsc-2024/usr/bin/runsc"


def gvisor_cli(runner: str) -> list[str] | str:
    """``runner``'s runsc with its flags (global flags, before a command), or
    the reason it cannot run here."""
    if os.geteuid() != 0:
        return "runsc needs root"
    if runner == "runsc":
        exe = shutil.which("runsc")
        if exe is None:
            return "gVisor 2022 (ptrace) is not installed (apt-get install -y runsc)"
        return [exe, *RUNSC_FLAGS]
    exe = os.environ.get("PYVISOR_RUNSC_2024", RUNSC_2024_DEFAULT)
    if not os.access(exe, os.X_OK):
        return f"gVisor 2024 (systrap) is not at {exe} (bench/get_runsc_2024.sh fetches it)"
    return [exe, *SYSTRAP_FLAGS]


def is_gvisor_panic(stderr: str) -> bool:
    """Whether a failed gVisor run died in its own Go runtime (Debian's 2024
    build), rather than the workload failing."""
    return "panic:" in stderr or "fatal error:" in stderr or "SIGSEGV" in stderr


@dataclass(frozen=True, slots=True)
class Loop:
    """A whole-process loop workload: ``PROGRAM [ARGS...] N``, timed at N and
    at 0 iterations, so (t(N) - t(0)) / N is one iteration's cost."""

    name: str
    program: str  # a stem in bench/programs/ (compiled at session start)
    n: int  # loop count at --bench-scale 1 (about 1 s of loop under pyvisor)
    per_iter: str  # what one iteration does
    args: tuple[str, ...] = ()  # before N
    goal: float | None = None  # wanted pyvisor/runsc cost ratio, at most


def loop_cases(loops: tuple[Loop, ...]) -> list[Any]:
    """(loop, n, runner) cases; runners innermost, so the runs of one loop
    sit next to each other in time and drift in the machine's load hits
    them alike."""
    import pytest

    return [
        pytest.param(w, n, r, id=f"{w.name}-N{'0' if n == 0 else ''}-{r}")
        for w in loops
        for n in (0, w.n)
        for r in RUNNERS
    ]


def run_loop(benchmark: Any, request: Any, programs: dict[str, Path],
             prefixes: dict[str, list[str] | str], measure: Callable[..., None],
             loop: Loop, n: int, runner: str) -> None:
    """One case of :func:`loop_cases`: the suites' shared test body."""
    import pytest

    prefix = prefixes[runner]
    if isinstance(prefix, str):
        pytest.skip(prefix)
    if n:
        n = max(1, round(n * request.config.getoption("--bench-scale")))
    # An absolute program path: exec_loop re-executes its own argv[0].
    argv = [*prefix, str(programs[loop.program].resolve()), *loop.args, str(n)]
    rounds = request.config.getoption("--bench-rounds")
    if runner == "native":
        rounds *= 4  # cheap, and t(N) - t(0) is a small difference natively
    measure(benchmark, argv, workload=loop.name, per_iter=loop.per_iter, runner=runner,
            n=n, rounds=rounds, group=f"{loop.name} N={n}", goal=loop.goal)
