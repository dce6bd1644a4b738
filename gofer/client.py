"""The Sentry's side of the Gofer channel: 9P2000.L calls as Python methods.

Every method sends one (or, for large reads and writes and long walks, a few)
requests over a `shm.channel.ClientChannel` and either returns the decoded reply
or raises `SyscallError(errno)`, the one error type the Sentry's VFS expects:

* ``Rlerror(e)`` from the Gofer raises SyscallError(e).
* Any channel failure (the Gofer died, timed out, closed, or wrote something
  impossible) raises SyscallError(EIO); a dead, closed or hostile Gofer also
  marks the client dead so later calls fail at once instead of waiting.
* A reply that does not decode, carries another tag, or is not the expected
  R-message raises SyscallError(EIO): the Gofer is a separate, confined process
  and is treated as untrusted too.

Thread-safe: several Sentry threads may call at once (the channel has slots);
fid and tag allocation are under one lock. Fids may also be handed back with
`clunk_later` from a finalizer (a freed Sentry inode, sentry/vfs/goferfs.py),
which may run while this client's lock is held: it only appends to a queue.
The queued fids are clunked by the next walk or attach, the calls that take
new fids, so the Gofer's count stays bounded; and they cost no round trip of
their own: up to CLUNK_BATCH Tclunk frames ride in front of the Twalk in the
same channel request (a "clunk prefix", which gofer/server.py serves before
the request and does not answer; Tclunk always frees its fid, so there is no
answer to wait for). This is gVisor's batched fd closing, over 9P.

Names are bytes, as in the Sentry's VFS; on the wire they are UTF-8 strings
with surrogateescape (any byte string survives the round trip).

Starting the Gofer process and connecting this client to it is
gofer/spawn.py's job (`spawn_gofer`, `start_gofer`).
"""

from __future__ import annotations

import errno
import os
import socket
import struct
import threading
from collections import deque
from typing import TypeVar

from gofer import donate, p9
from sentry.kernel.errors import SyscallError
from shm.channel import (
    ChannelClosed,
    ChannelError,
    ChannelTimeout,
    ClientChannel,
    PeerDiedError,
    ProtocolError,
)
from shm.records import record

__all__ = ["Attr", "GoferClient", "StatFS"]

_M = TypeVar("_M", bound=p9.Message)
_RREAD_OVERHEAD = 11  # size type tag count
_TWRITE_OVERHEAD = 23  # size type tag fid offset count
_MAX_ERRNO = 4095  # Linux's MAX_ERRNO: -4095..-1 are errors in a return value
_FATAL = (PeerDiedError, ChannelTimeout, ChannelClosed, ProtocolError)
_TCLUNK = struct.Struct("<IBHI")  # size type tag fid: a whole Tclunk frame
CLUNK_BATCH = 64
"""Most queued clunks sent in front of one request."""
CONNECT_TIMEOUT = 15.0
"""Seconds the Gofer has to start, confine itself and answer Tversion."""


@record(frozen=True, slots=True)
class Attr:
    """A file's attributes as Rgetattr reports them (times in nanoseconds).

    There is no ``dev``: 9P identifies files by qid; the Sentry's gofer
    filesystem supplies its own device number.
    """

    qid: p9.Qid
    mode: int
    uid: int
    gid: int
    nlink: int
    rdev: int
    size: int
    blksize: int
    blocks: int
    atime_ns: int
    mtime_ns: int
    ctime_ns: int

    @property
    def ino(self) -> int:
        return self.qid.path


def _attr(qid: p9.Qid, r: p9.Rgetattr | p9.Rwalkgetattr | p9.Rwalkopenfd) -> Attr:
    """The Attr of an Rgetattr or Rwalkgetattr (same attribute fields)."""
    return Attr(
        qid, r.mode, r.uid, r.gid, r.nlink, r.rdev, r.size, r.blksize, r.blocks,
        r.atime_sec * 10**9 + r.atime_nsec,
        r.mtime_sec * 10**9 + r.mtime_nsec,
        r.ctime_sec * 10**9 + r.ctime_nsec,
    )  # fmt: skip


@record(frozen=True, slots=True)
class StatFS:
    """Rstatfs: what statfs(2) reports for the served filesystem."""

    type: int
    bsize: int
    blocks: int
    bfree: int
    bavail: int
    files: int
    ffree: int
    fsid: int
    namelen: int


def _name(name: bytes) -> str:
    if not isinstance(name, bytes | bytearray):
        raise TypeError(f"file names are bytes, got {type(name).__name__}")
    return bytes(name).decode("utf-8", "surrogateescape")


class GoferClient:
    """A 9P2000.L session with one Gofer over ``channel`` (which it owns: close()
    closes it)."""

    def __init__(self, channel: ClientChannel, *, msize: int | None = None,
                 receiver: donate.Receiver | None = None) -> None:
        self.channel = channel
        self.receiver = receiver
        """The donation socket's end (gofer/donate.py); None: no donations."""
        self.donated: donate.Donated | None = donate.Donated() if receiver is not None else None
        """The donated descriptors held, bounded (an LRU)."""
        self.msize = min(msize or channel.msize, channel.msize)
        self._lock = threading.Lock()
        self._next_fid = 1
        self._free_fids: list[int] = []
        self._clunk_queue: deque[int] = deque()  # see clunk_later
        self._tag = 0
        self._dead = False
        self.late: socket.socket | None = None  # spawn_gofer(late=True)'s socket
        self._closed = False
        self.root = -1
        """The fid `connect` attached (-1 before)."""

    # -- plumbing ---------------------------------------------------------

    def _rpc(self, msg: p9.Message, want: type[_M], *, timeout: float | None = None,
             prefix: bytes = b"", served: list[bool] | None = None,
             tags: list[int] | None = None) -> _M:
        """One request and its reply; ``prefix`` (Tclunk frames) is sent in
        front, and ``served`` gets True once a reply proves the Gofer read it;
        ``tags`` gets the request's tag."""
        if self._dead or self._closed:
            raise SyscallError(errno.EIO)
        with self._lock:
            self._tag = tag = (self._tag + 1) % p9.P9_NOTAG
        if tags is not None:
            tags.append(tag)
        try:
            frame = p9.encode(msg, tag, self.msize)
        except p9.LocalProtocolError:
            raise SyscallError(errno.EINVAL) from None  # e.g. a name longer than 64 KiB
        try:
            raw = self.channel.send_request(prefix + frame if prefix else frame, timeout=timeout)
        except _FATAL:
            self._dead = True
            raise SyscallError(errno.EIO) from None
        except ChannelError:
            raise SyscallError(errno.EIO) from None
        try:
            rtag, reply = p9.decode(raw, self.msize)
        except p9.RemoteProtocolError:
            raise SyscallError(errno.EIO) from None
        if rtag != tag:
            raise SyscallError(errno.EIO)
        if served is not None:
            served.append(True)
        if type(reply) is want:
            return reply  # type: ignore[return-value]
        if isinstance(reply, p9.Rlerror):
            # An errno the application can be given: 0 would read as success
            # and a number past MAX_ERRNO as a result, so a Gofer claiming
            # either is confused or hostile (EIO).
            ecode = reply.ecode
            raise SyscallError(ecode if 0 < ecode <= _MAX_ERRNO else errno.EIO)
        raise SyscallError(errno.EIO)

    def alloc_fid(self) -> int:
        """A fid number not in use (clunked ones are reused first)."""
        with self._lock:
            if self._free_fids:
                return self._free_fids.pop()
            fid = self._next_fid
            if fid >= p9.P9_NOFID:
                raise SyscallError(errno.ENFILE)
            self._next_fid += 1
            return fid

    def _release_fid(self, fid: int) -> None:
        with self._lock:
            self._free_fids.append(fid)

    @property
    def dead(self) -> bool:
        """True once the Gofer is known to be gone (every call then raises EIO)."""
        return self._dead

    def alive(self) -> bool:
        """Whether the Gofer can still answer (checked now, not only on the
        last call): a cache in front of the client asks before serving a hit,
        so nothing read from a dead server's files is served (EIO instead)."""
        if not self._dead and not self._closed and not self.channel.peer_alive():
            self._dead = True
        if self._dead or self._closed:
            if self.donated is not None:
                self.donated.close_all()  # never read again: EIO, as uncached reads
            return False
        return True

    # -- session ------------------------------------------------------------

    def connect(self, uname: str = "root", aname: str = "", *, n_uname: int = 0) -> int:
        """Tversion (negotiating msize) then Tattach; returns the root fid.

        Waits up to CONNECT_TIMEOUT for the first answer, which doubles as the
        "Gofer is ready" handshake.
        """
        rv = self._rpc(
            p9.Tversion(self.msize, p9.VERSION_9P2000_L), p9.Rversion, timeout=CONNECT_TIMEOUT
        )
        if rv.version != p9.VERSION_9P2000_L or not 512 <= rv.msize <= self.msize:
            self._dead = True
            raise SyscallError(errno.EIO)
        self.msize = rv.msize
        self.root = self.attach(aname, uname, n_uname=n_uname)
        return self.root

    def attach(self, aname: str, uname: str = "root", *, n_uname: int = 0) -> int:
        """Tattach to a tree the Gofer serves ("" its root, or a bind mount's
        source, see ``spawn_gofer(attach=...)``); returns that tree's root fid."""
        fid = self.alloc_fid()
        try:
            self._rpc_clunking(p9.Tattach(fid, p9.P9_NOFID, uname, aname, n_uname), p9.Rattach)
        except BaseException:
            self._release_fid(fid)
            raise
        return fid

    def close(self) -> None:
        """End the session: the Gofer sees the channel close and exits. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self.channel.close()
        if self.late is not None:
            self.late.close()
        if self.donated is not None:
            self.donated.close_all()
        if self.receiver is not None:
            self.receiver.close()

    def __enter__(self) -> GoferClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- walking and fids -----------------------------------------------------

    def walk(self, fid: int, names: list[bytes]) -> tuple[int, list[p9.Qid]]:
        """Walk ``names`` from ``fid`` to a new fid; returns (newfid, qids).

        An empty list clones ``fid``. A walk that fails at the first name raises
        the Gofer's errno; one that stops later (9P reports only how far it got)
        raises ENOENT, and no fid is left behind either way. Walks longer than
        16 names are split into several Twalks.
        """
        strs = [_name(n) for n in names]
        newfid = self.alloc_fid()
        qids: list[p9.Qid] = []
        src = fid
        try:
            first = True
            while first or strs:
                batch, strs = strs[: p9.MAXWELEM], strs[p9.MAXWELEM :]
                r = self._rpc_clunking(p9.Twalk(src, newfid, tuple(batch)), p9.Rwalk)
                if len(r.qids) != len(batch):
                    raise SyscallError(errno.ENOENT)
                qids += r.qids
                src, first = newfid, False
        except BaseException:
            if not first:
                self._clunk_quiet(newfid)
            self._release_fid(newfid)
            raise
        return newfid, qids

    def walk_getattr(self, fid: int, name: bytes) -> tuple[int, Attr]:
        """Walk one name from ``fid`` to a new fid and read its attributes,
        in one round trip (Twalkgetattr); returns (newfid, attributes).
        Errors as :meth:`walk`."""
        newfid = self.alloc_fid()
        try:
            r = self._rpc_clunking(p9.Twalkgetattr(fid, newfid, (_name(name),)),
                                   p9.Rwalkgetattr)
            if len(r.qids) != 1:
                raise SyscallError(errno.ENOENT)
        except BaseException:
            self._release_fid(newfid)
            raise
        return newfid, _attr(r.qids[0], r)

    def walk_open_fd(self, fid: int, name: bytes
                     ) -> tuple[int, Attr, bool, donate.HostFd | None]:
        """:meth:`walk_getattr`, and if that reached a regular file the Gofer
        donates, its open and its descriptor, in one round trip
        (Twalkopenfd); returns (newfid, attributes, whether newfid is open,
        the descriptor held in ``donated`` or None)."""
        if self.receiver is None or self.donated is None:
            newfid, attr = self.walk_getattr(fid, name)
            return newfid, attr, False, None
        newfid = self.alloc_fid()
        tags: list[int] = []
        try:
            r = self._rpc_clunking(p9.Twalkopenfd(fid, newfid, (_name(name),)),
                                   p9.Rwalkopenfd, tags=tags)
            if len(r.qids) != 1:
                raise SyscallError(errno.ENOENT)
        except BaseException:
            self._release_fid(newfid)
            raise
        h = None
        if r.opened and r.donated:
            fd = self.receiver.take(tags[0], newfid)
            h = self.donated.add(fd) if fd >= 0 else None
        return newfid, _attr(r.qids[0], r), bool(r.opened), h

    def _clunk_quiet(self, fid: int) -> None:
        try:
            self._rpc(p9.Tclunk(fid), p9.Rclunk)
        except SyscallError:
            pass

    def clunk(self, fid: int) -> None:
        """Forget ``fid`` (the number is reused by later walks)."""
        try:
            self._rpc(p9.Tclunk(fid), p9.Rclunk)
        finally:
            self._release_fid(fid)  # clunk frees the fid even when it reports an error

    def clunk_later(self, fid: int) -> None:
        """Queue ``fid`` to be clunked by the next walk or attach. Takes no lock
        (deque.append is atomic), so a finalizer may call it anywhere."""
        self._clunk_queue.append(fid)

    @property
    def clunks_pending(self) -> int:
        return len(self._clunk_queue)

    def _rpc_clunking(self, msg: p9.Message, want: type[_M],
                      tags: list[int] | None = None) -> _M:
        """`_rpc` with up to CLUNK_BATCH queued clunks in front (each popped by
        exactly one thread). Their numbers are reused only once a reply proves
        the Gofer served them; otherwise they go back to the queue."""
        queue = self._clunk_queue
        fids: list[int] = []
        room = min(CLUNK_BATCH, max(0, (self.msize - 512) // _TCLUNK.size))
        while queue and len(fids) < room:
            try:
                fids.append(queue.popleft())
            except IndexError:
                break
        if not fids:
            return self._rpc(msg, want, tags=tags)
        prefix = b"".join(_TCLUNK.pack(_TCLUNK.size, p9.MsgType.TCLUNK, p9.P9_NOTAG, f)
                          for f in fids)
        served: list[bool] = []
        try:
            return self._rpc(msg, want, prefix=prefix, served=served, tags=tags)
        finally:
            if served:
                with self._lock:
                    self._free_fids.extend(fids)
            else:  # maybe never sent: clunk them again later (an unknown fid is ignored)
                queue.extendleft(reversed(fids))

    def clunk_queued(self) -> None:
        """Clunk every queued fid now, one Tclunk each (tests, teardown)."""
        queue = self._clunk_queue
        while True:
            try:
                fid = queue.popleft()
            except IndexError:
                return
            try:
                self.clunk(fid)
            except SyscallError:
                pass

    def remove(self, fid: int) -> None:
        """Unlink the file ``fid`` names; the fid is clunked either way."""
        try:
            self._rpc(p9.Tremove(fid), p9.Rremove)
        finally:
            self._release_fid(fid)

    # -- attributes -------------------------------------------------------------

    def getattr(self, fid: int) -> Attr:
        r = self._rpc(p9.Tgetattr(fid, p9.P9_GETATTR_BASIC), p9.Rgetattr)
        return _attr(r.qid, r)

    def setattr(
        self,
        fid: int,
        valid: int,
        mode: int = 0,
        uid: int = 0,
        gid: int = 0,
        size: int = 0,
        atime_ns: int = 0,
        mtime_ns: int = 0,
    ) -> None:
        """Change the attributes ``valid`` (P9_SETATTR_* bits) names. Times are
        used only with ATIME_SET/MTIME_SET; without them the Gofer uses "now"."""
        a_s, a_ns = divmod(atime_ns, 10**9)  # a time before 1970 has a_s < 0 (S64)
        m_s, m_ns = divmod(mtime_ns, 10**9)
        self._rpc(p9.Tsetattr(fid, valid, mode, uid, gid, size, a_s, a_ns, m_s, m_ns), p9.Rsetattr)

    def statfs(self, fid: int) -> StatFS:
        r = self._rpc(p9.Tstatfs(fid), p9.Rstatfs)
        return StatFS(
            r.type, r.bsize, r.blocks, r.bfree, r.bavail, r.files, r.ffree, r.fsid, r.namelen
        )

    def readlink(self, fid: int) -> bytes:
        return self._rpc(p9.Treadlink(fid), p9.Rreadlink).target.encode("utf-8", "surrogateescape")

    # -- open and I/O -------------------------------------------------------------

    def lopen(self, fid: int, flags: int) -> tuple[p9.Qid, int]:
        """Open the file ``fid`` names (Linux O_* flags); returns (qid, iounit)."""
        r = self._rpc(p9.Tlopen(fid, flags), p9.Rlopen)
        return r.qid, r.iounit

    def lcreate(
        self, dfid: int, name: bytes, flags: int, mode: int, gid: int
    ) -> tuple[p9.Qid, int]:
        """Create and open ``name`` in directory ``dfid``; ``dfid`` then names
        the new, open file (9P semantics: walk a clone first to keep the dir)."""
        r = self._rpc(p9.Tlcreate(dfid, _name(name), flags, mode, gid), p9.Rlcreate)
        return r.qid, r.iounit

    def read(self, fid: int, offset: int, count: int) -> bytes:
        """Read up to ``count`` bytes in msize-sized pieces; stops at a short read."""
        chunk = self.msize - _RREAD_OVERHEAD
        parts: list[bytes] = []
        while count > 0:
            want = min(count, chunk)
            data = self._rpc(p9.Tread(fid, offset, want), p9.Rread).data
            if len(data) > want:
                raise SyscallError(errno.EIO)  # more than asked: a confused Gofer
            parts.append(data)
            offset += len(data)
            count -= len(data)
            if len(data) < want:
                break
        return b"".join(parts)

    def lopen_read(self, fid: int, offset: int, count: int) -> bytes:
        """:meth:`read`, opening ``fid`` O_RDONLY first if it is not open yet,
        with the open riding on the first Tread (Tlopenread)."""
        want = min(count, self.msize - _RREAD_OVERHEAD)
        data = self._rpc(p9.Tlopenread(fid, offset, want), p9.Rlopenread).data
        if len(data) > want:
            raise SyscallError(errno.EIO)  # more than asked: a confused Gofer
        if len(data) == want < count:
            return data + self.read(fid, offset + want, count - want)
        return data

    def lopen_fd(self, fid: int) -> tuple[p9.Qid, donate.HostFd | None]:
        """Open ``fid`` O_RDONLY unless it is open, and take the host
        descriptor the Gofer donates for it (Tlopenfd, gofer/donate.py);
        returns (qid, the descriptor held in ``donated``, or None: read
        through Tread)."""
        if self.receiver is None or self.donated is None:
            qid, _ = self.lopen(fid, os.O_RDONLY)
            return qid, None
        tags: list[int] = []
        r = self._rpc(p9.Tlopenfd(fid), p9.Rlopenfd, tags=tags)
        if not r.donated:
            return r.qid, None
        fd = self.receiver.take(tags[0], fid)
        return r.qid, (self.donated.add(fd) if fd >= 0 else None)

    def write(self, fid: int, offset: int, data: bytes) -> int:
        """Write ``data`` in msize-sized pieces; returns bytes written (short on a
        short write from the host)."""
        chunk = self.msize - _TWRITE_OVERHEAD
        view = memoryview(data)
        done = 0
        while done < len(view):
            piece = view[done : done + chunk]
            n = self._rpc(p9.Twrite(fid, offset + done, piece), p9.Rwrite).count
            if n > len(piece):
                raise SyscallError(errno.EIO)
            done += n
            if n < len(piece):
                break
        return done

    def readdir(self, fid: int, offset: int, count: int) -> list[p9.Dirent]:
        """Entries after cookie ``offset`` (0: from the start), at most ``count``
        bytes of them; pass the last entry's ``offset`` to continue. Empty at end."""
        count = min(count, self.msize - _RREAD_OVERHEAD)
        data = self._rpc(p9.Treaddir(fid, offset, count), p9.Rreaddir).data
        try:
            return p9.decode_dirents(data)
        except p9.RemoteProtocolError:
            raise SyscallError(errno.EIO) from None

    def fsync(self, fid: int, datasync: bool = False) -> None:
        self._rpc(p9.Tfsync(fid, int(datasync)), p9.Rfsync)

    # -- namespace changes -------------------------------------------------------

    def mkdir(self, dfid: int, name: bytes, mode: int, gid: int) -> p9.Qid:
        return self._rpc(p9.Tmkdir(dfid, _name(name), mode, gid), p9.Rmkdir).qid

    def symlink(self, dfid: int, name: bytes, target: bytes, gid: int) -> p9.Qid:
        return self._rpc(p9.Tsymlink(dfid, _name(name), _name(target), gid), p9.Rsymlink).qid

    def mknod(self, dfid: int, name: bytes, mode: int, major: int, minor: int, gid: int) -> p9.Qid:
        """Regular files and FIFOs only (the Gofer refuses device nodes: EPERM)."""
        msg = p9.Tmknod(dfid, _name(name), mode, major, minor, gid)
        return self._rpc(msg, p9.Rmknod).qid

    def link(self, dfid: int, fid: int, name: bytes) -> None:
        """Hard-link the file ``fid`` as ``name`` in directory ``dfid``."""
        self._rpc(p9.Tlink(dfid, fid, _name(name)), p9.Rlink)

    def renameat(self, olddfid: int, oldname: bytes, newdfid: int, newname: bytes) -> None:
        msg = p9.Trenameat(olddfid, _name(oldname), newdfid, _name(newname))
        self._rpc(msg, p9.Rrenameat)

    def unlinkat(self, dfid: int, name: bytes, flags: int = 0) -> None:
        """``flags`` is 0 (unlink) or P9_AT_REMOVEDIR (rmdir)."""
        self._rpc(p9.Tunlinkat(dfid, _name(name), flags), p9.Runlinkat)
