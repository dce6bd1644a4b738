"""The sandbox's file tree at boot: the Gofer-served root, with devtmpfs at
/dev (tmpfs at /dev/shm, devpts at /dev/pts) and procfs at /proc unless the
requested mounts (sentry/mountspec.py) name their own, then those mounts in
their order (so /proc/self/mountinfo follows an OCI config as runc's does).

Where writes to the root go: with ``overlay`` (`runsc do`, and an OCI
container run with ``--overlay2=root:memory``) into an in-memory overlay's
upper tmpfs, the host directory opened read-only and never modified; without
it (an OCI container's default, as runc) through the Gofer to the bundle's
rootfs itself, so `docker diff` and `docker commit` see them.  With
``root_readonly`` (OCI root.readonly) the root mount itself is read-only:
every write outside another mount is EROFS, either way.  Mount points that do
not exist are made first (in the overlay or the rootfs, or in whatever mount
holds them, as runc makes them), then the root turns read-only, as runc
remounts it last.

Bind mounts are served by the same Gofer as the root: each source is one
attach point (aname "m<N>" for mounts[N]), opened by the Gofer before it
confines itself; "ro" ones are refused writes by the Gofer too.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import stat as _stat
from collections.abc import Sequence
from typing import Any

from gofer.client import GoferClient
from gofer.spawn import GoferProcess, PendingGofer, spawn_gofer
from sentry import maskpaths
from sentry.kernel.errors import SyscallError
from sentry.mountspec import MountError, MountSpec
from sentry.vfs import iflags, vfs
from sentry.vfs.dentry import TREE_LOCK
from sentry.vfs.devfs import DevFs, mount_devfs
from sentry.vfs.goferfs import GoferFs
from sentry.vfs.inode import Filesystem
from sentry.vfs.mount import Mount, MountNamespace
from sentry.vfs.overlay import OverlayFs
from sentry.vfs.resolve import MAY_EXEC, FsContext, resolve
from sentry.vfs.sysfs import CgroupFs, SysFs
from sentry.vfs.tmpfs import TmpFs
from shm.records import field, record

log = logging.getLogger("pyvisor")


@record
class RootFs:
    """What boot built, and what teardown must close."""

    ns: MountNamespace
    ctx: FsContext
    client: GoferClient
    gofer: GoferProcess
    lower: GoferFs
    binds: list[GoferFs] = field(default_factory=list)

    def close(self) -> None:
        for fs in (self.lower, *self.binds):
            try:
                fs.close(server_ending=True)  # the Gofer is killed below
            except SyscallError:
                pass
        self.client.close()
        self.gofer.kill()
        self.gofer.wait(timeout=5)


def _debug_log_fd() -> int | None:
    """Where the Gofer's own warnings go: the debug log's file, else nowhere (never
    the application's stderr)."""
    for h in log.handlers:
        stream = getattr(h, "stream", None)
        if stream is not None and hasattr(stream, "fileno"):
            try:
                return stream.fileno()
            except (OSError, ValueError):
                return None
    return None


def _ensure_dir(ctx: FsContext, path: bytes) -> None:
    try:
        vfs.mkdir(ctx, None, path, 0o755)
    except SyscallError as exc:
        if exc.errno != errno.EEXIST:
            raise


def _aname(i: int) -> str:
    return f"m{i}"


def _is_dev(m: MountSpec) -> bool:
    """A mount of /dev itself: whatever its type, the Sentry's devtmpfs serves
    it (its nodes are the only devices that work here), reported as the type
    the config names (runc's /dev is a tmpfs it fills with the same nodes)."""
    return m.destination == "/dev" and m.type in ("tmpfs", "devtmpfs", "bind")


def _served_by_gofer(m: MountSpec) -> bool:
    return m.type == "bind" and not _is_dev(m)


def gofer_attaches(mounts: Sequence[MountSpec]) -> list[tuple[str, str, bool]]:
    """What the Gofer serves besides the root: (aname, host path, writable)."""
    return [(_aname(i), m.source, not m.readonly) for i, m in enumerate(mounts)
            if _served_by_gofer(m)]


def spawn(root_dir: str, mounts: Sequence[MountSpec] = (), *,
          writable: bool = False, late: bool = False) -> PendingGofer:
    """Start the Gofer for ``root_dir`` (read-only unless ``writable``: a root
    without the in-memory overlay) and the bind sources of ``mounts`` early
    (main thread): its Python starts while the Sentry boots; :func:`build`
    connects to it.  ``late``: a pod's sandbox, whose Gofer later serves the
    pod's other containers' trees too (gofer/late.py)."""
    return spawn_gofer(root_dir, readonly=not writable, stderr=_debug_log_fd(),
                       attach=gofer_attaches(mounts), late=late)


def _make_mountpoint(ctx: FsContext, dest: str, is_file: bool) -> None:
    """Create ``dest`` (and its parents) when missing: a file for a file bind,
    a directory otherwise.  Resolution is the sandbox's own: a symlink on the
    way stays inside the sandbox's root."""
    path = b""
    parts = [p for p in os.fsencode(dest).split(b"/") if p]
    for i, name in enumerate(parts):
        path += b"/" + name
        try:
            vfs.stat(ctx, None, path)
            continue
        except SyscallError as exc:
            if exc.errno != errno.ENOENT:
                raise
        if is_file and i == len(parts) - 1:
            vfs.open(ctx, None, path, os.O_WRONLY | vfs.O_CREAT, 0o644, 0).release()
        else:
            _ensure_dir(ctx, path)


def _filesystem(m: MountSpec, i: int, client: GoferClient, lower: GoferFs,
                kernel: Any, prefix: str = "") -> Filesystem | None:
    """A new filesystem instance for ``m`` (None: devpts, mounted by its own helper)."""
    if _is_dev(m):  # the device nodes, /dev/ptmx a link to the devpts next to it
        return DevFs(name="tmpfs" if m.type == "tmpfs" else "devtmpfs", ptmx_link=True,
                     mode=0o755 if m.mode is None else m.mode)
    if m.type == "bind":
        return GoferFs(client, client.attach(prefix + _aname(i)), cache=lower.cache,
                       source=m.source,
                       readonly=m.readonly, root_path=m.source)
    if m.type == "mqueue":  # the IPC namespace's own queues (mq_open's)
        return kernel.ipc.mqueue
    if m.type in ("tmpfs", "devtmpfs"):
        return TmpFs(mode=0o1777 if m.mode is None else m.mode, uid=m.uid, gid=m.gid,
                     source=m.source or m.type, size_limit=m.size)
    if m.type == "proc":
        from sentry.procfs import ProcFilesystem  # above the kernel, wired here

        return ProcFilesystem(kernel)
    if m.type == "sysfs":
        return SysFs()
    if m.type in ("cgroup", "cgroup2"):
        return CgroupFs(m.type)
    if m.type == "devpts":
        return None
    raise MountError(f"mount {m.destination}: unsupported type {m.type!r}")


def _mount_all(ns: MountNamespace, mounts: Sequence[MountSpec], client: GoferClient,
               lower: GoferFs, kernel: Any, shm: Mount | None,
               prefix: str = "") -> list[GoferFs]:
    """Mount ``mounts`` in order (so /proc/self/mountinfo lists them in the
    config's order, as runc's mounts are); returns the bind filesystems.
    ``prefix``: of the binds' anames (a pod member's, sentry/oci/pod_sentry.py)."""
    binds: list[GoferFs] = []
    for i, m in enumerate(mounts):
        ctx = FsContext.for_namespace(ns)
        try:
            fs = _filesystem(m, i, client, lower, kernel, prefix)
            if isinstance(fs, GoferFs):
                binds.append(fs)
            if m.destination == "/dev/shm" and shm is not None:
                ns.umount(shm.root)  # the default /dev's shm: replaced, not stacked
                shm = None
            _make_mountpoint(ctx, m.destination, m.type == "bind" and m.file)
            at = resolve(ctx, os.fsencode(m.destination), follow=True)
            if fs is None:  # devpts: the one at /dev/pts is what /dev/ptmx opens
                from sentry.tty.devpts import mount_devpts

                mount_devpts(ns, at, options=m.options or None,
                             make_default=m.destination == "/dev/pts")
                continue
            # A bind shows "none" as its source, as gVisor's gofer mounts do: the
            # host path is not the application's business (mountinfo's root
            # field names it, as Linux's does).
            source = "none" if m.type == "bind" else (m.source or m.type)
            ns.mount(fs, at, source, m.options or None, m.readonly)
        except SyscallError as exc:
            raise MountError(f"mount {m.destination} ({m.type}): "
                             f"{os.strerror(exc.errno)}") from None
    return binds


def _mount_defaults(ns: MountNamespace, mounts: Sequence[MountSpec],
                    kernel: Any) -> Mount | None:
    """What every sandbox has unless the config mounts it itself: devtmpfs at
    /dev (tmpfs at /dev/shm, devpts at /dev/pts) and procfs at /proc, mounted
    before the config's own mounts (which may go below them).  Returns the
    default /dev/shm mount, if made."""
    from sentry.procfs import ProcFilesystem  # above the kernel, wired here
    from sentry.tty.devpts import mount_devpts  # above the kernel, like procfs

    ctx = FsContext.for_namespace(ns)
    shm = None
    if not any(_is_dev(m) for m in mounts):
        _ensure_dir(ctx, b"/dev")
        _dev, shm = mount_devfs(ns, resolve(ctx, b"/dev"))
        if not any(m.destination == "/dev/pts" for m in mounts):
            mount_devpts(ns, resolve(ctx, b"/dev/pts"))
    if not any(m.destination == "/proc" for m in mounts):
        _ensure_dir(ctx, b"/proc")
        ns.mount(ProcFilesystem(kernel), resolve(ctx, b"/proc"), "proc")
    return shm


def _mount_missing_devpts(ns: MountNamespace, mounts: Sequence[MountSpec]) -> None:
    """A config that mounts /dev but no devpts still gets one at /dev/pts
    (terminals need it; /dev/ptmx links there)."""
    if any(_is_dev(m) for m in mounts) and not any(
            m.destination == "/dev/pts" for m in mounts):
        from sentry.tty.devpts import mount_devpts

        ctx = FsContext.for_namespace(ns)
        _ensure_dir(ctx, b"/dev/pts")
        mount_devpts(ns, resolve(ctx, b"/dev/pts"))


def _make_devices(ns: MountNamespace, devices: Sequence[tuple[str, int, int, int, int]],
                  ) -> None:
    """OCI linux.devices: each node made at its path (in the Sentry's /dev),
    as runc makes them; an existing file there is replaced.  Opening one
    reaches a driver only if the Sentry has one for its number."""
    ctx = FsContext.for_namespace(ns)
    for path, mode, rdev, uid, gid in devices:
        p = os.fsencode(path)
        try:
            _make_mountpoint(ctx, os.path.dirname(path), False)
            with contextlib.suppress(SyscallError):
                vfs.unlink(ctx, None, p)
            vfs.mknod(ctx, None, p, mode, rdev, umask=0)
            if uid or gid:
                vfs.chown(ctx, None, p, uid, gid)
        except SyscallError as exc:
            raise MountError(f"linux.devices {path}: {os.strerror(exc.errno)}") from None


def build(pending: PendingGofer, root_dir: str, kernel: Any, *, cwd: str | None,
          mounts: Sequence[MountSpec] = (), root_readonly: bool = False,
          overlay: bool = True,
          devices: Sequence[tuple[str, int, int, int, int]] = (),
          linux_paths: tuple[Sequence[str], Sequence[str]] = ((), ())) -> RootFs:
    """Connect to the Gofer and assemble the mount tree (main thread).
    ``overlay``: the root under an in-memory overlay (else the Gofer's tree
    itself, written through, as :func:`spawn` was told).  MountError (one
    line) when a mount cannot be made."""
    client, gofer = pending.connect()
    try:
        lower = GoferFs(client, client.root, source=root_dir, readonly=overlay)
        ns = (MountNamespace(OverlayFs(lower), source="overlay") if overlay
              else MountNamespace(lower, source="none"))
        shm = _mount_defaults(ns, mounts, kernel)
        binds = _mount_all(ns, mounts, client, lower, kernel, shm)
        _mount_missing_devpts(ns, mounts)
        _make_devices(ns, devices)
        maskpaths.apply(ns, *linux_paths)
        _ensure_dir(FsContext.for_namespace(ns), b"/tmp")  # programs expect one
        if root_readonly:
            ns.root_mount.readonly = True
        ctx = FsContext.for_namespace(ns)
        if cwd is not None:
            try:
                vfs.chdir(ctx, None, os.fsencode(cwd))
            except SyscallError as exc:
                raise SyscallError(exc.errno) from None
        return RootFs(ns, ctx, client, gofer, lower, binds)
    except BaseException:
        client.close()
        gofer.kill()
        raise


def build_member(client: GoferClient, kernel: Any, cache_of: GoferFs, *, prefix: str,
                 root_dir: str, mounts: Sequence[MountSpec], root_readonly: bool,
                 devices: Sequence[tuple[str, int, int, int, int]] = (),
                 linux_paths: tuple[Sequence[str], Sequence[str]] = ((), ()),
                 ) -> tuple[MountNamespace, list[GoferFs]]:
    """The mount namespace of a pod's later container (sentry/oci/pod_sentry.py):
    its root is the Gofer's tree ``prefix`` (sent late, gofer/late.py) written
    through, its binds ``prefix`` + "m<N>", the rest as :func:`build` does.
    Returns the namespace and every GoferFs in it (the caller closes them)."""
    lower = GoferFs(client, client.attach(prefix), cache=cache_of.cache, source=root_dir,
                    readonly=False)
    made = [lower]
    try:
        ns = MountNamespace(lower, source="none")
        shm = _mount_defaults(ns, mounts, kernel)
        made += _mount_all(ns, mounts, client, lower, kernel, shm, prefix)
        _mount_missing_devpts(ns, mounts)
        _make_devices(ns, devices)
        maskpaths.apply(ns, *linux_paths)
        _ensure_dir(FsContext.for_namespace(ns), b"/tmp")
        if root_readonly:
            ns.root_mount.readonly = True
        return ns, made
    except BaseException:
        for fs in made:
            with contextlib.suppress(SyscallError):
                fs.close()
        raise


def _open_exec(ctx: FsContext, path: bytes) -> Any:
    """execve's open of a program or its interpreter (Linux's open_exec): a
    regular file (anything else is EACCES) that the caller may execute:
    MAY_EXEC, not MAY_READ, so a mode 0711 program runs for everyone."""
    with TREE_LOCK:
        d = resolve(ctx, path, follow=True)
        inode = d.inode
        if not inode.is_reg():
            raise SyscallError(errno.EACCES)
        ctx.check(d, MAY_EXEC)
    desc = inode.open(os.O_RDONLY)
    desc.dentry = d
    return desc


def read_executable(ctx: FsContext, path: bytes, found: list[Any] | None = None,
                    cache: Any = None) -> bytes:
    """The bytes of an executable, through the VFS, with execve's errors; its
    dentry is appended to ``found`` (what /proc/<pid>/exe shows). ``cache``
    (sentry/mm/image_cache.py) keeps the bytes of files stat shows unchanged."""
    desc = _open_exec(ctx, path)
    if found is not None:
        found.append(getattr(desc, "dentry", None))
    try:
        mount = getattr(getattr(desc, "dentry", None), "mount", None)
        if mount is not None and mount.noexec:
            raise SyscallError(errno.EACCES)
        st = desc.stat()
        if not _stat.S_ISREG(st.mode):
            raise SyscallError(errno.EACCES)
        if not st.mode & 0o111:
            raise SyscallError(errno.EACCES)
        iflags.check_not_written(getattr(desc, "inode", None))
        key = (st.dev, st.ino, st.size, st.mtime_ns, st.ctime_ns)
        data = cache.file_bytes(key) if cache is not None else None
        if data is not None:
            return data
        chunks = []
        off = 0
        while True:
            chunk = desc.pread(max(st.size - off, 1 << 16), off)
            if not chunk:
                break
            chunks.append(chunk)
            off += len(chunk)
            if off == st.size:  # all of it: no read just to see the end
                break
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        if cache is not None and off == st.size:
            cache.keep_file(key, data)
        return data
    finally:
        desc.release()
