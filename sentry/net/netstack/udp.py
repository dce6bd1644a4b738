"""UDP sockets of --network=sandbox: loopback in memory, other IPv4
addresses through PyTCP (DNS to the resolv.conf nameserver is this), and
127.0.0.11:53, Docker's embedded DNS, through the host's relay (dnsrelay.py).

The PyTCP socket is made when the socket first needs the network (bound to
the wildcard or the interface address, connected or sending outside) on the
port the loopback table gave it, so both halves share one port.  Datagrams
PyTCP hands its socket (``process_udp_packet``, on PyTCP's packet thread) are
queued on the endpoint's own receive queue, so recv, MSG_PEEK, MSG_TRUNC and
polling are the parent's.
"""

from __future__ import annotations

import errno
import ipaddress
from typing import Any

from sentry.kernel.errors import SyscallError
from sentry.net import consts as c
from sentry.net import cork
from sentry.net.addr import V4_PREFIX, InetAddr, parse_inet
from sentry.net.dgram import DgramEndpoint
from sentry.net.endpoint import Segment, notify
from sentry.net.inet import UdpEndpoint
from sentry.net.netstack import dnsrelay, stack
from sentry.net.netstack.tcp import _outside


class SandboxUdpEndpoint(UdpEndpoint):
    """A UDP socket that can reach the container's network."""

    def __init__(self, family: int) -> None:
        super().__init__(family)
        self.usock: Any = None
        self._pending_dns = False

    def _open(self) -> Any:
        if self.usock is not None:
            return self.usock
        if not stack.wait_ready():
            raise SyscallError(errno.ENETUNREACH)
        from pytcp.lib import socket as psock

        self._autobind()
        sock = psock.socket(psock.AF_INET4, psock.SOCK_DGRAM)
        try:
            sock.bind(("0.0.0.0", self.local.port))
        except OSError as exc:
            raise SyscallError(exc.errno or errno.EADDRINUSE) from None

        def arrived(md: Any) -> None:
            src = InetAddr(V4_PREFIX + bytes(md.remote_ip_address), md.remote_port)
            self._arrived(Segment(bytes(md.data), addr=src))

        sock.process_udp_packet = arrived
        self.usock = sock
        return sock

    def _arrived(self, seg: Segment) -> None:
        """Queue a datagram from outside the Sentry (dropped when the
        receive buffer is full, or filtered by connect, as Linux does)."""
        with self.cond:
            if self.closed or not self._accepts(seg):
                return
            if self.rq and self.rq_bytes + len(seg.data) > self.rcvbuf:
                return
            if not self.charge_segment(len(seg.data)):
                return  # no room in the Sentry's account: dropped, as UDP does
            self.rq.append(seg)
            self.rq_bytes += len(seg.data)
            notify(self.cond)

    def relay_answer(self, data: bytes) -> None:
        """An answer from Docker's embedded DNS (dnsrelay.py)."""
        self._arrived(Segment(data, addr=InetAddr(dnsrelay._DNS_IP16, dnsrelay.DNS_PORT)))

    def bind(self, raw: bytes, ctx: Any) -> None:
        addr = parse_inet(raw, self.family, bind=True)
        assert addr is not None
        if addr.is_v4 and addr.ip[12:] == stack.local_ip():
            raw = InetAddr(V4_PREFIX + bytes(4), addr.port).pack(self.family)
        super().bind(raw, ctx)
        if self.local.is_any and not self.v6only:
            self._open()

    def connect(self, raw: bytes, ctx: Any, nonblock: bool, cred: tuple[int, int, int]) -> None:
        addr = parse_inet(raw, self.family)
        if addr is None or not _outside(addr) or self.v6only:
            super().connect(raw, ctx, nonblock, cred)
            return
        self._open()
        self.local = InetAddr(V4_PREFIX + (stack.local_ip() or bytes(4)), self.local.port)
        with self.cond:
            self.peer = addr

    def _route(self, dest: bytes | None, ctx: Any) -> tuple[DgramEndpoint | None, Any]:
        addr = parse_inet(dest, self.family) if dest is not None else self.peer
        if addr is not None and dnsrelay.serves(addr.ip, addr.port):
            self._autobind()
            self._pending_dns = True
            return None, None
        if addr is None or not _outside(addr) or self.v6only:
            return super()._route(dest, ctx)
        if addr.port == 0:
            raise SyscallError(errno.EINVAL)
        self._pending = addr
        return None, None

    def send(self, data: bytes, flags: int, nonblock: bool, dest: bytes | None, ctx: Any,
             rights: Any, creds: tuple[int, int, int]) -> int:
        if flags & c.MSG_MORE or self.corked or self.cork_held:
            got = cork.dgram_take(self, data, flags, dest, self._max_size())
            if got is None:
                return len(data)
            size = len(data)
            data, dest = got  # the joined datagram goes out whole, below
            self.send(data, flags & ~c.MSG_MORE, nonblock, dest, ctx, rights, creds)
            return size
        self._pending = None
        self._pending_dns = False
        n = super().send(data, flags, nonblock, dest, ctx, rights, creds)
        addr, self._pending = self._pending, None
        relay = dnsrelay.relay()
        if self._pending_dns and relay is not None:
            self._pending_dns = False
            relay.send(self, bytes(data))
        if addr is not None:
            sock = self._open()
            try:
                sock.sendto(bytes(data), (str(ipaddress.IPv4Address(addr.ip[12:])), addr.port))
            except OSError as exc:
                raise SyscallError(exc.errno or errno.ENETUNREACH) from None
        return n

    def release(self) -> None:
        sock = self.usock
        if sock is not None:
            try:
                sock.close()
            except Exception:  # noqa: BLE001 - PyTCP's bookkeeping only
                pass
        super().release()
