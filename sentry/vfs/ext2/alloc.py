"""Block and inode allocation from the groups' bitmaps.

Each allocation sets its bit, then the group's and the superblock's free
count, and writes all three back at once (no journal: the order only
matters for a crash, and a sandbox's RAM disk does not survive one).
Callers hold ``Super.lock``.
"""

from __future__ import annotations

import errno

from sentry.kernel.errors import SyscallError
from sentry.vfs.ext2.layout import Super


def _find_zero(bitmap: bytes, limit: int) -> int:
    """The first clear bit below ``limit``, or -1."""
    for i, byte in enumerate(bitmap[:(limit + 7) // 8]):
        if byte != 0xFF:
            for bit in range(8):
                n = i * 8 + bit
                if n >= limit:
                    return -1
                if not byte >> bit & 1:
                    return n
    return -1


def _set(sb: Super, bitmap_blk: int, bit: int, on: bool) -> None:
    raw = bytearray(sb.read_block(bitmap_blk))
    byte, mask = bit // 8, 1 << (bit % 8)
    was = bool(raw[byte] & mask)
    if was == on:
        raise SyscallError(errno.EUCLEAN)  # the bitmap disagrees with the tree
    raw[byte] = raw[byte] | mask if on else raw[byte] & ~mask
    sb.write_block(bitmap_blk, raw[byte:byte + 1], byte)


def _group_blocks(sb: Super, g: int) -> int:
    """How many blocks group ``g`` has (the last one may be short)."""
    return min(sb.blocks_per_group,
               sb.blocks_count - sb.first_data_block - g * sb.blocks_per_group)


def alloc_block(sb: Super, goal_group: int = 0) -> int:
    """A free block, zeroed on disk; ENOSPC when none is left."""
    with sb.lock:
        if sb.free_blocks == 0:
            raise SyscallError(errno.ENOSPC)
        for k in range(sb.ngroups):
            g = (goal_group + k) % sb.ngroups
            grp = sb.groups[g]
            if not grp.free_blocks:
                continue
            bit = _find_zero(sb.read_block(grp.block_bitmap), _group_blocks(sb, g))
            if bit < 0:
                continue
            _set(sb, grp.block_bitmap, bit, True)
            grp.free_blocks -= 1
            sb.free_blocks -= 1
            sb.flush_group(g)
            sb.flush_super()
            blk = sb.first_data_block + g * sb.blocks_per_group + bit
            sb.write_block(blk, bytes(sb.block_size))
            return blk
        raise SyscallError(errno.ENOSPC)


def free_block(sb: Super, blk: int) -> None:
    with sb.lock:
        if not sb.valid_data_block(blk):
            raise SyscallError(errno.EUCLEAN)
        g, bit = divmod(blk - sb.first_data_block, sb.blocks_per_group)
        grp = sb.groups[g]
        _set(sb, grp.block_bitmap, bit, False)
        grp.free_blocks += 1
        sb.free_blocks += 1
        sb.flush_group(g)
        sb.flush_super()


def alloc_inode(sb: Super, is_dir: bool, goal_group: int = 0) -> int:
    """A free inode number (>= the first non-reserved one); ENOSPC when none."""
    with sb.lock:
        if sb.free_inodes == 0:
            raise SyscallError(errno.ENOSPC)
        for k in range(sb.ngroups):
            g = (goal_group + k) % sb.ngroups
            grp = sb.groups[g]
            if not grp.free_inodes:
                continue
            bitmap = bytearray(sb.read_block(grp.inode_bitmap))
            if g == 0:  # reserved inodes never come out, whatever the bitmap says
                for r in range(sb.first_ino - 1):
                    bitmap[r // 8] |= 1 << (r % 8)
            bit = _find_zero(bitmap, sb.inodes_per_group)
            if bit < 0:
                continue
            _set(sb, grp.inode_bitmap, bit, True)
            grp.free_inodes -= 1
            sb.free_inodes -= 1
            if is_dir:
                grp.used_dirs += 1
            sb.flush_group(g)
            sb.flush_super()
            return g * sb.inodes_per_group + bit + 1
        raise SyscallError(errno.ENOSPC)


def free_inode(sb: Super, ino: int, is_dir: bool) -> None:
    with sb.lock:
        g, bit = divmod(ino - 1, sb.inodes_per_group)
        grp = sb.groups[g]
        _set(sb, grp.inode_bitmap, bit, False)
        grp.free_inodes += 1
        sb.free_inodes += 1
        if is_dir and grp.used_dirs:
            grp.used_dirs -= 1
        sb.flush_group(g)
        sb.flush_super()
