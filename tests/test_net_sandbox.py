"""--network=sandbox below Docker: the stack (sentry/net/netstack) on a veth
in a throw-away network namespace, and the Sentry's filter in sandbox mode.

The namespace tests start a child process in a new namespace (``ip netns``)
with a veth whose peer is on the host side; the host side runs a real TCP
server (Python's socket module, i.e. the host kernel's TCP).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import uuid

import pytest
from helpers import REPO_ROOT

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("ip") is None,
                                reason="needs root and iproute2 to make a network namespace")

CHILD_TCP = r"""
import sys
sys.path.insert(0, sys.argv[1])
from sentry.net.netstack import link, stack
from sentry.net.netstack.tcp import SandboxTcpEndpoint
from sentry.net.addr import InetAddr, V4_PREFIX
from sentry.net import consts as c
from sentry.confine import confine_sentry, prepare_filter
stack.prepare()
d = link.describe()
pkt = link.open_packet(d["ifname"])
link.strip_addresses(d["ifname"])
confine_sentry(prepare_filter("sandbox"))   # as the Sentry: the stack runs under its filter
stack.attach(pkt.fileno(), d, None)
ep = SandboxTcpEndpoint(c.AF_INET)
ep.connect(InetAddr(V4_PREFIX + bytes(map(int, sys.argv[2].split("."))), int(sys.argv[3]))
           .pack(c.AF_INET), None, False, (0, 0, 0))
ep.send(b"ping\n", 0, False, None, None, None, (0, 0, 0))
ep.shutdown(c.SHUT_WR)
got = b""
while True:
    r = ep.recv(65536, 0, False)
    if not r.data:
        break
    got += r.data
print(len(got), got[:5].decode(), flush=True)
import os; os._exit(0)
"""

CHILD_UDP = r"""
import sys
sys.path.insert(0, sys.argv[1])
from sentry.net.netstack import link, stack
from sentry.net.netstack.udp import SandboxUdpEndpoint
from sentry.net.addr import InetAddr, V4_PREFIX
from sentry.net import consts as c
from sentry.confine import confine_sentry, prepare_filter
stack.prepare()
d = link.describe()
pkt = link.open_packet(d["ifname"])
link.strip_addresses(d["ifname"])
confine_sentry(prepare_filter("sandbox"))
stack.attach(pkt.fileno(), d, None)
ep = SandboxUdpEndpoint(c.AF_INET)
dest = InetAddr(V4_PREFIX + bytes(map(int, sys.argv[2].split("."))), int(sys.argv[3]))
ep.connect(dest.pack(c.AF_INET), None, False, (0, 0, 0))
ep.send(b"query", 0, False, None, None, None, (0, 0, 0))
r = ep.recv(4, c.MSG_TRUNC, False)
print(r.data.decode(), r.size, flush=True)
import os; os._exit(0)
"""

CHILD_FILTER = r"""
import socket, sys
sys.path.insert(0, sys.argv[1])
from sentry.net.netstack import link, stack
from sentry.confine import confine_sentry, prepare_filter
stack.prepare()
pkt = link.open_packet("lo")   # opened before the filter, as the host hands it over
confine_sentry(prepare_filter("sandbox"))
import os
os.write(pkt.fileno(), bytes(12) + b"\x88\xb5" + bytes(46))  # what the TX ring calls
print("write=ok", flush=True)
family, kind = {"packet": (socket.AF_PACKET, socket.SOCK_RAW),
                "inet": (socket.AF_INET, socket.SOCK_STREAM),
                "udp": (socket.AF_INET, socket.SOCK_DGRAM)}[sys.argv[2]]
socket.socket(family, kind)
print("socket made", flush=True)
"""


@pytest.fixture()
def netns():
    """A namespace with veth1 10.77.0.2/24 (gateway 10.77.0.1 on the host side)."""
    tag = uuid.uuid4().hex[:6]
    ns, host_if = f"pyvt{tag}", f"pvh{tag}"

    def ip(*args: str) -> None:
        subprocess.run(["ip", *args], check=True, capture_output=True)

    ip("netns", "add", ns)
    try:
        ip("link", "add", host_if, "type", "veth", "peer", "name", "veth1", "netns", ns)
        ip("addr", "add", "10.77.0.1/24", "dev", host_if)
        ip("link", "set", host_if, "up")
        ip("-n", ns, "addr", "add", "10.77.0.2/24", "dev", "veth1")
        ip("-n", ns, "link", "set", "veth1", "up")
        ip("-n", ns, "link", "set", "lo", "up")
        ip("-n", ns, "route", "add", "default", "via", "10.77.0.1")
        yield ns
    finally:
        subprocess.run(["ip", "link", "del", host_if], capture_output=True)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def test_stack_talks_tcp_to_the_host_kernel(netns: str) -> None:
    """Connect out, send, half-close, then read a 1 MiB reply to its EOF: the
    handshake, data both ways, checksums the host left partial, and the
    peer's FIN after ours (PyTCP's TIME_WAIT, where its receive() blocks)."""
    srv = socket.create_server(("10.77.0.1", 0))
    port = srv.getsockname()[1]
    reply = b"pong\n" + b"x" * ((1 << 20) - 5)
    got: list[bytes] = []

    def serve() -> None:
        # A failure here shows in this test's own asserts on what was got;
        # an exception would land, as a thread warning, on a later test.
        with contextlib.suppress(OSError):
            serve_once()

    def serve_once() -> None:
        conn, _ = srv.accept()
        with conn:
            data = b""
            while chunk := conn.recv(4096):
                data += chunk
            got.append(data)
            conn.sendall(reply)

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        res = subprocess.run(["ip", "netns", "exec", netns, sys.executable, "-c", CHILD_TCP,
                              str(REPO_ROOT), "10.77.0.1", str(port)],
                             capture_output=True, text=True, timeout=60)
    finally:
        srv.close()
    assert res.returncode == 0, res.stderr
    assert got == [b"ping\n"]
    assert res.stdout.split() == [str(len(reply)), "pong"]


def test_sandbox_mode_filter_refuses_socket_but_not_the_packet_fd() -> None:
    """The Sentry in sandbox mode (PyTCP imported, packet fd held) is killed
    by its filter (SIGSYS) for socket(2) of any family; the calls the stack
    makes on the descriptor it was handed keep working."""
    for kind in ("packet", "inet", "udp"):
        res = subprocess.run([sys.executable, "-c", CHILD_FILTER, str(REPO_ROOT), kind],
                             capture_output=True, text=True, timeout=60)
        assert res.stdout.split() == ["write=ok"], (kind, res.stdout, res.stderr)
        assert res.returncode == -signal.SIGSYS, (kind, res.returncode, res.stderr)


def test_stack_udp_round_trip_as_dns_does(netns: str) -> None:
    """A connected UDP socket (what a resolver does with resolv.conf's
    nameserver) sends a query and reads the answer, truncated as asked."""
    srv = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    srv.bind(("10.77.0.1", 0))
    srv.settimeout(30)
    port = srv.getsockname()[1]
    got: list[bytes] = []

    def serve() -> None:
        # A failure here shows in this test's own asserts on what was got;
        # an exception would land, as a thread warning, on a later test.
        with contextlib.suppress(OSError):
            serve_once()

    def serve_once() -> None:
        data, peer = srv.recvfrom(100)
        got.append(data)
        srv.sendto(b"answer!", peer)

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        res = subprocess.run(["ip", "netns", "exec", netns, sys.executable, "-c", CHILD_UDP,
                              str(REPO_ROOT), "10.77.0.1", str(port)],
                             capture_output=True, text=True, timeout=60)
    finally:
        srv.close()
    assert res.returncode == 0, res.stderr
    assert got == [b"query"]
    assert res.stdout.split() == ["answ", "7"]
