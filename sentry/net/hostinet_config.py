"""Host mode's interface table: a copy of the host network namespace's
links, addresses and routes, read once at boot over NETLINK_ROUTE (before
the Sentry confines itself), so ``ip addr``, getifaddrs and /proc/net in
the sandbox show the interfaces its host sockets really use (gVisor's
hostinet reads its stack's interfaces from the host the same way).

The copy is not refreshed after start: a change on the host later is not
seen. An OCI container's copy is made again at ``start`` (:func:`refresh`):
its namespace is configured by the runtime's hooks after the Sentry booted.
"""

from __future__ import annotations

import socket
import struct

from sentry.net.consts import AF_INET, AF_INET6, AF_UNSPEC
from sentry.net.netconfig import NetConfig, Route
from sentry.net.netlink_msg import (
    NLM_F_DUMP,
    NLM_F_REQUEST,
    NLMSG_DONE,
    NLMSG_ERROR,
    NLMSGHDR,
    align,
    message,
    parse_attrs,
)
from sentry.net.netlink_route import (
    IFA_ADDRESS,
    IFA_BROADCAST,
    IFA_FLAGS,
    IFA_LOCAL,
    IFADDRMSG,
    IFINFOMSG,
    IFLA_ADDRESS,
    IFLA_BROADCAST,
    IFLA_IFNAME,
    IFLA_MTU,
    IFLA_TXQLEN,
    RTA_DST,
    RTA_GATEWAY,
    RTA_OIF,
    RTA_PREFSRC,
    RTA_PRIORITY,
    RTA_TABLE,
    RTM_GETADDR,
    RTM_GETLINK,
    RTM_GETROUTE,
    RTMSG,
)

U32 = struct.Struct("<I")


def _dump(sock: socket.socket, kind: int, family: int, seq: int) -> list[bytes]:
    """The bodies of one dump's replies."""
    sock.send(message(kind, NLM_F_REQUEST | NLM_F_DUMP, seq, 0, bytes([family]) + bytes(15)))
    out: list[bytes] = []
    while True:
        data = sock.recv(65536)
        off = 0
        while off + NLMSGHDR.size <= len(data):
            n, typ, _flags, rseq, _pid = NLMSGHDR.unpack_from(data, off)
            if n < NLMSGHDR.size:
                return out
            body = data[off + NLMSGHDR.size:off + n]
            off += align(n)
            if rseq != seq:
                continue
            if typ in (NLMSG_DONE, NLMSG_ERROR):
                return out
            out.append(body)


def _u32(attrs: dict[int, bytes], kind: int, default: int = 0) -> int:
    raw = attrs.get(kind)
    return U32.unpack(raw[:4])[0] if raw and len(raw) >= 4 else default


def load_host(cfg: NetConfig) -> None:
    """Fill ``cfg`` (made without lo) from the host's tables."""
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, 0) as sock:
        sock.bind((0, 0))
        for body in _dump(sock, RTM_GETLINK, AF_UNSPEC, 1):
            if len(body) < IFINFOMSG.size:
                continue
            _fam, arptype, index, flags, _ = IFINFOMSG.unpack_from(body)
            a = parse_attrs(body[IFINFOMSG.size:])
            name = a.get(IFLA_IFNAME, b"").rstrip(b"\0").decode("latin-1")
            if not name:
                continue
            cfg.add_interface(name, flags=flags, mtu=_u32(a, IFLA_MTU, 1500),
                              hwaddr=a.get(IFLA_ADDRESS, bytes(6)), arptype=arptype,
                              broadcast_hw=a.get(IFLA_BROADCAST, bytes(6)),
                              txqlen=_u32(a, IFLA_TXQLEN, 1000), index=index)
        known = {i.index for i in cfg.interfaces()}
        for body in _dump(sock, RTM_GETADDR, AF_UNSPEC, 2):
            if len(body) < IFADDRMSG.size:
                continue
            family, prefixlen, flags8, scope, index = IFADDRMSG.unpack_from(body)
            a = parse_attrs(body[IFADDRMSG.size:])
            addr = a.get(IFA_LOCAL) or a.get(IFA_ADDRESS)
            if index not in known or family not in (AF_INET, AF_INET6) or addr is None:
                continue
            cfg.add_address(index, family, addr, prefixlen, scope=scope, routes=False,
                            broadcast=a.get(IFA_BROADCAST), flags=_u32(a, IFA_FLAGS, flags8))
        for body in _dump(sock, RTM_GETROUTE, AF_UNSPEC, 3):
            if len(body) < RTMSG.size:
                continue
            family, dst_len, _src, _tos, table, proto, scope, rtype, flags = \
                RTMSG.unpack_from(body)
            a = parse_attrs(body[RTMSG.size:])
            oif = _u32(a, RTA_OIF)
            if family not in (AF_INET, AF_INET6) or oif not in known:
                continue
            size = 4 if family == AF_INET else 16
            cfg.insert_route(Route(
                family, a.get(RTA_DST, bytes(size)), dst_len, oif,
                gateway=a.get(RTA_GATEWAY), metric=_u32(a, RTA_PRIORITY),
                table=_u32(a, RTA_TABLE, table), rtype=rtype, scope=scope, protocol=proto,
                prefsrc=a.get(RTA_PREFSRC), flags=flags))


def refresh(kernel: object) -> None:
    """Replace ``kernel``'s interface table with a fresh copy of the host's
    (OCI start, after the hooks); the old one stays on failure."""
    cfg = NetConfig(loopback=False)
    cfg.mode = "host"
    try:
        load_host(cfg)
    except OSError:
        return
    kernel.netconfig = cfg  # type: ignore[attr-defined]
