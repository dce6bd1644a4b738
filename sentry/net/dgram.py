"""Datagram endpoints: what unix SOCK_DGRAM and loopback UDP share.

Facts from Linux (net/unix/af_unix.c, net/ipv4/udp.c):

* Each datagram is one record: a read takes one, the rest of a datagram
  longer than the buffer is lost (MSG_TRUNC in msg_flags; with the
  MSG_TRUNC flag the call returns the datagram's real length).
* connect() sets the default destination and, for receiving, the only
  source accepted; connecting to AF_UNSPEC dissolves it.
* A full receiver: unix makes the sender wait (or EAGAIN); UDP drops the
  datagram, but always accepts one into an empty queue, however large.
* No room in the Sentry's kernel-memory account (sentry/kmem.py): unix
  fails the send with ENOBUFS (sock_alloc_send_pskb); UDP drops the datagram
  and the send succeeds (sk_rmem_schedule failing at the receiver)
  (``kmem_drops``).
"""

from __future__ import annotations

import errno
from collections import deque
from typing import Any

from sentry.kernel.errors import SyscallError
from sentry.net import consts as c
from sentry.net import unix_gc
from sentry.net.endpoint import (
    Endpoint,
    Received,
    Segment,
    deadline_of,
    drop_rights,
    notify,
    wait,
)
from sentry.vfs.file import POLLERR, POLLHUP, POLLIN, POLLOUT, FileDescription


class DgramEndpoint(Endpoint):
    """A datagram socket's receive queue and default peer."""

    stype = c.SOCK_DGRAM
    kmem_drops = False  # UDP: a datagram the account refuses is dropped

    def __init__(self, cond: Any = None) -> None:
        super().__init__(cond)
        self.rq: deque[Segment] = deque()
        self.rq_bytes = 0
        self.peer: Any = None  # the connected peer (an endpoint or an address)

    # -- subclass hooks ----------------------------------------------------
    def _route(self, dest: bytes | None, ctx: Any) -> tuple[DgramEndpoint | None, Any]:
        """(receiver or None to drop, the source address it sees)."""
        raise NotImplementedError

    def _max_size(self) -> int:
        return self.sndbuf - 32

    def _accepts(self, seg: Segment) -> bool:
        """Whether this receiver takes a datagram from ``seg.addr`` (cond held)."""
        return True

    def _deliver(self, rcv: DgramEndpoint, seg: Segment, nonblock: bool,
                 deadline: float | None) -> None:
        """Queue ``seg`` on ``rcv`` (rcv.cond held); may wait, raise or drop."""
        if not rcv.charge_segment(len(seg.data)):
            if self.kmem_drops:
                return
            raise SyscallError(errno.ENOBUFS)
        rcv.rq.append(seg)
        rcv.rq_bytes += len(seg.data)

    # -- data --------------------------------------------------------------
    def send(self, data: bytes, flags: int, nonblock: bool, dest: bytes | None, ctx: Any,
             rights: list[FileDescription] | None, creds: tuple[int, int, int]) -> int:
        try:
            with self.cond:
                if self.err:
                    err, self.err = self.err, 0
                    raise SyscallError(err)
                if self.shut & c.SEND_SHUTDOWN:
                    raise SyscallError(errno.EPIPE)
            if len(data) > self._max_size():
                raise SyscallError(errno.EMSGSIZE)
            rcv, src = self._route(dest, ctx)
            if rcv is None:
                return len(data)
            seg = Segment(data, rights, creds, src, self)
            rights = None
            deadline = deadline_of(self.sndtimeo)
            with rcv.cond:
                try:
                    if rcv.closed:
                        raise SyscallError(errno.ECONNREFUSED)
                    if not rcv._accepts(seg):
                        self._refused(rcv)
                        return len(data)
                    self._deliver(rcv, seg, nonblock, deadline)
                    if seg.rights:
                        unix_gc.carried(rcv)
                except SyscallError:
                    drop_rights(seg.rights)
                    raise
                notify(rcv.cond)
            return len(data)
        finally:
            drop_rights(rights)

    def _refused(self, rcv: DgramEndpoint) -> None:
        """The receiver does not take datagrams from us."""

    def recv(self, count: int, flags: int, nonblock: bool) -> Received:
        peek = bool(flags & c.MSG_PEEK)
        deadline = deadline_of(self.rcvtimeo)
        with self.cond:
            while not self.rq:
                if self.err:
                    err, self.err = self.err, 0
                    raise SyscallError(err)
                if self.shut & c.RCV_SHUTDOWN:
                    return Received(b"", 0)
                if nonblock:
                    raise SyscallError(errno.EAGAIN)
                wait(self.cond, deadline)
            seg = self.rq[0]
            rights = seg.rights
            if peek:
                for d in rights or ():
                    d.refs += 1
            else:
                self.rq.popleft()
                self.rq_bytes -= len(seg.data)
                self.uncharge_segment(len(seg.data))
                seg.rights = None
                notify(self.cond)
        size = len(seg.data)
        out = Received(seg.data[:count], size, seg.addr, rights, seg.creds)
        if size > count:
            out.flags |= c.MSG_TRUNC
            if not flags & c.MSG_TRUNC:
                out.size = count
        return out

    def nread(self) -> int:
        with self.cond:
            return len(self.rq[0].data) if self.rq else 0

    def shutdown(self, how: int) -> None:
        if how not in (c.SHUT_RD, c.SHUT_WR, c.SHUT_RDWR):
            raise SyscallError(errno.EINVAL)
        with self.cond:
            self.shut |= how + 1
            notify(self.cond)

    def _writable(self) -> bool:
        return True

    def readiness(self) -> int:
        with self.cond:
            m = 0
            if self.err:
                m |= POLLERR
            if self.shut == c.SHUTDOWN_MASK:
                m |= POLLHUP
            if self.shut & c.RCV_SHUTDOWN:
                m |= POLLIN | c.POLLRDNORM | c.POLLRDHUP
            if self.rq:
                m |= POLLIN | c.POLLRDNORM
        if self._writable():
            m |= POLLOUT | c.POLLWRNORM | c.POLLWRBAND
        return m

    def release(self) -> None:
        with self.cond:
            self.closed = True
            rights = [d for seg in self.rq for d in (seg.rights or ())]
            self.rq.clear()
            self.rq_bytes = 0
            self.uncharge_queue()
            notify(self.cond)
        drop_rights(rights)
        self._unbind()

    def _unbind(self) -> None:
        """Give the name or port back (subclasses)."""
