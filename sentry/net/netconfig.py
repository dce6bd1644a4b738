"""The Sentry's interface and route table: what the sandbox's network looks
like to the application (netlink route dumps, /proc/net, getifaddrs).

One ``NetConfig`` per kernel (``Kernel.netconfig``). It starts as a
``--network=none`` sandbox's: ``lo`` only, with 127.0.0.1/8 and ::1/128 and
the routes Linux gives them (all in the local table). Whoever attaches a
real network adds to it at boot:

    cfg = kernel.netconfig
    eth = cfg.add_interface("eth0", hwaddr=b"\\x02\\x42\\xac\\x11\\x00\\x02", mtu=1500)
    cfg.add_address(eth.index, AF_INET, bytes([172, 17, 0, 2]), 16)
    cfg.add_route(AF_INET, b"", 0, ifindex=eth.index, gateway=bytes([172, 17, 0, 1]))

``add_address`` also adds the routes Linux's kernel adds for an address
(local and broadcast routes in table 255, the prefix route in the main
table), so a
caller adds only what a user would add with ``ip route add`` (a default
route). Traffic counters (``Interface.stats``) are plain ints the owning
stack bumps; /proc/net/dev and RTM_GETLINK read them.

Addresses are raw bytes: 4 for AF_INET, 16 for AF_INET6. Readers get
snapshots (``interfaces()``, ``routes()``), so a dump never sees a table
half-changed. Facts from Linux: rtnetlink(7), netdevice(7), include/uapi
linux/if.h, if_arp.h, rtnetlink.h; sans-IO: no sockets here.
"""

from __future__ import annotations

import threading

from sentry.net.consts import AF_INET, AF_INET6
from shm.records import field, record

# net_device_flags (linux/if.h)
IFF_UP = 0x1
IFF_BROADCAST = 0x2
IFF_LOOPBACK = 0x8
IFF_POINTOPOINT = 0x10
IFF_RUNNING = 0x40
IFF_NOARP = 0x80
IFF_PROMISC = 0x100
IFF_MULTICAST = 0x1000
IFF_LOWER_UP = 0x10000

# hardware types (linux/if_arp.h)
ARPHRD_ETHER = 1
ARPHRD_LOOPBACK = 772
ARPHRD_NONE = 0xFFFE

# address and route scopes (linux/rtnetlink.h: enum rt_scope_t)
RT_SCOPE_UNIVERSE = 0
RT_SCOPE_SITE = 200
RT_SCOPE_LINK = 253
RT_SCOPE_HOST = 254
RT_SCOPE_NOWHERE = 255

# route tables, types and origins
RT_TABLE_MAIN = 254
RT_TABLE_LOCAL = 255
RTN_UNICAST = 1
RTN_LOCAL = 2
RTN_BROADCAST = 3
RTPROT_KERNEL = 2
RTPROT_BOOT = 3
RTPROT_STATIC = 4

# address flags (linux/if_addr.h)
IFA_F_PERMANENT = 0x80

ADDR_LEN = {AF_INET: 4, AF_INET6: 16}
IPV6_ROUTE_METRIC = 256  # what Linux gives an IPv6 prefix route


def _masked(addr: bytes, prefixlen: int) -> bytes:
    """``addr`` with the bits past ``prefixlen`` cleared (a route's destination)."""
    n = int.from_bytes(addr, "big")
    bits = len(addr) * 8
    mask = ((1 << bits) - 1) ^ ((1 << (bits - prefixlen)) - 1) if prefixlen else 0
    return (n & mask).to_bytes(len(addr), "big")


@record(slots=True)
class IfAddr:
    """One address on an interface (what RTM_NEWADDR describes)."""

    family: int
    addr: bytes
    prefixlen: int
    scope: int = RT_SCOPE_UNIVERSE
    broadcast: bytes | None = None  # IPv4 on a broadcast link
    flags: int = IFA_F_PERMANENT


@record(slots=True)
class Route:
    """One route. ``dst`` is the masked destination (b"" for the default
    route); ``gateway``/``prefsrc`` None when there is none; ``metric`` is
    RTA_PRIORITY (0 leaves it out, as Linux's IPv4 routes)."""

    family: int
    dst: bytes
    prefixlen: int
    ifindex: int
    gateway: bytes | None = None
    metric: int = 0
    table: int = RT_TABLE_MAIN
    rtype: int = RTN_UNICAST
    scope: int = RT_SCOPE_UNIVERSE
    protocol: int = RTPROT_BOOT
    prefsrc: bytes | None = None
    flags: int = 0  # rtm_flags (RTNH_F_LINKDOWN and the like, from a host copy)


@record(slots=True)
class Interface:
    """A network interface as ip-link(8) shows it."""

    index: int
    name: str
    flags: int
    mtu: int
    hwaddr: bytes = bytes(6)
    arptype: int = ARPHRD_ETHER
    broadcast_hw: bytes = b"\xff" * 6
    txqlen: int = 1000
    addrs: list[IfAddr] = field(default_factory=list)
    # rx_bytes rx_packets rx_errs rx_drop tx_bytes tx_packets tx_errs tx_drop
    stats: dict[str, int] = field(default_factory=dict)

    def stat(self, name: str) -> int:
        return self.stats.get(name, 0)


class NetConfig:
    """Interfaces and routes of one sandbox. Thread-safe; readers get copies."""

    def __init__(self, loopback: bool = True) -> None:
        # "none": loopback only; "host": the host's sockets (hostinet.py), the
        # table copied from the host at boot; "sandbox": a user-space stack.
        self.mode = "none"
        self.lock = threading.Lock()
        self._ifaces: dict[int, Interface] = {}
        self._routes: list[Route] = []
        self._next_index = 1
        if loopback:
            lo = self.add_interface(
                "lo", flags=IFF_UP | IFF_LOOPBACK | IFF_RUNNING | IFF_LOWER_UP, mtu=65536,
                hwaddr=bytes(6), arptype=ARPHRD_LOOPBACK, broadcast_hw=bytes(6), txqlen=1000)
            self.add_address(lo.index, AF_INET, b"\x7f\x00\x00\x01", 8, scope=RT_SCOPE_HOST)
            self.add_address(lo.index, AF_INET6, bytes(15) + b"\x01", 128, scope=RT_SCOPE_HOST)

    # -- changing (boot only: the application cannot) -----------------------
    def add_interface(self, name: str, *, flags: int = IFF_UP | IFF_BROADCAST | IFF_RUNNING
                      | IFF_MULTICAST | IFF_LOWER_UP, mtu: int = 1500, hwaddr: bytes = bytes(6),
                      arptype: int = ARPHRD_ETHER, broadcast_hw: bytes = b"\xff" * 6,
                      txqlen: int = 1000, index: int | None = None) -> Interface:
        """Register an interface; it gets the next index (lo is 1) unless
        ``index`` says (a copy of the host's). A name or index already taken
        is a ValueError (a wiring bug, not an application's)."""
        if not name or len(name) > 15:
            raise ValueError(f"bad interface name {name!r}")
        with self.lock:
            if index is None:
                index = self._next_index
            if index in self._ifaces or any(i.name == name for i in self._ifaces.values()):
                raise ValueError(f"interface {name} ({index}) exists")
            iface = Interface(index=index, name=name, flags=flags, mtu=mtu,
                              hwaddr=hwaddr, arptype=arptype, broadcast_hw=broadcast_hw,
                              txqlen=txqlen)
            self._ifaces[iface.index] = iface
            self._next_index = max(self._next_index, index + 1)
            return iface

    def add_address(self, ifindex: int, family: int, addr: bytes, prefixlen: int, *,
                    scope: int | None = None, routes: bool = True,
                    broadcast: bytes | None = None, flags: int = IFA_F_PERMANENT) -> IfAddr:
        """Put ``addr``/``prefixlen`` on interface ``ifindex``. Scope defaults
        to Linux's: host for loopback addresses, link for fe80::/10, else
        universe. With ``routes``, also the routes Linux adds for it."""
        if len(addr) != ADDR_LEN.get(family, -1) or not 0 <= prefixlen <= len(addr) * 8:
            raise ValueError("bad address")
        if scope is None:
            if (family == AF_INET and addr[0] == 127) or addr == bytes(15) + b"\x01":
                scope = RT_SCOPE_HOST
            elif family == AF_INET6 and addr[0] == 0xFE and addr[1] & 0xC0 == 0x80:
                scope = RT_SCOPE_LINK
            else:
                scope = RT_SCOPE_UNIVERSE
        with self.lock:
            iface = self._ifaces[ifindex]
            bcast = broadcast
            if bcast is None and family == AF_INET and iface.flags & IFF_BROADCAST \
                    and prefixlen < 31:
                host = (1 << (32 - prefixlen)) - 1
                bcast = (int.from_bytes(addr, "big") | host).to_bytes(4, "big")
            ifa = IfAddr(family=family, addr=addr, prefixlen=prefixlen, scope=scope,
                         broadcast=bcast, flags=flags)
            iface.addrs.append(ifa)
            if routes:
                self._kernel_routes(iface, ifa)
            return ifa

    def _kernel_routes(self, iface: Interface, ifa: IfAddr) -> None:
        """The routes Linux's fib adds with an address (lock held): for IPv4
        a local route to the address (and to the whole prefix on a loopback
        device), a broadcast route and the prefix route in the main table;
        for IPv6 the local route and, on other devices, the prefix route."""
        net = _masked(ifa.addr, ifa.prefixlen)
        loop = bool(iface.flags & IFF_LOOPBACK)
        add = self._routes.append
        local = {"table": RT_TABLE_LOCAL, "rtype": RTN_LOCAL, "protocol": RTPROT_KERNEL}
        if ifa.family == AF_INET:
            if loop and ifa.prefixlen < 32:
                add(Route(AF_INET, net, ifa.prefixlen, iface.index, scope=RT_SCOPE_HOST,
                          prefsrc=ifa.addr, **local))
            add(Route(AF_INET, ifa.addr, 32, iface.index, scope=RT_SCOPE_HOST,
                      prefsrc=ifa.addr, **local))
            bcast = ifa.broadcast
            if bcast is None and loop and ifa.prefixlen < 31:
                host = (1 << (32 - ifa.prefixlen)) - 1
                bcast = (int.from_bytes(ifa.addr, "big") | host).to_bytes(4, "big")
            if bcast is not None:
                add(Route(AF_INET, bcast, 32, iface.index, table=RT_TABLE_LOCAL,
                          rtype=RTN_BROADCAST, scope=RT_SCOPE_LINK, protocol=RTPROT_KERNEL,
                          prefsrc=ifa.addr))
            if not loop:
                add(Route(AF_INET, net, ifa.prefixlen, iface.index, scope=RT_SCOPE_LINK,
                          protocol=RTPROT_KERNEL, prefsrc=ifa.addr))
            return
        add(Route(AF_INET6, ifa.addr, 128, iface.index, **local))
        if not loop and ifa.prefixlen < 128:
            add(Route(AF_INET6, net, ifa.prefixlen, iface.index, protocol=RTPROT_KERNEL,
                      metric=IPV6_ROUTE_METRIC))

    def add_route(self, family: int, dst: bytes, prefixlen: int, *, ifindex: int,
                  gateway: bytes | None = None, metric: int | None = None,
                  table: int = RT_TABLE_MAIN, protocol: int = RTPROT_BOOT) -> Route:
        """A route as ``ip route add`` makes it: ``dst`` b"" (or all zero)
        with prefixlen 0 is the default route. Scope is link without a
        gateway, universe with one."""
        n = ADDR_LEN.get(family)
        if n is None or not 0 <= prefixlen <= n * 8 or len(dst) not in (0, n):
            raise ValueError("bad route")
        if gateway is not None and len(gateway) != n:
            raise ValueError("bad gateway")
        if metric is None:
            metric = IPV6_ROUTE_METRIC if family == AF_INET6 else 0
        route = Route(family, _masked(dst or bytes(n), prefixlen), prefixlen, ifindex,
                      gateway=gateway, metric=metric, table=table, protocol=protocol,
                      scope=RT_SCOPE_UNIVERSE if gateway else RT_SCOPE_LINK)
        with self.lock:
            if ifindex not in self._ifaces:
                raise ValueError(f"no interface {ifindex}")
            self._routes.append(route)
        return route

    def insert_route(self, route: Route) -> None:
        """A route as it is, every field given (a copy of the host's table)."""
        with self.lock:
            if route.ifindex not in self._ifaces:
                raise ValueError(f"no interface {route.ifindex}")
            self._routes.append(route)

    def count(self, ifindex: int, **deltas: int) -> None:
        """Add to an interface's counters, e.g. ``count(2, rx_bytes=60, rx_packets=1)``."""
        with self.lock:
            stats = self._ifaces[ifindex].stats
            for k, v in deltas.items():
                stats[k] = stats.get(k, 0) + v

    # -- reading -------------------------------------------------------------
    def interfaces(self) -> list[Interface]:
        """Every interface, by index; copies (their address lists too)."""
        with self.lock:
            return [Interface(index=i.index, name=i.name, flags=i.flags, mtu=i.mtu,
                              hwaddr=i.hwaddr, arptype=i.arptype, broadcast_hw=i.broadcast_hw,
                              txqlen=i.txqlen, addrs=list(i.addrs), stats=dict(i.stats))
                    for _, i in sorted(self._ifaces.items())]

    def interface(self, index: int) -> Interface | None:
        return next((i for i in self.interfaces() if i.index == index), None)

    def by_name(self, name: str) -> Interface | None:
        return next((i for i in self.interfaces() if i.name == name), None)

    def routes(self, family: int | None = None) -> list[Route]:
        """The routes (of ``family``) in the order Linux dumps them: IPv4
        before IPv6, the main table before the local one, then by
        destination and prefix length."""
        with self.lock:
            got = [r for r in self._routes if family is None or r.family == family]
        return sorted(got, key=lambda r: (r.family, r.table, r.dst, r.prefixlen))

    def addresses(self, family: int | None = None) -> list[tuple[Interface, IfAddr]]:
        """Every (interface, address) pair, interface order first."""
        return [(i, a) for i in self.interfaces() for a in i.addrs
                if family is None or a.family == family]

    def is_local(self, family: int, addr: bytes) -> bool:
        """Whether ``addr`` is one of the sandbox's own addresses (or in 127/8)."""
        if family == AF_INET and addr[:1] == b"\x7f":
            return True
        return any(a.addr == addr for _, a in self.addresses(family))
