"""Changes to a writable gofer-backed filesystem (an "rw" bind mount).

Mixed into :class:`sentry.vfs.goferfs.GoferInode`; kept apart because the
read-only root never needs any of it.  Every method maps one VFS operation to
the 9P2000.L request that does it on the host, then keeps the inode's own
caches right (child inodes, attributes):

* create: Tlcreate on a clone of the directory fid (9P turns the clone into
  the new, open file; it becomes the file's write fid), then a walk for the
  file's own fid;
* mkdir/symlink/mknod: Tmkdir/Tsymlink/Tmknod then a walk;
* link/unlink/rmdir/rename: Tlink/Tunlinkat/Trenameat (9P has no rename
  flags: RENAME_EXCHANGE is EINVAL, as Linux's v9fs says; RENAME_NOREPLACE was
  checked by the VFS);
* writes go through one lazily opened O_WRONLY fid per file, shared by every
  description (9P writes carry their own offset);
* setattr maps to one Tsetattr, truncate included.

Ownership: the Gofer creates files as its own user; when the creating task's
uid or gid differs, one Tsetattr chowns the new file to it.  Device nodes and
sockets cannot be made on the host (the Gofer refuses them: EPERM).

Lock order: as goferfs.py (one inode's ``_lock`` at a time, never across a
client call except to open the shared write fid once).
"""

from __future__ import annotations

import errno
import os
from typing import TYPE_CHECKING, Any

from gofer import p9
from sentry.kernel.errors import SyscallError
from sentry.vfs.inode import RENAME_EXCHANGE, S_IFIFO, S_IFMT, S_IFREG, now_ns

if TYPE_CHECKING:
    from sentry.vfs.goferfs import GoferInode

_SETATTR = {
    "mode": p9.P9_SETATTR_MODE, "uid": p9.P9_SETATTR_UID, "gid": p9.P9_SETATTR_GID,
    "size": p9.P9_SETATTR_SIZE,
}


class GoferWrites:
    """The write half of GoferInode (``self`` is always a GoferInode)."""

    # -- helpers ------------------------------------------------------------

    def _writable(self: GoferInode) -> None:
        if self.fs.readonly:
            raise SyscallError(errno.EROFS)

    def _dir_writable(self: GoferInode) -> None:
        if not self.is_dir():
            raise SyscallError(errno.ENOTDIR)
        self._writable()

    def _adopt(self: GoferInode, name: bytes, uid: int | None, gid: int | None) -> GoferInode:
        """Walk to the entry just made, cache it, chown it to the creator."""
        fid, attr = self.fs.client.walk_getattr(self.fid, name)
        try:
            child = type(self)(self.fs, fid, attr)
        except SyscallError:
            self.fs.client.clunk(fid)
            raise
        want = {}
        if uid is not None and uid != child.uid:
            want["uid"] = uid
        if gid is not None and gid != child.gid:
            want["gid"] = gid
        if want:
            try:
                child._send_setattr(**want)
                # The new owner now, not at the next refresh: a check made
                # before any stat (rmdir in sticky /tmp) must see it.
                child.uid, child.gid = want.get("uid", child.uid), want.get("gid", child.gid)
            except SyscallError:
                pass  # the file exists; an owner the host refuses is not fatal
        with self._lock:
            self._children[name] = child
            self._absent.pop(name, None)
        self._attr_at = 0.0  # the directory's mtime and link count moved
        return child

    def _send_setattr(self: GoferInode, **kw: int) -> None:
        valid = 0
        for key, bit in _SETATTR.items():
            if kw.get(key) is not None:
                valid |= bit
        atime, mtime = kw.get("atime_ns"), kw.get("mtime_ns")
        if atime is not None:
            valid |= p9.P9_SETATTR_ATIME | p9.P9_SETATTR_ATIME_SET
        if mtime is not None:
            valid |= p9.P9_SETATTR_MTIME | p9.P9_SETATTR_MTIME_SET
        if not valid:
            return
        self.fs.client.setattr(
            self.fid, valid, mode=kw.get("mode") or 0, uid=kw.get("uid") or 0,
            gid=kw.get("gid") or 0, size=kw.get("size") or 0,
            atime_ns=atime or 0, mtime_ns=mtime or 0)
        self._attr_at = 0.0

    # -- attributes ------------------------------------------------------------

    def setattr(self: GoferInode, *, mode: int | None = None, uid: int | None = None,
                gid: int | None = None, size: int | None = None,
                atime_ns: int | None = None, mtime_ns: int | None = None) -> None:
        """chmod/chown/truncate/utimens as one Tsetattr."""
        self._writable()
        if size is not None:
            if self.is_dir():
                raise SyscallError(errno.EISDIR)
            if not self.is_reg():
                raise SyscallError(errno.EINVAL)
            if size < 0:
                raise SyscallError(errno.EINVAL)
        self._send_setattr(mode=None if mode is None else mode & 0o7777, uid=uid, gid=gid,
                           size=size, atime_ns=atime_ns, mtime_ns=mtime_ns)
        self._refresh(force=True)

    def truncate(self: GoferInode, size: int) -> None:
        self.setattr(size=size)

    # -- data ----------------------------------------------------------------

    def _write_fid(self: GoferInode) -> int:
        with self._lock:
            if self._wfid is None:
                fid, _ = self.fs.client.walk(self.fid, [])
                try:
                    self.fs.client.lopen(fid, os.O_WRONLY)
                except SyscallError:
                    self.fs.client.clunk(fid)
                    raise
                self._wfid = fid
            return self._wfid

    def write_at(self: GoferInode, offset: int, data: bytes) -> int:
        self._writable()
        if (self.mode & S_IFMT) != S_IFREG:
            raise SyscallError(errno.EINVAL)
        n = self.fs.client.write(self._write_fid(), offset, data)
        if n:
            self.size = max(self.size, offset + n)
            self.mtime_ns = self.ctime_ns = now_ns()
        return n

    # -- names ------------------------------------------------------------------

    def create(self: GoferInode, name: bytes, mode: int, uid: int, gid: int) -> GoferInode:
        self._dir_writable()
        client = self.fs.client
        clone, _ = client.walk(self.fid, [])
        try:
            client.lcreate(clone, name, os.O_WRONLY, mode & 0o7777, gid)
        except SyscallError:
            client.clunk(clone)
            raise
        try:
            child = self._adopt(name, uid, gid)
        except SyscallError:
            client.clunk(clone)
            raise
        with child._lock:
            if child._wfid is None:
                child._wfid = clone  # already open for writing: keep it
                clone = -1
        if clone >= 0:
            client.clunk(clone)
        return child

    def mkdir(self: GoferInode, name: bytes, mode: int, uid: int, gid: int) -> GoferInode:
        self._dir_writable()
        self.fs.client.mkdir(self.fid, name, mode & 0o7777, gid)
        return self._adopt(name, uid, gid)

    def mknod(self: GoferInode, name: bytes, mode: int, rdev: int, uid: int,
              gid: int) -> GoferInode:
        self._dir_writable()
        if mode & S_IFMT not in (S_IFREG, S_IFIFO):
            raise SyscallError(errno.EPERM)  # no device nodes or sockets on the host
        self.fs.client.mknod(self.fid, name, mode, 0, 0, gid)
        return self._adopt(name, uid, gid)

    def symlink(self: GoferInode, name: bytes, target: bytes, uid: int,
                gid: int) -> GoferInode:
        self._dir_writable()
        self.fs.client.symlink(self.fid, name, target, gid)
        return self._adopt(name, uid, gid)

    def link(self: GoferInode, name: bytes, inode: Any) -> None:
        self._dir_writable()
        if getattr(inode, "fs", None) is not self.fs:
            raise SyscallError(errno.EXDEV)
        self.fs.client.link(self.fid, inode.fid, name)
        with self._lock:
            self._children[name] = inode
            self._absent.pop(name, None)
        inode._attr_at = 0.0
        self._attr_at = 0.0

    def _forget(self: GoferInode, name: bytes) -> None:
        with self._lock:
            child = self._children.pop(name, None)
        if child is not None:
            child._attr_at = 0.0  # its link count changed (it stays open for its users)
        self._attr_at = 0.0

    def unlink(self: GoferInode, name: bytes) -> None:
        self._dir_writable()
        self.fs.client.unlinkat(self.fid, name, 0)
        self._forget(name)

    def rmdir(self: GoferInode, name: bytes) -> None:
        self._dir_writable()
        self.fs.client.unlinkat(self.fid, name, p9.P9_AT_REMOVEDIR)
        self._forget(name)

    def rename(self: GoferInode, oldname: bytes, newdir: Any, newname: bytes,
               flags: int = 0) -> None:
        self._dir_writable()
        if getattr(newdir, "fs", None) is not self.fs:
            raise SyscallError(errno.EXDEV)
        if flags & RENAME_EXCHANGE:
            raise SyscallError(errno.EINVAL)
        self.fs.client.renameat(self.fid, oldname, newdir.fid, newname)
        with self._lock:
            child = self._children.pop(oldname, None)
        with newdir._lock:
            replaced = newdir._children.pop(newname, None)
            if child is not None:
                newdir._children[newname] = child
            newdir._absent.pop(newname, None)
        if replaced is not None:
            replaced._attr_at = 0.0
        self._attr_at = newdir._attr_at = 0.0
