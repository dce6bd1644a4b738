"""End to end, --network=host for OCI containers (runsc's hostinet): the
dockerd of tests/test_e2e_net_sandbox.py, its pyvisor runtime given
``runtimeArgs: ["--network=host"]``. The application's sockets are host
sockets the Sentry makes in the container's network namespace (the veth
Docker set up), so a published port and an outbound connection go through
the host kernel's TCP, and the container's namespace lists the Sentry's
sockets as TCP: the weaker wall docs/network.md describes.

Before OCI host mode, the runtime flag made the container loopback-only:
the outbound connection failed (ENETUNREACH) and the port was never served.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import e2e
import pytest
from test_e2e_net_sandbox import (
    GATEWAY,
    IMAGE,
    NET,
    PORT,
    Docker,
    _fetch,
    _sentry_of,
    _socket_inodes,
    _table_inodes,
    bridge_docker,
)


@pytest.fixture(scope="module")
def docker() -> Iterator[Docker]:
    yield from bridge_docker(("--network=host",))


def test_published_port_served_through_host_sockets(docker: Docker) -> None:
    """`docker run -d -p` with busybox httpd: its listener is a host socket
    in the container's namespace, which the Sentry holds and the namespace's
    /proc/net/tcp lists (in sandbox mode it never does)."""
    name = "pyv-web-pyvisor"
    res = docker("run", "-d", "--name", name, "--runtime=pyvisor", "--network", NET,
                 "-p", f"127.0.0.1:{PORT}:8000", IMAGE, "/bin/busybox", "sh", "-c",
                 "echo hello-host > /tmp/index.html && exec busybox httpd -f -p 8000 -h /tmp")
    assert res.returncode == 0, f"{res.stderr} {docker.daemon.why(res)}"
    try:
        assert _fetch(f"http://127.0.0.1:{PORT}/index.html",
                      time.monotonic() + 30) == "hello-host\n"
        host_pid = int(docker("inspect", "-f", "{{.State.Pid}}", name).stdout.strip())
        sentry = _sentry_of(docker, name)
        listed = _table_inodes(host_pid, "tcp", 9) | _table_inodes(host_pid, "tcp6", 9)
        assert _socket_inodes(sentry) & listed, "the listener is not a host TCP socket"
        # ip addr inside: the interface table copied at start, after the hooks.
        res = docker("exec", name, "/bin/busybox", "ip", "-4", "addr")
        assert res.returncode == 0 and "eth0" in res.stdout, res.stdout + res.stderr
    finally:
        docker("rm", "-f", name)


def test_container_reaches_host_server(docker: Docker) -> None:
    """Out through the host kernel: a TCP exchange with a server the test
    runs on the bridge's address."""
    srv = e2e.PingServer(GATEWAY)
    try:
        res = docker("run", "--rm", "--runtime=pyvisor", "--network", NET, IMAGE,
                     "/bin/busybox", "sh", "-c",
                     f"echo ping-host | busybox nc {GATEWAY} {srv.port}")
        assert res.returncode == 0, f"{res.stderr} {docker.daemon.why(res)}"
        assert srv.got == [b"ping-host\n"]
        assert res.stdout == "pong:ping-host\n"
    finally:
        srv.close()
