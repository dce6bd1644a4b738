"""Sandbox-mode throughput through the Docker bridge: a container streams
zeros with busybox nc to a TCP server on the bridge's address (the host
kernel's TCP), under runc (the host kernel's stack: the "native" column) and
pyvisor (--network=sandbox: PyTCP in the Sentry on one AF_PACKET socket).

The dockerd and its bridge network are tests/test_e2e_net_sandbox.py's. The
figure is bytes received / seconds from the first byte to EOF, so container
start-up is left out. runsc's columns skip: its sandbox network on this
dockerd (no iptables, a user bridge) is not wired here.

Run: python3 -m pytest bench/bench_net_bridge.py --benchmark-only -s
"""

from __future__ import annotations

import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import e2e  # noqa: E402
import test_e2e_net_sandbox as sb  # noqa: E402

MIB = 8  # streamed per run


@pytest.fixture(scope="module")
def docker() -> Iterator[sb.Docker]:
    yield from sb.bridge_docker()


def _stream(docker: sb.Docker, runtime: str) -> float:
    srv = socket.create_server((sb.GATEWAY, 0))
    port = srv.getsockname()[1]
    result: list[float] = []

    def serve() -> None:
        conn, _ = srv.accept()
        with conn:
            n, t0 = 0, None
            while chunk := conn.recv(1 << 16):
                if t0 is None:
                    t0 = time.monotonic()
                n += len(chunk)
            result.append(n / (time.monotonic() - (t0 or time.monotonic())) / 1e6)

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        res = docker("run", "--rm", f"--runtime={runtime}", "--network", sb.NET, sb.IMAGE,
                     "/bin/busybox", "sh", "-c",
                     f"busybox dd if=/dev/zero bs=65536 count={MIB * 16} 2>/dev/null"
                     f" | busybox nc {sb.GATEWAY} {port}", timeout=600)
        assert res.returncode == 0, res.stderr
        t.join(60)
    finally:
        srv.close()
    return result[0]


@pytest.mark.parametrize("runtime", ["runc", "pyvisor", "runsc", "runsc-systrap"])
def test_bridge_throughput(benchmark, docker: sb.Docker, runtime: str) -> None:  # noqa: ANN001
    if runtime.startswith("runsc"):
        pytest.skip("gVisor's sandbox network is not registered on this dockerd's bridge")
    mbs = benchmark.pedantic(_stream, args=(docker, runtime), rounds=1, iterations=1)
    benchmark.extra_info["MB/s"] = mbs
    print(f"\n{runtime}: {mbs:.2f} MB/s through the bridge")


_ = e2e
