"""The one host descriptor of --network=sandbox: an AF_PACKET socket on the
container namespace's interface, and what the stack copies from it.

Opened by the sandbox host (sentry/oci/host.py), not by the Sentry: the host
runs in the container's network namespace, unconfined, and at `start` time,
after the runtime's hooks (Docker's libnetwork-setkey) moved the veth in.  The
Sentry receives the descriptor over its channel (SCM_RIGHTS), as runsc's
sandbox receives its fdbased endpoint's fd, so its own filter can go on
denying socket(2).

Facts used (packet(7), netdevice(7)):

* An AF_PACKET SOCK_RAW socket bound to one interface with ETH_P_ALL reads and
  writes whole Ethernet frames of that interface only.
* Frames the host kernel sends over a veth leave with CHECKSUM_PARTIAL: the
  TCP/UDP checksum field holds only the pseudo-header sum.  PACKET_AUXDATA
  reports that as TP_STATUS_CSUMNOTREADY; the reader completes the checksum
  (``fix_checksum``) before the stack validates it.
* SIOCGIFHWADDR/SIOCGIFMTU/SIOCGIFADDR/SIOCGIFNETMASK answer for the calling
  process's network namespace; so does /proc/self/net/route.
"""

from __future__ import annotations

import array
import fcntl
import socket
import struct
from typing import Any

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_AUXDATA = 8
TP_STATUS_CSUMNOTREADY = 1 << 3
SIOCGIFFLAGS = 0x8913
SIOCGIFADDR = 0x8915
SIOCSIFADDR = 0x8916
SIOCGIFNETMASK = 0x891B
SIOCGIFMTU = 0x8921
SIOCGIFHWADDR = 0x8927
SIOCDIFADDR = 0x8936
IFF_UP = 0x1
IFF_LOOPBACK = 0x8
AUXDATA = struct.Struct("=IIIHHHH")
FRAME_MAX = 1 << 17  # a GSO frame the host passes whole: up to 64 KiB + headers
PACKET_VNET_HDR = 15


class LinkError(Exception):
    """The namespace has no interface the stack can attach to."""


def _ifreq(sock: socket.socket, cmd: int, name: str) -> bytes:
    return fcntl.ioctl(sock.fileno(), cmd, struct.pack("16s24x", name.encode()))


def _inet(sock: socket.socket, cmd: int, name: str) -> bytes | None:
    try:
        return _ifreq(sock, cmd, name)[20:24]
    except OSError:
        return None


def _gateway(name: str) -> bytes | None:
    """The default route's gateway through ``name`` (/proc/self/net/route)."""
    try:
        with open("/proc/self/net/route") as f:
            lines = f.read().splitlines()[1:]
    except OSError:
        return None
    for line in lines:
        cols = line.split()
        if len(cols) > 7 and cols[0] == name and cols[1] == "00000000" and cols[7] == "00000000":
            return struct.pack("<I", int(cols[2], 16))
    return None


def _global6(name: str) -> tuple[bytes, int] | None:
    """The interface's first global IPv6 address and prefix length
    (/proc/self/net/if_inet6: address, index, prefix, scope, flags, name)."""
    try:
        with open("/proc/self/net/if_inet6") as f:
            rows = [line.split() for line in f]
    except OSError:
        return None
    for r in rows:
        if len(r) == 6 and r[5] == name and r[3] == "00":
            return bytes.fromhex(r[0]), int(r[2], 16)
    return None


def _gateway6(name: str) -> bytes | None:
    """The IPv6 default route's next hop through ``name``
    (/proc/self/net/ipv6_route: dst, dst_len, src, src_len, next hop, ...)."""
    try:
        with open("/proc/self/net/ipv6_route") as f:
            rows = [line.split() for line in f]
    except OSError:
        return None
    for r in rows:
        if len(r) == 10 and r[9] == name and r[1] == "00" and r[0] == "0" * 32 \
                and r[4] != "0" * 32:
            return bytes.fromhex(r[4])
    return None


def describe(name: str | None = None) -> dict[str, Any] | None:
    """The first up, non-loopback interface with an IPv4 address (or ``name``):
    its name, MAC, MTU, address, prefix length and default gateway, and its
    global IPv6 address, prefix and default gateway when it has one; None if
    the namespace has none (docker --network=none: loopback only)."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for _, ifname in socket.if_nameindex():
            if name is not None and ifname != name:
                continue
            flags = struct.unpack_from("<H", _ifreq(probe, SIOCGIFFLAGS, ifname), 16)[0]
            if flags & IFF_LOOPBACK or not flags & IFF_UP:
                continue
            addr = _inet(probe, SIOCGIFADDR, ifname)
            mask = _inet(probe, SIOCGIFNETMASK, ifname)
            if addr is None or mask is None:
                continue
            mac = _ifreq(probe, SIOCGIFHWADDR, ifname)[18:24]
            mtu = struct.unpack_from("<i", _ifreq(probe, SIOCGIFMTU, ifname), 16)[0]
            out = {"ifname": ifname, "mac": mac, "mtu": mtu, "addr": addr,
                   "prefix": bin(int.from_bytes(mask, "big")).count("1"),
                   "gateway": _gateway(ifname)}
            v6 = _global6(ifname)
            if v6 is not None:
                out["addr6"], out["prefix6"] = v6
                out["gateway6"] = _gateway6(ifname)
            return out
    finally:
        probe.close()
    return None


def strip_addresses(ifname: str) -> None:
    """Take the IPv4 address off the host's side of the interface (as runsc
    does): the stack owns it now, and the host kernel, still holding it,
    would answer the stack's peers itself (ARP, and a RST to every SYN-ACK
    the stack's connections get).  SIOCSIFADDR with 0.0.0.0 deletes it, and
    the routes through it with it."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        req = struct.pack("16sH2x4s8x", ifname.encode(), socket.AF_INET, bytes(4))
        fcntl.ioctl(probe.fileno(), SIOCSIFADDR, req)
    finally:
        probe.close()


def strip_addresses6(ifname: str, addr: bytes, prefix: int) -> None:
    """Take the global IPv6 address off the host's side too (SIOCDIFADDR
    with an in6_ifreq), for the same reason: the host kernel would answer
    neighbour solicitations and reset the stack's connections."""
    probe = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    try:
        req = struct.pack("16sIi", addr, prefix, socket.if_nametoindex(ifname))
        fcntl.ioctl(probe.fileno(), SIOCDIFADDR, req)
    finally:
        probe.close()


def open_packet(ifname: str) -> socket.socket:
    """The AF_PACKET socket on ``ifname``, each frame behind a virtio_net_hdr
    (checksum state on reads; GSO on writes)."""
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    try:
        sock.bind((ifname, 0))
        sock.setsockopt(SOL_PACKET, PACKET_VNET_HDR, 1)  # netstack/gso.py says why
    except OSError:
        sock.close()
        raise
    return sock


def _csum(data: bytes | bytearray | memoryview, initial: int = 0) -> int:
    """The Internet checksum's folded one's-complement sum, in native order."""
    if len(data) & 1:
        data = bytes(data) + b"\0"
    total = sum(array.array("H", bytes(data))) + initial
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def fix_checksum(frame: bytearray) -> None:
    """Complete the TCP/UDP checksum of an IPv4 or IPv6 frame (no extension
    headers) the host left partial."""
    if len(frame) >= 54 and frame[12:14] == b"\x86\xdd":
        proto = frame[20]
        l4 = 54
        end = l4 + int.from_bytes(frame[18:20], "big")
        pseudo = bytes(frame[22:54]) + (end - l4).to_bytes(4, "big") + bytes((0, 0, 0, proto))
    elif len(frame) >= 34 and frame[12:14] == b"\x08\x00":
        ihl = (frame[14] & 0x0F) * 4
        proto = frame[23]
        l4 = 14 + ihl
        end = 14 + int.from_bytes(frame[16:18], "big")
        pseudo = bytes(frame[26:34]) + bytes((0, proto)) + (end - l4).to_bytes(2, "big")
    else:
        return
    if proto == 6:
        field = l4 + 16
    elif proto == 17:
        field = l4 + 6
    else:
        return
    if end > len(frame) or field + 2 > end:
        return
    frame[field:field + 2] = b"\0\0"
    s = _csum(frame[l4:end], _csum(pseudo))
    value = ~s & 0xFFFF
    if proto == 17 and value == 0:
        value = 0xFFFF
    frame[field:field + 2] = struct.pack("=H", value)


_SOCKS: dict[int, socket.socket] = {}


def frame_reader(fd: int) -> Any:
    """A reader of ``fd``'s frames into one reused buffer: ``read(block)``
    returns a frame (bytes, without its virtio_net_hdr, its checksum
    completed when the header says the host left it partial), or raises
    BlockingIOError when ``block`` is False and no frame is queued."""
    from sentry.net.netstack.gso import NEEDS_CSUM, VNET_LEN

    buf = bytearray(FRAME_MAX)
    view = memoryview(buf)
    sock = _SOCKS.get(fd)
    if sock is None:
        sock = _SOCKS[fd] = socket.socket(fileno=fd)
    recv = sock.recv_into

    def read(block: bool) -> bytes:
        n = recv(buf, FRAME_MAX, 0 if block else socket.MSG_DONTWAIT)
        if n > VNET_LEN and buf[0] & NEEDS_CSUM:
            frame = bytearray(view[VNET_LEN:n])
            fix_checksum(frame)
            return bytes(frame)
        return bytes(view[VNET_LEN:n])

    return read
