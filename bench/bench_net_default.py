"""What --network=sandbox costs an OCI container that does not use the
network, against --network=none: `docker run --rm --runtime=pyvisor IMAGE
true` start-to-exit time (median of RUNS), and the container cgroup's
memory.peak (v1: memory.max_usage_in_bytes) of a container that starts and
sleeps (the sandbox host, Sentry, Gofer and stubs). Both on the dual-stack bridge network of
tests/test_e2e_net_sandbox.py (so the namespace has an interface and the
stack attaches), and with docker's --network=none (loopback only).

Run: python3 bench/bench_net_default.py   (root, dockerd; ~2 minutes)
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import test_e2e_net_sandbox as sb  # noqa: E402

RUNS = 7


def _start_time(d: sb.Docker, net: str) -> float:
    times = []
    for _ in range(RUNS):
        t0 = time.monotonic()
        res = d("run", "--rm", "--runtime=pyvisor", "--network", net, sb.IMAGE, "/bin/true")
        times.append(time.monotonic() - t0)
        assert res.returncode == 0, res.stderr
    return statistics.median(times)


def _peak(d: sb.Docker, net: str) -> float:
    res = d("run", "-d", "--runtime=pyvisor", "--network", net, sb.IMAGE, "/bin/sleep", "30")
    cid = res.stdout.strip()
    try:
        time.sleep(3)  # measured, not synchronised on: start-up is over by then
        for path in (f"/sys/fs/cgroup/system.slice/docker-{cid}.scope/memory.peak",
                     f"/sys/fs/cgroup/docker/{cid}/memory.peak",
                     f"/sys/fs/cgroup/memory/docker/{cid}/memory.max_usage_in_bytes"):
            if Path(path).exists():
                return int(Path(path).read_text()) / 2**20
        return float("nan")
    finally:
        d("rm", "-f", cid)


def main() -> None:
    for args in (("--network=none",), ("--network=sandbox",)):
        gen = sb.bridge_docker(args)
        d = next(gen)
        try:
            for net in (sb.NET, "none"):
                print(f"{args[0]:20s} docker --network {net:8s} start-to-exit "
                      f"{_start_time(d, net) * 1000:6.0f} ms  memory.peak {_peak(d, net):5.1f} MiB",
                      flush=True)
        finally:
            gen.close()


if __name__ == "__main__":
    main()
