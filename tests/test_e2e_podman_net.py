"""End to end through podman (netavark's bridge): a container with runtime
pyvisor (--network=sandbox, the default, also given here) reaches a TCP server the test runs
on the host, through the Sentry's user-space stack. runc first: a runc
failure is the harness's. The podman set-up is tests/test_e2e_podman.py's."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from e2e import PingServer
from test_e2e_podman import IMAGE, Podman, _why, podman  # noqa: F401 - the fixture

NET = "pyvpnet"
SUBNET = "10.232.9.0/24"
GATEWAY = "10.232.9.1"


@pytest.fixture(scope="module")
def podnet(podman: Podman) -> Iterator[Podman]:  # noqa: F811
    """A bridge network of our own (rootful netavark keeps network configs in
    /etc/containers/networks whatever --root says: removed at the end)."""
    res = podman("network", "create", "--subnet", SUBNET, NET, timeout=60)
    if res.returncode != 0 and "already exists" not in res.stderr:
        pytest.fail(f"podman network create: {_why(res)}")
    try:
        yield podman
    finally:
        podman("network", "rm", "-f", NET, timeout=60)


@pytest.mark.parametrize("runtime", ["runc", "pyvisor"])
def test_container_reaches_host_server_through_podman(podnet: Podman, runtime: str) -> None:
    # The bridge comes up with the first container: listen on every address.
    srv = PingServer("0.0.0.0")
    try:
        res = podnet("run", "--rm", "--network", NET, *podnet.runtimes[runtime],
                     *(["--runtime-flag", "network=sandbox"] if runtime == "pyvisor" else []),
                     IMAGE,
                     "/bin/busybox", "sh", "-c",
                     f"echo ping-{runtime} | busybox nc {GATEWAY} {srv.port}")
        assert res.returncode == 0, _why(res)
        assert srv.got == [f"ping-{runtime}\n".encode()]
        assert res.stdout == f"pong:ping-{runtime}\n"
    finally:
        srv.close()
