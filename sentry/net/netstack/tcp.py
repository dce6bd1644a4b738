"""TCP sockets of --network=sandbox: loopback in memory as before, other
addresses through the user-space stack, behind the one endpoint interface.

``SandboxTcpEndpoint`` is the loopback ``TcpEndpoint`` plus a route out: a
connect to an address that is not local goes to PyTCP (conn.NetConn); a
listen on the wildcard or on the interface's address also listens in PyTCP,
so a server bound to 0.0.0.0 (or ``::`` without IPV6_V6ONLY) accepts both
loopback peers and connections arriving on eth0, as on Linux.  Options,
names and the loopback half are the parent's; the syscall layer does not
know which half served a call.
"""

from __future__ import annotations

import errno
from typing import Any

from sentry.kernel.errors import SyscallError
from sentry.net import consts as c
from sentry.net import cork
from sentry.net.addr import V4_PREFIX, InetAddr, parse_inet
from sentry.net.endpoint import Received, deadline_of, notify, wait
from sentry.net.inet import TcpEndpoint, _is_loop
from sentry.net.netstack import stack
from sentry.net.netstack.conn import NetConn, NetListener
from sentry.vfs.file import POLLERR, POLLHUP, POLLIN, POLLOUT

TCP_NODELAY = 1


def _ip16(raw: bytes) -> bytes:
    """A stack address (4 or 16 bytes) as InetAddr keeps it (16)."""
    return raw if len(raw) == 16 else V4_PREFIX + raw[-4:]


def _outside(addr: InetAddr) -> bool:
    """A destination the stack serves: not loopback, not ours, not any; IPv6
    only when the namespace gave the stack an IPv6 address."""
    if addr.is_any or _is_loop(addr.ip):
        return False
    if addr.is_v4:
        return addr.ip[12:] != stack.local_ip()
    mine = stack.local_ip6()
    return mine is not None and addr.ip != mine


class SandboxTcpEndpoint(TcpEndpoint):
    """A TCP socket that can reach the container's network."""

    def __init__(self, family: int, cond: Any = None) -> None:
        super().__init__(family, cond)
        self.net: NetConn | None = None
        self.net_listener: NetListener | None = None

    def parks_reads(self) -> bool:
        return self.net is None  # the stack's data never comes from a parked writer

    def _make_child(self) -> TcpEndpoint:
        return SandboxTcpEndpoint(self.family)

    # -- binding -----------------------------------------------------------
    def bind(self, raw: bytes, ctx: Any) -> None:
        addr = parse_inet(raw, self.family, bind=True)
        assert addr is not None
        if addr.is_v4 and addr.ip[12:] == stack.local_ip() and not self.bound:
            # The interface's own address: the loopback table keeps the port
            # (wildcard), the listener is the stack's only.
            super().bind(InetAddr(V4_PREFIX + bytes(4), addr.port).pack(self.family), ctx)
            self.local = InetAddr(addr.ip, self.local.port)
            self.iface_only = True
            return
        super().bind(raw, ctx)

    # -- listening -----------------------------------------------------------
    def listen(self, backlog: int, cred: tuple[int, int, int]) -> None:
        super().listen(backlog, cred)
        if self.net_listener is not None or not (self.local.is_any or
                                                 getattr(self, "iface_only", False)):
            return
        ips = self._stack_addresses()
        if not ips or not stack.wait_ready():
            return
        try:
            self.net_listener = NetListener(self.cond, ips, self.local.port)
        except OSError as exc:
            raise SyscallError(exc.errno or errno.EADDRINUSE) from None

    def _stack_addresses(self) -> list[bytes]:
        """Where the stack listens for this socket: the v4 wildcard (or the
        interface's address), and ``::`` too for an IPv6 wildcard when the
        namespace gave the stack an IPv6 address (only ``::`` with
        IPV6_V6ONLY)."""
        if self.local.is_v4:
            return [self.local.ip[12:]]
        ips = [] if self.v6only else [bytes(4)]
        if stack.local_ip6() is not None:
            ips.append(bytes(16))
        return ips

    def accept(self, nonblock: bool) -> Any:
        lst = self.net_listener
        if lst is None:
            return super().accept(nonblock)
        deadline = deadline_of(self.rcvtimeo)
        while True:
            with self.cond:
                sock = lst.pop()
                if sock is not None:
                    notify(self.cond)
            if sock is not None:
                child = SandboxTcpEndpoint(self.family)
                child.inherit(self)
                child.net = NetConn(child.cond, sock)
                child.local = InetAddr(_ip16(child.net.local[0]), child.net.local[1])
                child.remote = InetAddr(_ip16(child.net.remote[0]), child.net.remote[1])
                child.connected = True
                return child
            try:
                return super().accept(True)
            except SyscallError as exc:
                if exc.errno != errno.EAGAIN or nonblock:
                    raise
            with self.cond:
                if not lst.queue and not self.acceptq:
                    wait(self.cond, deadline)

    # -- connecting ----------------------------------------------------------
    def connect(self, raw: bytes, ctx: Any, nonblock: bool, cred: tuple[int, int, int]) -> None:
        net = self.net
        if net is not None:
            with self.cond:
                if net.connecting and nonblock:
                    raise SyscallError(errno.EALREADY)
                if net.connected and not net.connecting:
                    if self.connecting:
                        self.connecting = False
                        return
                    raise SyscallError(errno.EISCONN)
                if net.err:
                    err, net.err = net.err, 0
                    self.connecting = False
                    raise SyscallError(err)
            if not nonblock:
                self._wait_connected(net)
            return
        addr = parse_inet(raw, self.family)
        if addr is None or not _outside(addr) or (addr.is_v4 and self.v6only):
            super().connect(raw, ctx, nonblock, cred)
            return
        if self.listening:
            raise SyscallError(errno.EINVAL)
        net = self.net = NetConn(self.cond)
        net.start_connect(addr.ip[12:] if addr.is_v4 else addr.ip, addr.port)
        if nonblock:
            self.connecting = True
            raise SyscallError(errno.EINPROGRESS)
        self._wait_connected(net)

    def _wait_connected(self, net: NetConn) -> None:
        with self.cond:
            while net.connecting:
                wait(self.cond, None)
            if net.err:
                err, net.err = net.err, 0
                raise SyscallError(err)
            self._take_names(net)

    def _take_names(self, net: NetConn) -> None:
        self.local = InetAddr(_ip16(net.local[0]), net.local[1])
        self.remote = InetAddr(_ip16(net.remote[0]), net.remote[1])
        self.connected = True

    # -- data ----------------------------------------------------------------
    def _send_now(self, data: bytes, nonblock: bool) -> int:
        net = self.net
        if net is None:
            return super()._send_now(data, nonblock)
        deadline = deadline_of(self.sndtimeo)
        sent = 0
        while sent < len(data):
            with self.cond:
                if self.shut & c.SEND_SHUTDOWN or net.closed or net.err:
                    if sent:
                        return sent
                    raise SyscallError(errno.EPIPE)
                if net.connected and not net.state_open():
                    if sent:
                        return sent
                    raise SyscallError(errno.EPIPE)
                if not net.send_ready():
                    if nonblock:
                        if sent:
                            return sent
                        raise SyscallError(errno.EAGAIN)
                    wait(self.cond, deadline)
                    continue
                sent += net.send(data[sent:])
            # Outside cond: the session's lock comes first (conn._watch).
            net.push(not self._proto_int(c.IPPROTO_TCP, TCP_NODELAY))
        return sent

    def recv(self, count: int, flags: int, nonblock: bool) -> Received:
        net = self.net
        if net is None:
            return super().recv(count, flags, nonblock)
        nonblock = nonblock or bool(flags & c.MSG_DONTWAIT)
        peek = bool(flags & c.MSG_PEEK)
        deadline = deadline_of(self.rcvtimeo)
        with self.cond:
            while True:
                if net.rx:
                    data = net.take(count, peek)
                    return Received(data, len(data))
                if net.eof or self.shut & c.RCV_SHUTDOWN or net.closed:
                    return Received(b"", 0)
                if net.err:
                    err, net.err = net.err, 0
                    raise SyscallError(err)
                if not net.connected:
                    raise SyscallError(errno.ENOTCONN)
                if nonblock:
                    raise SyscallError(errno.EAGAIN)
                wait(self.cond, deadline)

    def nread(self) -> int:
        net = self.net
        return len(net.rx) if net is not None else super().nread()

    def readiness(self) -> int:
        net = self.net
        if net is None:
            m = super().readiness()
            lst = self.net_listener
            if lst is not None and lst.queue:
                m |= POLLIN | c.POLLRDNORM
            return m
        with self.cond:
            if net.connecting:
                return 0
            m = 0
            if net.err:
                m |= POLLERR | POLLHUP
            if net.rx:
                m |= POLLIN | c.POLLRDNORM
            if net.eof:
                m |= POLLIN | c.POLLRDNORM | c.POLLRDHUP
            if net.connected and net.send_ready() and not self.shut & c.SEND_SHUTDOWN:
                m |= POLLOUT | c.POLLWRNORM
            if net.eof and self.shut & c.SEND_SHUTDOWN:
                m |= POLLHUP
            return m

    def take_error(self) -> int:
        net = self.net
        if net is not None and net.err:
            with self.cond:
                err, net.err = net.err, 0
                return err
        return super().take_error()

    def peer_name(self) -> bytes:
        if self.net is None:
            return super().peer_name()
        if not self.net.connected:
            raise SyscallError(errno.ENOTCONN)
        self._take_names(self.net)
        return self.remote.pack(self.family)

    def name(self) -> bytes:
        if self.net is not None and self.net.connected:
            self._take_names(self.net)
        return super().name()

    def shutdown(self, how: int) -> None:
        net = self.net
        if net is None:
            super().shutdown(how)
            return
        if how not in (c.SHUT_RD, c.SHUT_WR, c.SHUT_RDWR):
            raise SyscallError(errno.EINVAL)
        if not net.connected:
            raise SyscallError(errno.ENOTCONN)
        mode = {c.SHUT_RD: c.RCV_SHUTDOWN, c.SHUT_WR: c.SEND_SHUTDOWN,
                c.SHUT_RDWR: c.SHUTDOWN_MASK}[how]
        with self.cond:
            self.shut |= mode
            notify(self.cond)
        if mode & c.SEND_SHUTDOWN:
            cork.release_stream(self)  # what MSG_MORE or TCP_CORK held goes before the FIN
            self._fin(net)

    def _fin(self, net: NetConn) -> None:
        sock = net.sock
        if sock is not None and not getattr(net, "fin_sent", False):
            net.fin_sent = True  # type: ignore[attr-defined]
            try:
                sock.close()
            except Exception:  # noqa: BLE001 - a session PyTCP already dropped
                pass

    def release(self) -> None:
        cork.release_stream(self)
        if self.net_listener is not None:
            self.net_listener.close()
        net = self.net
        if net is not None:
            self._fin(net)
            net.close()
        super().release()
