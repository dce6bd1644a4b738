"""Cost of Gofer round trips as the Sentry sees them: client -> shm channel ->
confined Gofer process -> host syscalls -> back.

Run: python3 -m pytest bench/bench_gofer.py --benchmark-only
(As root the Gofer is confined, seccomp included, as in production; otherwise
it runs unconfined and the figures say so in their names.)
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from gofer.client import GoferClient
from gofer.spawn import start_gofer

MIB = 1 << 20
CONFINE = os.geteuid() == 0


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GoferClient]:
    root = tmp_path_factory.mktemp("gofer-root")
    (root / "dir" / "sub").mkdir(parents=True)
    (root / "dir" / "sub" / "file").write_bytes(b"x" * 100)
    (root / "big").write_bytes(os.urandom(MIB))
    c, proc = start_gofer(str(root), readonly=False, confine=CONFINE)
    yield c
    c.close()
    proc.wait(5)


@pytest.mark.parametrize("confined", [CONFINE], ids=["confined" if CONFINE else "unconfined"])
def test_walk_getattr_clunk(benchmark, client: GoferClient, confined: bool) -> None:  # noqa: ANN001
    """Three round trips: what a stat(2) of an uncached 3-component path costs."""

    def once() -> int:
        fid, _ = client.walk(client.root, [b"dir", b"sub", b"file"])
        size = client.getattr(fid).size
        client.clunk(fid)
        return size

    assert benchmark(once) == 100


@pytest.mark.parametrize("confined", [CONFINE], ids=["confined" if CONFINE else "unconfined"])
def test_read_1mib(benchmark, client: GoferClient, confined: bool) -> None:  # noqa: ANN001
    """A 1 MiB read: two Treads at the default msize (1 MiB + 4 KiB minus headers)."""
    fid, _ = client.walk(client.root, [b"big"])
    client.lopen(fid, os.O_RDONLY)
    data = benchmark(client.read, fid, 0, MIB)
    assert len(data) == MIB
    client.clunk(fid)
