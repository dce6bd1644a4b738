"""Sandbox-mode throughput through the Docker bridge: a container (the
host's python3 bind-mounted into the busybox image) streams zeros to a TCP
server on the bridge's address (``send``), or reads what that server
streams to it (``recv``), under runc (the host
kernel's stack: the "native" column), pyvisor (--network=sandbox: PyTCP in
the Sentry on one AF_PACKET socket), gVisor 2022 (Debian's runsc, ptrace)
and gVisor 2024 (/opt/runsc-2024, systrap), both with their default
--network=sandbox (netstack on the veth).

The dockerd and its bridge network are tests/test_e2e_net_sandbox.py's,
with the two gVisors registered as runtimes. The figure is bytes / seconds
from the first byte to EOF at the host's end, so container start-up is left
out.

Run: python3 -m pytest bench/bench_net_bridge.py --benchmark-only -s
"""

from __future__ import annotations

import os
import shutil
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import test_e2e_net_sandbox as sb  # noqa: E402
from runners import RUNSC_2024_DEFAULT  # noqa: E402

# The client in the container: an iperf-like python3 loop, 64 KiB a call
# (busybox nc moves 1 KiB per poll/read/write: it measures syscalls, not TCP).
CLIENT = """
import socket, sys
mode, host, port, size = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
s = socket.create_connection((host, port))
n = 0
if mode == "send":
    block = bytes(65536)
    while n < size:
        n += s.send(block[:size - n])
    s.shutdown(socket.SHUT_WR)
    s.recv(1)
else:
    while chunk := s.recv(65536):
        n += len(chunk)
s.close()
print(n)
"""
MIB = int(os.environ.get("PYVISOR_BENCH_BRIDGE_MIB", "32"))  # streamed per run
GVISORS = {"runsc": (shutil.which("runsc"), "--platform=ptrace"),
           "runsc-systrap": (os.environ.get("PYVISOR_RUNSC_2024", RUNSC_2024_DEFAULT),
                             "--platform=systrap")}


def _gvisor_runtimes() -> dict[str, dict[str, object]]:
    out: dict[str, dict[str, object]] = {}
    for name, (path, platform) in GVISORS.items():
        if path and Path(path).exists():
            out[name] = {"path": path, "runtimeArgs": [platform, "--network=sandbox"]}
    return out


@pytest.fixture(scope="module")
def docker() -> Iterator[sb.Docker]:
    yield from sb.bridge_docker(extra=_gvisor_runtimes())


def _stream(docker: sb.Docker, runtime: str, direction: str) -> float:
    srv = socket.create_server((sb.GATEWAY, 0))
    port = srv.getsockname()[1]
    result: list[float] = []
    size = MIB << 20

    def serve() -> None:
        conn, _ = srv.accept()
        with conn:
            if direction == "recv":
                t0 = time.monotonic()
                block = bytes(1 << 16)
                for _ in range(size >> 16):
                    conn.sendall(block)
                conn.shutdown(socket.SHUT_WR)
                conn.recv(1)  # the container's EOF: everything arrived
                result.append(size / (time.monotonic() - t0) / 1e6)
                return
            n, t0 = 0, None
            while chunk := conn.recv(1 << 16):
                if t0 is None:
                    t0 = time.monotonic()
                n += len(chunk)
            result.append(n / (time.monotonic() - (t0 or time.monotonic())) / 1e6)

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    mounts: list[str] = []
    for d in ("/usr", "/lib", "/lib64"):  # the host's python3, as the DNS e2e test does
        if Path(d).exists():
            mounts += ["-v", f"{os.path.realpath(d)}:{d}:ro"]
    try:
        res = docker("run", "--rm", f"--runtime={runtime}", "--network", sb.NET, *mounts,
                     sb.IMAGE, "/usr/bin/python3", "-S", "-c", CLIENT, direction, sb.GATEWAY,
                     str(port), str(size), timeout=600)
        if res.returncode != 0 and runtime.startswith("runsc"):
            pytest.skip(f"{runtime} failed here: {res.stderr[-300:]}")
        assert res.returncode == 0, res.stderr
        assert res.stdout.split() == [str(size)], res.stdout
        t.join(60)
    finally:
        srv.close()
    return result[0]


@pytest.mark.parametrize("direction", ["send", "recv"])
@pytest.mark.parametrize("runtime", ["runc", "pyvisor", "runsc", "runsc-systrap"])
def test_bridge_throughput(benchmark, docker: sb.Docker, runtime: str,  # noqa: ANN001
                           direction: str) -> None:
    if runtime.startswith("runsc") and runtime not in _gvisor_runtimes():
        pytest.skip(f"{runtime}: not installed ({GVISORS[runtime][0]})")
    mbs = benchmark.pedantic(_stream, args=(docker, runtime, direction), rounds=1,
                             iterations=1)
    benchmark.extra_info["MB/s"] = mbs
    print(f"\n{runtime} {direction}: {mbs:.2f} MB/s through the bridge ({MIB} MiB)")
