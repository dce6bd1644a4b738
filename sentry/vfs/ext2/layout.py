"""The ext2 superblock and block-group descriptors.

Everything read from the image is untrusted: a field that would send a
later read outside the device, a zero divisor, or a feature this driver does
not implement makes the mount fail with EINVAL (Linux's ext2_fill_super
answers a bad superblock the same way), never an exception or a loop.
"""

from __future__ import annotations

import errno
import struct
import threading
from typing import Protocol

from sentry.kernel.errors import SyscallError

SUPER_OFFSET = 1024
MAGIC = 0xEF53
ROOT_INO = 2
GOOD_OLD_REV = 0
GOOD_OLD_INODE_SIZE = 128
GOOD_OLD_FIRST_INO = 11

COMPAT_HAS_JOURNAL = 0x4
INCOMPAT_FILETYPE = 0x2
INCOMPAT_RECOVER = 0x4
RO_COMPAT_SPARSE_SUPER = 0x1
RO_COMPAT_LARGE_FILE = 0x2
INCOMPAT_OK = INCOMPAT_FILETYPE
RO_COMPAT_OK = RO_COMPAT_SPARSE_SUPER | RO_COMPAT_LARGE_FILE

_SB = struct.Struct("<13I Hh 4H 4I 2H I H H 3I")
_GD = struct.Struct("<3I 3H")
GD_SIZE = 32


class BlockDevice(Protocol):
    """What the driver needs of a block device: bytes at an offset."""

    def pread(self, count: int, offset: int) -> bytes: ...

    def pwrite(self, data: bytes, offset: int) -> int: ...


def _einval() -> SyscallError:
    return SyscallError(errno.EINVAL)


class Group:
    """One block group's descriptor (the fields this driver uses)."""

    __slots__ = ("block_bitmap", "inode_bitmap", "inode_table", "free_blocks",
                 "free_inodes", "used_dirs", "rest")

    def __init__(self, raw: bytes) -> None:
        (self.block_bitmap, self.inode_bitmap, self.inode_table, self.free_blocks,
         self.free_inodes, self.used_dirs) = _GD.unpack_from(raw)
        self.rest = raw[_GD.size:GD_SIZE]

    def pack(self) -> bytes:
        return _GD.pack(self.block_bitmap, self.inode_bitmap, self.inode_table,
                        self.free_blocks, self.free_inodes, self.used_dirs) + self.rest


class Super:
    """The parsed superblock plus the group table, and the device under it.

    ``lock`` guards the free counts, bitmaps and every on-disk structure:
    one lock per filesystem (the Sentry's ext2 is not a fast path).
    """

    def __init__(self, dev: BlockDevice, dev_size: int) -> None:
        self.dev = dev
        self.lock = threading.RLock()
        raw = dev.pread(1024, SUPER_OFFSET)
        if len(raw) < 1024:
            raise _einval()
        self.raw = bytearray(raw)
        f = _SB.unpack_from(raw)
        (self.inodes_count, self.blocks_count, self.r_blocks, self.free_blocks,
         self.free_inodes, self.first_data_block, log_block, _log_frag,
         self.blocks_per_group, _frags, self.inodes_per_group, _mtime, _wtime) = f[:13]
        magic, self.state = f[15], f[16]
        rev = f[22]
        self.compat, self.incompat, self.ro_compat = f[28], f[29], f[30]
        if magic != MAGIC or log_block > 6:
            raise _einval()
        self.block_size = 1024 << log_block
        if rev == GOOD_OLD_REV:
            self.inode_size, self.first_ino = GOOD_OLD_INODE_SIZE, GOOD_OLD_FIRST_INO
            self.compat = self.incompat = self.ro_compat = 0
        else:
            self.first_ino, self.inode_size = f[25], f[26]
        bs = self.block_size
        if (self.inode_size < GOOD_OLD_INODE_SIZE or self.inode_size > bs
                or self.inode_size & (self.inode_size - 1)):
            raise _einval()
        if not self.blocks_per_group or self.blocks_per_group > 8 * bs:
            raise _einval()
        if not self.inodes_per_group or self.inodes_per_group > 8 * bs:
            raise _einval()
        if self.first_data_block != (1 if bs == 1024 else 0):
            raise _einval()
        if self.blocks_count <= self.first_data_block or self.blocks_count * bs > dev_size:
            raise _einval()
        if self.first_ino < GOOD_OLD_FIRST_INO or self.first_ino > self.inodes_count:
            raise _einval()
        if self.incompat & ~INCOMPAT_OK:
            raise _einval()
        self.ngroups = -(-(self.blocks_count - self.first_data_block) // self.blocks_per_group)
        if self.inodes_count != self.ngroups * self.inodes_per_group:
            raise _einval()
        self.inode_blocks = -(-self.inodes_per_group * self.inode_size // bs)
        self.reserved_gdt = struct.unpack_from("<H", raw, 206)[0] if rev else 0
        self.gdt_block = self.first_data_block + 1
        self.gdt_blocks = -(-self.ngroups * GD_SIZE // bs)
        gdt = dev.pread(self.ngroups * GD_SIZE, self.gdt_block * bs)
        if len(gdt) < self.ngroups * GD_SIZE:
            raise _einval()
        self.groups = [Group(gdt[i * GD_SIZE:(i + 1) * GD_SIZE]) for i in range(self.ngroups)]
        for g in self.groups:
            for blk in (g.block_bitmap, g.inode_bitmap):
                if not self.first_data_block < blk < self.blocks_count:
                    raise _einval()
            if not self.first_data_block < g.inode_table <= \
                    self.blocks_count - self.inode_blocks:
                raise _einval()

    def writable_features(self) -> bool:
        """Whether this driver may write the image (else: read-only mounts only)."""
        return not self.ro_compat & ~RO_COMPAT_OK and not self.incompat & INCOMPAT_RECOVER

    # Raw block I/O.
    def read_block(self, blk: int) -> bytes:
        if not 0 <= blk < self.blocks_count:
            raise SyscallError(errno.EIO)
        data = self.dev.pread(self.block_size, blk * self.block_size)
        if len(data) != self.block_size:
            raise SyscallError(errno.EIO)
        return data

    def write_block(self, blk: int, data: bytes, offset: int = 0) -> None:
        if not 0 <= blk < self.blocks_count or offset + len(data) > self.block_size:
            raise SyscallError(errno.EIO)
        self.dev.pwrite(bytes(data), blk * self.block_size + offset)

    def valid_data_block(self, blk: int) -> bool:
        return self.first_data_block <= blk < self.blocks_count

    # Write-back of the accounting.
    def flush_group(self, idx: int) -> None:
        off = self.gdt_block * self.block_size + idx * GD_SIZE
        self.dev.pwrite(self.groups[idx].pack(), off)

    def flush_super(self) -> None:
        struct.pack_into("<II", self.raw, 12, self.free_blocks, self.free_inodes)
        self.dev.pwrite(bytes(self.raw), SUPER_OFFSET)

    # statfs's figures.
    def has_super(self, group: int) -> bool:
        """Whether a group holds a superblock backup (sparse_super: 0, 1, powers of 3, 5, 7)."""
        if not self.ro_compat & RO_COMPAT_SPARSE_SUPER or group <= 1:
            return True
        for base in (3, 5, 7):
            n = base
            while n < group:
                n *= base
            if n == group:
                return True
        return False

    def overhead(self) -> int:
        """Metadata blocks (Linux's default "bsddf" statfs leaves them out of f_blocks)."""
        total = self.first_data_block
        for i in range(self.ngroups):
            if self.has_super(i):
                total += 1 + self.gdt_blocks + self.reserved_gdt
            total += 2 + self.inode_blocks
        return total
