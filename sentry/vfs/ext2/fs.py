"""The ext2 filesystem object: what mount(2) makes from a block device.

The device is any Sentry block-device description (the RAM disk, a loop
device) opened by the mount; its bytes are the image.  One object per inode
number (``iget``), so hard links meet in one Sentry inode.

Gaps, said plainly: a file whose last name goes is freed at once, not at its
last close (an open descriptor of it then reads freed blocks); reserved
blocks are not kept back from unprivileged users; no extended attributes
(EOPNOTSUPP); timestamps in whole seconds, as Linux's ext2.
"""

from __future__ import annotations

import errno
import weakref

from sentry.kernel.errors import SyscallError
from sentry.vfs.ext2.dirops import Ext2Node
from sentry.vfs.ext2.inode import Ext2Inode
from sentry.vfs.ext2.layout import MAGIC, ROOT_INO, BlockDevice, Super
from sentry.vfs.inode import Filesystem, StatFs, now_ns

_S = 1_000_000_000


class Ext2Fs(Filesystem):
    """One mounted ext2 image."""

    magic = MAGIC
    keeps_atime = True  # reads move atime by the mount's mode (sentry/vfs/atime.py)

    def __init__(self, dev: BlockDevice, dev_size: int, *, fstype: str = "ext2",
                 readonly: bool = False, source: str = "none") -> None:
        super().__init__(readonly=readonly, source=source)
        self.name = fstype
        self.device = dev  # the open device description: kept open while mounted
        self.sb = Super(dev, dev_size)
        if not readonly and not self.sb.writable_features():
            raise SyscallError(errno.EINVAL)
        self._inodes: weakref.WeakValueDictionary[int, Ext2Node] = \
            weakref.WeakValueDictionary()
        self._pinned: dict[int, Ext2Node] = {}
        root = self.iget(ROOT_INO)
        if not root.is_dir():
            raise SyscallError(errno.EINVAL)
        self.root = root
        self._pinned[ROOT_INO] = root

    def release_device(self) -> None:
        """The last mount went: the device description is closed (a loop
        device set to autoclear is freed by it)."""
        dev, self.device = self.device, None
        if dev is not None:
            dev.release()

    def iget(self, ino: int) -> Ext2Node:
        """The inode ``ino`` (one object per number while anything holds it)."""
        with self.sb.lock:
            node = self._inodes.get(ino)
            if node is None:
                node = Ext2Node(self, ino, Ext2Inode.read_raw(self.sb, ino))
                if node.nlink == 0 or node.mode == 0:
                    raise SyscallError(errno.EUCLEAN)  # a name for a free inode
                self._inodes[ino] = node
            return node

    def fresh(self, ino: int, mode: int, uid: int, gid: int, rdev: int = 0) -> Ext2Node:
        """A just-allocated inode, zeroed, with its first attributes."""
        with self.sb.lock:
            node = Ext2Node(self, ino)
            node.mode, node.uid, node.gid, node.rdev, node.nlink = mode, uid, gid, rdev, 1
            t = now_ns() // _S * _S
            node.atime_ns = node.mtime_ns = node.ctime_ns = t
            self._inodes[ino] = node
            return node

    def forget(self, ino: int) -> None:
        self._inodes.pop(ino, None)

    def statfs(self) -> StatFs:
        sb = self.sb
        with sb.lock:
            blocks = sb.blocks_count - sb.overhead()
            avail = max(0, sb.free_blocks - sb.r_blocks)
            return StatFs(type=MAGIC, bsize=sb.block_size, blocks=blocks,
                          bfree=sb.free_blocks, bavail=avail, files=sb.inodes_count,
                          ffree=sb.free_inodes, fsid=self.dev, namelen=255,
                          frsize=sb.block_size)
