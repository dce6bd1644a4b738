"""Large TCP sends through the packet socket (GSO), as gVisor's fdbased
endpoint does: the stack hands the host kernel one TCP segment of up to
~64 KiB with a virtio_net_hdr saying "cut this into segments of the
peer's MSS", and the kernel does the cutting (and the checksums).

Why: each segment costs PyTCP ~100-300 us of Python (assembly, timers,
the peer's ACK to parse). One 64 KiB segment instead of 45 wire-sized ones
divides that by ~45 on the send path, and the peer (it gets one large skb
over the veth) acknowledges it with one ACK, not 22.

How, from outside PyTCP:

* The host sets PACKET_VNET_HDR on the packet socket (link.open_packet):
  every frame read or written then starts with a 10-byte virtio_net_hdr
  (include/uapi/linux/virtio_net.h). On reads its NEEDS_CSUM flag replaces
  PACKET_AUXDATA's TP_STATUS_CSUMNOTREADY.
* A session, once ESTABLISHED, gets ``_snd_mss`` raised to a multiple of
  the peer's MSS near 64 KiB (the wire MSS is kept for gso_size).
* PyTCP's IP layers fragment anything longer than ``config.TAP_MTU``; they
  now see a view of its config whose TAP_MTU is the large one while a
  GSO session transmits (a thread-local set around ``_transmit_packet``),
  the real one otherwise (UDP and ICMP still fragment as before).
* ``header(frame)`` builds the virtio_net_hdr for an assembled frame: none
  for a frame within the MTU; for a larger TCP one, GSO TCPV4/TCPV6 with
  the wire MSS and a partial checksum (the field holds the pseudo-header
  sum, CHECKSUM_PARTIAL), which the kernel completes per segment.
"""

from __future__ import annotations

import struct
import threading
from typing import Any

VNET_HDR = struct.Struct("=BBHHHH")  # flags, gso_type, hdr_len, gso_size, csum_start, csum_offset
VNET_LEN = VNET_HDR.size
NEEDS_CSUM = 1
GSO_TCPV4 = 1
GSO_TCPV6 = 4
GSO_BYTES = 65000  # IP's 16-bit length, less headers, rounded down
NO_GSO = bytes(VNET_LEN)

_TLS = threading.local()  # .mss: the wire MSS while a GSO session transmits
_REAL: dict[str, int] = {}


class _ConfigView:
    """pytcp.config as PyTCP's IP layers read it, with TAP_MTU large while
    a GSO session transmits on this thread."""

    def __init__(self, config: Any) -> None:
        self._config = config

    def __getattr__(self, name: str) -> Any:
        if name == "TAP_MTU" and getattr(_TLS, "mss", 0):
            return 65535
        return getattr(self._config, name)


def install(mtu: int) -> None:
    """Let TCP sessions send large segments (class-wide, once)."""
    from pytcp import config
    from pytcp.protocols.ip4 import phtx as ip4_phtx
    from pytcp.protocols.ip6 import phtx as ip6_phtx
    from pytcp.protocols.tcp.session import FsmState, TcpSession

    _REAL["mtu"] = mtu
    if getattr(TcpSession, "_pyvisor_gso", False):
        return
    ip4_phtx.config = _ConfigView(config)
    ip6_phtx.config = _ConfigView(config)
    change_state = TcpSession._change_state
    transmit = TcpSession._transmit_packet

    def changed(self: Any, state: Any) -> None:
        change_state(self, state)
        if state is FsmState.ESTABLISHED and not getattr(self, "_wire_mss", 0):
            self._wire_mss = self._snd_mss
            self._snd_mss = GSO_BYTES // self._snd_mss * self._snd_mss

    def transmit_packet(self: Any, *args: Any, **kwargs: Any) -> None:
        _TLS.mss = getattr(self, "_wire_mss", 0)
        try:
            transmit(self, *args, **kwargs)
        finally:
            _TLS.mss = 0

    TcpSession._change_state = changed
    TcpSession._transmit_packet = transmit_packet
    TcpSession._pyvisor_gso = True


def _sum16(data: bytes | memoryview) -> int:
    total = sum(struct.unpack(f"!{len(data) // 2}H", data[:len(data) & ~1]))
    if len(data) & 1:
        total += data[-1] << 8
    return total


def header(frame: memoryview) -> bytes:
    """The virtio_net_hdr to write before ``frame`` (an Ethernet frame PyTCP
    assembled); rewrites a large TCP frame's checksum field to the partial
    (pseudo-header) sum the kernel expects with NEEDS_CSUM."""
    mss = getattr(_TLS, "mss", 0)
    if not mss or len(frame) <= _REAL.get("mtu", 1500) + 14:
        return NO_GSO
    kind = bytes(frame[12:14])
    if kind == b"\x08\x00" and frame[23] == 6:
        l4 = 14 + (frame[14] & 0x0F) * 4
        length = len(frame) - l4
        pseudo = _sum16(frame[26:34]) + 6 + length
        gso = GSO_TCPV4
    elif kind == b"\x86\xdd" and frame[20] == 6:
        l4 = 54
        length = len(frame) - l4
        pseudo = _sum16(frame[22:54]) + 6 + (length >> 16) + (length & 0xFFFF)
        gso = GSO_TCPV6
    else:
        return NO_GSO
    while pseudo >> 16:
        pseudo = (pseudo & 0xFFFF) + (pseudo >> 16)
    struct.pack_into("!H", frame, l4 + 16, pseudo)
    hdr_len = l4 + (frame[l4 + 12] >> 4) * 4
    return VNET_HDR.pack(NEEDS_CSUM, gso, hdr_len, mss, l4, 16)
