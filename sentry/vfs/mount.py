"""The mount table: filesystems attached at dentries, and paths across them.

A :class:`Mount` is a filesystem instance attached at a mountpoint dentry of
its parent mount; its root dentry hides that directory.  Resolution crosses
mounts in both directions: a lookup that lands on a mountpoint continues at the
top mount's root (:func:`follow_mounts`), and ".." from a mount root goes to the
mountpoint's parent (:func:`dotdot`).  Mounting on a mountpoint stacks the new
mount on top, as Linux does.

Locking: the mount table is guarded by ``dentry.TREE_LOCK`` (see dentry.py
for the order).
"""

from __future__ import annotations

import errno

from sentry.kernel.errors import SyscallError
from sentry.vfs.dentry import TREE_LOCK, Dentry
from sentry.vfs.inode import Filesystem


class Mount:
    """One filesystem attached somewhere (or the namespace's root mount)."""

    def __init__(self, fs: Filesystem, parent: Mount | None, mountpoint: Dentry | None,
                 source: str, options: str | None = None, readonly: bool = False) -> None:
        self.fs = fs
        self.parent = parent
        self.mountpoint = mountpoint
        self.source = source
        self.readonly = readonly or fs.readonly
        self._options = options
        self.root = Dentry(b"", None, fs.root, self)
        self.children: list[Mount] = []

    def options(self) -> str:
        base = "ro" if self.readonly else "rw"
        extra = self._options if self._options is not None else ""
        fs_opts = ",".join(o for o in self.fs.options().split(",") if o not in ("ro", "rw"))
        return ",".join(x for x in (base, fs_opts, extra) if x)

    @property
    def nosuid(self) -> bool:
        """Mounted with "nosuid": execve ignores set-user-ID and set-group-ID bits here."""
        return "nosuid" in (self._options or "").split(",")

    @property
    def nodev(self) -> bool:
        """Mounted with "nodev": opening a device node here is EACCES."""
        return "nodev" in (self._options or "").split(",")

    @property
    def nosymfollow(self) -> bool:
        """Mounted with "nosymfollow": path lookup follows no symlink here (ELOOP)."""
        return "nosymfollow" in (self._options or "").split(",")

    @property
    def noexec(self) -> bool:
        """Mounted with "noexec": execve of a file here is EACCES."""
        return "noexec" in (self._options or "").split(",")

    def __repr__(self) -> str:
        return f"<Mount {self.fs.name} {self.source}>"


def follow_mounts(d: Dentry) -> Dentry:
    """The dentry a walk really reaches at ``d``: the top mount's root if ``d`` is a mountpoint."""
    while d.mounted is not None:
        m = d.mounted
        # Each walk into a mount counts as a use: MNT_EXPIRE's mark goes with
        # any use since (Linux's mntput clears mnt_expiry_mark).
        m.crossings = getattr(m, "crossings", 0) + 1  # type: ignore[attr-defined]
        d = m.root
    return d


def dotdot(d: Dentry, root: Dentry) -> Dentry:
    """".." of ``d``: never above ``root`` (chroot) nor above the namespace root."""
    while True:
        if d is root:
            return d
        if d.parent is not None:
            return follow_mounts(d.parent)
        m = d.mount
        if m.parent is None or m.mountpoint is None:
            return d  # the sandbox's root: ".." of "/" is "/"
        d = m.mountpoint  # continue from the mountpoint, then step up from it


def path_of(d: Dentry, root: Dentry | None = None) -> bytes:
    """The absolute path of ``d`` as seen from ``root`` (getcwd, /proc/self/fd links).

    A dentry outside ``root`` (a cwd left outside a chroot) is shown as Linux
    shows it, with the "(unreachable)" prefix; a removed one with " (deleted)".
    """
    parts: list[bytes] = []
    cur = d
    reachable = True
    with TREE_LOCK:
        while cur is not root:
            if cur.parent is None:
                m = cur.mount
                if m.parent is None or m.mountpoint is None:
                    reachable = root is None
                    break
                cur = m.mountpoint
                continue
            parts.append(cur.name)
            cur = cur.parent
    path = b"/" + b"/".join(reversed(parts))
    if not reachable:
        path = b"(unreachable)" + path
    if d.dead:
        path += b" (deleted)"
    return path


class MountNamespace:
    """Every mount of one sandbox, starting from its root filesystem."""

    def __init__(self, root_fs: Filesystem, source: str = "none",
                 options: str | None = None) -> None:
        self.root_mount = Mount(root_fs, None, None, source, options)
        self.root = self.root_mount.root

    def mount(self, fs: Filesystem, at: Dentry, source: str = "none",
              options: str | None = None, readonly: bool = False) -> Mount:
        """Attach ``fs`` at ``at`` (stacking on a mountpoint): a directory, or
        for a filesystem whose root is a file (a bind of a file) a non-directory."""
        with TREE_LOCK:
            at = follow_mounts(at)
            if at.inode.is_dir() != fs.root.is_dir():
                raise SyscallError(errno.ENOTDIR)
            if at.dead:
                raise SyscallError(errno.ENOENT)
            m = Mount(fs, at.mount, at, source, options, readonly)
            at.mounted = m
            at.mount.children.append(m)
            return m

    def umount(self, target: Dentry) -> None:
        """Detach the mount whose root is ``target`` (EINVAL if not a mount root)."""
        with TREE_LOCK:
            m = target.mount
            if target is not m.root or m.parent is None or m.mountpoint is None:
                raise SyscallError(errno.EINVAL)
            if m.children:
                raise SyscallError(errno.EBUSY)
            m.mountpoint.mounted = None
            m.parent.children.remove(m)

    def all_mounts(self) -> list[Mount]:
        """Mounts in mount order, parents before children (as /proc/mounts lists them)."""
        out: list[Mount] = []
        with TREE_LOCK:
            stack = [self.root_mount]
            while stack:
                m = stack.pop()
                out.append(m)
                stack.extend(reversed(m.children))
        return out

    def mounts(self, root: Dentry | None = None) -> list[tuple[str, bytes, str, str]]:
        """/proc/mounts rows: (source, target path, fstype, options)."""
        rows = []
        for m in self.all_mounts():
            target = path_of(m.root, root)
            if target.startswith(b"(unreachable)"):
                continue
            rows.append((m.source, target, m.fs.name, m.options()))
        return rows


def format_mounts(rows: list[tuple[str, bytes, str, str]]) -> bytes:
    """The text of /proc/mounts for :meth:`MountNamespace.mounts` rows."""
    def esc(b: bytes) -> bytes:
        for ch, rep in ((b"\\", b"\\134"), (b" ", b"\\040"), (b"\t", b"\\011"),
                        (b"\n", b"\\012")):
            b = b.replace(ch, rep)
        return b

    return b"".join(
        esc(src.encode()) + b" " + esc(tgt) + b" " + fst.encode() + b" " + opts.encode()
        + b" 0 0\n"
        for src, tgt, fst, opts in rows
    )
