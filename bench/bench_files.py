"""The file path of Gofer-served files: native vs pyvisor vs gVisor, in one run.

Four loops of ``bench/programs/file_loop.c`` on files the Gofer serves (a
session temp directory on the host, which is under the sandbox's root in
every runner: pyvisor's and runsc's `do` both serve the host's / read-only
under an in-memory overlay):

- open: open(O_RDONLY) + close of a 3-byte file;
- stat: stat of the same file;
- pread: pread of 4 KiB at offset 0 of a 64 KiB file (one open before the loop);
- seqread: a 64 MiB file read start to end in 1 MiB reads (lseek 0 between
  passes): its throughput is 64 MiB / the cost of one iteration.

Each also runs with N = 0, so the summary's per-iteration cost excludes
start-up, as in ``bench_processes.py``. The issue 15 targets are open+close,
stat and pread at most gVisor-systrap's cost, and seqread at least its
throughput (at most its cost per pass).

Run: python3 -m pytest bench/bench_files.py --benchmark-only -q
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from runners import Loop, loop_cases, run_loop

MIB = 1 << 20
SEQ_BYTES = 64 * MIB

# N keeps one pyvisor loop near 1 s (costs when N was set: open ~45 us, stat
# ~25 us, pread ~15 us, a 64 MiB pass ~50 ms).
WORKLOADS = (
    Loop("open", "file_loop", 20_000, "open+close", args=("open", "small")),
    Loop("stat", "file_loop", 30_000, "stat", args=("stat", "small")),
    Loop("pread", "file_loop", 50_000, "pread 4 KiB", args=("pread", "medium")),
    Loop("seqread", "file_loop", 16, "64 MiB in 1 MiB reads", args=("seqread", "big")),
)


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The files the loops use, on the host (the Gofer serves them)."""
    d = tmp_path_factory.mktemp("bench-files")
    (d / "small").write_bytes(b"hi\n")
    (d / "medium").write_bytes(os.urandom(64 * 1024))
    with (d / "big").open("wb") as f:
        for _ in range(SEQ_BYTES // MIB):
            f.write(os.urandom(MIB))
    return d


@pytest.mark.parametrize(("workload", "n", "runner"), loop_cases(WORKLOADS))
def test_file(
    benchmark,  # noqa: ANN001 (pytest-benchmark's fixture)
    request: pytest.FixtureRequest,
    programs: dict[str, Path],
    prefixes: dict[str, list[str] | str],
    measure: Callable[..., None],
    data_dir: Path,
    workload: Loop,
    n: int,
    runner: str,
) -> None:
    mode, name = workload.args
    loop = dataclasses.replace(workload, args=(mode, str(data_dir / name)))
    run_loop(benchmark, request, programs, prefixes, measure, loop, n, runner)
