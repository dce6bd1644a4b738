"""The Gofer's request handlers: one ``t_*`` method per 9P2000.L request.

Why apart from gofer/server.py: the server is the frame loop (decode, check,
dispatch, encode, the in-place Tread) and the Gofer process around it; this
is what each request does to the host's files, grouped as the protocol
groups them (session, walking and opening, I/O, attributes, namespace
changes). `Handlers` is `gofer.server.FileServer`'s base: the server's
dispatch table maps each request class to the method here that answers it
(``t_walk`` answers ``Twalk``), so a request costs no more calls than when
they were one class. The rules every handler keeps (one name at a time,
O_NOFOLLOW, same-inode checks on reopen, no devices) are gofer/server.py's
docstring's; the fid table's helpers are gofer/fids.py's.
"""

from __future__ import annotations

import errno
import os
import socket
import stat

from gofer import donate, hostops, p9
from gofer.fids import (
    O_PATH_FLAGS,
    Attach,
    FidState,
    FidTable,
    P9Fail,
    check_name,
    check_walk_name,
    qid_of,
)
from gofer.late import LateTrees

# Tlopen flags we pass through; everything else (O_CREAT, O_EXCL, O_NOCTTY,
# O_APPEND, O_DIRECT, O_NOATIME, O_CLOEXEC, ...) is stripped: the Sentry owns
# those semantics and pwrite must keep meaning "at this offset".
_OPEN_KEEP = os.O_ACCMODE | os.O_TRUNC | os.O_DIRECTORY | os.O_DSYNC | os.O_SYNC
READ_HDR = 4 + 1 + 2 + 4  # Rread: size type tag count
V9FS_MAGIC = 0x01021997
_OPEN_WALKED = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY
"""How Twalkopenfd opens what it walked (non-blocking: a FIFO swapped in
for the file must not hang the Gofer before the inode check refuses it)."""


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


class Handlers(FidTable):
    """The ``t_*`` methods and what they share; state set by FileServer.__init__."""

    max_msize: int
    msize: int
    late: LateTrees | None
    donate_sock: socket.socket | None
    _tag: int

    def _release_attach(self, at: Attach) -> None:
        """Close every fid below ``at`` (a dropped late tree)."""
        for fid in [f for f, st in self.fids.items() if st.attach is at]:
            self.fids.pop(fid).close()

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
        return p9.Rread(os.pread(st.ofd, min(m.count, self.msize - READ_HDR), m.offset))

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

    def _donate(self, fid: int, st: FidState, *, checked: bool = False) -> int:
        """Send ``st``'s open descriptor to the Sentry if it may have it; 1 if
        sent. ``checked``: the caller has just seen it is a regular file."""
        if (self.donate_sock is not None and not st.attach.writable
                and st.oflags & os.O_ACCMODE == os.O_RDONLY
                and (checked or stat.S_ISREG(os.fstat(st.ofd).st_mode))):
            return int(donate.send_fd(self.donate_sock, self._tag, fid, st.ofd))
        return 0

    def t_walkopenfd(self, m: p9.Twalkopenfd) -> p9.Message:
        """Twalkgetattr, then Tlopenfd of the new fid when it is a regular
        file of a read-only attach point and there is a donation socket
        (nothing is opened for a file that will not be donated).

        A walk of one name (what the Sentry sends) opens the file relative to
        the directory it was just walked from, by the same name, in this same
        request (`_open_walked`); a longer walk reopens it as Tlopen does."""
        one = self._walk_one(m.fid, m.newfid, m.names)
        if one is None:
            r = self.t_walkgetattr(p9.Twalkgetattr(m.fid, m.newfid, m.names))
            assert isinstance(r, p9.Rwalkgetattr)
            qids, mode = r.qids, r.mode
            attrs = (r.mode, r.uid, r.gid, r.nlink, r.rdev, r.size, r.blksize, r.blocks,
                     r.atime_sec, r.atime_nsec, r.mtime_sec, r.mtime_nsec, r.ctime_sec,
                     r.ctime_nsec)
            st = self.fids.get(m.newfid) if len(qids) == len(m.names) else None
        else:
            src, st, s = one
            qids, mode, attrs = (st.qid,), s.st_mode, _attrs(s)
        opened = donated = 0
        if (st is not None and self.donate_sock is not None and not st.attach.writable
                and stat.S_ISREG(mode)):
            try:
                if one is None:
                    self.t_lopen(p9.Tlopen(m.newfid, os.O_RDONLY))
                else:
                    self._open_walked(src, st, s)
                opened = 1
            except (OSError, P9Fail):
                pass  # walked, not opened: the Sentry opens it on its first read
            if opened:
                donated = self._donate(m.newfid, st, checked=one is not None)
        return p9.Rwalkopenfd(qids, *attrs, opened, donated)

    def _walk_one(self, fid: int, newfid: int, names: tuple[str, ...]
                  ) -> tuple[FidState, FidState, os.stat_result] | None:
        """Twalk of one plain name to a new fid, with one openat and one
        fstat: (source fid, new fid, its stat).  None (nothing done) for
        anything else (several names, "..", a walk onto itself), which
        `t_walk` serves."""
        if len(names) != 1 or newfid == fid or names[0] == "..":
            return None
        src = self.fid(fid)
        self._new_fid_ok(newfid)
        name = names[0]
        check_walk_name(name)
        nfd = os.open(name, O_PATH_FLAGS, dir_fd=src.fd)
        try:
            s = os.fstat(nfd)
        except BaseException:
            os.close(nfd)
            raise
        st = FidState([*src.path, name], nfd, qid_of(s), src.attach)
        self.fids[newfid] = st
        return src, st, s

    @staticmethod
    def _open_walked(src: FidState, st: FidState, want: os.stat_result) -> None:
        """Open ``st`` (a regular file just walked from ``src`` by one name,
        ``want`` its stat) read-only, by that name relative to ``src``'s
        descriptor: the walk's own step, O_NOFOLLOW, so nothing is reached
        that the walk did not reach. The result must be the walked inode and
        a regular file (a name swapped meanwhile: ESTALE, nothing kept)."""
        fd = os.open(st.path[-1], _OPEN_WALKED, dir_fd=src.fd)
        try:
            got = os.fstat(fd)
            if ((got.st_dev, got.st_ino) != (want.st_dev, want.st_ino)
                    or not stat.S_ISREG(got.st_mode)):
                raise P9Fail(errno.ESTALE)
        except BaseException:
            os.close(fd)
            raise
        st.ofd, st.oflags, st.qid = fd, os.O_RDONLY, qid_of(got)

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
        limit = min(m.count, self.msize - READ_HDR)
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
        one = self._walk_one(m.fid, m.newfid, m.names)
        if one is not None:
            return p9.Rwalkgetattr((one[1].qid,), *_attrs(one[2]))
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


def _attrs(s: os.stat_result) -> tuple[int, ...]:
    """Rwalkgetattr's attribute fields (mode .. ctime_nsec) from a stat."""
    (a_s, a_n), (m_s, m_n), (c_s, c_n) = (
        divmod(t, 10**9) for t in (s.st_atime_ns, s.st_mtime_ns, s.st_ctime_ns))
    return (s.st_mode, s.st_uid, s.st_gid, s.st_nlink, s.st_rdev, s.st_size, s.st_blksize,
            s.st_blocks, a_s, a_n, m_s, m_n, c_s, c_n)


def _timespec(valid: int, bit: int, set_bit: int, sec: int, nsec: int) -> tuple[int, int]:
    if not valid & bit:
        return (0, hostops.UTIME_OMIT)
    if not valid & set_bit:
        return (0, hostops.UTIME_NOW)
    if nsec >= 10**9:  # sec is any s64: the host's filesystem clamps it to its range
        raise P9Fail(errno.EINVAL)
    return (sec, nsec)
