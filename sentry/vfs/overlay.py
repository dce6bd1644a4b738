"""overlay: a writable tmpfs upper layer over a read-only lower filesystem.

This is how the container root is writable while the host's files are never
modified: the lower layer is the gofer-backed root (any Filesystem works), the
upper layer a Sentry tmpfs.  The rules are overlayfs's (Documentation/
filesystems/overlayfs.rst):

* Lookup tries the upper layer first.  An upper non-directory hides the lower
  entry; an upper directory is merged with a lower directory of the same name
  unless it is *opaque* (created where a lower entry had been removed).
* Removing a name that exists in the lower layer leaves a *whiteout* in the
  upper layer: a character device 0:0, hidden from lookup and readdir.
* readdir merges both layers, upper names first, without duplicates and
  without whiteouts.
* Changing a lower file first *copies it up* (data, mode, owner, times;
  parents first): opening it for writing, truncating, chmod/chown/utimens,
  linking or renaming it.
* Inode numbers stay those of the lower file across copy-up (the upper copy
  remembers its origin), so ``ls -i`` and ``stat`` match the host.  Files that
  exist only in the upper layer get numbers from 2**32 up, above any the lower
  layer is expected to use, so (dev, ino) stays unique.
* Renaming a directory that has a lower part fails with EXDEV (overlayfs
  without redirect_dir does the same; ``mv`` then copies and deletes).

Every overlay inode object is cached in its parent's overlay inode, so the copy-up
state of a file is held in exactly one place however it was looked up.  The
cache is weak (the overlay is ``evictable``, see dentry.py): an overlay inode
lives while a dentry, a description or a child overlay inode (``parent``)
holds it, and the bounded dentry LRU keeps the recently used ones.  Evicting
one loses nothing, because it holds no state of its own: its copy-up is the
upper tmpfs entry (kept by the tmpfs, found again by lookup), whiteouts and
opacity live in the upper tmpfs, and its inode number is recomputed the same
way (the lower inode's number, which is the Gofer's qid path; or the upper
copy's ``ovl_origin``; or the tmpfs number of an upper-only file).  While it is
held, its weak entry stays, so there are never two overlay inodes for one
name at a time.

Lock order: ``OverlayFs.lock`` (re-entrant; namespace changes and copy-up)
-> the upper tmpfs's locks -> lower filesystem locks.  Data reads and writes
do not take ``OverlayFs.lock``.
"""

from __future__ import annotations

import errno
import threading
from collections.abc import MutableMapping
from typing import Any

from sentry.kernel.errors import SyscallError
from sentry.vfs.dentry import child_map
from sentry.vfs.description import DirectoryDescription, RegularFileDescription
from sentry.vfs.file import O_ACCMODE, O_RDONLY, FileDescription, Stat
from sentry.vfs.inode import (
    RENAME_EXCHANGE,
    S_IFCHR,
    S_IFDIR,
    S_IFLNK,
    S_IFMT,
    S_IFREG,
    Filesystem,
    Inode,
    StatFs,
    check_rename_target,
)
from sentry.vfs.tmpfs import TmpFs, is_whiteout

OVERLAYFS_MAGIC = 0x794C7630
UPPER_INO_BASE = 1 << 32
COPY_CHUNK = 1 << 20
O_TRUNC = 0o1000


class OverlayFs(Filesystem):
    """An overlay of ``upper`` (writable tmpfs) over ``lower`` (read-only)."""

    name = "overlay"
    magic = OVERLAYFS_MAGIC
    evictable = True  # dentries and overlay inodes are bounded (dentry.py)

    def __init__(self, lower: Filesystem, upper: TmpFs | None = None, *,
                 source: str = "overlay") -> None:
        super().__init__(readonly=False, source=source)
        self.lower = lower
        self.upper = upper if upper is not None else TmpFs(first_ino=UPPER_INO_BASE)
        # Inode flags live on the upper copy (overlayfs's fileattr_set copies up).
        self.inode_flags = self.upper.inode_flags
        self.lock = threading.RLock()
        lroot = lower.root
        uroot = self.upper.root
        lst = lroot.stat()
        uroot.setattr(mode=lst.mode & 0o7777, uid=lst.uid, gid=lst.gid,
                      atime_ns=lst.atime_ns, mtime_ns=lst.mtime_ns)
        uroot.ovl_origin = lroot.ino  # type: ignore[attr-defined]
        self.root: OverlayInode = OverlayInode(self, uroot, lroot, None, b"")

    def statfs(self) -> StatFs:
        st = self.upper.statfs()
        st.type = self.magic
        st.fsid = self.dev
        return st


def _delegate(attr: str) -> Any:
    """A property read from the layer holding the file (``real``, inlined:
    every path component's permission check reads three of these)."""
    def get(self: OverlayInode) -> Any:
        upper = self.upper
        return getattr(upper if upper is not None else self.lower, attr)

    return property(get)


def _mkwhiteout(upper_dir: Inode, name: bytes) -> None:
    upper_dir.mknod(name, S_IFCHR, 0, 0, 0)


class OverlayInode(Inode):
    """A file of the overlay: its upper part, its lower part, or both (directories)."""

    fs: OverlayFs
    mode = _delegate("mode")
    uid = _delegate("uid")
    gid = _delegate("gid")
    nlink = _delegate("nlink")
    size = _delegate("size")
    rdev = _delegate("rdev")
    atime_ns = _delegate("atime_ns")
    mtime_ns = _delegate("mtime_ns")
    ctime_ns = _delegate("ctime_ns")

    def __init__(self, fs: OverlayFs, upper: Inode | None, lower: Inode | None,
                 parent: OverlayInode | None, name: bytes) -> None:
        assert upper is not None or lower is not None
        self.fs = fs
        self.upper = upper
        self.lower = lower
        self.parent = parent
        self.name = name
        # A file never changes type (copy-up keeps it): kept for is_dir and
        # is_symlink, which every path component asks.
        self._fmt = self.real.mode & S_IFMT
        self._children: MutableMapping[bytes, OverlayInode] = child_map(  # type: ignore[assignment]
            self._fmt == S_IFDIR)
        self._pipe = None
        if lower is not None:
            self.ino = lower.ino
        else:
            assert upper is not None
            self.ino = getattr(upper, "ovl_origin", None) or upper.ino

    @property  # type: ignore[override]
    def iflags(self) -> int:
        return getattr(self.real, "iflags", 0)

    @iflags.setter
    def iflags(self, value: int) -> None:
        """FS_IOC_SETFLAGS: kept on the upper copy, made first (overlayfs's fileattr_set)."""
        self.copy_up()
        assert self.upper is not None
        self.upper.iflags = value

    def is_dir(self) -> bool:
        return self._fmt == S_IFDIR

    def is_symlink(self) -> bool:
        return self._fmt == S_IFLNK

    def is_reg(self) -> bool:
        return self._fmt == S_IFREG

    @property
    def real(self) -> Inode:
        """The layer that currently holds this file's attributes and data."""
        return self.upper if self.upper is not None else self.lower  # type: ignore[return-value]

    def stat(self) -> Stat:
        st = self.real.stat()
        st.dev = self.fs.dev
        st.ino = self.ino
        return st

    def statfs(self) -> StatFs:
        return self.fs.statfs()

    # Layer queries (fs.lock held).
    def _opaque(self) -> bool:
        return self.upper is not None and bool(getattr(self.upper, "opaque", False))

    def _upper_entry(self, name: bytes) -> Inode | None:
        if self.upper is None:
            return None
        try:
            return self.upper.lookup(name)
        except SyscallError as e:
            if e.errno == errno.ENOENT:
                return None
            raise

    def _lower_entry(self, name: bytes) -> Inode | None:
        if self.lower is None or self._opaque():
            return None
        try:
            return self.lower.lookup(name)
        except SyscallError as e:
            if e.errno in (errno.ENOENT, errno.ENOTDIR):
                return None
            raise

    def _has_whiteout(self, name: bytes) -> bool:
        u = self._upper_entry(name)
        return u is not None and is_whiteout(u)

    def _require_dir(self) -> None:
        if not self.is_dir():
            raise SyscallError(errno.ENOTDIR)

    # Names.
    def lookup(self, name: bytes) -> Inode:
        self._require_dir()
        with self.fs.lock:
            c = self._children.get(name)
            if c is not None:
                return c
            up = self._upper_entry(name)
            if up is not None and is_whiteout(up):
                raise SyscallError(errno.ENOENT)
            low = None
            if up is None or (up.is_dir() and not getattr(up, "opaque", False)):
                low = self._lower_entry(name)
                if up is not None and (low is None or not low.is_dir()):
                    low = None
            if up is None and low is None:
                raise SyscallError(errno.ENOENT)
            c = OverlayInode(self.fs, up, low, self, name)
            self._children[name] = c
            return c

    def iterdir(self) -> list[tuple[bytes, int, int]]:
        self._require_dir()
        with self.fs.lock:
            out: list[tuple[bytes, int, int]] = []
            seen: set[bytes] = set()
            if self.upper is not None:
                for n, _ino, t in self.upper.iterdir():
                    seen.add(n)
                    if is_whiteout(self.upper.lookup(n)):
                        continue
                    out.append((n, self.lookup(n).ino, t))
            if self.lower is not None and not self._opaque():
                out.extend(e for e in self.lower.iterdir() if e[0] not in seen)
            return out

    def _make(self, name: bytes, make: Any) -> OverlayInode:
        """Create ``name`` in the upper layer with ``make(upper_dir)``."""
        self._require_dir()
        with self.fs.lock:
            try:
                self.lookup(name)
            except SyscallError as e:
                if e.errno != errno.ENOENT:
                    raise
            else:
                raise SyscallError(errno.EEXIST)
            self.copy_up()
            assert self.upper is not None
            whiteout = self._has_whiteout(name)
            if whiteout:
                self.upper.unlink(name)
            new = make(self.upper)
            if whiteout and new.is_dir():
                new.opaque = True
            c = OverlayInode(self.fs, new, None, self, name)
            self._children[name] = c
            return c

    def create(self, name: bytes, mode: int, uid: int, gid: int) -> Inode:
        return self._make(name, lambda u: u.create(name, mode, uid, gid))

    def mkdir(self, name: bytes, mode: int, uid: int, gid: int) -> Inode:
        return self._make(name, lambda u: u.mkdir(name, mode, uid, gid))

    def mknod(self, name: bytes, mode: int, rdev: int, uid: int, gid: int) -> Inode:
        if (mode & S_IFMT) == S_IFCHR and rdev == 0:
            raise SyscallError(errno.EPERM)  # would read back as a whiteout
        return self._make(name, lambda u: u.mknod(name, mode, rdev, uid, gid))

    def symlink(self, name: bytes, target: bytes, uid: int, gid: int) -> Inode:
        return self._make(name, lambda u: u.symlink(name, target, uid, gid))

    def link(self, name: bytes, inode: Inode) -> None:
        if not isinstance(inode, OverlayInode) or inode.fs is not self.fs:
            raise SyscallError(errno.EXDEV)
        if inode.is_dir():
            raise SyscallError(errno.EPERM)
        with self.fs.lock:
            inode.copy_up()
            self._make(name, lambda u: (u.link(name, inode.upper), inode.upper)[1])
            self._children[name] = inode

    def unlink(self, name: bytes) -> None:
        with self.fs.lock:
            c = self.lookup(name)
            assert isinstance(c, OverlayInode)
            if c.is_dir():
                raise SyscallError(errno.EISDIR)
            self.copy_up()
            assert self.upper is not None
            lower_has = self._lower_entry(name) is not None
            if c.upper is not None:
                self.upper.unlink(name)
            if lower_has:
                _mkwhiteout(self.upper, name)
            self._children.pop(name, None)

    def _clear_whiteouts(self) -> None:
        """Empty an upper directory that holds only whiteouts (before it is removed)."""
        if self.upper is not None:
            for n, _ino, _t in self.upper.iterdir():
                self.upper.unlink(n)

    def rmdir(self, name: bytes) -> None:
        with self.fs.lock:
            c = self.lookup(name)
            assert isinstance(c, OverlayInode)
            if not c.is_dir():
                raise SyscallError(errno.ENOTDIR)
            if c.iterdir():
                raise SyscallError(errno.ENOTEMPTY)
            self.copy_up()
            assert self.upper is not None
            lower_has = self._lower_entry(name) is not None
            if c.upper is not None:
                c._clear_whiteouts()
                self.upper.rmdir(name)
            if lower_has:
                _mkwhiteout(self.upper, name)
            self._children.pop(name, None)

    def rename(self, oldname: bytes, newdir: Inode, newname: bytes, flags: int = 0) -> None:
        if not isinstance(newdir, OverlayInode) or newdir.fs is not self.fs:
            raise SyscallError(errno.EXDEV)
        newdir._require_dir()
        with self.fs.lock:
            src = self.lookup(oldname)
            assert isinstance(src, OverlayInode)
            try:
                dst: OverlayInode | None = newdir.lookup(newname)  # type: ignore[assignment]
            except SyscallError as e:
                if e.errno != errno.ENOENT:
                    raise
                dst = None
            if flags & RENAME_EXCHANGE:
                self._exchange(src, newdir, dst)
                return
            if src.is_dir() and src.lower is not None:
                raise SyscallError(errno.EXDEV)
            if dst is src:
                return
            if dst is not None:
                check_rename_target(src, dst, flags, lambda: not dst.iterdir())
            src.copy_up()
            newdir.copy_up()
            assert self.upper is not None and newdir.upper is not None
            src_lower = self._lower_entry(oldname) is not None
            dst_lower = newdir._lower_entry(newname) is not None
            if dst is not None and dst.is_dir():
                dst._clear_whiteouts()
            if newdir._has_whiteout(newname):
                newdir.upper.unlink(newname)
            self.upper.rename(oldname, newdir.upper, newname, 0)
            assert src.upper is not None
            if src.is_dir() and dst_lower:
                src.upper.opaque = True  # type: ignore[attr-defined]
            if src_lower:
                _mkwhiteout(self.upper, oldname)
            self._children.pop(oldname, None)
            newdir._children[newname] = src
            src.parent, src.name = newdir, newname

    def _exchange(self, src: OverlayInode, newdir: OverlayInode,
                  dst: OverlayInode | None) -> None:
        """RENAME_EXCHANGE: supported when neither side is a directory with a lower part."""
        if dst is None:
            raise SyscallError(errno.ENOENT)
        if (src.is_dir() and src.lower is not None) or (dst.is_dir() and dst.lower is not None):
            raise SyscallError(errno.EXDEV)
        src.copy_up()
        dst.copy_up()
        assert self.upper is not None and newdir.upper is not None
        self.upper.rename(src.name, newdir.upper, dst.name, RENAME_EXCHANGE)
        oldname, newname = src.name, dst.name
        self._children[oldname], newdir._children[newname] = dst, src
        src.parent, src.name, dst.parent, dst.name = newdir, newname, self, oldname

    # Copy-up.
    def copy_up(self) -> None:
        """Give this file an upper copy (parents first); a no-op once it has one."""
        with self.fs.lock:
            if self.upper is not None:
                return
            parent, lower = self.parent, self.lower
            assert parent is not None and lower is not None
            parent.copy_up()
            up = parent.upper
            assert up is not None
            st = lower.stat()
            fmt = st.mode & S_IFMT
            if fmt == S_IFDIR:
                new = up.mkdir(self.name, st.mode, st.uid, st.gid)
            elif fmt == S_IFLNK:
                new = up.symlink(self.name, lower.readlink(), st.uid, st.gid)
            elif fmt == S_IFREG:
                new = up.create(self.name, st.mode, st.uid, st.gid)
                pos = 0
                while True:
                    data = lower.read_at(pos, COPY_CHUNK)
                    if not data:
                        break
                    new.write_at(pos, data)
                    pos += len(data)
                if pos < st.size:
                    new.truncate(st.size)
            else:
                new = up.mknod(self.name, st.mode, st.rdev, st.uid, st.gid)
            new.ovl_origin = lower.ino  # type: ignore[attr-defined]
            for xname in lower.list_xattr():
                new.set_xattr(xname, lower.get_xattr(xname), 0)
            new.setattr(mode=st.mode & 0o7777, uid=st.uid, gid=st.gid,
                        atime_ns=st.atime_ns, mtime_ns=st.mtime_ns)
            self.upper = new
            if fmt != S_IFDIR:
                self.lower = None  # a non-directory is wholly in the upper layer now

    # Attributes and data.
    def setattr(self, *, mode: int | None = None, uid: int | None = None,
                gid: int | None = None, size: int | None = None,
                atime_ns: int | None = None, mtime_ns: int | None = None) -> None:
        if size is not None:
            if self.is_dir():
                raise SyscallError(errno.EISDIR)
            if not self.is_reg():
                raise SyscallError(errno.EINVAL)
        self.copy_up()
        assert self.upper is not None
        self.upper.setattr(mode=mode, uid=uid, gid=gid, size=size, atime_ns=atime_ns,
                           mtime_ns=mtime_ns)

    def get_xattr(self, name: bytes) -> bytes:
        return self.real.get_xattr(name)

    def list_xattr(self) -> list[bytes]:
        return self.real.list_xattr()

    def set_xattr(self, name: bytes, value: bytes, flags: int) -> None:
        if self.fs.readonly:
            raise SyscallError(errno.EROFS)
        self.copy_up()
        assert self.upper is not None
        self.upper.set_xattr(name, value, flags)

    def remove_xattr(self, name: bytes) -> None:
        if self.fs.readonly:
            raise SyscallError(errno.EROFS)
        self.real.get_xattr(name)  # ENODATA before a needless copy-up
        self.copy_up()
        assert self.upper is not None
        self.upper.remove_xattr(name)

    def readlink(self) -> bytes:
        return self.real.readlink()

    def read_at(self, offset: int, count: int) -> bytes:
        return self.real.read_at(offset, count)

    def read_to(self, mm: Any, addr: int, offset: int, count: int) -> int:
        """read_at into application memory (description.py's read_to)."""
        real = self.real
        read_to = getattr(real, "read_to", None)
        if read_to is not None:
            return read_to(mm, addr, offset, count)
        data = real.read_at(offset, count)
        if data:
            mm.copy_out(addr, data)
        return len(data)

    def write_at(self, offset: int, data: bytes) -> int:
        if self.upper is None:
            self.copy_up()
        assert self.upper is not None
        return self.upper.write_at(offset, data)

    def truncate(self, size: int) -> None:
        self.setattr(size=size)

    def read_pages(self, offset: int, length: int) -> bytes:
        return self.real.read_pages(offset, length)

    def shared_backing(self, mf: Any) -> Any:
        """The upper file's own pages for a MAP_SHARED mapping (a tmpfs file,
        sentry/vfs/tmpfs.py).  None for a file only in the lower layer: it can
        only have been opened read-only (a writable open copies up), so the
        mapping is a copy nothing can store to."""
        up = self.upper
        get = getattr(up, "shared_backing", None)
        return get(mf) if get is not None else None

    def seek_data(self, offset: int, hole: bool) -> int:
        return self.real.seek_data(offset, hole)

    def open(self, flags: int) -> FileDescription:
        fmt = self.mode & S_IFMT
        if fmt == S_IFREG:
            if (flags & O_ACCMODE) != O_RDONLY or flags & O_TRUNC:
                self.copy_up()
            return RegularFileDescription(self, flags)
        if fmt == S_IFDIR:
            return DirectoryDescription(self, flags)
        return self.real.open(flags)
