"""Real work, not loops: whole programs that people run, native vs pyvisor vs
gVisor (ptrace 2022, systrap 2024), one whole process per round, spawn to exit.

- gcc: ``gcc -O1 -c gen.c -o /dev/null`` of a generated 2,000-line C file
  (fork/exec of cc1 and as, a temp file in /tmp, CPU work);
- pyimport: ``/usr/bin/python3 -c 'import json, sqlite3, asyncio'`` (a
  dynamic interpreter's start: hundreds of stat/open/read/mmap of .py, .pyc
  and .so files);
- untar: ``sh -c 'd=$(mktemp -d) && tar xzf A -C "$d" && rm -rf "$d"'`` of a
  ~50 MB .tar.gz (a pipe to gzip, creates and writes, then the same rm in
  every runner);
- sha256: ``find /usr/lib/python3.11 -type f -exec sha256sum {} +`` (reading
  a real tree: ~4,000 files, ~120 MB).

The sha256 case uses a fixed subset of /usr/lib: the whole of it is 4.3 GB
and 63,000 files here (over a minute natively), too long to run five times
per runner; /usr/lib/python3.11 is the interpreter's standard library, a
realistic mix of small and large files (a missing directory skips the case).

The ratio of interest is pyvisor/systrap (issue 15: no worse than gVisor
systrap's). stdout goes to /dev/null in every runner; a non-zero exit fails
the case; gVisor's Debian 2024 build panicking in its Sentry skips that case
with the reason (bench/runners.py).

Run: python3 -m pytest bench/bench_realwork.py --benchmark-only -q
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest
from runners import RUNNERS

SHA_TREE = "/usr/lib/python3.11"
PYTHON = "/usr/bin/python3"
ARCHIVE_MB = 50
REAL_ROUNDS = 3  # at most, per sandboxed runner: each round is seconds long


def _c_source(lines: int = 2000) -> str:
    """A C file of about ``lines`` lines: structs, loops, switches and calls,
    so the compiler has real work (not 2,000 copies of one statement)."""
    out = ["#include <stdio.h>", "#include <string.h>", "",
           "struct acc { long a, b; double c; char name[16]; };", ""]
    i = 0
    while len(out) < lines - 12:
        out += [
            f"static long f{i}(struct acc *s, long n)",
            "{",
            "    long t = 0;",
            "    for (long k = 0; k < n; k++) {",
            f"        switch ((k + {i}) % 4) {{",
            f"        case 0: t += s->a * k + {i}; break;",
            "        case 1: t ^= s->b << (k & 7); break;",
            f"        case 2: s->c += (double)t / (k + {i + 1}); break;",
            "        default: t -= (long)strlen(s->name) + k;",
            "        }",
            "    }",
            f"    s->a += t & 0x{i:x}f;",
            "    return t;",
            "}",
            "",
        ]
        i += 1
    out += ["int main(void)", "{", "    struct acc s = {1, 2, 3.0, \"acc\"};", "    long t = 0;"]
    out += [f"    t += f{k}(&s, {k % 13 + 1});" for k in range(i)]
    out += ["    printf(\"%ld %f\\n\", t, s.c);", "    return 0;", "}", ""]
    return "\n".join(out)


@pytest.fixture(scope="session")
def realwork_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The generated C file and a ~50 MB .tar.gz, on the host (every sandbox
    sees them through its read-only root)."""
    d = tmp_path_factory.mktemp("bench-realwork")
    (d / "gen.c").write_text(_c_source())
    tree = d / "tree"
    tree.mkdir()
    # Incompressible content, so the archive itself is ~50 MB; 200 files of
    # 256 KiB in 10 directories.
    for i in range(ARCHIVE_MB * 4):
        sub = tree / f"dir{i % 10}"
        sub.mkdir(exist_ok=True)
        (sub / f"file{i}").write_bytes(os.urandom(256 * 1024))
    with tarfile.open(d / "a.tar.gz", "w:gz", compresslevel=1) as tar:
        tar.add(tree, arcname="tree")
    shutil.rmtree(tree)
    return d


def _commands(d: Path) -> dict[str, list[str] | str]:
    """Each workload's command, or why it cannot run here."""
    gcc = shutil.which("gcc")
    cmds: dict[str, list[str] | str] = {
        "gcc": [gcc, "-O1", "-c", str(d / "gen.c"), "-o", "/dev/null"] if gcc
        else "gcc is not installed",
        "pyimport": [PYTHON, "-c", "import json, sqlite3, asyncio"]
        if os.access(PYTHON, os.X_OK) else f"{PYTHON} is not installed",
        "untar": ["/bin/sh", "-c",
                  f'd=$(mktemp -d) && tar xzf {d / "a.tar.gz"} -C "$d" && rm -rf "$d"'],
        "sha256": ["/usr/bin/find", SHA_TREE, "-type", "f", "-exec", "sha256sum", "{}", "+"]
        if os.path.isdir(SHA_TREE) else f"{SHA_TREE} does not exist here",
    }
    return cmds


WORKLOADS = ("gcc", "pyimport", "untar", "sha256")


@pytest.mark.parametrize("runner", RUNNERS)
@pytest.mark.parametrize("workload", WORKLOADS)
def test_realwork(
    benchmark,  # noqa: ANN001 (pytest-benchmark's fixture)
    request: pytest.FixtureRequest,
    prefixes: dict[str, list[str] | str],
    measure: Callable[..., None],
    realwork_dir: Path,
    workload: str,
    runner: str,
) -> None:
    prefix = prefixes[runner]
    if isinstance(prefix, str):
        pytest.skip(prefix)
    cmd = _commands(realwork_dir)[workload]
    if isinstance(cmd, str):
        pytest.skip(cmd)
    if runner == "native":  # the native command must work, or nothing is compared
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    rounds = request.config.getoption("--bench-rounds")
    rounds = rounds * 2 if runner == "native" else min(rounds, REAL_ROUNDS)
    measure(benchmark, [*prefix, *cmd], workload=workload, per_iter="", runner=runner,
            n=None, rounds=rounds, group=workload)
