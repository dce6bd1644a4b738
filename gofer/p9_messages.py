"""9P2000.L messages, first families: session set-up, walking and opening, data.

One frozen, slotted value class per T/R message, declared from its fields'
wire kinds (`gofer.p9_types` says how and why); `gofer.p9_messages_fs` holds
the other families (attributes, namespace changes, locks). The split follows
the protocol's own grouping so that each module stays short; the classes are
the same whichever module declares them. Import from `gofer.p9`, which
re-exports every message.
"""

from gofer.p9_types import (
    S64,
    U16,
    U32,
    U64,
    Data,
    Message,
    MsgType,
    Names,
    QidField,
    Qids,
    Str,
    _compile_inits,
    _register,
)

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


_compile_inits()
