"""The endpoint interface every socket implementation provides, and what
they share: the receive queue's records, waiting, and SOL_SOCKET options.

A socket file (socketfile.py) holds one endpoint; syscalls/net.py decodes
arguments and calls the endpoint's methods, never asking which family it is.
Unix stream/seqpacket and loopback TCP share stream.py; unix and UDP
datagrams share dgram.py.

Waiting: every endpoint has a condition (``cond``), its waiter queue; a
connected stream pair shares one.  A blocking call waits on it in slices
(WAIT_SLICE) so a signal or kill ends the wait: the task's interrupt check
raises ERESTARTSYS, which a socket with a timeout (SO_RCVTIMEO/SO_SNDTIMEO)
reports as EINTR, as Linux's sock_intr_errno does.  Poll, select and epoll ask
``readiness()``.

Lock order: at most one endpoint condition is held at a time, except that a
connecting stream holds its own while it takes a listener's (never the
reverse).  Descriptions passed by SCM_RIGHTS hold a reference while in flight
(``drop_rights`` gives it back when the message is discarded).

Memory: a receive queue's segments are charged to the Sentry's
kernel-memory account (sentry/kmem.py) as their bytes plus SEG_OVERHEAD each
(``charge_segment``); what a family does when the charge fails is its own
(stream.py, dgram.py: Linux's errno for a failed socket buffer allocation).
"""

from __future__ import annotations

import errno
import struct
import threading
import time
from typing import Any

from sentry import kmem
from sentry.kernel.errors import SyscallError
from sentry.net import consts as c
from sentry.vfs.fdtable import FdTable
from sentry.vfs.file import READINESS, FileDescription, check_interrupt
from shm.records import record

WAIT_SLICE = 0.05
ERESTARTSYS = 512
INT = struct.Struct("<i")
TIMEVAL = struct.Struct("<qq")
SEG_OVERHEAD = 256
"""What a queued segment costs besides its bytes: the Segment (about 100
bytes with its slots), the bytes object's header (33) and the deque's slot,
rounded up as Linux's skb truesize is, so that a queue of one-byte writes is
not nearly free."""
LINGER = struct.Struct("<ii")
UCRED = struct.Struct("<iII")
NO_CRED = (0, 0xFFFFFFFF, 0xFFFFFFFF)  # pid 0, uid/gid -1: no peer

# SOL_SOCKET options stored as plain ints: name -> default.
_INT_OPTS = {
    c.SO_DEBUG: 0, c.SO_REUSEADDR: 0, c.SO_DONTROUTE: 0, c.SO_BROADCAST: 0,
    c.SO_KEEPALIVE: 0, c.SO_OOBINLINE: 0, c.SO_NO_CHECK: 0, c.SO_PRIORITY: 0,
    c.SO_REUSEPORT: 0, c.SO_PASSCRED: 0, c.SO_RCVLOWAT: 1, c.SO_TIMESTAMP: 0,
    c.SO_PASSSEC: 0, c.SO_MARK: 0, c.SO_RXQ_OVFL: 0, c.SO_PEEK_OFF: -1,
    c.SO_BUSY_POLL: 0, c.SO_INCOMING_CPU: -1, c.SO_BSDCOMPAT: 0,
}
_READ_ONLY = frozenset({c.SO_TYPE, c.SO_DOMAIN, c.SO_PROTOCOL, c.SO_ERROR, c.SO_ACCEPTCONN,
                        c.SO_PEERCRED, c.SO_SNDLOWAT, c.SO_COOKIE, c.SO_PEERSEC})


@record(slots=True, eq=False)
class Segment:
    """One send's worth of a receive queue: bytes, passed descriptions and
    credentials, and (datagrams) the sender's address and endpoint."""

    data: bytes
    rights: list[FileDescription] | None = None
    creds: tuple[int, int, int] | None = None
    addr: Any = None
    sender: Any = None
    off: int = 0


@record(slots=True)
class Received:
    """What a recv hands the syscall layer."""

    data: bytes
    size: int  # the datagram's real size (MSG_TRUNC), or len(data)
    addr: Any = None
    rights: list[FileDescription] | None = None
    creds: tuple[int, int, int] | None = None
    flags: int = 0


def drop_rights(rights: list[FileDescription] | None) -> None:
    """Give back the references in-flight descriptions held."""
    for desc in rights or ():
        FdTable._drop(desc)


def notify(cond: threading.Condition) -> None:
    """Wake the endpoint's waiters (cond held) and any task in poll/select/epoll,
    and count the change: edge-triggered epoll reports one event per change
    (``changes``, read by SocketFile.poll_generation). With the lock held no
    waiter can join meanwhile, so an empty waiter list is skipped."""
    cond.changes = getattr(cond, "changes", 0) + 1  # type: ignore[attr-defined]
    if cond._waiters:  # type: ignore[attr-defined]  # notify_all's own walk costs ~2 us
        cond.notify_all()
    READINESS.changed()


def deadline_of(timeout_s: float) -> float | None:
    return time.monotonic() + timeout_s if timeout_s else None


def wait(cond: threading.Condition, deadline: float | None) -> None:
    """One slice of a blocking wait on ``cond`` (held). EAGAIN once the
    deadline passed (a socket timeout); a pending signal raises ERESTARTSYS,
    or EINTR when the wait had a timeout."""
    try:
        check_interrupt()
    except SyscallError as exc:
        if deadline is not None and exc.errno == ERESTARTSYS:
            raise SyscallError(errno.EINTR) from None
        raise
    tick = WAIT_SLICE
    if deadline is not None:
        left = deadline - time.monotonic()
        if left <= 0:
            raise SyscallError(errno.EAGAIN)
        tick = min(tick, left)
    cond.wait(tick)


def _timeval(raw: bytes) -> float:
    if len(raw) < TIMEVAL.size:
        raise SyscallError(errno.EINVAL)
    sec, usec = TIMEVAL.unpack_from(raw)
    if not 0 <= usec < 1_000_000:
        raise SyscallError(errno.EDOM)
    if sec < 0:
        return 0.0
    return sec + usec / 1e6


def _pack_timeval(t: float) -> bytes:
    return TIMEVAL.pack(int(t), round((t % 1) * 1e6))


class Endpoint:
    """A socket's protocol side. Subclasses override what their kind of
    socket supports; the defaults give Linux's errno for the rest."""

    family = c.AF_UNSPEC
    stype = c.SOCK_STREAM
    protocol = 0
    default_rcvbuf = c.RMEM_MAX
    default_sndbuf = c.RMEM_MAX

    def __init__(self, cond: threading.Condition | None = None) -> None:
        self.cond = cond if cond is not None else threading.Condition(threading.Lock())
        self.shut = 0  # RCV_SHUTDOWN | SEND_SHUTDOWN
        self.err = 0  # pending SO_ERROR
        self.rcvbuf = self.default_rcvbuf
        self.sndbuf = self.default_sndbuf
        self.rcvtimeo = 0.0
        self.sndtimeo = 0.0
        self.linger = (0, 0)
        self.opts: dict[int, int] = {}
        self.proto_opts: dict[tuple[int, int], bytes] = {}
        self.peer_cred = NO_CRED
        self.closed = False
        self.kbuf = kmem.Buffer()  # the receive queue's pages in the Sentry's account
        self.rq_cost = 0  # what the receive queue holds: bytes + SEG_OVERHEAD each

    # -- the receive queue's charge (cond held) ----------------------------
    def charge_segment(self, size: int) -> bool:
        """Whether a segment of ``size`` bytes may join the receive queue:
        charged when True; False when the Sentry's account is full."""
        cost = self.rq_cost + size + SEG_OVERHEAD
        if not self.kbuf.fits(cost):
            return False
        self.rq_cost = cost
        return True

    def uncharge_segment(self, size: int) -> None:
        """A segment of ``size`` bytes left the receive queue."""
        self.rq_cost -= size + SEG_OVERHEAD
        self.kbuf.holds(self.rq_cost)

    def uncharge_queue(self) -> None:
        """The receive queue was emptied for good (close)."""
        self.rq_cost = 0
        self.kbuf.release()

    # -- the interface -----------------------------------------------------
    def bind(self, raw: bytes, ctx: Any) -> None:
        raise SyscallError(errno.EOPNOTSUPP)

    def listen(self, backlog: int, cred: tuple[int, int, int]) -> None:
        raise SyscallError(errno.EOPNOTSUPP)

    def accept(self, nonblock: bool) -> Endpoint:
        raise SyscallError(errno.EOPNOTSUPP)

    def connect(self, raw: bytes, ctx: Any, nonblock: bool, cred: tuple[int, int, int]) -> None:
        raise SyscallError(errno.EOPNOTSUPP)

    def shutdown(self, how: int) -> None:
        raise SyscallError(errno.EOPNOTSUPP)

    def send(self, data: bytes, flags: int, nonblock: bool, dest: bytes | None, ctx: Any,
             rights: list[FileDescription] | None, creds: tuple[int, int, int]) -> int:
        raise SyscallError(errno.EOPNOTSUPP)

    def recv(self, count: int, flags: int, nonblock: bool) -> Received:
        raise SyscallError(errno.EOPNOTSUPP)

    def readiness(self) -> int:
        return 0

    def name(self) -> bytes:
        """getsockname's sockaddr."""
        raise SyscallError(errno.EOPNOTSUPP)

    def peer_name(self) -> bytes:
        """getpeername's sockaddr (ENOTCONN when there is no peer)."""
        raise SyscallError(errno.ENOTCONN)

    def nread(self) -> int:
        """FIONREAD / SIOCINQ."""
        return 0

    def release(self) -> None:
        """The last descriptor closed."""
        self.closed = True

    def accepting(self) -> bool:
        return False

    # -- options -----------------------------------------------------------
    def take_error(self) -> int:
        with self.cond:
            err, self.err = self.err, 0
            return err

    def getsockopt(self, level: int, name: int) -> bytes:
        if level != c.SOL_SOCKET:
            return self.proto_getsockopt(level, name)
        fixed = {
            c.SO_TYPE: self.stype, c.SO_DOMAIN: self.family, c.SO_PROTOCOL: self.protocol,
            c.SO_ACCEPTCONN: int(self.accepting()), c.SO_RCVBUF: self.rcvbuf,
            c.SO_SNDBUF: self.sndbuf, c.SO_SNDLOWAT: 1,
        }
        if name in fixed:
            return INT.pack(fixed[name])
        if name == c.SO_ERROR:
            return INT.pack(self.take_error())
        if name in _INT_OPTS:
            return INT.pack(self.opts.get(name, _INT_OPTS[name]))
        if name in (c.SO_RCVTIMEO, c.SO_SNDTIMEO):
            return _pack_timeval(self.rcvtimeo if name == c.SO_RCVTIMEO else self.sndtimeo)
        if name == c.SO_LINGER:
            return LINGER.pack(*self.linger)
        if name == c.SO_PEERCRED:
            return UCRED.pack(*self.peer_cred)
        if name == c.SO_COOKIE:
            return struct.pack("<Q", id(self) & 0xFFFFFFFFFFFF)
        raise SyscallError(errno.ENOPROTOOPT)

    def setsockopt(self, level: int, name: int, raw: bytes) -> None:
        if level != c.SOL_SOCKET:
            self.proto_setsockopt(level, name, raw)
            return
        if name in (c.SO_RCVTIMEO, c.SO_SNDTIMEO):
            t = _timeval(raw)
            if name == c.SO_RCVTIMEO:
                self.rcvtimeo = t
            else:
                self.sndtimeo = t
            return
        if name == c.SO_BINDTODEVICE:
            return
        if len(raw) < INT.size:
            raise SyscallError(errno.EINVAL)
        val = INT.unpack_from(raw)[0]
        if name in (c.SO_RCVBUF, c.SO_RCVBUFFORCE):
            cap = val if name == c.SO_RCVBUFFORCE else min(val & 0x7FFFFFFF, c.RMEM_MAX)
            self.rcvbuf = max(cap * 2, c.SOCK_MIN_RCVBUF)
        elif name in (c.SO_SNDBUF, c.SO_SNDBUFFORCE):
            cap = val if name == c.SO_SNDBUFFORCE else min(val & 0x7FFFFFFF, c.RMEM_MAX)
            self.sndbuf = max(cap * 2, c.SOCK_MIN_SNDBUF)
        elif name == c.SO_LINGER:
            if len(raw) < LINGER.size:
                raise SyscallError(errno.EINVAL)
            on, secs = LINGER.unpack_from(raw)
            self.linger = (1 if on else 0, secs)
        elif name in _INT_OPTS and name not in _READ_ONLY:
            if name in (c.SO_RCVLOWAT,):
                val = max(val, 1)
            elif name not in (c.SO_PRIORITY, c.SO_MARK, c.SO_PEEK_OFF, c.SO_INCOMING_CPU,
                              c.SO_BUSY_POLL):
                val = 1 if val else 0
            self.opts[name] = val
        else:
            raise SyscallError(errno.ENOPROTOOPT)

    def opt(self, name: int) -> int:
        return self.opts.get(name, _INT_OPTS.get(name, 0))

    def proto_getsockopt(self, level: int, name: int) -> bytes:
        raise SyscallError(errno.EOPNOTSUPP)

    def proto_setsockopt(self, level: int, name: int, raw: bytes) -> None:
        raise SyscallError(errno.EOPNOTSUPP)

    def inherit(self, parent: Endpoint) -> None:
        """An accepted socket starts with its listener's options, as Linux's
        sk_clone_lock copies them."""
        self.rcvbuf, self.sndbuf = parent.rcvbuf, parent.sndbuf
        self.rcvtimeo, self.sndtimeo = parent.rcvtimeo, parent.sndtimeo
        self.linger = parent.linger
        self.opts = dict(parent.opts)
        self.proto_opts = dict(parent.proto_opts)
