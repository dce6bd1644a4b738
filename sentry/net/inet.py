"""AF_INET/AF_INET6 loopback: TCP-like streams and UDP datagrams served in
memory, with no host network under them (runsc --network=none).

Facts from Linux this keeps (net/ipv4, net/ipv6; tcp(7), udp(7), ipv6(7)):

* Local addresses are 127.0.0.0/8, ::1 and the wildcards; binding another
  is EADDRNOTAVAIL, reaching another ENETUNREACH (there is no other
  interface). Connecting to 0.0.0.0 or :: reaches 127.0.0.1 or ::1.
* An AF_INET6 socket meets IPv4 peers through v4-mapped addresses unless
  IPV6_V6ONLY (then they are ENETUNREACH, and binding one is EINVAL).
* connect to a port nobody listens on: ECONNREFUSED; non-blocking, TCP
  always answers EINPROGRESS and the outcome is in SO_ERROR, polled as
  POLLOUT (with POLLERR|POLLHUP on refusal).
* Closing with unread data (or SO_LINGER 0) resets the peer: its next read
  fails with ECONNRESET. Closing otherwise is a FIN: the peer reads EOF, its
  first write succeeds and the next fails with EPIPE (the RST came back).
* A UDP datagram to a port nobody holds is dropped; a connected sender's
  next call fails with ECONNREFUSED (the ICMP error).
"""

from __future__ import annotations

import errno
from typing import Any

from sentry import kmem
from sentry.kernel.errors import SyscallError
from sentry.net import consts as c
from sentry.net import cork, mcast
from sentry.net.addr import ANY4, ANY6, LOOP4, LOOP6, V4_PREFIX, InetAddr, parse_inet
from sentry.net.dgram import DgramEndpoint
from sentry.net.endpoint import INT, NO_CRED, UCRED, Received, Segment
from sentry.net.ports import PORTS
from sentry.net.stream import StreamEndpoint
from sentry.vfs.file import FileDescription

SOL_TCP, SOL_IP, SOL_IPV6 = c.IPPROTO_TCP, c.IPPROTO_IP, c.IPPROTO_IPV6
SOL_UDP = c.IPPROTO_UDP
IPV6_V6ONLY = 26
TCP_INFO = 11
TCP_CONGESTION = 13
TCP_INFO_SIZE = 232
_TCP_STATE = {"established": 1, "close_wait": 8, "listen": 10, "close": 7}

_IP_OPTS = {1: 0, 2: 64, 3: 0, 6: 0, 7: 0, 8: 0, 10: 1, 11: 0, 12: 0, 13: 0, 15: 0, 19: 0,
            24: 0, 33: 1, 34: 1}
_IPV6_OPTS = {16: 64, 18: 1, 19: 1, IPV6_V6ONLY: 0, 23: 1, 25: 0, 49: 0, 66: 0, 67: 0}
_TCP_OPTS = {1: 0, 2: 536, 3: 0, 4: 7200, 5: 75, 6: 9, 7: 6, 8: 60, 9: 0, 10: 0, 12: 1,
             16: 0, 18: 0, 23: 0, 25: -1, 27: 0, 30: 0}
_UDP_OPTS = {1: 0}  # UDP_CORK


def _is_loop(ip: bytes) -> bool:
    return ip[12] == 127 if ip[:12] == V4_PREFIX else ip == LOOP6




class InetMixin:
    """Addresses, ports and IP-level options shared by TCP and UDP."""

    proto = 0
    cond: Any
    opts: dict[int, int]
    proto_opts: dict[tuple[int, int], bytes]

    def _inet_init(self, family: int) -> None:
        self.family = family
        self.local = InetAddr(ANY4 if family == c.AF_INET else ANY6, 0)
        self.remote: InetAddr | None = None
        self.bound = False

    @property
    def v6only(self) -> bool:
        return self.family == c.AF_INET6 and bool(self._proto_int(SOL_IPV6, IPV6_V6ONLY))

    def _dest(self, addr: InetAddr) -> InetAddr:
        ip = addr.ip
        if ip[:12] == V4_PREFIX and self.v6only:
            raise SyscallError(errno.ENETUNREACH)
        if ip == ANY4:
            ip = LOOP4
        elif ip == ANY6:
            ip = LOOP6
        if not _is_loop(ip):
            raise SyscallError(errno.ENETUNREACH)
        return InetAddr(ip, addr.port)

    def bind(self, raw: bytes, ctx: Any) -> None:
        addr = parse_inet(raw, self.family, bind=True)
        assert addr is not None
        if self.bound:
            raise SyscallError(errno.EINVAL)
        if addr.ip[:12] == V4_PREFIX and self.v6only:
            raise SyscallError(errno.EINVAL)
        if not (addr.is_any or _is_loop(addr.ip)):
            raise SyscallError(errno.EADDRNOTAVAIL)
        self.local = PORTS.bind(self, self.proto, addr)
        self.bound = True

    def _autobind(self) -> None:
        if not self.bound:
            self.local = PORTS.bind(self, self.proto, self.local)
            self.bound = True

    def _source_for(self, dest: InetAddr) -> InetAddr:
        if not self.local.is_any:
            return self.local
        return InetAddr(LOOP4 if dest.is_v4 else LOOP6, self.local.port)

    def name(self) -> bytes:
        return self.local.pack(self.family)

    def _unbind(self) -> None:
        if self.bound:
            PORTS.unbind(self, self.proto, self.local.port)

    # -- options -----------------------------------------------------------
    def _table(self, level: int, get: bool = False) -> dict[int, int]:
        if level == SOL_IP:
            return _IP_OPTS
        if level == SOL_IPV6 and self.family == c.AF_INET6:
            return _IPV6_OPTS
        if level == SOL_TCP and self.proto == c.IPPROTO_TCP:
            return _TCP_OPTS
        if level == SOL_UDP and self.proto == c.IPPROTO_UDP:
            return _UDP_OPTS
        raise SyscallError(errno.EOPNOTSUPP if get else errno.ENOPROTOOPT)

    def _proto_int(self, level: int, name: int) -> int:
        raw = self.proto_opts.get((level, name))
        if raw is not None:
            return INT.unpack(raw)[0]
        return self._table(level).get(name, 0)

    def proto_getsockopt(self, level: int, name: int) -> bytes:
        table = self._table(level, get=True)
        if level == SOL_TCP and name == TCP_CONGESTION:
            return b"cubic".ljust(16, b"\0")
        if level == SOL_TCP and name == TCP_INFO:
            return bytes([self._tcp_state()]) + bytes(TCP_INFO_SIZE - 1)
        if name not in table:
            raise SyscallError(errno.ENOPROTOOPT)
        return INT.pack(self._proto_int(level, name))

    def proto_setsockopt(self, level: int, name: int, raw: bytes) -> None:
        table = self._table(level)
        if mcast.handles(level, name):
            mcast.setopt(self, level, name, raw)
            return
        if level == SOL_TCP and name == TCP_CONGESTION:
            return
        if name not in table:
            raise SyscallError(errno.ENOPROTOOPT)
        if len(raw) < INT.size:
            raise SyscallError(errno.EINVAL)
        if level == SOL_IPV6 and name == IPV6_V6ONLY and self.bound:
            raise SyscallError(errno.EINVAL)
        val = INT.unpack_from(raw)[0]
        if level == SOL_IP and name == 2 and not (val == -1 or 1 <= val <= 255):
            raise SyscallError(errno.EINVAL)
        self.proto_opts[level, name] = INT.pack(val)
        if level == SOL_TCP and name == cork.TCP_CORK:
            cork.set_stream_cork(self, val != 0)
        elif level == SOL_UDP and name == cork.UDP_CORK:
            self.corked = val != 0
            if not val and self.cork_held:
                self.send(b"", 0, True, None, None, None, NO_CRED)  # the held datagram

    def _tcp_state(self) -> int:
        return _TCP_STATE["close"]


class TcpEndpoint(InetMixin, StreamEndpoint):
    """SOCK_STREAM over loopback: TCP's states without its packets."""

    proto = protocol = c.IPPROTO_TCP
    corked = False  # TCP_CORK (cork.py)
    kmem_waits = True  # no memory: wait as for room (stream.py)
    cork_held: bytearray | None = None
    cork_kbuf: kmem.Buffer | None = None  # what is held, in the Sentry's account
    cork_timer: Any = None
    default_rcvbuf = 131072
    default_sndbuf = 16384

    def __init__(self, family: int, cond: Any = None) -> None:
        super().__init__(cond)
        self._inet_init(family)
        self.fin = False  # the peer shut its sending side
        self.reset = False
        self.connecting = False

    def _make_child(self) -> StreamEndpoint:
        return TcpEndpoint(self.family)

    def getsockopt(self, level: int, name: int) -> bytes:
        if level == c.SOL_SOCKET and name == c.SO_PEERCRED:
            return UCRED.pack(*NO_CRED)  # only AF_UNIX peers have credentials
        return super().getsockopt(level, name)

    def _capacity(self, peer: StreamEndpoint) -> int:
        return peer.rcvbuf + self.sndbuf

    def _tcp_state(self) -> int:
        if self.listening:
            return _TCP_STATE["listen"]
        if self.connected and not self.reset:
            return _TCP_STATE["close_wait" if self.fin else "established"]
        return _TCP_STATE["close"]

    def listen(self, backlog: int, cred: tuple[int, int, int]) -> None:
        self._autobind()
        if not self.listening:
            PORTS.check_listen(self, self.proto)
        self._listen(backlog, cred)

    def connect(self, raw: bytes, ctx: Any, nonblock: bool, cred: tuple[int, int, int]) -> None:
        addr = parse_inet(raw, self.family)
        with self.cond:
            if self.connecting:
                self.connecting = False
                if self.err:
                    err, self.err = self.err, 0
                    raise SyscallError(err)
                if self.connected:
                    return  # the second connect reports the outcome: done
        if addr is None:
            return
        dest = self._dest(addr)
        with self.cond:
            if self.listening:
                raise SyscallError(errno.EINVAL)
            if self.connected:
                raise SyscallError(errno.EISCONN)
        self._autobind()
        listener = PORTS.lookup(self.proto, dest, lambda ep: ep.listening and not ep.closed)
        try:
            if listener is None:
                raise SyscallError(errno.ECONNREFUSED)
            src = self._source_for(dest)

            def setup(child: StreamEndpoint) -> None:
                assert isinstance(child, TcpEndpoint)
                child.local = InetAddr(dest.ip, dest.port)
                child.remote = src

            self._join(listener, nonblock, cred, wait_for_room=not nonblock, setup=setup)
            self.local, self.remote = src, dest
        except SyscallError as exc:
            if not nonblock or exc.errno != errno.ECONNREFUSED:
                raise
            with self.cond:
                self.err = errno.ECONNREFUSED
                self.shut = c.SHUTDOWN_MASK
        if nonblock:
            with self.cond:
                self.connecting = True
            raise SyscallError(errno.EINPROGRESS)

    def peer_name(self) -> bytes:
        if not self.connected or self.reset or self.remote is None:
            raise SyscallError(errno.ENOTCONN)
        return self.remote.pack(self.family)

    def send(self, data: bytes, flags: int, nonblock: bool, dest: bytes | None, ctx: Any,
             rights: list[FileDescription] | None, creds: tuple[int, int, int]) -> int:
        if flags & c.MSG_MORE or self.corked or self.cork_held:
            return cork.stream_send(self, data, flags, nonblock)
        return self._send_now(data, nonblock)

    def shutdown(self, how: int) -> None:
        if how in (c.SHUT_WR, c.SHUT_RDWR):
            cork.release_stream(self)  # what MSG_MORE or TCP_CORK held goes before the FIN
        super().shutdown(how)

    def release(self) -> None:
        cork.release_stream(self, closing=True)
        super().release()

    def _send_now(self, data: bytes, nonblock: bool) -> int:
        """send(2) without corking (cork.py holds corked bytes back)."""
        peer = self.peer
        # Only a FIN'd connection whose peer closed needs the check under the
        # lock; the round-trip path skips taking it twice.
        if peer is not None and peer.closed and self.fin:
            with self.cond:
                if (self.peer is not None and self.peer.closed and self.fin and not self.err
                        and not self.shut & c.SEND_SHUTDOWN):
                    # Data to a closed socket: accepted, answered by a reset.
                    self.err = errno.EPIPE
                    self.shut = c.SHUTDOWN_MASK
                    return len(data)
        return self._send_stream(data, nonblock, None, None)

    def _send_check(self) -> None:
        if self.err:
            err, self.err = self.err, 0
            raise SyscallError(err)
        if self.shut & c.SEND_SHUTDOWN or not self.connected:
            raise SyscallError(errno.EPIPE)

    def _recv_end(self) -> Received | None:
        if self.fin:
            return Received(b"", 0)
        if self.err:
            err, self.err = self.err, 0
            raise SyscallError(err)
        if self.shut & c.RCV_SHUTDOWN:
            return Received(b"", 0)
        if not self.connected:
            raise SyscallError(errno.ENOTCONN)
        return None

    def _peer_gone(self, peer: StreamEndpoint, reset: bool) -> None:
        assert isinstance(peer, TcpEndpoint)
        if reset:
            peer.err = errno.ECONNRESET
            peer.shut = c.SHUTDOWN_MASK
            peer.reset = True
            peer.fin = False
        else:
            peer.shut |= c.RCV_SHUTDOWN
            peer.fin = True

    def _shutdown(self, mode: int) -> None:
        if not self.connected and not self.listening:
            self.shut |= mode
            raise SyscallError(errno.ENOTCONN)
        self.shut |= mode
        peer = self.peer
        if mode & c.SEND_SHUTDOWN and isinstance(peer, TcpEndpoint):
            peer.shut |= c.RCV_SHUTDOWN
            peer.fin = True


class UdpEndpoint(InetMixin, DgramEndpoint):
    """SOCK_DGRAM over loopback."""

    proto = protocol = c.IPPROTO_UDP
    corked = False  # UDP_CORK (cork.py)
    kmem_drops = True  # no memory: the datagram is dropped (dgram.py)
    cork_held: tuple[bytearray, bytes | None] | None = None
    cork_kbuf: kmem.Buffer | None = None  # what is held, in the Sentry's account

    def __init__(self, family: int) -> None:
        super().__init__()
        self._inet_init(family)

    def send(self, data: bytes, flags: int, nonblock: bool, dest: bytes | None, ctx: Any,
             rights: list[FileDescription] | None, creds: tuple[int, int, int]) -> int:
        if flags & c.MSG_MORE or self.corked or self.cork_held:
            got = cork.dgram_take(self, data, flags, dest, self._max_size())
            if got is None:
                return len(data)
            joined, dest = got
            super().send(joined, flags & ~c.MSG_MORE, nonblock, dest, ctx, rights, creds)
            return len(data)
        return super().send(data, flags, nonblock, dest, ctx, rights, creds)

    def release(self) -> None:
        cork.dgram_drop(self)  # a held datagram goes with the socket, and its charge
        super().release()

    def _tcp_state(self) -> int:
        return 0

    def _max_size(self) -> int:
        return 65507 if self.family == c.AF_INET else 65527

    def connect(self, raw: bytes, ctx: Any, nonblock: bool, cred: tuple[int, int, int]) -> None:
        addr = parse_inet(raw, self.family)
        if addr is None:
            with self.cond:
                self.peer = None
            return
        dest = self._dest(addr)
        self._autobind()
        self.local = self._source_for(dest)
        with self.cond:
            self.peer = dest

    def peer_name(self) -> bytes:
        peer = self.peer
        if peer is None:
            raise SyscallError(errno.ENOTCONN)
        return peer.pack(self.family)

    def _route(self, dest: bytes | None, ctx: Any) -> tuple[DgramEndpoint | None, Any]:
        addr = parse_inet(dest, self.family) if dest is not None else None
        if addr is None:
            addr = self.peer
            if addr is None:
                raise SyscallError(errno.EDESTADDRREQ)
        to = self._dest(addr)
        if to.port == 0:
            raise SyscallError(errno.EINVAL)
        self._autobind()
        src = self._source_for(to)
        rcv = PORTS.lookup(self.proto, to, lambda ep: not ep.closed)
        if rcv is None:
            self._refused(None)
        return rcv, src

    def _refused(self, rcv: Any) -> None:
        if self.peer is not None:
            self.err = errno.ECONNREFUSED

    def _accepts(self, seg: Segment) -> bool:
        peer = self.peer
        return peer is None or peer == seg.addr

    def _deliver(self, rcv: DgramEndpoint, seg: Segment, nonblock: bool,
                 deadline: float | None) -> None:
        if rcv.rq and rcv.rq_bytes + len(seg.data) > rcv.rcvbuf:
            return  # a full receiver drops it
        super()._deliver(rcv, seg, nonblock, deadline)

    def shutdown(self, how: int) -> None:
        super().shutdown(how)
        if self.peer is None:
            raise SyscallError(errno.ENOTCONN)

