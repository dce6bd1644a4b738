"""Netlink framing (netlink(7)): message headers, attributes, and the
kernel's side of one request: acks, NLMSG_ERROR, dumps ending in NLMSG_DONE.

Sans-IO: bytes in, reply datagrams out; the protocol (netlink_route.py)
answers each request message through a ``Handler``.

Facts from Linux (net/netlink/af_netlink.c: netlink_rcv_skb, netlink_ack,
netlink_dump):

* A request buffer holds messages back to back, each aligned to 4 bytes.
  Processing stops silently at a header shorter than 16 bytes or longer
  than what is left.
* A message without NLM_F_REQUEST, or a control type (below 0x10), is not
  handed to the protocol; it is acknowledged only when NLM_F_ACK asks.
* An error is always answered by NLMSG_ERROR (errno negated, then the
  request's header and, unless NETLINK_CAP_ACK, its payload); success only
  under NLM_F_ACK (the header alone). A dump that started is not acked.
* A dump's replies carry NLM_F_MULTI and come in datagrams of at most
  NLMSG_GOODSIZE (or the largest buffer the reader used, up to 32 KiB less
  overhead); NLMSG_DONE (an int 0) comes in a datagram of its own.
* Replies carry the request's sequence number and the requester's port id.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable

from shm.records import record

NLMSGHDR = struct.Struct("<IHHII")  # len, type, flags, seq, pid
NLMSG_HDRLEN = NLMSGHDR.size
RTATTR = struct.Struct("<HH")
I32 = struct.Struct("<i")
U32 = struct.Struct("<I")

NLMSG_NOOP = 1
NLMSG_ERROR = 2
NLMSG_DONE = 3
NLMSG_MIN_TYPE = 0x10

NLM_F_REQUEST = 0x1
NLM_F_MULTI = 0x2
NLM_F_ACK = 0x4
NLM_F_ROOT = 0x100
NLM_F_MATCH = 0x200
NLM_F_DUMP = NLM_F_ROOT | NLM_F_MATCH
NLM_F_CAPPED = 0x100  # in NLMSG_ERROR: the request's payload left out

NLMSG_GOODSIZE = 3776  # SKB_WITH_OVERHEAD(PAGE_SIZE)
NLMSG_MAX_DUMP = 32768 - 320  # SKB_WITH_OVERHEAD(32768)


def align(n: int) -> int:
    return (n + 3) & ~3


def attr(kind: int, value: bytes) -> bytes:
    """One rtattr/nlattr, padded to 4 bytes."""
    n = RTATTR.size + len(value)
    return RTATTR.pack(n, kind) + value + bytes(align(n) - n)


def attr_u32(kind: int, value: int) -> bytes:
    return attr(kind, U32.pack(value & 0xFFFFFFFF))


def attr_u8(kind: int, value: int) -> bytes:
    return attr(kind, bytes([value & 0xFF]))


def attr_str(kind: int, value: str) -> bytes:
    return attr(kind, value.encode() + b"\0")


def parse_attrs(raw: bytes) -> dict[int, bytes]:
    """The attributes of a payload tail (the last of each kind wins); a
    malformed one ends the list, as nla_parse's callers see it."""
    out: dict[int, bytes] = {}
    off = 0
    while off + RTATTR.size <= len(raw):
        n, kind = RTATTR.unpack_from(raw, off)
        if n < RTATTR.size or off + n > len(raw):
            break
        out[kind & 0x3FFF] = raw[off + RTATTR.size:off + n]  # NLA_TYPE_MASK
        off += align(n)
    return out


@record(slots=True)
class Request:
    """One request message as the protocol sees it."""

    type: int
    flags: int
    seq: int
    pid: int
    payload: bytes

    @property
    def dump(self) -> bool:
        return bool(self.flags & NLM_F_DUMP)


@record(slots=True)
class Answer:
    """What the protocol makes of a request: an errno (0 for success), and
    messages as (type, body) pairs; ``dump`` sends them as a multipart
    series ending in NLMSG_DONE."""

    err: int = 0
    messages: list[tuple[int, bytes]] | None = None
    dump: bool = False


Handler = Callable[[Request], Answer]


def message(kind: int, flags: int, seq: int, pid: int, body: bytes) -> bytes:
    n = NLMSG_HDRLEN + len(body)
    return NLMSGHDR.pack(n, kind, flags, seq, pid) + body + bytes(align(n) - n)


def _chunks(msgs: Iterable[bytes], limit: int) -> list[bytes]:
    out: list[bytes] = []
    cur = b""
    for m in msgs:
        if cur and len(cur) + len(m) > limit:
            out.append(cur)
            cur = b""
        cur += m
    if cur:
        out.append(cur)
    return out


def _ack(req: Request, raw_msg: bytes, err: int, portid: int, cap_ack: bool) -> bytes:
    """NLMSG_ERROR for ``req``: errno ``err`` (0 is an ack)."""
    if err and not cap_ack:
        echoed, flags = raw_msg, 0
    else:
        echoed, flags = raw_msg[:NLMSG_HDRLEN], NLM_F_CAPPED
    return message(NLMSG_ERROR, flags, req.seq, portid, I32.pack(-err) + echoed)


def process(data: bytes, portid: int, handler: Handler, *, cap_ack: bool = False,
            dump_limit: int = NLMSG_GOODSIZE) -> list[bytes]:
    """The kernel's answer to one sendmsg: the datagrams to queue, in order."""
    out: list[bytes] = []
    off = 0
    while len(data) - off >= NLMSG_HDRLEN:
        n, kind, flags, seq, pid = NLMSGHDR.unpack_from(data, off)
        if n < NLMSG_HDRLEN or n > len(data) - off:
            break
        raw_msg = data[off:off + n]
        req = Request(kind, flags, seq, pid, raw_msg[NLMSG_HDRLEN:])
        off += min(align(n), len(data) - off)
        answer = Answer()
        if flags & NLM_F_REQUEST and kind >= NLMSG_MIN_TYPE:
            answer = handler(req)
        if answer.err == 0 and answer.dump:
            body = [message(t, NLM_F_MULTI, seq, portid, b) for t, b in answer.messages or ()]
            out.extend(_chunks(body, dump_limit))
            out.append(message(NLMSG_DONE, NLM_F_MULTI, seq, portid, I32.pack(0)))
            continue
        if answer.err == 0:
            for t, b in answer.messages or ():
                out.append(message(t, 0, seq, portid, b))
        if answer.err or flags & NLM_F_ACK:
            out.append(_ack(req, raw_msg, answer.err, portid, cap_ack))
    return out
