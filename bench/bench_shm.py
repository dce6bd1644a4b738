"""Round-trip cost of the shm channel: Sentry-side client, echo Gofer-side
server in another process (spawned, as the real Gofer is).

Run: python3 -m pytest bench/bench_shm.py --benchmark-only
"""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Iterator

import pytest

from shm.channel import ClientChannel, ServerChannel


def _echo(request: memoryview, response: memoryview) -> int:
    n = len(request)
    response[:n] = request
    return n


def _serve(name: str) -> None:
    with ServerChannel(name) as server:
        server.serve(_echo)


@pytest.fixture(scope="module")
def client() -> Iterator[ClientChannel]:
    with ClientChannel(timeout=10) as c:
        proc = mp.get_context("spawn").Process(target=_serve, args=(c.name,), daemon=True)
        proc.start()
        assert proc.pid is not None
        c.set_peer(proc.pid)
        c.send_request(b"warm-up")
        yield c
    proc.join(5)


@pytest.mark.parametrize("size", [64, 1 << 20], ids=["64B", "1MiB"])
def test_round_trip(benchmark, client: ClientChannel, size: int) -> None:  # noqa: ANN001
    payload = (bytes(range(256)) * (size // 256 + 1))[:size]
    result = benchmark(client.send_request, payload)
    assert result == payload


@pytest.mark.parametrize("size", [64, 1 << 20], ids=["64B", "1MiB"])
def test_round_trip_in_place(benchmark, client: ClientChannel, size: int) -> None:  # noqa: ANN001
    """exchange(): the response is read in shared memory, not copied out."""
    payload = (bytes(range(256)) * (size // 256 + 1))[:size]

    def once() -> int:
        with client.exchange(payload) as view:
            return len(view)

    assert benchmark(once) == size
