"""The sandbox stack's bulk TCP throughput on a veth, without Docker: the
stack (sentry/net/netstack, PyTCP on an AF_PACKET socket) in a throw-away
network namespace, against a host-kernel TCP peer on the other end of the
veth.  Both directions: the stack sending (``send``) and receiving
(``recv``).  The quick loop for tuning the stack; bench_net_bridge.py is the
whole container through Docker's bridge.

Run: python3 bench/bench_net_veth.py [MiB]   (root, iproute2)
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

PYFLAGS: list[str] = []
REPO = Path(__file__).resolve().parent.parent

CHILD = r"""
import sys, time
sys.path.insert(0, sys.argv[1])
from sentry.net.netstack import link, stack
from sentry.net.netstack.tcp import SandboxTcpEndpoint
from sentry.net.addr import InetAddr, V4_PREFIX
from sentry.net import consts as c
stack.prepare()
d = link.describe()
pkt = link.open_packet(d["ifname"])
link.strip_addresses(d["ifname"])
stack.attach(pkt.fileno(), d, None)
mode, total = sys.argv[4], int(sys.argv[5])
ep = SandboxTcpEndpoint(c.AF_INET)
ep.connect(InetAddr(V4_PREFIX + bytes(map(int, sys.argv[2].split("."))), int(sys.argv[3]))
           .pack(c.AF_INET), None, False, (0, 0, 0))
cred = (0, 0, 0)
if mode == "send":
    block = bytes(65536)
    left = total
    while left:
        left -= ep.send(block[:min(left, len(block))], 0, False, None, None, None, cred)
    ep.shutdown(c.SHUT_WR)
    while ep.recv(65536, 0, False).data:
        pass
else:
    n, t0 = 0, None
    while True:
        r = ep.recv(1 << 16, 0, False)
        if not r.data:
            break
        if t0 is None:
            t0 = time.monotonic()
        n += len(r.data)
    print(n, n / (time.monotonic() - t0) / 1e6, flush=True)
import os; os._exit(0)
"""


def run(mode: str, mib: int) -> float:
    tag = uuid.uuid4().hex[:6]
    ns, host_if = f"pyvb{tag}", f"pvb{tag}"

    def ip(*args: str) -> None:
        subprocess.run(["ip", *args], check=True, capture_output=True)

    ip("netns", "add", ns)
    try:
        ip("link", "add", host_if, "type", "veth", "peer", "name", "veth1", "netns", ns)
        ip("addr", "add", "10.79.0.1/24", "dev", host_if)
        ip("link", "set", host_if, "up")
        ip("-n", ns, "addr", "add", "10.79.0.2/24", "dev", "veth1")
        ip("-n", ns, "link", "set", "veth1", "up")
        ip("-n", ns, "route", "add", "default", "via", "10.79.0.1")
        srv = socket.create_server(("10.79.0.1", 0))
        port = srv.getsockname()[1]
        out: list[float] = []

        def serve() -> None:
            conn, _ = srv.accept()
            with conn:
                if mode == "send":
                    n, t0 = 0, None
                    while chunk := conn.recv(1 << 16):
                        t0 = t0 or time.monotonic()
                        n += len(chunk)
                    out.append(n / (time.monotonic() - t0) / 1e6)
                else:
                    conn.sendall(bytes(mib << 20))

        t = threading.Thread(target=serve, daemon=True)
        t.start()
        res = subprocess.run(["ip", "netns", "exec", ns, sys.executable, *PYFLAGS, "-c", CHILD,
                              str(REPO), "10.79.0.1", str(port), mode, str(mib << 20)],
                             capture_output=True, text=True, timeout=300)
        srv.close()
        if res.returncode:
            raise RuntimeError(res.stderr)
        t.join(10)
        return out[0] if mode == "send" else float(res.stdout.split()[1])
    finally:
        subprocess.run(["ip", "link", "del", host_if], capture_output=True)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


if __name__ == "__main__":
    mib = int(sys.argv[1]) if len(sys.argv) > 1 else 4
    for mode in ("send", "recv"):
        print(f"stack {mode}: {run(mode, mib):.2f} MB/s ({mib} MiB)", flush=True)
