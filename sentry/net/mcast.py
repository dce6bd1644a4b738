"""IP multicast group membership options, recorded per socket.

setsockopt(IP_ADD_MEMBERSHIP / IP_DROP_MEMBERSHIP, MCAST_JOIN_GROUP /
MCAST_LEAVE_GROUP, and IPv6's IPV6_ADD/DROP_MEMBERSHIP) with Linux's
checks (net/ipv4/ip_sockglue.c, igmp.c; net/ipv6/mcast.c): a short option
or a group that is not multicast is EINVAL, an unknown interface ENODEV,
joining twice EADDRINUSE, leaving a group not joined EADDRNOTAVAIL.  A
socket made by accept() starts with no groups (the LTP's accept02: the
CVE-2017-8890 bug copied them).  No multicast datagram is delivered: there
is no multicast routing in the loopback stack, so membership is only
recorded (partial).
"""

from __future__ import annotations

import errno
import struct
from typing import Any

from sentry.kernel.errors import SyscallError
from sentry.net import consts as c

SOL_IP, SOL_IPV6 = 0, 41
IP_ADD_MEMBERSHIP, IP_DROP_MEMBERSHIP = 35, 36
IPV6_ADD_MEMBERSHIP, IPV6_DROP_MEMBERSHIP = 20, 21
MCAST_JOIN_GROUP, MCAST_LEAVE_GROUP = 42, 45
GROUP_REQ_SIZE = 136  # struct group_req: u32 interface, padding, sockaddr_storage
_JOIN = {SOL_IP: {IP_ADD_MEMBERSHIP: True, IP_DROP_MEMBERSHIP: False,
                  MCAST_JOIN_GROUP: True, MCAST_LEAVE_GROUP: False},
         SOL_IPV6: {IPV6_ADD_MEMBERSHIP: True, IPV6_DROP_MEMBERSHIP: False,
                    MCAST_JOIN_GROUP: True, MCAST_LEAVE_GROUP: False}}


def handles(level: int, name: int) -> bool:
    return name in _JOIN.get(level, {})


def _netconfig() -> Any:
    from sentry.kernel.task import current_task  # the socket layer sits below the kernel

    task = current_task()
    return getattr(task.kernel, "netconfig", None) if task is not None else None


def _covers(dst: bytes, prefixlen: int, addr: bytes) -> bool:
    bits = int.from_bytes(addr, "big") >> (len(addr) * 8 - prefixlen) if prefixlen else 0
    net = int.from_bytes(dst.ljust(len(addr), b"\0"), "big") >> (len(addr) * 8 - prefixlen) \
        if prefixlen else 0
    return bits == net


def _device(family: int, index: int, local: bytes, group: bytes) -> int:
    """The interface a membership is on (Linux's ip_mc_find_dev): the index
    given, else the one holding the local address given, else the one the
    route to the group leaves by; ENODEV when there is none."""
    cfg = _netconfig()
    if cfg is None:
        return index or 1
    if index:
        if cfg.interface(index) is None:
            raise SyscallError(errno.ENODEV)
        return index
    if any(local):
        for iface, a in cfg.addresses(family):
            if a.addr == local:
                return int(iface.index)
        raise SyscallError(errno.ENODEV)
    for r in cfg.routes(family):
        if _covers(r.dst, r.prefixlen, group):
            return int(r.ifindex)
    raise SyscallError(errno.ENODEV)


def _parse(level: int, name: int, raw: bytes) -> tuple[int, bytes, bytes]:
    """(interface index, local address, group address) of a request."""
    if name in (MCAST_JOIN_GROUP, MCAST_LEAVE_GROUP):
        if len(raw) < GROUP_REQ_SIZE:
            raise SyscallError(errno.EINVAL)
        (index,) = struct.unpack_from("<I", raw, 0)
        family = struct.unpack_from("<H", raw, 8)[0]
        want = c.AF_INET if level == SOL_IP else c.AF_INET6
        if family != want:
            raise SyscallError(errno.EINVAL)
        group = raw[12:16] if level == SOL_IP else raw[16:32]
        return index, bytes(4 if level == SOL_IP else 16), group
    if level == SOL_IP:  # struct ip_mreq, or ip_mreqn with an interface index
        if len(raw) < 8:
            raise SyscallError(errno.EINVAL)
        index = struct.unpack_from("<i", raw, 8)[0] if len(raw) >= 12 else 0
        return max(index, 0), raw[4:8], raw[0:4]
    if len(raw) < 20:  # struct ipv6_mreq
        raise SyscallError(errno.EINVAL)
    return struct.unpack_from("<I", raw, 16)[0], bytes(16), raw[0:16]


def setopt(ep: Any, level: int, name: int, raw: bytes) -> None:
    """Join or leave a group on ``ep`` (its ``mc_groups``: (interface,
    local address, group) of each membership)."""
    join = _JOIN[level][name]
    index, local, group = _parse(level, name, raw)
    multicast = group[0] >> 4 == 0xE if level == SOL_IP else group[0] == 0xFF
    if not multicast:
        raise SyscallError(errno.EINVAL)
    family = c.AF_INET if level == SOL_IP else c.AF_INET6
    groups: list[tuple[int, bytes, bytes]] = ep.__dict__.setdefault("mc_groups", [])
    if join:
        dev = _device(family, index, local, group)
        if any(g == group and i == dev for i, _, g in groups):
            raise SyscallError(errno.EADDRINUSE)
        groups.append((dev, local, group))
        return
    if not index and not any(local):
        _device(family, 0, local, group)  # ENODEV with no way to the group
    for k, (i, addr, g) in enumerate(groups):
        if g != group or (index and i != index) or (not index and any(local) and addr != local):
            continue
        del groups[k]
        return
    raise SyscallError(errno.EADDRNOTAVAIL)
