"""Start-up: what one short container costs, pyvisor vs gVisor's runsc (and native).

Issue 5's target is `docker run --rm IMG /bin/busybox true` no slower with
pyvisor than with runsc; Docker's own part is bench_docker.py's. These cases
time the runtime's part, one whole run per round:

- ``do true``: ``runsc.py do -- /bin/busybox true`` (native: the program alone;
  runsc: ``runsc --platform=ptrace --network=none do``): interpreter, Sentry
  boot, Gofer start, program, teardown.
- ``oci create..delete``: what a shim drives, each step a fresh CLI process:
  ``create --bundle B --pid-file P ID``, ``start ID``, wait for the pid in P to
  exit (a pidfd, as a subreaper shim would wait), ``state ID``, ``delete ID``,
  on a bundle holding a static busybox whose process is ``busybox true``.
- ``list``: one bare CLI call (interpreter, site, click, the OCI modules).

Run: python3 -m pytest bench/bench_startup.py --benchmark-only
"""

from __future__ import annotations

import itertools
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from runners import GVISOR, RUNNERS

REPO = Path(__file__).resolve().parent.parent
BUSYBOX = "/bin/busybox"
STEP_TIMEOUT = 120.0
_ids = itertools.count()


def _oci_runners(gvisor_clis: dict[str, list[str] | str]) -> dict[str, list[str] | str]:
    """The OCI CLI of each runtime (global flags included), or why it cannot run."""
    pyvisor: list[str] | str = [sys.executable, str(REPO / "runsc.py")]
    if os.geteuid() != 0:
        pyvisor = "runsc.py create needs root"
    return {"pyvisor": pyvisor, **gvisor_clis}


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bundle whose rootfs is a static busybox; its process: busybox true."""
    if not os.path.isfile(BUSYBOX):
        pytest.skip(f"{BUSYBOX} missing: apt-get install -y busybox-static")
    sys.path.insert(0, str(REPO))
    from sentry.oci.bundle import default_spec

    b = tmp_path_factory.mktemp("startup-bundle")
    (b / "rootfs/bin").mkdir(parents=True)
    shutil.copy(BUSYBOX, b / "rootfs/bin/busybox")
    spec: dict[str, Any] = default_spec()
    spec["process"]["args"] = ["/bin/busybox", "true"]
    spec["process"]["terminal"] = False
    spec["root"] = {"path": "rootfs", "readonly": True}
    (b / "config.json").write_text(json.dumps(spec))
    return b


def _step(argv: list[str]) -> None:
    """One CLI call. stderr goes to a file, not a pipe: the container (the
    sandbox host `create` leaves behind) inherits it, so a pipe would not see
    EOF until the container is gone."""
    with tempfile.TemporaryFile() as err:
        res = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=err, timeout=STEP_TIMEOUT, check=False)
        if res.returncode != 0:
            err.seek(0)
            text = err.read().decode(errors="replace")[-2000:]
            raise AssertionError(f"{argv} exited {res.returncode}:\n{text}")


def _wait_exit(pid: int) -> None:
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        if not select.select([fd], [], [], STEP_TIMEOUT)[0]:
            raise AssertionError(f"container process {pid} still runs after {STEP_TIMEOUT} s")
    finally:
        os.close(fd)


def _wait_stopped(g: list[str], cid: str) -> None:
    """``state`` until it says stopped, as a shim asks after the pid exits.
    pyvisor and gVisor 2022 say so at the first call; gVisor 2024's sandbox
    can still report "running" for a moment after the pid in its pid file
    has exited, and then refuses a plain ``delete``."""
    deadline = time.monotonic() + STEP_TIMEOUT
    while True:
        res = subprocess.run([*g, "state", cid], stdin=subprocess.DEVNULL,
                             capture_output=True, timeout=STEP_TIMEOUT, check=False)
        if res.returncode != 0:
            raise AssertionError(f"state {cid} exited {res.returncode}: {res.stderr[-2000:]!r}")
        if json.loads(res.stdout).get("status") == "stopped":
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{cid} not stopped after {STEP_TIMEOUT} s")
        time.sleep(0.002)


def _oci_sequence(cli: list[str], root: Path, bundle: Path) -> Callable[[], None]:
    def once() -> None:
        cid = f"startup-{os.getpid()}-{next(_ids)}"
        pid_file = root / f"{cid}.pid"
        g = [*cli, "--root", str(root)]
        try:
            _step([*g, "create", "--bundle", str(bundle), "--pid-file", str(pid_file), cid])
            _step([*g, "start", cid])
            _wait_exit(int(pid_file.read_text()))
            _wait_stopped(g, cid)
            _step([*g, "delete", cid])
        except BaseException:  # leave no container behind a failed round
            subprocess.run([*g, "delete", "--force", cid], stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           timeout=STEP_TIMEOUT, check=False)
            raise
        finally:
            pid_file.unlink(missing_ok=True)

    return once


def _record(benchmark: Any, results: Any, fn: Callable[[], None], *, workload: str,
            runner: str, rounds: int) -> None:
    benchmark.group = workload
    benchmark.extra_info.update(runner=runner, workload=workload)
    benchmark.pedantic(fn, rounds=rounds, iterations=1)
    if benchmark.stats is None:  # --benchmark-disable
        return
    stats = benchmark.stats.stats
    results.record(workload=workload, runner=runner, n=None, per_iter="", best=stats.min,
                   median=stats.median, rounds=rounds)


def _rounds(request: pytest.FixtureRequest) -> int:
    return 2 * int(request.config.getoption("--bench-rounds"))  # 10 by default


@pytest.mark.parametrize("runner", RUNNERS)
def test_do_true(benchmark, request: pytest.FixtureRequest,  # noqa: ANN001
                 prefixes: dict[str, list[str] | str], bench_results: Any,
                 run_process: Callable[[list[str]], None], runner: str) -> None:
    prefix = prefixes[runner]
    if isinstance(prefix, str):
        pytest.skip(prefix)
    if not os.path.isfile(BUSYBOX):
        pytest.skip(f"{BUSYBOX} missing: apt-get install -y busybox-static")
    argv = [*prefix, BUSYBOX, "true"]
    _record(benchmark, bench_results, lambda: run_process(argv), workload="do true",
            runner=runner, rounds=_rounds(request) * (4 if runner == "native" else 1))


@pytest.mark.parametrize("runner", ["pyvisor", *GVISOR])
def test_oci_create_start_delete(benchmark, request: pytest.FixtureRequest,  # noqa: ANN001
                                 bundle: Path, tmp_path: Path, bench_results: Any,
                                 gvisor_clis: dict[str, list[str] | str], runner: str) -> None:
    cli = _oci_runners(gvisor_clis)[runner]
    if isinstance(cli, str):
        pytest.skip(cli)
    root = tmp_path / "state"
    root.mkdir()
    _record(benchmark, bench_results, _oci_sequence(cli, root, bundle),
            workload="oci create..delete", runner=runner, rounds=_rounds(request))


def test_list(benchmark, request: pytest.FixtureRequest, tmp_path: Path,  # noqa: ANN001
              bench_results: Any, run_process: Callable[[list[str]], None]) -> None:
    argv = [sys.executable, str(REPO / "runsc.py"), "--root", str(tmp_path), "list"]
    _record(benchmark, bench_results, lambda: run_process(argv), workload="list",
            runner="pyvisor", rounds=_rounds(request))
