"""PyTCP attached to the packet descriptor: the user-space TCP/IP stack of
--network=sandbox (docs/network.md says why PyTCP and what it lacks).

PyTCP keeps one stack per process in module globals (pytcp.lib.stack) and
runs its own threads (timer, ARP cache, TX ring, packet handler).  We start
them ourselves rather than through ``pytcp.TcpIpStack``, which opens a tap
device and probes for address conflicts for seconds: the address is the one
Docker or CNI gave the namespace.  The RX ring is ours (``_PacketRx``): it
reads with recvmsg, completes checksums the host left partial
(link.frame_reader), needs no select(2) and runs PyTCP's packet handler
itself; frames go out without its TX ring's thread (pump.py says why).

Everything PyTCP imports is imported here, before the Sentry's seccomp filter
goes on (an import opens files): ``prepare()`` is called at boot.
"""

from __future__ import annotations

import threading
import time
from typing import Any

_READY = threading.Event()
_STATE: dict[str, Any] = {}
ATTACH_WAIT = 10.0
ARP_WAIT = 1.0


def prepare() -> None:
    """Import PyTCP and configure it (quiet; IPv6 turned on at attach when
    the namespace has a global IPv6 address) before confinement."""
    from pytcp import config

    config.LOG_CHANEL = set()
    config.LOG_DEBUG = False
    config.IP6_SUPPORT = False
    config.IP6_LLA_AUTOCONFIG = False
    config.IP6_GUA_AUTOCONFIG = False
    config.IP4_HOST_DHCP = False
    import pytcp.lib.socket  # noqa: F401
    import pytcp.protocols.tcp.socket  # noqa: F401
    import pytcp.protocols.udp.socket  # noqa: F401
    from pytcp.lib import stack  # noqa: F401
    from pytcp.lib.ip4_address import Ip4Address, Ip4Host  # noqa: F401
    from pytcp.lib.ip6_address import Ip6Address, Ip6Host  # noqa: F401
    from pytcp.lib.mac_address import MacAddress  # noqa: F401
    from pytcp.lib.packet import PacketRx  # noqa: F401
    from pytcp.protocols.tcp.session import FsmState, TcpSessionError  # noqa: F401

    import sentry.net.netstack.dnsrelay  # noqa: F401
    import sentry.net.netstack.gso  # noqa: F401
    import sentry.net.netstack.link  # noqa: F401
    import sentry.net.netstack.pump  # noqa: F401
    import sentry.net.netstack.tcp  # noqa: F401
    import sentry.net.netstack.udp  # noqa: F401


def attach(fd: int, cfg: dict[str, Any], netconfig: Any = None,
           more: list[int] | None = None) -> None:
    """Start the stack on packet descriptor ``fd`` with the interface ``cfg``
    (link.describe's); register the interface in ``netconfig`` (what
    netlink and /proc/net answer from); with ``cfg["dns_relay"]``, the first
    of ``more`` (taken from the list) is the relay to Docker's embedded DNS.
    Runs the slow part (PyTCP's thread start-up sleeps) in the background;
    ``wait_ready`` waits for it."""
    prepare()
    if cfg.get("dns_relay") and more:
        from sentry.net.netstack import dnsrelay

        dnsrelay.attach(more.pop(0))
    if netconfig is not None:
        _register(netconfig, cfg)
    _STATE["cfg"] = cfg
    threading.Thread(target=_start, args=(fd, cfg), daemon=True, name="netstack-boot").start()


def _register(netconfig: Any, cfg: dict[str, Any]) -> None:
    from socket import AF_INET, AF_INET6

    iface = netconfig.add_interface(cfg["ifname"], mtu=cfg["mtu"], hwaddr=cfg["mac"])
    netconfig.add_address(iface.index, AF_INET, cfg["addr"], cfg["prefix"])
    if cfg.get("gateway"):
        netconfig.add_route(AF_INET, b"", 0, ifindex=iface.index, gateway=cfg["gateway"])
    if cfg.get("addr6"):
        netconfig.add_address(iface.index, AF_INET6, cfg["addr6"], cfg["prefix6"])
        if cfg.get("gateway6"):
            netconfig.add_route(AF_INET6, b"", 0, ifindex=iface.index,
                                gateway=cfg["gateway6"])


def _start(fd: int, cfg: dict[str, Any]) -> None:
    import ipaddress

    from pytcp import config
    from pytcp.lib import stack
    from pytcp.lib.ip4_address import Ip4Address, Ip4Host
    from pytcp.lib.mac_address import MacAddress

    from sentry.net.netstack import pump

    config.TAP_MTU = cfg["mtu"]
    config.LOCAL_TCP_MSS = cfg["mtu"] - 40
    handler = stack.packet_handler
    handler.assign_mac_address(mac_unicast=MacAddress(cfg["mac"].hex(":")))
    host = Ip4Host(f"{ipaddress.IPv4Address(cfg['addr'])}/{cfg['prefix']}")
    if cfg.get("gateway"):
        host.gateway = Ip4Address(str(ipaddress.IPv4Address(cfg["gateway"])))
    # Claimed as given (no DAD probes: the runtime assigned it).
    handler.ip4_host.append(host)
    if cfg.get("addr6"):
        _ip6(handler, cfg)
    _start_timer(stack.timer)
    stack.arp_cache.start()
    if cfg.get("addr6"):
        stack.nd_cache.start()
    pump.install_transmit(fd, cfg["mtu"])
    pump.patch_session()
    threading.Thread(target=pump.receive_loop, args=(fd,), daemon=True,
                     name="netstack-rx").start()
    handler._send_arp_announcement(host.address)
    if cfg.get("gateway"):
        _resolve(host.gateway)
    _READY.set()


def _start_timer(timer: Any) -> None:
    """PyTCP's timer, ticking every millisecond as its own thread does, but
    asleep while it has no task and no timer (no TCP session): its thread
    would otherwise take the GIL a thousand times a second from the Sentry
    for nothing, on every sandbox with an interface.  Registrations take a
    lock the tick holds while it rebuilds its tables: sessions now send (and
    so register retransmission timers) from the RX and application threads
    too (pump.py), and an unlocked rebuild lost them or raised "dictionary
    changed size during iteration" in this thread."""
    wake = threading.Event()
    lock = threading.Lock()
    for name in ("register_method", "register_timer"):
        orig = getattr(timer, name)

        def registered(*args: Any, _orig: Any = orig, **kwargs: Any) -> Any:
            with lock:
                out = _orig(*args, **kwargs)
            wake.set()
            return out

        setattr(timer, name, registered)

    def run() -> None:
        while True:
            if not timer._tasks and not timer._timers:
                wake.wait()
                wake.clear()
                continue
            time.sleep(0.001)
            with lock:  # the body of PyTCP's __thread_timer
                timer._timers = {k: v - 1 for k, v in timer._timers.items() if v > 1}
                tasks = list(timer._tasks)
            for task in tasks:
                task.tick()
            with lock:
                timer._tasks = [t for t in timer._tasks if t.remaining_delay]

    threading.Thread(target=run, daemon=True, name="netstack-timer").start()


def _ip6(handler: Any, cfg: dict[str, Any]) -> None:
    """The namespace's global IPv6 address, claimed as given (no DAD, no
    SLAAC), with its gateway; the multicast groups ND needs."""
    import ipaddress

    from pytcp import config
    from pytcp.lib.ip6_address import Ip6Address, Ip6Host

    config.IP6_SUPPORT = True
    host6 = Ip6Host(f"{ipaddress.IPv6Address(cfg['addr6'])}/{cfg['prefix6']}")
    if cfg.get("gateway6"):
        # PyTCP's setter takes only link-local gateways; Docker gives the
        # bridge's global address, which ND resolves as well.
        host6._gateway = Ip6Address(str(ipaddress.IPv6Address(cfg["gateway6"])))
    handler._assign_ip6_multicast(Ip6Address("ff02::1"))
    handler._assign_ip6_host(host6)


def _resolve(gateway: Any) -> None:
    """Ask for the gateway's MAC and give the answer up to ARP_WAIT: PyTCP
    drops (does not queue) a packet whose next hop is unresolved, which would
    cost a TCP connection a 1 s retransmission and a DNS query its 5 s retry."""
    from pytcp.lib import stack

    cache = stack.arp_cache
    if cache.find_entry(gateway) is not None:  # a miss sends the request
        return
    deadline = time.monotonic() + ARP_WAIT
    while gateway not in cache._arp_cache and time.monotonic() < deadline:
        time.sleep(0.01)  # PyTCP's ARP cache has no wait of its own


def active() -> bool:
    """Whether a network is attached (sockets to other hosts go through it)."""
    return "cfg" in _STATE


def local_ip() -> bytes | None:
    cfg = _STATE.get("cfg")
    return cfg["addr"] if cfg else None


def local_ip6() -> bytes | None:
    cfg = _STATE.get("cfg")
    return cfg.get("addr6") if cfg else None


def wait_ready() -> bool:
    return _READY.wait(ATTACH_WAIT)
