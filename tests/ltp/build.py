"""Build the Linux Test Project's syscall tests statically, once, into a cache
directory the runner reads (tests/ltp/runner.py; PYVISOR_LTP_DIR, default
/var/tmp/pyvisor-ltp).

Usage:
    python3 tests/ltp/build.py [--src GIT-URL-OR-PATH] [--dest DIR] [--jobs N]

Why static: the sandbox runs each test binary as the host has it, and a
static binary needs nothing from the host's libraries, so the native and
the sandboxed run execute the same code.  Why only the runner's families:
the build is the slow part (about a thousand tests), and nothing else is run.

The steps are LTP's own (its INSTALL, "in-build-tree"): ``make autotools``,
``./configure LDFLAGS=-static``, ``make`` in ``lib/`` and then in each
family's directory, so binaries land beside their sources, where the runner
looks (``testcases/kernel/syscalls/<family>/<test>``).  Each family's make
runs with ``-k``: a test that cannot be linked statically (a library with no
``.a`` on this host, say) is left out and listed at the end, the rest build.
Each step is skipped when its output is already there, so a second run only
builds what is missing.  Needs git, make, gcc, autoconf, automake, m4 and
pkg-config (Debian: ``apt-get install autoconf automake m4 pkgconf``).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from runner import DEFAULT_LTP, FAMILIES  # noqa: E402

UPSTREAM = "https://github.com/linux-test-project/ltp.git"
STEP_TIMEOUT_S = 3600.0  # the longest step (a family's make on a loaded 2-core host)


def _step(argv: list[str], cwd: Path, check: bool = True) -> int:
    print("+", " ".join(argv), f"(in {cwd})", flush=True)
    try:
        proc = subprocess.run(argv, cwd=cwd, timeout=STEP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise SystemExit(f"build: {argv[0]} took over {STEP_TIMEOUT_S:.0f} s in {cwd}") \
            from None
    if check and proc.returncode != 0:
        raise SystemExit(f"build: {' '.join(argv)} exited {proc.returncode} in {cwd}")
    return proc.returncode


def _unbuilt(family_dir: Path) -> list[str]:
    """Sources of a family whose test binary is not there (helpers that are
    linked into other tests, not built alone, are listed too)."""
    return sorted(src.stem for src in family_dir.rglob("*.c")
                  if not (src.parent / src.stem).is_file())


def build(src: str, dest: Path, jobs: int) -> list[str]:
    """Clone, configure and build; return ``family/test`` for each test left unbuilt."""
    if not (dest / ".git").exists():
        _step(["git", "clone", "-q", src, str(dest)], Path.cwd())
    if not (dest / "configure").exists():
        _step(["make", "autotools"], dest)
    if not (dest / "include" / "mk" / "config.mk").exists():
        _step(["./configure", "LDFLAGS=-static"], dest)
    _step(["make", f"-j{jobs}", "-C", "lib"], dest)
    root = dest / "testcases" / "kernel" / "syscalls"
    missing = []
    for family in FAMILIES:
        d = root / family
        if not d.is_dir():
            continue
        # -k and no check: a test that does not link statically must not stop
        # the others; it is reported below.
        _step(["make", "-k", f"-j{jobs}", "-C", str(d)], dest, check=False)
        missing += [f"{family}/{name}" for name in _unbuilt(d)]
    return missing


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--src", default=os.environ.get("PYVISOR_LTP_SRC", UPSTREAM),
                    help="the LTP repository to clone (URL or local path)")
    ap.add_argument("--dest", type=Path, default=DEFAULT_LTP, help="the build tree")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = ap.parse_args()
    missing = build(args.src, args.dest, args.jobs)
    print(f"build: done in {args.dest}; {len(missing)} sources without a binary "
          "(helpers or tests that did not link statically):")
    for name in missing:
        print("  ", name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
