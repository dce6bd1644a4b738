"""AF_NETLINK sockets: the application talks to the Sentry, which answers
as Linux's kernel side would (NETLINK_ROUTE: netlink_route.py;
NETLINK_SOCK_DIAG: sock_diag.py). No netlink message ever reaches the host.

Facts from Linux (net/netlink/af_netlink.c; netlink(7)) this keeps:

* SOCK_RAW and SOCK_DGRAM are the same; other types are ESOCKTNOSUPPORT,
  a protocol with no kernel side here EPROTONOSUPPORT (as gVisor, which
  also serves only the protocols it implements).
* sockaddr_nl is 12 bytes (family, pad, nl_pid, nl_groups); shorter or
  another family is EINVAL. bind with nl_pid 0, or the first send or
  connect, picks the port id: the thread group id if free, else negative
  ids from -4096 down. A port id taken is EADDRINUSE; binding again to
  another id EINVAL. Multicast groups are recorded (rtnetlink lets anyone
  join) but no notification is ever sent: the table does not change.
* Sending to (or connecting to) a port other than the kernel's (0), or to
  groups, needs CAP_NET_ADMIN for route sockets: EPERM without it. With
  it a message goes to that port's socket as one datagram, ECONNREFUSED
  when no socket holds the port; groups reach nobody. A message longer
  than the send buffer less 32 is EMSGSIZE.
* getpeername always succeeds (the kernel, unless connected elsewhere);
  listen, accept and shutdown are EOPNOTSUPP.
* Options live at SOL_NETLINK; other levels are ENOPROTOOPT. A value
  shorter than an int counts as 0.
* The receive queue is bounded (netlink_attachskb): a message joins it
  while it holds no more than SO_RCVBUF (bytes plus SEG_OVERHEAD each here,
  truesize there), and its bytes are charged to the Sentry's kernel-memory
  account (sentry/kmem.py). The kernel's answer to a request that finds the
  queue full, or no memory for it, is dropped (netlink_overrun): the
  socket's next recv fails with ENOBUFS once (unless NETLINK_NO_ENOBUFS),
  and poll reports POLLERR until then; the socket stays congested (every
  answer dropped) until a recv empties its queue. Here one request's answer (a dump's
  parts included) is queued whole or not at all: Linux fills a dump as the
  reader makes room, pyvisor has built it already. A message from another
  socket to a full queue waits for room (EAGAIN when non-blocking or at
  SO_SNDTIMEO); with no memory for it, ENOBUFS.
"""

from __future__ import annotations

import errno
import struct
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from sentry.kernel.errors import SyscallError
from sentry.net import consts as c
from sentry.net.endpoint import INT, Endpoint, Received, deadline_of, drop_rights, notify, wait
from sentry.net.netconfig import NetConfig
from sentry.net.netlink_msg import NLMSG_GOODSIZE, NLMSG_MAX_DUMP, process
from sentry.net.netlink_route import RouteProtocol
from sentry.net.sock_diag import DiagProtocol, Sockets
from sentry.vfs.file import POLLERR, POLLIN, POLLOUT, FileDescription

NETLINK_ROUTE = 0
NETLINK_SOCK_DIAG = 4
SOL_NETLINK = 270
NETLINK_ADD_MEMBERSHIP, NETLINK_DROP_MEMBERSHIP, NETLINK_PKTINFO = 1, 2, 3
NETLINK_BROADCAST_ERROR, NETLINK_NO_ENOBUFS = 4, 5
NETLINK_LISTEN_ALL_NSID, NETLINK_LIST_MEMBERSHIPS = 8, 9
NETLINK_CAP_ACK, NETLINK_EXT_ACK, NETLINK_GET_STRICT_CHK = 10, 11, 12
_FLAG_OPTS = frozenset({NETLINK_PKTINFO, NETLINK_BROADCAST_ERROR, NETLINK_NO_ENOBUFS,
                        NETLINK_LISTEN_ALL_NSID, NETLINK_CAP_ACK, NETLINK_EXT_ACK,
                        NETLINK_GET_STRICT_CHK})
MAX_LINKS = 32
SOCKADDR_NL = struct.Struct("<HHII")  # family, pad, pid, groups


class NlAddr:
    """A netlink address as recvmsg reports the sender: the kernel's."""

    __slots__ = ("pid", "groups")

    def __init__(self, pid: int = 0, groups: int = 0) -> None:
        self.pid, self.groups = pid, groups

    def pack(self, family: int = c.AF_NETLINK) -> bytes:
        return SOCKADDR_NL.pack(c.AF_NETLINK, 0, self.pid & 0xFFFFFFFF, self.groups)


KERNEL = NlAddr()


def _parse(raw: bytes) -> tuple[int, int]:
    """(nl_pid, nl_groups) of a sockaddr_nl (EINVAL if short or not netlink)."""
    if len(raw) < SOCKADDR_NL.size:
        raise SyscallError(errno.EINVAL)
    family, _, pid, groups = SOCKADDR_NL.unpack_from(raw)
    if family != c.AF_NETLINK:
        raise SyscallError(errno.EINVAL)
    return pid, groups


class _Ports:
    """(protocol, port id) -> socket, for the whole sandbox."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.taken: dict[tuple[int, int], NetlinkEndpoint] = {}

    def take(self, ep: NetlinkEndpoint, pid: int, auto: bool) -> int:
        with self.lock:
            if auto:
                if (ep.protocol, pid) in self.taken:
                    pid = -4096
                    while (ep.protocol, pid & 0xFFFFFFFF) in self.taken:
                        pid -= 1
                pid &= 0xFFFFFFFF
            elif (ep.protocol, pid) in self.taken:
                raise SyscallError(errno.EADDRINUSE)
            self.taken[ep.protocol, pid] = ep
            return pid

    def lookup(self, protocol: int, pid: int) -> NetlinkEndpoint | None:
        with self.lock:
            return self.taken.get((protocol, pid))

    def give_back(self, ep: NetlinkEndpoint, pid: int) -> None:
        with self.lock:
            if self.taken.get((ep.protocol, pid)) is ep:
                del self.taken[ep.protocol, pid]


PORTS = _Ports()


class NetlinkEndpoint(Endpoint):
    """One netlink socket: a queue of the kernel's answers."""

    family = c.AF_NETLINK

    def __init__(self, stype: int, protocol: int, cfg: NetConfig,
                 caller: Callable[[], tuple[int, bool, int]],
                 sockets: Sockets = list) -> None:
        """``caller()`` gives the calling task's thread group id (autobind's
        first choice), whether it holds CAP_NET_ADMIN, and its uid;
        ``sockets()`` the sandbox's open sockets (NETLINK_SOCK_DIAG)."""
        super().__init__()
        self.stype = stype
        self.protocol = protocol
        self.caller = caller
        self.handler: Callable[[Any], Any] = (
            DiagProtocol(sockets) if protocol == NETLINK_SOCK_DIAG else
            RouteProtocol(cfg, lambda: caller()[1], lambda: caller()[2]))
        self.portid = 0
        self.bound = False
        self.groups = 0
        self.dst = (0, 0)
        self.flags: dict[int, int] = {}
        self.rq: deque[tuple[bytes, int]] = deque()  # (datagram, sender's port id)
        self.max_recv = 0
        self.congested = False  # an overrun drops every answer until the queue empties

    # -- naming ----------------------------------------------------------------
    def _autobind(self) -> None:
        if not self.bound:
            self.portid = PORTS.take(self, self.caller()[0], auto=True)
            self.bound = True

    def bind(self, raw: bytes, ctx: Any) -> None:
        pid, groups = _parse(raw)
        with self.cond:
            if self.bound:
                if pid != self.portid:
                    raise SyscallError(errno.EINVAL)
            elif pid:
                self.portid = PORTS.take(self, pid, auto=False)
                self.bound = True
            else:
                self._autobind()
            self.groups = groups

    def connect(self, raw: bytes, ctx: Any, nonblock: bool, cred: tuple[int, int, int]) -> None:
        if raw[:2] == struct.pack("<H", c.AF_UNSPEC):
            self.dst = (0, 0)
            return
        pid, groups = _parse(raw)
        if (pid or groups) and not self.caller()[1]:
            raise SyscallError(errno.EPERM)
        with self.cond:
            self._autobind()
            self.dst = (pid, groups)

    def name(self) -> bytes:
        return SOCKADDR_NL.pack(c.AF_NETLINK, 0, self.portid, self.groups)

    def peer_name(self) -> bytes:
        return SOCKADDR_NL.pack(c.AF_NETLINK, 0, *self.dst)

    # -- data ------------------------------------------------------------------
    def send(self, data: bytes, flags: int, nonblock: bool, dest: bytes | None, ctx: Any,
             rights: list[FileDescription] | None, creds: tuple[int, int, int]) -> int:
        drop_rights(rights)
        pid, groups = _parse(dest) if dest is not None else self.dst
        if (pid or groups) and not self.caller()[1]:
            raise SyscallError(errno.EPERM)
        if len(data) > self.sndbuf - 32:
            raise SyscallError(errno.EMSGSIZE)
        with self.cond:
            self._autobind()
            portid = self.portid
            limit = max(NLMSG_GOODSIZE, self.max_recv)
            cap_ack = bool(self.flags.get(NETLINK_CAP_ACK))
        if pid:
            return self._unicast(pid, data, portid, nonblock)
        if groups:
            return len(data)  # no other listener of route groups here
        replies = process(data, portid, self.handler, cap_ack=cap_ack, dump_limit=limit)
        if replies:
            with self.cond:
                self._queue_answer(replies)
                notify(self.cond)
        return len(data)

    def _full(self) -> bool:
        """netlink_attachskb's test (cond held): past SO_RCVBUF already, or
        congested since an overrun (NETLINK_S_CONGESTED)."""
        return self.congested or self.rq_cost > self.rcvbuf

    def _queue_answer(self, replies: list[bytes]) -> None:
        """The kernel's answer to one request, queued whole or dropped as an
        overrun (cond held)."""
        charged: list[int] = []
        if not self._full():
            for r in replies:
                if not self.charge_segment(len(r)):
                    break
                charged.append(len(r))
            else:
                self.rq.extend((r, 0) for r in replies)
                return
        for n in charged:
            self.uncharge_segment(n)
        if not self.flags.get(NETLINK_NO_ENOBUFS) and not self.congested:
            self.congested = True
            self.err = errno.ENOBUFS  # netlink_overrun

    def _unicast(self, pid: int, data: bytes, portid: int, nonblock: bool) -> int:
        """A message to another netlink socket (netlink_unicast): it waits
        for room in a full queue; no memory for it is ENOBUFS."""
        rcv = PORTS.lookup(self.protocol, pid)
        deadline = deadline_of(self.sndtimeo)
        while True:
            if rcv is None or rcv.closed:
                raise SyscallError(errno.ECONNREFUSED)
            with rcv.cond:
                if rcv.closed:
                    continue
                if not rcv._full():
                    if not rcv.charge_segment(len(data)):
                        raise SyscallError(errno.ENOBUFS)
                    rcv.rq.append((data, portid))
                    notify(rcv.cond)
                    return len(data)
                if nonblock:
                    raise SyscallError(errno.EAGAIN)
                wait(rcv.cond, deadline)

    def recv(self, count: int, flags: int, nonblock: bool) -> Received:
        deadline = deadline_of(self.rcvtimeo)
        with self.cond:
            self.max_recv = min(max(self.max_recv, count), NLMSG_MAX_DUMP)
            if not self.rq:
                self.congested = False  # nothing queued: answers may come again
            if self.err:  # an overrun: reported once, before the queue
                err, self.err = self.err, 0
                raise SyscallError(err)
            while not self.rq:
                if nonblock:
                    raise SyscallError(errno.EAGAIN)
                wait(self.cond, deadline)
            if flags & c.MSG_PEEK:
                msg, sender = self.rq[0]
            else:
                msg, sender = self.rq.popleft()
                self.uncharge_segment(len(msg))
                if not self.rq:
                    self.congested = False
                notify(self.cond)  # a sender waiting for room
        out = Received(msg[:count], len(msg), NlAddr(sender) if sender else KERNEL)
        if len(msg) > count:
            out.flags |= c.MSG_TRUNC
            if not flags & c.MSG_TRUNC:
                out.size = count
        return out

    def nread(self) -> int:
        with self.cond:
            return len(self.rq[0][0]) if self.rq else 0

    def readiness(self) -> int:
        with self.cond:
            ready = POLLIN | c.POLLRDNORM if self.rq else 0
            if self.err:
                ready |= POLLERR
        return ready | POLLOUT | c.POLLWRNORM

    def release(self) -> None:
        with self.cond:
            self.closed = True
            self.rq.clear()
            self.uncharge_queue()
            notify(self.cond)
        if self.bound:
            PORTS.give_back(self, self.portid)

    # -- options ---------------------------------------------------------------
    def proto_getsockopt(self, level: int, name: int) -> bytes:
        if level != SOL_NETLINK:
            raise SyscallError(errno.ENOPROTOOPT)
        if name in _FLAG_OPTS:
            return INT.pack(self.flags.get(name, 0))
        if name == NETLINK_LIST_MEMBERSHIPS:
            return struct.pack("<I", self.groups)
        raise SyscallError(errno.ENOPROTOOPT)

    def proto_setsockopt(self, level: int, name: int, raw: bytes) -> None:
        if level != SOL_NETLINK:
            raise SyscallError(errno.ENOPROTOOPT)
        if name not in _FLAG_OPTS and name not in (NETLINK_ADD_MEMBERSHIP,
                                                   NETLINK_DROP_MEMBERSHIP):
            raise SyscallError(errno.ENOPROTOOPT)
        val = INT.unpack_from(raw)[0] if len(raw) >= INT.size else 0
        if name == NETLINK_ADD_MEMBERSHIP or name == NETLINK_DROP_MEMBERSHIP:
            group = val & 0xFFFFFFFF
            if not 0 < group <= 32:  # route groups fit the first word here
                if group == 0:
                    raise SyscallError(errno.EINVAL)
                return
            bit = 1 << (group - 1)
            self.groups = self.groups | bit if name == NETLINK_ADD_MEMBERSHIP else \
                self.groups & ~bit
            return
        self.flags[name] = 1 if val else 0


def netlink_endpoint(stype: int, protocol: int, cfg: NetConfig,
                     caller: Callable[[], tuple[int, bool, int]],
                     sockets: Sockets = list) -> NetlinkEndpoint:
    """socket(AF_NETLINK, stype, protocol)'s endpoint, or Linux's errno."""
    if stype not in (c.SOCK_RAW, c.SOCK_DGRAM):
        raise SyscallError(errno.ESOCKTNOSUPPORT)
    if not 0 <= protocol < MAX_LINKS or protocol not in (NETLINK_ROUTE, NETLINK_SOCK_DIAG):
        raise SyscallError(errno.EPROTONOSUPPORT)
    return NetlinkEndpoint(stype, protocol, cfg, caller, sockets)
