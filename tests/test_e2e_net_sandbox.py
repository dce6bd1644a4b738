"""End to end, --network=sandbox (the OCI default): a real dockerd with a
bridge network runs busybox containers with runtime pyvisor whose TCP goes
through the Sentry's user-space stack (sentry/net/netstack) on the one packet
socket the sandbox host opens on the container's eth0.

The dockerd here differs from tests/test_e2e_docker.py's: it has a user-
defined bridge network (its own bridge name and subnet, so it never meets a
docker0) and the userland proxy for -p.  The image is the busybox one of
tests/e2e.py: its httpd serves, its nc is the client.  Each check runs with
runc first: a runc failure is the harness's, a pyvisor-only failure ours.
Also: an IPv6 connection into a container's ``::`` listener, and Docker's
embedded DNS (127.0.0.11) resolving another container's name.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import struct
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import e2e
import pytest

IMAGE = "pyvisor-e2e-busybox:1"
NET = "pyvnet"
BRIDGE = "pyv-br0"
SUBNET = "10.231.7.0/24"
GATEWAY = "10.231.7.1"
PORT = 18080
NET6 = "pyvnet6"  # a dual-stack network (docker network create --ipv6)
BRIDGE6 = "pyv-br6"
SUBNET6 = ("10.231.8.0/24", "fd0c:a11:7::/64")
GATEWAY6 = "fd0c:a11:7::1"


class Docker:
    def __init__(self, client: str, env: dict[str, str], daemon: e2e.Daemon) -> None:
        self.client, self.env, self.daemon = client, env, daemon
        self.ipv6, self.ipv6_why = False, ""

    def __call__(self, *args: str, timeout: float = e2e.CMD_TIMEOUT):
        return e2e.run([self.client, *args], env=self.env, timeout=timeout)


def _start(base: Path, dockerd: str, client: str, runtime_args: tuple[str, ...] = (),
           extra: dict[str, dict[str, object]] | None = None,
           ) -> tuple[e2e.Daemon, dict[str, str]]:
    """e2e.start_dockerd with docker-proxy on (published ports), the pyvisor
    runtime given ``runtime_args`` (none: the default, sandbox;
    docs/network.md), a second runtime, pyvisor-none, with --network=none,
    and the ``extra`` runtimes (bench/bench_net_bridge.py's gVisors)."""

    def runtimes(conf: Path) -> None:
        cfg = json.loads(conf.read_text())
        runtime = cfg["runtimes"]["pyvisor"]
        cfg["runtimes"]["pyvisor-none"] = {**runtime, "runtimeArgs": ["--network=none"]}
        cfg["runtimes"].update(extra or {})
        runtime["runtimeArgs"] = list(runtime_args)
        conf.write_text(json.dumps(cfg))

    return e2e.start_dockerd(base, dockerd, client, runtimes, userland_proxy=True)


@pytest.fixture(scope="module")
def docker() -> Iterator[Docker]:
    yield from bridge_docker()


def bridge_docker(runtime_args: tuple[str, ...] = (),
                  extra: dict[str, dict[str, object]] | None = None) -> Iterator[Docker]:
    """dockerd with the bridge network NET and the busybox image (also
    bench/bench_net_bridge.py's and tests/test_e2e_net_host.py's), pyvisor
    run with ``runtime_args`` (none: the default network mode) and
    pyvisor-none with --network=none."""
    e2e.require_root()
    dockerd = e2e.require_tool("dockerd")
    client = e2e.require_tool("docker")
    e2e.require_tool("containerd")
    e2e.require_busybox()
    base = e2e.short_tmpdir("pyv-dn-")
    daemon = None
    try:
        daemon, env = _start(base, dockerd, client, runtime_args, extra)
        d = Docker(client, env, daemon)
        res = d("import", str(e2e.write_rootfs_tar(base / "rootfs.tar")), IMAGE)
        if res.returncode != 0:
            e2e.unavailable(f"docker import failed: {res.stderr}", daemon.why(res))
        res = d("network", "create", "--driver", "bridge", "--subnet", SUBNET,
                "-o", f"com.docker.network.bridge.name={BRIDGE}", NET)
        if res.returncode != 0:
            e2e.unavailable(f"docker network create failed: {res.stderr}", daemon.why(res))
        res = d("network", "create", "--driver", "bridge", "--ipv6", "--subnet", SUBNET6[0],
                "--subnet", SUBNET6[1], "-o", f"com.docker.network.bridge.name={BRIDGE6}",
                NET6)
        d.ipv6 = res.returncode == 0
        d.ipv6_why = res.stderr
        yield d
    finally:
        if daemon is not None:
            with contextlib.suppress(Exception):
                e2e.run([client, "rm", "-f", "pyv-web-runc", "pyv-web-pyvisor"],
                        env=env, timeout=30)
                e2e.run([client, "network", "rm", NET, NET6], env=env, timeout=30)
            daemon.stop()
        e2e.remove_tree(base)


def _fetch(url: str, deadline: float) -> str:
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
def test_published_port_served_from_the_sandbox(docker: Docker, runtime: str) -> None:
    """`docker run -d -p 18080:8000` with busybox httpd inside, fetched from
    the host: SYNs arrive on eth0, the stack's listener on 0.0.0.0 accepts."""
    name = f"pyv-web-{runtime}"
    res = docker("run", "-d", "--name", name, f"--runtime={runtime}", "--network", NET,
                 "-p", f"127.0.0.1:{PORT}:8000", IMAGE, "/bin/busybox", "sh", "-c",
                 "echo hello-from-$0 > /tmp/index.html && exec busybox httpd -f -p 8000 -h /tmp",
                 runtime)
    assert res.returncode == 0, f"{res.stderr} {docker.daemon.why(res)}"
    try:
        body = _fetch(f"http://127.0.0.1:{PORT}/index.html", time.monotonic() + 30)
        assert body == f"hello-from-{runtime}\n"
    finally:
        docker("rm", "-f", name)


@pytest.mark.parametrize("runtime", ["runc", "pyvisor"])
def test_container_reaches_host_server(docker: Docker, runtime: str) -> None:
    """A container connects out to a TCP server the test runs on the bridge's
    address (the default gateway): request out, reply back, FIN both ways."""
    srv = e2e.PingServer(GATEWAY)
    try:
        res = docker("run", "--rm", f"--runtime={runtime}", "--network", NET, IMAGE,
                     "/bin/busybox", "sh", "-c",
                     f"echo ping-{runtime} | busybox nc {GATEWAY} {srv.port}")
        assert res.returncode == 0, f"{res.stderr} {docker.daemon.why(res)}"
        assert srv.got == [f"ping-{runtime}\n".encode()]
        assert res.stdout == f"pong:ping-{runtime}\n"
    finally:
        srv.close()


def test_network_none_is_loopback_only(docker: Docker) -> None:
    """runtimeArgs --network=none on the same bridge network: the container
    cannot reach the bridge (no route out of the Sentry), loopback works."""
    srv = e2e.PingServer(GATEWAY)
    try:
        res = docker("run", "--rm", "--runtime=pyvisor-none", "--network", NET, IMAGE,
                     "/bin/busybox", "sh", "-c",
                     f"echo x | busybox nc {GATEWAY} {srv.port}; echo rc=$?; "
                     "busybox ip -4 addr | busybox grep -c inet")
        assert res.returncode == 0, f"{res.stderr} {docker.daemon.why(res)}"
        assert res.stdout.splitlines()[-2:] == ["rc=1", "1"], res.stdout + res.stderr
        assert srv.got == []
    finally:
        srv.close()


@pytest.mark.parametrize("runtime", ["runc", "pyvisor"])
def test_container_reaches_host_server_over_ipv6(docker: Docker, runtime: str) -> None:
    """IPv6 through the stack: the container's global address and gateway
    copied from its namespace, a TCP exchange with a server on the dual-stack
    bridge's IPv6 address (ND instead of ARP, v6 checksums completed)."""
    if not docker.ipv6:
        pytest.skip(f"docker cannot make an IPv6 network here: {docker.ipv6_why}")
    srv = e2e.PingServer(GATEWAY6)
    try:
        res = docker("run", "--rm", f"--runtime={runtime}", "--network", NET6, IMAGE,
                     "/bin/busybox", "sh", "-c",
                     f"echo ping6-{runtime} | busybox nc {GATEWAY6} {srv.port}")
        assert res.returncode == 0, f"{res.stderr} {docker.daemon.why(res)}"
        assert srv.got == [f"ping6-{runtime}\n".encode()]
        assert res.stdout == f"pong:ping6-{runtime}\n"
    finally:
        srv.close()


class DnsServer:
    """A one-record DNS server on the bridge (UDP): ``name`` has the A record
    ``addr``; other questions get NXDOMAIN. ``asked`` lists the questions."""

    def __init__(self, host: str, name: str, addr: str) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 53))
        self.name, self.addr = name.encode(), socket.inet_aton(addr)
        self.asked: list[tuple[str, int]] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                q, peer = self.sock.recvfrom(512)
                if peer is None:  # shut down by close()
                    return
                if len(q) > 17:
                    self.sock.sendto(self._answer(q), peer)

    def _answer(self, q: bytes) -> bytes:
        labels, off = [], 12
        while off < len(q) and q[off]:
            labels.append(q[off + 1:off + 1 + q[off]])
            off += 1 + q[off]
        qtype = int.from_bytes(q[off + 1:off + 3], "big")
        question = q[12:off + 5]
        name = b".".join(labels)
        self.asked.append((name.decode(errors="replace"), qtype))
        if name.lower() != self.name:
            return q[:2] + b"\x81\x83" + b"\x00\x01\x00\x00\x00\x00\x00\x00" + question
        if qtype != 1:  # the name exists, with no record of that type
            return q[:2] + b"\x81\x80" + b"\x00\x01\x00\x00\x00\x00\x00\x00" + question
        record = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + self.addr
        return q[:2] + b"\x81\x80" + b"\x00\x01\x00\x01\x00\x00\x00\x00" + question + record

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the thread's recvfrom
        self.sock.close()


RESOLVE = """
import socket
print(socket.getaddrinfo("svc.pyv.test", 80, socket.AF_INET, socket.SOCK_STREAM)[0][4][0])
print(socket.gethostbyname("extra.pyv"))
print(socket.gethostname())
try:
    socket.getaddrinfo("nothing.pyv.test", 80, socket.AF_INET)
except socket.gaierror as exc:
    print("gaierror", exc.errno == socket.EAI_NONAME)
"""


@pytest.mark.parametrize("runtime", ["runc", "pyvisor"])
def test_dns_hosts_and_hostname_from_the_bundle(docker: Docker, runtime: str) -> None:
    """getaddrinfo (glibc's, in the host's python3 bind-mounted in) asks the
    nameserver of the container's /etc/resolv.conf over UDP through the
    stack; /etc/hosts (--add-host) and the hostname come from the bundle."""
    python = Path("/usr/bin/python3")
    if not python.exists():
        pytest.skip("/usr/bin/python3 is needed (bind-mounted into the busybox image)")
    base = e2e.short_tmpdir("pyv-dns-")
    srv = DnsServer(GATEWAY, "svc.pyv.test", "10.9.8.7")
    try:
        # Not Docker's own resolv.conf: on a user-defined network it names the
        # embedded resolver at 127.0.0.11, reached through iptables rules of
        # the namespace's kernel (docs/network.md).
        (base / "resolv.conf").write_text(f"nameserver {GATEWAY}\noptions attempts:2\n")
        mounts = ["-v", f"{base / 'resolv.conf'}:/etc/resolv.conf:ro"]
        for d in ("/usr", "/lib", "/lib64"):
            if Path(d).exists():
                mounts += ["-v", f"{os.path.realpath(d)}:{d}:ro"]
        res = docker("run", "--rm", f"--runtime={runtime}", "--network", NET, *mounts,
                     "--add-host", "extra.pyv:10.1.2.3", "--hostname", "pyvbox", IMAGE,
                     str(python), "-S", "-c", RESOLVE)
        assert res.returncode == 0, f"{res.stderr} {docker.daemon.why(res)}"
        assert res.stdout == "10.9.8.7\n10.1.2.3\npyvbox\ngaierror True\n", res.stderr
        assert ("svc.pyv.test", 1) in srv.asked
    finally:
        srv.close()
        e2e.remove_tree(base)


def _sentry_of(docker: Docker, name: str) -> int:
    """The Sentry: the sandbox host's child (the host is the OCI state pid)."""
    res = docker("inspect", "-f", "{{.State.Pid}}", name)
    host = int(res.stdout.strip())
    kids = Path(f"/proc/{host}/task/{host}/children").read_text().split()
    for k in kids:
        comm = Path(f"/proc/{k}/cmdline").read_bytes()
        if comm:
            return int(k)
    raise AssertionError(f"no Sentry under {host}")


def _socket_inodes(pid: int) -> set[str]:
    out = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(OSError):
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
            if link.startswith("socket:["):
                out.add(link[8:-1])
    return out


def _table_inodes(pid: int, table: str, col: int) -> set[str]:
    rows = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
    return {r.split()[col] for r in rows if len(r.split()) > col}


def test_sentry_holds_one_packet_socket_and_no_inet_sockets(docker: Docker) -> None:
    """From the host's view: the Sentry of a sandbox-mode container holds
    exactly one AF_PACKET socket and no TCP, UDP or raw host sockets, even
    while the application serves and is fetched."""
    name = "pyv-web-pyvisor"
    res = docker("run", "-d", "--name", name, "--runtime=pyvisor", "--network", NET,
                 "-p", f"127.0.0.1:{PORT}:8000", IMAGE, "/bin/busybox", "httpd", "-f",
                 "-p", "8000", "-h", "/etc")
    assert res.returncode == 0, res.stderr
    try:
        _fetch(f"http://127.0.0.1:{PORT}/passwd", time.monotonic() + 30)
        pid = _sentry_of(docker, name)
        mine = _socket_inodes(pid)
        # The Sentry lives in a network namespace of its own (sentry/confine.py);
        # the packet socket it was handed is the container's, whose tables the
        # sandbox host (the container's pid) sees. Neither namespace may list
        # one of the Sentry's sockets as TCP, UDP or raw.
        host_pid = int(docker("inspect", "-f", "{{.State.Pid}}", name).stdout.strip())
        packet = mine & _table_inodes(host_pid, "packet", 8)
        assert len(packet) == 1, f"packet sockets {packet} of {mine}"
        for ns_pid in (pid, host_pid):
            for table in ("tcp", "tcp6", "udp", "udp6", "raw", "raw6"):
                assert not mine & _table_inodes(ns_pid, table, 9), table
    finally:
        docker("rm", "-f", name)


SRV_PORT = 18617  # inside the container (no published host port)


@pytest.mark.parametrize("runtime", ["runc", "pyvisor"])
def test_ipv6_connection_into_a_dual_stack_listener(docker: Docker, runtime: str) -> None:
    """busybox httpd listens on ``::`` (dual stack) in the container; the host
    fetches a page from the container's global IPv6 address and from its IPv4
    one: the stack listens in both families for a ``::`` wildcard."""
    if not docker.ipv6:
        pytest.skip(f"docker cannot make an IPv6 network here: {docker.ipv6_why}")
    name = f"pyv-v6srv-{runtime}"
    res = docker("run", "-d", "--name", name, f"--runtime={runtime}", "--network", NET6,
                 IMAGE, "/bin/busybox", "sh", "-c",
                 f"echo v6-from-$0 > /tmp/index.html && exec busybox httpd -f -p {SRV_PORT}"
                 " -h /tmp", runtime)
    assert res.returncode == 0, f"{res.stderr} {docker.daemon.why(res)}"
    try:
        fmt = "{{range .NetworkSettings.Networks}}{{.GlobalIPv6Address}} {{.IPAddress}}{{end}}"
        addr6, addr4 = docker("inspect", "-f", fmt, name).stdout.split()
        deadline = time.monotonic() + 30
        assert _fetch(f"http://[{addr6}]:{SRV_PORT}/index.html", deadline) == \
            f"v6-from-{runtime}\n"
        assert _fetch(f"http://{addr4}:{SRV_PORT}/index.html", deadline) == f"v6-from-{runtime}\n"
    finally:
        docker("rm", "-f", name)


@pytest.mark.parametrize("runtime", ["runc", "pyvisor"])
def test_embedded_dns_resolves_another_container(docker: Docker, runtime: str) -> None:
    """On a user-defined network Docker's resolv.conf names its embedded
    resolver, 127.0.0.11: busybox nslookup in the container resolves another
    container's name to that container's address (in sandbox mode through
    the host's relay, netstack/dnsrelay.py)."""
    target = f"pyv-dnstarget-{runtime}"
    res = docker("run", "-d", "--name", target, "--runtime=runc", "--network", NET,
                 IMAGE, "/bin/busybox", "sleep", "120")
    assert res.returncode == 0, f"{res.stderr} {docker.daemon.why(res)}"
    try:
        fmt = "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}"
        addr = docker("inspect", "-f", fmt, target).stdout.strip()
        res = docker("run", "--rm", f"--runtime={runtime}", "--network", NET, IMAGE,
                     "/bin/busybox", "sh", "-c",
                     f"grep nameserver /etc/resolv.conf; busybox nslookup {target}")
        assert res.returncode == 0, f"{res.stdout} {res.stderr} {docker.daemon.why(res)}"
        assert "nameserver 127.0.0.11" in res.stdout
        assert f"Name:\t{target}\nAddress: {addr}\n" in res.stdout, res.stdout
    finally:
        docker("rm", "-f", target)
