"""What a fid names, and how names are resolved without ever leaving the root.

The Gofer's fid table (`FidTable`, the base of `gofer.server.FileServer`) keeps,
for each fid, the list of names from the root, an O_PATH descriptor and a qid.
Everything that turns names into descriptors lives here, because this is the
code that must never let a lookup out of the served tree:

* one name per ``openat(dirfd, name, O_PATH|O_NOFOLLOW)``: the kernel never
  sees a "/" or follows a symlink on our behalf;
* ".." is answered from the remembered names (drop the last one, re-walk from
  the root), so it clamps at the root and never asks the kernel for a parent
  that a racing host rename may have moved outside the tree;
* a reopen for I/O goes through a freshly walked parent and must land on the
  same inode as the fid's O_PATH descriptor, otherwise ESTALE (Twalkopenfd's
  open of the name it has just walked goes through the directory the walk
  started from, with the same check: gofer/handlers.py, ``_open_walked``);
* renames done through 9P rewrite the remembered names of every fid below the
  renamed entry, so ".." and reopen stay right.

Several trees (attach points) can be served at once: the container root and
each bind mount's host source. Every fid belongs to exactly one `Attach`; its
names are relative to that attach's root, ".." clamps at that root, and an
operation that names fids of two attach points (rename, link) is EXDEV, as
across two mounts. A bind of a single file is an attach whose root is that
file: it has no names below it, and reopening it for I/O duplicates the
descriptor the Gofer opened at start-up (an O_PATH descriptor cannot be
reopened without /proc, which the confined Gofer does not have).
"""

from __future__ import annotations

import errno
import os
import stat
import struct

from gofer import hostops, p9
from shm.records import field, record

MAX_FIDS = 16384
"""Most fids one session may hold; one more is ENFILE (each holds 1-2 host fds)."""

O_PATH_FLAGS = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC
TCLUNK_FRAME = struct.Struct("<IBHI")
"""A whole Tclunk frame (size type tag fid): what a clunk prefix is made of."""


def qid_of(st: os.stat_result) -> p9.Qid:
    """The 9P identity of a file: type bits from the mode, path = inode,
    version folded from the mtime so a client cache notices a change."""
    if stat.S_ISDIR(st.st_mode):
        qtype = p9.P9_QTDIR
    elif stat.S_ISLNK(st.st_mode):
        qtype = p9.P9_QTSYMLINK
    else:
        qtype = p9.P9_QTFILE
    ns = st.st_mtime_ns
    return p9.Qid(qtype, (ns ^ (ns >> 32)) & 0xFFFF_FFFF, st.st_ino)


@record(frozen=True, slots=True)
class Attach:
    """One served tree: ``name`` is the Tattach aname, ``fd`` an O_PATH
    descriptor of its root (a directory, or a regular file for a file bind),
    ``writable`` whether any change may be made below it. ``io_fd`` is, for a
    file root only, the file opened for I/O before confinement (read-write when
    writable); -1 otherwise."""

    name: str
    fd: int
    writable: bool
    io_fd: int = -1

    @property
    def is_file(self) -> bool:
        return self.io_fd >= 0


class P9Fail(Exception):
    """Abort the current request with this errno (turned into Rlerror once)."""

    def __init__(self, err: int) -> None:
        super().__init__(err)
        self.errno = err


@record(slots=True)
class FidState:
    """What one fid names: ``path`` (names from its attach root), an O_PATH
    ``fd`` the fid owns, its ``qid``, the `Attach` it was walked from, and after
    Tlopen/Tlcreate the opened ``ofd``."""

    path: list[str]
    fd: int
    qid: p9.Qid
    attach: Attach
    ofd: int = -1
    oflags: int = 0
    dirents: list[tuple[str, int, int]] | None = field(default=None)

    def close(self) -> None:
        for fd in (self.ofd, self.fd):
            if fd >= 0:
                os.close(fd)
        self.ofd = self.fd = -1


def check_name(name: str) -> None:
    """A single path component that creates or removes something."""
    if name in ("", ".", "..") or "/" in name or "\0" in name:
        raise P9Fail(errno.EINVAL)


def check_walk_name(name: str) -> None:
    """A name a walk may take one step by (".." is handled before: `_step`)."""
    if name in ("", ".") or "/" in name or "\0" in name:
        raise P9Fail(errno.EINVAL if name != "" else errno.ENOENT)


class FidTable:
    """The fids of one 9P session over the tree under ``root_fd`` (aname "" or
    "/") and the extra ``attaches`` (by aname).

    Not thread-safe (the Gofer serves one request at a time). The table does
    not own ``root_fd`` nor the attach descriptors; `close` releases the fids'
    descriptors only.
    """

    def __init__(self, root_fd: int, *, writable: bool = True,
                 attaches: dict[str, Attach] | None = None, max_fids: int = MAX_FIDS) -> None:
        self.root_fd = root_fd
        self.root_attach = Attach("", root_fd, writable)
        self.attaches: dict[str, Attach] = dict(attaches or {})
        self.max_fids = max_fids
        self.fids: dict[int, FidState] = {}
        self.uid = -1  # from Tattach.n_uname: owner of created files

    def fid(self, fid: int) -> FidState:
        st = self.fids.get(fid)
        if st is None:
            raise P9Fail(errno.EBADF)
        return st

    def _new_fid_ok(self, fid: int) -> None:
        if fid in self.fids:
            raise P9Fail(errno.EBADF)  # 9P: newfid must not be in use
        if fid == p9.P9_NOFID:
            raise P9Fail(errno.EINVAL)
        if len(self.fids) >= self.max_fids:
            raise P9Fail(errno.ENFILE)

    def _dir(self, fid: int) -> FidState:
        st = self.fid(fid)
        if not st.qid.type & p9.P9_QTDIR:
            raise P9Fail(errno.ENOTDIR)
        return st

    def resolve(self, path: list[str], attach: Attach | None = None) -> int:
        """A new O_PATH fd for ``path`` (names from the root of ``attach``,
        default the container root), one name at a time."""
        at = attach or self.root_attach
        if at.is_file:
            if path:
                raise P9Fail(errno.ENOTDIR)
            return os.dup(at.fd)
        fd = os.open(".", O_PATH_FLAGS | os.O_DIRECTORY, dir_fd=at.fd)
        try:
            for name in path:
                nfd = os.open(name, O_PATH_FLAGS, dir_fd=fd)
                os.close(fd)
                fd = nfd
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _step(self, fd: int, path: list[str], name: str, attach: Attach) -> int:
        """Walk one name from ``fd`` (whose path is ``path``, updated in place)."""
        if name == "..":
            if path:
                path.pop()
            return self.resolve(path, attach)  # clamped at the root, never the kernel's ".."
        check_walk_name(name)
        nfd = os.open(name, O_PATH_FLAGS, dir_fd=fd)
        path.append(name)
        return nfd

    def _reopen(self, st: FidState, flags: int) -> int:
        """Open the file ``st`` names for I/O, proving it is the same inode."""
        if st.qid.type & p9.P9_QTDIR:
            return os.open(".", flags | os.O_CLOEXEC, dir_fd=st.fd)
        want = os.fstat(st.fd)
        if not (stat.S_ISREG(want.st_mode) or stat.S_ISFIFO(want.st_mode)):
            raise P9Fail(errno.ELOOP if stat.S_ISLNK(want.st_mode) else errno.EPERM)
        if not st.path and st.attach.is_file:
            return self._reopen_file_root(st.attach, flags)
        if not st.path:
            raise P9Fail(errno.ESTALE)
        parent = self.resolve(st.path[:-1], st.attach)
        try:
            fd = os.open(
                st.path[-1], flags | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, dir_fd=parent
            )
        finally:
            os.close(parent)
        got = os.fstat(fd)
        if (got.st_dev, got.st_ino) != (want.st_dev, want.st_ino):
            os.close(fd)
            raise P9Fail(errno.ESTALE)
        return fd

    @staticmethod
    def _reopen_file_root(at: Attach, flags: int) -> int:
        """A file bind's root "reopened": a duplicate of the descriptor opened at
        start-up (shared offset is harmless: every read and write is positional).
        O_TRUNC truncates here, as open(2) would."""
        if flags & os.O_ACCMODE != os.O_RDONLY and not at.writable:
            raise P9Fail(errno.EROFS)
        fd = os.dup(at.io_fd)
        if flags & os.O_TRUNC:
            try:
                os.ftruncate(fd, 0)
            except BaseException:
                os.close(fd)
                raise
        return fd

    def _created(self, dfd: int, name: str, gid: int) -> p9.Qid:
        """Chown a new file to the attached user/gid; return its qid."""
        fd = os.open(name, O_PATH_FLAGS, dir_fd=dfd)
        try:
            uid = self.uid if self.uid != os.geteuid() else -1
            g = gid if gid not in (p9.P9_NONUNAME, os.getegid()) else -1
            if uid != -1 or g != -1:
                hostops.fchown_path(fd, uid, g)
            return qid_of(os.fstat(fd))
        finally:
            os.close(fd)

    def _rename_paths(self, attach: Attach, old: list[str], new: list[str]) -> None:
        """Keep fid paths right after a rename in ``attach`` (they are what ".."
        and reopen use); fids of other attach points have their own names."""
        n = len(old)
        for st in self.fids.values():
            if st.attach is attach and st.path[:n] == old:
                st.path = new + st.path[n:]

    def clunk_prefix(self, request: memoryview) -> memoryview:
        """Serve the Tclunk frames a request starts with when more follows (the
        client's batched clunks, gofer/client.py: they get no reply; an unknown
        fid is ignored, as the client may send one twice after a lost reply)
        and return the rest, the request proper."""
        while len(request) > TCLUNK_FRAME.size:
            size, mtype, _tag, fid = TCLUNK_FRAME.unpack_from(request)
            if size != TCLUNK_FRAME.size or mtype != p9.MsgType.TCLUNK:
                break
            st = self.fids.pop(fid, None)
            if st is not None:
                st.close()
            request = request[TCLUNK_FRAME.size:]
        return request

    def close(self) -> None:
        """Release every fid's descriptors (the root fd stays the caller's)."""
        for st in self.fids.values():
            st.close()
        self.fids.clear()

    def _checked_parent(self, st: FidState) -> int:
        """The parent dir fd of ``st``, after checking its name still means ``st``."""
        parent = self.resolve(st.path[:-1], st.attach)
        try:
            got = os.stat(st.path[-1], dir_fd=parent, follow_symlinks=False)
            want = os.fstat(st.fd)
            if (got.st_dev, got.st_ino) != (want.st_dev, want.st_ino):
                raise P9Fail(errno.ESTALE)
        except BaseException:
            os.close(parent)
            raise
        return parent


AttachSpec = tuple[str, str, bool]
"""(aname, host path, writable): one extra tree for the Gofer to serve."""


def open_attaches(specs: list[AttachSpec]) -> dict[str, Attach]:
    """Open every bind source before confinement (after it they cannot be named).

    The host path is trusted configuration (a bundle's or a `-v` flag's), so it
    is resolved as mount(2) resolves a bind source: symlinks followed, the last
    component included, as runc does. What the sandbox can do afterwards is
    confined to the tree (or the file) the descriptor names: every later walk
    is one O_NOFOLLOW name at a time from it, and ".." clamps at it. Only
    directories and regular files are served; a file is also opened for I/O
    now (read-write when writable), see fids.Attach.
    """
    out: dict[str, Attach] = {}
    try:
        for name, path, writable in specs:
            if not name or name in ("/", *out):
                raise ValueError(f"attach name {name!r} is empty or repeated")
            fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            st = os.fstat(fd)
            io_fd = -1
            try:
                if stat.S_ISREG(st.st_mode):
                    io_fd, writable = _open_file_source(path, writable)
                    got = os.fstat(io_fd)
                    if (got.st_dev, got.st_ino) != (st.st_dev, st.st_ino):
                        raise OSError(errno.ESTALE, f"{path} changed while opening it")
                elif not stat.S_ISDIR(st.st_mode):
                    raise OSError(errno.EINVAL, f"{path}: not a directory or a regular file")
            except BaseException:
                os.close(fd)
                if io_fd >= 0:
                    os.close(io_fd)
                raise
            out[name] = Attach(name, fd, writable, io_fd)
    except BaseException:
        close_attaches(out)
        raise
    return out


def _open_file_source(path: str, writable: bool) -> tuple[int, bool]:
    """A file bind's I/O descriptor and whether it is writable: read-write when
    asked and the host allows it; read-only when the host says EROFS, EACCES
    or ETXTBSY (a file on a read-only host filesystem, say), since every write
    would fail on the host anyway: the bind then answers EROFS itself."""
    flags = os.O_CLOEXEC | os.O_NOCTTY
    if writable:
        try:
            return os.open(path, os.O_RDWR | flags), True
        except OSError as exc:
            if exc.errno not in (errno.EROFS, errno.EACCES, errno.ETXTBSY):
                raise
    return os.open(path, os.O_RDONLY | flags), False


def close_attaches(attaches: dict[str, Attach]) -> None:
    for at in attaches.values():
        for fd in (at.fd, at.io_fd):
            if fd >= 0:
                os.close(fd)
