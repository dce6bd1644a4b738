"""Tests for shm/: the Sentry<->Gofer shared-memory channel.

Every server (or hostile peer) runs in a separate process started with the
'spawn' method, so nothing is shared but the /dev/shm objects, as between the
Sentry and the Gofer. After each test nothing this process created may remain
in /dev/shm.
"""

from __future__ import annotations

import errno
import multiprocessing as mp
import os
import secrets
import select
import signal
import threading
import time
from collections.abc import Iterator
from multiprocessing.connection import Connection
from pathlib import Path

import posix_ipc
import pytest

from shm import layout
from shm.channel import (
    ChannelClosed,
    ChannelError,
    ChannelTimeout,
    ClientChannel,
    FrameTooLarge,
    PeerDiedError,
    ProtocolError,
    RemoteError,
    ServerChannel,
)
from shm.layout import Geometry, Names
from shm.peer import PeerWatch, _alive_by_kill
from shm.segment import Segment, unlink_names

CTX = mp.get_context("spawn")
MIB = 1 << 20


# -- child-process bodies (module level: 'spawn' imports them) --------------


def _echo(request: memoryview, response: memoryview) -> bytes | memoryview | int:
    """Echo, with a few commands to make the server misbehave on purpose.

    ``hang!FIFO`` opens FIFO for writing and closes it (the test, reading it,
    learns that the server holds the request), then never answers.
    ``wait:FIFO`` answers b"late" once the test has written FIFO and closed it.
    Fifos, not sleeps: each side waits for the other's act.
    """
    if request[:5] == b"hang!":
        if len(request) > 5:
            with open(bytes(request[5:]), "wb"):
                pass
        time.sleep(60)
    if request[:5] == b"wait:":
        with open(bytes(request[5:]), "rb") as f:
            f.read()
        return b"late"
    if request[:3] == b"zc:":  # zero-copy path: write in place, return length
        n = len(request) - 3
        response[:n] = request[3:]
        return n
    if request == b"raise":
        raise RuntimeError("handler bug (expected by the test)")
    if request == b"too-big":
        return bytes(len(response) + 1)
    if request == b"bad-int":
        return -1
    return request


def _serve_echo(name: str, stop_on: bytes | None = None) -> None:
    stop = threading.Event()

    def handler(request: memoryview, response: memoryview) -> bytes | memoryview | int:
        if stop_on is not None and request == stop_on:
            stop.set()
        return _echo(request, response)

    with ServerChannel(name) as server:
        server.serve(handler, stop=stop)


def _hostile_server(name: str) -> None:
    """Answer three requests with a bad length, a bad sequence, a bad status."""
    seg = Segment.open(name)
    corruptions = [
        lambda seq: (seq, 0xFFFFFFF0, layout.ST_OK),
        lambda seq: (seq ^ 0x5A5A, 4, layout.ST_OK),
        lambda seq: (seq, 4, 77),
    ]
    for corrupt in corruptions:
        seg.work.acquire(10)
        for slot in range(seg.geometry.nslots):
            if seg.state(slot) == layout.REQUEST:
                base = seg.slot_offsets[slot]
                seq, _ = layout.REQ_HEADER.unpack_from(seg.mm, base + layout.S_SEQ)
                layout.RESP_HEADER.pack_into(seg.mm, base + layout.S_RESP_SEQ, *corrupt(seq))
                seg.set_state(slot, layout.RESPONSE)
                seg.slot_sems[slot].release()
    seg.close()


def _client_then_sleep(conn: Connection) -> None:
    client = ClientChannel(nslots=2, msize=4096)
    conn.send(client.name)
    time.sleep(60)


# -- helpers ----------------------------------------------------------------


def _ours() -> list[str]:
    """Every /dev/shm object named after this test process."""
    tag = f"pyvisor-{os.getpid()}-"
    return sorted(f for f in os.listdir("/dev/shm") if tag in f)


DEADLINE = 10.0  # far above what any step takes; only there so a bug cannot hang the run


def _fifo(tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    os.mkfifo(path)
    return path


def _server_holds(fifo: Path) -> None:
    """Return once the server has opened and closed ``fifo`` (see ``hang!``):
    a fifo that never had a writer does not poll readable, one whose writer
    came and went polls as hung up."""
    fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        ready, _, _ = select.select([fd], [], [], DEADLINE)
        assert ready, "the server never took the request"
    finally:
        os.close(fd)


def _release(fifo: Path) -> None:
    """Write ``fifo`` once the server has opened it for reading (see ``wait:``);
    until then a non-blocking open for writing fails with ENXIO."""
    end = time.monotonic() + DEADLINE
    while True:
        try:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            break
        except OSError as exc:
            if exc.errno != errno.ENXIO or time.monotonic() > end:
                raise
            time.sleep(0.001)
    try:
        os.write(fd, b"go")
    finally:
        os.close(fd)


def _names_of(name: str) -> list[str]:
    stem = name.lstrip("/")
    return sorted(f for f in os.listdir("/dev/shm") if f == stem or f.startswith(f"sem.{stem}."))


@pytest.fixture(autouse=True)
def _no_leftovers() -> Iterator[None]:
    yield
    assert _ours() == []


class Echo:
    """A client channel with an echo server in another process."""

    def __init__(self, **kw: int | float) -> None:
        self.client = ClientChannel(**kw)  # type: ignore[arg-type]
        self.proc = CTX.Process(target=_serve_echo, args=(self.client.name,), daemon=True)
        self.proc.start()
        assert self.proc.pid is not None
        self.client.set_peer(self.proc.pid)
        assert self.client.send_request(b"ping") == b"ping"  # the server is up

    def finish(self) -> int | None:
        self.client.close()
        self.proc.join(5)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join(5)
        return self.proc.exitcode


@pytest.fixture
def echo() -> Iterator[Echo]:
    e = Echo(timeout=10)
    yield e
    e.finish()


# -- round trips ------------------------------------------------------------


def test_round_trip_small_and_1mib(echo: Echo) -> None:
    c = echo.client
    assert c.send_request(b"hello") == b"hello"
    assert c.send_request(b"") == b""
    big = os.urandom(MIB)
    assert c.send_request(big) == big
    assert c.send_request(memoryview(bytearray(big))[7:]) == big[7:]
    full = os.urandom(c.msize)
    assert c.send_request(full) == full
    with c.exchange(b"in place") as view:
        assert isinstance(view, memoryview) and view == b"in place"
    assert c.send_request(b"zc:" + big) == big
    assert echo.finish() == 0


def test_many_client_threads(echo: Echo) -> None:
    c = echo.client
    errors: list[BaseException] = []

    def worker(k: int) -> None:
        try:
            for i in range(40):
                payload = f"{k}:{i}:".encode() * (1 + (k * i) % 200)
                assert c.send_request(payload) == payload
        except BaseException as e:  # reported below, in the main thread
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(3 * c.nslots)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not [t for t in threads if t.is_alive()], "a client thread never finished"
    assert errors == []
    assert echo.finish() == 0


def test_oversized_frames(echo: Echo) -> None:
    c = echo.client
    with pytest.raises(FrameTooLarge):
        c.send_request(bytes(c.msize + 1))
    with pytest.raises(FrameTooLarge):  # the server's answer does not fit
        c.send_request(b"too-big")
    with pytest.raises(RemoteError):
        c.send_request(b"raise")
    with pytest.raises(RemoteError):
        c.send_request(b"bad-int")
    assert c.send_request(b"still fine") == b"still fine"
    assert issubclass(FrameTooLarge, ChannelError)


# -- hostile peers ----------------------------------------------------------


def test_corrupt_response_fields_raise_protocol_error() -> None:
    client = ClientChannel(nslots=2, msize=4096, timeout=10)
    proc = CTX.Process(target=_hostile_server, args=(client.name,))
    proc.start()
    assert proc.pid is not None
    client.set_peer(proc.pid)
    try:
        for what in ("length", "sequence", "status"):
            with pytest.raises(ProtocolError, match=what):
                client.send_request(b"abcd")
        proc.join(10)
        assert proc.exitcode == 0
    finally:
        client.close()
        proc.join(5)


def test_corrupt_request_length_answered_bad_frame() -> None:
    """A hostile client (raw segment) writes an impossible length: the server
    answers BAD_FRAME, keeps serving, and exits when told to."""
    name = f"/pyvisor-{os.getpid()}-{secrets.token_hex(4)}"
    seg = Segment.create(name, Geometry(2, 4096))
    proc = CTX.Process(target=_serve_echo, args=(name,))
    proc.start()
    try:

        def request(slot: int, seq: int, length: int, data: bytes) -> tuple[int, int, int]:
            base = seg.slot_offsets[slot]
            seg.requests[slot][: len(data)] = data
            layout.REQ_HEADER.pack_into(seg.mm, base + layout.S_SEQ, seq, length)
            seg.set_state(slot, layout.REQUEST)
            seg.work.release()
            seg.slot_sems[slot].acquire(10)
            assert seg.state(slot) == layout.RESPONSE
            return layout.RESP_HEADER.unpack_from(seg.mm, base + layout.S_RESP_SEQ)

        assert request(0, 7, 0xFFFFFFFF, b"") == (7, 0, layout.ST_BAD_FRAME)
        assert request(1, 8, 4097, b"") == (8, 0, layout.ST_BAD_FRAME)
        assert request(0, 9, 3, b"abc") == (9, 3, layout.ST_OK)
        assert bytes(seg.responses[0][:3]) == b"abc"
        seg.put(layout.OFF_CLIENT_CLOSED, 1)
        seg.work.release()
        proc.join(10)
        assert proc.exitcode == 0
    finally:
        proc.kill()
        proc.join(5)
        seg.close()
        unlink_names(seg.names)


def test_open_rejects_bad_names_and_headers() -> None:
    with pytest.raises(ValueError):
        ServerChannel("/../etc/passwd")
    with pytest.raises(ChannelError):
        ServerChannel(f"/pyvisor-{os.getpid()}-missing")
    name = f"/pyvisor-{os.getpid()}-{secrets.token_hex(4)}"
    shm = posix_ipc.SharedMemory(name, posix_ipc.O_CREX, 0o600, layout.PAGE)
    shm.close_fd()
    try:
        with pytest.raises(ProtocolError, match="magic"):
            ServerChannel(name)
    finally:
        posix_ipc.unlink_shared_memory(name)
    with pytest.raises(ValueError):
        ClientChannel(nslots=0)


# -- timeouts, death, closing -----------------------------------------------


def test_server_sigkill_fails_pending_request(echo: Echo, tmp_path: Path) -> None:
    """The request's timeout is 20 s: PeerDiedError (not ChannelTimeout) says
    the peer watch saw the death.  The killer waits for the server to hold
    the request (a fifo), not for a time."""
    c = echo.client
    assert echo.proc.pid is not None
    pid = echo.proc.pid
    fifo = _fifo(tmp_path, "held")

    def kill() -> None:
        _server_holds(fifo)
        os.kill(pid, signal.SIGKILL)  # not reaped: it stays a zombie meanwhile

    killer = threading.Thread(target=kill, daemon=True)
    killer.start()
    with pytest.raises(PeerDiedError):
        c.send_request(b"hang!" + os.fsencode(fifo), timeout=20)
    killer.join(DEADLINE)
    assert not killer.is_alive()
    with pytest.raises(PeerDiedError):  # and fails fast afterwards
        c.send_request(b"x")


def test_timeout_quarantines_slot_until_answered(tmp_path: Path) -> None:
    """The server cannot answer until the test writes the fifo, so the first
    request must time out; the second, on the only slot, must wait for the
    late answer and then get its own (not the stale b"late"), after the
    release: an order of events, not a measured time."""
    e = Echo(nslots=1, msize=4096, timeout=10)
    try:
        c = e.client
        fifo = _fifo(tmp_path, "release")
        with pytest.raises(ChannelTimeout):
            c.send_request(b"wait:" + os.fsencode(fifo), timeout=0.2)
        events: list[str] = []
        got: list[bytes] = []

        def after() -> None:
            got.append(c.send_request(b"after", timeout=DEADLINE))
            events.append("answered")

        t = threading.Thread(target=after)
        t.start()
        events.append("released")
        _release(fifo)
        t.join(DEADLINE)
        assert not t.is_alive()
        assert got == [b"after"]
        assert events == ["released", "answered"]
    finally:
        assert e.finish() == 0


def test_close_wakes_pending_request(echo: Echo, tmp_path: Path) -> None:
    """close() while a request is pending (the server holds it: a fifo says
    so) ends it with ChannelClosed; left alone it would have waited for its
    20 s timeout and raised ChannelTimeout, so the join's bound is generous."""
    c = echo.client
    caught: list[BaseException] = []
    fifo = _fifo(tmp_path, "held")

    def pending() -> None:
        try:
            c.send_request(b"hang!" + os.fsencode(fifo), timeout=20)
        except BaseException as err:  # checked in the main thread
            caught.append(err)

    t = threading.Thread(target=pending)
    t.start()
    _server_holds(fifo)
    c.close()
    t.join(DEADLINE)
    assert not t.is_alive(), "close() did not wake the pending request"
    assert len(caught) == 1 and isinstance(caught[0], ChannelClosed)
    echo.proc.kill()  # still asleep in its handler
    with pytest.raises(ChannelClosed):
        c.send_request(b"x")


def test_server_stop_tells_client() -> None:
    client = ClientChannel(nslots=2, msize=4096, timeout=10)
    proc = CTX.Process(target=_serve_echo, args=(client.name, b"stop"))
    proc.start()
    try:
        assert client.send_request(b"stop") == b"stop"
        proc.join(5)
        assert proc.exitcode == 0
        with pytest.raises(ChannelClosed):
            client.send_request(b"x")
    finally:
        client.close()


def test_close_unlinks_everything(echo: Echo) -> None:
    c = echo.client
    assert c.send_request(b"x") == b"x"
    assert len(_names_of(c.name)) == 2 + c.nslots  # shm, work, one per slot
    assert echo.finish() == 0
    assert _names_of(c.name) == []
    c.close()  # idempotent
    c.unlink()
    lone = ClientChannel(nslots=1, msize=64)
    with lone:
        assert len(_names_of(lone.name)) == 3
    assert _names_of(lone.name) == []


def test_forked_child_does_not_unlink_parents_channel() -> None:
    with ClientChannel(nslots=1, msize=64) as c:
        pid = os.fork()
        if pid == 0:  # child: run the cleanup a normal exit would run
            c.unlink()
            os._exit(0)
        os.waitpid(pid, 0)
        assert len(_names_of(c.name)) == 3


def test_server_exits_and_cleans_up_when_client_dies() -> None:
    parent, child = CTX.Pipe()
    proc = CTX.Process(target=_client_then_sleep, args=(child,))
    proc.start()
    name = ""
    try:
        assert parent.poll(10)
        name = parent.recv()
        server = ServerChannel(name)
        assert proc.pid is not None
        os.kill(proc.pid, signal.SIGKILL)
        # serve() has no timeout: returning at all, with PeerDiedError, is the check.
        with pytest.raises(PeerDiedError):
            server.serve(_echo)
        server.close()
        assert _names_of(name) == []
    finally:
        proc.kill()
        proc.join(5)
        if name:  # a failure above must not leak the dead client's names
            unlink_names(Names.for_prefix(name, 2))


def test_peer_watch_sees_unreaped_zombie() -> None:
    """kill(pid, 0) succeeds on a zombie; both PeerWatch paths must not."""
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    watch = PeerWatch(pid)
    try:
        deadline = time.monotonic() + 5
        while watch.alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not watch.alive()
        os.kill(pid, 0)  # the zombie still "exists"
        assert not _alive_by_kill(pid)
    finally:
        watch.close()
        os.waitpid(pid, 0)
    assert PeerWatch(pid).alive() is False  # reaped: gone for good


def test_peer_watch_answers_threads_at_once() -> None:
    """Many threads asking one PeerWatch at the same time all get an answer
    (a poll object alone raises "concurrent poll() invocation": an exec's
    cached read then failed with EIO in the Sentry)."""
    watch = PeerWatch(os.getpid())
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def ask() -> None:
        start.wait()
        try:
            for _ in range(20_000):
                assert watch.alive()
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
