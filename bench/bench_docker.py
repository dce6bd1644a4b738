"""`docker run --rm IMAGE /bin/busybox true` with pyvisor, runc and gVisor's
runsc as Docker runtimes, in one run.

What it measures: the whole container life as Docker drives it (create, start,
wait, delete, through dockerd, containerd and the runc shim), for a program
that does nothing; i.e. the runtime's start-up and teardown cost as a Docker
user sees it.  One dockerd is started for the session in throw-away
directories (tests/e2e.py), with runtime "pyvisor" registered by
``runsc.py install --config-file`` and "runsc" (``--platform=ptrace
--network=none``) added the same way; the image is busybox imported from a
local tar.  Containers run with ``--network=none``.

The summary table in bench/conftest.py has the columns native / pyvisor /
runsc: here **native is runc** (the unsandboxed runtime), so "pyvisor/native"
reads pyvisor/runc.  Cases skip, with the reason, when Docker is not installed
or its daemon cannot start, and runsc's case when gVisor is not installed.

Run: python3 -m pytest bench/bench_docker.py --benchmark-only
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import e2e  # noqa: E402 - the daemon and image machinery of the e2e tests

from sentry.oci.install import install  # noqa: E402

IMAGE = "pyvisor-bench-busybox:1"
# Docker runtime -> the column of the summary table it is recorded under.
RUNTIMES = {"runc": "native", "pyvisor": "pyvisor", "runsc": "runsc"}


@pytest.fixture(scope="module")
def docker_argv(runsc_cli: list[str] | str) -> Iterator[dict[str, list[str] | str]]:
    """Each runtime's `docker run` command line, or why it cannot run."""
    if not e2e.which("dockerd") or not e2e.which("docker"):
        pytest.skip("docker is not installed (apt-get install -y docker.io)")
    e2e.require_root()
    e2e.require_busybox()
    base = e2e.short_tmpdir("pyv-bd-")
    daemon: e2e.Daemon | None = None
    try:
        def add_runsc(conf: Path) -> None:
            if not isinstance(runsc_cli, str):  # gVisor with the suites' flags
                install(str(conf), "runsc", runsc_cli[0], runsc_cli[1:])

        docker = str(e2e.which("docker"))
        daemon, env = e2e.start_dockerd(base, str(e2e.which("dockerd")), docker, add_runsc)
        # the timed command line names the daemon itself (measure passes no env)
        client = [docker, "-H", env["DOCKER_HOST"], "--config", env["DOCKER_CONFIG"]]
        res = e2e.run([*client, "import", str(e2e.write_rootfs_tar(base / "rootfs.tar")),
                       IMAGE], env=env)
        if res.returncode != 0:
            pytest.skip(f"docker import failed: {res.stderr[-500:]}")
        out: dict[str, list[str] | str] = {}
        for runtime in RUNTIMES:
            argv = [*client, "run", "--rm", f"--runtime={runtime}", "--network=none", IMAGE,
                    "/bin/busybox", "true"]
            if runtime == "runsc" and isinstance(runsc_cli, str):
                out[runtime] = runsc_cli
                continue
            probe = e2e.run(argv, env=env)
            out[runtime] = argv if probe.returncode == 0 else (
                f"docker run --runtime={runtime} fails here: {probe.stderr.strip()[-300:]}")
        yield out
    finally:
        if daemon is not None:
            daemon.stop()
        e2e.remove_tree(base)


@pytest.mark.parametrize("runtime", list(RUNTIMES))
def test_docker_run_true(
    benchmark,  # noqa: ANN001 (pytest-benchmark's fixture)
    request: pytest.FixtureRequest,
    docker_argv: dict[str, list[str] | str],
    measure: Callable[..., None],
    bench_results: object,
    runtime: str,
) -> None:
    argv = docker_argv[runtime]
    if isinstance(argv, str):
        bench_results.skip(RUNTIMES[runtime], argv)  # type: ignore[attr-defined]
        pytest.skip(argv)
    measure(benchmark, argv, workload="docker-run-true (native=runc)",
            per_iter="docker run --rm", runner=RUNTIMES[runtime], n=None,
            rounds=request.config.getoption("--bench-rounds"), group="docker")
