"""`docker run --rm IMAGE /bin/busybox true` with pyvisor, runc and gVisor's
runsc (2022 on ptrace, 2024 on systrap) as Docker runtimes, in one run.

What it measures: the whole container life as Docker drives it (create, start,
wait, delete, through dockerd, containerd and the runc shim), for a program
that does nothing; i.e. the runtime's start-up and teardown cost as a Docker
user sees it.  One dockerd is started for the session in throw-away
directories (tests/e2e.py), with runtime "pyvisor" registered by
``runsc.py install --config-file``, and "runsc" (2022, ``--platform=ptrace
--network=none``) and "runsc-systrap" (2024, ``--platform=systrap``) added the
same way; the image is busybox imported from a
local tar.  Containers run with ``--network=none``.

The summary table in bench/conftest.py has the columns native / pyvisor /
runsc / systrap: here **native is runc** (the unsandboxed runtime), so "pyvisor/native"
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
RUNTIMES = {"runc": "native", "pyvisor": "pyvisor", "runsc": "runsc", "runsc-systrap": "systrap"}


@pytest.fixture(scope="module")
def docker_argv(gvisor_clis: dict[str, list[str] | str]) -> Iterator[dict[str, list[str] | str]]:
    """Each runtime's `docker run` command line, or why it cannot run."""
    if not e2e.which("dockerd") or not e2e.which("docker"):
        pytest.skip("docker is not installed (apt-get install -y docker.io)")
    e2e.require_root()
    e2e.require_busybox()
    base = e2e.short_tmpdir("pyv-bd-")
    daemon: e2e.Daemon | None = None
    try:
        def add_runsc(conf: Path) -> None:
            for runtime, runner in RUNTIMES.items():  # gVisor with the suites' flags
                cli = gvisor_clis.get(runner)
                if cli is not None and not isinstance(cli, str):
                    install(str(conf), runtime, cli[0], cli[1:])

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
            cli = gvisor_clis.get(RUNTIMES[runtime])
            if isinstance(cli, str):
                out[runtime] = cli
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
