"""9P2000.L messages' building blocks: errors, field kinds, Qid, the Message base.

This module holds what every message class is made of; the classes themselves
are declared by family in `gofer.p9_messages` (session, walking and opening,
data) and `gofer.p9_messages_fs` (attributes, namespace changes, locks), and
`gofer.p9` turns them into bytes and back. Import from `gofer.p9`, which
re-exports all three.

Why the shape is declared with `Annotated` field types: every message field says
both its Python type and its wire encoding (``fid: U32``). The codec compiles that
declaration once per class into a plan of precompiled `struct.Struct` runs, so
there is no per-message if/elif chain and no second list of fields to keep in sync
with the class. The classes behave as ``@dataclass(frozen=True, slots=True)``
ones do but are built without dataclasses' per-class code generation (see
`Message`): this module is on every sandbox's start-up path.

Validation lives in each class's generated ``__init__`` (inline for the plainly
valid case, `_fast_check`; `_check_field`, also behind ``__post_init__``,
otherwise): an out-of-range integer, a string that is not encodable or longer
than 65535 bytes, or a walk of more than `MAXWELEM` names raises
`LocalProtocolError`. The decoder builds messages through the same constructors
and re-raises such a failure as `RemoteProtocolError`, so one set of rules guards
both directions.

Strings are Python `str`, decoded from the wire with ``errors="surrogateescape"``:
Linux file names are arbitrary bytes (except NUL and "/"), and surrogateescape
maps every byte sequence to a str that encodes back to the very same bytes.
"""

import enum as _enum
import typing as _typing
from typing import Annotated as _Annotated
from typing import ClassVar as _ClassVar

from shm.records import Frozen as _Frozen
from shm.records import lazy_init as _lazy_init
from shm.records import record

MAXWELEM = 16
"""Most names one Twalk may carry (and qids one Rwalk may return)."""


class P9Error(Exception):
    """Base of every error the 9P codec raises."""


class LocalProtocolError(P9Error):
    """We were asked to build or encode something that is not valid 9P2000.L.

    This is a bug on our side (a caller passed a bad value), never the peer's.
    """


class RemoteProtocolError(P9Error):
    """The peer sent bytes that are not a valid 9P2000.L message.

    ``tag`` is set when the frame was intact enough to read its tag, so a server
    can still answer that request with Rlerror(EINVAL) instead of dropping the
    connection; it is None when framing itself is broken (nothing can follow).
    """

    def __init__(self, message: str, tag: int | None = None) -> None:
        super().__init__(message)
        self.tag = tag


class Kind(_enum.Enum):
    """How one field travels on the wire (the `gofer.p9` codec switches on this)."""

    U8 = "B"
    U16 = "H"
    U32 = "I"
    U64 = "Q"
    S64 = "q"  # a u64 on the wire read as two's complement: timestamps' seconds
    STR = "s"  # len[2] + UTF-8 bytes
    QID = "qid"  # type[1] version[4] path[8]
    STRS = "strs"  # n[2] + n * str (Twalk names)
    QIDS = "qids"  # n[2] + n * qid (Rwalk)
    DATA = "data"  # count[4] + count bytes (Rread, Twrite, Rreaddir)


INT_KINDS: dict[Kind, tuple[int, int]] = {
    Kind.U8: (0, 0xFF),
    Kind.U16: (0, 0xFFFF),
    Kind.U32: (0, 0xFFFF_FFFF),
    Kind.U64: (0, 0xFFFF_FFFF_FFFF_FFFF),
    Kind.S64: (-(1 << 63), (1 << 63) - 1),
}
"""Integer kinds and the (smallest, largest) value each can carry."""
_U64_MAX = INT_KINDS[Kind.U64][1]

U8 = _Annotated[int, Kind.U8]
U16 = _Annotated[int, Kind.U16]
U32 = _Annotated[int, Kind.U32]
U64 = _Annotated[int, Kind.U64]
S64 = _Annotated[int, Kind.S64]
Str = _Annotated[str, Kind.STR]


def _check_int(name: str, value: object, kind: Kind) -> int:
    # bool is an int subclass but never a meaningful 9P field value.
    if not isinstance(value, int) or isinstance(value, bool):
        raise LocalProtocolError(f"{name}: expected int, got {type(value).__name__}")
    lo, hi = INT_KINDS[kind]
    if not lo <= value <= hi:
        raise LocalProtocolError(f"{name}={value} does not fit in {kind.name}")
    return value


def _check_str(name: str, value: object) -> str:
    if not isinstance(value, str):
        raise LocalProtocolError(f"{name}: expected str, got {type(value).__name__}")
    try:
        size = len(value.encode("utf-8", "surrogateescape"))
    except UnicodeEncodeError as exc:
        raise LocalProtocolError(f"{name}: not encodable as UTF-8: {exc}") from None
    if size > 0xFFFF:
        raise LocalProtocolError(f"{name}: {size} bytes is longer than a 9P string")
    return value


@record(frozen=True, slots=True)
class Qid:
    """The server's identity for a file: what the 9P world uses as an inode number.

    ``type`` holds P9_QT* bits, ``version`` changes when the file does (0 if the
    server does not track it), ``path`` is unique per file on the server.
    """

    type: int
    version: int
    path: int

    def __post_init__(self) -> None:
        t, v, p = self.type, self.version, self.path
        if (type(t) is int and type(v) is int and type(p) is int  # the common case, inline
                and 0 <= t <= 0xFF and 0 <= v <= 0xFFFF_FFFF and 0 <= p <= _U64_MAX):
            return
        _check_int("qid.type", t, Kind.U8)
        _check_int("qid.version", v, Kind.U32)
        _check_int("qid.path", p, Kind.U64)


@record(frozen=True, slots=True)
class Dirent:
    """One entry of an Rreaddir data blob: qid[13] offset[8] type[1] name[s].

    ``offset`` is the cookie to pass in the next Treaddir to continue after this
    entry; ``type`` is a Linux DT_* value.
    """

    qid: Qid
    offset: int
    type: int
    name: str

    def __post_init__(self) -> None:
        if not isinstance(self.qid, Qid):
            raise LocalProtocolError("dirent.qid: expected Qid")
        _check_int("dirent.offset", self.offset, Kind.U64)
        _check_int("dirent.type", self.type, Kind.U8)
        _check_str("dirent.name", self.name)


QidField = _Annotated[Qid, Kind.QID]
Names = _Annotated[tuple[str, ...], Kind.STRS]
Qids = _Annotated[tuple[Qid, ...], Kind.QIDS]
Data = _Annotated[bytes, Kind.DATA]


def _check_field(name: str, value: object, kind: Kind) -> object:
    """Validate one field; return the (possibly normalized) value to store."""
    if kind in INT_KINDS:
        return _check_int(name, value, kind)
    if kind is Kind.STR:
        return _check_str(name, value)
    if kind is Kind.QID:
        if not isinstance(value, Qid):
            raise LocalProtocolError(f"{name}: expected Qid")
        return value
    if kind is Kind.DATA:
        # Normalize to bytes so messages stay immutable, hashable and comparable.
        if isinstance(value, bytes):
            return value
        if isinstance(value, bytearray | memoryview):
            return bytes(value)
        raise LocalProtocolError(f"{name}: expected bytes, got {type(value).__name__}")
    # STRS / QIDS: accept any list or tuple, store a tuple.
    if not isinstance(value, tuple | list):
        raise LocalProtocolError(f"{name}: expected a tuple")
    if len(value) > MAXWELEM:
        raise LocalProtocolError(f"{name}: {len(value)} elements, at most {MAXWELEM}")
    for item in value:
        if kind is Kind.STRS:
            _check_str(name, item)
        elif not isinstance(item, Qid):
            raise LocalProtocolError(f"{name}: expected Qid elements")
    return tuple(value)


class MsgType(_enum.IntEnum):
    """Message type numbers of 9P2000.L (each R is its T plus one)."""

    TLERROR = 6
    RLERROR = 7
    TSTATFS = 8
    RSTATFS = 9
    TLOPEN = 12
    RLOPEN = 13
    TLCREATE = 14
    RLCREATE = 15
    TSYMLINK = 16
    RSYMLINK = 17
    TMKNOD = 18
    RMKNOD = 19
    TRENAME = 20
    RRENAME = 21
    TREADLINK = 22
    RREADLINK = 23
    TGETATTR = 24
    RGETATTR = 25
    TSETATTR = 26
    RSETATTR = 27
    TXATTRWALK = 30
    RXATTRWALK = 31
    TXATTRCREATE = 32
    RXATTRCREATE = 33
    TREADDIR = 40
    RREADDIR = 41
    TFSYNC = 50
    RFSYNC = 51
    TLOCK = 52
    RLOCK = 53
    TGETLOCK = 54
    RGETLOCK = 55
    TLINK = 70
    RLINK = 71
    TMKDIR = 72
    RMKDIR = 73
    TRENAMEAT = 74
    RRENAMEAT = 75
    TUNLINKAT = 76
    RUNLINKAT = 77
    TVERSION = 100
    RVERSION = 101
    TAUTH = 102
    RAUTH = 103
    TATTACH = 104
    RATTACH = 105
    TFLUSH = 108
    RFLUSH = 109
    TWALK = 110
    RWALK = 111
    TWALKGETATTR = 112  # pyvisor's extension (9P2000's unused Topen number)
    RWALKGETATTR = 113
    TLOPENREAD = 114  # pyvisor's extension (9P2000's unused Tcreate number)
    RLOPENREAD = 115
    TREAD = 116
    RREAD = 117
    TWRITE = 118
    RWRITE = 119
    TCLUNK = 120
    RCLUNK = 121
    TREMOVE = 122
    RREMOVE = 123
    TLOPENFD = 124  # pyvisor's extension (9P2000's Tstat number, unused in .L)
    RLOPENFD = 125
    TWALKOPENFD = 126  # pyvisor's extension (9P2000's Twstat number, unused in .L)
    RWALKOPENFD = 127


class Message(_Frozen):
    """Base of every 9P message class: a frozen, slotted value, as
    ``@dataclass(frozen=True, slots=True)`` would make it.

    ``TYPE`` is the wire type number; ``SCHEMA`` lists (field name, `Kind`) in wire
    order. Both are filled in by the registering decorator from the class's own
    annotations, which also gives the class its slots and its ``__init__``.

    Why not ``@dataclass`` itself: it compiles six methods per class with a
    separate ``exec`` each, which cost ~35 ms for the ~57 messages, on the
    start-up path of every sandbox (the Sentry and the Gofer both import this).
    Here equality, hashing, repr and immutability are shared methods
    (shm.records.Frozen, over the field names), and the per-class ``__init__``
    functions are compiled together in one ``exec`` (`_compile_inits`), so each
    message keeps
    a real signature (``Twalk(fid, newfid, names)``) and dataclass semantics:
    assignment raises `shm.records.FrozenInstanceError`, equal fields mean equal
    messages of the same class, and the hash is the hash of the fields.
    """

    __slots__ = ()
    TYPE: _ClassVar[int]
    SCHEMA: _ClassVar[tuple[tuple[str, Kind], ...]]
    __match_args__: _ClassVar[tuple[str, ...]] = ()

    def __post_init__(self) -> None:
        for name, kind in self.SCHEMA:
            value = getattr(self, name)
            checked = _check_field(name, value, kind)
            if checked is not value:
                _object_setattr(self, name, checked)



_object_setattr = object.__setattr__

REGISTRY: dict[int, type[Message]] = {}
"""Every message class, keyed by its wire type number."""

_M = _typing.TypeVar("_M", bound=type[Message])
_NEED_INIT: list[type[Message]] = []


def _register(msg_type: MsgType) -> _typing.Callable[[_M], _M]:
    """Record a message class under its type number, derive its SCHEMA from its
    annotations and rebuild it with those fields as its slots (its ``__init__``
    comes from `_compile_inits` once every class is declared)."""

    def wrap(cls: _M) -> _M:
        schema = []
        for name, hint in cls.__dict__.get("__annotations__", {}).items():
            (kind,) = [m for m in getattr(hint, "__metadata__", ()) if isinstance(m, Kind)]
            schema.append((name, kind))
        ns = {k: v for k, v in cls.__dict__.items() if k not in ("__dict__", "__weakref__")}
        ns["__slots__"] = tuple(name for name, _ in schema)
        ns["__match_args__"] = ns["__record_fields__"] = ns["__slots__"]
        ns["TYPE"] = int(msg_type)
        ns["SCHEMA"] = tuple(schema)
        new = type(cls)(cls.__name__, cls.__bases__, ns)
        assert msg_type not in REGISTRY, msg_type
        REGISTRY[msg_type] = new
        _NEED_INIT.append(new)
        return new  # type: ignore[return-value]

    return wrap


def _compile_inits() -> None:
    """Give every registered class its ``__init__(self, <fields in order>)``:
    store each argument, then validate (``__post_init__``), as a frozen
    dataclass's generated ``__init__`` does.  Each is compiled on the class's
    first message (shm.records.lazy_init): a short sandbox uses ~15 of the
    ~80 kinds."""
    for cls in _NEED_INIT:
        cls.__init__ = _lazy_init(cls, _make_init_of(cls), cls.__module__)  # type: ignore[misc]
    _NEED_INIT.clear()


def _make_init_of(cls: type[Message]) -> _typing.Callable[[], _typing.Callable[..., None]]:
    """What compiles the real ``__init__`` of ``cls`` from its fields."""

    def make() -> _typing.Callable[..., None]:
        names = cls.__slots__
        src = [f"def __init__(self{''.join(', ' + n for n in names)}) -> None:"]
        plain = [(n, k) for n, k in cls.SCHEMA if k not in (Kind.STRS, Kind.QIDS)]
        if plain:
            args = "".join(f"{n}, " for n, _ in plain)
            src += [f"    if not ({_fast_check(plain)}):",
                    f"        ({args}) = _check_all(_plain, ({args}))"]
        src += [f"    {n} = _check_field({n!r}, {n}, _Kind.{k.name})"
                for n, k in cls.SCHEMA if (n, k) not in plain]
        src += [f"    _set(self, {n!r}, {n})" for n in names] or ["    pass"]
        ns: dict[str, object] = {"_set": _object_setattr, "_check_field": _check_field,
                                 "_Kind": Kind, "_Qid": Qid,
                                 "_type": type, "_len": len,
                                 "_min": min, "_max": max, "_check_all": _check_all,
                                 "_plain": tuple(plain)}  # a field may be named "type"
        exec(compile("\n".join(src), f"{cls.__module__}.{cls.__name__}", "exec"), ns)  # noqa: S102
        init = ns["__init__"]
        init.__qualname__ = f"{cls.__qualname__}.__init__"  # type: ignore[attr-defined]
        init.__module__ = cls.__module__  # type: ignore[attr-defined]
        return init  # type: ignore[return-value]

    return make


def _check_all(fields: tuple[tuple[str, Kind], ...], values: tuple[object, ...]
               ) -> tuple[object, ...]:
    """`_check_field` of each of ``fields`` (the slow path of `_fast_check`)."""
    return tuple(_check_field(n, v, k) for (n, k), v in zip(fields, values, strict=True))


def _fast_check(fields: list[tuple[str, Kind]]) -> str:
    """A Python expression true when every one of ``fields`` is plainly valid
    (exact ints in range, short ASCII strs, Qids, bytes): the generated
    ``__init__`` then stores them as they are, and runs `_check_field` (the
    full rules, and their errors) on each only otherwise.  Why: every request
    and reply is built through these constructors, twice per round trip
    (encode on one side, decode on the other); the generic check loop was most
    of the Gofer's time per request, more than the host syscalls it makes.
    One expression per class, integers grouped by kind (one type chain, one
    min and max a kind), keeps what each class compiles on its first message
    small (a sandbox's start compiles ~15 of them, on both sides)."""
    ints = [n for n, k in fields if k in INT_KINDS]
    parts = [" is ".join(["int", *(f"_type({n})" for n in ints)])] if ints else []
    for kind, (lo, hi) in INT_KINDS.items():
        group = [n for n, k in fields if k is kind]
        if len(group) == 1:
            parts.append(f"{lo} <= {group[0]} <= {hi}")
        elif group:
            args = ", ".join(group)
            parts.append(f"{lo} <= _min({args}) and _max({args}) <= {hi}")
    for n, k in fields:
        if k is Kind.STR:  # ASCII: one byte a character, always encodable
            parts.append(f"_type({n}) is str and _len({n}) <= 0xFFFF and {n}.isascii()")
        elif k is Kind.QID:
            parts.append(f"_type({n}) is _Qid")
        elif k is Kind.DATA:
            parts.append(f"_type({n}) is bytes")
    return " and ".join(parts)
