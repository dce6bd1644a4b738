"""The loopback port table: which inet socket holds which (protocol, port).

Facts from Linux (net/ipv4/inet_connection_sock.c, inet_hashtables.c):

* Two sockets on one port conflict when their addresses overlap: equal, or
  either a wildcard of a family the other is in. An AF_INET6 socket bound to
  "::" covers IPv4 too unless IPV6_V6ONLY.
* The conflict is waived when both set SO_REUSEPORT, or (TCP) both set
  SO_REUSEADDR and neither listens, or (UDP) both set SO_REUSEADDR.
* Port 0 picks an ephemeral port from ip_local_port_range.
* A lookup prefers a socket bound to the exact address over a wildcard.
Closed connections leave no TIME_WAIT here: a port is free at close.
"""

from __future__ import annotations

import errno
import random
import threading
from typing import Any

from sentry.kernel.errors import SyscallError
from sentry.net import consts as c
from sentry.net.addr import ANY4, ANY6, InetAddr


def _families(ip: bytes, v6only: bool) -> set[int]:
    if ip == ANY6:
        return {6} if v6only else {4, 6}
    return {4} if ip[:12] == ANY4[:12] else {6}


def _wild(ip: bytes) -> bool:
    return ip in (ANY4, ANY6)


def overlap(a: bytes, a_only: bool, b: bytes, b_only: bool) -> bool:
    if not _families(a, a_only) & _families(b, b_only):
        return False
    return a == b or _wild(a) or _wild(b)


def covers(bound: bytes, v6only: bool, dest: bytes) -> bool:
    """Whether a socket bound to ``bound`` receives what is sent to ``dest``."""
    if bound == ANY6:
        return dest[:12] != ANY4[:12] or not v6only
    if bound == ANY4:
        return dest[:12] == ANY4[:12]
    return bound == dest


class PortTable:
    """(protocol, port) -> the endpoints bound there."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.bound: dict[tuple[int, int], list[Any]] = {}
        self._next = random.randrange(c.EPHEMERAL_LOW, c.EPHEMERAL_HIGH + 1)

    def _conflicts(self, ep: Any, proto: int, ip: bytes, port: int) -> bool:
        for other in self.bound.get((proto, port), ()):
            if not overlap(ip, ep.v6only, other.local.ip, other.v6only):
                continue
            if ep.opt(c.SO_REUSEPORT) and other.opt(c.SO_REUSEPORT):
                continue
            if ep.opt(c.SO_REUSEADDR) and other.opt(c.SO_REUSEADDR) and not (
                    ep.accepting() or other.accepting()):
                continue
            return True
        return False

    def bind(self, ep: Any, proto: int, addr: InetAddr) -> InetAddr:
        """Take ``addr`` (port 0: an ephemeral one) for ``ep``."""
        with self.lock:
            port = addr.port
            if port == 0:
                span = c.EPHEMERAL_HIGH - c.EPHEMERAL_LOW + 1
                for _ in range(span):
                    cand = self._next
                    self._next = c.EPHEMERAL_LOW + (cand + 1 - c.EPHEMERAL_LOW) % span
                    if not self.bound.get((proto, cand)) or not self._conflicts(
                            ep, proto, addr.ip, cand):
                        port = cand
                        break
                else:
                    raise SyscallError(errno.EADDRINUSE)
            elif self._conflicts(ep, proto, addr.ip, port):
                raise SyscallError(errno.EADDRINUSE)
            self.bound.setdefault((proto, port), []).append(ep)
            return addr.with_port(port)

    def check_listen(self, ep: Any, proto: int) -> None:
        """listen(2) re-checks the port (inet_csk_listen_start): EADDRINUSE
        when another socket there listens unless both set SO_REUSEPORT."""
        with self.lock:
            for other in self.bound.get((proto, ep.local.port), ()):
                if other is ep or not other.accepting():
                    continue
                if not overlap(ep.local.ip, ep.v6only, other.local.ip, other.v6only):
                    continue
                if not (ep.opt(c.SO_REUSEPORT) and other.opt(c.SO_REUSEPORT)):
                    raise SyscallError(errno.EADDRINUSE)

    def unbind(self, ep: Any, proto: int, port: int) -> None:
        with self.lock:
            eps = self.bound.get((proto, port))
            if eps and ep in eps:
                eps.remove(ep)
                if not eps:
                    del self.bound[proto, port]

    def lookup(self, proto: int, dest: InetAddr, want: Any) -> Any:
        """The endpoint that receives at ``dest`` and satisfies ``want(ep)``."""
        with self.lock:
            eps = list(self.bound.get((proto, dest.port), ()))
        best = None
        for ep in eps:
            if not want(ep) or not covers(ep.local.ip, ep.v6only, dest.ip):
                continue
            if ep.local.ip == dest.ip:
                return ep
            if best is None:
                best = ep
        return best


PORTS = PortTable()
