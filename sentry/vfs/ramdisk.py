"""/dev/ram0: a memory-backed block device, as Linux's brd driver gives.

Why a block device in a sandbox: test suites and tools insist on acquiring
one before they run (the LTP's filesystem tests take it from LTP_DEV and
then, told to test tmpfs only, never write it; mkfs and dd run on it). It
holds bytes only, and never reaches a host device; an ext2 image made on it
mounts (the Sentry's own ext2, syscalls/mount_disk.py).

No node is made by default (Linux makes /dev/ram* only with the brd
module loaded): root in the sandbox makes one with ``mknod /dev/ram0 b 1 0``.

The device is sparse: it reports RAMDISK_BYTES but keeps only the pages
written, so an idle one costs nothing; a sandbox's memory limit bounds
what a program can write to it like any other Sentry memory.

The disk keeps the two settings Linux keeps per block device rather than
per open file (block/ioctl.c), since programs set them on one descriptor
and read them on another: the read-only flag (BLKROSET, CAP_SYS_ADMIN or
EACCES; writes through the node are then EPERM and a read-write mount
EACCES) and the read-ahead window (sentry/vfs/blkdev.py).
"""

from __future__ import annotations

import errno
import os
import struct
import threading

from sentry.kernel.errors import SyscallError
from sentry.vfs.blkdev import RA_PAGES, readahead_ioctl, require_admin
from sentry.vfs.description import InodeFile, seek_position
from sentry.vfs.inode import DEVICES, DeviceRegistry, Inode

RAMDISK_MAJOR = 1
RAMDISK_BYTES = 1 << 30  # the largest device the LTP asks for (fallocate06: 1 GiB)
SECTOR = 512
PAGE = 4096
BLKROSET, BLKROGET = 0x125D, 0x125E
BLKGETSIZE = 0x1260
BLKFLSBUF = 0x1261
BLKSSZGET = 0x1268
BLKBSZGET = 0x80081270
BLKGETSIZE64 = 0x80081272
BLKPBSZGET = 0x127B
BLKDISCARD = 0x1277


class RamDisk:
    """The device's bytes: written pages only."""

    def __init__(self, size: int = RAMDISK_BYTES) -> None:
        self.size = size
        self.pages: dict[int, bytearray] = {}
        self.lock = threading.Lock()
        self.readonly = False  # BLKROSET
        self.ra_pages = RA_PAGES  # BLKRASET

    def read(self, offset: int, count: int) -> bytes:
        count = max(0, min(count, self.size - offset))
        out = bytearray(count)
        with self.lock:
            pos = 0
            while pos < count:
                page, off = divmod(offset + pos, PAGE)
                n = min(PAGE - off, count - pos)
                data = self.pages.get(page)
                if data is not None:
                    out[pos:pos + n] = data[off:off + n]
                pos += n
        return bytes(out)

    def write(self, offset: int, data: bytes) -> int:
        if offset >= self.size:
            raise SyscallError(errno.ENOSPC)
        data = data[:self.size - offset]
        with self.lock:
            pos = 0
            while pos < len(data):
                page, off = divmod(offset + pos, PAGE)
                n = min(PAGE - off, len(data) - pos)
                buf = self.pages.get(page)
                if buf is None:
                    buf = self.pages[page] = bytearray(PAGE)
                buf[off:off + n] = data[pos:pos + n]
                pos += n
        return len(data)

    def discard(self, start: int, length: int) -> None:
        with self.lock:
            first, last = -(-start // PAGE), (start + length) // PAGE
            for page in range(first, last):
                self.pages.pop(page, None)


class RamDiskFile(InodeFile):
    """An open /dev/ramN: a seekable byte range with the block ioctls."""

    def __init__(self, inode: Inode, flags: int, disk: RamDisk) -> None:
        super().__init__(inode, flags)
        self.disk = disk
        self.offset = 0
        self._lock = threading.Lock()

    def device_bytes(self) -> int:
        """The device's size (what a filesystem mounted from it may use)."""
        return self.disk.size

    def device_readonly(self) -> bool:
        """BLKROSET's flag: a read-write mount of the device is EACCES."""
        return self.disk.readonly

    def read(self, count: int) -> bytes:
        with self._lock:
            data = self.disk.read(self.offset, count)
            self.offset += len(data)
            return data

    def _check_writable(self) -> None:
        if self.disk.readonly:
            raise SyscallError(errno.EPERM)  # Linux's blkdev_write_iter

    def write(self, data: bytes) -> int:
        self._check_writable()
        with self._lock:
            n = self.disk.write(self.offset, data)
            self.offset += n
            return n

    def pread(self, count: int, offset: int) -> bytes:
        if offset < 0:
            raise SyscallError(errno.EINVAL)
        return self.disk.read(offset, count)

    def pwrite(self, data: bytes, offset: int) -> int:
        if offset < 0:
            raise SyscallError(errno.EINVAL)
        self._check_writable()
        return self.disk.write(offset, data)

    def seek(self, offset: int, whence: int) -> int:
        with self._lock:
            self.offset = seek_position(self.offset, self.disk.size, offset, whence)
            return self.offset

    def ioctl(self, cmd: int, arg: int, task: object) -> int:
        mm = task.mm  # type: ignore[attr-defined]
        if cmd == BLKGETSIZE64:
            mm.copy_out(arg, struct.pack("<Q", self.disk.size))
        elif cmd == BLKGETSIZE:
            mm.copy_out(arg, struct.pack("<Q", self.disk.size // SECTOR))
        elif cmd in (BLKSSZGET, BLKPBSZGET):
            mm.copy_out(arg, struct.pack("<I", SECTOR))
        elif cmd == BLKBSZGET:
            mm.copy_out(arg, struct.pack("<I", PAGE))
        elif cmd == BLKROGET:
            mm.copy_out(arg, struct.pack("<i", int(self.disk.readonly)))
        elif cmd == BLKROSET:
            require_admin(task)
            self.disk.readonly = bool(struct.unpack("<i", mm.copy_in(arg, 4))[0])
        elif readahead_ioctl(self.disk, cmd, arg, task):
            pass
        elif cmd == BLKFLSBUF:
            pass
        elif cmd == BLKDISCARD:
            start, length = struct.unpack("<QQ", mm.copy_in(arg, 16))
            if start % SECTOR or length % SECTOR or start + length > self.disk.size:
                raise SyscallError(errno.EINVAL)
            self.disk.discard(start, length)
        else:
            raise SyscallError(errno.ENOTTY)
        return 0


_DISKS: dict[int, RamDisk] = {}
_DISKS_LOCK = threading.Lock()


def _disk(minor: int) -> RamDisk:
    with _DISKS_LOCK:
        disk = _DISKS.get(minor)
        if disk is None:
            disk = _DISKS[minor] = RamDisk()
        return disk


def register_ramdisks(registry: DeviceRegistry = DEVICES, count: int = 1) -> None:
    """Block devices 1:0 .. 1:count-1. Each disk is made when first opened
    (a sandbox that never opens one pays nothing) and is the same disk
    whichever filesystem holds the node."""
    for minor in range(count):
        registry.register_block(
            RAMDISK_MAJOR, minor,
            lambda inode, flags, minor=minor: RamDiskFile(inode, flags, _disk(minor)))


register_ramdisks()


def ramdisk_rdev(minor: int = 0) -> int:
    return os.makedev(RAMDISK_MAJOR, minor)
