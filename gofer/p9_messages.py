"""9P2000.L messages as data: one frozen, slotted value class per T/R message.

This module holds only the *shape* of the protocol; `gofer.p9` turns these objects
into bytes and back. Import from `gofer.p9`, which re-exports everything here.

Why the shape is declared with `Annotated` field types: every message field says
both its Python type and its wire encoding (``fid: U32``). The codec compiles that
declaration once per class into a plan of precompiled `struct.Struct` runs, so
there is no per-message if/elif chain and no second list of fields to keep in sync
with the class. The classes behave as ``@dataclass(frozen=True, slots=True)``
ones do but are built without dataclasses' per-class code generation (see
`Message`): this module is on every sandbox's start-up path.

Validation lives in ``__post_init__`` (shared by every message through the
`Message` base): an out-of-range integer, a string that is not encodable or longer
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
        _check_int("qid.type", self.type, Kind.U8)
        _check_int("qid.version", self.version, Kind.U32)
        _check_int("qid.path", self.path, Kind.U64)


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
        cls.__init__ = _lazy_init(cls, _make_init_of(cls), __name__)  # type: ignore[misc]
    _NEED_INIT.clear()


def _make_init_of(cls: type[Message]) -> _typing.Callable[[], _typing.Callable[..., None]]:
    """What compiles the real ``__init__`` of ``cls`` from its fields."""

    def make() -> _typing.Callable[..., None]:
        names = cls.__slots__
        src = [f"def __init__(self{''.join(', ' + n for n in names)}) -> None:"]
        src += [f"    _set(self, {n!r}, {n})" for n in names]
        src.append("    self.__post_init__()")
        ns: dict[str, object] = {"_set": _object_setattr}
        exec(compile("\n".join(src), f"{__name__}.{cls.__name__}", "exec"), ns)  # noqa: S102
        init = ns["__init__"]
        init.__qualname__ = f"{cls.__qualname__}.__init__"  # type: ignore[attr-defined]
        init.__module__ = __name__  # type: ignore[attr-defined]
        return init  # type: ignore[return-value]

    return make


# Session set-up ---------------------------------------------------------------


@_register(MsgType.TVERSION)
class Tversion(Message):
    """Propose the largest frame (``msize``) and the protocol ("9P2000.L")."""

    msize: U32
    version: Str


@_register(MsgType.RVERSION)
class Rversion(Message):
    """The agreed msize (<= the proposed one) and version, or "unknown"."""

    msize: U32
    version: Str


@_register(MsgType.TAUTH)
class Tauth(Message):
    afid: U32
    uname: Str
    aname: Str
    n_uname: U32


@_register(MsgType.RAUTH)
class Rauth(Message):
    aqid: QidField


@_register(MsgType.TATTACH)
class Tattach(Message):
    """Bind ``fid`` to the root of the tree ``aname`` as user ``n_uname``."""

    fid: U32
    afid: U32
    uname: Str
    aname: Str
    n_uname: U32


@_register(MsgType.RATTACH)
class Rattach(Message):
    qid: QidField


@_register(MsgType.RLERROR)
class Rlerror(Message):
    """The only error reply of 9P2000.L: a Linux errno. Build it with errno_reply."""

    ecode: U32


@_register(MsgType.TFLUSH)
class Tflush(Message):
    """Abort the request tagged ``oldtag``; answered only after it is done."""

    oldtag: U16


@_register(MsgType.RFLUSH)
class Rflush(Message):
    pass


# Walking and opening -----------------------------------------------------------


@_register(MsgType.TWALK)
class Twalk(Message):
    """Walk ``names`` from ``fid`` and bind the result to ``newfid`` (no names: clone)."""

    fid: U32
    newfid: U32
    names: Names


@_register(MsgType.RWALK)
class Rwalk(Message):
    """One qid per name walked; fewer than asked means the walk stopped early."""

    qids: Qids


@_register(MsgType.TWALKGETATTR)
class Twalkgetattr(Message):
    """Twalk, then Tgetattr of where it ended, in one round trip: pyvisor's
    extension (not in 9P2000.L; gVisor's lisafs has WalkStat for the same
    reason), since the Sentry reads the attributes of every file it walks to."""

    fid: U32
    newfid: U32
    names: Names


@_register(MsgType.RWALKGETATTR)
class Rwalkgetattr(Message):
    """Rwalk's qids, then the basic attributes of the last (zero when the walk
    stopped early: then there is no newfid, as with Rwalk)."""

    qids: Qids
    mode: U32
    uid: U32
    gid: U32
    nlink: U64
    rdev: U64
    size: U64
    blksize: U64
    blocks: U64
    atime_sec: S64
    atime_nsec: U64
    mtime_sec: S64
    mtime_nsec: U64
    ctime_sec: S64
    ctime_nsec: U64


@_register(MsgType.TWALKOPENFD)
class Twalkopenfd(Message):
    """Twalkgetattr, then, if it reached a regular file the Gofer donates
    (gofer/donate.py), Tlopenfd of the new fid: pyvisor's extension for an
    open(O_RDONLY) whose last name the Sentry has not walked yet, so the
    walk, the open and the descriptor cost one round trip, not two."""

    fid: U32
    newfid: U32
    names: Names


@_register(MsgType.RWALKOPENFD)
class Rwalkopenfd(Message):
    """Rwalkgetattr's fields, then whether the new fid was opened O_RDONLY
    (``opened``) and whether its descriptor went over the donation socket
    (``donated``, only when opened)."""

    qids: Qids
    mode: U32
    uid: U32
    gid: U32
    nlink: U64
    rdev: U64
    size: U64
    blksize: U64
    blocks: U64
    atime_sec: S64
    atime_nsec: U64
    mtime_sec: S64
    mtime_nsec: U64
    ctime_sec: S64
    ctime_nsec: U64
    opened: U32
    donated: U32


@_register(MsgType.TLOPEN)
class Tlopen(Message):
    fid: U32
    flags: U32


@_register(MsgType.RLOPEN)
class Rlopen(Message):
    qid: QidField
    iounit: U32


@_register(MsgType.TLCREATE)
class Tlcreate(Message):
    """Create ``name`` in directory ``fid`` and open it; ``fid`` becomes the new file."""

    fid: U32
    name: Str
    flags: U32
    mode: U32
    gid: U32


@_register(MsgType.RLCREATE)
class Rlcreate(Message):
    qid: QidField
    iounit: U32


@_register(MsgType.TCLUNK)
class Tclunk(Message):
    fid: U32


@_register(MsgType.RCLUNK)
class Rclunk(Message):
    pass


@_register(MsgType.TREMOVE)
class Tremove(Message):
    fid: U32


@_register(MsgType.RREMOVE)
class Rremove(Message):
    pass


# Data --------------------------------------------------------------------------


@_register(MsgType.TREAD)
class Tread(Message):
    fid: U32
    offset: U64
    count: U32


@_register(MsgType.RREAD)
class Rread(Message):
    data: Data


@_register(MsgType.TLOPENREAD)
class Tlopenread(Message):
    """Tread that first opens ``fid`` O_RDONLY if it is not open yet:
    pyvisor's extension, so a file's first read is one round trip, not
    Tlopen's and Tread's two.  Nothing Tlopen and Tread do not already allow
    (a read-only open, then a pread)."""

    fid: U32
    offset: U64
    count: U32


@_register(MsgType.RLOPENREAD)
class Rlopenread(Message):
    data: Data


@_register(MsgType.TLOPENFD)
class Tlopenfd(Message):
    """Tlopen(O_RDONLY) of ``fid`` unless it is open already, and a request
    for the host descriptor behind it: pyvisor's extension, as gVisor's lisafs
    donates a host FD with its OpenAt.  The Gofer answers Rlopenfd; when it
    donates, it first sends the descriptor over the donation socket
    (SCM_RIGHTS, gofer/donate.py), so it is there when the answer is read."""

    fid: U32


@_register(MsgType.RLOPENFD)
class Rlopenfd(Message):
    """``donated`` is 1 when a descriptor went over the donation socket for
    this request, 0 when the Sentry must read through Tread (no socket, a
    file the Gofer does not donate, a full socket)."""

    qid: QidField
    iounit: U32
    donated: U32


@_register(MsgType.TWRITE)
class Twrite(Message):
    fid: U32
    offset: U64
    data: Data


@_register(MsgType.RWRITE)
class Rwrite(Message):
    count: U32


@_register(MsgType.TREADDIR)
class Treaddir(Message):
    fid: U32
    offset: U64
    count: U32


@_register(MsgType.RREADDIR)
class Rreaddir(Message):
    """``data`` is packed Dirents; see gofer.p9.encode_dirents / decode_dirents."""

    data: Data


@_register(MsgType.TFSYNC)
class Tfsync(Message):
    fid: U32
    datasync: U32


@_register(MsgType.RFSYNC)
class Rfsync(Message):
    pass


# Attributes --------------------------------------------------------------------


@_register(MsgType.TGETATTR)
class Tgetattr(Message):
    """``request_mask`` holds P9_GETATTR_* bits; the reply's ``valid`` says what was filled."""

    fid: U32
    request_mask: U64


@_register(MsgType.RGETATTR)
class Rgetattr(Message):
    """Seconds are S64: the wire's u64 read as two's complement, as Linux's v9fs
    reads them, so a file older than 1970 keeps its time."""

    valid: U64
    qid: QidField
    mode: U32
    uid: U32
    gid: U32
    nlink: U64
    rdev: U64
    size: U64
    blksize: U64
    blocks: U64
    atime_sec: S64
    atime_nsec: U64
    mtime_sec: S64
    mtime_nsec: U64
    ctime_sec: S64
    ctime_nsec: U64
    btime_sec: S64
    btime_nsec: U64
    gen: U64
    data_version: U64


@_register(MsgType.TSETATTR)
class Tsetattr(Message):
    """Only the fields named by ``valid`` (P9_SETATTR_* bits) are applied."""

    fid: U32
    valid: U32
    mode: U32
    uid: U32
    gid: U32
    size: U64
    atime_sec: S64
    atime_nsec: U64
    mtime_sec: S64
    mtime_nsec: U64


@_register(MsgType.RSETATTR)
class Rsetattr(Message):
    pass


@_register(MsgType.TSTATFS)
class Tstatfs(Message):
    fid: U32


@_register(MsgType.RSTATFS)
class Rstatfs(Message):
    type: U32
    bsize: U32
    blocks: U64
    bfree: U64
    bavail: U64
    files: U64
    ffree: U64
    fsid: U64
    namelen: U32


@_register(MsgType.TXATTRWALK)
class Txattrwalk(Message):
    """Bind ``newfid`` to attribute ``name`` of ``fid`` (empty name: the list)."""

    fid: U32
    newfid: U32
    name: Str


@_register(MsgType.RXATTRWALK)
class Rxattrwalk(Message):
    size: U64


@_register(MsgType.TXATTRCREATE)
class Txattrcreate(Message):
    fid: U32
    name: Str
    attr_size: U64
    flags: U32


@_register(MsgType.RXATTRCREATE)
class Rxattrcreate(Message):
    pass


# Namespace changes -------------------------------------------------------------


@_register(MsgType.TMKDIR)
class Tmkdir(Message):
    dfid: U32
    name: Str
    mode: U32
    gid: U32


@_register(MsgType.RMKDIR)
class Rmkdir(Message):
    qid: QidField


@_register(MsgType.TSYMLINK)
class Tsymlink(Message):
    fid: U32
    name: Str
    symtgt: Str
    gid: U32


@_register(MsgType.RSYMLINK)
class Rsymlink(Message):
    qid: QidField


@_register(MsgType.TREADLINK)
class Treadlink(Message):
    fid: U32


@_register(MsgType.RREADLINK)
class Rreadlink(Message):
    target: Str


@_register(MsgType.TLINK)
class Tlink(Message):
    """Make ``name`` in directory ``dfid`` a hard link to ``fid``."""

    dfid: U32
    fid: U32
    name: Str


@_register(MsgType.RLINK)
class Rlink(Message):
    pass


@_register(MsgType.TMKNOD)
class Tmknod(Message):
    dfid: U32
    name: Str
    mode: U32
    major: U32
    minor: U32
    gid: U32


@_register(MsgType.RMKNOD)
class Rmknod(Message):
    qid: QidField


@_register(MsgType.TRENAME)
class Trename(Message):
    """Move the file ``fid`` to ``name`` inside directory ``dfid``."""

    fid: U32
    dfid: U32
    name: Str


@_register(MsgType.RRENAME)
class Rrename(Message):
    pass


@_register(MsgType.TRENAMEAT)
class Trenameat(Message):
    olddirfid: U32
    oldname: Str
    newdirfid: U32
    newname: Str


@_register(MsgType.RRENAMEAT)
class Rrenameat(Message):
    pass


@_register(MsgType.TUNLINKAT)
class Tunlinkat(Message):
    """``flags`` is 0 or P9_AT_REMOVEDIR (rmdir semantics)."""

    dirfid: U32
    name: Str
    flags: U32


@_register(MsgType.RUNLINKAT)
class Runlinkat(Message):
    pass


# Advisory locks ----------------------------------------------------------------


@_register(MsgType.TLOCK)
class Tlock(Message):
    """A POSIX record lock request; ``length`` 0 means "to end of file"."""

    fid: U32
    type: U8
    flags: U32
    start: U64
    length: U64
    proc_id: U32
    client_id: Str


@_register(MsgType.RLOCK)
class Rlock(Message):
    status: U8


@_register(MsgType.TGETLOCK)
class Tgetlock(Message):
    fid: U32
    type: U8
    start: U64
    length: U64
    proc_id: U32
    client_id: Str


@_register(MsgType.RGETLOCK)
class Rgetlock(Message):
    type: U8
    start: U64
    length: U64
    proc_id: U32
    client_id: Str


_compile_inits()
