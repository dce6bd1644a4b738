"""The vDSO (sentry/vdso/): clock_gettime, gettimeofday and time answered in
the application's process, agreeing with the host's clocks, without a trap.

Differential: tests/programs/vdso_clock.c prints invariants that hold on any
Linux with a vDSO (monotonic over many calls, each reading between two raw
syscalls of the same clock, the image's symbols found through DT_HASH), the
same natively and in the sandbox, static and dynamic.  --strace counts what
still traps.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import PROGRAMS_DIR, RUNSC, Programs, run_native, run_sandbox

from sentry.vdso import image

VARIANTS = ["static", "static-pie", "dynamic"]
TIME_TRAP = re.compile(r"\] (clock_gettime\(CLOCK_(REALTIME|MONOTONIC)[,_]|gettimeofday\(|time\()")
HOST_SLACK_NS = 2_000_000_000  # generous: the reading must fall in the run's window


@pytest.fixture(scope="module")
def dynamic_exe(gcc: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """vdso_clock linked against libc.so: glibc's ld.so takes the vDSO (the
    session fixture builds static variants only)."""
    out = tmp_path_factory.mktemp("vdso") / "vdso_clock.dynamic"
    src = PROGRAMS_DIR / "vdso_clock.c"
    proc = subprocess.run([gcc, "-O1", "-Wall", "-o", str(out), str(src)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return out


@pytest.fixture
def exe_of(programs: Programs, request: pytest.FixtureRequest) -> Callable[[str], str]:
    def get(variant: str) -> str:
        if variant == "dynamic":
            return os.fspath(request.getfixturevalue("dynamic_exe"))
        return os.fspath(programs.path("vdso_clock", variant))

    return get


def _runsc(argv: list[str], flags: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    """runsc.py do with PYVISOR_* set for the Sentry itself (helpers strip them)."""
    cmd = [sys.executable, os.fspath(RUNSC), *flags, "do", "--", *argv]
    base = {k: v for k, v in os.environ.items() if not k.startswith("PYVISOR_")}
    return subprocess.run(cmd, capture_output=True, text=True, env={**base, **env}, timeout=120)


def _raw_values(stderr: str) -> dict[int, int]:
    return {int(m[1]): int(m[2]) for m in re.finditer(r"^raw (\d+) (\d+)$", stderr, re.M)}


@pytest.mark.parametrize("variant", VARIANTS)
def test_clocks_match_native_and_host(exe_of: Callable[[str], str], variant: str) -> None:
    exe = exe_of(variant)
    native = run_native([exe, "check", "100000"])
    assert native.returncode == 0, native.describe()
    clocks = [time.CLOCK_REALTIME, time.CLOCK_MONOTONIC, time.CLOCK_MONOTONIC_RAW,
              time.CLOCK_BOOTTIME]
    before = {c: time.clock_gettime_ns(c) for c in clocks}
    res = run_sandbox([exe, "check", "100000"])
    after = {c: time.clock_gettime_ns(c) for c in clocks}
    assert (res.returncode, res.out) == (0, native.out), res.describe()
    raw = _raw_values(res.err)
    for c in clocks:
        assert before[c] - HOST_SLACK_NS <= raw[c] <= after[c] + HOST_SLACK_NS, (c, res.err)


@pytest.mark.parametrize("variant", VARIANTS)
def test_time_calls_do_not_trap(exe_of: Callable[[str], str], variant: str) -> None:
    """4000 calls each of clock_gettime (two clocks), gettimeofday and time: a
    handful may trap before the first calibration (10 ms after boot), no more."""
    exe = exe_of(variant)
    res = _runsc([exe, "loop", "4000"], ["--strace"], {})
    assert res.returncode == 0 and "looped 4000" in res.stdout, res.stderr[-2000:]
    traps = len(TIME_TRAP.findall(res.stderr))
    assert traps <= 16, f"{traps} time syscalls trapped"


@pytest.mark.parametrize("variant", VARIANTS)
def test_unusable_tsc_falls_back_to_the_syscall(exe_of: Callable[[str], str], variant: str) -> None:
    """With the time page disabled (as on a host without a usable TSC) every
    call takes the trapping syscall and the answers are still right."""
    exe = exe_of(variant)
    native = run_native([exe, "check", "100"])
    res = _runsc([exe, "check", "100"], [], {"PYVISOR_VDSO": "syscall"})
    assert (res.returncode, res.stdout) == (0, native.out), res.stderr[-2000:]
    res = _runsc([exe, "loop", "200"], ["--strace"], {"PYVISOR_VDSO": "syscall"})
    assert res.returncode == 0, res.stderr[-2000:]
    assert len(TIME_TRAP.findall(res.stderr)) >= 800


def test_static_program_without_vdso_still_traps(programs: Programs) -> None:
    """A program that never looks at AT_SYSINFO_EHDR (here: none given) still
    gets its time from the trapping syscall, correctly."""
    exe = os.fspath(programs.path("clocks", "static"))
    native = run_native([exe])
    res = _runsc([exe], [], {"PYVISOR_VDSO": "0"})
    assert (res.returncode, res.stdout) == (native.returncode, native.out), res.stderr[-2000:]
    res = _runsc([os.fspath(programs.path("vdso_clock", "static")), "check", "10"], [],
                 {"PYVISOR_VDSO": "0"})
    assert res.stdout == "vdso mapped: 0\n", res.stderr[-2000:]


@pytest.mark.parametrize("variant", VARIANTS)
def test_time_page_is_not_writable(exe_of: Callable[[str], str], variant: str) -> None:
    """mprotect cannot make the time page writable, and a write faults."""
    exe = exe_of(variant)
    res = run_sandbox([exe, "write"])
    assert res.returncode == 128 + 11, res.describe()
    assert res.out == "mprotect writable: 0\n", res.describe()


PY_CLOCKS = (
    "import time\n"
    "a = (time.time_ns(), time.monotonic_ns())\n"
    "m = [time.monotonic_ns() for _ in range(20000)]\n"
    "assert m == sorted(m), 'monotonic went back'\n"
    "t = [time.time() for _ in range(20000)]\n"
    "print(*a)\n"
)


def test_python_time_agrees_with_host() -> None:
    py = "/usr/bin/python3"
    if not os.path.exists(py):
        pytest.skip("no /usr/bin/python3 on this host")
    before = (time.time_ns(), time.monotonic_ns())
    res = _runsc([py, "-c", PY_CLOCKS], ["--strace"], {})
    after = (time.time_ns(), time.monotonic_ns())
    assert res.returncode == 0, res.stderr[-2000:]
    got = [int(x) for x in res.stdout.split()]
    for b, g, a in zip(before, got, after, strict=True):
        assert b - HOST_SLACK_NS <= g <= a + HOST_SLACK_NS
    assert len(TIME_TRAP.findall(res.stderr)) < 100, "python's 40000 clock reads trapped"


def test_image_is_checked() -> None:
    """The built image passes the checks the Sentry makes before mapping it;
    a truncated or non-ELF one is refused with ImageError, not mapped."""
    data = image.load()
    image.check(data)
    for bad in (b"", data[:40], b"\x7fELF" + bytes(100), data[:16] + b"\x02\x00" + data[18:]):
        with pytest.raises(image.ImageError):
            image.check(bad)
