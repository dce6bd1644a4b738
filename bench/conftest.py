"""pytest wiring for the benchmarks in bench/.

Facts about pytest that shape this file:

- The repository's pytest config has ``testpaths = ["tests"]`` and the default
  ``python_files`` (``test_*.py``), so a plain ``python3 -m pytest`` from the
  root never walks into bench/ and never loads this conftest. Benchmarks are
  never part of the pass/fail run.
- ``python_files`` is an ini option, which a conftest cannot set. A file named
  on the command line is collected whatever its name, but ``pytest bench``
  (a directory) would find nothing in ``bench_*.py``; the
  ``pytest_collect_file`` hook below collects those files when pytest walks
  bench/, and leaves files named on the command line to pytest's own hook
  (else they would be collected twice).
- ``pytest_addoption`` in a non-root conftest is honoured only when the
  conftest sits under a path given on the command line, which is how
  benchmarks are run (``pytest bench`` or ``pytest bench/bench_syscalls.py``).

The summary table printed at the end of the session is built from the records
that the suites (``bench_syscalls.py``, ``bench_processes.py``) leave in the
session-scoped ``bench_results`` fixture.

The runner machinery shared by the whole-process suites lives here too: the
``programs`` fixture (bench/programs/*.c compiled -O2 -static), the
``prefixes`` fixture (each runner's command prefix, or why it cannot run) and
the ``run_process`` fixture. Suites take them as fixtures rather than
``import conftest``: a module named conftest is pytest's to load.
``bench_syscalls.py`` predates them and still defines its own ``programs``
and ``prefixes``, which pytest lets override these inside that module; they
do the same thing.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from runners import GVISOR, NOPATCH, RUNNERS, gvisor_cli, is_gvisor_panic

REPO = Path(__file__).resolve().parent.parent
PROGRAMS = Path(__file__).resolve().parent / "programs"
TIMEOUT = 600  # seconds for one process; a hung sandbox fails the case
# Extra gcc flags for a program in PROGRAMS (by stem); every one gets -O2 -static -Wall.
CFLAGS = {"futex_pingpong": ("-pthread",)}


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Module | None:
    if (
        file_path.suffix == ".py"
        and file_path.name.startswith("bench_")
        and not parent.session.isinitpath(file_path)
    ):
        return pytest.Module.from_parent(parent, path=file_path)
    return None


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("pyvisor-bench")
    group.addoption(
        "--bench-scale",
        type=float,
        default=1.0,
        help="multiply every loop count N by this (default 1.0: about 1 s per pyvisor run)",
    )
    group.addoption(
        "--bench-rounds",
        type=int,
        default=5,
        help="rounds per sandboxed case (native cases run 4x as many; default 5)",
    )


@dataclass(frozen=True, slots=True)
class Record:
    """One benchmark case: a whole process, run `rounds` times."""

    workload: str
    runner: str
    n: int | None  # loop count; None for a workload that is not a loop
    per_iter: str  # what one loop iteration does, for the summary
    best: float  # seconds, fastest round
    median: float  # seconds
    rounds: int
    goal: float | None = None  # wanted pyvisor/runsc cost ratio per iteration, at most


class Results:
    """What the benchmark cases measured, and why a runner was skipped."""

    def __init__(self) -> None:
        self.records: list[Record] = []
        self.skipped: dict[str, str] = {}

    def record(self, **fields: object) -> None:
        """Called by a benchmark case with the fields of a Record."""
        self.records.append(Record(**fields))  # type: ignore[arg-type]

    def skip(self, runner: str, reason: str) -> None:
        self.skipped.setdefault(runner, reason)


_RESULTS = Results()


@pytest.fixture(scope="session")
def bench_results() -> Results:
    return _RESULTS


@pytest.fixture(scope="session")
def programs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The C programs in bench/programs/, compiled static with -O2 (plus CFLAGS)."""
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("gcc not installed: apt-get install -y gcc")
    out = tmp_path_factory.mktemp("bench-programs")
    built = {}
    for src in sorted(PROGRAMS.glob("*.c")):
        exe = out / src.stem
        flags = CFLAGS.get(src.stem, ())
        subprocess.run(
            [gcc, "-O2", "-static", "-Wall", *flags, "-o", str(exe), str(src)], check=True
        )
        built[src.stem] = exe
    return built


def _run_process(argv: list[str]) -> None:
    """One process, stdio away from the terminal; a failure fails the case."""
    proc = subprocess.run(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        timeout=TIMEOUT,
        check=False,
    )
    if proc.returncode != 0:
        err = proc.stderr.decode(errors="replace")[-2000:]
        raise AssertionError(f"{argv} exited {proc.returncode}:\n{err}")


@pytest.fixture(scope="session")
def run_process() -> Callable[[list[str]], None]:
    """Run one process, stdio away from the terminal; a non-zero exit fails the case."""
    return _run_process


Measure = Callable[..., None]


def _measure(benchmark: Any, results: Results, run_process: Callable[[list[str]], None],
             argv: list[str], *, workload: str, per_iter: str, runner: str, n: int | None,
             rounds: int, group: str, goal: float | None = None) -> None:
    """Time whole runs of ``argv`` (one process per round) and record the result
    for the session summary: the part every suite shares."""
    benchmark.group = group
    benchmark.extra_info.update(runner=runner, workload=workload, n=n)
    try:
        benchmark.pedantic(lambda: run_process(argv), rounds=rounds, iterations=1)
    except AssertionError as e:
        if runner in GVISOR and is_gvisor_panic(str(e)):
            reason = f"{runner}: its Sentry panicked in {workload} (Debian's build)"
            results.skip(f"{runner} ({workload})", reason)
            pytest.skip(reason)
        raise
    if benchmark.stats is None:  # --benchmark-disable
        return
    stats = benchmark.stats.stats
    fields: dict[str, object] = dict(workload=workload, runner=runner, n=n, per_iter=per_iter,
                                     best=stats.min, median=stats.median, rounds=rounds)
    if goal is not None:
        fields["goal"] = goal
    results.record(**fields)


@pytest.fixture(scope="session")
def measure(bench_results: Results, run_process: Callable[[list[str]], None]) -> Measure:
    """``measure(benchmark, argv, workload=..., per_iter=..., runner=..., n=...,
    rounds=..., group=..., goal=None)``."""
    return lambda benchmark, argv, **kw: _measure(benchmark, bench_results, run_process,
                                                  argv, **kw)


@pytest.fixture(scope="session")
def gvisor_clis() -> dict[str, list[str] | str]:
    """Each gVisor runner's runsc with its flags (global flags, before a
    command), or the reason it cannot run here: every suite compares with both."""
    return {r: gvisor_cli(r) for r in GVISOR}


@pytest.fixture(scope="session")
def prefixes(programs: dict[str, Path], bench_results: Results,
             gvisor_clis: dict[str, list[str] | str]) -> dict[str, list[str] | str]:
    """Each runner's command prefix, or the reason it cannot run here."""
    out: dict[str, list[str] | str] = {
        "native": [],
        "pyvisor": [sys.executable, str(REPO / "runsc.py"), "do", "--"],
        NOPATCH: ["env", "PYVISOR_PATCH=0", sys.executable, str(REPO / "runsc.py"), "do", "--"],
    }
    for runner in GVISOR:
        prefix: list[str] | str = gvisor_clis[runner]
        if not isinstance(prefix, str):
            prefix = [*prefix, "do"]
            try:
                _run_process([*prefix, str(programs["syscall_loop"]), "0"])
            except (AssertionError, subprocess.TimeoutExpired) as e:
                prefix = f"{runner} does not run a static program here: {e}"
        if isinstance(prefix, str):  # printed in the session summary and by -ra
            bench_results.skip(runner, prefix)
        out[runner] = prefix
    return out


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1e3:.1f}"


def _us(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    us = seconds * 1e6
    return f"{us:.3f}" if abs(us) < 10 else f"{us:.1f}"


def _ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None or a <= 0 or b <= 0:
        return "-"  # a cost at or below zero is noise: N too small for this machine
    r = a / b
    return f"{r:.2f}x" if r < 10 else f"{r:.0f}x"


def _goal(pyvisor: float | None, runsc: float | None, goal: float | None) -> str:
    """'<= 0.50x: met' / 'missed', or '-' when there is no goal or no figure."""
    if goal is None or pyvisor is None or runsc is None or pyvisor <= 0 or runsc <= 0:
        return "-"
    return f"<= {goal:.2f}x: {'met' if pyvisor / runsc <= goal else 'missed'}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = [c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True)]
        return "  ".join([first, *rest])

    return [line(header), "  ".join("-" * w for w in widths), *[line(r) for r in rows]]


def summary_lines(results: Results) -> list[str]:
    """The session-end report: wall times, per-iteration costs, ratios."""
    best: dict[tuple[str, int | None, str], float] = {}
    order: list[str] = []
    loop_n: dict[str, int] = {}
    per_iter: dict[str, str] = {}
    goal: dict[str, float] = {}
    rounds: dict[str, int] = {}
    for rec in results.records:
        best[(rec.workload, rec.n, rec.runner)] = rec.best
        rounds[rec.runner] = rec.rounds
        if rec.workload not in order:
            order.append(rec.workload)
        if rec.n:
            loop_n[rec.workload] = rec.n
            per_iter[rec.workload] = rec.per_iter
        if rec.goal is not None:
            goal[rec.workload] = rec.goal

    out = [
        "Wall time of one whole process, best of "
        + ", ".join(f"{r}: {rounds[r]}" for r in RUNNERS if r in rounds)
        + " rounds (ms); ratios from this one run",
    ]
    rows = []
    for w in order:
        n = loop_n.get(w)
        t = {r: best.get((w, n, r)) for r in RUNNERS}
        rows.append(
            [w, "-" if n is None else str(n)]
            + [_ms(t[r]) for r in RUNNERS]
            + [_ratio(t["pyvisor"], t[r]) for r in ("native", *GVISOR)]
        )
    ratios = [f"pyvisor/{r}" for r in ("native", *GVISOR)]
    out += _table(["workload", "N", *RUNNERS, *ratios], rows)

    rows = []
    for w in order:
        n = loop_n.get(w)
        if n is None:
            continue
        cost: dict[str, float | None] = {}
        for r in RUNNERS:
            t_n, t_0 = best.get((w, n, r)), best.get((w, 0, r))
            cost[r] = None if t_n is None or t_0 is None else (t_n - t_0) / n
        row = (
            [w, per_iter[w]]
            + [_us(cost[r]) for r in RUNNERS]
            + [_ratio(cost["pyvisor"], cost[r]) for r in ("native", *GVISOR)]
        )
        if goal:
            row.append(_goal(cost["pyvisor"], cost["runsc"], goal.get(w)))
        rows.append(row)
    if rows:
        header = ["loop", "one iteration", *RUNNERS, *ratios]
        if goal:
            header.append("goal pyvisor/runsc")
        out += ["", "Cost of one loop iteration, (t(N) - t(0)) / N from the best rounds (us)"]
        out += _table(header, rows)
    out += _patch_lines(best, loop_n)
    for runner, reason in sorted(results.skipped.items()):
        out.append(f"{runner}: skipped: {reason}")
    return out


def _patch_lines(best: dict[tuple[str, int | None, str], float],
                 loop_n: dict[str, int]) -> list[str]:
    """Syscall patching on (pyvisor) and off (pyvisor-nopatch) beside
    gVisor-systrap, per loop iteration, for the loops run both ways."""
    runners = ("pyvisor", NOPATCH, "systrap")
    rows = []
    for w, n in loop_n.items():
        if (w, n, NOPATCH) not in best:
            continue
        cost: dict[str, float | None] = {}
        for r in runners:
            t_n, t_0 = best.get((w, n, r)), best.get((w, 0, r))
            cost[r] = None if t_n is None or t_0 is None else (t_n - t_0) / n
        rows.append([w, *(_us(cost[r]) for r in runners), _ratio(cost["pyvisor"], cost[NOPATCH]),
                     _ratio(cost["pyvisor"], cost["systrap"]),
                     _ratio(cost[NOPATCH], cost["systrap"])])
    if not rows:
        return []
    return ["", "Syscall patching: one iteration (us), patching on vs off vs gVisor-systrap"] + \
        _table(["loop", *runners, "on/off", "on/systrap", "off/systrap"], rows)


@pytest.hookimpl(trylast=True)  # after pytest-benchmark's own tables
def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _RESULTS.records and not _RESULTS.skipped:
        return
    terminalreporter.section("pyvisor vs native vs gVisor (runsc: 2022 ptrace, systrap: 2024)")
    for line in summary_lines(_RESULTS):
        terminalreporter.write_line(line)
