"""Namespace operations of ext2 directories: lookup, create, link, unlink,
rename, as Linux's fs/ext2/namei.c does them.

The VFS has already checked names, EEXIST/ENOENT, permissions and mount
read-only state; this module keeps the on-disk tree consistent: link counts
(a directory's ".." counts in its parent's), EMLINK at ext2's 32000 links,
ENOTEMPTY, and the moved directory's ".." record.
"""

from __future__ import annotations

import errno

from sentry.kernel.errors import SyscallError
from sentry.vfs.ext2 import alloc, dirent
from sentry.vfs.ext2.inode import LINK_MAX, Ext2Inode
from sentry.vfs.inode import (
    RENAME_EXCHANGE,
    RENAME_WHITEOUT,
    S_IFDIR,
    S_IFLNK,
    S_IFMT,
    S_IFREG,
    Inode,
    check_rename_target,
    mknod_makes_regular,
)


class Ext2Node(Ext2Inode):
    """An ext2 inode with the directory operations (they refuse non-directories)."""

    def _dir(self, write: bool = False) -> None:
        if not self.is_dir():
            raise SyscallError(errno.ENOTDIR)
        if write and self.fs.readonly:
            raise SyscallError(errno.EROFS)

    def lookup(self, name: bytes) -> Inode:
        self._dir()
        with self.sb.lock:
            hit = dirent.find(self, name)
            if hit is None:
                raise SyscallError(errno.ENOENT)
            return self.fs.iget(hit[0])

    def iterdir(self) -> list[tuple[bytes, int, int]]:
        self._dir()
        with self.sb.lock:
            out = []
            for name, ino, ft in dirent.entries(self):
                if name in (b".", b".."):
                    continue
                dt = dirent.dtype(ft) if ft else (self.fs.iget(ino).mode & S_IFMT) >> 12
                out.append((name, ino, dt))
            return out

    def _new_child(self, name: bytes, mode: int, uid: int, gid: int, rdev: int = 0,
                   target: bytes | None = None) -> Ext2Node:
        self._dir(write=True)
        with self.sb.lock:
            is_dir = mode & S_IFMT == S_IFDIR
            if is_dir and self.nlink >= LINK_MAX:
                raise SyscallError(errno.EMLINK)
            group = (self.ino - 1) // self.sb.inodes_per_group
            ino = alloc.alloc_inode(self.sb, is_dir, group)
            child = self.fs.fresh(ino, mode, uid, gid, rdev)
            try:
                if is_dir:
                    blk = child.map.ensure(0)
                    self.sb.write_block(blk, dirent.first_block(self.sb, ino, self.ino))
                    child.size = self.sb.block_size
                    child.nlink = 2
                elif target is not None:
                    child.set_target(target)
                child.save()
                dirent.add(self, name, ino, dirent.ftype(mode, self.sb))
            except SyscallError:
                child.nlink = 0
                child.evict()
                raise
            if is_dir:
                self.nlink += 1
            self.touch()
            self.save()
            return child

    def create(self, name: bytes, mode: int, uid: int, gid: int) -> Inode:
        return self._new_child(name, S_IFREG | (mode & 0o7777), uid, gid)

    def mkdir(self, name: bytes, mode: int, uid: int, gid: int) -> Inode:
        return self._new_child(name, S_IFDIR | (mode & 0o7777), uid, gid)

    def mknod(self, name: bytes, mode: int, rdev: int, uid: int, gid: int) -> Inode:
        if mknod_makes_regular(mode):
            return self.create(name, mode, uid, gid)
        return self._new_child(name, mode, uid, gid, rdev=rdev)

    def symlink(self, name: bytes, target: bytes, uid: int, gid: int) -> Inode:
        if len(target) >= self.sb.block_size:
            raise SyscallError(errno.ENAMETOOLONG)
        return self._new_child(name, S_IFLNK | 0o777, uid, gid, target=target)

    def link(self, name: bytes, inode: Inode) -> None:
        self._dir(write=True)
        if not isinstance(inode, Ext2Inode) or inode.fs is not self.fs:
            raise SyscallError(errno.EXDEV)
        if inode.is_dir():
            raise SyscallError(errno.EPERM)
        with self.sb.lock:
            if inode.nlink >= LINK_MAX:
                raise SyscallError(errno.EMLINK)
            dirent.add(self, name, inode.ino, dirent.ftype(inode.mode, self.sb))
            inode.nlink += 1
            inode.touch(m=False)
            inode.save()
            self.touch()
            self.save()

    def _drop(self, inode: Ext2Inode, links: int = 1) -> None:
        inode.nlink = max(0, inode.nlink - links)
        inode.touch(m=False)
        if inode.nlink == 0:
            inode.evict()
        else:
            inode.save()

    def unlink(self, name: bytes) -> None:
        self._dir(write=True)
        with self.sb.lock:
            inode = self.lookup(name)
            assert isinstance(inode, Ext2Inode)
            if inode.is_dir():
                raise SyscallError(errno.EISDIR)
            dirent.remove(self, name)
            self._drop(inode)
            self.touch()
            self.save()

    def rmdir(self, name: bytes) -> None:
        self._dir(write=True)
        with self.sb.lock:
            inode = self.lookup(name)
            assert isinstance(inode, Ext2Inode)
            if not inode.is_dir():
                raise SyscallError(errno.ENOTDIR)
            if not dirent.is_empty(inode):
                raise SyscallError(errno.ENOTEMPTY)
            dirent.remove(self, name)
            self._drop(inode, 2)
            self.nlink -= 1
            self.touch()
            self.save()

    def rename(self, oldname: bytes, newdir: Inode, newname: bytes, flags: int = 0) -> None:
        self._dir(write=True)
        if not isinstance(newdir, Ext2Node) or newdir.fs is not self.fs:
            raise SyscallError(errno.EXDEV)
        if flags & RENAME_WHITEOUT:
            raise SyscallError(errno.EINVAL)  # ext2 makes no whiteouts
        with self.sb.lock:
            src = self.lookup(oldname)
            hit = dirent.find(newdir, newname)
            dst = self.fs.iget(hit[0]) if hit else None
            assert isinstance(src, Ext2Node)
            if flags & RENAME_EXCHANGE:
                if dst is None:
                    raise SyscallError(errno.ENOENT)
                self._exchange(oldname, src, newdir, newname, dst)
                return
            if dst is src:
                return
            moves_dir = src.is_dir() and newdir is not self
            if dst is not None:
                check_rename_target(src, dst, flags,
                                    lambda: dirent.is_empty(dst))  # type: ignore[arg-type]
                dirent.retarget(newdir, newname, src.ino, dirent.ftype(src.mode, self.sb))
                if dst.is_dir():
                    newdir.nlink -= 1
                self._drop(dst, 2 if dst.is_dir() else 1)  # type: ignore[arg-type]
            else:
                if moves_dir and newdir.nlink >= LINK_MAX:
                    raise SyscallError(errno.EMLINK)
                dirent.add(newdir, newname, src.ino, dirent.ftype(src.mode, self.sb))
            dirent.remove(self, oldname)
            if moves_dir:
                dirent.retarget(src, b"..", newdir.ino, dirent.ftype(S_IFDIR, self.sb))
                self.nlink -= 1
                newdir.nlink += 1
            src.touch(m=False)
            src.save()
            for d in {self, newdir}:
                d.touch()
                d.save()

    def _exchange(self, oldname: bytes, src: Ext2Node, newdir: Ext2Node, newname: bytes,
                  dst: Inode) -> None:
        assert isinstance(dst, Ext2Node)
        dirent.retarget(self, oldname, dst.ino, dirent.ftype(dst.mode, self.sb))
        dirent.retarget(newdir, newname, src.ino, dirent.ftype(src.mode, self.sb))
        if newdir is not self:
            for moved, parent in ((src, newdir), (dst, self)):
                if moved.is_dir():
                    dirent.retarget(moved, b"..", parent.ino, dirent.ftype(S_IFDIR, self.sb))
            if src.is_dir() != dst.is_dir():
                delta = 1 if src.is_dir() else -1
                self.nlink -= delta
                newdir.nlink += delta
        for node in {src, dst, self, newdir}:
            node.touch(m=node in (self, newdir))
            node.save()
