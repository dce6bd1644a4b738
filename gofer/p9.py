"""A sans-IO 9P2000.L codec: message objects to bytes and bytes to message objects.

Nothing here reads a socket, touches shared memory or starts a thread: the Gofer
server and the Sentry's gofer client own the transport and call `encode`,
`decode` or a `FrameDecoder`. Keeping the codec pure makes it fuzzable and lets the
same code run on both sides of the trust boundary.

Facts about the wire format that shaped this module:

* A frame is ``size[4] type[1] tag[2] body``, little-endian, and ``size`` counts
  itself. Strings are ``len[2]`` plus UTF-8 bytes without a NUL; a qid is
  ``type[1] version[4] path[8]``.
* The peer is untrusted (DESIGN.md, trust boundary 4/5). Every length is checked
  against the bytes actually present before it is used, a frame's size is
  checked against ``max_size`` as soon as its four size bytes arrive (so a peer
  cannot make us buffer a 4 GiB frame), and every malformed input ends in
  `RemoteProtocolError`, never IndexError/struct.error/UnicodeError or a hang.
* 9P2000.L reports failures only as ``Rlerror(errno)``; `errno_reply` is the one
  place that builds one from an errno.

The message classes live in `gofer.p9_messages` and `gofer.p9_messages_fs`
(their building blocks in `gofer.p9_types`) and are re-exported here, so
callers need only ``from gofer import p9``.
"""

from __future__ import annotations

import errno as _errno
import operator
import struct
from collections.abc import Callable, Iterable

from gofer.p9_messages import *  # noqa: F403  (re-export: the public message API)
from gofer.p9_messages import Rlerror
from gofer.p9_messages_fs import *  # noqa: F403  (likewise)
from gofer.p9_types import *  # noqa: F403  (likewise: errors, kinds, Qid, Dirent)
from gofer.p9_types import (
    INT_KINDS,
    MAXWELEM,
    REGISTRY,
    Dirent,
    Kind,
    LocalProtocolError,
    Message,
    Qid,
    RemoteProtocolError,
)

# Sizes and special values -------------------------------------------------------

VERSION_9P2000_L = "9P2000.L"
HEADER_SIZE = 7
"""size[4] type[1] tag[2]."""
IOHDRSZ = 24
"""Room the largest I/O header (Twrite: header + fid + offset + count) needs."""
MAX_MSIZE = (1 << 20) + IOHDRSZ
"""Largest frame we accept by default: 1 MiB of payload plus the I/O header."""

P9_NOTAG = 0xFFFF
"""Tag of Tversion, which precedes any tag bookkeeping."""
P9_NOFID = 0xFFFF_FFFF
""""No fid", e.g. Tattach.afid when there is no authentication."""
P9_NONUNAME = 0xFFFF_FFFF
"""Tattach.n_uname when the user is named only by the uname string."""

# Qid types (bits of Qid.type).
P9_QTDIR = 0x80
P9_QTAPPEND = 0x40
P9_QTEXCL = 0x20
P9_QTMOUNT = 0x10
P9_QTAUTH = 0x08
P9_QTTMP = 0x04
P9_QTSYMLINK = 0x02
P9_QTLINK = 0x01
P9_QTFILE = 0x00

# Tgetattr.request_mask / Rgetattr.valid bits.
P9_GETATTR_MODE = 0x0000_0001
P9_GETATTR_NLINK = 0x0000_0002
P9_GETATTR_UID = 0x0000_0004
P9_GETATTR_GID = 0x0000_0008
P9_GETATTR_RDEV = 0x0000_0010
P9_GETATTR_ATIME = 0x0000_0020
P9_GETATTR_MTIME = 0x0000_0040
P9_GETATTR_CTIME = 0x0000_0080
P9_GETATTR_INO = 0x0000_0100
P9_GETATTR_SIZE = 0x0000_0200
P9_GETATTR_BLOCKS = 0x0000_0400
P9_GETATTR_BTIME = 0x0000_0800
P9_GETATTR_GEN = 0x0000_1000
P9_GETATTR_DATA_VERSION = 0x0000_2000
P9_GETATTR_BASIC = 0x0000_07FF
"""Everything struct stat holds (mode .. blocks)."""
P9_GETATTR_ALL = 0x0000_3FFF

# Tsetattr.valid bits.
P9_SETATTR_MODE = 0x0000_0001
P9_SETATTR_UID = 0x0000_0002
P9_SETATTR_GID = 0x0000_0004
P9_SETATTR_SIZE = 0x0000_0008
P9_SETATTR_ATIME = 0x0000_0010
P9_SETATTR_MTIME = 0x0000_0020
P9_SETATTR_CTIME = 0x0000_0040
P9_SETATTR_ATIME_SET = 0x0000_0080
"""With ATIME: use atime_sec/nsec; without it the server uses "now"."""
P9_SETATTR_MTIME_SET = 0x0000_0100

# Tlopen/Tlcreate flags: 9P2000.L carries the Linux (x86-64/generic) O_* values.
P9_DOTL_RDONLY = 0o0
P9_DOTL_WRONLY = 0o1
P9_DOTL_RDWR = 0o2
P9_DOTL_ACCMODE = 0o3
P9_DOTL_CREATE = 0o100
P9_DOTL_EXCL = 0o200
P9_DOTL_NOCTTY = 0o400
P9_DOTL_TRUNC = 0o1000
P9_DOTL_APPEND = 0o2000
P9_DOTL_NONBLOCK = 0o4000
P9_DOTL_DSYNC = 0o10000
P9_DOTL_FASYNC = 0o20000
P9_DOTL_DIRECT = 0o40000
P9_DOTL_LARGEFILE = 0o100000
P9_DOTL_DIRECTORY = 0o200000
P9_DOTL_NOFOLLOW = 0o400000
P9_DOTL_NOATIME = 0o1000000
P9_DOTL_CLOEXEC = 0o2000000
P9_DOTL_SYNC = 0o4010000

# Tunlinkat.flags.
P9_AT_REMOVEDIR = 0x200

# Dirent.type: Linux DT_* values.
P9_DT_UNKNOWN = 0
P9_DT_FIFO = 1
P9_DT_CHR = 2
P9_DT_DIR = 4
P9_DT_BLK = 6
P9_DT_REG = 8
P9_DT_LNK = 10
P9_DT_SOCK = 12

# Tlock/Tgetlock: lock types, Tlock.flags bits, Rlock.status.
P9_LOCK_TYPE_RDLCK = 0
P9_LOCK_TYPE_WRLCK = 1
P9_LOCK_TYPE_UNLCK = 2
P9_LOCK_FLAGS_BLOCK = 1
P9_LOCK_FLAGS_RECLAIM = 2
P9_LOCK_SUCCESS = 0
P9_LOCK_BLOCKED = 1
P9_LOCK_ERROR = 2
P9_LOCK_GRACE = 3

# The compiled wire plans ------------------------------------------------------

_HEADER = struct.Struct("<IBH")
_SIZE = struct.Struct("<I")
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_QID = struct.Struct("<BIQ")
_DIRENT_FIXED = struct.Struct("<BIQQB")  # qid, offset, type (then the name)

# A plan step: ("fixed", Struct, fields, getter) for a run of integers and qids
# packed by one Struct, or (kind, None, ((name, kind),), None) for one
# variable-length field. ``getter`` (an operator.attrgetter, C code) reads a run
# of plain integers at once, as a tuple; None when the run holds a qid (or for
# one field, where it reads a value, not a tuple).
_Step = tuple[str, "struct.Struct | None", tuple[tuple[str, Kind], ...],
              "Callable[[Message], tuple[int, ...]] | None"]
_PLANS: dict[int, tuple[type[Message], tuple[_Step, ...]]] = {}


def _compile(schema: tuple[tuple[str, Kind], ...]) -> tuple[_Step, ...]:
    """Merge consecutive fixed-width fields into one precompiled struct.Struct."""
    steps: list[_Step] = []
    run: list[tuple[str, Kind]] = []

    def flush() -> None:
        if run:
            fmt = "<" + "".join("BIQ" if k is Kind.QID else k.value for _, k in run)
            plain = len(run) > 1 and all(k is not Kind.QID for _, k in run)
            get = operator.attrgetter(*(n for n, _ in run)) if plain else None
            steps.append(("fixed", struct.Struct(fmt), tuple(run), get))
            run.clear()

    for name, kind in schema:
        if kind in INT_KINDS or kind is Kind.QID:
            run.append((name, kind))
        else:
            flush()
            steps.append((kind.value, None, ((name, kind),), None))
    flush()
    return tuple(steps)


for _type, _cls in REGISTRY.items():
    _PLANS[_type] = (_cls, _compile(_cls.SCHEMA))

# Encoding ------------------------------------------------------------------------


def _pack_str(value: str) -> bytes:
    raw = value.encode("utf-8", "surrogateescape")
    return _U16.pack(len(raw)) + raw


def encode(msg: Message, tag: int, max_size: int = MAX_MSIZE) -> bytes:
    """Serialize ``msg`` as one frame with ``tag``.

    Raises LocalProtocolError for a bad tag, an unregistered message, or a frame
    larger than ``max_size`` (the negotiated msize): sending such a frame would
    only make a correct peer drop the connection.
    """
    plan = _PLANS.get(getattr(msg, "TYPE", -1))
    if plan is None or type(msg) is not plan[0]:
        raise LocalProtocolError(f"not a 9P message: {msg!r}")
    if not isinstance(tag, int) or not 0 <= tag <= 0xFFFF:
        raise LocalProtocolError(f"tag {tag!r} does not fit in u16")
    parts: list[bytes] = [b""]
    for op, st, items, get in plan[1]:
        if get is not None:
            parts.append(st.pack(*get(msg)))  # type: ignore[union-attr]
            continue
        if st is not None:
            values: list[int] = []
            for name, kind in items:
                v = getattr(msg, name)
                if kind is Kind.QID:
                    values += (v.type, v.version, v.path)
                else:
                    values.append(v)
            parts.append(st.pack(*values))
            continue
        value = getattr(msg, items[0][0])
        if op == "s":
            parts.append(_pack_str(value))
        elif op == "data":
            parts += (_U32.pack(len(value)), value)
        elif op == "strs":
            parts.append(_U16.pack(len(value)))
            parts += (_pack_str(s) for s in value)
        else:  # qids
            parts.append(_U16.pack(len(value)))
            parts += (_QID.pack(q.type, q.version, q.path) for q in value)
    size = sum(map(len, parts)) + HEADER_SIZE
    if size > max_size:
        raise LocalProtocolError(f"{type(msg).__name__} frame of {size} bytes > {max_size}")
    parts[0] = _HEADER.pack(size, msg.TYPE, tag)
    return b"".join(parts)


# Decoding ------------------------------------------------------------------------


class _Reader:
    """A cursor over one frame body that refuses to read past its end."""

    __slots__ = ("buf", "pos", "end", "tag")

    def __init__(self, buf: bytes, pos: int, end: int, tag: int | None) -> None:
        self.buf, self.pos, self.end, self.tag = buf, pos, end, tag

    def take(self, n: int, what: str) -> int:
        """Reserve ``n`` bytes and return where they start."""
        start = self.pos
        if n > self.end - start:
            raise RemoteProtocolError(f"{what}: needs {n} bytes, {self.end - start} left", self.tag)
        self.pos = start + n
        return start

    def unpack(self, st: struct.Struct, what: str) -> tuple[int, ...]:
        return st.unpack_from(self.buf, self.take(st.size, what))

    def string(self, what: str) -> str:
        (n,) = self.unpack(_U16, what)
        start = self.take(n, what)
        return self.buf[start : start + n].decode("utf-8", "surrogateescape")

    def qid(self, what: str) -> Qid:
        return Qid(*self.unpack(_QID, what))

    def count(self, what: str) -> int:
        (n,) = self.unpack(_U16, what)
        if n > MAXWELEM:
            raise RemoteProtocolError(f"{what}: {n} elements > {MAXWELEM}", self.tag)
        return n


def _decode_body(cls: type[Message], steps: tuple[_Step, ...], r: _Reader) -> Message:
    args: list[object] = []  # the fields in schema order, which is the steps' order
    for op, st, items, get in steps:
        if st is not None:
            values = r.unpack(st, cls.__name__)
            if get is not None:
                args += values
                continue
            i = 0
            for _name, kind in items:
                if kind is Kind.QID:
                    args.append(Qid(values[i], values[i + 1], values[i + 2]))
                    i += 3
                else:
                    args.append(values[i])
                    i += 1
            continue
        what = f"{cls.__name__}.{items[0][0]}"
        if op == "s":
            args.append(r.string(what))
        elif op == "data":
            (n,) = r.unpack(_U32, what)
            start = r.take(n, what)
            args.append(r.buf[start : start + n])
        elif op == "strs":
            args.append(tuple(r.string(what) for _ in range(r.count(what))))
        else:  # qids
            args.append(tuple(r.qid(what) for _ in range(r.count(what))))
    if r.pos != r.end:
        raise RemoteProtocolError(
            f"{cls.__name__}: {r.end - r.pos} trailing bytes inside the frame", r.tag
        )
    try:
        return cls(*args)
    except LocalProtocolError as exc:  # the same rules, but this time the peer broke them
        raise RemoteProtocolError(f"{cls.__name__}: {exc}", r.tag) from None


def _check_size(size: int, max_size: int) -> None:
    if size < HEADER_SIZE:
        raise RemoteProtocolError(f"frame size {size} is smaller than the 9P header")
    if size > max_size:
        raise RemoteProtocolError(f"frame size {size} exceeds the limit {max_size}")


def decode(buf: bytes | bytearray | memoryview, max_size: int = MAX_MSIZE) -> tuple[int, Message]:
    """Parse exactly one complete frame; return (tag, message).

    The buffer must hold the frame and nothing else: a short buffer or extra bytes
    after the frame raise RemoteProtocolError (use FrameDecoder for streams).
    """
    data = bytes(buf)
    if len(data) < HEADER_SIZE:
        raise RemoteProtocolError(f"short frame: {len(data)} bytes")
    size, msg_type, tag = _HEADER.unpack_from(data)
    _check_size(size, max_size)
    if size != len(data):
        raise RemoteProtocolError(f"frame size field says {size}, buffer holds {len(data)}")
    plan = _PLANS.get(msg_type)
    if plan is None:
        raise RemoteProtocolError(f"unknown message type {msg_type}", tag)
    return tag, _decode_body(plan[0], plan[1], _Reader(data, HEADER_SIZE, size, tag))


class FrameDecoder:
    """Split a byte stream into frames and decode them, whatever the chunking.

    Call `feed` with whatever arrived, then `next_message` until it returns None.
    A frame whose size field is out of range is rejected as soon as its four size
    bytes are visible, before its body is waited for. That error is fatal: the
    stream has lost its framing, so every later call raises it again. A frame
    that is well framed but malformed inside raises RemoteProtocolError with the
    frame's tag and is dropped; the stream stays usable after it.

    ``max_size`` may be lowered once Tversion/Rversion settle the msize.
    """

    __slots__ = ("_buf", "_fatal", "max_size")

    def __init__(self, max_size: int = MAX_MSIZE) -> None:
        self._buf = bytearray()
        self._fatal: RemoteProtocolError | None = None
        self.max_size = max_size

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Append received bytes; nothing is parsed until next_message."""
        self._buf += data

    @property
    def pending(self) -> int:
        """Bytes buffered but not yet returned as a message."""
        return len(self._buf)

    def next_message(self) -> tuple[int, Message] | None:
        """Return the next (tag, message), or None if no full frame is buffered yet."""
        if self._fatal is not None:
            raise self._fatal
        if len(self._buf) < _SIZE.size:
            return None
        (size,) = _SIZE.unpack_from(self._buf)
        try:
            _check_size(size, self.max_size)
        except RemoteProtocolError as exc:
            self._fatal = exc
            raise
        if len(self._buf) < size:
            return None
        frame = bytes(self._buf[:size])
        del self._buf[:size]
        return decode(frame, self.max_size)


# Readdir payloads --------------------------------------------------------------


def encode_dirents(entries: Iterable[Dirent], limit: int = 0xFFFF_FFFF) -> bytes:
    """Pack entries for Rreaddir.data, stopping before the first one that would
    push the blob past ``limit`` (Treaddir.count).

    Only whole entries are sent; the client resumes from the last entry's offset,
    so an entry that did not fit is simply listed again by the next Treaddir.
    """
    parts: list[bytes] = []
    total = 0
    for e in entries:
        if not isinstance(e, Dirent):
            raise LocalProtocolError(f"not a Dirent: {e!r}")
        q = e.qid
        raw = _DIRENT_FIXED.pack(q.type, q.version, q.path, e.offset, e.type) + _pack_str(e.name)
        if total + len(raw) > limit:
            break
        parts.append(raw)
        total += len(raw)
    return b"".join(parts)


def decode_dirents(data: bytes | bytearray | memoryview) -> list[Dirent]:
    """Unpack an Rreaddir data blob; malformed input raises RemoteProtocolError."""
    buf = bytes(data)
    r = _Reader(buf, 0, len(buf), None)
    out: list[Dirent] = []
    while r.pos < r.end:
        qtype, version, path, offset, dtype = r.unpack(_DIRENT_FIXED, "dirent")
        out.append(Dirent(Qid(qtype, version, path), offset, dtype, r.string("dirent.name")))
    return out


# Errors on the wire --------------------------------------------------------------

_MAX_ERRNO = 4095  # Linux never uses errno values above this


def errno_reply(err: int) -> Rlerror:
    """The one place an errno becomes a wire reply.

    Accepts ``EBADF`` or ``-EBADF`` (handlers differ in convention). 0 or a value
    that is no errno would tell the client "failure" with no meaning, so it is
    reported as EIO rather than invented into something plausible.
    """
    if not isinstance(err, int) or isinstance(err, bool):
        raise LocalProtocolError(f"errno must be an int, got {err!r}")
    code = -err if err < 0 else err
    if not 0 < code <= _MAX_ERRNO:
        code = _errno.EIO
    return Rlerror(code)
