"""AF_NETLINK/NETLINK_ROUTE and the interface table behind it
(sentry/net/netconfig.py, sentry/net/netlink*.py)."""

from __future__ import annotations

import shutil

import pytest
from helpers import Programs, Result, run_native, run_sandbox

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


# --- differential: the same tools natively (in a fresh network namespace
# whose lo is up: what --network=none shows) and in the sandbox ------------

# Each command's output, headed by the command: one sandbox run for them all.
TOOLS = (
    "ip addr", "ip link", "ip -6 addr", "ip -4 addr show dev lo", "ip -s link",
    "ip route", "ip -6 route", "ip route show table all", "ip -d link show lo",
    "ip route get 127.0.0.1", "ip route get 10.0.0.1", "ip link show dev nope0", "ip neigh",
    "ip -j addr", "busybox ip addr", "busybox ip link", "busybox ip route", "hostname -I",
)


def _script(cmds: tuple[str, ...]) -> str:
    return "".join(f"echo '== {c}'; {c} 2>&1; echo \"rc=$?\"\n" for c in cmds)


def _native_in_netns(argv: list[str]) -> Result:
    """``argv`` natively in a new network namespace with lo up."""
    if shutil.which("unshare") is None:
        pytest.skip("unshare(1) is not installed: no fresh network namespace to compare with")
    res = run_native(["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$@"', "sh",
                      *argv])
    if res.returncode != 0 and "unshare" in res.err:
        pytest.skip(f"cannot make a network namespace here: {res.err.strip()}")
    return res


def _same(nat: Result, box: Result) -> None:
    assert "Traceback" not in box.err, box.describe()
    assert box.out == nat.out, box.describe() + "\n--- native ---\n" + nat.out
    assert box.returncode == nat.returncode, box.describe()


@pytest.mark.sandbox
def test_route_tools_match_linux() -> None:
    """iproute2's ip, busybox's ip and hostname -I read the interface and
    route tables through NETLINK_ROUTE (and the SIOCGIF* ioctls)."""
    missing = [t for t in ("ip", "busybox", "hostname") if shutil.which(t) is None]
    if missing:
        pytest.skip(f"not installed on this host: {missing}")
    argv = ["sh", "-c", _script(TOOLS)]
    nat = _native_in_netns(argv)
    assert "inet 127.0.0.1/8 scope host lo" in nat.out, nat.describe()
    _same(nat, run_sandbox(argv))


@pytest.mark.sandbox
@pytest.mark.parametrize("variant", ("static", "static-pie"))
def test_netlink_socket_matches_linux(programs: Programs, variant: str) -> None:
    """sock_netlink.c: socket types, port ids, acks, errors, dumps, getifaddrs,
    interface ioctls, and changes refused without CAP_NET_ADMIN."""
    exe = programs.path("sock_netlink", variant)
    nat = _native_in_netns([str(exe)])
    assert "ifaddr lo family 2 127.0.0.1 flags 0x10049" in nat.out, nat.describe()
    _same(nat, run_sandbox([exe]))


@pytest.mark.sandbox
def test_changes_as_root_are_refused_not_applied() -> None:
    """With CAP_NET_ADMIN (do runs as root) a change is EOPNOTSUPP: the
    table stays as booted."""
    res = run_sandbox(["sh", "-c", "ip addr add 10.1.1.1/24 dev lo; echo rc=$?; ip -4 addr"])
    assert "RTNETLINK answers: Operation not supported" in res.err, res.describe()
    assert "rc=2" in res.out and "10.1.1.1" not in res.out, res.describe()


def test_dump_is_cut_into_datagrams_and_done_comes_alone() -> None:
    """netlink_msg.process: a dump larger than the datagram limit comes in
    several datagrams, every message multipart, then NLMSG_DONE alone."""
    from sentry.net.netlink_msg import NLM_F_DUMP, NLM_F_REQUEST, NLMSGHDR, Answer, process

    def handler(req: object) -> Answer:
        return Answer(messages=[(16, bytes(100))] * 50, dump=True)

    req = NLMSGHDR.pack(17, 18, NLM_F_REQUEST | NLM_F_DUMP, 9, 0) + b"\0\0\0\0"
    out = process(req, 4242, handler, dump_limit=1000)
    assert len(out) == 8  # 8 messages of 116 bytes fit in 1000: 7 datagrams, then DONE
    assert all(len(d) <= 1000 for d in out[:-1])
    assert NLMSGHDR.unpack_from(out[-1]) == (20, 3, 2, 9, 4242)
    assert sum(len(d) for d in out[:-1]) == 50 * 116
