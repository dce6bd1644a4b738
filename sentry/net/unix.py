"""AF_UNIX sockets: stream, seqpacket and datagram, in memory (unix(7)).

Facts from Linux (net/unix/af_unix.c) this keeps:

* A path name is a socket inode made in the VFS by bind (mode 0777 & ~umask,
  EADDRINUSE when the name exists); connect resolves the path, then finds
  the socket bound to that inode: not a socket or no socket bound is
  ECONNREFUSED, another socket type EPROTOTYPE. Removing the file does not
  unbind; closing the socket leaves the file, as on Linux.
* Abstract names (first byte NUL) live in a table of their own and vanish
  with the socket. bind with only the family autobinds to "\\0" and five hex
  digits; so do connect and send when SO_PASSCRED is on.
* An accepted socket has its listener's name; SO_PEERCRED is the
  connector's credentials on the accepted side and the listener's (at
  listen time) on the connecting side.
* A datagram to a socket connected elsewhere is EPERM; one to a closed
  socket ECONNREFUSED; a receiver with more than max_dgram_qlen datagrams
  queued makes the sender wait, unless it is connected back to the sender.
* No host AF_UNIX socket is ever touched: names are the Sentry's own.
"""

from __future__ import annotations

import errno
import itertools
import random
import stat as _stat
import threading
from typing import Any

from sentry.kernel.errors import SyscallError
from sentry.net import consts as c
from sentry.net.addr import UNNAMED, UnixAddr, family_of, parse_unix
from sentry.net.dgram import DgramEndpoint
from sentry.net.endpoint import Endpoint, Received, Segment, wait
from sentry.net.stream import StreamEndpoint
from sentry.vfs import vfs
from sentry.vfs.file import FileDescription
from sentry.vfs.resolve import MAY_WRITE, resolve


class UnixNames:
    """The sandbox's AF_UNIX names: abstract ones, and path-bound inodes."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.abstract: dict[bytes, Endpoint] = {}
        self.paths: dict[tuple[int, int], Endpoint] = {}
        self._auto = itertools.count(random.randrange(0xFFFFF))

    def bind(self, ep: UnixMixin, addr: UnixAddr, ctx: Any) -> UnixAddr:
        if addr.abstract:
            with self.lock:
                if addr.name in self.abstract:
                    raise SyscallError(errno.EADDRINUSE)
                self.abstract[addr.name] = ep  # type: ignore[assignment]
            return addr
        try:
            vfs.mknod(ctx, None, addr.name, _stat.S_IFSOCK | 0o777)
        except SyscallError as exc:
            if exc.errno == errno.EEXIST:
                raise SyscallError(errno.EADDRINUSE) from None
            raise
        st = vfs.stat(ctx, None, addr.name, follow=False)
        with self.lock:
            self.paths[st.dev, st.ino] = ep  # type: ignore[assignment]
        ep.inode_key = (st.dev, st.ino)
        return addr

    def autobind(self, ep: UnixMixin) -> UnixAddr:
        with self.lock:
            for _ in range(0x100000):
                name = b"\0%05x" % (next(self._auto) & 0xFFFFF)
                if name not in self.abstract:
                    self.abstract[name] = ep  # type: ignore[assignment]
                    return UnixAddr(name)
        raise SyscallError(errno.ENOSPC)

    def lookup(self, raw: bytes, ctx: Any, stype: int) -> Endpoint:
        addr = parse_unix(raw)
        if addr.abstract:
            with self.lock:
                ep = self.abstract.get(addr.name)
        else:
            # unix_find_bsd(): write permission on the socket file (EACCES)
            # before whether it is a socket at all.
            ctx.check(resolve(ctx, addr.name, follow=True), MAY_WRITE)
            st = vfs.stat(ctx, None, addr.name)
            if not _stat.S_ISSOCK(st.mode):
                raise SyscallError(errno.ECONNREFUSED)
            with self.lock:
                ep = self.paths.get((st.dev, st.ino))
        if ep is None or ep.closed:
            raise SyscallError(errno.ECONNREFUSED)
        if ep.stype != stype:
            raise SyscallError(errno.EPROTOTYPE)
        return ep

    def unbind(self, ep: UnixMixin) -> None:
        with self.lock:
            if ep.local.abstract and self.abstract.get(ep.local.name) is ep:
                del self.abstract[ep.local.name]
            if ep.inode_key is not None and self.paths.get(ep.inode_key) is ep:
                del self.paths[ep.inode_key]


NAMES = UnixNames()


def _exists(ctx: Any, path: bytes) -> bool:
    try:
        vfs.stat(ctx, None, path, follow=False)
    except SyscallError:
        return False
    return True


class UnixMixin:
    """Naming shared by the three unix socket types."""

    family = c.AF_UNIX
    local: UnixAddr = UNNAMED
    inode_key: tuple[int, int] | None = None
    cond: threading.Condition

    def bind(self, raw: bytes, ctx: Any) -> None:
        if self.local.name:
            addr = parse_unix(raw) if len(raw) > 2 else UNNAMED
            if addr.name and not addr.abstract and _exists(ctx, addr.name):
                raise SyscallError(errno.EADDRINUSE)  # Linux makes the node first
            raise SyscallError(errno.EINVAL)
        if len(raw) == 2 and family_of(raw) == c.AF_UNIX:
            addr = NAMES.autobind(self)
        else:
            addr = NAMES.bind(self, parse_unix(raw), ctx)
        self.local = addr

    def _autobind_for_creds(self) -> None:
        if self.opt(c.SO_PASSCRED) and not self.local.name:  # type: ignore[attr-defined]
            self.local = NAMES.autobind(self)

    def name(self) -> bytes:
        return self.local.pack()

    def _unbind(self) -> None:
        NAMES.unbind(self)

    def proto_getsockopt(self, level: int, name: int) -> bytes:
        raise SyscallError(errno.EOPNOTSUPP)

    def proto_setsockopt(self, level: int, name: int, raw: bytes) -> None:
        raise SyscallError(errno.EOPNOTSUPP)


class UnixStream(UnixMixin, StreamEndpoint):
    """SOCK_STREAM: a byte stream; a write may carry descriptors."""

    stype = c.SOCK_STREAM
    pollout_extra = c.POLLWRBAND

    def _make_child(self) -> StreamEndpoint:
        child = type(self)()
        child.local = self.local
        return child

    def listen(self, backlog: int, cred: tuple[int, int, int]) -> None:
        if not self.local.name:
            raise SyscallError(errno.EINVAL)
        self._listen(backlog, cred)

    def connect(self, raw: bytes, ctx: Any, nonblock: bool, cred: tuple[int, int, int]) -> None:
        target = NAMES.lookup(raw, ctx, self.stype)
        self._autobind_for_creds()
        self._join(target, nonblock, cred, wait_for_room=True)  # type: ignore[arg-type]

    def send(self, data: bytes, flags: int, nonblock: bool, dest: bytes | None, ctx: Any,
             rights: list[FileDescription] | None, creds: tuple[int, int, int]) -> int:
        if dest is not None:
            from sentry.net.endpoint import drop_rights

            drop_rights(rights)
            raise SyscallError(errno.EISCONN if self.connected else errno.EOPNOTSUPP)
        return self._send_stream(data, nonblock, rights, creds)

    def peer_name(self) -> bytes:
        with self.cond:
            peer = self.peer
            if peer is None or not self.connected:
                raise SyscallError(errno.ENOTCONN)
        return peer.name()

    def recv(self, count: int, flags: int, nonblock: bool) -> Received:
        got = super().recv(count, flags, nonblock)
        got.addr = None  # a stream's recvfrom names no sender when unbound
        peer = self.peer
        if peer is not None and peer.local.name:  # type: ignore[attr-defined]
            got.addr = peer.local  # type: ignore[attr-defined]
        return got


class UnixSeqpacket(UnixStream):
    """SOCK_SEQPACKET: connection-oriented records."""

    stype = c.SOCK_SEQPACKET
    seqpacket = True

    def _send_check(self) -> None:
        if self.err:
            err, self.err = self.err, 0
            raise SyscallError(err)
        if not self.connected:
            raise SyscallError(errno.ENOTCONN)
        super()._send_check()

    def send(self, data: bytes, flags: int, nonblock: bool, dest: bytes | None, ctx: Any,
             rights: list[FileDescription] | None, creds: tuple[int, int, int]) -> int:
        return self._send_stream(data, nonblock, rights, creds)  # a name is ignored

    def _recv_end(self) -> Received | None:
        if not self.connected:
            raise SyscallError(errno.ENOTCONN)
        return super()._recv_end()


class UnixDgram(UnixMixin, DgramEndpoint):
    """SOCK_DGRAM: records with the sender's name."""

    def connect(self, raw: bytes, ctx: Any, nonblock: bool, cred: tuple[int, int, int]) -> None:
        if len(raw) >= 2 and family_of(raw) == c.AF_UNSPEC:
            with self.cond:
                self.peer = None
            return
        target = NAMES.lookup(raw, ctx, self.stype)
        self._autobind_for_creds()
        if target.peer is not None and target.peer is not self:  # type: ignore[attr-defined]
            raise SyscallError(errno.EPERM)
        with self.cond:
            self.peer = target
            self.peer_cred = target.peer_cred

    def peer_name(self) -> bytes:
        peer = self.peer
        if peer is None:
            raise SyscallError(errno.ENOTCONN)
        return peer.name()

    def _route(self, dest: bytes | None, ctx: Any) -> tuple[DgramEndpoint | None, Any]:
        if dest is not None:
            rcv = NAMES.lookup(dest, ctx, self.stype)
        else:
            rcv = self.peer
            if rcv is None:
                raise SyscallError(errno.ENOTCONN)
        self._autobind_for_creds()
        if rcv.closed:
            if rcv is self.peer:
                self.peer = None
            raise SyscallError(errno.ECONNREFUSED)
        if rcv.peer is not None and rcv.peer is not self:  # type: ignore[attr-defined]
            raise SyscallError(errno.EPERM)
        return rcv, (self.local if self.local.name else None)  # type: ignore[return-value]

    def _deliver(self, rcv: DgramEndpoint, seg: Segment, nonblock: bool,
                 deadline: float | None) -> None:
        while True:
            if rcv.closed:
                raise SyscallError(errno.ECONNREFUSED)
            if rcv.shut & c.RCV_SHUTDOWN:
                raise SyscallError(errno.EPIPE)
            full = (rcv.peer is not self and len(rcv.rq) > c.UNIX_MAX_DGRAM_QLEN
                    or rcv.rq and rcv.rq_bytes + len(seg.data) > self.sndbuf)
            if not full:
                break
            if nonblock:
                raise SyscallError(errno.EAGAIN)
            wait(rcv.cond, deadline)
        super()._deliver(rcv, seg, nonblock, deadline)

    def _writable(self) -> bool:
        rcv = self.peer
        if rcv is None or rcv.peer is self:
            return True
        return len(rcv.rq) <= c.UNIX_MAX_DGRAM_QLEN


UNIX_TYPES: dict[int, type[Endpoint]] = {
    c.SOCK_STREAM: UnixStream, c.SOCK_SEQPACKET: UnixSeqpacket, c.SOCK_DGRAM: UnixDgram,
}


def socketpair(stype: int, cred: tuple[int, int, int]) -> tuple[Endpoint, Endpoint]:
    """socketpair(2): two connected unix sockets (one shared condition for a
    stream pair)."""
    cls = UNIX_TYPES[stype]
    a = cls()
    b = cls(a.cond) if issubclass(cls, StreamEndpoint) else cls()
    for x, y in ((a, b), (b, a)):
        x.peer = y  # type: ignore[attr-defined]
        x.peer_cred = cred
        if isinstance(x, StreamEndpoint):
            x.connected = True
    return a, b
