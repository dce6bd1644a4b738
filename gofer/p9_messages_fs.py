"""9P2000.L messages, last families: attributes, namespace changes, advisory locks.

The messages about files rather than their bytes; `gofer.p9_messages` holds
session set-up, walking and opening, and data, and `gofer.p9_types` the base
they share. Import from `gofer.p9`, which re-exports every message.
"""

from gofer.p9_types import (
    S64,
    U8,
    U32,
    U64,
    Message,
    MsgType,
    QidField,
    Str,
    _compile_inits,
    _register,
)

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
