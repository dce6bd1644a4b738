"""``--network=host``: AF_INET/AF_INET6 sockets that are host sockets,
made and driven by the Sentry in the sandbox's network namespace (runsc's
hostinet). The application never calls the host: every call is a Sentry
handler that checks its arguments, then makes the host call itself.

The trade, for the README: faster (the host's TCP/IP stack, no user-space
stack and no in-memory copy between Python endpoints) and weaker (the
host kernel parses the application's packets and options, the Sentry's
seccomp filter must allow socket/connect/bind/listen/accept, and the
sandbox reaches whatever the host's network namespace reaches).

How it is driven:

* Every host socket is non-blocking. A blocking call tries the host call
  with the endpoint's condition held and, on EAGAIN, waits on it in slices
  (endpoint.wait: signals and SO_RCVTIMEO/SO_SNDTIMEO work as for the
  in-memory sockets). One Sentry thread (``Poller``) holds an
  edge-triggered epoll of every host socket and notifies the endpoint's
  condition on each edge, which also wakes poll, select and epoll.
* Addresses are checked as the loopback path checks them (sentry/net/
  addr.py gives Linux's errno for short or foreign sockaddrs) before the
  host sees them; socket options pass only from an allowlist (as gVisor's
  hostinet), the rest are ENOPROTOOPT; send/recv flags are masked to the
  ones with a meaning here. SIGPIPE is the Sentry's (MSG_NOSIGNAL always
  goes to the host).
"""

from __future__ import annotations

import errno
import fcntl
import select
import socket
import struct
import threading
from typing import Any

from sentry.kernel.errors import SyscallError
from sentry.net import consts as c
from sentry.net.addr import parse_inet
from sentry.net.endpoint import INT, Endpoint, Received, deadline_of, notify, wait
from sentry.vfs.file import POLLERR, POLLHUP, POLLIN, POLLOUT, FileDescription

SOL_TCP, SOL_IP, SOL_IPV6 = c.IPPROTO_TCP, c.IPPROTO_IP, c.IPPROTO_IPV6
IPPROTO_ICMP, IPPROTO_ICMPV6 = 1, 58
FIONREAD = 0x541B
SOMAXCONN = 4096

# Options the host socket gets, by level (gVisor's hostinet allows a list
# of the same kind). SO_RCVTIMEO/SO_SNDTIMEO stay in the Sentry, which
# does the waiting.
ALLOWED_OPTS: dict[int, frozenset[int]] = {
    c.SOL_SOCKET: frozenset({
        c.SO_REUSEADDR, c.SO_TYPE, c.SO_ERROR, c.SO_DONTROUTE, c.SO_BROADCAST, c.SO_SNDBUF,
        c.SO_RCVBUF, c.SO_KEEPALIVE, c.SO_OOBINLINE, c.SO_NO_CHECK, c.SO_PRIORITY,
        c.SO_LINGER, c.SO_REUSEPORT, c.SO_RCVLOWAT, c.SO_SNDLOWAT,
        c.SO_ACCEPTCONN, c.SO_PROTOCOL, c.SO_DOMAIN, c.SO_MARK, c.SO_COOKIE,
        c.SO_INCOMING_CPU, c.SO_BUSY_POLL}),
    # TCP_NODELAY MAXSEG CORK KEEPIDLE KEEPINTVL KEEPCNT SYNCNT LINGER2
    # DEFER_ACCEPT WINDOW_CLAMP INFO QUICKACK CONGESTION USER_TIMEOUT
    # NOTSENT_LOWAT FASTOPEN
    SOL_TCP: frozenset({1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 18, 23, 25}),
    # IP_TOS TTL HDRINCL? no; RECVERR no (error queues are not read here)
    SOL_IP: frozenset({1, 2, 10, 15, 24, 32, 33, 34}),  # TOS TTL MTU_DISCOVER ... MULTICAST_*
    SOL_IPV6: frozenset({16, 17, 18, 19, 20, 21, 23, 26, 67}),  # hops, multicast, V6ONLY, TCLASS
    c.IPPROTO_UDP: frozenset({1, 103, 104}),  # UDP_CORK, UDP_SEGMENT, UDP_GRO
}
_SEND_FLAGS = c.MSG_OOB | c.MSG_DONTROUTE | c.MSG_EOR | c.MSG_MORE | 0x800  # MSG_CONFIRM
_RECV_FLAGS = c.MSG_OOB | c.MSG_PEEK | c.MSG_TRUNC
_OUT_FLAGS = c.MSG_TRUNC | c.MSG_CTRUNC | c.MSG_EOR | c.MSG_OOB


class RawAddr:
    """A sockaddr the host gave back, as the syscall layer packs addresses."""

    __slots__ = ("raw",)

    def __init__(self, raw: bytes) -> None:
        self.raw = raw

    def pack(self, family: int) -> bytes:
        return self.raw


def _to_tuple(raw: bytes, family: int, *, bind: bool = False) -> tuple[Any, ...] | None:
    """A sockaddr from the application as the socket module takes it, after
    Linux's checks (addr.parse_inet); None for AF_UNSPEC (dissolve)."""
    addr = parse_inet(raw, family, bind=bind)
    if addr is None:
        return None
    if family == c.AF_INET:
        return (socket.inet_ntop(c.AF_INET, addr.ip[12:]), addr.port)
    flow, scope = 0, 0
    if len(raw) >= 28:
        flow, scope = struct.unpack_from("<I", raw, 4)[0], struct.unpack_from("<I", raw, 24)[0]
    return (socket.inet_ntop(c.AF_INET6, addr.ip), addr.port, socket.ntohl(flow), scope)


def _to_raw(addr: Any, family: int) -> bytes:
    """The socket module's address tuple back to a sockaddr."""
    if not addr:
        return struct.pack("<H", c.AF_UNSPEC)
    port = struct.pack(">H", addr[1])
    if family == c.AF_INET:
        return struct.pack("<H", c.AF_INET) + port + socket.inet_pton(c.AF_INET, addr[0]) \
            + bytes(8)
    host = addr[0].split("%", 1)[0]
    return (struct.pack("<H", c.AF_INET6) + port + struct.pack(">I", addr[2])
            + socket.inet_pton(c.AF_INET6, host) + struct.pack("<I", addr[3]))


def _host(exc: OSError) -> SyscallError:
    return SyscallError(exc.errno or errno.EIO)


class Poller:
    """One thread, one edge-triggered epoll over every host socket: an edge
    notifies the endpoint's condition (waking its waiters and pollers)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.by_fd: dict[int, HostEndpoint] = {}
        self.epoll: select.epoll | None = None
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        """Make the epoll and the thread (at boot, before the Sentry confines
        itself; later the first socket starts them)."""
        with self.lock:
            if self.epoll is None:
                self.epoll = select.epoll()
                self.thread = threading.Thread(target=self._run, name="hostinet-poller",
                                               daemon=True)
                self.thread.start()

    def add(self, ep: HostEndpoint) -> None:
        self.start()
        assert self.epoll is not None
        with self.lock:
            self.by_fd[ep.fd] = ep
        self.epoll.register(ep.fd, select.EPOLLIN | select.EPOLLOUT | select.EPOLLRDHUP
                            | select.EPOLLPRI | select.EPOLLET)

    def remove(self, ep: HostEndpoint) -> None:
        with self.lock:
            if self.by_fd.get(ep.fd) is ep:
                del self.by_fd[ep.fd]
        if self.epoll is not None:
            try:
                self.epoll.unregister(ep.fd)
            except OSError:
                pass

    def _run(self) -> None:
        assert self.epoll is not None
        while True:
            try:
                events = self.epoll.poll(1.0)
            except InterruptedError:
                continue
            for fd, _ in events:
                with self.lock:
                    ep = self.by_fd.get(fd)
                if ep is not None:
                    with ep.cond:
                        notify(ep.cond)


POLLER = Poller()


class HostEndpoint(Endpoint):
    """An application's TCP or UDP socket backed by a host socket."""

    def __init__(self, family: int, stype: int, protocol: int,
                 sock: socket.socket | None = None) -> None:
        super().__init__()
        self.family, self.stype = family, stype
        if sock is None:
            try:
                sock = socket.socket(family, stype | socket.SOCK_CLOEXEC, protocol)
            except OSError as exc:
                raise _host(exc) from None
        sock.setblocking(False)
        self.sock = sock
        self.fd = sock.fileno()
        self.protocol = sock.proto
        self.connecting = False
        POLLER.add(self)

    # -- the blocking pattern ---------------------------------------------------
    def _blocking(self, op: Any, nonblock: bool, timeout: float) -> Any:
        """``op()`` (a non-blocking host call) until it does not say EAGAIN;
        waiting on the condition, which the poller notifies."""
        deadline = deadline_of(timeout)
        with self.cond:
            while True:
                try:
                    return op()
                except (BlockingIOError, InterruptedError):
                    if nonblock:
                        raise SyscallError(errno.EAGAIN) from None
                except OSError as exc:
                    raise _host(exc) from None
                wait(self.cond, deadline)

    # -- naming and connecting ---------------------------------------------------
    def bind(self, raw: bytes, ctx: Any) -> None:
        addr = _to_tuple(raw, self.family, bind=True)
        try:
            self.sock.bind(addr)
        except OSError as exc:
            raise _host(exc) from None

    def listen(self, backlog: int, cred: tuple[int, int, int]) -> None:
        if backlog < 0 or backlog > SOMAXCONN:
            backlog = SOMAXCONN
        try:
            self.sock.listen(backlog)
        except OSError as exc:
            raise _host(exc) from None

    def accept(self, nonblock: bool) -> Endpoint:
        fd, _ = self._blocking(self.sock._accept, nonblock, self.rcvtimeo)  # type: ignore[attr-defined]
        child = HostEndpoint(self.family, self.stype, self.protocol,
                             socket.socket(self.family, self.stype, self.protocol, fileno=fd))
        child.inherit(self)
        return child

    def connect(self, raw: bytes, ctx: Any, nonblock: bool, cred: tuple[int, int, int]) -> None:
        addr = _to_tuple(raw, self.family)
        if addr is None:
            self._dissolve()
            return
        try:
            err = self.sock.connect_ex(addr)
        except OSError as exc:
            raise _host(exc) from None
        if err == 0:
            return
        if err != errno.EINPROGRESS:
            raise SyscallError(err)
        if nonblock:
            raise SyscallError(errno.EINPROGRESS)
        deadline = deadline_of(self.sndtimeo)
        with self.cond:
            while not self.readiness() & (POLLOUT | POLLERR | POLLHUP):
                wait(self.cond, deadline)
        err = self.sock.getsockopt(c.SOL_SOCKET, c.SO_ERROR)
        if err:
            raise SyscallError(err)

    def _dissolve(self) -> None:
        """connect(AF_UNSPEC): the host does it from a raw sockaddr only."""
        import ctypes  # imported at boot by prepare()

        libc = ctypes.CDLL(None, use_errno=True)
        unspec = struct.pack("<H", c.AF_UNSPEC) + bytes(14)
        if libc.connect(self.fd, unspec, len(unspec)) < 0:
            raise SyscallError(ctypes.get_errno())

    def shutdown(self, how: int) -> None:
        try:
            self.sock.shutdown(how)
        except OSError as exc:
            raise _host(exc) from None

    def name(self) -> bytes:
        try:
            return _to_raw(self.sock.getsockname(), self.family)
        except OSError as exc:
            raise _host(exc) from None

    def peer_name(self) -> bytes:
        try:
            return _to_raw(self.sock.getpeername(), self.family)
        except OSError as exc:
            raise _host(exc) from None

    # -- data ------------------------------------------------------------------
    def send(self, data: bytes, flags: int, nonblock: bool, dest: bytes | None, ctx: Any,
             rights: list[FileDescription] | None, creds: tuple[int, int, int]) -> int:
        from sentry.net.endpoint import drop_rights

        drop_rights(rights)  # an inet socket carries no descriptors
        addr = _to_tuple(dest, self.family) if dest is not None else None
        hflags = (flags & _SEND_FLAGS) | c.MSG_NOSIGNAL | c.MSG_DONTWAIT
        sent = 0
        view = memoryview(data)
        while True:
            def op(chunk: memoryview = view[sent:]) -> int:
                if addr is not None:
                    return self.sock.sendto(chunk, hflags, addr)
                return self.sock.send(chunk, hflags)

            try:
                n = self._blocking(op, nonblock, self.sndtimeo)
            except SyscallError as exc:
                if sent and exc.errno in (errno.EAGAIN, errno.EINTR, 512):
                    return sent
                raise
            sent += n
            if sent >= len(data) or self.stype != c.SOCK_STREAM or nonblock:
                return sent

    def recv(self, count: int, flags: int, nonblock: bool) -> Received:
        hflags = (flags & _RECV_FLAGS) | c.MSG_DONTWAIT
        buf = bytearray(max(count, 0))
        got = 0
        size = 0
        addr: Any = None
        out_flags = 0
        while True:
            view = memoryview(buf)[got:]

            def op(v: memoryview = view) -> tuple[int, Any, int, Any]:
                return self.sock.recvmsg_into([v], 0, hflags)

            try:
                n, _anc, mflags, addr = self._blocking(op, nonblock, self.rcvtimeo)
            except SyscallError as exc:
                if got and exc.errno in (errno.EAGAIN, errno.EINTR, 512):
                    break
                raise
            out_flags |= mflags & _OUT_FLAGS
            if self.stype != c.SOCK_STREAM:
                size = n
                got = min(n, count)
                break
            got += n
            size = got
            if n == 0 or got >= count or not flags & c.MSG_WAITALL or flags & c.MSG_PEEK:
                break
        raw = _to_raw(addr, self.family) if addr and self.stype != c.SOCK_STREAM else None
        return Received(bytes(buf[:got]), size, RawAddr(raw) if raw else None, flags=out_flags)

    def readiness(self) -> int:
        p = select.poll()
        p.register(self.fd, POLLIN | POLLOUT | c.POLLRDHUP | select.POLLPRI)
        got = p.poll(0)
        mask = got[0][1] if got else 0
        return mask & (POLLIN | POLLOUT | POLLERR | POLLHUP | c.POLLRDHUP | select.POLLPRI
                       | c.POLLRDNORM | c.POLLWRNORM)

    def nread(self) -> int:
        try:
            raw = fcntl.ioctl(self.fd, FIONREAD, bytes(4))
        except OSError as exc:
            raise _host(exc) from None
        return INT.unpack(raw)[0]

    def accepting(self) -> bool:
        return bool(self.sock.getsockopt(c.SOL_SOCKET, c.SO_ACCEPTCONN))

    def release(self) -> None:
        self.closed = True
        POLLER.remove(self)
        self.sock.close()
        with self.cond:
            notify(self.cond)

    # -- options -----------------------------------------------------------------
    def getsockopt(self, level: int, name: int) -> bytes:
        if level == c.SOL_SOCKET and name in (c.SO_RCVTIMEO, c.SO_SNDTIMEO, c.SO_PEERCRED):
            return super().getsockopt(level, name)
        if level not in ALLOWED_OPTS:
            raise SyscallError(errno.EOPNOTSUPP)  # ip_getsockopt's answer to a foreign level
        if name not in ALLOWED_OPTS[level]:
            raise SyscallError(errno.ENOPROTOOPT)
        try:
            return self.sock.getsockopt(level, name, 256)
        except OSError as exc:
            raise _host(exc) from None

    def setsockopt(self, level: int, name: int, raw: bytes) -> None:
        if level == c.SOL_SOCKET and name in (c.SO_RCVTIMEO, c.SO_SNDTIMEO):
            super().setsockopt(level, name, raw)
            return
        if name not in ALLOWED_OPTS.get(level, ()):
            raise SyscallError(errno.ENOPROTOOPT)
        try:
            self.sock.setsockopt(level, name, raw)
        except OSError as exc:
            raise _host(exc) from None


def host_endpoint(family: int, stype: int, protocol: int) -> HostEndpoint:
    """socket(2) in host mode: TCP, UDP and ping (ICMP datagram) sockets;
    raw sockets are EPROTONOSUPPORT as in the loopback path."""
    if stype == c.SOCK_STREAM and protocol in (0, c.IPPROTO_TCP):
        return HostEndpoint(family, stype, protocol)
    if stype == c.SOCK_DGRAM and protocol in (0, c.IPPROTO_UDP, IPPROTO_ICMP, IPPROTO_ICMPV6):
        return HostEndpoint(family, stype, protocol)
    if stype in (c.SOCK_STREAM, c.SOCK_DGRAM, c.SOCK_RAW):
        raise SyscallError(errno.EPROTONOSUPPORT)
    raise SyscallError(errno.ESOCKTNOSUPPORT)


def prepare() -> None:
    """Boot-time set-up for host mode, before the Sentry confines itself:
    the poller thread and its epoll, and ctypes (connect(AF_UNSPEC))."""
    import ctypes  # noqa: F401 - an import opens files: not after confinement

    POLLER.start()
