"""Access times on read, as Linux's touch_atime: by the mount's atime mode.

Why: programs and tests (mount(2)'s MS_NOATIME, MS_NODIRATIME,
MS_STRICTATIME and the default relatime) see whether a read moved atime.
Only filesystems whose inodes live in the Sentry say ``keeps_atime``
(tmpfs, ext2): a read of a Gofer file never costs a round trip to set a
host file's atime (those keep the host's, as on a network filesystem).

Rules (fs/inode.c atime_needs_update, relatime_need_update): nothing on a
read-only mount, with noatime, for a directory with nodiratime, or for
O_NOATIME; strictatime always updates; relatime only when atime is not
after mtime or ctime, or is a day old.
"""

from __future__ import annotations

from typing import Any

from sentry.vfs.inode import now_ns

O_NOATIME = 0o1000000
DAY_NS = 24 * 3600 * 1_000_000_000


def touch(desc: Any) -> None:
    """A read (or a directory listing) through ``desc`` happened."""
    inode = getattr(desc, "inode", None)
    if inode is None or not getattr(inode.fs, "keeps_atime", False):
        return
    d = getattr(desc, "dentry", None)
    if d is None or desc.flags & O_NOATIME:
        return
    m = d.mount
    if m.readonly or inode.fs.readonly:
        return
    opts = (m._options or "").split(",")
    if "noatime" in opts or (inode.is_dir() and "nodiratime" in opts):
        return
    now = now_ns()
    atime = inode.atime_ns
    if "strictatime" not in opts and atime > inode.mtime_ns and atime > inode.ctime_ns \
            and now - atime < DAY_NS:
        return
    touch_inode = getattr(inode, "touch_atime", None)
    if touch_inode is not None:
        touch_inode(now)
    else:
        inode.atime_ns = now
