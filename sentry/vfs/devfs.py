"""devtmpfs: /dev as a tmpfs populated at boot, and the memory devices.

The device nodes are ordinary tmpfs inodes; what opening one does is decided
by its rdev through the driver registry (``inode.DEVICES``), so a node made
with mknod anywhere opens the same driver, as on Linux.  Numbers are Linux's:
null 1:3, zero 1:5, full 1:7, random 1:8, urandom 1:9, tty 5:0, ptmx 5:2.

/dev/stdin, /dev/stdout, /dev/stderr and /dev/fd are symlinks into
/proc/self/fd, so they work once procfs is mounted at /proc.  /dev/shm is a
separate tmpfs mount (see :func:`mount_devfs`); /dev/pts is where devpts is
mounted (sentry/tty/devpts.py, which registers the tty and ptmx drivers in
``DEVICES``; without them both nodes open with ENXIO).
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from typing import TYPE_CHECKING

from sentry.kernel.errors import SyscallError
from sentry.vfs import loop
from sentry.vfs.description import InodeFile
from sentry.vfs.file import POLLIN, POLLOUT, FileDescription
from sentry.vfs.inode import DEVICES, S_IFCHR, DeviceRegistry, Inode
from sentry.vfs.ramdisk import register_ramdisks
from sentry.vfs.tmpfs import TmpFs

if TYPE_CHECKING:
    from sentry.vfs.dentry import Dentry
    from sentry.vfs.mount import Mount, MountNamespace

MEM_MAJOR = 1
TTYAUX_MAJOR = 5
NULL, ZERO, FULL, RANDOM, URANDOM = 3, 5, 7, 8, 9
TTY_MINOR, PTMX_MINOR = 0, 2
RNDGETENTCNT = 0x80045200
# RNDADDTOENTCNT, RNDADDENTROPY, RNDZAPENTCNT, RNDCLEARPOOL, RNDRESEEDCRNG
RND_ADMIN = (0x40045201, 0x40085203, 0x5204, 0x5206, 0x5207)
ENTROPY_BITS = 256


class _CharDevice(InodeFile):
    """A memory device: seekable to any offset (always reads as position 0)."""

    def seek(self, offset: int, whence: int) -> int:
        return 0

    def pread(self, count: int, offset: int) -> bytes:
        return self.read(count)

    def pwrite(self, data: bytes, offset: int) -> int:
        return self.write(data)

    def poll(self, events: int, timeout_s: float | None) -> int:
        return events & (POLLIN | POLLOUT)


class NullDevice(_CharDevice):
    """/dev/null: reads EOF, swallows writes."""

    def read(self, count: int) -> bytes:
        return b""

    def write(self, data: bytes) -> int:
        return len(data)


class ZeroDevice(_CharDevice):
    """/dev/zero: endless zeros, swallows writes."""

    def read(self, count: int) -> bytes:
        return bytes(count)

    def write(self, data: bytes) -> int:
        return len(data)

    def read_pages(self, offset: int, length: int) -> bytes:
        """mmap of /dev/zero is anonymous memory: all zeros."""
        return bytes(length)


class FullDevice(_CharDevice):
    """/dev/full: zeros on read, ENOSPC on every write."""

    def read(self, count: int) -> bytes:
        return bytes(count)

    def write(self, data: bytes) -> int:
        raise SyscallError(errno.ENOSPC)


class RandomDevice(_CharDevice):
    """/dev/random and /dev/urandom: the Sentry's own CSPRNG; writes are mixed in (ignored)."""

    def read(self, count: int) -> bytes:
        return os.urandom(count)

    def write(self, data: bytes) -> int:
        return len(data)

    def ioctl(self, cmd: int, arg: int, task: object) -> int:
        """random(4)'s requests: the entropy count is the full pool (256, as
        Linux since 5.18 and /proc/sys/kernel/random/entropy_avail); crediting,
        adding entropy and reseeding are CAP_SYS_ADMIN's and change nothing."""
        if cmd == RNDGETENTCNT:
            task.mm.copy_out(arg, ENTROPY_BITS.to_bytes(4, "little"))  # type: ignore[attr-defined]
            return 0
        if cmd in RND_ADMIN:
            if task.creds.euid != 0:  # type: ignore[attr-defined]
                raise SyscallError(errno.EPERM)
            return 0
        return super().ioctl(cmd, arg, task)


def register_memory_devices(registry: DeviceRegistry = DEVICES) -> None:
    """Install the mem-major drivers in ``registry``."""
    for minor, cls in ((NULL, NullDevice), (ZERO, ZeroDevice), (FULL, FullDevice),
                       (RANDOM, RandomDevice), (URANDOM, RandomDevice)):
        registry.register(MEM_MAJOR, minor, cls)


register_memory_devices()


class DevFs(TmpFs):
    """A devtmpfs instance (a tmpfs that reports itself as devtmpfs)."""

    name = "devtmpfs"

    def __init__(self, *, tty_opener: Callable[[Inode, int], FileDescription] | None = None,
                 name: str = "devtmpfs", ptmx_link: bool = False, mode: int = 0o755) -> None:
        """``name``: the type /proc/mounts shows ("tmpfs" for an OCI /dev,
        which runc makes a tmpfs and fills with these nodes); ``ptmx_link``:
        /dev/ptmx is the symlink "pts/ptmx" runc and runsc make, not a node."""
        super().__init__(mode=mode, source=name)
        self.name = name
        self._ptmx_link = ptmx_link
        self.devices = DeviceRegistry()
        register_memory_devices(self.devices)
        register_ramdisks(self.devices)
        loop.register_loop(self.devices)
        self.devices.register(TTYAUX_MAJOR, TTY_MINOR, self._open_tty)
        # ptmx: the Sentry's tty drivers (sentry/tty) register in DEVICES.
        self.devices.register(TTYAUX_MAJOR, PTMX_MINOR, DEVICES.open)
        self.tty_opener = tty_opener
        self._populate()

    def _open_tty(self, inode: Inode, flags: int) -> FileDescription:
        """/dev/tty: the controlling terminal, ENXIO when the caller has none
        (the driver in DEVICES, unless a test gave its own)."""
        if self.tty_opener is None:
            return DEVICES.open(inode, flags)
        return self.tty_opener(inode, flags)

    def _populate(self) -> None:
        root = self.root
        for name, minor in ((b"null", NULL), (b"zero", ZERO), (b"full", FULL),
                            (b"random", RANDOM), (b"urandom", URANDOM)):
            root.mknod(name, S_IFCHR | 0o666, os.makedev(MEM_MAJOR, minor), 0, 0)
        root.mknod(b"tty", S_IFCHR | 0o666, os.makedev(TTYAUX_MAJOR, TTY_MINOR), 0, 5)
        if self._ptmx_link:
            root.symlink(b"ptmx", b"pts/ptmx", 0, 0)
        else:
            root.mknod(b"ptmx", S_IFCHR | 0o666, os.makedev(TTYAUX_MAJOR, PTMX_MINOR), 0, 5)
        for i, name in enumerate((b"stdin", b"stdout", b"stderr")):
            root.symlink(name, b"/proc/self/fd/%d" % i, 0, 0)
        root.symlink(b"fd", b"/proc/self/fd", 0, 0)
        root.mkdir(b"shm", 0o1777, 0, 0)
        root.mkdir(b"pts", 0o755, 0, 0)
        if self.name == "devtmpfs":  # not an OCI /dev: runc gives containers no loop devices
            loop.show_in(self)


def mount_devfs(ns: MountNamespace, at: Dentry, *,
                tty_opener: Callable[[Inode, int], FileDescription] | None = None,
                ) -> tuple[Mount, Mount]:
    """Mount a fresh devtmpfs at ``at`` and a tmpfs at its /dev/shm."""
    devfs = DevFs(tty_opener=tty_opener)
    dev_mount = ns.mount(devfs, at, "devtmpfs", "mode=755")
    shm = TmpFs(mode=0o1777, source="shm")
    shm_mount = ns.mount(shm, dev_mount.root.child(b"shm"), "shm")
    return dev_mount, shm_mount
