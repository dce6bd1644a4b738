"""ext2 inodes as Sentry inodes: attributes, file bytes, symlinks, devices.

Each on-disk inode is read once into an :class:`Ext2Inode` (the filesystem
keeps one object per inode number, so hard links are the same object) and
written back whole after every change: the image is always current, which
is what a later umount, a remount or a reader of the device expects.
Unknown bytes of the on-disk slot (the extra fields of 256-byte inodes) are
kept as they were.  Timestamps have ext2's one-second granularity.

Directory operations live in :mod:`sentry.vfs.ext2.dirops`; this class
gives them the blocks (``dir_block``, ``grow_dir``).
"""

from __future__ import annotations

import errno
import os
import struct
from typing import TYPE_CHECKING

from sentry.kernel.errors import SyscallError
from sentry.vfs.ext2 import alloc
from sentry.vfs.ext2.blockmap import BlockMap
from sentry.vfs.ext2.layout import Super
from sentry.vfs.file import Stat
from sentry.vfs.inode import S_IFBLK, S_IFCHR, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG, Inode, now_ns

if TYPE_CHECKING:
    from sentry.vfs.ext2.fs import Ext2Fs

# mode uid size atime ctime mtime dtime gid links blocks flags osd1 block[15]
# generation file_acl size_high faddr frag fsize pad uid_high gid_high reserved
_RAW = struct.Struct("<HHIIIIIHHIII15IIIIIBBHHHI")
LINK_MAX = 32000
FAST_LINK_MAX = 60
_S = 1_000_000_000


def _secs(ns: int) -> int:
    return (ns // _S) & 0xFFFFFFFF


def _ns(secs: int) -> int:
    return (secs - (1 << 32) if secs >= 1 << 31 else secs) * _S


def decode_rdev(b0: int, b1: int) -> int:
    if b0:
        return os.makedev((b0 >> 8) & 0xFF, b0 & 0xFF)
    return os.makedev((b1 & 0xFFF00) >> 8, (b1 & 0xFF) | ((b1 >> 12) & 0xFFF00))


def encode_rdev(rdev: int) -> tuple[int, int]:
    major, minor = os.major(rdev), os.minor(rdev)
    if major < 256 and minor < 256:
        return (major << 8) | minor, 0
    return 0, (minor & 0xFF) | (major << 8) | ((minor & ~0xFF) << 12)


class Ext2Inode(Inode):
    """One ext2 inode of any kind."""

    fs: Ext2Fs
    no_fallocate = True  # Linux's ext2 has no fallocate: EOPNOTSUPP

    def __init__(self, fs: Ext2Fs, ino: int, raw: bytes | None = None) -> None:
        # Inode.__init__ would allocate a number and stamp times: not wanted here.
        self.fs = fs
        self.sb: Super = fs.sb
        self.ino = ino
        self._pipe = None
        self.raw = bytearray(raw if raw is not None else bytes(self.sb.inode_size))
        f = _RAW.unpack_from(self.raw)
        self.mode = f[0]
        self.uid = f[1] | f[34] << 16
        self.size = f[2] | (f[29] << 32 if f[0] & S_IFMT == S_IFREG else 0)
        self.atime_ns, self.ctime_ns, self.mtime_ns = _ns(f[3]), _ns(f[4]), _ns(f[5])
        self.gid = f[7] | f[35] << 16
        self.nlink = f[8]
        self.i_flags = f[10]
        self.file_acl = f[28]
        blocks = list(f[12:27])
        self.rdev = decode_rdev(blocks[0], blocks[1]) if self.is_device() else 0
        per_block = self.sb.block_size // 512
        acl = 1 if self.file_acl else 0
        self.map = BlockMap(self.sb, blocks, max(0, f[9] // per_block - acl),
                            (ino - 1) // self.sb.inodes_per_group)

    def is_device(self) -> bool:
        return self.mode & S_IFMT in (S_IFCHR, S_IFBLK)

    def has_blocks(self) -> bool:
        """Whether i_block holds block pointers (not a fast symlink's text, a device number)."""
        fmt = self.mode & S_IFMT
        if fmt in (S_IFREG, S_IFDIR):
            return True
        return fmt == S_IFLNK and not self.fast_symlink()

    def fast_symlink(self) -> bool:
        return self.mode & S_IFMT == S_IFLNK and self.map.allocated == 0

    def _slot(self) -> int:
        g, idx = divmod(self.ino - 1, self.sb.inodes_per_group)
        return self.sb.groups[g].inode_table * self.sb.block_size + idx * self.sb.inode_size

    @staticmethod
    def read_raw(sb: Super, ino: int) -> bytes:
        if not 1 <= ino <= sb.inodes_count:
            raise SyscallError(errno.EUCLEAN)
        g, idx = divmod(ino - 1, sb.inodes_per_group)
        off = sb.groups[g].inode_table * sb.block_size + idx * sb.inode_size
        raw = sb.dev.pread(sb.inode_size, off)
        if len(raw) != sb.inode_size:
            raise SyscallError(errno.EIO)
        return raw

    def save(self, dtime: int = 0) -> None:
        """Write the inode's slot back (``dtime``: the deletion time, for a freed inode)."""
        blocks = self.map.ptr
        if self.is_device():
            blocks = [*encode_rdev(self.rdev), *([0] * 13)]
        per_block = self.sb.block_size // 512
        i_blocks = (self.map.allocated + (1 if self.file_acl else 0)) * per_block
        if self.fast_symlink():
            i_blocks = per_block if self.file_acl else 0
        f = list(_RAW.unpack_from(self.raw))
        f[0], f[1], f[34] = self.mode, self.uid & 0xFFFF, (self.uid >> 16) & 0xFFFF
        f[2] = self.size & 0xFFFFFFFF
        if self.mode & S_IFMT == S_IFREG:
            f[29] = self.size >> 32
        f[3], f[4], f[5] = _secs(self.atime_ns), _secs(self.ctime_ns), _secs(self.mtime_ns)
        f[6] = dtime
        f[7], f[35] = self.gid & 0xFFFF, (self.gid >> 16) & 0xFFFF
        f[8], f[9], f[10] = self.nlink, i_blocks, self.i_flags
        if self.has_blocks() or self.is_device():
            f[12:27] = blocks
        _RAW.pack_into(self.raw, 0, *f)
        self.sb.dev.pwrite(bytes(self.raw), self._slot())

    def touch(self, *, m: bool = True, c: bool = True) -> None:
        t = now_ns() // _S * _S
        if m:
            self.mtime_ns = t
        if c:
            self.ctime_ns = t

    def stat(self) -> Stat:
        st = super().stat()
        per_block = self.sb.block_size // 512
        st.blocks = 0 if self.fast_symlink() else self.map.allocated * per_block
        if self.file_acl:
            st.blocks += per_block
        st.blksize = self.sb.block_size
        return st

    def touch_atime(self, now: int) -> None:
        """A read moved atime (sentry/vfs/atime.py): kept in whole seconds, on disk."""
        t = now // _S * _S
        if t != self.atime_ns:
            with self.sb.lock:
                self.atime_ns = t
                self.save()

    # Attributes.
    def _writable(self) -> None:
        if self.fs.readonly:
            raise SyscallError(errno.EROFS)

    def setattr(self, *, mode: int | None = None, uid: int | None = None,
                gid: int | None = None, size: int | None = None,
                atime_ns: int | None = None, mtime_ns: int | None = None) -> None:
        with self.sb.lock:
            super().setattr(mode=mode, uid=uid, gid=gid, size=size,
                            atime_ns=None if atime_ns is None else atime_ns // _S * _S,
                            mtime_ns=None if mtime_ns is None else mtime_ns // _S * _S)
            self.ctime_ns = self.ctime_ns // _S * _S
            self.save()

    # File bytes.
    def read_at(self, offset: int, count: int) -> bytes:
        with self.sb.lock:
            end = min(self.size, offset + count)
            if offset >= end:
                return b""
            return self.map.read(offset, end - offset)

    def write_at(self, offset: int, data: bytes) -> int:
        if not data:
            return 0
        with self.sb.lock:
            self._writable()
            if offset > self.size:
                self.map.zero_tail(self.size)
            n = 0
            try:
                n = self.map.write(offset, data)
            finally:  # blocks may have been allocated even when the write failed
                if n:
                    self.size = max(self.size, offset + n)
                    self.touch()
                self.save()
            return n

    def truncate(self, size: int) -> None:
        if size < 0:
            raise SyscallError(errno.EINVAL)
        with self.sb.lock:
            self._writable()
            if size < self.size:
                self.map.truncate(-(-size // self.sb.block_size))
                self.map.zero_tail(size)
            elif size > self.size:
                self.map.zero_tail(self.size)
            if size != self.size:
                self.size = size
                self.touch()
            self.save()

    def seek_data(self, offset: int, hole: bool) -> int:
        with self.sb.lock:
            if offset >= self.size:
                raise SyscallError(errno.ENXIO)
            bs = self.sb.block_size
            lblk = offset // bs
            last = -(-self.size // bs)
            while lblk < last and bool(self.map.lookup(lblk)) == hole:
                lblk += 1
            if lblk >= last:
                if hole:
                    return self.size
                raise SyscallError(errno.ENXIO)
            return max(offset, lblk * bs)

    # Symlinks.
    def readlink(self) -> bytes:
        if not self.is_symlink():
            raise SyscallError(errno.EINVAL)
        with self.sb.lock:
            if self.fast_symlink():
                return bytes(self.raw[40:40 + min(self.size, FAST_LINK_MAX)])
            return self.map.read(0, self.size)

    def set_target(self, target: bytes) -> None:
        """A new symlink's body: in the inode below 60 bytes, else one block."""
        self.size = len(target)
        if len(target) < FAST_LINK_MAX:
            self.raw[40:100] = target + bytes(FAST_LINK_MAX - len(target))
            self.map.ptr = list(struct.unpack_from("<15I", self.raw, 40))
            self.map.allocated = 0
            return
        if len(target) > self.sb.block_size - 1:
            raise SyscallError(errno.ENAMETOOLONG)
        self.map.write(0, target)

    # Directory helpers for dirent (blocks of a directory).
    def dir_block(self, lblk: int, create: bool = False) -> int:
        return self.map.ensure(lblk) if create else self.map.lookup(lblk)

    def grow_dir(self) -> int:
        lblk = -(-self.size // self.sb.block_size)
        blk = self.map.ensure(lblk)
        self.size = (lblk + 1) * self.sb.block_size
        self.save()
        return blk

    # Lifetime.
    def evict(self) -> None:
        """The last link is gone: free the blocks and the inode (see fs.py on open files)."""
        if self.has_blocks():
            self.map.truncate(0)
        if self.file_acl and self.sb.valid_data_block(self.file_acl):
            alloc.free_block(self.sb, self.file_acl)
            self.file_acl = 0
            struct.pack_into("<I", self.raw, 104, 0)
        self.nlink = 0
        self.save(dtime=_secs(now_ns()))
        alloc.free_inode(self.sb, self.ino, self.is_dir())
        self.fs.forget(self.ino)
