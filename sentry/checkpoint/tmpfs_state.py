"""Contents kept only in the Sentry's memory: tmpfs mounts and the upper
layer of the in-memory root overlay (--overlay2=root:memory, and `do`).

Files on the Gofer's filesystems are the host's and outlive the sandbox; these
do not, so a checkpoint saves each such tree (directories, files with their
data, symlinks, device nodes and the overlay's whiteouts, hard links,
owners, modes, times, xattrs, the overlay's opaque flags and origins) and a
restore puts it back into the mount of the same path and kind in the new
sandbox, whose mounts come from the same bundle.  Names the new tree has and
the saved one does not are removed (the application had removed them).

An overlay keeps one overlay inode per name it has looked up, holding that
name's upper inode; the few made while booting (mount points, the cwd) are
pointed at the restored upper entries (``_refresh``), so they see the tree.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sentry.vfs.inode import S_IFDIR, S_IFLNK, S_IFMT, S_IFREG, Inode
from sentry.vfs.mount import path_of
from sentry.vfs.overlay import OverlayFs, OverlayInode
from sentry.vfs.tmpfs import TmpDir, TmpFile, TmpFs, TmpSymlink, is_whiteout

if TYPE_CHECKING:
    from sentry.vfs.resolve import FsContext

MAX_DEPTH = 256


def _kind(fs: object) -> str | None:
    if isinstance(fs, OverlayFs):
        return "overlay"
    if type(fs) is TmpFs:  # not devfs, sysfs, mqueue: those are made at boot
        return "tmpfs"
    return None


def _tree_root(fs: Any) -> TmpDir:
    return fs.upper.root if isinstance(fs, OverlayFs) else fs.root


def _attrs(inode: Inode) -> list[Any]:
    xattrs = inode.__dict__.get("_xattrs") or {}
    return [inode.mode, inode.uid, inode.gid, inode.atime_ns, inode.mtime_ns,
            [[k, v] for k, v in xattrs.items()], getattr(inode, "ovl_origin", None)]


def _save_dir(d: TmpDir, seen: dict[int, list[bytes]], path: list[bytes],
              depth: int) -> dict[str, Any]:
    if depth > MAX_DEPTH:
        raise ValueError("tmpfs tree too deep")
    entries = []
    for name, inode in list(d.entries.items()):
        here = [*path, name]
        if not inode.is_dir() and id(inode) in seen:
            entries.append([name, {"link": seen[id(inode)]}])
            continue
        seen[id(inode)] = here
        rec: dict[str, Any] = {"attrs": _attrs(inode)}
        if isinstance(inode, TmpDir):
            rec["dir"] = _save_dir(inode, seen, here, depth + 1)
        elif isinstance(inode, TmpFile):
            rec["data"] = inode.read_at(0, inode.size)
        elif isinstance(inode, TmpSymlink):
            rec["target"] = inode.target
        else:
            rec["rdev"] = inode.rdev
        entries.append([name, rec])
    return {"attrs": _attrs(d), "opaque": bool(d.opaque), "entries": entries}


def save(ctx: FsContext) -> list[dict[str, Any]]:
    """Every tmpfs mount and in-memory overlay of ``ctx``'s namespace."""
    if ctx.ns is None:
        return []
    out = []
    for m in ctx.ns.all_mounts():
        kind = _kind(m.fs)
        if kind is None:
            continue
        tree = _save_dir(_tree_root(m.fs), {}, [], 0)
        out.append({"target": path_of(m.root, ctx.root), "kind": kind, "tree": tree})
    return out


def _set_attrs(inode: Inode, a: list[Any]) -> None:
    inode.mode = (inode.mode & S_IFMT) | (int(a[0]) & 0o7777)
    inode.uid, inode.gid = int(a[1]), int(a[2])
    inode.atime_ns, inode.mtime_ns = int(a[3]), int(a[4])
    if a[5]:
        inode.__dict__["_xattrs"] = {bytes(k): bytes(v) for k, v in a[5]}
    if a[6] is not None:
        inode.ovl_origin = int(a[6])  # type: ignore[attr-defined]


def _lookup(root: TmpDir, path: list[bytes]) -> Inode:
    node: Inode = root
    for name in path:
        node = node.entries[bytes(name)]  # type: ignore[attr-defined]
    return node


def _make(d: TmpDir, name: bytes, rec: dict[str, Any]) -> Inode:
    a = rec["attrs"]
    fmt, uid, gid = int(a[0]) & S_IFMT, int(a[1]), int(a[2])
    if "dir" in rec:
        return d.mkdir(name, 0o700, uid, gid)
    if "target" in rec:
        return d.symlink(name, bytes(rec["target"]), uid, gid)
    if "data" in rec:
        f = d.create(name, 0o600, uid, gid)
        data = bytes(rec["data"])
        if data:
            f.write_at(0, data)
        return f
    if fmt in (0, S_IFREG, S_IFDIR, S_IFLNK):
        raise ValueError(f"bad node {name!r}")
    return d.mknod(name, fmt, int(rec["rdev"]), uid, gid)


def _restore_dir(d: TmpDir, rec: dict[str, Any], root: TmpDir, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise ValueError("tmpfs tree too deep")
    wanted = {bytes(n) for n, _ in rec["entries"]}
    for name in [n for n in d.entries if n not in wanted]:
        old = d.entries[name]
        if isinstance(old, TmpDir):
            _restore_dir(old, {"entries": [], "attrs": _attrs(old), "opaque": old.opaque},
                         root, depth + 1)
            d.rmdir(name)
        else:
            d.unlink(name)
    for raw_name, child in rec["entries"]:
        name = bytes(raw_name)
        if "link" in child:
            target = _lookup(root, [bytes(p) for p in child["link"]])
            if name in d.entries:
                d.unlink(name)
            d.link(name, target)
            continue
        old = d.entries.get(name)
        if old is not None and not ("dir" in child and isinstance(old, TmpDir)):
            if isinstance(old, TmpDir):
                _restore_dir(old, {"entries": [], "attrs": _attrs(old), "opaque": False},
                             root, depth + 1)
                d.rmdir(name)
            else:
                d.unlink(name)
            old = None
        node = old if old is not None else _make(d, name, child)
        if "dir" in child:
            _restore_dir(node, child["dir"], root, depth + 1)  # type: ignore[arg-type]
        _set_attrs(node, child["attrs"])
    d.opaque = bool(rec["opaque"])
    _set_attrs(d, rec["attrs"])


def _refresh(o: OverlayInode, depth: int = 0) -> None:
    """Point the overlay inodes made so far at the restored upper tree."""
    up = o.upper
    for name, child in list(o._children.items()):  # noqa: SLF001 - the overlay's cache
        entry = up.entries.get(name) if isinstance(up, TmpDir) else None
        if entry is not None and is_whiteout(entry):
            continue
        if entry is not None and child.upper is not entry:
            child.upper = entry
        if depth < MAX_DEPTH:
            _refresh(child, depth + 1)


def restore(ctx: FsContext, saved: list[dict[str, Any]]) -> None:
    """Put each saved tree into the mount of the same path and kind."""
    if not saved:
        return
    if ctx.ns is None:
        raise ValueError("the new sandbox has no mount namespace for the saved mounts")
    mounts = {(path_of(m.root, ctx.root), _kind(m.fs)): m for m in ctx.ns.all_mounts()}
    for rec in saved:
        key = (bytes(rec["target"]), str(rec["kind"]))
        m = mounts.get(key)
        if m is None:
            raise ValueError(f"no {key[1]} mount at {key[0].decode('utf-8', 'replace')} in "
                             "the new sandbox (restore with the checkpoint's bundle and "
                             "--overlay2)")
        root = _tree_root(m.fs)
        with m.fs.upper.lock if isinstance(m.fs, OverlayFs) else m.fs.lock:
            _restore_dir(root, rec["tree"], root, 0)
        if isinstance(m.fs, OverlayFs):
            _refresh(m.fs.root)
