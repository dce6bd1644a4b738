"""NETLINK_ROUTE answered from the Sentry's interface table (netconfig.py):
RTM_GETLINK, RTM_GETADDR and RTM_GETROUTE, dumped or (links, routes) got
one at a time. Enough for glibc's getifaddrs, iproute2's ``ip addr``,
``ip link`` and ``ip route``, and ``hostname -I``.

Facts from Linux (net/core/rtnetlink.c, net/ipv4/devinet.c, fib_trie.c,
net/ipv6/addrconf.c, route.c; rtnetlink(7)):

* A message shorter than the one-byte family is ignored. Types past
  RTM_MAX, and kinds with no handler, are EOPNOTSUPP.
* A type whose low two bits are not GET (new, del, set) needs
  CAP_NET_ADMIN: EPERM without it. With it the answer here is EOPNOTSUPP:
  the sandbox's interfaces and routes are fixed at boot (gVisor changes its
  own netstack's; a hostinet sandbox cannot change the host's either).
* A dump whose family is AF_INET or AF_INET6 gives that family; any other
  gives every family, IPv4 first (rtnl_dump_all).
* The attributes are the ones ip(8) and getifaddrs read, in Linux's order.
"""

from __future__ import annotations

import errno
import struct
import time
from collections.abc import Callable

from sentry.net.consts import AF_INET, AF_INET6, AF_UNSPEC
from sentry.net.netconfig import (
    IFF_LOOPBACK,
    IFF_UP,
    RT_TABLE_LOCAL,
    RT_TABLE_MAIN,
    Interface,
    NetConfig,
    Route,
)
from sentry.net.netlink_msg import Answer, Request, attr, attr_str, attr_u8, attr_u32, parse_attrs

RTM_NEWLINK, RTM_GETLINK = 16, 18
RTM_NEWADDR, RTM_GETADDR = 20, 22
RTM_NEWROUTE, RTM_GETROUTE = 24, 26
RTM_GETNEIGH, RTM_GETRULE, RTM_GETQDISC = 30, 34, 38
RTM_GETNETCONF, RTM_GETNSID = 82, 90
RTM_MAX = 127
KIND_GET = 2
# GET types Linux dumps that this table has nothing for: an empty dump.
_EMPTY_DUMPS = frozenset({RTM_GETNEIGH, RTM_GETRULE, RTM_GETQDISC, RTM_GETNETCONF, RTM_GETNSID})

IFINFOMSG = struct.Struct("<BxHiII")  # family, type, index, flags, change
IFADDRMSG = struct.Struct("<BBBBI")  # family, prefixlen, flags, scope, index
RTMSG = struct.Struct("<BBBBBBBBI")  # family, dst_len, src_len, tos, table, proto, scope, type,
#                                      flags

IFLA_ADDRESS, IFLA_BROADCAST, IFLA_IFNAME, IFLA_MTU = 1, 2, 3, 4
IFLA_QDISC, IFLA_STATS, IFLA_TXQLEN, IFLA_OPERSTATE, IFLA_LINKMODE = 6, 7, 13, 16, 17
IFLA_STATS64, IFLA_GROUP, IFLA_PROMISCUITY = 23, 27, 30
IFLA_NUM_TX_QUEUES, IFLA_NUM_RX_QUEUES, IFLA_CARRIER = 31, 32, 33
IFLA_MIN_MTU, IFLA_MAX_MTU = 50, 51
IFLA_PROTINFO, IFLA_AF_SPEC, IFLA_GSO_MAX_SEGS, IFLA_GSO_MAX_SIZE = 12, 26, 40, 41
IFLA_GRO_MAX_SIZE, IFLA_TSO_MAX_SIZE, IFLA_TSO_MAX_SEGS, IFLA_ALLMULTI = 58, 59, 60, 61
IFLA_INET6_FLAGS, IFLA_INET6_ADDR_GEN_MODE = 1, 8
IF_OPER_UNKNOWN, IF_OPER_DOWN, IF_OPER_UP = 0, 2, 6

IFA_ADDRESS, IFA_LOCAL, IFA_LABEL, IFA_BROADCAST, IFA_CACHEINFO, IFA_FLAGS = 1, 2, 3, 4, 6, 8
INFINITY_LIFE = 0xFFFFFFFF

RTA_DST, RTA_OIF, RTA_GATEWAY, RTA_PRIORITY, RTA_PREFSRC = 1, 4, 5, 6, 7
RTA_TABLE, RTA_CACHEINFO, RTA_PREF, RTA_UID = 15, 12, 20, 25
RTM_F_CLONED = 0x200
RTCF_LOCAL = 0x80000000
RTN_LOCAL = 2
RTN_UNICAST = 1

# struct rtnl_link_stats64 / rtnl_link_stats: the counters netconfig keeps,
# by position; the rest are zero.
_STAT_FIELDS = ("rx_packets", "tx_packets", "rx_bytes", "tx_bytes", "rx_errs", "tx_errs",
                "rx_drop", "tx_drop")
_STATS64_COUNT = 26
_STATS32_COUNT = 25


def _hundredths(t0: float) -> int:
    """A timestamp in hundredths of a second since boot (ifa_cacheinfo)."""
    return int((time.monotonic() - t0) * 100) & 0xFFFFFFFF


class RouteProtocol:
    """The NETLINK_ROUTE side of the Sentry. ``may_admin`` says whether the
    sending task holds CAP_NET_ADMIN."""

    def __init__(self, cfg: NetConfig, may_admin: Callable[[], bool],
                 uid: Callable[[], int] = lambda: 0) -> None:
        self.cfg = cfg
        self.may_admin = may_admin
        self.uid = uid
        self.t0 = time.monotonic()

    def __call__(self, req: Request) -> Answer:
        if not req.payload:
            return Answer()
        if req.type > RTM_MAX:
            return Answer(errno.EOPNOTSUPP)
        if req.type & 3 != KIND_GET:
            return Answer(errno.EOPNOTSUPP if self.may_admin() else errno.EPERM)
        family = req.payload[0]
        if req.dump:
            if req.type == RTM_GETLINK:
                make = self.link6 if family == AF_INET6 else self.link
                return Answer(messages=[(RTM_NEWLINK, make(i))
                                        for i in self.cfg.interfaces()], dump=True)
            if req.type == RTM_GETADDR:
                return Answer(messages=self.addrs(family), dump=True)
            if req.type == RTM_GETROUTE:
                return Answer(messages=[(RTM_NEWROUTE, self.route(r))
                                        for r in self.cfg.routes(_family_filter(family))],
                              dump=True)
            if req.type in _EMPTY_DUMPS:
                return Answer(messages=[], dump=True)
            return Answer(errno.EOPNOTSUPP)
        if req.type == RTM_GETLINK:
            return self.get_link(req.payload)
        if req.type == RTM_GETROUTE:
            return self.get_route(req.payload)
        return Answer(errno.EOPNOTSUPP)

    # -- links -----------------------------------------------------------------
    def link(self, i: Interface) -> bytes:
        """An RTM_NEWLINK body (ifinfomsg and attributes) for ``i``."""
        up = bool(i.flags & IFF_UP)
        oper = IF_OPER_UNKNOWN if i.flags & IFF_LOOPBACK else (IF_OPER_UP if up else IF_OPER_DOWN)
        stats64 = [0] * _STATS64_COUNT
        for pos, name in enumerate(_STAT_FIELDS):
            stats64[pos] = i.stat(name)
        stats32 = [v & 0xFFFFFFFF for v in stats64[:_STATS32_COUNT]]
        body = IFINFOMSG.pack(AF_UNSPEC, i.arptype, i.index, i.flags, 0)
        body += b"".join((
            attr_str(IFLA_IFNAME, i.name), attr_u32(IFLA_TXQLEN, i.txqlen),
            attr_u8(IFLA_OPERSTATE, oper), attr_u8(IFLA_LINKMODE, 0),
            attr_u32(IFLA_MTU, i.mtu), attr_u32(IFLA_MIN_MTU, 0),
            attr_u32(IFLA_MAX_MTU, 0 if i.flags & IFF_LOOPBACK else 65535),
            attr_u32(IFLA_GROUP, 0), attr_u32(IFLA_PROMISCUITY, 0),
            attr_u32(IFLA_ALLMULTI, 0),
            attr_u32(IFLA_NUM_TX_QUEUES, 1), attr_u32(IFLA_GSO_MAX_SEGS, 65535),
            attr_u32(IFLA_GSO_MAX_SIZE, 65536), attr_u32(IFLA_GRO_MAX_SIZE, 65536),
            attr_u32(IFLA_TSO_MAX_SIZE, 524280), attr_u32(IFLA_TSO_MAX_SEGS, 65535),
            attr_u32(IFLA_NUM_RX_QUEUES, 1),
            attr_u8(IFLA_CARRIER, 1 if up else 0), attr_str(IFLA_QDISC, "noqueue"),
            attr(IFLA_ADDRESS, i.hwaddr), attr(IFLA_BROADCAST, i.broadcast_hw),
            attr(IFLA_STATS64, struct.pack(f"<{_STATS64_COUNT}Q", *stats64)),
            attr(IFLA_STATS, struct.pack(f"<{_STATS32_COUNT}I", *stats32)),
            attr(IFLA_AF_SPEC, attr(AF_INET6, attr_u8(IFLA_INET6_ADDR_GEN_MODE, 0))),
        ))
        return body

    def link6(self, i: Interface) -> bytes:
        """The RTM_NEWLINK body IPv6 gives for an AF_INET6 link dump
        (inet6_fill_ifinfo): name, address, MTU, state, and its own info."""
        up = bool(i.flags & IFF_UP)
        oper = IF_OPER_UNKNOWN if i.flags & IFF_LOOPBACK else (IF_OPER_UP if up else IF_OPER_DOWN)
        body = IFINFOMSG.pack(AF_INET6, i.arptype, i.index, i.flags, 0)
        return body + b"".join((
            attr_str(IFLA_IFNAME, i.name), attr(IFLA_ADDRESS, i.hwaddr),
            attr_u32(IFLA_MTU, i.mtu), attr_u8(IFLA_OPERSTATE, oper),
            attr(IFLA_PROTINFO, attr_u32(IFLA_INET6_FLAGS, 0x80000000)),  # IF_READY
        ))

    def get_link(self, payload: bytes) -> Answer:
        """RTM_GETLINK for one interface, by index or IFLA_IFNAME: ENODEV
        when there is none, EINVAL when the request names neither."""
        if len(payload) < IFINFOMSG.size:
            return Answer(errno.EINVAL)
        index = IFINFOMSG.unpack_from(payload)[2]
        name = parse_attrs(payload[IFINFOMSG.size:]).get(IFLA_IFNAME)
        for i in self.cfg.interfaces():
            if (index > 0 and i.index == index) or (
                    index <= 0 and name is not None and i.name.encode() == name.rstrip(b"\0")):
                return Answer(messages=[(RTM_NEWLINK, self.link(i))])
        if index <= 0 and name is None:
            return Answer(errno.EINVAL)
        return Answer(errno.ENODEV)

    # -- addresses -------------------------------------------------------------
    def addrs(self, family: int) -> list[tuple[int, bytes]]:
        """RTM_NEWADDR messages: IPv4 for every interface, then IPv6."""
        out = []
        for fam in (AF_INET, AF_INET6):
            if _family_filter(family) not in (None, fam):
                continue
            for iface, a in self.cfg.addresses(fam):
                flags = a.flags
                body = IFADDRMSG.pack(fam, a.prefixlen, flags & 0xFF, a.scope, iface.index)
                cache = struct.pack("<IIII", INFINITY_LIFE, INFINITY_LIFE, _hundredths(self.t0),
                                    _hundredths(self.t0))
                if fam == AF_INET:
                    body += attr(IFA_ADDRESS, a.addr) + attr(IFA_LOCAL, a.addr)
                    if a.broadcast is not None:
                        body += attr(IFA_BROADCAST, a.broadcast)
                    body += attr_str(IFA_LABEL, iface.name) + attr_u32(IFA_FLAGS, flags)
                    body += attr(IFA_CACHEINFO, cache)
                else:
                    body += attr(IFA_ADDRESS, a.addr) + attr(IFA_CACHEINFO, cache)
                    body += attr_u32(IFA_FLAGS, flags)
                out.append((RTM_NEWADDR, body))
        return out

    # -- routes ----------------------------------------------------------------
    def route(self, r: Route, *, dst: bytes | None = None, cloned: bool = False) -> bytes:
        """An RTM_NEWROUTE body for ``r`` (``dst``: ip route get's answer)."""
        dst_len = r.prefixlen if dst is None else len(dst) * 8
        table = RT_TABLE_MAIN if cloned else r.table
        flags = r.flags
        if cloned:
            flags = RTM_F_CLONED | (RTCF_LOCAL if r.rtype == RTN_LOCAL else 0)
        body = RTMSG.pack(r.family, dst_len, 0, 0, min(table, 255), r.protocol, r.scope,
                          r.rtype, flags)
        body += attr_u32(RTA_TABLE, table)
        target = r.dst if dst is None else dst
        if dst_len:
            body += attr(RTA_DST, target)
        if r.family == AF_INET6 or r.metric:
            body += attr_u32(RTA_PRIORITY, r.metric)
        if r.prefsrc is not None:
            body += attr(RTA_PREFSRC, r.prefsrc)
        if r.gateway is not None:
            body += attr(RTA_GATEWAY, r.gateway)
        body += attr_u32(RTA_OIF, r.ifindex)
        if cloned:
            body += attr_u32(RTA_UID, self.uid())
        if r.family == AF_INET6:
            body += attr(RTA_CACHEINFO, bytes(32)) + attr_u8(RTA_PREF, 0)
        return body

    def get_route(self, payload: bytes) -> Answer:
        """ip route get: the longest matching prefix, local table first."""
        if len(payload) < RTMSG.size:
            return Answer(errno.EINVAL)
        family = payload[0]
        dst = parse_attrs(payload[RTMSG.size:]).get(RTA_DST)
        size = {AF_INET: 4, AF_INET6: 16}.get(family)
        if size is None:
            return Answer(errno.EOPNOTSUPP)
        if dst is None:
            dst = bytes(size)
        if len(dst) != size:
            return Answer(errno.EINVAL)
        best: Route | None = None
        want = int.from_bytes(dst, "big")
        bits = size * 8
        for r in self.cfg.routes(family):
            if r.table not in (RT_TABLE_LOCAL, RT_TABLE_MAIN):
                continue
            shift = bits - r.prefixlen
            if r.prefixlen and int.from_bytes(r.dst, "big") >> shift != want >> shift:
                continue
            rank = (r.table == RT_TABLE_LOCAL, r.prefixlen)
            if best is None or rank > (best.table == RT_TABLE_LOCAL, best.prefixlen):
                best = r
        if best is None:
            return Answer(errno.ENETUNREACH)
        if best.prefsrc is None:
            src = next((a.addr for i, a in self.cfg.addresses(family) if i.index == best.ifindex),
                       None)
            best = Route(best.family, best.dst, best.prefixlen, best.ifindex, best.gateway,
                         best.metric, best.table, best.rtype if best.rtype != 3 else RTN_UNICAST,
                         best.scope, best.protocol, src)
        return Answer(messages=[(RTM_NEWROUTE, self.route(best, dst=dst, cloned=True))])


def _family_filter(family: int) -> int | None:
    return family if family in (AF_INET, AF_INET6) else None
