"""Run the OCI runtime-tools validation suite against an OCI runtime and count
its TAP verdicts per file.

Usage (after building opencontainers/runtime-tools' ``runtimetest`` and
validation executables as that project's README says):
    python3 tests/oci_validation/runner.py [--suite DIR] [--runtime runc|pyvisor|PATH]
                                           [--json OUT] [FILE ...]

The suite's executables take the runtime from ``RUNTIME`` and must run from
the checkout's top directory (they untar ``rootfs-amd64.tar.gz`` and copy
``runtimetest`` from there). ``pyvisor`` means this checkout's runsc.py
through a small wrapper script, as Docker would call it. A file is *fully
passing* when it exits 0 and printed at least one ``ok`` and no ``not ok``;
skips count as neither.
The figures to compare across runtimes: files fully passing, and asserts
ok / not ok.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEFAULT_SUITE = Path(os.environ.get("PYVISOR_OCI_VALIDATION_DIR", "/var/tmp/runtime-tools"))
TIMEOUT_S = 180.0
_OK = re.compile(r"^ok \d+(?P<rest>.*)$")
_NOT_OK = re.compile(r"^not ok \d+(?P<rest>.*)$")


@dataclass
class FileResult:
    """One validation executable's verdicts."""

    name: str
    ok: int
    not_ok: int
    skipped: int
    exit_code: int
    failures: list[str]
    passed: list[str] = field(default_factory=list)

    @property
    def passing(self) -> bool:
        """Exit 0, at least one ok and no not ok: a file that printed only a
        YAML error and ``1..0`` (the hook files do when setup fails) is not
        a pass."""
        return self.exit_code == 0 and self.not_ok == 0 and self.ok > 0


def files(suite: Path) -> list[Path]:
    """Every built validation executable, in a stable order."""
    return sorted(suite.glob("validation/*/*.t"))


def runtime_command(name: str, tmp: Path, repo: Path = REPO) -> str:
    """The RUNTIME value for ``name``: ``pyvisor`` gets a wrapper around
    ``repo``'s runsc.py (the suite wants one executable path)."""
    if name != "pyvisor":
        return name
    wrapper = tmp / "pyvisor-runtime"
    wrapper.write_text(f"#!/bin/sh\nPYTHONPATH={repo} exec {sys.executable} "
                       f"{repo / 'runsc.py'} \"$@\"\n")
    wrapper.chmod(0o755)
    return str(wrapper)


def parse_tap(name: str, out: str, code: int) -> FileResult:
    """Count ok / not ok / skip lines of one TAP stream."""
    ok = not_ok = skipped = 0
    failures: list[str] = []
    passed: list[str] = []
    for line in out.splitlines():
        if '"error":' in line:
            failures.append("error: " + line.split('"error":', 1)[1].strip()[:200])
        elif m := _OK.match(line):
            if "# SKIP" in m["rest"].upper():
                skipped += 1
            else:
                ok += 1
                passed.append(m["rest"].lstrip(" -"))
        elif m := _NOT_OK.match(line):
            not_ok += 1
            failures.append(m["rest"].lstrip(" -"))
    return FileResult(name, ok, not_ok, skipped, code, failures, passed)


def run_one(suite: Path, exe: Path, runtime: str) -> FileResult:
    """Run one validation executable from the suite's top directory."""
    name = exe.name
    env = dict(os.environ, RUNTIME=runtime)
    try:
        proc = subprocess.run([str(exe)], cwd=suite, env=env, capture_output=True,
                              text=True, timeout=TIMEOUT_S, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        res = parse_tap(name, out, -1)
        res.failures.append(f"timeout after {TIMEOUT_S:.0f}s")
        return res
    return parse_tap(name, proc.stdout, proc.returncode)


def run(suite: Path, runtime: str, only: list[str] | None = None,
        repo: Path = REPO) -> list[FileResult]:
    """Every (or the named) validation file against ``runtime``."""
    with tempfile.TemporaryDirectory(prefix="oci-validation-") as tmp:
        cmd = runtime_command(runtime, Path(tmp), repo)
        chosen = [e for e in files(suite) if not only or e.stem in only or e.name in only]
        return [run_one(suite, exe, cmd) for exe in chosen]


def lost(runc: list[FileResult], other: list[FileResult],
         allowed: frozenset[str] = frozenset()) -> dict[str, list[str]]:
    """Per file, the asserts ``other`` fails that runc passes: by their text,
    counted (a file may make the same assert several times, and runc fail
    some of them too), less those in ``allowed`` (deliberate differences)."""
    by_name = {r.name: r for r in runc}
    out: dict[str, list[str]] = {}
    for r in other:
        ref = by_name.get(r.name)
        if ref is None:
            continue
        ours, theirs = Counter(r.failures), Counter(ref.failures)
        passed = set(ref.passed)
        bad = sorted(f for f, n in ours.items()
                     if f in passed and f not in allowed and n > theirs[f])
        if bad:
            out[r.name] = bad
    return out


def summary(results: list[FileResult]) -> str:
    """One line per file, then the totals the closing notes quote."""
    lines = [f"{'file':44} {'ok':>5} {'not ok':>6} {'skip':>5} {'exit':>4}"]
    for r in results:
        lines.append(f"{r.name:44} {r.ok:5} {r.not_ok:6} {r.skipped:5} {r.exit_code:4}"
                     + ("" if r.passing else "  FAIL"))
    passing = sum(r.passing for r in results)
    lines.append(f"files fully passing: {passing}/{len(results)}; asserts ok "
                 f"{sum(r.ok for r in results)}, not ok {sum(r.not_ok for r in results)}")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--suite", type=Path, default=DEFAULT_SUITE)
    ap.add_argument("--runtime", default="pyvisor")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--repo", type=Path, default=REPO,
                    help="the pyvisor checkout whose runsc.py runs (another branch's, to compare)")
    ap.add_argument("--failures", action="store_true", help="print each not-ok assert")
    ap.add_argument("only", nargs="*")
    args = ap.parse_args()
    if not files(args.suite):
        print(f"no validation executables under {args.suite}/validation", file=sys.stderr)
        return 2
    results = run(args.suite, args.runtime, args.only, args.repo)
    print(summary(results))
    if args.failures:
        for r in results:
            for f in r.failures:
                print(f"{r.name}: {f}")
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
