"""--network=sandbox end to end, continued (tests/test_e2e_net_sandbox.py's
dockerd and networks): an IPv6 connection into a container's ``::``
listener, from the host over a dual-stack docker network.

Each case runs under runc (the host kernel: the reference) and pyvisor.
Ports are inside the containers' own namespaces (no published host ports).
"""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Iterator

import pytest
import test_e2e_net_sandbox as sb

SRV_PORT = 18617  # inside the container


@pytest.fixture(scope="module")
def docker() -> Iterator[sb.Docker]:
    yield from sb.bridge_docker()


def _get(url: str, deadline: float) -> str:
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                return r.read().decode()
        except OSError as exc:  # the server is still starting: poll until it answers
            last = exc
            time.sleep(0.2)
    raise AssertionError(f"{url}: no answer: {last}")


@pytest.mark.parametrize("runtime", ["runc", "pyvisor"])
def test_ipv6_connection_into_a_dual_stack_listener(docker: sb.Docker, runtime: str) -> None:
    """busybox httpd listens on ``::`` (dual stack) in the container; the host
    fetches a page from the container's global IPv6 address and from its IPv4
    one: the stack listens in both families for a ``::`` wildcard."""
    if not docker.ipv6:
        pytest.skip(f"docker cannot make an IPv6 network here: {docker.ipv6_why}")
    name = f"pyv-v6srv-{runtime}"
    res = docker("run", "-d", "--name", name, f"--runtime={runtime}", "--network", sb.NET6,
                 sb.IMAGE, "/bin/busybox", "sh", "-c",
                 f"echo v6-from-$0 > /tmp/index.html && exec busybox httpd -f -p {SRV_PORT}"
                 " -h /tmp", runtime)
    assert res.returncode == 0, f"{res.stderr} {docker.daemon.why(res)}"
    try:
        fmt = "{{range .NetworkSettings.Networks}}{{.GlobalIPv6Address}} {{.IPAddress}}{{end}}"
        addr6, addr4 = docker("inspect", "-f", fmt, name).stdout.split()
        deadline = time.monotonic() + 30
        assert _get(f"http://[{addr6}]:{SRV_PORT}/index.html", deadline) == \
            f"v6-from-{runtime}\n"
        assert _get(f"http://{addr4}:{SRV_PORT}/index.html", deadline) == f"v6-from-{runtime}\n"
    finally:
        docker("rm", "-f", name)


@pytest.mark.parametrize("runtime", ["runc", "pyvisor"])
def test_embedded_dns_resolves_another_container(docker: sb.Docker, runtime: str) -> None:
    """On a user-defined network Docker's resolv.conf names its embedded
    resolver, 127.0.0.11: busybox nslookup in the container resolves another
    container's name to that container's address (in sandbox mode through
    the host's relay, netstack/dnsrelay.py)."""
    target = f"pyv-dnstarget-{runtime}"
    res = docker("run", "-d", "--name", target, "--runtime=runc", "--network", sb.NET,
                 sb.IMAGE, "/bin/busybox", "sleep", "120")
    assert res.returncode == 0, f"{res.stderr} {docker.daemon.why(res)}"
    try:
        fmt = "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}"
        addr = docker("inspect", "-f", fmt, target).stdout.strip()
        res = docker("run", "--rm", f"--runtime={runtime}", "--network", sb.NET, sb.IMAGE,
                     "/bin/busybox", "sh", "-c",
                     f"grep nameserver /etc/resolv.conf; busybox nslookup {target}")
        assert res.returncode == 0, f"{res.stdout} {res.stderr} {docker.daemon.why(res)}"
        assert "nameserver 127.0.0.11" in res.stdout
        assert f"Name:\t{target}\nAddress: {addr}\n" in res.stdout, res.stdout
    finally:
        docker("rm", "-f", target)
