"""AF_NETLINK/NETLINK_ROUTE and the interface table behind it
(sentry/net/netconfig.py, sentry/net/netlink*.py)."""

from __future__ import annotations

import pytest

from sentry.net.consts import AF_INET, AF_INET6
from sentry.net.netconfig import (
    IFF_LOOPBACK,
    RT_SCOPE_HOST,
    RT_SCOPE_LINK,
    RT_TABLE_LOCAL,
    RT_TABLE_MAIN,
    NetConfig,
)


def test_netconfig_starts_with_lo_and_its_addresses() -> None:
    cfg = NetConfig()
    (lo,) = cfg.interfaces()
    assert (lo.index, lo.name, lo.mtu) == (1, "lo", 65536)
    assert lo.flags & IFF_LOOPBACK
    assert [(a.family, a.addr, a.prefixlen, a.scope) for a in lo.addrs] == [
        (AF_INET, b"\x7f\0\0\1", 8, RT_SCOPE_HOST),
        (AF_INET6, bytes(15) + b"\1", 128, RT_SCOPE_HOST)]
    # What Linux 6.x gives lo once it is up (ip route show table all).
    assert [(r.dst, r.prefixlen, r.table, r.rtype) for r in cfg.routes(AF_INET)] == [
        (b"\x7f\0\0\0", 8, RT_TABLE_LOCAL, 2), (b"\x7f\0\0\1", 32, RT_TABLE_LOCAL, 2),
        (b"\x7f\xff\xff\xff", 32, RT_TABLE_LOCAL, 3)]
    assert [(r.table, r.metric) for r in cfg.routes(AF_INET6)] == [(RT_TABLE_LOCAL, 0)]


def test_netconfig_registers_an_interface_with_linux_routes() -> None:
    cfg = NetConfig()
    eth = cfg.add_interface("eth0", hwaddr=bytes.fromhex("0242ac110002"), mtu=1500)
    assert eth.index == 2
    ifa = cfg.add_address(eth.index, AF_INET, bytes([172, 17, 0, 2]), 16)
    assert ifa.broadcast == bytes([172, 17, 255, 255])
    cfg.add_route(AF_INET, b"", 0, ifindex=eth.index, gateway=bytes([172, 17, 0, 1]))
    v6 = cfg.add_address(eth.index, AF_INET6, bytes.fromhex("fe80" + "00" * 6 + "0042acfffe110002"),
                         64)
    assert v6.scope == RT_SCOPE_LINK
    main4 = [(r.dst, r.prefixlen, r.gateway) for r in cfg.routes(AF_INET)
             if r.table == RT_TABLE_MAIN]
    assert main4 == [(bytes(4), 0, bytes([172, 17, 0, 1])), (bytes([172, 17, 0, 0]), 16, None)]
    assert cfg.is_local(AF_INET, bytes([172, 17, 0, 2]))
    assert not cfg.is_local(AF_INET, bytes([172, 17, 0, 3]))
    cfg.count(eth.index, rx_bytes=60, rx_packets=1)
    assert cfg.by_name("eth0").stat("rx_bytes") == 60
    with pytest.raises(ValueError):
        cfg.add_interface("eth0")
