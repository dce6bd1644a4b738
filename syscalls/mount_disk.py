"""mount(2) of a disk filesystem: the source names a Sentry block device
(the RAM disk, a loop device) whose bytes hold an image.

Linux's order (fs/super.c get_tree_bdev, lookup_bdev): the source path is
resolved (ENOENT...), must be a block device (ENOTBLK, which is also how
programs probe whether the kernel knows a filesystem type: they mount
/dev/zero and take anything but ENODEV as yes), must have a driver (ENXIO),
must not be read-only for a read-write mount (EACCES: setup_bdev_super, so
BLKROSET or a read-only loop device), and the image must parse (EINVAL).
The device stays open while mounted.
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING, Any

from sentry.kernel.errors import SyscallError
from sentry.vfs.ext2.fs import Ext2Fs
from sentry.vfs.file import O_RDONLY, O_RDWR
from sentry.vfs.inode import S_IFBLK, S_IFMT
from sentry.vfs.resolve import resolve

if TYPE_CHECKING:
    from sentry.kernel.task import Task

DISK_TYPES = ("ext2", "ext3", "ext4")


def disk_fs(t: Task, ctx: Any, fstype: str, source: str | None, readonly: bool) -> Ext2Fs:
    """The filesystem on the block device ``source`` (caller holds TREE_LOCK)."""
    if not source:
        raise SyscallError(errno.EINVAL)
    d = resolve(ctx, source.encode("utf-8", "surrogateescape"), follow=True)
    if d.inode.mode & S_IFMT != S_IFBLK:
        raise SyscallError(errno.ENOTBLK)
    desc = d.inode.open(O_RDONLY if readonly else O_RDWR)
    size = getattr(desc, "device_bytes", None)
    if size is None:
        desc.release()
        raise SyscallError(errno.ENXIO)
    device_readonly = getattr(desc, "device_readonly", None)
    if not readonly and device_readonly is not None and device_readonly():
        desc.release()
        raise SyscallError(errno.EACCES)
    try:
        return Ext2Fs(desc, size(), fstype=fstype, readonly=readonly, source=source)
    except SyscallError:
        desc.release()
        raise
