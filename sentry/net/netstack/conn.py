"""One TCP connection or listener in PyTCP, made non-blocking and pollable.

PyTCP's socket API blocks on semaphores and never says when a socket became
readable or writable.  So each connection has a reader thread (it takes what
PyTCP received into a bounded buffer of ours, so the window still closes when
the application does not read), each listener an accept thread, and the
session's state changes and ACK processing are wrapped to wake the
endpoint's waiters (``endpoint.notify``): poll, select and epoll then see the
change at once, as they do for the loopback endpoints.

Memory: what the reader took is charged to the Sentry's kernel-memory
account (sentry/kmem.py) besides its RCV_LIMIT bound. A piece it cannot
charge waits in the reader (at most one receive's 64 KiB per connection)
until the application reads or the account has room; meanwhile PyTCP's
own buffer fills and the window closes, as Linux's TCP drops what it
cannot charge (tcp_try_rmem_schedule) and the sender slows down. What the
application queued in PyTCP's send buffer (SND_LIMIT a connection) and
the peer has not acknowledged yet is charged too: with no room a send
waits (EAGAIN when non-blocking), as Linux's sk_stream_wait_memory, and
acknowledged bytes give their pages back the next time the connection is
asked whether it can send.
"""

from __future__ import annotations

import errno
import ipaddress
import threading
from collections import deque
from typing import Any

from sentry import kmem
from sentry.kernel.errors import SyscallError
from sentry.net.endpoint import notify

SND_LIMIT = 1 << 20  # bytes queued in PyTCP's send buffer before send blocks
RCV_LIMIT = 1 << 20  # bytes taken from PyTCP before the reader stops


def _ip(raw: bytes) -> str:
    if len(raw) == 16:
        return str(ipaddress.IPv6Address(raw))
    return str(ipaddress.IPv4Address(raw[-4:]))


def _peer_done(sess: Any) -> bool:
    """The peer's FIN (or a reset) was seen: nothing more will arrive.
    PyTCP's receive() wakes on that only in CLOSE_WAIT and CLOSED; after our
    own FIN (FIN_WAIT_*) the peer's FIN takes it to CLOSING or TIME_WAIT,
    where its receive() would block for ever."""
    from pytcp.protocols.tcp.session import FsmState

    return sess.state in (FsmState.CLOSE_WAIT, FsmState.LAST_ACK, FsmState.CLOSING,
                          FsmState.TIME_WAIT, FsmState.CLOSED)


def _watch(sock: Any, cond: threading.Condition) -> None:
    """Wake ``cond``'s waiters whenever the session changes state or gets an
    ACK, and the reader when the peer is done (see _peer_done)."""
    sess = sock._tcp_session
    if sess is None:
        return
    for name in ("_change_state", "_process_ack_packet"):
        orig = getattr(sess, name)

        def wrapped(*args: Any, _orig: Any = orig, _name: str = name) -> Any:
            out = _orig(*args)
            if _name == "_change_state" and _peer_done(sess):
                sess._event_rx_buffer.release()
            with cond:
                notify(cond)
            return out

        setattr(sess, name, wrapped)


class NetConn:
    """A connected (or connecting) PyTCP socket."""

    def __init__(self, cond: threading.Condition, sock: Any = None) -> None:
        self.cond = cond
        self.sock = sock
        self.rx = bytearray()
        self.kbuf = kmem.Buffer()  # rx's pages in the Sentry's account
        self.tbuf = kmem.Buffer()  # the unacknowledged send buffer's pages
        self.eof = False
        self.err = 0
        self.connected = sock is not None
        self.connecting = False
        self.closed = False
        self.local: tuple[bytes, int] = (bytes(4), 0)
        self.remote: tuple[bytes, int] = (bytes(4), 0)
        if sock is not None:
            _watch(sock, cond)
            self._addresses()
            self._start_reader()

    def _addresses(self) -> None:
        s = self.sock
        self.local = (bytes(s.local_ip_address), s.local_port)
        self.remote = (bytes(s.remote_ip_address), s.remote_port)

    # -- connect -----------------------------------------------------------
    def start_connect(self, ip: bytes, port: int) -> None:
        """Begin connecting in a thread; the outcome sets connected or err."""
        from pytcp.lib import socket as psock

        from sentry.net.netstack import stack

        self.connecting = True
        family = psock.AF_INET6 if len(ip) == 16 else psock.AF_INET4
        sock = psock.socket(family, psock.SOCK_STREAM)

        def run() -> None:
            err = 0
            if not stack.wait_ready():
                err = errno.ENETUNREACH
            else:
                try:
                    sock.connect((_ip(ip), port))
                except ConnectionRefusedError:
                    err = errno.ECONNREFUSED
                except TimeoutError:
                    err = errno.ETIMEDOUT
                except OSError as exc:
                    err = exc.errno or errno.ENETUNREACH
            with self.cond:
                self.connecting = False
                if err or self.closed:
                    self.err = err
                else:
                    self.sock = sock
                    self.connected = True
                    _watch(sock, self.cond)
                    self._addresses()
                    self._start_reader()
                notify(self.cond)

        threading.Thread(target=run, daemon=True, name="netstack-connect").start()

    # -- data --------------------------------------------------------------
    def _start_reader(self) -> None:
        threading.Thread(target=self._reader, daemon=True, name="netstack-rd").start()

    def _reader(self) -> None:
        sess = self.sock._tcp_session
        while True:
            with self.cond:
                while len(self.rx) >= RCV_LIMIT and not self.closed:
                    self.cond.wait(0.5)
                if self.closed:
                    return
            data = sess.receive(65536)
            with self.cond:
                while data and not self.closed and not self.kbuf.fits(len(self.rx) + len(data)):
                    self.cond.wait(0.5)  # a read, or room in the account
                if self.closed:  # released: nobody reads it, nothing is charged
                    return
                if data:
                    self.rx += data
                if not data or (not sess._rx_buffer and _peer_done(sess)):
                    self.eof = True
                    notify(self.cond)
                    return
                notify(self.cond)

    def recv_ready(self) -> bool:
        return bool(self.rx) or self.eof or bool(self.err)

    def take(self, count: int, peek: bool) -> bytes:
        """Up to ``count`` bytes (cond held)."""
        out = bytes(self.rx[:count])
        if not peek:
            del self.rx[:count]
            self.kbuf.holds(len(self.rx))
            notify(self.cond)
        return out

    def unsent(self) -> int:
        sess = self.sock._tcp_session if self.sock is not None else None
        return len(sess._tx_buffer) if sess is not None else 0

    def send_ready(self) -> bool:
        """Room for at least one more byte: under SND_LIMIT, and in the
        account (what the peer acknowledged gives its pages back first)."""
        if not self.connected:
            return False
        unsent = self.unsent()
        self.tbuf.holds(unsent)
        return unsent < SND_LIMIT and self.tbuf.fits(unsent + 1)

    def send(self, data: bytes) -> int:
        """Queue ``data`` (cond held; the caller waited for send_ready)."""
        from pytcp.protocols.tcp.session import TcpSessionError

        unsent = self.unsent()
        chunk = data[:max(SND_LIMIT - unsent, 0)]
        while len(chunk) > 1 and not self.tbuf.fits(unsent + len(chunk)):
            chunk = chunk[:len(chunk) // 2]  # what the account has room for
        try:
            return self.sock._tcp_session.send(chunk)
        except TcpSessionError:
            raise SyscallError(errno.EPIPE) from None

    def push(self, nagle: bool) -> None:
        """Send what the window allows now, small segments held back while
        data is in flight if ``nagle`` (cond NOT held: the session's FSM lock
        is taken before cond, in _watch's wrappers)."""
        from sentry.net.netstack import pump

        sess = self.sock._tcp_session if self.sock is not None else None
        if sess is not None:
            pump.push(sess, nagle)

    def state_open(self) -> bool:
        from pytcp.protocols.tcp.session import FsmState

        sess = self.sock._tcp_session if self.sock is not None else None
        return sess is not None and sess.state in (FsmState.ESTABLISHED, FsmState.CLOSE_WAIT)

    def close(self) -> None:
        """FIN (PyTCP's close); later reads still see what arrives."""
        with self.cond:
            if self.closed:
                return
            self.closed = True
            sock = self.sock
            self.kbuf.release()  # the socket is going: what it holds is not read
            self.tbuf.release()  # and what it still sends is PyTCP's to finish
            notify(self.cond)
        if sock is not None and not getattr(self, "fin_sent", False):
            try:
                sock.close()
            except Exception:  # noqa: BLE001 - a session PyTCP already dropped
                pass


class NetListener:
    """PyTCP listening sockets on ``port``, one per address in ``ips`` (4 or
    16 bytes: a dual-stack wildcard listens on 0.0.0.0 and ::); accepted
    sockets queue here, whichever family they came in by."""

    def __init__(self, cond: threading.Condition, ips: list[bytes], port: int) -> None:
        from pytcp.lib import socket as psock

        self.cond = cond
        self.queue: deque[Any] = deque()
        self.closed = False
        self.socks: list[Any] = []
        try:
            for ip in ips:
                family = psock.AF_INET6 if len(ip) == 16 else psock.AF_INET4
                sock = psock.socket(family, psock.SOCK_STREAM)
                sock.bind((_ip(ip), port))
                sock.listen()
                self.socks.append(sock)
        except OSError:
            self.close()
            raise
        for sock in self.socks:
            threading.Thread(target=self._accepter, args=(sock,), daemon=True,
                             name="netstack-acc").start()

    def _accepter(self, sock: Any) -> None:
        while True:
            try:
                child, _ = sock.accept()
            except IndexError:  # woken by close
                return
            with self.cond:
                if self.closed:
                    return
                self.queue.append(child)
                notify(self.cond)

    def pop(self) -> Any | None:
        return self.queue.popleft() if self.queue else None

    def close(self) -> None:
        from pytcp.lib import stack

        with self.cond:
            self.closed = True
        for sock in self.socks:
            stack.sockets.pop(str(sock), None)
            sock._event_tcp_session_established.release()
