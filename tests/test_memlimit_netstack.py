"""--network=sandbox TCP's receive side in the Sentry's memory account
(sentry/net/netstack/conn.py, sentry/kmem.py): what a connection's reader
thread takes from PyTCP is charged; with no room it stops taking, so
PyTCP's window closes, instead of growing the Sentry's heap.

In-process, with a stand-in PyTCP session (the reader needs only its
receive(), its receive buffer and its state), so no network is needed."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from test_memlimit import budget  # noqa: F401 - the fixture, used by name

from sentry import kmem
from sentry.net.netstack.conn import NetConn

pytest.importorskip("pytcp", reason="--network=sandbox's TCP needs PyTCP (pip install pytcp)")

K = 1024
CHUNK = 32 * K
CHUNKS = 16


class _Session:
    """A PyTCP session that has CHUNKS pieces of CHUNK bytes to give."""

    def __init__(self) -> None:
        from pytcp.protocols.tcp.session import FsmState

        self.state = FsmState.ESTABLISHED
        self._rx_buffer = b""
        self._event_rx_buffer = threading.Semaphore(0)
        self.given = 0
        self.done = threading.Event()

    def receive(self, n: int) -> bytes:
        if self.given == CHUNKS:
            self.done.wait(10)  # no more: the connection ends with the test
            return b""
        self.given += 1
        return bytes([self.given]) * min(n, CHUNK)

    def _change_state(self, *args: Any) -> None:
        pass

    def _process_ack_packet(self, *args: Any) -> None:
        pass


class _Sock:
    def __init__(self) -> None:
        self._tcp_session = _Session()
        self.local_ip_address = self.remote_ip_address = bytes(4)
        self.local_port = self.remote_port = 1

    def close(self) -> None:
        self._tcp_session.done.set()


def _settle(conn: NetConn) -> int:
    """rx's size once it stopped growing (at most 5 s)."""
    last, deadline = -1, time.monotonic() + 5
    while time.monotonic() < deadline:
        with conn.cond:
            now = len(conn.rx)
        if now == last:
            return now
        last = now
        time.sleep(0.2)
    return last


def test_sandbox_tcp_receive_stops_at_the_budget(budget: Callable[[int], None]) -> None:  # noqa: F811
    """Under 64 KiB of room the reader takes two 32 KiB pieces and waits
    (the session still has more: the window closes); each read of the
    application lets it take more, and every byte arrives in order. Before,
    the reader took all 512 KiB (its only bound was 1 MiB a connection)."""
    budget(64 * K)
    base = kmem.used
    sock = _Sock()
    conn = NetConn(threading.Condition(threading.Lock()), sock)
    held = _settle(conn)
    assert held <= 64 * K and kmem.used - base <= 64 * K, (held, kmem.used - base)
    assert sock._tcp_session.given < CHUNKS
    got = bytearray()
    deadline = time.monotonic() + 20
    while len(got) < CHUNK * CHUNKS and time.monotonic() < deadline:
        with conn.cond:
            if conn.rx:
                got += conn.take(CHUNK, False)
                continue
            conn.cond.wait(0.2)
    assert bytes(got) == b"".join(bytes([i]) * CHUNK for i in range(1, CHUNKS + 1))
    conn.close()


class _TxSession(_Session):
    """A session that queues what it is sent until the test acknowledges it."""

    def __init__(self) -> None:
        super().__init__()
        self._tx_buffer = bytearray()

    def receive(self, n: int) -> bytes:
        self.done.wait(10)  # nothing arrives: only the send side is tested
        return b""

    def send(self, data: bytes) -> int:
        self._tx_buffer += data
        return len(data)


def test_sandbox_tcp_send_buffer_is_charged(budget: Callable[[int], None]) -> None:  # noqa: F811
    """What the application queued and the peer has not acknowledged is in the
    account: under 64 KiB of room a 256 KiB send queues at most 64 KiB and the
    connection is then not ready to send; acknowledged bytes give their pages
    back. Before, PyTCP's send buffer (1 MiB a connection) was outside it."""
    budget(64 * K)
    base = kmem.used
    sock = _Sock()
    sock._tcp_session = _TxSession()
    conn = NetConn(threading.Condition(threading.Lock()), sock)
    with conn.cond:
        assert conn.send_ready()
        queued = conn.send(b"x" * (256 * K))
        assert 0 < queued <= 64 * K, queued
        assert kmem.used - base <= 64 * K
        while conn.send_ready():  # fill what the account has left
            queued += conn.send(b"x" * (256 * K))
        assert queued <= 64 * K and not conn.send_ready()
        sock._tcp_session._tx_buffer.clear()  # the peer acknowledged it all
        assert conn.send_ready()
        assert kmem.used - base <= 2 * kmem.PAGE
    conn.close()
    assert kmem.used == base
