"""Shared fixtures: test programs compiled once per session, busybox, and the
native / sandbox runners (see helpers.py).

Markers: ``sandbox`` marks a test that runs something under ``runsc.py do``
(deselect with ``-m "not sandbox"`` to check only the native side).
"""

from __future__ import annotations

import shutil
import struct
import subprocess
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from helpers import PROGRAMS_DIR, Programs, Result, run_native, run_sandbox

# Variants every program is built in: name -> gcc flags.
VARIANTS: dict[str, tuple[str, ...]] = {
    "static": ("-static",),
    "static-pie": ("-static-pie", "-fPIE"),
}
CFLAGS = ("-O1", "-g0", "-Wall", "-Wextra")
BUSYBOX = Path("/bin/busybox")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "sandbox: runs a program under runsc.py do")


def _compile(gcc: str, src: Path, out: Path, flags: Sequence[str]) -> str | None:
    proc = subprocess.run(
        [gcc, *flags, *CFLAGS, "-o", str(out), str(src), "-lm"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return None if proc.returncode == 0 else proc.stderr or f"gcc exited {proc.returncode}"


@pytest.fixture(scope="session")
def gcc() -> str:
    path = shutil.which("gcc")
    if path is None:
        pytest.skip("gcc not found: the C test programs cannot be built (apt-get install gcc)")
    return path


@pytest.fixture(scope="session")
def programs(gcc: str, tmp_path_factory: pytest.TempPathFactory) -> Programs:
    """Every tests/programs/*.c in every variant, compiled in parallel once."""
    build = tmp_path_factory.mktemp("programs")
    result = Programs()
    # Find out first which variants this toolchain can link at all.
    probe = PROGRAMS_DIR / "hello.c"
    for variant, flags in VARIANTS.items():
        err = _compile(gcc, probe, build / f"probe-{variant}", flags)
        if err is not None:
            result.unsupported[variant] = err.strip().splitlines()[-1]
    jobs = {}
    with ThreadPoolExecutor(max_workers=4) as pool:
        for src in sorted(PROGRAMS_DIR.glob("*.c")):
            for variant, flags in VARIANTS.items():
                if variant in result.unsupported:
                    continue
                out = build / f"{src.stem}.{variant}"
                jobs[src.stem, variant] = (out, pool.submit(_compile, gcc, src, out, flags))
    for key, (out, future) in jobs.items():
        err = future.result()
        if err is None:
            result.built[key] = out
        else:
            result.errors[key] = err
    return result


def _is_static_elf(path: Path) -> bool:
    """True if ``path`` is an ELF64 without a PT_INTERP (no dynamic loader needed)."""
    data = path.read_bytes()
    if data[:4] != b"\x7fELF" or data[4] != 2:
        return False
    (phoff,) = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    for i in range(phnum):
        (p_type,) = struct.unpack_from("<I", data, phoff + i * phentsize)
        if p_type == 3:  # PT_INTERP
            return False
    return True


@pytest.fixture(scope="session")
def busybox() -> Path:
    if not BUSYBOX.is_file():
        pytest.skip(f"{BUSYBOX} not found (apt-get install busybox-static)")
    if not _is_static_elf(BUSYBOX):
        pytest.skip(f"{BUSYBOX} is not statically linked (install busybox-static)")
    return BUSYBOX


Runner = Callable[..., Result]


@pytest.fixture(scope="session")
def native() -> Runner:
    """``native(argv, stdin=None, env=None)``: helpers.run_native."""
    return run_native


@pytest.fixture(scope="session")
def sandbox() -> Runner:
    """``sandbox(argv, stdin=None, extra_flags=(), env=None)``: helpers.run_sandbox."""
    return run_sandbox


@pytest.fixture(params=["native", pytest.param("sandbox", marks=pytest.mark.sandbox)])
def mode(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def run_in_mode(mode: str) -> Runner:
    """``run(argv, stdin=None, env=None)`` natively or sandboxed, per ``mode``."""

    def run(
        argv: Sequence[str | Path],
        stdin: bytes | None = None,
        env: Mapping[str, str] | None = None,
    ) -> Result:
        if mode == "native":
            return run_native(argv, stdin=stdin, env=env)
        return run_sandbox(argv, stdin=stdin, env=env)

    return run


@pytest.fixture
def mf():  # noqa: ANN201 - a generator fixture
    """A memory file (sentry/mm/memfile.py) whose common arena and address
    spaces' arenas are 4 GiB each, sparse, closed after the test."""
    from sentry.mm.memfile import MemoryFile

    f = MemoryFile(1 << 32, arena_size=1 << 32, max_arenas=16)
    yield f
    f.close()
