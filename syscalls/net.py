"""Socket syscalls: socket, socketpair, bind, listen, accept/accept4,
connect, shutdown, getsockname/getpeername, get/setsockopt, sendto/recvfrom,
sendmsg/recvmsg, sendmmsg/recvmmsg.

Thin: each handler decodes its arguments and calls the socket's endpoint
(sentry/net); read/write/readv/writev/close/poll reach sockets through the
ordinary file paths (sentry/net/socketfile.py). Families: AF_UNIX,
AF_INET/AF_INET6 on loopback (or host sockets under --network=host:
sentry/net/hostinet.py), AF_NETLINK (NETLINK_ROUTE and NETLINK_SOCK_DIAG, answered by the
Sentry: sentry/net/netlink.py); the rest are EAFNOSUPPORT.
"""

from __future__ import annotations

import errno
import struct
from collections.abc import Callable
from typing import TYPE_CHECKING

from sentry.kernel import parking
from sentry.kernel.creds import CAP_NET_ADMIN, CAP_NET_BIND_SERVICE
from sentry.kernel.errors import SyscallError
from sentry.kernel.signals import SIGPIPE, SigInfo
from sentry.kernel.task import current_task
from sentry.net import consts as c
from sentry.net import unix_gc
from sentry.net.addr import SOCKADDR_MAX
from sentry.net.endpoint import Endpoint, Received, drop_rights
from sentry.net.hostinet import HostEndpoint, host_endpoint
from sentry.net.inet import TcpEndpoint, UdpEndpoint
from sentry.net.netlink import netlink_endpoint
from sentry.net.netstack import endpoints as netstack_endpoints
from sentry.net.socketfile import SocketFile
from sentry.net.unix import UNIX_TYPES
from sentry.net.unix import socketpair as unix_socketpair
from sentry.procfs import net as proc_net
from sentry.vfs.description import PathDescription
from syscalls.abi import MAX_RW_COUNT, s32
from syscalls.net_msg import MMSGHDR_SIZE, MSGHDR, MsgHdr, build_control, parse_control
from syscalls.path import ctx_of
from syscalls.pieces import PIECE, takes_pieces, write_pieces
from syscalls.table import Entry, partial, supported

if TYPE_CHECKING:
    from sentry.kernel.task import Task

Args = tuple[int, ...]
SOCK_MAX = 11
I32 = struct.Struct("<i")
U32 = struct.Struct("<I")


# --- helpers ------------------------------------------------------------------

def _sock(t: Task, fd: int) -> SocketFile:
    f = t.fds.get(s32(fd))
    if isinstance(f, PathDescription):  # fdget() refuses O_PATH descriptors
        raise SyscallError(errno.EBADF)
    if not isinstance(f, SocketFile):
        raise SyscallError(errno.ENOTSOCK)
    return f


def _peer_cred(t: Task) -> tuple[int, int, int]:
    """SO_PEERCRED's view of the caller (effective ids, as Linux's cred)."""
    return (t.pid, t.creds.euid, t.creds.egid)


def _scm_cred(t: Task) -> tuple[int, int, int]:
    """SCM_CREDENTIALS' default: the sender's pid and real ids."""
    return (t.pid, t.creds.uid, t.creds.gid)


def _caller_creds() -> tuple[int, int, int]:
    t = current_task()
    return (0, 0, 0) if t is None else _scm_cred(t)


SocketFile.caller_creds = staticmethod(_caller_creds)  # type: ignore[assignment]


def _sockaddr_in(t: Task, addr: int, addrlen: int) -> bytes:
    """A sockaddr argument (move_addr_to_kernel): EINVAL beyond 128 bytes."""
    n = s32(addrlen)
    if n < 0 or n > SOCKADDR_MAX:
        raise SyscallError(errno.EINVAL)
    return t.mm.copy_in(addr, n) if n else b""


def _read_len(t: Task, lenp: int) -> int:
    n = I32.unpack(t.mm.copy_in(lenp, 4))[0]
    if n < 0:
        raise SyscallError(errno.EINVAL)
    return n


def _sockaddr_out(t: Task, addr: int, lenp: int, raw: bytes | None,
                  optional: bool = True) -> None:
    """Copy a sockaddr to the caller, cut to its buffer; the length word gets
    the full size (0 when there is no address). A NULL buffer or length is
    "no address wanted" for accept and recvfrom (``optional``); getsockname
    and getpeername write through them (EFAULT)."""
    if optional and (not addr or not lenp):
        return
    room = _read_len(t, lenp)
    raw = raw or b""
    if raw and room:
        t.mm.copy_out(addr, raw[:room])
    t.mm.copy_out(lenp, I32.pack(len(raw)))


def _sigpipe(t: Task, flags: int, exc: SyscallError) -> None:
    if exc.errno == errno.EPIPE and not flags & c.MSG_NOSIGNAL:
        t.kernel.send_task(t, SigInfo(SIGPIPE, pid=t.pid, uid=t.creds.uid))


def _packed_addr(ep: Endpoint, got: Received) -> bytes | None:
    if got.addr is None:
        return None
    if ep.family == c.AF_UNIX:
        return got.addr.pack()
    return got.addr.pack(ep.family)


# --- creating -----------------------------------------------------------------

def _netlink_caller() -> tuple[int, bool, int]:
    """The calling task's thread group id, CAP_NET_ADMIN and uid, for netlink."""
    t = current_task()
    if t is None:
        return (0, False, 0)
    return (t.pid, t.creds.capable(CAP_NET_ADMIN), t.creds.uid)


def _new_endpoint(domain: int, stype: int, protocol: int, t: Task | None = None) -> Endpoint:
    if domain == c.AF_NETLINK and t is not None:
        k = t.kernel
        return netlink_endpoint(stype, protocol, k.netconfig, _netlink_caller,
                                lambda: proc_net.sockets(k))
    if domain in (c.AF_INET, c.AF_INET6) and t is not None and t.kernel.netconfig.mode == "host":
        return host_endpoint(domain, stype, protocol)  # --network=host: host sockets
    if domain == c.AF_UNIX:
        if protocol not in (0, c.AF_UNIX):
            raise SyscallError(errno.EPROTONOSUPPORT)
        if stype == c.SOCK_RAW:
            stype = c.SOCK_DGRAM
        cls = UNIX_TYPES.get(stype)
        if cls is None:
            raise SyscallError(errno.ESOCKTNOSUPPORT)
        return cls()
    if domain in (c.AF_INET, c.AF_INET6):
        if stype == c.SOCK_STREAM:
            if protocol not in (0, c.IPPROTO_TCP):
                raise SyscallError(errno.EPROTONOSUPPORT)
            return netstack_endpoints.tcp_class(TcpEndpoint)(domain)
        if stype == c.SOCK_DGRAM:
            if protocol not in (0, c.IPPROTO_UDP):
                raise SyscallError(errno.EPROTONOSUPPORT)
            return netstack_endpoints.udp_class(UdpEndpoint)(domain)
        if stype == c.SOCK_RAW:
            raise SyscallError(errno.EPROTONOSUPPORT)
        raise SyscallError(errno.ESOCKTNOSUPPORT)
    raise SyscallError(errno.EAFNOSUPPORT)


def _split_type(raw: int) -> tuple[int, int]:
    flags = raw & ~c.SOCK_TYPE_MASK
    if flags & ~(c.SOCK_NONBLOCK | c.SOCK_CLOEXEC):
        raise SyscallError(errno.EINVAL)
    stype = raw & c.SOCK_TYPE_MASK
    if stype >= SOCK_MAX:
        raise SyscallError(errno.EINVAL)
    return stype, flags


def socket(t: Task, a: Args) -> int:
    """socket(2)."""
    domain, protocol = s32(a[0]), s32(a[2])
    stype, flags = _split_type(a[1] & 0xFFFFFFFF)
    if not 0 <= domain < 46:
        raise SyscallError(errno.EAFNOSUPPORT)
    ep = _new_endpoint(domain, stype, protocol, t)
    f = SocketFile(ep, nonblock=bool(flags & c.SOCK_NONBLOCK))
    try:
        return t.fds.install(f, cloexec=bool(flags & c.SOCK_CLOEXEC))
    except SyscallError:
        f.release()
        raise


def socketpair(t: Task, a: Args) -> int:
    """socketpair(2): AF_UNIX only (EOPNOTSUPP for inet, as Linux)."""
    domain, protocol = s32(a[0]), s32(a[2])
    stype, flags = _split_type(a[1] & 0xFFFFFFFF)
    ep = _new_endpoint(domain, stype, protocol, t)  # the errno socket(2) would give
    if domain != c.AF_UNIX:
        if isinstance(ep, HostEndpoint):
            ep.release()
        raise SyscallError(errno.EOPNOTSUPP)
    if stype == c.SOCK_RAW:
        stype = c.SOCK_DGRAM
    x, y = unix_socketpair(stype, _peer_cred(t))
    nb = bool(flags & c.SOCK_NONBLOCK)
    fx, fy = SocketFile(x, nb), SocketFile(y, nb)
    cloexec = bool(flags & c.SOCK_CLOEXEC)
    fds: list[int] = []
    try:
        fds.append(t.fds.install(fx, cloexec=cloexec))
        fds.append(t.fds.install(fy, cloexec=cloexec))
        t.mm.copy_out(a[3], struct.pack("<ii", *fds))
    except SyscallError:
        for fd in fds:
            t.fds.close(fd)
        for f in (fx, fy)[len(fds):]:
            f.release()
        raise
    return 0


# --- naming and connecting ----------------------------------------------------

# net.ipv4.ip_unprivileged_port_start's default: lower ports need
# CAP_NET_BIND_SERVICE.
UNPRIVILEGED_PORT_START = 1024


def _check_port_privilege(t: Task, ep: Endpoint, raw: bytes) -> None:
    """inet_bind()'s EACCES: a port below 1024 for a caller without
    CAP_NET_BIND_SERVICE (the host never sees the bind to refuse it: the
    Sentry binds for the sandbox)."""
    if ep.family not in (c.AF_INET, c.AF_INET6) or len(raw) < 4:
        return
    if int.from_bytes(raw[:2], "little") != ep.family:
        return  # the endpoint's own EAFNOSUPPORT/EINVAL
    port = int.from_bytes(raw[2:4], "big")
    if 0 < port < UNPRIVILEGED_PORT_START and not t.creds.capable(CAP_NET_BIND_SERVICE):
        raise SyscallError(errno.EACCES)


def bind(t: Task, a: Args) -> int:
    """bind(2)."""
    f = _sock(t, a[0])
    raw = _sockaddr_in(t, a[1], a[2])
    _check_port_privilege(t, f.endpoint, raw)
    f.endpoint.bind(raw, ctx_of(t))
    return 0


def listen(t: Task, a: Args) -> int:
    """listen(2): a negative or huge backlog means SOMAXCONN."""
    _sock(t, a[0]).endpoint.listen(s32(a[1]), _peer_cred(t))
    return 0


def accept4(t: Task, a: Args) -> int:
    """accept4(2)."""
    f = _sock(t, a[0])
    flags = a[3] & 0xFFFFFFFF
    if flags & ~(c.SOCK_NONBLOCK | c.SOCK_CLOEXEC):
        raise SyscallError(errno.EINVAL)
    if a[1] and a[2]:
        _read_len(t, a[2])
    child = f.endpoint.accept(f.nonblock)
    nf = SocketFile(child, nonblock=bool(flags & c.SOCK_NONBLOCK))
    try:
        fd = t.fds.install(nf, cloexec=bool(flags & c.SOCK_CLOEXEC))
    except SyscallError:
        nf.release()
        raise
    try:
        if a[1]:
            try:
                name = child.peer_name()
            except SyscallError:
                name = None
            _sockaddr_out(t, a[1], a[2], name)
    except SyscallError:
        t.fds.close(fd)
        raise
    return fd


def accept(t: Task, a: Args) -> int:
    """accept(2)."""
    return accept4(t, (a[0], a[1], a[2], 0, 0, 0))


def connect(t: Task, a: Args) -> int:
    """connect(2)."""
    f = _sock(t, a[0])
    raw = _sockaddr_in(t, a[1], a[2])
    if len(raw) < 2:
        raise SyscallError(errno.EINVAL)
    f.endpoint.connect(raw, ctx_of(t), f.nonblock, _peer_cred(t))
    return 0


def shutdown(t: Task, a: Args) -> int:
    """shutdown(2)."""
    _sock(t, a[0]).endpoint.shutdown(s32(a[1]))
    return 0


def getsockname(t: Task, a: Args) -> int:
    """getsockname(2)."""
    f = _sock(t, a[0])
    _read_len(t, a[2])
    _sockaddr_out(t, a[1], a[2], f.endpoint.name(), optional=False)
    return 0


def getpeername(t: Task, a: Args) -> int:
    """getpeername(2)."""
    f = _sock(t, a[0])
    _read_len(t, a[2])
    _sockaddr_out(t, a[1], a[2], f.endpoint.peer_name(), optional=False)
    return 0


# --- options ------------------------------------------------------------------

def getsockopt(t: Task, a: Args) -> int:
    """getsockopt(2): the value cut to the caller's length."""
    f = _sock(t, a[0])
    room = _read_len(t, a[4])
    val = f.endpoint.getsockopt(s32(a[1]), s32(a[2]))
    n = min(room, len(val))
    if n:
        t.mm.copy_out(a[3], val[:n])
    t.mm.copy_out(a[4], I32.pack(n))
    return 0


def setsockopt(t: Task, a: Args) -> int:
    """setsockopt(2)."""
    f = _sock(t, a[0])
    n = s32(a[4])
    if n < 0:
        raise SyscallError(errno.EINVAL)
    raw = t.mm.copy_in(a[3], min(n, 1024)) if n else b""
    f.endpoint.setsockopt(s32(a[1]), s32(a[2]), raw)
    return 0


# --- data ---------------------------------------------------------------------

MSG_ERRQUEUE = 0x2000

def _check_flags(ep: Endpoint, flags: int, recv: bool) -> None:
    """MSG_OOB: unix datagram/seqpacket sockets have no urgent data, nor does
    UDP (a send is EOPNOTSUPP, as BSD); a stream has none queued here (a read
    is EINVAL, a write sends the byte inline). MSG_ERRQUEUE on an inet
    socket reads its error queue, which nothing here fills: EAGAIN."""
    inet = ep.family in (c.AF_INET, c.AF_INET6)
    if recv and flags & MSG_ERRQUEUE and inet:
        raise SyscallError(errno.EAGAIN)
    if flags & c.MSG_OOB:
        if ep.family == c.AF_UNIX and ep.stype != c.SOCK_STREAM:
            raise SyscallError(errno.EOPNOTSUPP)
        if not recv and inet and ep.stype == c.SOCK_DGRAM:
            raise SyscallError(errno.EOPNOTSUPP)
        if recv and ep.stype == c.SOCK_STREAM:
            raise SyscallError(errno.EINVAL)


def _send(t: Task, f: SocketFile, data: bytes, flags: int, dest: bytes | None,
          msg: MsgHdr | None) -> int:
    ep = f.endpoint
    _check_flags(ep, flags, False)
    rights, creds = (None, None)
    if msg is not None:
        rights, creds = parse_control(t, msg, ep.family == c.AF_UNIX)
    nonblock = f.nonblock or bool(flags & c.MSG_DONTWAIT)
    try:
        ctx = ctx_of(t) if dest is not None and ep.family == c.AF_UNIX else None
    except SyscallError:
        drop_rights(rights)
        raise
    try:
        return ep.send(data, flags, nonblock, dest, ctx, rights, creds or _scm_cred(t))
    except SyscallError as exc:
        _sigpipe(t, flags, exc)
        raise
    finally:
        if rights:
            unix_gc.sent_rights()  # cycles of sockets in flight (sentry/net/unix_gc.py)


def sendto(t: Task, a: Args) -> int:
    """sendto(2) (and send(2), which libc makes a sendto)."""
    f = _sock(t, a[0])
    flags = a[3] & 0xFFFFFFFF
    dest = _sockaddr_in(t, a[4], a[5]) if a[4] else None
    count = min(a[2], MAX_RW_COUNT)
    if count > PIECE and takes_pieces(f) and not flags & c.MSG_OOB:  # OOB: the last byte
        return write_pieces(t, [(a[1], count)], count,  # SIGPIPE only if nothing went
                            lambda d, done: _send(t, f, d, flags | (c.MSG_NOSIGNAL if done else 0),
                                                  dest or None, None))
    data = t.mm.copy_in(a[1], count) if count else b""
    return _send(t, f, data, flags, dest or None, None)


def _recv(t: Task, f: SocketFile, count: int, flags: int) -> Received:
    _check_flags(f.endpoint, flags, True)
    nonblock = f.nonblock or bool(flags & c.MSG_DONTWAIT)
    return f.endpoint.recv(count, flags, nonblock)


def recvfrom(t: Task, a: Args) -> int:
    """recvfrom(2) (and recv(2))."""
    f = _sock(t, a[0])
    flags = a[3] & 0xFFFFFFFF
    count = min(a[2], MAX_RW_COUNT)
    if not flags and not a[4] and count and parking.can_park(t):
        return f.read_into(t, a[1], count)  # recv(2): may be finished by the writer
    got = _recv(t, f, count, flags)
    drop_rights(got.rights)
    if got.data:
        t.mm.copy_out(a[1], got.data)
    if a[4]:
        _sockaddr_out(t, a[4], a[5], _packed_addr(f.endpoint, got))
    return got.size


def _sendmsg(t: Task, f: SocketFile, addr: int, flags: int) -> int:
    msg = MsgHdr(t, addr)
    return _send(t, f, msg.gather(t), flags, msg.dest(t), msg)


def _recvmsg(t: Task, f: SocketFile, addr: int, flags: int) -> int:
    msg = MsgHdr(t, addr)
    if msg.namelen > 0x7FFFFFFF:
        raise SyscallError(errno.EINVAL)
    got = _recv(t, f, msg.total(), flags)
    try:
        msg.scatter(t, got.data)
    except SyscallError:
        drop_rights(got.rights)
        raise
    ep = f.endpoint
    passcred = ep.family == c.AF_UNIX and bool(ep.opt(c.SO_PASSCRED))
    control, cflags = build_control(t, msg, got, passcred, bool(flags & c.MSG_CMSG_CLOEXEC))
    if control:
        t.mm.copy_out(msg.control, control)
    name = _packed_addr(ep, got) if msg.name else None
    namelen = 0
    if name:
        namelen = len(name)
        t.mm.copy_out(msg.name, name[:msg.namelen & 0x7FFFFFFF])
    out_flags = got.flags | cflags | (flags & c.MSG_CMSG_CLOEXEC)
    head = MSGHDR.pack(msg.name, namelen, 0, 0, msg.control, len(control), out_flags)
    t.mm.copy_out(addr + 8, head[8:12])  # msg_namelen
    t.mm.copy_out(addr + 40, head[40:52])  # msg_controllen, msg_flags
    return got.size


def sendmsg(t: Task, a: Args) -> int:
    """sendmsg(2)."""
    return _sendmsg(t, _sock(t, a[0]), a[1], a[2] & 0xFFFFFFFF)


def recvmsg(t: Task, a: Args) -> int:
    """recvmsg(2)."""
    return _recvmsg(t, _sock(t, a[0]), a[1], a[2] & 0xFFFFFFFF)


def _batch(t: Task, f: SocketFile, a: Args, one: Callable[[Task, SocketFile, int, int], int],
           after_first: int = 0) -> int:
    """sendmmsg/recvmmsg: ``one`` per mmsghdr (each msg_len written back); an
    error after the first message ends the batch early with the count so far.
    ``after_first`` is OR'ed into the flags once a message went through."""
    vlen = min(a[2] & 0xFFFFFFFF, 1024)
    flags = a[3] & 0xFFFFFFFF
    done = 0
    while done < vlen:
        at = a[1] + done * MMSGHDR_SIZE
        try:
            n = one(t, f, at, flags)
            t.mm.copy_out(at + MSGHDR.size, U32.pack(n))
        except SyscallError:
            if done:
                return done
            raise
        done += 1
        flags |= after_first
    return done


def sendmmsg(t: Task, a: Args) -> int:
    """sendmmsg(2): an error after the first message ends the batch early."""
    return _batch(t, _sock(t, a[0]), a, _sendmsg)


def recvmmsg(t: Task, a: Args) -> int:
    """recvmmsg(2): MSG_WAITFORONE turns on MSG_DONTWAIT after the first."""
    f = _sock(t, a[0])
    if a[4]:
        sec, nsec = struct.unpack("<qq", t.mm.copy_in(a[4], 16))
        if sec < 0 or not 0 <= nsec < 1_000_000_000:
            raise SyscallError(errno.EINVAL)
    wait_once = c.MSG_DONTWAIT if a[3] & c.MSG_WAITFORONE else 0
    return _batch(t, f, a, _recvmsg, wait_once)


ENTRIES: list[Entry] = [
    partial("socket", socket, note="AF_UNIX; AF_INET/AF_INET6 loopback only (network none); "
            "AF_NETLINK NETLINK_ROUTE (read-only), NETLINK_SOCK_DIAG"),
    supported("socketpair", socketpair),
    supported("bind", bind),
    supported("listen", listen),
    supported("accept", accept),
    supported("accept4", accept4),
    partial("connect", connect, note="AF_INET/AF_INET6 reach loopback only; else ENETUNREACH"),
    supported("shutdown", shutdown),
    supported("getsockname", getsockname),
    supported("getpeername", getpeername),
    partial("getsockopt", getsockopt, note="options stored; no TCP_INFO counters"),
    partial("setsockopt", setsockopt, note="buffer sizes, TCP tuning and multicast "
            "memberships are recorded only"),
    supported("sendto", sendto),
    supported("recvfrom", recvfrom),
    partial("sendmsg", sendmsg, note="SCM_RIGHTS and SCM_CREDENTIALS (AF_UNIX)"),
    partial("recvmsg", recvmsg, note="MSG_ERRQUEUE: the queue is always empty; "
            "SCM_RIGHTS/SCM_CREDENTIALS only"),
    supported("sendmmsg", sendmmsg),
    partial("recvmmsg", recvmmsg, note="the timeout is checked, not enforced between messages"),
]
