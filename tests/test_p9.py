"""Tests for the sans-IO 9P2000.L codec (gofer/p9.py, p9_types.py, p9_messages*.py).

The codec sits on a trust boundary, so besides round trips these tests check the
two promises the rest of pyvisor relies on: malformed bytes raise only P9Error
subclasses (never IndexError, struct.error, ... or a hang), and whatever decodes
successfully re-encodes to exactly the same bytes.
"""

from __future__ import annotations

import errno
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gofer import p9
from gofer.p9 import (
    MAX_MSIZE,
    REGISTRY,
    Dirent,
    FrameDecoder,
    Kind,
    LocalProtocolError,
    Message,
    P9Error,
    Qid,
    RemoteProtocolError,
    decode,
    encode,
)
from shm.records import FrozenInstanceError

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
QUICK = settings(max_examples=40, deadline=None)

# Strategies built from each message's own SCHEMA ------------------------------

INT_RANGE = {
    Kind.U8: (0, 0xFF),
    Kind.U16: (0, 0xFFFF),
    Kind.U32: (0, 0xFFFF_FFFF),
    Kind.U64: (0, 2**64 - 1),
    Kind.S64: (-(2**63), 2**63 - 1),  # times' seconds: u64 on the wire, two's complement
}

# Names as the wire sees them: arbitrary bytes, decoded the way the codec decodes
# them, plus ordinary Unicode text.
names = st.one_of(
    st.binary(max_size=24).map(lambda b: b.decode("utf-8", "surrogateescape")),
    st.text(max_size=12),
)
qids = st.builds(
    Qid,
    st.integers(0, 0xFF),
    st.integers(0, 0xFFFF_FFFF),
    st.integers(0, 2**64 - 1),
)


def field_strategy(kind: Kind) -> st.SearchStrategy[object]:
    if kind in INT_RANGE:
        return st.integers(*INT_RANGE[kind])
    return {
        Kind.STR: names,
        Kind.QID: qids,
        Kind.STRS: st.lists(names, max_size=p9.MAXWELEM).map(tuple),
        Kind.QIDS: st.lists(qids, max_size=p9.MAXWELEM).map(tuple),
        Kind.DATA: st.binary(max_size=200),
    }[kind]


def message_strategy(cls: type[Message]) -> st.SearchStrategy[Message]:
    return st.builds(cls, **{name: field_strategy(kind) for name, kind in cls.SCHEMA})


ALL_CLASSES = sorted(REGISTRY.values(), key=lambda c: c.TYPE)
any_message = st.one_of([message_strategy(c) for c in ALL_CLASSES])
tags = st.integers(0, 0xFFFF)
frames = st.builds(encode, any_message, tags)

# Registry and dataclass shape ---------------------------------------------------

REQUIRED = """Tversion Rversion Tattach Rattach Twalk Rwalk Tlopen Rlopen Tlcreate Rlcreate
Tread Rread Twrite Rwrite Tclunk Rclunk Tremove Rremove Tgetattr Rgetattr Tsetattr
Rsetattr Treaddir Rreaddir Tmkdir Rmkdir Tsymlink Rsymlink Treadlink Rreadlink Tlink
Rlink Tmknod Rmknod Trename Rrename Trenameat Rrenameat Tunlinkat Runlinkat Tfsync Rfsync
Tstatfs Rstatfs Rlerror Tflush Rflush Tlock Rlock Tgetlock Rgetlock""".split()


def test_registry_holds_every_required_message() -> None:
    registered = {cls.__name__: cls for cls in REGISTRY.values()}
    assert set(REQUIRED) <= set(registered)
    for cls in REGISTRY.values():
        assert REGISTRY[cls.TYPE] is cls
        assert cls.TYPE == p9.MsgType[cls.__name__.upper()]
        if cls.__name__.startswith("R") and cls is not p9.Rlerror:
            # Every reply is its request's number plus one.
            assert registered["T" + cls.__name__[1:]].TYPE + 1 == cls.TYPE


def test_messages_are_frozen_and_slotted() -> None:
    msg = p9.Tclunk(fid=3)
    with pytest.raises(FrozenInstanceError):
        msg.fid = 4  # type: ignore[misc]
    assert not hasattr(msg, "__dict__")
    assert hash(msg) == hash(p9.Tclunk(fid=3))


# Round trips ----------------------------------------------------------------------


def test_times_before_1970_travel_as_twos_complement_u64() -> None:
    """Linux's v9fs reads a u64 seconds field into a signed time64_t; the codec
    carries a pre-1970 time the same way (it refused it, and the Gofer's reply
    to Tgetattr of such a file became EIO)."""
    msg = p9.Tsetattr(1, p9.P9_SETATTR_MTIME | p9.P9_SETATTR_MTIME_SET, 0, 0, 0, 0,
                      0, 0, -1, 999_999_999)
    raw = encode(msg, 7)
    assert raw[-16:-8] == b"\xff" * 8  # mtime_sec: the u64 2**64-1
    assert decode(raw) == (7, msg)


@pytest.mark.parametrize("cls", ALL_CLASSES, ids=lambda c: c.__name__)
@QUICK
@given(data=st.data(), tag=tags)
def test_every_message_round_trips(cls: type[Message], data: st.DataObject, tag: int) -> None:
    msg = data.draw(message_strategy(cls))
    frame = encode(msg, tag)
    assert struct.unpack_from("<IBH", frame) == (len(frame), cls.TYPE, tag)
    assert decode(frame) == (tag, msg)
    assert encode(decode(frame)[1], tag) == frame


@FUZZ
@given(raw=st.binary(max_size=300))
def test_any_byte_name_round_trips_to_the_same_bytes(raw: bytes) -> None:
    name = raw.decode("utf-8", "surrogateescape")
    frame = encode(p9.Twalk(1, 2, (name,)), 9)
    _, msg = decode(frame)
    assert isinstance(msg, p9.Twalk)
    assert msg.names[0].encode("utf-8", "surrogateescape") == raw
    assert frame[-len(raw) - 2 :] == struct.pack("<H", len(raw)) + raw


def test_list_and_bytearray_fields_are_normalized() -> None:
    msg = p9.Twalk(1, 2, ["a", "b"])  # type: ignore[arg-type]
    assert msg.names == ("a", "b")
    assert p9.Rread(bytearray(b"xy")).data == b"xy"
    assert decode(encode(msg, 1))[1] == msg


# Golden frames, computed by hand from the 9P2000.L description -----------------


@pytest.mark.parametrize(
    ("msg", "tag", "wire"),
    [
        # size=21 type=100 tag=NOTAG msize=8192 version="9P2000.L"
        (
            p9.Tversion(8192, "9P2000.L"),
            0xFFFF,
            "15000000 64 ffff 00200000 0800 3950323030302e4c",
        ),
        # Rlerror(ENOENT): size=11 type=7 tag=1 ecode=2
        (p9.Rlerror(errno.ENOENT), 1, "0b000000 07 0100 02000000"),
        # Twalk fid=1 newfid=2 ["a", "bc"]: size=24 type=110 tag=3
        (
            p9.Twalk(1, 2, ("a", "bc")),
            3,
            "18000000 6e 0300 01000000 02000000 0200 0100 61 0200 6263",
        ),
        # Tgetattr fid=1 mask=BASIC: size=19 type=24 tag=5
        (
            p9.Tgetattr(1, p9.P9_GETATTR_BASIC),
            5,
            "13000000 18 0500 01000000 ff07000000000000",
        ),
        # Rattach qid(dir, version 1, path 2): size=20 type=105 tag=0
        (
            p9.Rattach(Qid(p9.P9_QTDIR, 1, 2)),
            0,
            "14000000 69 0000 80 01000000 0200000000000000",
        ),
        # Rread "hi": size=13 type=117 tag=7 count=2
        (p9.Rread(b"hi"), 7, "0d000000 75 0700 02000000 6869"),
        # Tlopen fid=4 flags=O_RDWR|O_TRUNC: size=15 type=12 tag=2
        (
            p9.Tlopen(4, p9.P9_DOTL_RDWR | p9.P9_DOTL_TRUNC),
            2,
            "0f000000 0c 0200 04000000 02020000",
        ),
        # Rclunk: header only
        (p9.Rclunk(), 0x1234, "07000000 79 3412"),
    ],
)
def test_golden_frames(msg: Message, tag: int, wire: str) -> None:
    expected = bytes.fromhex(wire)
    assert encode(msg, tag) == expected
    assert decode(expected) == (tag, msg)


def test_golden_dirent() -> None:
    entry = Dirent(Qid(0, 0, 5), 1, p9.P9_DT_REG, "x")
    wire = bytes.fromhex("00 00000000 0500000000000000 0100000000000000 08 0100 78")
    assert p9.encode_dirents([entry]) == wire
    assert p9.decode_dirents(wire) == [entry]


# Streams ------------------------------------------------------------------------


@QUICK
@given(msgs=st.lists(st.tuples(any_message, tags), max_size=6))
def test_frame_decoder_one_byte_at_a_time(msgs: list[tuple[Message, int]]) -> None:
    stream = b"".join(encode(m, t) for m, t in msgs)
    dec = FrameDecoder()
    got = []
    for i in range(len(stream)):
        dec.feed(stream[i : i + 1])
        while (item := dec.next_message()) is not None:
            got.append(item)
    assert got == [(t, m) for m, t in msgs]
    assert dec.pending == 0
    assert dec.next_message() is None


@QUICK
@given(
    msgs=st.lists(st.tuples(any_message, tags), min_size=1, max_size=6),
    cuts=st.lists(st.integers(0, 4000), max_size=8),
)
def test_frame_decoder_any_chunking(msgs: list[tuple[Message, int]], cuts: list[int]) -> None:
    stream = b"".join(encode(m, t) for m, t in msgs)
    bounds = sorted({0, len(stream), *(c % (len(stream) + 1) for c in cuts)})
    dec = FrameDecoder()
    got = []
    for lo, hi in zip(bounds, bounds[1:], strict=False):
        dec.feed(memoryview(stream)[lo:hi])
        while (item := dec.next_message()) is not None:
            got.append(item)
    assert got == [(t, m) for m, t in msgs]


def test_frame_decoder_survives_a_bad_body_and_reports_its_tag() -> None:
    good = encode(p9.Tclunk(1), 5)
    # A well-framed Twalk claiming 17 names: rejected, but the stream goes on.
    bad = struct.pack("<IBHIIH", 17, p9.MsgType.TWALK, 42, 1, 2, 17)
    dec = FrameDecoder()
    dec.feed(bad + good)
    with pytest.raises(RemoteProtocolError) as info:
        dec.next_message()
    assert info.value.tag == 42
    assert dec.next_message() == (5, p9.Tclunk(1))


# Rejections ---------------------------------------------------------------------


def test_trailing_and_missing_bytes_rejected() -> None:
    frame = encode(p9.Tread(1, 2, 3), 4)
    with pytest.raises(RemoteProtocolError):
        decode(frame + b"\x00")
    with pytest.raises(RemoteProtocolError):
        decode(frame[:-1])
    with pytest.raises(RemoteProtocolError):
        decode(b"")
    # Trailing garbage *inside* the frame: the size field covers one extra byte.
    inner = struct.pack("<I", len(frame) + 1) + frame[4:] + b"\x00"
    with pytest.raises(RemoteProtocolError, match="trailing") as info:
        decode(inner)
    assert info.value.tag == 4


def test_oversize_frame_rejected_before_its_body_arrives() -> None:
    dec = FrameDecoder(max_size=100)
    header = struct.pack("<IBH", 101, p9.MsgType.TREAD, 1)
    for b in header[:3]:
        dec.feed(bytes([b]))
        assert dec.next_message() is None
    dec.feed(header[3:4])
    with pytest.raises(RemoteProtocolError, match="exceeds"):
        dec.next_message()
    # Framing is lost for good: the decoder keeps refusing.
    dec.feed(encode(p9.Tclunk(1), 1))
    with pytest.raises(RemoteProtocolError):
        dec.next_message()
    huge = FrameDecoder()
    huge.feed(b"\xff\xff\xff\xff")
    with pytest.raises(RemoteProtocolError):
        huge.next_message()
    with pytest.raises(RemoteProtocolError):
        decode(encode(p9.Rread(b"x" * 200), 1), max_size=100)


def test_undersize_frame_rejected() -> None:
    dec = FrameDecoder()
    dec.feed(struct.pack("<I", 6))
    with pytest.raises(RemoteProtocolError, match="smaller"):
        dec.next_message()


def test_max_msize_payload_fits_and_more_does_not() -> None:
    payload = b"\0" * (1 << 20)
    frame = encode(p9.Twrite(1, 0, payload), 1)
    assert len(frame) <= MAX_MSIZE
    assert decode(frame)[1] == p9.Twrite(1, 0, payload)
    with pytest.raises(LocalProtocolError):
        encode(p9.Rread(b"\0" * MAX_MSIZE), 1)


@pytest.mark.parametrize(
    "frame",
    [
        struct.pack("<IBH", 7, 99, 1),  # unknown type
        struct.pack("<IBH", 7, 6, 1),  # Tlerror is never sent
        struct.pack("<IBHIH", 13, p9.MsgType.TREADLINK, 1, 1, 0)[:11],  # body too short
        struct.pack("<IBHH", 9, p9.MsgType.RREADLINK, 1, 5),  # string past the end
        struct.pack("<IBHI", 11, p9.MsgType.RREAD, 1, 1),  # Rread count > bytes present
        struct.pack("<IBHIQI", 23, p9.MsgType.TWRITE, 1, 1, 0, 2**32 - 1),  # Twrite count
        struct.pack("<IBHH", 9, p9.MsgType.RWALK, 1, 17),  # nwqid > MAXWELEM
        struct.pack("<IBHIIH", 17, p9.MsgType.TWALK, 1, 1, 2, 1),  # name missing
        struct.pack("<IBHI", 11, p9.MsgType.RREAD, 1, 0) + b"z",  # size says 11, 12 present
    ],
)
def test_malformed_frames_rejected(frame: bytes) -> None:
    with pytest.raises(RemoteProtocolError):
        decode(frame)


@pytest.mark.parametrize(
    "build",
    [
        lambda: p9.Tclunk(-1),
        lambda: p9.Tclunk(2**32),
        lambda: p9.Tclunk(True),
        lambda: p9.Tclunk("1"),
        lambda: p9.Tflush(0x10000),
        lambda: p9.Tread(1, 2**64, 1),
        lambda: p9.Tlock(1, 256, 0, 0, 0, 0, ""),
        lambda: p9.Twalk(1, 2, ("a",) * 17),
        lambda: p9.Twalk(1, 2, "ab"),
        lambda: p9.Rwalk((Qid(0, 0, 0),) * 17),
        lambda: p9.Rwalk((1, 2)),
        lambda: p9.Tmkdir(1, "x" * 0x10000, 0o755, 0),
        lambda: p9.Tmkdir(1, "\ud800", 0o755, 0),  # a lone surrogate is not UTF-8
        lambda: p9.Tmkdir(1, b"raw", 0o755, 0),
        lambda: p9.Rread("text"),
        lambda: p9.Rattach((0, 0, 0)),
        lambda: Qid(0x100, 0, 0),
        lambda: Dirent(Qid(0, 0, 0), -1, 0, "x"),
    ],
)
def test_invalid_construction_is_a_local_error(build: object) -> None:
    with pytest.raises(LocalProtocolError):
        build()  # type: ignore[operator]


def test_encode_rejects_bad_tag_and_non_messages() -> None:
    with pytest.raises(LocalProtocolError):
        encode(p9.Tclunk(1), 0x10000)
    with pytest.raises(LocalProtocolError):
        encode(p9.Tclunk(1), -1)
    with pytest.raises(LocalProtocolError):
        encode(Qid(0, 0, 0), 1)  # type: ignore[arg-type]


# Fuzzing: only P9Error may escape, and success means a canonical frame ---------


def _check_decode(frame: bytes) -> None:
    try:
        tag, msg = decode(frame)
    except P9Error:
        return
    assert isinstance(msg, Message)
    assert encode(msg, tag) == frame


@FUZZ
@given(raw=st.binary(max_size=200))
def test_fuzz_random_bytes(raw: bytes) -> None:
    _check_decode(raw)


@FUZZ
@given(
    msg_type=st.sampled_from(sorted(REGISTRY) + [0, 6, 255]), tag=tags, body=st.binary(max_size=120)
)
def test_fuzz_random_bodies_with_a_valid_header(msg_type: int, tag: int, body: bytes) -> None:
    _check_decode(struct.pack("<IBH", 7 + len(body), msg_type, tag) + body)


@st.composite
def mutated_frames(draw: st.DrawFn) -> bytes:
    frame = bytearray(draw(frames))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "set", "cut", "insert", "delete"]))
        pos = draw(st.integers(0, len(frame)))
        if op == "flip" and pos < len(frame):
            frame[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and pos < len(frame):
            frame[pos] = draw(st.sampled_from([0, 1, 0x10, 0x11, 0x7F, 0x80, 0xFF]))
        elif op == "cut":
            del frame[pos:]
        elif op == "insert":
            frame[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete":
            del frame[pos : pos + draw(st.integers(1, 4))]
    if draw(st.booleans()) and len(frame) >= 4:
        # Keep the size field honest so the mutation reaches the body parser.
        frame[0:4] = struct.pack("<I", len(frame))
    return bytes(frame)


@FUZZ
@given(frame=mutated_frames())
def test_fuzz_mutated_valid_frames(frame: bytes) -> None:
    _check_decode(frame)


@FUZZ
@given(chunks=st.lists(st.one_of(frames, mutated_frames(), st.binary(max_size=16)), max_size=6))
def test_fuzz_frame_decoder_stream(chunks: list[bytes]) -> None:
    dec = FrameDecoder(max_size=4096)
    for chunk in chunks:
        dec.feed(chunk)
        for _ in range(len(chunk) + 1):  # bounded: each success consumes >= 7 bytes
            try:
                item = dec.next_message()
            except RemoteProtocolError:
                continue
            if item is None:
                break
            assert isinstance(item[1], Message)


# Readdir blobs ------------------------------------------------------------------

dirents = st.builds(Dirent, qids, st.integers(0, 2**64 - 1), st.integers(0, 0xFF), names)


@QUICK
@given(entries=st.lists(dirents, max_size=10))
def test_dirents_round_trip(entries: list[Dirent]) -> None:
    blob = p9.encode_dirents(entries)
    assert p9.decode_dirents(blob) == entries
    reply = p9.Rreaddir(blob)
    assert p9.decode_dirents(decode(encode(reply, 1))[1].data) == entries  # type: ignore[attr-defined]


@QUICK
@given(entries=st.lists(dirents, max_size=10), limit=st.integers(0, 400))
def test_encode_dirents_sends_only_whole_entries_within_limit(
    entries: list[Dirent], limit: int
) -> None:
    blob = p9.encode_dirents(entries, limit)
    assert len(blob) <= limit
    got = p9.decode_dirents(blob)
    assert got == entries[: len(got)]
    if len(got) < len(entries):
        whole = p9.encode_dirents(entries[: len(got) + 1])
        assert len(whole) > limit


@FUZZ
@given(raw=st.binary(max_size=100))
def test_fuzz_decode_dirents(raw: bytes) -> None:
    try:
        entries = p9.decode_dirents(raw)
    except P9Error:
        return
    assert p9.encode_dirents(entries) == raw


# Errors on the wire ---------------------------------------------------------------


def test_errno_reply() -> None:
    assert p9.errno_reply(errno.ENOENT) == p9.Rlerror(errno.ENOENT)
    assert p9.errno_reply(-errno.EBADF) == p9.Rlerror(errno.EBADF)
    assert p9.errno_reply(0) == p9.Rlerror(errno.EIO)
    assert p9.errno_reply(1 << 40) == p9.Rlerror(errno.EIO)
    with pytest.raises(LocalProtocolError):
        p9.errno_reply("ENOENT")  # type: ignore[arg-type]


def test_error_classes() -> None:
    assert issubclass(LocalProtocolError, P9Error)
    assert issubclass(RemoteProtocolError, P9Error)
    assert not issubclass(LocalProtocolError, RemoteProtocolError)
