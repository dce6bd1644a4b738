"""OCI ``linux.maskedPaths`` and ``linux.readonlyPaths`` in the sandbox's
initial mount table, as runc applies them after the config's mounts:

* a masked directory gets an empty read-only tmpfs over it, a masked file a
  read-only view of /dev/null (reads are empty, writes EROFS);
* a read-only path gets a read-only mount of its own tree (runc's bind of
  the path onto itself, remounted ro): writes below it are EROFS.

A path that does not exist is skipped, as runc skips it.  The mounts are
views made by the Sentry (no host mount, nothing served by the Gofer); a path
that cannot be covered (a procfs file the kernel builds per lookup) is logged
and skipped rather than failing the container: Docker's defaults name
/proc/kcore and friends, which the Sentry's procfs mostly does not have.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
from collections.abc import Sequence

from sentry.kernel.errors import SyscallError
from sentry.vfs.inode import Filesystem, Inode, StatFs
from sentry.vfs.mount import MountNamespace
from sentry.vfs.resolve import FsContext, resolve
from sentry.vfs.tmpfs import TmpFs

log = logging.getLogger("pyvisor")


class ViewFs(Filesystem):
    """Another filesystem's tree from one of its inodes: what a bind mount of
    a path shows (its name, device and statfs are the original's)."""

    def __init__(self, fs: Filesystem, root: Inode) -> None:
        super().__init__(readonly=fs.readonly, source=fs.source)
        self.inner = fs
        self.name = fs.name
        self.magic = fs.magic
        self.dev = fs.dev
        self.root = root

    def statfs(self) -> StatFs:
        return self.inner.statfs()

    def options(self) -> str:
        return self.inner.options()


def _null_file() -> ViewFs:
    """A filesystem whose root is a /dev/null node (masks a file)."""
    tmp = TmpFs(mode=0o755, source="tmpfs")
    node = tmp.root.mknod(b"null", stat.S_IFCHR | 0o666, os.makedev(1, 3), 0, 0)
    return ViewFs(tmp, node)


def apply(ns: MountNamespace, masked: Sequence[str], readonly: Sequence[str]) -> None:
    """Cover each masked path, then make each read-only path read-only."""
    for path, mask in [(p, True) for p in masked] + [(p, False) for p in readonly]:
        ctx = FsContext.for_namespace(ns)
        try:
            d = resolve(ctx, os.fsencode(path), follow=True)
        except SyscallError as exc:
            if exc.errno not in (errno.ENOENT, errno.ENOTDIR):
                log.debug("linux paths: cannot resolve %s: %s", path, os.strerror(exc.errno))
            continue
        try:
            if mask:
                fs: Filesystem = (TmpFs(mode=0o755, source="tmpfs") if d.inode.is_dir()
                                  else _null_file())
                ns.mount(fs, d, "tmpfs", None, True)
            else:
                ns.mount(ViewFs(d.mount.fs, d.inode), d, d.mount.source, None, True)
        except SyscallError as exc:
            log.debug("linux paths: cannot cover %s: %s", path, os.strerror(exc.errno))
