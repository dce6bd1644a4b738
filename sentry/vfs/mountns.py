"""Changing a mount table from inside the sandbox: new mounts, binds,
remounts, propagation types, detaching, pivot_root and copying a whole
namespace (unshare(CLONE_NEWNS), clone(CLONE_NEWNS)).

Facts about Linux that shape this module (fs/namespace.c, mount(2),
umount(2), pivot_root(2), mount_namespaces(7)):

* A bind mount is a new mount whose root is an existing directory (or
  file) of some mount; here that is a :class:`Mount` over the source's
  filesystem whose root dentry stands on the source's inode.  mountinfo's
  fourth column (the root) is the source's path within its filesystem.
* Per-mount flags (MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, the atime
  ones) are what a remount with MS_BIND changes; a plain remount changes them
  as well (the superblock's options are not modelled apart from them).
* Propagation (MS_SHARED, MS_PRIVATE, MS_SLAVE, MS_UNBINDABLE, with MS_REC
  for the subtree) is recorded per mount and shown in mountinfo's optional
  fields ("shared:N", "master:N", "unbindable"); events are not propagated
  between peers: every namespace of one sandbox is changed only by its own
  calls.  New mounts are private, as gVisor's and as util-linux's unshare
  makes them.
* A copy of a namespace holds a copy of every mount, attached at the same
  places; processes that move to it keep their root and cwd at the same
  places in the copy.  Open files keep the mount they were opened on.

Each mount has its own dentry tree over shared inodes (sentry/vfs/dentry.py),
so a name removed through one mount may stay cached in another mount of the
same filesystem until it is looked up again there: the cost of that design,
noted here because copies multiply mounts.

Locking: every function here runs under ``TREE_LOCK``.
"""

from __future__ import annotations

import errno
import itertools
from collections.abc import Iterable

from sentry.kernel.errors import SyscallError
from sentry.vfs.dentry import TREE_LOCK, Dentry
from sentry.vfs.inode import Filesystem, Inode
from sentry.vfs.mount import Mount, MountNamespace, follow_mounts

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_SYNCHRONOUS, MS_REMOUNT, MS_MANDLOCK, MS_DIRSYNC = 16, 32, 64, 128
MS_NOSYMFOLLOW, MS_NOATIME, MS_NODIRATIME = 256, 1024, 2048
MS_BIND, MS_MOVE, MS_REC, MS_SILENT = 4096, 8192, 16384, 32768
MS_POSIXACL, MS_UNBINDABLE, MS_PRIVATE = 1 << 16, 1 << 17, 1 << 18
MS_SLAVE, MS_SHARED, MS_RELATIME = 1 << 19, 1 << 20, 1 << 21
MS_KERNMOUNT, MS_I_VERSION, MS_STRICTATIME, MS_LAZYTIME = 1 << 22, 1 << 23, 1 << 24, 1 << 25
MS_NOUSER = 1 << 31
MS_MGC_MSK, MS_MGC_VAL = 0xFFFF0000, 0xC0ED0000
PROPAGATION = MS_SHARED | MS_PRIVATE | MS_SLAVE | MS_UNBINDABLE

# Per-mount flags, in the order /proc/mounts shows them.
_FLAG_NAMES = ((MS_NOSUID, "nosuid"), (MS_NODEV, "nodev"), (MS_NOEXEC, "noexec"),
               (MS_NOSYMFOLLOW, "nosymfollow"), (MS_NOATIME, "noatime"),
               (MS_NODIRATIME, "nodiratime"), (MS_STRICTATIME, "strictatime"))

_peer_groups = itertools.count(1)


def flag_options(flags: int) -> str:
    """The per-mount options column for mount(2) ``flags`` (relatime is the
    default unless noatime or strictatime is asked for, as Linux)."""
    names = [n for bit, n in _FLAG_NAMES if flags & bit]
    if not flags & (MS_NOATIME | MS_STRICTATIME):
        names.append("relatime")
    return ",".join(names)


def propagation_of(m: Mount) -> str:
    """mountinfo's optional fields for ``m`` ("" when private)."""
    kind = getattr(m, "propagation", "private")
    if kind == "shared":
        return f"shared:{m.peer_group}"  # type: ignore[attr-defined]
    if kind == "slave":
        return f"master:{m.peer_group}"  # type: ignore[attr-defined]
    return "unbindable" if kind == "unbindable" else ""


def root_path(m: Mount) -> bytes:
    """mountinfo's root column: the mount's root within its filesystem (a
    bind made inside the sandbox records it; a Gofer-served bind from the
    bundle knows its source path, sentry/vfs/goferfs.py)."""
    bind_root = getattr(m, "bind_root", None)
    if bind_root is not None and bind_root != b"/":
        return bind_root
    return getattr(m.fs, "root_path", "/").encode()


def attach(ns: MountNamespace, fs: Filesystem, at: Dentry, *, root_inode: Inode | None = None,
           source: str = "none", options: str | None = None, readonly: bool = False,
           bind_root: bytes = b"/") -> Mount:
    """A new mount of ``fs`` (its root, or ``root_inode`` for a bind) stacked at ``at``."""
    with TREE_LOCK:
        at = follow_mounts(at)
        root = root_inode if root_inode is not None else fs.root
        if at.inode.is_dir() != root.is_dir():
            raise SyscallError(errno.ENOTDIR)
        if at.dead:
            raise SyscallError(errno.ENOENT)
        m = Mount(fs, at.mount, at, source, options, readonly)
        if root_inode is not None:
            m.root = Dentry(b"", None, root_inode, m)
        m.bind_root = bind_root  # type: ignore[attr-defined]
        at.mounted = m
        at.mount.children.append(m)
        return m


def _names_from_root(d: Dentry) -> list[bytes]:
    names: list[bytes] = []
    while d.parent is not None:
        names.append(d.name)
        d = d.parent
    return names[::-1]


def path_in_fs(d: Dentry) -> bytes:
    """``d``'s path within its filesystem (the bind root of its mount, then down)."""
    base = root_path(d.mount).rstrip(b"/")
    return base + b"/" + b"/".join(_names_from_root(d)) if d.parent is not None else \
        (base or b"/")


def _walk(root: Dentry, names: Iterable[bytes]) -> Dentry:
    d = root
    for n in names:
        d = d.child(n)
    return d


def bind(ns: MountNamespace, src: Dentry, at: Dentry, recursive: bool,
         options: str | None = None) -> Mount:
    """mount --bind (``recursive``: --rbind, the mounts below ``src`` too)."""
    with TREE_LOCK:
        if getattr(src.mount, "propagation", "") == "unbindable":
            raise SyscallError(errno.EINVAL)
        top = attach(ns, src.mount.fs, at, root_inode=src.inode, source=src.mount.source,
                     options=options if options is not None else src.mount._options,
                     readonly=src.mount.readonly, bind_root=path_in_fs(src))
        if recursive:
            for child in list(src.mount.children):
                mp = child.mountpoint
                if mp is None or not src.is_ancestor_of(mp) or \
                        getattr(child, "propagation", "") == "unbindable":
                    continue
                rel = _names_from_root(mp)[len(_names_from_root(src)):]
                bind(ns, child.root, _walk(top.root, rel), True)
        return top


def subtree(m: Mount) -> list[Mount]:
    """``m`` and every mount below it."""
    out, stack = [], [m]
    while stack:
        cur = stack.pop()
        out.append(cur)
        stack.extend(cur.children)
    return out


def set_propagation(m: Mount, flags: int) -> None:
    """MS_SHARED / MS_PRIVATE / MS_SLAVE / MS_UNBINDABLE (MS_REC: the subtree)."""
    kind = {MS_SHARED: "shared", MS_PRIVATE: "private", MS_SLAVE: "slave",
            MS_UNBINDABLE: "unbindable"}[flags & PROPAGATION]
    with TREE_LOCK:
        for cur in subtree(m) if flags & MS_REC else [m]:
            was = getattr(cur, "propagation", "private")
            if kind == "shared" and was != "shared":
                cur.peer_group = next(_peer_groups)  # type: ignore[attr-defined]
            if kind == "slave" and was != "shared":
                kind_here = "private"  # a slave of nothing is private (Linux)
            else:
                kind_here = kind
            cur.propagation = kind_here  # type: ignore[attr-defined]


def detach(m: Mount) -> None:
    """Take ``m`` (and what is mounted below it) out of the tree."""
    with TREE_LOCK:
        assert m.parent is not None and m.mountpoint is not None
        m.mountpoint.mounted = None
        m.parent.children.remove(m)
        m.detached = True  # type: ignore[attr-defined]


def copy_namespace(ns: MountNamespace) -> tuple[MountNamespace, dict[Mount, Mount]]:
    """A new namespace holding a copy of every mount of ``ns``, and old -> new."""
    with TREE_LOCK:
        mapping: dict[Mount, Mount] = {}
        new = MountNamespace.__new__(MountNamespace)
        for m in ns.all_mounts():
            if m.parent is None or m.mountpoint is None:
                c = Mount(m.fs, None, None, m.source, m._options, m.readonly)
                c.root = Dentry(b"", None, m.root.inode, c)
                new.root_mount, new.root = c, c.root
            else:
                parent = mapping.get(m.parent)
                if parent is None or m.mountpoint.dead:
                    continue
                try:
                    at = _walk(parent.root, _names_from_root(m.mountpoint))
                except SyscallError:
                    continue
                c = Mount(m.fs, parent, at, m.source, m._options, m.readonly)
                c.root = Dentry(b"", None, m.root.inode, c)
                at.mounted = c
                parent.children.append(c)
            c.bind_root = root_path(m)  # type: ignore[attr-defined]
            if getattr(m, "propagation", "private") != "private":
                c.propagation = m.propagation  # type: ignore[attr-defined]
                c.peer_group = getattr(m, "peer_group", 0)  # type: ignore[attr-defined]
            attach_hook = getattr(m.fs, "attach", None)
            if callable(attach_hook):
                attach_hook(c)
            mapping[m] = c
        return new, mapping


def translate(d: Dentry, mapping: dict[Mount, Mount]) -> Dentry:
    """The dentry at ``d``'s place in a copied namespace (``d`` itself if its
    mount was not copied)."""
    with TREE_LOCK:
        m = mapping.get(d.mount)
        if m is None:
            return d
        try:
            return follow_mounts(_walk(m.root, _names_from_root(d))) if d.parent is not None \
                else follow_mounts(m.root)
        except SyscallError:
            return d


def pivot(ns: MountNamespace, root: Dentry, new_root: Dentry, put_old: Dentry) -> Mount:
    """pivot_root(2) in ``ns``: ``new_root``'s mount becomes the namespace's root
    and the old root mount is attached at ``put_old``.  ``root`` is the caller's
    root.  Returns the old root mount.  Linux's EINVAL/EBUSY rules."""
    with TREE_LOCK:
        new_mnt, old_root_mnt, old_mnt = new_root.mount, root.mount, put_old.mount
        for m in (old_mnt, new_mnt.parent, old_root_mnt.parent):
            if m is not None and getattr(m, "propagation", "private") == "shared":
                raise SyscallError(errno.EINVAL)
        if new_root.dead:
            raise SyscallError(errno.ENOENT)
        if new_mnt is old_root_mnt or old_mnt is old_root_mnt:
            raise SyscallError(errno.EBUSY)  # the same filesystem: a loop
        if root is not old_root_mnt.root:
            raise SyscallError(errno.EINVAL)  # the caller's root is not a mount's root
        if new_root is not new_mnt.root or new_mnt.parent is None or new_mnt.mountpoint is None:
            raise SyscallError(errno.EINVAL)  # new_root is not an attached mount point
        # put_old must be at or under new_root: new_root's mount is on its way up
        cur: Mount | None = old_mnt
        while cur is not None and cur is not new_mnt:
            cur = cur.parent
        if cur is None:
            raise SyscallError(errno.EINVAL)
        detach(new_mnt)
        new_mnt.detached = False  # type: ignore[attr-defined]
        new_mnt.parent = new_mnt.mountpoint = None
        ns.root_mount, ns.root = new_mnt, new_mnt.root
        at = follow_mounts(put_old)
        old_root_mnt.parent, old_root_mnt.mountpoint = at.mount, at
        at.mounted = old_root_mnt
        at.mount.children.append(old_root_mnt)
        return old_root_mnt
