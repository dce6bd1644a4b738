"""/sys/block in the Sentry's sysfs: the sandbox's own block devices.

Why: losetup, mkfs and test suites read a device's attributes from sysfs
(/sys/block/loopN/loop/backing_file, .../size, .../ro, .../queue/
logical_block_size).  The devices are the Sentry's (the RAM disk, loop
devices), so the files are computed from them at each read, never taken
from the host.  Entries: ``ram0`` and one ``loopN`` per loop device made.
A loop device's ``loop/`` directory is always there (Linux removes it while
the device is unbound; its files then read as an unbound device's).
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable

from sentry.kernel.errors import SyscallError
from sentry.vfs import loop, ramdisk
from sentry.vfs.inode import S_IFDIR, S_IFREG, Filesystem, Inode, dtype_of

Content = Callable[[], bytes]


class AttrFile(Inode):
    """A read-only attribute file whose bytes are computed at each read
    (size 4096, as sysfs reports for every attribute)."""

    def __init__(self, fs: Filesystem, content: Content) -> None:
        super().__init__(fs, S_IFREG | 0o444)
        self.content = content
        self.size = 4096

    def read_at(self, offset: int, count: int) -> bytes:
        return self.content()[offset:offset + count]

    def write_at(self, offset: int, data: bytes) -> int:
        raise SyscallError(errno.EACCES)


class AttrDir(Inode):
    """A directory of named children, made on first lookup and kept (stable inodes)."""

    def __init__(self, fs: Filesystem, names: Callable[[], list[bytes]],
                 make: Callable[[bytes], Inode | None]) -> None:
        super().__init__(fs, S_IFDIR | 0o555)
        self._names = names
        self._make = make
        self._made: dict[bytes, Inode] = {}

    def lookup(self, name: bytes) -> Inode:
        if name not in self._names():
            raise SyscallError(errno.ENOENT)
        node = self._made.get(name)
        if node is None:
            node = self._make(name)
            if node is None:
                raise SyscallError(errno.ENOENT)
            self._made[name] = node
        return node

    def iterdir(self) -> list[tuple[bytes, int, int]]:
        out = []
        for name in self._names():
            try:
                node = self.lookup(name)
            except SyscallError:
                continue
            out.append((name, node.ino, dtype_of(node.mode)))
        return out


def _static(fs: Filesystem, files: dict[bytes, Content | dict]) -> AttrDir:
    """A directory tree from a dict: a callable is a file, a dict a subdirectory."""
    def make(name: bytes) -> Inode:
        item = files[name]
        return _static(fs, item) if isinstance(item, dict) else AttrFile(fs, item)
    return AttrDir(fs, lambda: list(files), make)


def _line(value: object) -> bytes:
    return b"%s\n" % (value if isinstance(value, bytes) else str(value).encode())


def _queue(block: Callable[[], int]) -> dict[bytes, Content]:
    return {
        b"logical_block_size": lambda: _line(block()),
        b"physical_block_size": lambda: _line(block()),
        b"hw_sector_size": lambda: _line(block()),
        b"minimum_io_size": lambda: _line(block()),
        b"optimal_io_size": lambda: _line(0),
        b"dma_alignment": lambda: _line(511),
        b"rotational": lambda: _line(0),
        b"read_ahead_kb": lambda: _line(128),
        b"max_sectors_kb": lambda: _line(1280),
    }


def _loop_dir(fs: Filesystem, index: int) -> AttrDir | None:
    dev = loop.LOOPS.get(index)
    if dev is None:
        return None

    def bound_flag(flag: int) -> Content:
        return lambda: _line(int(dev.bound and bool(dev.flags & flag)))

    return _static(fs, {
        b"dev": lambda: _line(f"{loop.LOOP_MAJOR}:{index}"),
        b"size": lambda: _line(dev.size // loop.SECTOR),
        b"ro": lambda: _line(int(dev.bound and dev.readonly())),
        b"removable": lambda: _line(0),
        b"queue": _queue(lambda: dev.block_size),
        b"loop": {
            b"backing_file": lambda: _line(dev.backing_path() if dev.bound else b""),
            b"offset": lambda: _line(dev.offset),
            b"sizelimit": lambda: _line(dev.sizelimit),
            b"autoclear": bound_flag(loop.LO_FLAGS_AUTOCLEAR),
            b"partscan": bound_flag(loop.LO_FLAGS_PARTSCAN),
            b"dio": bound_flag(loop.LO_FLAGS_DIRECT_IO),
        },
    })


def _ram_dir(fs: Filesystem) -> AttrDir:
    return _static(fs, {
        b"dev": lambda: _line(f"{ramdisk.RAMDISK_MAJOR}:0"),
        b"size": lambda: _line(ramdisk.RAMDISK_BYTES // ramdisk.SECTOR),
        b"ro": lambda: _line(0),
        b"removable": lambda: _line(0),
        b"queue": _queue(lambda: ramdisk.SECTOR),
    })


def block_dir(fs: Filesystem) -> AttrDir:
    """/sys/block: ram0 and the loop devices that exist now."""
    def names() -> list[bytes]:
        with loop.LOOPS.lock:
            indices = sorted(loop.LOOPS.devices)
        return [b"ram0"] + [b"loop%d" % i for i in indices]

    def make(name: bytes) -> Inode | None:
        if name == b"ram0":
            return _ram_dir(fs)
        return _loop_dir(fs, int(name[4:]))
    return AttrDir(fs, names, make)


def dio_align(rdev: int) -> tuple[int, int] | None:
    """statx's (dio_mem_align, dio_offset_align) for a Sentry block device:
    the DMA alignment plus one and the logical block size, as Linux's
    bdev_statx; None for a number no Sentry driver serves."""
    major, minor = os.major(rdev), os.minor(rdev)
    if (major, minor) == (ramdisk.RAMDISK_MAJOR, 0):
        return 512, ramdisk.SECTOR
    if major == loop.LOOP_MAJOR:
        dev = loop.LOOPS.get(minor)
        if dev is not None:
            return 512, dev.block_size
    return None
