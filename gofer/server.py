"""The Gofer: a 9P2000.L file server over one directory tree.

`FileServer` is a pure request handler (frame in, frame out) so it can be unit
tested without a process or a channel; `serve` is the Gofer process around it:
open the shm channel, open the root, confine (gofer/confine.py), serve.

Why the handler is shaped this way (DESIGN.md, trust boundary 4):

* Every file is held as an ``O_PATH|O_NOFOLLOW`` descriptor reached by opening
  ONE name at a time relative to its parent's descriptor. No host path string is
  ever built, so a symlink, a "/" in a name or a ".." can never take a lookup
  out of the tree; symlinks are returned as symlinks (Treadlink gives the text)
  and the Sentry resolves them in its own VFS.
* ".." is not asked of the kernel either: each fid remembers its path as a list
  of names from the root and ".." drops the last name and re-walks from the
  root, clamping at the root. A directory moved out of the tree by a racing host
  process therefore cannot serve as a ladder out of it.
* Opening for I/O (Tlopen) reopens the name relative to a freshly walked parent
  with O_NOFOLLOW and checks that the result is the same inode (st_dev, st_ino)
  as the fid's O_PATH descriptor; a mismatch is ESTALE. Devices and sockets are
  never opened: a device node inside a container image must not become a window
  onto host hardware through a process that runs as root.
* Attribute changes act on the O_PATH descriptor itself (gofer/hostops.py,
  AT_EMPTY_PATH), never on a name.
* The client is untrusted: malformed frames, unknown fids, over-long counts and
  bad names all become Rlerror; nothing escapes `handle`.
* Several trees may be served (gofer/fids.py, `Attach`): the container root
  (aname "" or "/") and one attach point per bind mount, each read-only or
  writable on its own. Every change is checked against the attach point of
  each fid it names (EROFS), and a rename or link between two attach points is
  EXDEV. The bind sources are opened before confinement (`open_attaches`): the
  confined Gofer cannot name them any more, it only holds their descriptors.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
import stat
import struct
import sys
from collections.abc import Callable

from gofer import donate, hostops, p9
from gofer.fids import (
    MAX_FIDS,
    O_PATH_FLAGS,
    TCLUNK_FRAME,
    Attach,
    AttachSpec,
    FidState,
    FidTable,
    P9Fail,
    check_name,
    close_attaches,
    open_attaches,
    qid_of,
)
from gofer.late import LateTrees

log = logging.getLogger("pyvisor.gofer")

# Tlopen flags we pass through; everything else (O_CREAT, O_EXCL, O_NOCTTY,
# O_APPEND, O_DIRECT, O_NOATIME, O_CLOEXEC, ...) is stripped: the Sentry owns
# those semantics and pwrite must keep meaning "at this offset".
_OPEN_KEEP = os.O_ACCMODE | os.O_TRUNC | os.O_DIRECTORY | os.O_DSYNC | os.O_SYNC
_READ_HDR = 4 + 1 + 2 + 4  # Rread: size type tag count
_TREAD = struct.Struct("<IBHIQI")
_RREAD_HDR = struct.Struct("<IBHI")
V9FS_MAGIC = 0x01021997


def _dtype(entry: os.DirEntry[str]) -> int:
    try:
        if entry.is_symlink():
            return p9.P9_DT_LNK
        if entry.is_dir(follow_symlinks=False):
            return p9.P9_DT_DIR
        if entry.is_file(follow_symlinks=False):
            return p9.P9_DT_REG
    except OSError:
        pass
    return p9.P9_DT_UNKNOWN


Handler = Callable[..., p9.Message]
"""A FileServer.t_* method: (server, request) -> reply."""


class FileServer(FidTable):
    """Serve the tree under ``root_fd`` (a directory fd, O_PATH is enough), and
    the extra ``attaches`` by aname.

    Single-threaded: one request at a time, so no locking. The server does not
    own ``root_fd`` nor the attach descriptors; `close` releases the fids only.
    """

    def __init__(
        self,
        root_fd: int,
        *,
        readonly: bool = False,
        attaches: dict[str, Attach] | None = None,
        msize: int = p9.MAX_MSIZE,
        max_fids: int = MAX_FIDS,
        late: LateTrees | None = None,
        donate_sock: socket.socket | None = None,
    ) -> None:
        super().__init__(root_fd, writable=not readonly, attaches=attaches, max_fids=max_fids)
        self.max_msize = msize
        self.msize = msize
        self.late = late  # a pod's later trees (gofer/late.py), read at every Tattach
        self.donate_sock = donate_sock
        """Where Tlopenfd sends descriptors (gofer/donate.py); None: never donate."""
        self._tag = p9.P9_NOTAG  # the request being answered (Tlopenfd's message names it)

    def _release_attach(self, at: Attach) -> None:
        """Close every fid below ``at`` (a dropped late tree)."""
        for fid in [f for f, st in self.fids.items() if st.attach is at]:
            self.fids.pop(fid).close()

    # -- framing ----------------------------------------------------------

    def handle(self, frame: bytes | bytearray | memoryview) -> bytes:
        """Answer one request frame with one reply frame; never raises."""
        try:
            tag, msg = p9.decode(frame, self.max_msize)
        except p9.RemoteProtocolError as exc:
            return self._malformed(bytes(frame[:7]), exc)
        try:
            self._tag = tag
            reply = self._dispatch(msg)
            return p9.encode(reply, tag, self.msize)
        except p9.LocalProtocolError:
            log.warning("gofer: reply to %s does not fit", type(msg).__name__)
            return p9.encode(p9.errno_reply(errno.EIO), tag)

    def handle_into(self, request: memoryview, out: memoryview) -> bytes | int:
        """The shm channel's handler: batched clunks first (`clunk_prefix`);
        Tread is answered in place (pread straight into the response buffer,
        no copy), everything else through `handle`."""
        if len(request) > TCLUNK_FRAME.size and request[4] == p9.MsgType.TCLUNK:
            request = self.clunk_prefix(request)
        if len(request) == _TREAD.size and request[4] == p9.MsgType.TREAD:
            size, _, tag, fid, offset, count = _TREAD.unpack_from(request)
            st = self.fids.get(fid)
            if size == _TREAD.size and st is not None and st.ofd >= 0:
                count = min(count, self.msize - _READ_HDR, len(out) - _READ_HDR)
                try:
                    n = os.preadv(st.ofd, [out[_READ_HDR : _READ_HDR + count]], offset)
                except OSError as exc:
                    return p9.encode(p9.errno_reply(exc.errno or errno.EIO), tag)
                except (ValueError, OverflowError):
                    return p9.encode(p9.errno_reply(errno.EINVAL), tag)
                _RREAD_HDR.pack_into(out, 0, _READ_HDR + n, p9.MsgType.RREAD, tag, n)
                return _READ_HDR + n
        return self.handle(request)

    def __call__(self, request: memoryview, out: memoryview) -> bytes | int:
        return self.handle_into(request, out)

    @staticmethod
    def _malformed(head: bytes, exc: p9.RemoteProtocolError) -> bytes:
        """Rlerror for a frame we could not decode: EINVAL when its tag was
        readable (the body was bad), EPROTO when even the framing was."""
        if exc.tag is not None:
            return p9.encode(p9.errno_reply(errno.EINVAL), exc.tag)
        tag = struct.unpack_from("<H", head, 5)[0] if len(head) >= 7 else p9.P9_NOTAG
        return p9.encode(p9.errno_reply(errno.EPROTO), tag)

    def _dispatch(self, msg: p9.Message) -> p9.Message:
        handler = _HANDLERS.get(type(msg))
        if handler is None:
            if type(msg) in _UNSUPPORTED:
                return p9.errno_reply(errno.EOPNOTSUPP)
            return p9.errno_reply(errno.EINVAL)  # an R-message or Tlerror sent to us
        if type(msg) in _MUTATING and not self._may_change(msg):
            return p9.errno_reply(errno.EROFS)
        try:
            return handler(self, msg)
        except P9Fail as exc:
            return p9.errno_reply(exc.errno)
        except OSError as exc:
            return p9.errno_reply(exc.errno or errno.EIO)
        except (ValueError, OverflowError, UnicodeError):
            return p9.errno_reply(errno.EINVAL)
        except Exception:  # a server bug: report it, keep serving
            log.exception("gofer: %s failed", type(msg).__name__)
            return p9.errno_reply(errno.EIO)

    # -- fid helpers --------------------------------------------------------

    def _may_change(self, msg: p9.Message) -> bool:
        """False if a fid ``msg`` names belongs to a read-only attach point
        (unknown fids are left to the handler: EBADF)."""
        for attr in _FID_FIELDS:
            st = self.fids.get(getattr(msg, attr, -1))
            if st is not None and not st.attach.writable:
                return False
        return True

    @staticmethod
    def _same_attach(a: FidState, b: FidState) -> None:
        if a.attach is not b.attach:
            raise P9Fail(errno.EXDEV)  # two trees, as two mounts

    # -- session ------------------------------------------------------------

    def t_version(self, m: p9.Tversion) -> p9.Message:
        if m.msize < 512:
            raise P9Fail(errno.EINVAL)
        self.close()  # a new session: every old fid is gone
        self.msize = min(m.msize, self.max_msize)
        version = p9.VERSION_9P2000_L if m.version.startswith("9P2000.L") else "unknown"
        return p9.Rversion(self.msize, version)

    def t_attach(self, m: p9.Tattach) -> p9.Message:
        if m.afid != p9.P9_NOFID:
            raise P9Fail(errno.EINVAL)
        if self.late is not None:
            self.late.drain(self.attaches, self._release_attach)
        if m.aname in ("", "/"):
            at = self.root_attach
        else:
            found = self.attaches.get(m.aname)
            if found is None:
                raise P9Fail(errno.ENOENT)
            at = found
        self._new_fid_ok(m.fid)
        fd = self.resolve([], at)
        st = FidState([], fd, qid_of(os.fstat(fd)), at)
        self.fids[m.fid] = st
        if m.n_uname != p9.P9_NONUNAME:
            self.uid = m.n_uname
        return p9.Rattach(st.qid)

    def t_flush(self, m: p9.Tflush) -> p9.Message:
        return p9.Rflush()  # requests run to completion before the next is read

    def t_clunk(self, m: p9.Tclunk) -> p9.Message:
        self.fid(m.fid)
        self.fids.pop(m.fid).close()
        return p9.Rclunk()

    def t_walk(self, m: p9.Twalk) -> p9.Message:
        st = self.fid(m.fid)
        if m.newfid != m.fid:
            self._new_fid_ok(m.newfid)
        elif st.ofd >= 0:
            raise P9Fail(errno.EBUSY)  # 9P: an open fid may not be walked onto itself
        path = list(st.path)
        fd = os.dup(st.fd)
        qids: list[p9.Qid] = []
        qid = st.qid
        try:
            for i, name in enumerate(m.names):
                try:
                    nfd = self._step(fd, path, name, st.attach)
                except (OSError, P9Fail):
                    if i == 0:
                        raise
                    os.close(fd)
                    return p9.Rwalk(tuple(qids))  # partial: newfid is not created
                os.close(fd)
                fd = nfd
                qid = qid_of(os.fstat(fd))
                qids.append(qid)
        except BaseException:
            os.close(fd)
            raise
        if m.newfid == m.fid:
            st.close()
        self.fids[m.newfid] = FidState(path, fd, qid, st.attach)
        return p9.Rwalk(tuple(qids))

    # -- open, create, I/O ------------------------------------------------------

    def t_lopen(self, m: p9.Tlopen) -> p9.Message:
        st = self.fid(m.fid)
        if st.ofd >= 0:
            raise P9Fail(errno.EINVAL)
        flags = m.flags & _OPEN_KEEP
        if not st.attach.writable and (flags & os.O_ACCMODE != os.O_RDONLY
                                       or flags & os.O_TRUNC):
            raise P9Fail(errno.EROFS)
        st.ofd = self._reopen(st, flags)
        st.oflags = flags
        st.qid = qid_of(os.fstat(st.ofd))
        return p9.Rlopen(st.qid, 0)

    def t_lcreate(self, m: p9.Tlcreate) -> p9.Message:
        st = self._dir(m.fid)
        if st.ofd >= 0:
            raise P9Fail(errno.EINVAL)
        check_name(m.name)
        flags = (m.flags & _OPEN_KEEP & ~os.O_DIRECTORY) | os.O_CREAT | os.O_EXCL
        ofd = os.open(m.name, flags | os.O_NOFOLLOW | os.O_CLOEXEC, m.mode & 0o7777, dir_fd=st.fd)
        try:
            qid = self._created(st.fd, m.name, m.gid)
            fd = os.open(m.name, O_PATH_FLAGS, dir_fd=st.fd)
        except BaseException:
            os.close(ofd)
            raise
        os.close(st.fd)
        st.fd, st.ofd, st.oflags, st.qid = fd, ofd, flags, qid
        st.path = [*st.path, m.name]
        return p9.Rlcreate(qid, 0)

    def t_read(self, m: p9.Tread) -> p9.Message:
        st = self.fid(m.fid)
        if st.ofd < 0:
            raise P9Fail(errno.EBADF)
        return p9.Rread(os.pread(st.ofd, min(m.count, self.msize - _READ_HDR), m.offset))

    def t_lopenread(self, m: p9.Tlopenread) -> p9.Message:
        """Tlopen(O_RDONLY) unless the fid is open already, then Tread."""
        st = self.fid(m.fid)
        if st.ofd < 0:
            self.t_lopen(p9.Tlopen(m.fid, os.O_RDONLY))
        r = self.t_read(p9.Tread(m.fid, m.offset, m.count))
        assert isinstance(r, p9.Rread)
        return p9.Rlopenread(r.data)

    def t_lopenfd(self, m: p9.Tlopenfd) -> p9.Message:
        """Tlopen(O_RDONLY) unless the fid is open already, then donate its
        descriptor if this file may be read by the Sentry directly: a regular
        file, open read-only, of a read-only attach point (gofer/donate.py
        says why only these).  The descriptor goes before the answer."""
        st = self.fid(m.fid)
        if st.ofd < 0:
            self.t_lopen(p9.Tlopen(m.fid, os.O_RDONLY))
        return p9.Rlopenfd(st.qid, 0, self._donate(m.fid, st))

    def _donate(self, fid: int, st: FidState) -> int:
        """Send ``st``'s open descriptor to the Sentry if it may have it; 1 if sent."""
        if (self.donate_sock is not None and not st.attach.writable
                and st.oflags & os.O_ACCMODE == os.O_RDONLY
                and stat.S_ISREG(os.fstat(st.ofd).st_mode)):
            return int(donate.send_fd(self.donate_sock, self._tag, fid, st.ofd))
        return 0

    def t_walkopenfd(self, m: p9.Twalkopenfd) -> p9.Message:
        """Twalkgetattr, then Tlopenfd of the new fid when it is a regular
        file of a read-only attach point and there is a donation socket
        (nothing is opened for a file that will not be donated)."""
        r = self.t_walkgetattr(p9.Twalkgetattr(m.fid, m.newfid, m.names))
        assert isinstance(r, p9.Rwalkgetattr)
        opened = donated = 0
        st = self.fids.get(m.newfid) if len(r.qids) == len(m.names) else None
        if (st is not None and self.donate_sock is not None and not st.attach.writable
                and stat.S_ISREG(r.mode)):
            try:
                self.t_lopen(p9.Tlopen(m.newfid, os.O_RDONLY))
                opened = 1
            except (OSError, P9Fail):
                pass  # walked, not opened: the Sentry opens it on its first read
            if opened:
                donated = self._donate(m.newfid, st)
        return p9.Rwalkopenfd(
            r.qids, r.mode, r.uid, r.gid, r.nlink, r.rdev, r.size, r.blksize, r.blocks,
            r.atime_sec, r.atime_nsec, r.mtime_sec, r.mtime_nsec, r.ctime_sec, r.ctime_nsec,
            opened, donated)

    def t_write(self, m: p9.Twrite) -> p9.Message:
        st = self.fid(m.fid)
        if st.ofd < 0 or st.oflags & os.O_ACCMODE == os.O_RDONLY:
            raise P9Fail(errno.EBADF)  # (a file bind's ofd may be read-write underneath)
        return p9.Rwrite(os.pwrite(st.ofd, m.data, m.offset))

    def t_readdir(self, m: p9.Treaddir) -> p9.Message:
        """Entries from a snapshot (sorted by name) taken at offset 0; each
        entry's offset is its index + 1, a cookie that stays valid for this fid
        however many calls the listing takes. "." and ".." are not listed: the
        Sentry's VFS makes those itself."""
        st = self.fid(m.fid)
        if st.ofd < 0:
            raise P9Fail(errno.EBADF)
        if not st.qid.type & p9.P9_QTDIR:
            raise P9Fail(errno.ENOTDIR)
        if m.offset == 0 or st.dirents is None:
            with os.scandir(st.ofd) as it:
                st.dirents = sorted((e.name, _dtype(e), e.inode()) for e in it)
        start = min(m.offset, len(st.dirents))
        limit = min(m.count, self.msize - _READ_HDR)
        qtypes = {p9.P9_DT_DIR: p9.P9_QTDIR, p9.P9_DT_LNK: p9.P9_QTSYMLINK}
        ents = (
            p9.Dirent(p9.Qid(qtypes.get(t, p9.P9_QTFILE), 0, ino), i + 1, t, name)
            for i, (name, t, ino) in enumerate(st.dirents[start:], start)
        )
        return p9.Rreaddir(p9.encode_dirents(ents, limit))

    def t_fsync(self, m: p9.Tfsync) -> p9.Message:
        st = self.fid(m.fid)
        if st.ofd < 0:
            raise P9Fail(errno.EBADF)
        (os.fdatasync if m.datasync else os.fsync)(st.ofd)
        return p9.Rfsync()

    def t_walkgetattr(self, m: p9.Twalkgetattr) -> p9.Message:
        """Twalk, then the attributes of the file it reached (one fstat)."""
        r = self.t_walk(p9.Twalk(m.fid, m.newfid, m.names))
        assert isinstance(r, p9.Rwalk)
        if len(r.qids) != len(m.names):
            return p9.Rwalkgetattr(r.qids, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        st = self.fids[m.newfid]
        s = os.fstat(st.fd)
        st.qid = qid_of(s)
        (a_s, a_n), (m_s, m_n), (c_s, c_n) = (
            divmod(t, 10**9) for t in (s.st_atime_ns, s.st_mtime_ns, s.st_ctime_ns))
        qids = (*r.qids[:-1], st.qid) if r.qids else ()
        return p9.Rwalkgetattr(
            qids, s.st_mode, s.st_uid, s.st_gid, s.st_nlink, s.st_rdev,
            s.st_size, s.st_blksize, s.st_blocks, a_s, a_n, m_s, m_n, c_s, c_n,
        )  # fmt: skip

    # -- attributes -------------------------------------------------------------

    def t_getattr(self, m: p9.Tgetattr) -> p9.Message:
        st = self.fid(m.fid)
        s = os.fstat(st.fd)
        st.qid = qid_of(s)
        ns = (s.st_atime_ns, s.st_mtime_ns, s.st_ctime_ns)
        (a_s, a_n), (m_s, m_n), (c_s, c_n) = (divmod(t, 10**9) for t in ns)
        return p9.Rgetattr(
            p9.P9_GETATTR_BASIC, st.qid, s.st_mode, s.st_uid, s.st_gid, s.st_nlink, s.st_rdev,
            s.st_size, s.st_blksize, s.st_blocks, a_s, a_n, m_s, m_n, c_s, c_n, 0, 0, 0, 0,
        )  # fmt: skip

    def t_setattr(self, m: p9.Tsetattr) -> p9.Message:
        """Mode, owner, size, then times (so explicit times win over the
        mtime a truncate sets), all on the fid's own descriptor."""
        st = self.fid(m.fid)
        v = m.valid
        if v & p9.P9_SETATTR_MODE:
            hostops.fchmod_path(st.fd, m.mode & 0o7777)
        if v & (p9.P9_SETATTR_UID | p9.P9_SETATTR_GID):
            uid = m.uid if v & p9.P9_SETATTR_UID else -1
            gid = m.gid if v & p9.P9_SETATTR_GID else -1
            hostops.fchown_path(st.fd, uid, gid)
        if v & p9.P9_SETATTR_SIZE:
            if st.ofd >= 0 and st.oflags & os.O_ACCMODE != os.O_RDONLY:
                os.ftruncate(st.ofd, m.size)
            else:
                if st.qid.type & p9.P9_QTDIR:
                    raise P9Fail(errno.EISDIR)
                fd = self._reopen(st, os.O_WRONLY)
                try:
                    os.ftruncate(fd, m.size)
                finally:
                    os.close(fd)
        if v & (p9.P9_SETATTR_ATIME | p9.P9_SETATTR_MTIME):
            atime = _timespec(
                v, p9.P9_SETATTR_ATIME, p9.P9_SETATTR_ATIME_SET, m.atime_sec, m.atime_nsec
            )
            mtime = _timespec(
                v, p9.P9_SETATTR_MTIME, p9.P9_SETATTR_MTIME_SET, m.mtime_sec, m.mtime_nsec
            )
            hostops.futimens_path(st.fd, atime, mtime)
        return p9.Rsetattr()

    def t_statfs(self, m: p9.Tstatfs) -> p9.Message:
        s = os.fstatvfs(self.fid(m.fid).fd)
        return p9.Rstatfs(
            V9FS_MAGIC,
            s.f_bsize & 0xFFFF_FFFF,
            s.f_blocks,
            s.f_bfree,
            s.f_bavail,
            s.f_files,
            s.f_ffree,
            s.f_fsid & 0xFFFF_FFFF_FFFF_FFFF,
            s.f_namemax,
        )

    def t_readlink(self, m: p9.Treadlink) -> p9.Message:
        st = self.fid(m.fid)
        if not st.qid.type & p9.P9_QTSYMLINK:
            raise P9Fail(errno.EINVAL)
        return p9.Rreadlink(os.readlink("", dir_fd=st.fd))

    # -- namespace changes --------------------------------------------------------

    def t_mkdir(self, m: p9.Tmkdir) -> p9.Message:
        st = self._dir(m.dfid)
        check_name(m.name)
        os.mkdir(m.name, m.mode & 0o7777, dir_fd=st.fd)
        return p9.Rmkdir(self._created(st.fd, m.name, m.gid))

    def t_symlink(self, m: p9.Tsymlink) -> p9.Message:
        st = self._dir(m.fid)
        check_name(m.name)
        if not m.symtgt or "\0" in m.symtgt:
            raise P9Fail(errno.ENOENT if not m.symtgt else errno.EINVAL)
        os.symlink(m.symtgt, m.name, dir_fd=st.fd)
        return p9.Rsymlink(self._created(st.fd, m.name, m.gid))

    def t_mknod(self, m: p9.Tmknod) -> p9.Message:
        """Regular files and FIFOs only: device nodes are the Sentry's business."""
        st = self._dir(m.dfid)
        check_name(m.name)
        kind = stat.S_IFMT(m.mode) or stat.S_IFREG
        if kind not in (stat.S_IFREG, stat.S_IFIFO):
            raise P9Fail(errno.EPERM)
        os.mknod(m.name, kind | (m.mode & 0o7777), 0, dir_fd=st.fd)
        return p9.Rmknod(self._created(st.fd, m.name, m.gid))

    def t_link(self, m: p9.Tlink) -> p9.Message:
        d = self._dir(m.dfid)
        check_name(m.name)
        src = self.fid(m.fid)
        self._same_attach(src, d)
        hostops.link_path(src.fd, d.fd, m.name)
        return p9.Rlink()

    def t_renameat(self, m: p9.Trenameat) -> p9.Message:
        old, new = self._dir(m.olddirfid), self._dir(m.newdirfid)
        check_name(m.oldname)
        check_name(m.newname)
        self._same_attach(old, new)
        os.rename(m.oldname, m.newname, src_dir_fd=old.fd, dst_dir_fd=new.fd)
        self._rename_paths(old.attach, [*old.path, m.oldname], [*new.path, m.newname])
        return p9.Rrenameat()

    def t_rename(self, m: p9.Trename) -> p9.Message:
        st, new = self.fid(m.fid), self._dir(m.dfid)
        check_name(m.name)
        if not st.path:
            raise P9Fail(errno.EBUSY)
        self._same_attach(st, new)
        parent = self._checked_parent(st)
        try:
            os.rename(st.path[-1], m.name, src_dir_fd=parent, dst_dir_fd=new.fd)
        finally:
            os.close(parent)
        self._rename_paths(st.attach, list(st.path), [*new.path, m.name])
        return p9.Rrename()

    def t_unlinkat(self, m: p9.Tunlinkat) -> p9.Message:
        st = self._dir(m.dirfid)
        check_name(m.name)
        if m.flags & ~p9.P9_AT_REMOVEDIR:
            raise P9Fail(errno.EINVAL)
        (os.rmdir if m.flags else os.unlink)(m.name, dir_fd=st.fd)
        return p9.Runlinkat()

    def t_remove(self, m: p9.Tremove) -> p9.Message:
        """Unlink the fid's file; the fid is clunked whether or not that worked."""
        st = self.fid(m.fid)
        try:
            if not st.path:
                raise P9Fail(errno.EBUSY)
            parent = self._checked_parent(st)
            try:
                isdir = st.qid.type & p9.P9_QTDIR
                (os.rmdir if isdir else os.unlink)(st.path[-1], dir_fd=parent)
            finally:
                os.close(parent)
        finally:
            self.fids.pop(m.fid).close()
        return p9.Rremove()


def _timespec(valid: int, bit: int, set_bit: int, sec: int, nsec: int) -> tuple[int, int]:
    if not valid & bit:
        return (0, hostops.UTIME_OMIT)
    if not valid & set_bit:
        return (0, hostops.UTIME_NOW)
    if nsec >= 10**9:  # sec is any s64: the host's filesystem clamps it to its range
        raise P9Fail(errno.EINVAL)
    return (sec, nsec)


_HANDLERS: dict[type[p9.Message], Handler] = {
    getattr(p9, "T" + name[2:]): fn
    for name, fn in vars(FileServer).items()
    if name.startswith("t_")
}
"""Dispatch table: FileServer.t_walk answers p9.Twalk, and so on."""
_MUTATING = frozenset({
    p9.Tlcreate, p9.Twrite, p9.Tsetattr, p9.Tmkdir, p9.Tsymlink, p9.Tmknod, p9.Tlink,
    p9.Trenameat, p9.Trename, p9.Tunlinkat, p9.Tremove, p9.Txattrcreate,
})  # fmt: skip
_FID_FIELDS = ("fid", "dfid", "dirfid", "olddirfid", "newdirfid")
"""The fields of mutating messages that name fids (checked by `_may_change`)."""
_UNSUPPORTED = frozenset({p9.Tauth, p9.Txattrwalk, p9.Txattrcreate, p9.Tlock, p9.Tgetlock})


# -- the Gofer process --------------------------------------------------------------


def _raise_nofile() -> None:
    """Fids hold host fds: let the soft fd limit reach the hard one."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _trim_heap() -> None:
    """Give start-up's free heap pages back (malloc_trim) before serving:
    under a container memory limit they are charged with the application's."""
    import ctypes

    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):
        pass


def serve(
    root: str,
    channel_name: str,
    *,
    readonly: bool,
    sentry_pid: int,
    attach: list[AttachSpec] | None = None,
    confine: bool = True,
    seccomp_action: str = "kill",
    late_fd: int = -1,
    donate_fd: int = -1,
) -> None:
    """The Gofer process: channel first (glibc finds its names under the host's
    /dev/shm), then the root and the ``attach`` sources, then confinement, then
    serve until the Sentry closes the channel (return) or dies (PeerDiedError,
    after unlinking the channel's names on its behalf)."""
    from gofer import lifeline
    from shm import faults
    from shm.channel import ServerChannel

    channel = ServerChannel(channel_name, peer_pid=sentry_pid)
    faults.at("gofer-channel")
    # Both ends have the channel open: its names can go, so nothing is left in
    # /dev/shm whichever side dies from here on (the Sentry unlinks too, later).
    channel.unlink()
    attaches: dict[str, Attach] = {}
    # The donation socket (gofer/donate.py), made a socket object while
    # getsockname is still allowed; only sendmsg on it is, once confined.
    sock = socket.socket(fileno=donate_fd) if donate_fd >= 0 else None
    try:
        root_fd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        attaches = open_attaches(list(attach or []))
        _raise_nofile()
        faults.at("gofer-root")
        _trim_heap()
        # Before the filter: making the socket object asks the kernel its type.
        late = LateTrees(late_fd) if late_fd >= 0 else None
        if confine:
            from gofer import confine as _confine

            _confine.confine(root_fd, seccomp_action=seccomp_action, late_fd=late_fd,
                             donate_fd=donate_fd)
            lifeline.confined()
            faults.at("gofer-confined")
            os.close(root_fd)
            # After pivot_root the old fd names a directory on a detached mount
            # outside our root; serve from the new "/" instead.
            root_fd = os.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        server = FileServer(root_fd, readonly=readonly, attaches=attaches, msize=channel.msize,
                            late=late, donate_sock=sock)
        try:
            channel.serve(server.handle_into)
        finally:
            server.close()
    finally:
        close_attaches(attaches)
        channel.close()
        if sock is not None:
            sock.close()


def main(argv: list[str] | None = None) -> int:
    """``python3 -m gofer.server --root DIR --channel NAME --sentry-pid PID``."""
    from gofer import args as cli

    args = cli.parse(sys.argv[1:] if argv is None else argv, __doc__.splitlines()[0])
    if args.sentry_pid == os.getppid():  # an exec'd Gofer (a forked one did it already)
        from gofer import lifeline
        from shm.layout import tag_of_name

        lifeline.die_with(args.sentry_pid, tag_of_name(args.channel))
    attach = [spec for spec in map(cli.attach_spec, args.attach) if spec is not None]
    logging.basicConfig(level=logging.WARNING, format="gofer[%(process)d]: %(message)s")
    from shm.errors import PeerDiedError

    try:
        serve(
            args.root,
            args.channel,
            readonly=args.readonly,
            sentry_pid=args.sentry_pid,
            attach=attach,
            confine=args.confine,
            seccomp_action=args.seccomp,
            late_fd=args.late_fd,
            donate_fd=args.donate_fd,
        )
    except PeerDiedError:
        return 0  # the Sentry is gone; nothing left to serve
    except Exception as exc:
        print(f"gofer: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
