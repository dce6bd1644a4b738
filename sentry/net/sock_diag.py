"""NETLINK_SOCK_DIAG answered from the Sentry's own socket tables: inet_diag
(TCP, UDP) and unix_diag dumps and single-socket lookups, so iproute2's
``ss`` gets what it asks Linux for (and never falls back to /proc/net with
a "Cannot open netlink socket" on stderr). Nothing reaches the host.

Facts from Linux (net/core/sock_diag.c, net/ipv4/inet_diag.c, tcp_diag.c,
udp_diag.c, net/unix/diag.c; sock_diag(7)) this keeps:

* Types: SOCK_DIAG_BY_FAMILY (20) for every family; the old TCPDIAG_GETSOCK
  (18) with struct inet_diag_req (TCP, both families; replies of type 18);
  SOCK_DESTROY (21) ENOENT for no such socket, else EOPNOTSUPP; other
  types (DCCPDIAG_GETSOCK too, as Linux 6) EINVAL. A request shorter than
  its family's struct, or a family >= AF_MAX, is EINVAL; a family with no
  handler ENOENT. An inet protocol other than TCP and UDP dumps nothing
  (the sandbox has no raw or UDP-Lite sockets) and finds nothing (ENOENT).
  AF_PACKET dumps nothing; AF_NETLINK lists the kernel's socket of each
  protocol served here (port 0, inode 0), then the bound netlink sockets.
* inet: listeners only when the states ask for LISTEN, with the accept
  queue's length as rqueue and the backlog as wqueue; connections (and the
  ones not accepted yet, inode 0) when the states ask for theirs; a socket
  only bound is not hashed and not listed. A non-zero sport/dport in the
  request filters. Bytecode filters (INET_DIAG_REQ_BYTECODE) are not run:
  ss applies its filter itself as well. Attributes: INET_DIAG_SHUTDOWN
  always, INET_DIAG_SKV6ONLY for IPv6 listeners and closed sockets,
  INET_DIAG_SOCKOPT always, memory info when ``idiag_ext`` asks.
* unix: every socket with a file (embryos in an accept queue have none and
  are not listed, as since Linux 5.18); states filter; NAME (with the
  path's NUL, or the abstract name), VFS, PEER (only with a peer), ICONS
  (listeners: the connecting sockets' inodes), RQLEN (listener: queue
  length and backlog; else bytes queued, or the next datagram's size),
  MEMINFO and UID as ``udiag_show`` asks; UNIX_DIAG_SHUTDOWN always.
  An exact lookup by inode 0 is EINVAL, an unknown inode ENOENT, a cookie
  that does not match ESTALE.
"""

from __future__ import annotations

import errno
import struct
from collections.abc import Callable, Iterator
from typing import Any

from sentry.net import consts as c
from sentry.net.netlink_msg import Answer, Request, attr, attr_u8, attr_u32

TCPDIAG_GETSOCK, DCCPDIAG_GETSOCK, SOCK_DIAG_BY_FAMILY, SOCK_DESTROY = 18, 19, 20, 21
AF_MAX = 46
NOCOOKIE = 0xFFFFFFFF

SOCKID = struct.Struct("!HH16s16s")  # sport, dport, src, dst (then if, cookie)
REQ_V2 = struct.Struct("<BBBxI48s")  # family, protocol, ext, states, sockid
REQ_OLD = struct.Struct("<BBBB48sII")  # family, src_len, dst_len, ext, sockid, states, dbs
INET_MSG = struct.Struct("<BBBB48sIIIII")  # family, state, timer, retrans, id, expires,
#                                            rqueue, wqueue, uid, inode
UNIX_REQ = struct.Struct("<BBxxIIIII")  # family, protocol, states, ino, show, cookie[2]
UNIX_MSG = struct.Struct("<BBBxIII")  # family, type, state, ino, cookie[2]

INET_DIAG_MEMINFO, INET_DIAG_SKMEMINFO, INET_DIAG_SHUTDOWN = 1, 7, 8
INET_DIAG_SKV6ONLY, INET_DIAG_SOCKOPT = 11, 22
UDIAG_SHOW_NAME, UDIAG_SHOW_VFS, UDIAG_SHOW_PEER, UDIAG_SHOW_ICONS = 0x1, 0x2, 0x4, 0x8
UDIAG_SHOW_RQLEN, UDIAG_SHOW_MEMINFO, UDIAG_SHOW_UID = 0x10, 0x20, 0x40
UNIX_DIAG_NAME, UNIX_DIAG_VFS, UNIX_DIAG_PEER, UNIX_DIAG_ICONS = 0, 1, 2, 3
UNIX_DIAG_RQLEN, UNIX_DIAG_MEMINFO, UNIX_DIAG_SHUTDOWN, UNIX_DIAG_UID = 4, 5, 6, 7
SK_MEMINFO_VARS = 9
NL_REQ = struct.Struct("<BBxxIIII")  # family, protocol, ino, show, cookie[2]
NL_MSG = struct.Struct("<BBBBIIIIII")  # family, type, protocol, state, portid, dst_portid,
#                                        dst_group, ino, cookie[2]
NDIAG_PROTO_ALL, NDIAG_SHOW_GROUPS, NETLINK_DIAG_GROUPS = 255, 0x2, 1
KERNEL_SIDES = (0, 4)  # NETLINK_ROUTE, NETLINK_SOCK_DIAG: the protocols answered here

TCP_ESTABLISHED, TCP_SYN_SENT, TCP_CLOSE, TCP_CLOSE_WAIT, TCP_LISTEN = 1, 2, 7, 8, 10
IPPROTO_UDPLITE, IPPROTO_RAW = 136, 255

# One socket as the tables give it: its file's inode (0: no file yet),
# the owner's uid, the endpoint.
Row = tuple[int, int, Any]
Sockets = Callable[[], list[tuple[Any, int]]]


def cookie_of(ep: Any) -> int:
    """The socket's cookie: the value SO_COOKIE gives (endpoint.py)."""
    return id(ep) & 0xFFFFFFFFFFFF


def _cookie_matches(want: tuple[int, int], ep: Any) -> bool:
    """sock_diag_check_cookie: NOCOOKIE in both words matches anything."""
    if want == (NOCOOKIE, NOCOOKIE):
        return True
    cookie = cookie_of(ep)
    return want == (cookie & 0xFFFFFFFF, cookie >> 32)


# -- inet ------------------------------------------------------------------------

def _tcp_state(ep: Any) -> int | None:
    """A TCP endpoint's state as Linux hashes it; None when not hashed."""
    if getattr(ep, "listening", False):
        return TCP_LISTEN
    if getattr(ep, "connecting", False):
        return TCP_SYN_SENT
    if getattr(ep, "connected", False) and not getattr(ep, "reset", False):
        return TCP_CLOSE_WAIT if getattr(ep, "fin", False) else TCP_ESTABLISHED
    return None


def _inet_rows(rows: list[Row], family: int, proto: int) -> Iterator[tuple[Row, int]]:
    """(row, state) of the hashed sockets of ``family``/``proto``: TCP
    listeners first, then connections (accepted ones and queued ones)."""
    listeners, conns = [], []
    for ino, uid, ep in rows:
        if ep.family != family or getattr(ep, "proto", None) != proto:
            continue
        if proto == c.IPPROTO_UDP:
            if getattr(ep, "bound", False):
                state = TCP_ESTABLISHED if getattr(ep, "peer", None) is not None else TCP_CLOSE
                conns.append(((ino, uid, ep), state))
            continue
        state = _tcp_state(ep)
        if state is None:
            continue
        if state == TCP_LISTEN:
            listeners.append(((ino, uid, ep), state))
            conns.extend(((0, uid, q), TCP_ESTABLISHED) for q in list(ep.acceptq))
        else:
            conns.append(((ino, uid, ep), state))
    yield from listeners
    yield from conns


def _ip(addr: Any, family: int) -> bytes:
    if addr is None:
        return bytes(16)
    return addr.ip[12:] + bytes(12) if family == c.AF_INET else addr.ip


def _inet_msg(row: Row, state: int, family: int, ext: int) -> bytes:
    ino, uid, ep = row
    remote = getattr(ep, "remote", None) if ep.proto == c.IPPROTO_TCP else getattr(ep, "peer",
                                                                                  None)
    cookie = cookie_of(ep)
    sockid = SOCKID.pack(ep.local.port, remote.port if remote is not None else 0,
                         _ip(ep.local, family), _ip(remote, family))
    sockid += struct.pack("<III", 0, cookie & 0xFFFFFFFF, cookie >> 32)
    if state == TCP_LISTEN:
        rq, wq = len(ep.acceptq), ep.backlog
    elif ep.proto == c.IPPROTO_UDP:
        rq, wq = getattr(ep, "rq_bytes", 0), 0
    else:
        rq, wq = ep.nread(), 0
    body = INET_MSG.pack(family, state, 0, 0, sockid, 0, rq, wq, uid, ino)
    if ext & (1 << (INET_DIAG_MEMINFO - 1)):
        body += attr(INET_DIAG_MEMINFO, struct.pack("<IIII", rq, 0, wq, 0))
    if ext & (1 << (INET_DIAG_SKMEMINFO - 1)):
        body += attr(INET_DIAG_SKMEMINFO, _meminfo(ep, rq))
    body += attr_u8(INET_DIAG_SHUTDOWN, ep.shut)
    if family == c.AF_INET6 and state in (TCP_LISTEN, TCP_CLOSE):
        body += attr_u8(INET_DIAG_SKV6ONLY, 1 if ep.v6only else 0)
    body += attr(INET_DIAG_SOCKOPT, bytes(2))
    return body


def _meminfo(ep: Any, rmem: int) -> bytes:
    """sk_meminfo: rmem_alloc, rcvbuf, wmem_alloc, sndbuf, fwd_alloc,
    wmem_queued, optmem, backlog, drops."""
    return struct.pack(f"<{SK_MEMINFO_VARS}I", rmem, ep.rcvbuf, 0, ep.sndbuf, 0, 0, 0, 0, 0)


def _inet(rows: list[Row], family: int, proto: int, ext: int, states: int, sockid: bytes,
          dump: bool, kind: int = SOCK_DIAG_BY_FAMILY) -> Answer:
    """One inet_diag request, v2 or old, after its header was checked; the
    replies carry the request's type. A protocol with no sockets or no
    handler dumps nothing and finds nothing."""
    if proto not in (c.IPPROTO_TCP, c.IPPROTO_UDP):
        return Answer(messages=[], dump=True) if dump else Answer(errno.ENOENT)
    sport, dport, src, dst = SOCKID.unpack_from(sockid)
    ifindex, ck0, ck1 = struct.unpack_from("<III", sockid, SOCKID.size)
    fams = (family,) if family in (c.AF_INET, c.AF_INET6) else (c.AF_INET, c.AF_INET6)
    if dump:
        out = []
        for fam in fams:
            for row, state in _inet_rows(rows, fam, proto):
                ep = row[2]
                remote = getattr(ep, "remote", None) or getattr(ep, "peer", None)
                if not states & (1 << state) or (sport and sport != ep.local.port):
                    continue
                if dport and state != TCP_LISTEN and (remote is None or remote.port != dport):
                    continue
                out.append((kind, _inet_msg(row, state, fam, ext)))
        return Answer(messages=out, dump=True)
    if family not in (c.AF_INET, c.AF_INET6):
        return Answer(errno.EINVAL)
    size = 4 if family == c.AF_INET else 16
    for row, state in _inet_rows(rows, family, proto):
        ep = row[2]
        remote = getattr(ep, "remote", None) or getattr(ep, "peer", None)
        if (ep.local.port, _ip(ep.local, family)[:size]) != (sport, src[:size]):
            continue
        if (remote.port if remote else 0, _ip(remote, family)[:size]) != (dport, dst[:size]):
            continue
        if not _cookie_matches((ck0, ck1), ep):
            return Answer(errno.ESTALE)
        if kind == SOCK_DESTROY:
            return Answer(errno.EOPNOTSUPP)  # sockets are not killed from outside here
        return Answer(messages=[(kind, _inet_msg(row, state, family, ext))])
    return Answer(errno.ENOENT)


# -- unix ------------------------------------------------------------------------

def _unix_state(ep: Any, targets: set[int]) -> int:
    if ep.stype == c.SOCK_DGRAM:
        connected = getattr(ep, "peer", None) is not None or id(ep) in targets
        return TCP_ESTABLISHED if connected else TCP_CLOSE
    if getattr(ep, "listening", False):
        return TCP_LISTEN
    return TCP_ESTABLISHED if getattr(ep, "connected", False) else TCP_CLOSE


def _unix_msg(row: Row, inos: dict[int, int], show: int, targets: set[int]) -> bytes:
    ino, uid, ep = row
    state = _unix_state(ep, targets)
    cookie = cookie_of(ep)
    body = UNIX_MSG.pack(c.AF_UNIX, ep.stype, state, ino, cookie & 0xFFFFFFFF, cookie >> 32)
    name = ep.local.name
    if show & UDIAG_SHOW_NAME and name:
        body += attr(UNIX_DIAG_NAME, name if name[:1] == b"\0" else name + b"\0")
    if show & UDIAG_SHOW_VFS and ep.inode_key is not None:
        dev, vino = ep.inode_key
        body += attr(UNIX_DIAG_VFS, struct.pack("<II", vino & 0xFFFFFFFF, dev & 0xFFFFFFFF))
    peer = getattr(ep, "peer", None)
    if show & UDIAG_SHOW_PEER and peer is not None:
        body += attr_u32(UNIX_DIAG_PEER, inos.get(id(peer), 0))
    if show & UDIAG_SHOW_ICONS and state == TCP_LISTEN:
        icons = [inos.get(id(q.peer), 0) for q in list(ep.acceptq)]
        body += attr(UNIX_DIAG_ICONS, struct.pack(f"<{len(icons)}I", *icons))
    rq = len(ep.acceptq) if state == TCP_LISTEN else ep.nread()
    if show & UDIAG_SHOW_RQLEN:
        wq = ep.backlog if state == TCP_LISTEN else 0
        body += attr(UNIX_DIAG_RQLEN, struct.pack("<II", rq, wq))
    if show & UDIAG_SHOW_MEMINFO:
        body += attr(UNIX_DIAG_MEMINFO, _meminfo(ep, 0 if state == TCP_LISTEN else rq))
    body += attr_u8(UNIX_DIAG_SHUTDOWN, ep.shut)
    if show & UDIAG_SHOW_UID:
        body += attr_u32(UNIX_DIAG_UID, uid)
    return body


def _unix(rows: list[Row], payload: bytes, dump: bool) -> Answer:
    if len(payload) < UNIX_REQ.size:
        return Answer(errno.EINVAL)
    _, _, states, want_ino, show, ck0, ck1 = UNIX_REQ.unpack_from(payload)
    mine = [r for r in rows if r[2].family == c.AF_UNIX]
    inos = {id(ep): ino for ino, _, ep in mine}
    # A datagram socket someone connected to is ESTABLISHED too (Linux 6's
    # unix_dgram_connect sets both ends' state).
    targets = {id(ep.peer) for _, _, ep in mine
               if ep.stype == c.SOCK_DGRAM and getattr(ep, "peer", None) is not None}
    if dump:
        return Answer(messages=[(SOCK_DIAG_BY_FAMILY, _unix_msg(r, inos, show, targets))
                                for r in mine
                                if states & (1 << _unix_state(r[2], targets))], dump=True)
    if want_ino == 0:
        return Answer(errno.EINVAL)
    for r in mine:
        if r[0] == want_ino:
            if not _cookie_matches((ck0, ck1), r[2]):
                return Answer(errno.ESTALE)
            return Answer(messages=[(SOCK_DIAG_BY_FAMILY, _unix_msg(r, inos, show, targets))])
    return Answer(errno.ENOENT)


# -- netlink ---------------------------------------------------------------------

def _netlink(rows: list[Row], payload: bytes, dump: bool) -> Answer:
    """netlink_diag: the bound netlink sockets (only dumps, as Linux)."""
    if len(payload) < NL_REQ.size:
        return Answer(errno.EINVAL)
    if not dump:
        return Answer(errno.EOPNOTSUPP)
    _, proto, _, show, _, _ = NL_REQ.unpack_from(payload)
    out = []
    for kproto in KERNEL_SIDES:  # the kernel's own socket of each protocol served
        if proto in (NDIAG_PROTO_ALL, kproto):
            out.append((SOCK_DIAG_BY_FAMILY, NL_MSG.pack(c.AF_NETLINK, c.SOCK_RAW, kproto, 0,
                                                         0, 0, 0, 0, 0, 0)))
    for ino, _uid, ep in rows:
        if ep.family != c.AF_NETLINK or not getattr(ep, "bound", False):
            continue
        if proto != NDIAG_PROTO_ALL and ep.protocol != proto:
            continue
        dst_pid, dst_group = ep.dst
        cookie = cookie_of(ep)
        body = NL_MSG.pack(c.AF_NETLINK, ep.stype, ep.protocol, 1 if dst_pid else 0,
                           ep.portid, dst_pid, dst_group, ino, cookie & 0xFFFFFFFF,
                           cookie >> 32)
        if show & NDIAG_SHOW_GROUPS and ep.groups:
            body += attr(NETLINK_DIAG_GROUPS, struct.pack("<Q", ep.groups))
        out.append((SOCK_DIAG_BY_FAMILY, body))
    return Answer(messages=out, dump=True)


# -- the protocol ----------------------------------------------------------------

class DiagProtocol:
    """The NETLINK_SOCK_DIAG side of the Sentry. ``sockets()`` gives every
    open socket file of the sandbox with its owner's uid (procfs/net.py's
    walk over the fd tables)."""

    def __init__(self, sockets: Sockets) -> None:
        self.sockets = sockets

    def _rows(self) -> list[Row]:
        return [(f.ino, uid, f.endpoint) for f, uid in self.sockets()]

    def __call__(self, req: Request) -> Answer:
        p = req.payload
        if req.type in (TCPDIAG_GETSOCK, DCCPDIAG_GETSOCK):
            if len(p) < REQ_OLD.size:
                return Answer(errno.EINVAL)
            if req.type == DCCPDIAG_GETSOCK:
                return Answer(errno.EINVAL)
            family, _, _, ext, sockid, states, _ = REQ_OLD.unpack_from(p)
            return _inet(self._rows(), family, c.IPPROTO_TCP, ext, states, sockid, req.dump,
                         req.type)
        if req.type not in (SOCK_DIAG_BY_FAMILY, SOCK_DESTROY):
            return Answer(errno.EINVAL)
        if len(p) < 2 or p[0] >= AF_MAX:
            return Answer(errno.EINVAL)
        if p[0] in (c.AF_INET, c.AF_INET6):
            if len(p) < REQ_V2.size:
                return Answer(errno.EINVAL)
            family, proto, ext, states, sockid = REQ_V2.unpack_from(p)
            dump = req.dump and req.type == SOCK_DIAG_BY_FAMILY
            return _inet(self._rows(), family, proto, ext, states, sockid, dump, req.type)
        if req.type == SOCK_DESTROY:
            return Answer(errno.EOPNOTSUPP)
        if p[0] == c.AF_UNIX:
            return _unix(self._rows(), p, req.dump)
        if p[0] == c.AF_NETLINK:
            return _netlink(self._rows(), p, req.dump)
        if p[0] == c.AF_PACKET:
            return Answer(messages=[], dump=True) if req.dump else Answer(errno.EOPNOTSUPP)
        return Answer(errno.ENOENT)
