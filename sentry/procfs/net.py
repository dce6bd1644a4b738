"""/proc/net: dev, route, if_inet6 from the Sentry's interface table
(sentry/net/netconfig.py); tcp, tcp6, udp, udp6, unix from the sockets the
sandbox's processes hold; snmp with the counters it has; sockstat with the
sockets allocated. In Linux's exact
format, so ss, netstat and ifconfig read them.

Facts from Linux (net/ipv4/tcp_ipv4.c, udp.c, net/ipv6/tcp_ipv6.c,
datagram.c, net/unix/af_unix.c, net/core/net-procfs.c, net/ipv4/fib_trie.c,
net/ipv6/addrconf.c):

* An IPv4 address prints as the 32-bit word in host order (%08X of the
  network-order value: 127.0.0.1 is 0100007F), a port in hex; IPv6 as four
  such words. tcp and route lines are padded to 149 and 127 columns, udp
  to 127; the v6 files are not padded.
* tcp lists hashed sockets: listeners (state 0A, rx_queue the accept
  queue) and connections (01 established, 08 close-wait; inode 0 while in
  an accept queue); a socket only bound is not listed. udp lists bound
  sockets, 07 or, connected, 01; its first column is the hash slot (the
  port here).
* unix lists every AF_UNIX socket: Flags 00010000 for a listener, St 03
  when connected, else 01; the path, or @ and the abstract name.
* route lists the main table's IPv4 routes: flags RTF_UP, RTF_GATEWAY,
  RTF_HOST.
* if_inet6's scope is IPv6's (host 10, link 20, global 00), not
  rtnetlink's.

Sockets are found through the fd tables of the live processes, which is
also where their inode numbers (socket:[N]) and owners come from; a socket
only in flight in an SCM_RIGHTS message is not listed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from sentry.net import consts as c
from sentry.net.netconfig import (
    RT_SCOPE_HOST,
    RT_SCOPE_LINK,
    RT_SCOPE_UNIVERSE,
    RT_TABLE_MAIN,
    RTN_UNICAST,
)
from sentry.net.socketfile import SocketFile
from sentry.procfs.nodes import Gen, ProcFile, TableDir

if TYPE_CHECKING:
    from sentry.kernel.kernel import Kernel
    from sentry.procfs.fs import ProcFilesystem
    from sentry.vfs.inode import Inode

TCP_ESTABLISHED, TCP_CLOSE, TCP_CLOSE_WAIT, TCP_LISTEN = 0x01, 0x07, 0x08, 0x0A
SS_UNCONNECTED, SS_CONNECTED = 1, 3
SO_ACCEPTCON = 1 << 16
RTF_UP, RTF_GATEWAY, RTF_HOST = 0x1, 0x2, 0x4
NULL_PTR = "0000000000000000"  # %pK under kptr_restrict

TCP_HEADER = ("  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt"
              "   uid  timeout inode")
TCP6_HEADER = ("  sl  local_address                         remote_address                 "
               "       st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode")
UDP_HEADER = ("   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt"
              "   uid  timeout inode ref pointer drops")
UDP6_HEADER = ("  sl  local_address                         remote_address                 "
               "       st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref "
               "pointer drops")
ROUTE_HEADER = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT"
DEV_HEADER = (
    "Inter-|   Receive                                                |  Transmit\n"
    " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs "
    "drop fifo colls carrier compressed\n")
UNIX_HEADER = "Num       RefCount Protocol Flags    Type St Inode Path\n"
_V6_SCOPE = {RT_SCOPE_HOST: 0x10, RT_SCOPE_LINK: 0x20, RT_SCOPE_UNIVERSE: 0x00}


# -- finding the sockets ---------------------------------------------------------

def sockets(kernel: Kernel) -> list[tuple[SocketFile, int]]:
    """Every open socket of the sandbox with the uid of a process holding it,
    each once, in inode order."""
    with kernel.lock:
        groups = [g for g in kernel.thread_groups.values() if not g.zombie and g.fds is not None]
    seen: dict[int, tuple[SocketFile, int]] = {}
    tables: set[int] = set()
    for g in groups:
        if id(g.fds) in tables:
            continue
        tables.add(id(g.fds))
        uid = g.tasks[0].creds.euid if g.tasks else 0
        for fd in g.fds.fds():
            try:
                desc = g.fds.get(fd)
            except Exception:  # noqa: BLE001 - closed meanwhile
                continue
            if isinstance(desc, SocketFile) and id(desc) not in seen:
                seen[id(desc)] = (desc, uid)
    return sorted(seen.values(), key=lambda s: s[0].ino)


def _hex4(ip4: bytes) -> str:
    return f"{int.from_bytes(ip4, 'little'):08X}"


def _hex16(ip: bytes) -> str:
    return "".join(_hex4(ip[i:i + 4]) for i in range(0, 16, 4))


def _inet(ep: Any, want_family: int, proto: int) -> tuple[Any, Any] | None:
    """(local, remote) InetAddr of an inet endpoint of ``want_family`` and
    ``proto``, or None for other sockets."""
    if ep.family != want_family or getattr(ep, "proto", None) != proto:
        return None
    return ep.local, getattr(ep, "remote", None)


def _tcp_rows(kernel: Kernel, family: int) -> Iterator[tuple[Any, Any, int, int, int, int, int]]:
    """(local, remote, state, tx, rx, uid, ino) of the hashed TCP sockets,
    listeners first."""
    listeners, conns = [], []
    for f, uid in sockets(kernel):
        ep = f.endpoint
        addrs = _inet(ep, family, c.IPPROTO_TCP)
        if addrs is None:
            continue
        local, remote = addrs
        if getattr(ep, "listening", False):
            queued = list(ep.acceptq)
            listeners.append((local, None, TCP_LISTEN, 0, len(queued), uid, f.ino))
            # Connections not accepted yet: no file, inode 0.
            conns.extend((q.local, q.remote, TCP_ESTABLISHED, 0, q.nread(), uid, 0)
                         for q in queued)
        elif getattr(ep, "connected", False) and not getattr(ep, "reset", False):
            state = TCP_CLOSE_WAIT if getattr(ep, "fin", False) else TCP_ESTABLISHED
            conns.append((local, remote, state, 0, ep.nread(), uid, f.ino))
    yield from sorted(listeners, key=lambda r: r[0].port)
    yield from conns


def tcp(kernel: Kernel, family: int) -> bytes:
    """/proc/net/tcp or tcp6."""
    v4 = family == c.AF_INET
    lines = [f"{TCP_HEADER:<149}" if v4 else TCP6_HEADER]
    for i, (local, remote, st, tx, rx, uid, ino) in enumerate(_tcp_rows(kernel, family)):
        la = _hex4(local.ip[12:]) if v4 else _hex16(local.ip)
        rport = remote.port if remote is not None else 0
        if remote is None:
            ra = _hex4(bytes(4)) if v4 else _hex16(bytes(16))
        else:
            ra = _hex4(remote.ip[12:]) if v4 else _hex16(remote.ip)
        tail = (f"{st:02X} {tx:08X}:{rx:08X} 00:00000000 00000000 {uid:5d} {0:8d} {ino} 1 "
                f"{NULL_PTR} 100 0 0 10 {0 if st == TCP_LISTEN else -1}")
        line = f"{i:4d}: {la}:{local.port:04X} {ra}:{rport:04X} {tail}"
        lines.append(f"{line:<149}" if v4 else line)
    return ("\n".join(lines) + "\n").encode()


def udp(kernel: Kernel, family: int) -> bytes:
    """/proc/net/udp or udp6."""
    v4 = family == c.AF_INET
    lines = [f"{UDP_HEADER:<127}" if v4 else UDP6_HEADER]
    rows = []
    for f, uid in sockets(kernel):
        ep = f.endpoint
        if _inet(ep, family, c.IPPROTO_UDP) is None or not getattr(ep, "bound", False):
            continue
        rows.append((ep.local, ep.peer, getattr(ep, "rq_bytes", 0), uid, f.ino))
    for local, peer, rx, uid, ino in sorted(rows, key=lambda r: r[0].port):
        st = TCP_ESTABLISHED if peer is not None else TCP_CLOSE
        la = _hex4(local.ip[12:]) if v4 else _hex16(local.ip)
        if peer is None:
            ra, rport = (_hex4(bytes(4)) if v4 else _hex16(bytes(16))), 0
        else:
            ra, rport = (_hex4(peer.ip[12:]) if v4 else _hex16(peer.ip)), peer.port
        line = (f"{local.port:5d}: {la}:{local.port:04X} {ra}:{rport:04X} {st:02X} "
                f"{0:08X}:{rx:08X} 00:00000000 00000000 {uid:5d} {0:8d} {ino} 2 {NULL_PTR} 0")
        lines.append(f"{line:<127}" if v4 else line)
    return ("\n".join(lines) + "\n").encode()


def unix(kernel: Kernel) -> bytes:
    """/proc/net/unix."""
    out = [UNIX_HEADER]
    for f, _uid in sockets(kernel):
        ep = f.endpoint
        if ep.family != c.AF_UNIX:
            continue
        listening = bool(getattr(ep, "listening", False))
        connected = getattr(ep, "connected", False) or (
            ep.stype == c.SOCK_DGRAM and getattr(ep, "peer", None) is not None)
        st = SS_CONNECTED if connected and not listening else SS_UNCONNECTED
        line = (f"{NULL_PTR}: {2:08X} {0:08X} {SO_ACCEPTCON if listening else 0:08X} "
                f"{ep.stype:04X} {st:02X} {f.ino:5d}")
        name = ep.local.name
        if name:
            if name[:1] == b"\0":
                name = b"@" + name[1:].replace(b"\0", b"@")
            line += " " + name.decode("utf-8", "replace")
        out.append(line + "\n")
    return "".join(out).encode()


# -- from the interface table ----------------------------------------------------

def dev(kernel: Kernel) -> bytes:
    """/proc/net/dev: each interface's counters."""
    out = [DEV_HEADER]
    for i in kernel.netconfig.interfaces():
        s = i.stat
        out.append(
            f"{i.name:>6}:{s('rx_bytes'):8d} {s('rx_packets'):7d} {s('rx_errs'):4d} "
            f"{s('rx_drop'):4d} {0:4d} {0:5d} {0:10d} {0:9d} {s('tx_bytes'):8d} "
            f"{s('tx_packets'):7d} {s('tx_errs'):4d} {s('tx_drop'):4d} {0:4d} {0:5d} {0:7d} "
            f"{0:10d}\n")
    return "".join(out).encode()


def route(kernel: Kernel) -> bytes:
    """/proc/net/route: the main table's IPv4 routes."""
    cfg = kernel.netconfig
    names = {i.index: i.name for i in cfg.interfaces()}
    lines = [f"{ROUTE_HEADER:<127}"]
    for r in cfg.routes(c.AF_INET):
        if r.table != RT_TABLE_MAIN or r.rtype != RTN_UNICAST:
            continue
        mask = (((1 << 32) - 1) ^ ((1 << (32 - r.prefixlen)) - 1)).to_bytes(4, "big")
        flags = RTF_UP | (RTF_GATEWAY if r.gateway else 0) | (RTF_HOST if r.prefixlen == 32 else 0)
        line = (f"{names.get(r.ifindex, '*')}\t{_hex4(r.dst)}\t{_hex4(r.gateway or bytes(4))}\t"
                f"{flags:04X}\t0\t0\t{r.metric}\t{_hex4(mask)}\t0\t0\t0")
        lines.append(f"{line:<127}")
    return ("\n".join(lines) + "\n").encode()


def if_inet6(kernel: Kernel) -> bytes:
    """/proc/net/if_inet6: the IPv6 addresses."""
    out = []
    for i, a in kernel.netconfig.addresses(c.AF_INET6):
        scope = _V6_SCOPE.get(a.scope, 0)
        out.append(f"{a.addr.hex()} {i.index:02x} {a.prefixlen:02x} {scope:02x} "
                   f"{a.flags:02x} {i.name:>8}\n")
    return "".join(out).encode()


def snmp(kernel: Kernel) -> bytes:
    """/proc/net/snmp: the field names Linux gives, with the counters the
    Sentry has (open connections); the rest are 0."""
    est = sum(1 for fam in (c.AF_INET, c.AF_INET6) for r in _tcp_rows(kernel, fam)
              if r[2] in (TCP_ESTABLISHED, TCP_CLOSE_WAIT))
    tables = [
        ("Ip", "Forwarding DefaultTTL InReceives InHdrErrors InAddrErrors ForwDatagrams "
               "InUnknownProtos InDiscards InDelivers OutRequests OutDiscards OutNoRoutes "
               "ReasmTimeout ReasmReqds ReasmOKs ReasmFails FragOKs FragFails FragCreates "
               "OutTransmits", {"Forwarding": 2, "DefaultTTL": 64}),
        ("Icmp", "InMsgs InErrors InCsumErrors InDestUnreachs InTimeExcds InParmProbs "
                 "InSrcQuenchs InRedirects InEchos InEchoReps InTimestamps InTimestampReps "
                 "InAddrMasks InAddrMaskReps OutMsgs OutErrors OutRateLimitGlobal "
                 "OutRateLimitHost OutDestUnreachs OutTimeExcds OutParmProbs OutSrcQuenchs "
                 "OutRedirects OutEchos OutEchoReps OutTimestamps OutTimestampReps "
                 "OutAddrMasks OutAddrMaskReps", {}),
        ("Tcp", "RtoAlgorithm RtoMin RtoMax MaxConn ActiveOpens PassiveOpens AttemptFails "
                "EstabResets CurrEstab InSegs OutSegs RetransSegs InErrs OutRsts InCsumErrors",
         {"RtoAlgorithm": 1, "RtoMin": 200, "RtoMax": 120000, "MaxConn": -1, "CurrEstab": est}),
        ("Udp", "InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors "
                "InCsumErrors IgnoredMulti MemErrors", {}),
        ("UdpLite", "InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors "
                    "InCsumErrors IgnoredMulti MemErrors", {}),
    ]
    out = []
    for name, fields, values in tables:
        keys = fields.split()
        out.append(f"{name}: {' '.join(keys)}\n")
        out.append(f"{name}: {' '.join(str(values.get(k, 0)) for k in keys)}\n")
    return "".join(out).encode()


def sockstat(kernel: Kernel) -> bytes:
    """/proc/net/sockstat: sockets allocated and not yet freed (those only
    in flight in SCM_RIGHTS messages too: what unix_gc frees), and the
    hashed IPv4 TCP and UDP sockets. Memory counters are the Sentry's: 0."""
    tcp_in = sum(1 for _ in _tcp_rows(kernel, c.AF_INET))
    udp_in = sum(1 for f, _ in sockets(kernel) if _inet(f.endpoint, c.AF_INET, c.IPPROTO_UDP)
                 is not None and getattr(f.endpoint, "bound", False))
    return (f"sockets: used {SocketFile.live}\n"
            f"TCP: inuse {tcp_in} orphan 0 tw 0 alloc {tcp_in} mem 0\n"
            f"UDP: inuse {udp_in} mem 0\nUDPLITE: inuse 0\nRAW: inuse 0\n"
            "FRAG: inuse 0 memory 0\n").encode()


def net_dir(fs: ProcFilesystem) -> TableDir:
    """/proc/net (a directory here; Linux's is a link to self/net, whose
    content is per network namespace: one per sandbox)."""
    k = fs.kernel

    def f(gen: Gen) -> Callable[[], Inode]:
        return lambda: ProcFile(fs, gen)

    return TableDir(fs, {
        b"dev": f(lambda: dev(k)),
        b"if_inet6": f(lambda: if_inet6(k)),
        b"route": f(lambda: route(k)),
        b"snmp": f(lambda: snmp(k)),
        b"sockstat": f(lambda: sockstat(k)),
        b"tcp": f(lambda: tcp(k, c.AF_INET)),
        b"tcp6": f(lambda: tcp(k, c.AF_INET6)),
        b"udp": f(lambda: udp(k, c.AF_INET)),
        b"udp6": f(lambda: udp(k, c.AF_INET6)),
        b"unix": f(lambda: unix(k)),
    })
