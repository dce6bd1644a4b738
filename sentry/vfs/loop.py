"""Loop devices: /dev/loop-control and /dev/loopN over a sandbox file.

Why: tools and test suites make a block device out of a file (losetup,
mkfs on an image, the LTP's tst_acquire_loop_device) and mount it.  Here
the device's bytes are the backing description's (a tmpfs or Gofer file the
application opened): a loop device never reaches a host block device.

Linux's behaviour kept (drivers/block/loop.c): LOOP_CTL_GET_FREE gives the
first unbound device (making one), LOOP_CTL_ADD/REMOVE (EEXIST, EBUSY,
ENODEV); the device's size is the file's from lo_offset, capped by
lo_sizelimit, in whole sectors, fixed until LOOP_SET_CAPACITY or a status
change; LOOP_SET_STATUS sets only AUTOCLEAR and PARTSCAN and clears only
AUTOCLEAR; LOOP_CLR_FD on a device others hold open only marks it
autoclear (it goes at the last close); an unbound device answers the status
calls with ENXIO; a read-only device refuses writes with EPERM.  No
partitions are scanned (PARTSCAN is recorded and shown only).  Device
nodes appear in every devtmpfs as a device is made, as devtmpfs does.
"""

from __future__ import annotations

import errno
import os
import struct
import threading
import weakref
from typing import Any

from sentry.kernel.errors import SyscallError
from sentry.vfs.blkdev import RA_PAGES
from sentry.vfs.description import InodeFile, dentry_of, seek_position
from sentry.vfs.file import FileDescription
from sentry.vfs.inode import DEVICES, S_IFBLK, S_IFCHR, S_IFMT, S_IFREG, DeviceRegistry, Inode
from sentry.vfs.mount import path_of

LOOP_MAJOR = 7
MISC_MAJOR, LOOP_CTRL_MINOR = 10, 237
SECTOR = 512
PAGE = 4096
MAX_LOOPS = 256

LOOP_SET_FD, LOOP_CLR_FD, LOOP_SET_STATUS, LOOP_GET_STATUS = 0x4C00, 0x4C01, 0x4C02, 0x4C03
LOOP_SET_STATUS64, LOOP_GET_STATUS64, LOOP_CHANGE_FD = 0x4C04, 0x4C05, 0x4C06
LOOP_SET_CAPACITY, LOOP_SET_DIRECT_IO, LOOP_SET_BLOCK_SIZE = 0x4C07, 0x4C08, 0x4C09
LOOP_CONFIGURE = 0x4C0A
LOOP_CTL_ADD, LOOP_CTL_REMOVE, LOOP_CTL_GET_FREE = 0x4C80, 0x4C81, 0x4C82
LO_FLAGS_READ_ONLY, LO_FLAGS_AUTOCLEAR, LO_FLAGS_PARTSCAN, LO_FLAGS_DIRECT_IO = 1, 4, 8, 16
SET_STATUS_SETTABLE = LO_FLAGS_AUTOCLEAR | LO_FLAGS_PARTSCAN
SET_STATUS_CLEARABLE = LO_FLAGS_AUTOCLEAR
CONFIGURE_SETTABLE = (LO_FLAGS_READ_ONLY | LO_FLAGS_AUTOCLEAR | LO_FLAGS_PARTSCAN
                      | LO_FLAGS_DIRECT_IO)

BLKROSET, BLKROGET, BLKGETSIZE, BLKFLSBUF = 0x125D, 0x125E, 0x1260, 0x1261
BLKSSZGET, BLKPBSZGET, BLKIOMIN, BLKIOOPT = 0x1268, 0x127B, 0x1278, 0x1279
BLKBSZGET, BLKGETSIZE64 = 0x80081270, 0x80081272

# struct loop_info64 and the old struct loop_info (x86-64 layout).
INFO64 = struct.Struct("<QQQQQIIII64s64s32sQQ")
INFO = struct.Struct("<i4xQQQiiii64s32sQQ4s4x")
CONFIG_HEAD = struct.Struct("<II")
CONFIG_SIZE = CONFIG_HEAD.size + INFO64.size + 64


class LoopDevice:
    """One /dev/loopN: what it is bound to, and its status fields."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.lock = threading.RLock()
        self.backing: FileDescription | None = None
        self.offset = 0
        self.sizelimit = 0
        self.flags = 0
        self.file_name = b""
        self.crypt_name = b""
        self.block_size = SECTOR
        self.size = 0
        self.opens = 0
        self.ro_set = False  # BLKROSET
        self.ra_pages = RA_PAGES  # BLKRASET (sentry/vfs/blkdev.py)
        # LOOP_CLR_FD by the last opener: status calls say ENXIO, binding says
        # EBUSY and I/O fails with EIO until that opener closes (Linux 6's rundown).
        self.rundown = False

    @property
    def bound(self) -> bool:
        return self.backing is not None and not self.rundown

    @property
    def free(self) -> bool:
        return self.backing is None

    def readonly(self) -> bool:
        return bool(self.flags & LO_FLAGS_READ_ONLY) or self.ro_set

    def backing_size(self) -> int:
        assert self.backing is not None
        return self.backing.stat().size

    def recompute(self) -> None:
        """The size from the backing file, lo_offset and lo_sizelimit (whole sectors)."""
        size = max(0, self.backing_size() - self.offset)
        if self.sizelimit and self.sizelimit < size:
            size = self.sizelimit
        self.size = size // SECTOR * SECTOR

    def backing_path(self) -> bytes:
        d = dentry_of(self.backing) if self.backing is not None else None
        return path_of(d) if d is not None else b""

    def bind(self, desc: FileDescription, flags: int, writable_open: bool) -> None:
        fmt = desc.stat().mode & S_IFMT
        if fmt not in (S_IFREG, S_IFBLK):
            raise SyscallError(errno.EINVAL)
        if not self.free:
            raise SyscallError(errno.EBUSY)
        if not desc.writable() or not writable_open:
            flags |= LO_FLAGS_READ_ONLY
        desc.refs += 1  # the device holds the file as an fd would
        self.backing, self.flags = desc, flags
        self.recompute()

    def unbind(self) -> None:
        desc, self.backing = self.backing, None
        self.offset = self.sizelimit = self.flags = self.size = 0
        self.file_name = self.crypt_name = b""
        self.block_size = SECTOR
        self.ro_set = self.rundown = False
        if desc is not None:
            desc.refs -= 1
            if desc.refs == 0:
                desc.release()

    # Bytes.
    def read(self, offset: int, count: int) -> bytes:
        with self.lock:
            if self.rundown:
                raise SyscallError(errno.EIO)
            if not self.bound or offset >= self.size:
                return b""
            count = min(count, self.size - offset)
            assert self.backing is not None
            data = self.backing.pread(count, self.offset + offset)
        return data + bytes(count - len(data))

    def write(self, offset: int, data: bytes) -> int:
        with self.lock:
            if self.rundown:
                raise SyscallError(errno.EIO)
            if not self.bound:
                raise SyscallError(errno.ENXIO)
            if self.readonly():
                raise SyscallError(errno.EPERM)
            if offset >= self.size:
                raise SyscallError(errno.ENOSPC)
            data = data[:self.size - offset]
            assert self.backing is not None
            return self.backing.pwrite(data, self.offset + offset)


class Registry:
    """The sandbox's loop devices and the devtmpfs instances that show them."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.devices: dict[int, LoopDevice] = {}
        self.devfs: weakref.WeakSet[Any] = weakref.WeakSet()

    def add(self, index: int) -> LoopDevice:
        with self.lock:
            if index in self.devices:
                raise SyscallError(errno.EEXIST)
            if not 0 <= index < MAX_LOOPS:
                raise SyscallError(errno.EINVAL)
            dev = self.devices[index] = LoopDevice(index)
            views = list(self.devfs)
        for fs in views:
            add_node(fs, index)
        return dev

    def get_free(self) -> int:
        with self.lock:
            for index in sorted(self.devices):
                if self.devices[index].free:
                    return index
            index = next(i for i in range(MAX_LOOPS + 1) if i not in self.devices)
        if index >= MAX_LOOPS:
            raise SyscallError(errno.ENOSPC)
        return self.add(index).index

    def remove(self, index: int) -> None:
        with self.lock:
            dev = self.devices.get(index)
            if dev is None:
                raise SyscallError(errno.ENODEV)
            if not dev.free or dev.opens:
                raise SyscallError(errno.EBUSY)
            del self.devices[index]
            views = list(self.devfs)
        for fs in views:
            try:
                fs.root.unlink(b"loop%d" % index)
            except SyscallError:
                pass

    def get(self, index: int) -> LoopDevice | None:
        with self.lock:
            return self.devices.get(index)


LOOPS = Registry()


def add_node(fs: Any, index: int) -> None:
    """/dev/loopN in one devtmpfs (mode 0660, group disk as udev makes it)."""
    try:
        fs.root.mknod(b"loop%d" % index, S_IFBLK | 0o660, os.makedev(LOOP_MAJOR, index), 0, 6)
    except SyscallError:
        pass  # already there (made by hand)


def show_in(fs: Any) -> None:
    """Give a devtmpfs /dev/loop-control and the nodes of the devices made so far."""
    fs.root.mknod(b"loop-control", S_IFCHR | 0o660, os.makedev(MISC_MAJOR, LOOP_CTRL_MINOR),
                  0, 6)
    with LOOPS.lock:
        LOOPS.devfs.add(fs)
        indices = sorted(LOOPS.devices)
    for index in indices:
        add_node(fs, index)


class LoopControl(InodeFile):
    """/dev/loop-control."""

    def ioctl(self, cmd: int, arg: int, task: object) -> int:
        index = arg & 0xFFFFFFFF
        if index >= 1 << 31:
            index = -1
        if cmd == LOOP_CTL_GET_FREE:
            return LOOPS.get_free()
        if cmd == LOOP_CTL_ADD:
            if index < 0:
                return LOOPS.get_free()
            return LOOPS.add(index).index
        if cmd == LOOP_CTL_REMOVE:
            if index < 0:
                raise SyscallError(errno.EINVAL)
            LOOPS.remove(index)
            return 0
        raise SyscallError(errno.ENOTTY)


class LoopFile(InodeFile):
    """An open /dev/loopN: a seekable byte range over the backing file, and
    the loop and block ioctls (sentry/vfs/loop_ioctl.py)."""

    def __init__(self, inode: Inode, flags: int, dev: LoopDevice) -> None:
        super().__init__(inode, flags)
        self.dev = dev
        self.pos = 0
        self._lock = threading.Lock()
        with dev.lock:
            dev.opens += 1

    def device_bytes(self) -> int:
        return self.dev.size

    def device_readonly(self) -> bool:
        """LO_FLAGS_READ_ONLY or BLKROSET: a read-write mount is EACCES."""
        return self.dev.readonly()

    def read(self, count: int) -> bytes:
        with self._lock:
            data = self.dev.read(self.pos, count)
            self.pos += len(data)
            return data

    def write(self, data: bytes) -> int:
        with self._lock:
            n = self.dev.write(self.pos, data)
            self.pos += n
            return n

    def pread(self, count: int, offset: int) -> bytes:
        if offset < 0:
            raise SyscallError(errno.EINVAL)
        return self.dev.read(offset, count)

    def pwrite(self, data: bytes, offset: int) -> int:
        if offset < 0:
            raise SyscallError(errno.EINVAL)
        return self.dev.write(offset, data)

    def seek(self, offset: int, whence: int) -> int:
        with self._lock:
            self.pos = seek_position(self.pos, self.dev.size, offset, whence)
            return self.pos

    def ioctl(self, cmd: int, arg: int, task: object) -> int:
        return _ioctl.loop_ioctl(self, cmd, arg, task)

    def release(self) -> None:
        dev = self.dev
        with dev.lock:
            dev.opens -= 1
            if dev.opens == 0 and not dev.free and (
                    dev.rundown or dev.flags & LO_FLAGS_AUTOCLEAR):
                dev.unbind()
        super().release()


def _open_loop(inode: Inode, flags: int) -> FileDescription:
    """Opening a loop node makes its device if it is not there yet (Linux's
    loop_probe: the node names the device)."""
    minor = os.minor(inode.rdev)
    dev = LOOPS.get(minor)
    if dev is None:
        try:
            dev = LOOPS.add(minor)
        except SyscallError as exc:
            if exc.errno != errno.EEXIST:
                raise SyscallError(errno.ENXIO) from None
            dev = LOOPS.get(minor)
            if dev is None:
                raise SyscallError(errno.ENXIO) from None
    return LoopFile(inode, flags, dev)


def register_loop(registry: DeviceRegistry = DEVICES) -> None:
    """The loop driver's numbers: 10:237 for the control node, 7:N for devices."""
    registry.register(MISC_MAJOR, LOOP_CTRL_MINOR, LoopControl)
    for minor in range(MAX_LOOPS):
        registry.register_block(LOOP_MAJOR, minor, _open_loop)


register_loop()

# Imported now, not at the first ioctl: the confined Sentry cannot open files later.
from sentry.vfs import loop_ioctl as _ioctl  # noqa: E402
