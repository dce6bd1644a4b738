"""A file's block map: ext2's 12 direct pointers, then single, double and
triple indirect blocks, and the bytes of the file through it.

A zero pointer is a hole (reads as zeros).  Every pointer read from the image
is checked against the filesystem's data area first: a corrupt map is
EUCLEAN, never a read outside the device.  Callers hold ``Super.lock``.
"""

from __future__ import annotations

import errno
import struct

from sentry.kernel.errors import SyscallError
from sentry.vfs.ext2 import alloc
from sentry.vfs.ext2.layout import Super

NDIR = 12


class BlockMap:
    """The 15 ``i_block`` pointers of one inode and what hangs below them.

    ``allocated`` counts the blocks this map holds (data and indirect), which
    the inode turns into ``i_blocks``.
    """

    def __init__(self, sb: Super, pointers: list[int], allocated: int, group: int) -> None:
        self.sb = sb
        self.ptr = pointers
        self.allocated = allocated
        self.group = group
        self.per = sb.block_size // 4

    def _path(self, lblk: int) -> tuple[int, list[int]]:
        """The root slot and the index at each indirect level for ``lblk``."""
        per = self.per
        if lblk < NDIR:
            return lblk, []
        lblk -= NDIR
        if lblk < per:
            return 12, [lblk]
        lblk -= per
        if lblk < per * per:
            return 13, [lblk // per, lblk % per]
        lblk -= per * per
        if lblk < per ** 3:
            return 14, [lblk // (per * per), lblk // per % per, lblk % per]
        raise SyscallError(errno.EFBIG)

    def _check(self, blk: int) -> int:
        if blk and not self.sb.valid_data_block(blk):
            raise SyscallError(errno.EUCLEAN)
        return blk

    def _entries(self, blk: int) -> list[int]:
        return list(struct.unpack(f"<{self.per}I", self.sb.read_block(blk)))

    def lookup(self, lblk: int) -> int:
        """The physical block of logical block ``lblk`` (0: a hole)."""
        slot, path = self._path(lblk)
        blk = self._check(self.ptr[slot])
        for idx in path:
            if not blk:
                return 0
            raw = self.sb.read_block(blk)
            blk = self._check(struct.unpack_from("<I", raw, idx * 4)[0])
        return blk

    def _new(self) -> int:
        blk = alloc.alloc_block(self.sb, self.group)
        self.allocated += 1
        return blk

    def ensure(self, lblk: int) -> int:
        """The physical block of ``lblk``, allocated (zeroed) if it was a hole."""
        slot, path = self._path(lblk)
        blk = self._check(self.ptr[slot])
        if not blk:
            blk = self.ptr[slot] = self._new()
        for idx in path:
            raw = self.sb.read_block(blk)
            child = self._check(struct.unpack_from("<I", raw, idx * 4)[0])
            if not child:
                child = self._new()
                self.sb.write_block(blk, struct.pack("<I", child), idx * 4)
            blk = child
        return blk

    def blocks_in_use(self, size: int) -> int:
        return -(-size // self.sb.block_size)

    def truncate(self, keep: int) -> None:
        """Free every logical block from ``keep`` on, and indirect blocks left empty."""
        sb = self.sb
        for i in range(keep, NDIR):
            if self.ptr[i]:
                alloc.free_block(sb, self._check(self.ptr[i]))
                self.allocated -= 1
                self.ptr[i] = 0
        base = NDIR
        for slot, level in ((12, 1), (13, 2), (14, 3)):
            span = self.per ** level
            if self.ptr[slot] and base + span > keep:
                if self._trunc(self._check(self.ptr[slot]), level, base, keep):
                    alloc.free_block(sb, self.ptr[slot])
                    self.allocated -= 1
                    self.ptr[slot] = 0
            base += span

    def _trunc(self, blk: int, level: int, base: int, keep: int) -> bool:
        """Free below ``blk`` what lies at or past ``keep``; True when ``blk`` is empty."""
        span = self.per ** (level - 1)
        entries = self._entries(blk)
        changed = False
        for i, child in enumerate(entries):
            start = base + i * span
            if not child or start + span <= keep:
                continue
            self._check(child)
            if level == 1 or self._trunc(child, level - 1, start, keep):
                alloc.free_block(self.sb, child)
                self.allocated -= 1
                entries[i] = 0
                changed = True
        if changed:
            self.sb.write_block(blk, struct.pack(f"<{self.per}I", *entries))
        return not any(entries)

    # File bytes.
    def read(self, offset: int, count: int) -> bytes:
        bs = self.sb.block_size
        out = bytearray()
        pos, end = offset, offset + count
        while pos < end:
            lblk, off = divmod(pos, bs)
            n = min(bs - off, end - pos)
            blk = self.lookup(lblk)
            out += self.sb.read_block(blk)[off:off + n] if blk else bytes(n)
            pos += n
        return bytes(out)

    def write(self, offset: int, data: bytes) -> int:
        """Write ``data`` at ``offset``; a short count when the disk fills
        (ENOSPC when not even one byte fit)."""
        bs = self.sb.block_size
        pos, view = offset, memoryview(data)
        while view:
            lblk, off = divmod(pos, bs)
            n = min(bs - off, len(view))
            try:
                blk = self.ensure(lblk)
            except SyscallError as exc:
                if exc.errno == errno.ENOSPC and pos > offset:
                    break
                raise
            self.sb.write_block(blk, view[:n], off)
            view = view[n:]
            pos += n
        return pos - offset

    def zero_tail(self, size: int) -> None:
        """Clear the last block past ``size`` (so a later extension reads zeros)."""
        bs = self.sb.block_size
        lblk, off = divmod(size, bs)
        if off:
            blk = self.lookup(lblk)
            if blk:
                self.sb.write_block(blk, bytes(bs - off), off)
