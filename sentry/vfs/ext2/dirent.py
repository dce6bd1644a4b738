"""Linear ext2 directories: records of (inode, rec_len, name_len, file_type,
name) that tile each block exactly.

Records are edited in place, as Linux's ext2 does: a new name goes into the
slack of an existing record (or an unused one), else into a new block; a
removed name's space joins the record before it.  A record that breaks the
tiling rules is EUCLEAN (a corrupt directory), never an endless scan.
"""

from __future__ import annotations

import errno
import struct
from collections.abc import Iterator
from typing import Protocol

from sentry.kernel.errors import SyscallError
from sentry.vfs.ext2.layout import INCOMPAT_FILETYPE, Super

_HEAD = struct.Struct("<IHBB")

FT_UNKNOWN, FT_REG, FT_DIR, FT_CHR, FT_BLK, FT_FIFO, FT_SOCK, FT_SYMLINK = range(8)
_FT_OF_FMT = {0o100000: FT_REG, 0o040000: FT_DIR, 0o020000: FT_CHR, 0o060000: FT_BLK,
              0o010000: FT_FIFO, 0o140000: FT_SOCK, 0o120000: FT_SYMLINK}
_DT_OF_FT = {FT_REG: 8, FT_DIR: 4, FT_CHR: 2, FT_BLK: 6, FT_FIFO: 1, FT_SOCK: 12,
             FT_SYMLINK: 10}


class DirFile(Protocol):
    """What a directory inode gives this module: its blocks and its size."""

    sb: Super
    size: int

    def dir_block(self, lblk: int, create: bool = False) -> int: ...

    def grow_dir(self) -> int: ...


def ftype(mode: int, sb: Super) -> int:
    """The record's file_type byte for a file of ``mode`` (0 without the filetype feature)."""
    return _FT_OF_FMT.get(mode & 0o170000, FT_UNKNOWN) if sb.incompat & INCOMPAT_FILETYPE else 0


def dtype(ft: int) -> int:
    return _DT_OF_FT.get(ft, 0)


def rec_size(name_len: int) -> int:
    return (8 + name_len + 3) & ~3


def _records(sb: Super, raw: bytes) -> Iterator[tuple[int, int, int, int, bytes]]:
    """(offset, inode, rec_len, file_type, name) of each record of one block."""
    off, bs = 0, len(raw)
    while off < bs:
        if off + 8 > bs:
            raise SyscallError(errno.EUCLEAN)
        ino, rec_len, name_len, ft = _HEAD.unpack_from(raw, off)
        if not sb.incompat & INCOMPAT_FILETYPE:
            name_len |= ft << 8
            ft = 0
        if rec_len < 8 or rec_len % 4 or off + rec_len > bs or (ino and 8 + name_len > rec_len):
            raise SyscallError(errno.EUCLEAN)
        if ino > sb.inodes_count:
            raise SyscallError(errno.EUCLEAN)
        yield off, ino, rec_len, ft, raw[off + 8:off + 8 + name_len]
        off += rec_len


def _blocks(d: DirFile) -> Iterator[tuple[int, bytes]]:
    sb = d.sb
    if d.size > sb.blocks_count * sb.block_size:
        raise SyscallError(errno.EUCLEAN)  # bigger than the disk: a corrupt inode
    for lblk in range(-(-d.size // sb.block_size)):
        blk = d.dir_block(lblk)
        if not blk:
            raise SyscallError(errno.EUCLEAN)  # ext2 directories have no holes
        yield blk, sb.read_block(blk)


def entries(d: DirFile) -> list[tuple[bytes, int, int]]:
    """(name, inode, file_type) of every live record, "." and ".." included."""
    out = []
    for _blk, raw in _blocks(d):
        for _off, ino, _rl, ft, name in _records(d.sb, raw):
            if ino:
                out.append((name, ino, ft))
    return out


def find(d: DirFile, name: bytes) -> tuple[int, int] | None:
    """(inode, file_type) of ``name``, or None."""
    for _blk, raw in _blocks(d):
        for _off, ino, _rl, ft, nm in _records(d.sb, raw):
            if ino and nm == name:
                return ino, ft
    return None


def _pack(sb: Super, ino: int, rec_len: int, name: bytes, ft: int) -> bytes:
    if sb.incompat & INCOMPAT_FILETYPE:
        head = _HEAD.pack(ino, rec_len, len(name), ft)
    else:
        head = struct.pack("<IHH", ino, rec_len, len(name))
    return head + name + bytes(-len(name) % 4)


def add(d: DirFile, name: bytes, ino: int, ft: int) -> None:
    """Insert a record for ``name`` (the caller has checked it is absent)."""
    sb = d.sb
    need = rec_size(len(name))
    for blk, raw in _blocks(d):
        for off, cur, rec_len, cft, cname in _records(sb, raw):
            used = rec_size(len(cname)) if cur else 0
            if rec_len - used < need:
                continue
            if cur:  # split: the old record keeps what it uses
                sb.write_block(blk, _pack(sb, cur, used, cname, cft), off)
                off, rec_len = off + used, rec_len - used
            sb.write_block(blk, _pack(sb, ino, rec_len, name, ft), off)
            return
    blk = d.grow_dir()
    sb.write_block(blk, _pack(sb, ino, sb.block_size, name, ft))


def remove(d: DirFile, name: bytes) -> None:
    """Drop ``name``'s record: its space joins the previous record of its block."""
    sb = d.sb
    for blk, raw in _blocks(d):
        prev = None
        for off, ino, rec_len, _ft, nm in _records(sb, raw):
            if ino and nm == name:
                if prev is None:
                    sb.write_block(blk, struct.pack("<I", 0), off)
                else:
                    sb.write_block(blk, struct.pack("<H", off + rec_len - prev), prev + 4)
                return
            prev = off
    raise SyscallError(errno.ENOENT)


def retarget(d: DirFile, name: bytes, ino: int, ft: int) -> None:
    """Point the existing record ``name`` at another inode (rename over a name, "..")."""
    sb = d.sb
    for blk, raw in _blocks(d):
        for off, cur, _rl, _ft, nm in _records(sb, raw):
            if cur and nm == name:
                sb.write_block(blk, struct.pack("<I", ino), off)
                if sb.incompat & INCOMPAT_FILETYPE:
                    sb.write_block(blk, bytes([ft]), off + 7)
                return
    raise SyscallError(errno.ENOENT)


def is_empty(d: DirFile) -> bool:
    return all(name in (b".", b"..") for name, _ino, _ft in entries(d))


def first_block(sb: Super, self_ino: int, parent_ino: int) -> bytes:
    """A new directory's block: "." and ".." only."""
    dot = _pack(sb, self_ino, 12, b".", FT_DIR if ftype(0o040000, sb) else 0)
    dotdot = _pack(sb, parent_ino, sb.block_size - 12, b"..",
                   FT_DIR if ftype(0o040000, sb) else 0)
    return dot + dotdot + bytes(sb.block_size - len(dot) - len(dotdot))
