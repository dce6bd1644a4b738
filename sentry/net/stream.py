"""Connection-oriented endpoints: what unix SOCK_STREAM/SOCK_SEQPACKET and
loopback TCP share (listen backlog, accept, a connected pair, half-close).

Facts from Linux this keeps (net/unix/af_unix.c, net/ipv4/tcp*.c):

* A connected pair shares one condition: a write appends to the peer's
  receive queue and wakes it; a read frees room and wakes the writer.
* listen's backlog: a negative or too large one becomes SOMAXCONN; the
  accept queue holds backlog + 1 connections (sk_acceptq_is_full).
* A stream read merges queued writes up to the count, but stops after a
  write that carried descriptors; SOCK_SEQPACKET reads one record.
* MSG_WAITALL keeps reading until the count, EOF, an error or a signal.
* shutdown(SHUT_WR) makes the peer read EOF; closing with unread data makes
  the peer's next read fail with ECONNRESET (both families).
* The families differ in what closing and writing to a closed peer mean:
  subclasses say it in ``_peer_gone`` and ``_send_check``.
* When the Sentry's kernel-memory account (sentry/kmem.py) has no room for
  a write: unix sockets fail it with ENOBUFS (or the bytes sent so far), as
  sock_alloc_send_pskb; TCP waits as for a full buffer (EAGAIN when
  non-blocking), as sk_stream_wait_memory (``kmem_waits``).
"""

from __future__ import annotations

import errno
from collections import deque
from typing import Any

from sentry.kernel.errors import SyscallError
from sentry.net import consts as c
from sentry.net import parked, unix_gc
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


class StreamEndpoint(Endpoint):
    """A listener, or one end of a connection."""

    seqpacket = False
    pollout_extra = 0
    kmem_waits = False  # TCP: no memory waits as a full buffer does

    def __init__(self, cond: Any = None) -> None:
        super().__init__(cond)
        self.rq: deque[Segment] = deque()
        self.rq_bytes = 0
        self.peer: StreamEndpoint | None = None
        self.connected = False  # ever connected (a reset one stays so)
        self.listening = False
        self.backlog = 0
        self.acceptq: deque[StreamEndpoint] = deque()
        self.listen_cred = (0, 0, 0)
        self.parked: deque[Any] = deque()  # parked reads a writer finishes (parked.py)

    def accepting(self) -> bool:
        return self.listening

    def parks_reads(self) -> bool:
        """Whether read(2) may park for a writer to finish (parked.py): only
        when the data comes from an in-memory peer."""
        return True

    # -- subclass hooks ----------------------------------------------------
    def _capacity(self, peer: StreamEndpoint) -> int:
        return self.sndbuf

    def _send_check(self) -> None:
        """Raise the errno a write gets now, if any (cond held)."""
        if self.shut & c.SEND_SHUTDOWN:
            raise SyscallError(errno.EPIPE)
        if not self.connected:
            raise SyscallError(errno.ENOTCONN)

    def _recv_end(self) -> Received | None:
        """With nothing queued: EOF (a Received), an error, or None to wait."""
        if self.err:
            err, self.err = self.err, 0
            raise SyscallError(err)
        if self.shut & c.RCV_SHUTDOWN:
            return Received(b"", 0)
        if not self.connected:
            raise SyscallError(errno.EINVAL)
        return None

    def _peer_gone(self, peer: StreamEndpoint, reset: bool) -> None:
        """The other end closed (cond held); ``reset``: with unread data."""
        peer.shut = c.SHUTDOWN_MASK
        if reset:
            peer.err = errno.ECONNRESET

    def _make_child(self) -> StreamEndpoint:
        raise NotImplementedError

    # -- listen / accept / connect -----------------------------------------
    def _listen(self, backlog: int, cred: tuple[int, int, int]) -> None:
        with self.cond:
            if self.connected:
                raise SyscallError(errno.EINVAL)
            if backlog < 0 or backlog > c.SOMAXCONN:
                backlog = c.SOMAXCONN
            self.backlog = backlog
            self.listening = True
            self.listen_cred = cred
            notify(self.cond)

    def accept(self, nonblock: bool) -> Endpoint:
        deadline = deadline_of(self.rcvtimeo)
        with self.cond:
            while True:
                if not self.listening:
                    raise SyscallError(errno.EINVAL)
                if self.acceptq:
                    child = self.acceptq.popleft()
                    notify(self.cond)
                    return child
                if nonblock:
                    raise SyscallError(errno.EAGAIN)
                wait(self.cond, deadline)

    def _join(self, listener: StreamEndpoint, nonblock: bool, cred: tuple[int, int, int],
              wait_for_room: bool, setup: Any = None) -> StreamEndpoint:
        """Queue a new connection on ``listener``: the server-side endpoint
        shares this one's condition. EAGAIN when the backlog is full and
        ``nonblock``; ECONNREFUSED when it is not listening."""
        with self.cond:
            if self.listening:
                raise SyscallError(errno.EINVAL)
            if self.connected:
                raise SyscallError(errno.EISCONN)
        child = listener._make_child()
        child.cond = self.cond
        child.inherit(listener)
        child.peer_cred = cred
        child.peer = self
        child.connected = True
        if setup is not None:
            setup(child)
        deadline = deadline_of(self.sndtimeo)
        with listener.cond:
            while True:
                if not listener.listening or listener.closed:
                    raise SyscallError(errno.ECONNREFUSED)
                if len(listener.acceptq) <= listener.backlog or not wait_for_room:
                    break
                if nonblock:
                    raise SyscallError(errno.EAGAIN)
                wait(listener.cond, deadline)
            with self.cond:
                self.peer = child
                self.connected = True
                self.peer_cred = listener.listen_cred
            listener.acceptq.append(child)
            notify(listener.cond)
        return child

    # -- data --------------------------------------------------------------
    def _send_stream(self, data: bytes, nonblock: bool, rights: list[FileDescription] | None,
                     creds: tuple[int, int, int] | None) -> int:
        if not data and not self.seqpacket:
            drop_rights(rights)
            with self.cond:
                self._send_check()
            return 0
        deadline = deadline_of(self.sndtimeo)
        sent = 0
        try:
            with self.cond:
                while True:
                    try:
                        self._send_check()
                    except SyscallError:
                        if sent:
                            return sent
                        raise
                    peer = self.peer
                    assert peer is not None
                    cap = self._capacity(peer)
                    if self.seqpacket and len(data) > cap - 32:
                        raise SyscallError(errno.EMSGSIZE)
                    room = cap - peer.rq_bytes
                    need = len(data) if self.seqpacket else 1
                    if room >= need:
                        chunk = data if self.seqpacket else data[sent:sent + room]
                        if not peer.charge_segment(len(chunk)):
                            if self.kmem_waits:
                                room = -1  # below: wait (or EAGAIN)
                            elif sent:
                                return sent
                            else:
                                raise SyscallError(errno.ENOBUFS)
                    if room >= need:
                        peer.rq.append(Segment(chunk, rights, creds))
                        if rights:
                            unix_gc.carried(peer)
                        rights = None
                        peer.rq_bytes += len(chunk)
                        sent += len(chunk)
                        notify(self.cond)
                        if peer.parked:
                            parked.serve(peer)
                        if sent >= len(data):
                            return sent
                        continue
                    if nonblock:
                        if sent:
                            return sent
                        raise SyscallError(errno.EAGAIN)
                    try:
                        wait(self.cond, deadline)
                    except SyscallError:
                        if sent:
                            return sent
                        raise
        finally:
            drop_rights(rights)

    def recv(self, count: int, flags: int, nonblock: bool) -> Received:
        peek = bool(flags & c.MSG_PEEK)
        waitall = bool(flags & c.MSG_WAITALL) and not peek and not self.seqpacket
        passcred = bool(self.opt(c.SO_PASSCRED))
        deadline = deadline_of(self.rcvtimeo)
        got = Received(b"", 0)
        if count == 0 and not self.seqpacket:
            return got
        parts: list[bytes] = []
        with self.cond:
            while True:
                if self.rq:
                    if self.seqpacket:
                        return self._take_record(count, peek, flags)
                    done = self._take_stream(count - got.size, peek, passcred, parts, got)
                    if done or not waitall or got.size >= count:
                        break
                    continue
                if got.size:
                    if not waitall:
                        break
                try:
                    end = self._recv_end()
                    if end is not None:
                        return end if not got.size else self._joined(parts, got)
                    if nonblock:
                        raise SyscallError(errno.EAGAIN)
                    wait(self.cond, deadline)
                except SyscallError:
                    if got.size:
                        break
                    raise
        return self._joined(parts, got)

    @staticmethod
    def _joined(parts: list[bytes], got: Received) -> Received:
        got.data = b"".join(parts)
        return got

    def _take_stream(self, count: int, peek: bool, passcred: bool, parts: list[bytes],
                     got: Received) -> bool:
        """Move up to ``count`` bytes from the queue into ``parts`` (cond held);
        True when a descriptor-carrying write ended the read."""
        i = 0
        while i < len(self.rq) and count > 0:
            seg = self.rq[i]
            if passcred:
                if got.creds is None:
                    got.creds = seg.creds
                elif seg.creds != got.creds:
                    return True
            avail = len(seg.data) - seg.off
            n = min(avail, count)
            parts.append(seg.data[seg.off:seg.off + n])
            got.size += n
            count -= n
            if seg.rights:
                got.rights = seg.rights
                if peek:
                    for d in seg.rights:
                        d.refs += 1
                else:
                    seg.rights = None
            if peek:
                i += 1
            else:
                seg.off += n
                self.rq_bytes -= n
                if seg.off == len(seg.data):
                    self.rq.popleft()
                    self.uncharge_segment(len(seg.data))
                notify(self.cond)
            if got.rights:
                return True
            if n < avail:
                break
        return False

    def _take_record(self, count: int, peek: bool, flags: int) -> Received:
        seg = self.rq[0]
        if not peek:
            self.rq.popleft()
            self.rq_bytes -= len(seg.data)
            self.uncharge_segment(len(seg.data))
            notify(self.cond)
        rights = seg.rights
        if peek and rights:
            for d in rights:
                d.refs += 1
        elif not peek:
            seg.rights = None
        size = len(seg.data)
        out = Received(seg.data[:count], size, rights=rights, creds=seg.creds)
        if size > count:
            out.flags |= c.MSG_TRUNC
            if not flags & c.MSG_TRUNC:
                out.size = count
        return out

    def nread(self) -> int:
        with self.cond:
            if self.seqpacket and self.rq:
                return len(self.rq[0].data)
            return self.rq_bytes

    # -- state -------------------------------------------------------------
    def shutdown(self, how: int) -> None:
        if how not in (c.SHUT_RD, c.SHUT_WR, c.SHUT_RDWR):
            raise SyscallError(errno.EINVAL)
        mode = how + 1  # SHUT_RD -> RCV_SHUTDOWN, SHUT_WR -> SEND, RDWR -> both
        with self.cond:
            try:
                self._shutdown(mode)
            finally:
                notify(self.cond)
                self._serve_both()

    def _serve_both(self) -> None:
        """Parked reads on either end see a state change (cond held)."""
        for ep in (self, self.peer):
            if ep is not None and ep.parked:
                parked.serve(ep)

    def _shutdown(self, mode: int) -> None:
        self.shut |= mode
        peer = self.peer
        if peer is not None:
            peer.shut |= ((mode & c.RCV_SHUTDOWN) << 1) | ((mode & c.SEND_SHUTDOWN) >> 1)

    def readiness(self) -> int:
        with self.cond:
            if self.listening:
                return POLLIN | c.POLLRDNORM if self.acceptq else 0
            m = 0
            if self.err:
                m |= POLLERR
            if self.shut == c.SHUTDOWN_MASK or not self.connected:
                m |= POLLHUP
            if self.shut & c.RCV_SHUTDOWN:
                m |= POLLIN | c.POLLRDNORM | c.POLLRDHUP
            if self.rq:
                m |= POLLIN | c.POLLRDNORM
            peer = self.peer
            if (peer is None or self.shut & c.SEND_SHUTDOWN
                    or peer.rq_bytes < self._capacity(peer)):
                m |= POLLOUT | c.POLLWRNORM | self.pollout_extra
            return m

    def release(self) -> None:
        with self.cond:
            self.closed = True
            self.listening = False
            children = list(self.acceptq)
            self.acceptq.clear()
            unread = bool(self.rq) or self.linger == (1, 0)
            rights = [d for seg in self.rq for d in (seg.rights or ())]
            self.rq.clear()
            self.rq_bytes = 0
            self.uncharge_queue()
            peer = self.peer
            if peer is not None and not peer.closed:
                self._peer_gone(peer, unread)
            notify(self.cond)
            self._serve_both()
        for child in children:
            child._orphan()
        drop_rights(rights)
        self._unbind()

    def _orphan(self) -> None:
        """A connection its listener closed before accepting: the connector
        sees a reset."""
        with self.cond:
            self.closed = True
            rights = [d for seg in self.rq for d in (seg.rights or ())]
            self.rq.clear()
            self.rq_bytes = 0
            self.uncharge_queue()
            peer = self.peer
            if peer is not None:
                self._peer_gone(peer, True)
            notify(self.cond)
            self._serve_both()
        drop_rights(rights)

    def _unbind(self) -> None:
        """Give the name or port back (subclasses)."""
