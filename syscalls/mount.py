"""mount(2), umount2(2) and pivot_root(2): the caller's mount namespace,
never the host's.

Facts about Linux that shape this module (fs/namespace.c):

* mount copies its type, source and data strings first (EFAULT), then
  resolves the target (ENOENT, ENOTDIR, ...), then checks CAP_SYS_ADMIN
  (EPERM); the magic 0xC0ED in the flags' high half is dropped.  Then, in
  this order: MS_REMOUNT|MS_BIND changes only the mount's flags; MS_REMOUNT
  its flags and options; MS_BIND makes a bind (MS_REC: with the mounts
  below); a propagation flag (exactly one, with only MS_REC or MS_SILENT
  beside it, else EINVAL) changes propagation; MS_MOVE moves a mount;
  otherwise a new filesystem of the named type (no type: EINVAL; unknown:
  ENODEV).  The remount, propagation and move forms need the target to be
  a mount's root (EINVAL).
* Types made here: tmpfs (and devtmpfs, a tmpfs), proc, sysfs, devpts,
  mqueue (the caller's IPC namespace's queues), cgroup (v1: an empty
  directory) and cgroup2 (the sandbox's v2 hierarchy, sentry/vfs/cgroupfs.py);
  and ext2/ext3/ext4 from a Sentry block device (syscalls/mount_disk.py: the
  image is parsed by sentry/vfs/ext2 in the Sentry).  Every other type is
  ENODEV: nothing reaches a host filesystem or a host device.
* umount2 takes MNT_FORCE, MNT_DETACH, MNT_EXPIRE and UMOUNT_NOFOLLOW (any
  other bit: EINVAL, before the path is looked up).  Without MNT_DETACH a
  mount with mounts below it, or an open file, a cwd or a root on it, is
  EBUSY; MNT_DETACH takes the mount and those below it out of the tree at
  once and leaves open files working.  MNT_EXPIRE marks first (EAGAIN) and
  unmounts on the second call; with MNT_FORCE or MNT_DETACH it is EINVAL.
* pivot_root checks CAP_SYS_ADMIN first, then EINVAL/EBUSY per
  sentry/vfs/mountns.py :func:`pivot`; processes whose root or cwd was the
  old root move to the new one.
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING, Any

from sentry.kernel import namespaces
from sentry.kernel.creds import CAP_SYS_ADMIN
from sentry.kernel.errors import SyscallError
from sentry.procfs import ProcFilesystem
from sentry.tty.devpts import mount_devpts
from sentry.vfs import mountns as M
from sentry.vfs import notify
from sentry.vfs.cgroupfs import Cgroup2Fs
from sentry.vfs.dentry import TREE_LOCK, Dentry
from sentry.vfs.description import dentry_of
from sentry.vfs.mount import Mount, follow_mounts
from sentry.vfs.resolve import resolve
from sentry.vfs.sysfs import CgroupFs, SysFs
from sentry.vfs.tmpfs import TmpFs
from syscalls.mount_disk import DISK_TYPES, disk_fs
from syscalls.path import ctx_of, path_arg
from syscalls.table import Entry, partial

if TYPE_CHECKING:
    from sentry.kernel.task import Task

Args = tuple[int, ...]

PAGE = 4096
MNT_FORCE, MNT_DETACH, MNT_EXPIRE, UMOUNT_NOFOLLOW = 1, 2, 4, 8
TYPES = ("tmpfs", "devtmpfs", "proc", "sysfs", "devpts", "mqueue", "cgroup", "cgroup2")
_SUFFIX = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def _string(t: Task, addr: int) -> str | None:
    """A mount string argument (type, source): None for NULL, EFAULT as Linux."""
    if not addr:
        return None
    try:
        raw = t.mm.read_cstring(addr, PAGE)
    except SyscallError as exc:
        raise SyscallError(errno.EINVAL if exc.errno == errno.ENAMETOOLONG else exc.errno) \
            from None
    return raw.decode("utf-8", "surrogateescape")


def _data(t: Task, addr: int) -> str:
    """The data page: at most a page, cut at the first NUL (EFAULT only when
    its first byte cannot be read, as copy_mount_options)."""
    if not addr:
        return ""
    try:
        raw = t.mm.read_cstring(addr, PAGE)
    except SyscallError as exc:
        if exc.errno != errno.ENAMETOOLONG:
            first = t.mm.copy_in(addr, 1)  # EFAULT when not even one byte reads
            raw = first.split(b"\0", 1)[0] if first else b""
        else:
            raw = t.mm.copy_in(addr, PAGE - 1)
    return raw.decode("utf-8", "surrogateescape")


def _size(value: str) -> int:
    v = value.strip().lower()
    mult = 1
    if v and v[-1] in _SUFFIX:
        mult, v = _SUFFIX[v[-1]], v[:-1]
    if v.endswith("%") or not v.isdigit():
        raise SyscallError(errno.EINVAL)
    return int(v) * mult


def _tmpfs(source: str, data: str) -> Any:
    """A tmpfs from mount's data: size=, nr_inodes=, mode=, uid=, gid= (others EINVAL)."""
    kw: dict[str, Any] = {}
    for opt in filter(None, data.split(",")):
        key, _, val = opt.partition("=")
        try:
            if key == "size":
                kw["size_limit"] = _size(val) or None
            elif key == "mode":
                kw["mode"] = int(val, 8) & 0o7777
            elif key in ("uid", "gid"):
                kw[key] = int(val)
            elif key in ("nr_inodes", "huge", "mpol", "inode64", "inode32"):
                pass
            else:
                raise SyscallError(errno.EINVAL)
        except ValueError:
            raise SyscallError(errno.EINVAL) from None
    return TmpFs(source=source, **kw)


def _new_fs(t: Task, fstype: str, source: str, data: str) -> Any:
    if fstype in ("tmpfs", "devtmpfs"):
        return _tmpfs(source, data)
    if fstype == "proc":
        return ProcFilesystem(t.kernel)
    if fstype == "sysfs":
        return SysFs()
    if fstype == "cgroup2":
        return Cgroup2Fs(t.kernel)
    if fstype == "cgroup":
        return CgroupFs(fstype)
    if fstype == "mqueue":
        return namespaces.ipc_of(t).mqueue
    raise SyscallError(errno.ENODEV)


def _mount_root(d: Dentry) -> Mount:
    if d is not d.mount.root:
        raise SyscallError(errno.EINVAL)
    return d.mount


def _new_mount(t: Task, ns: Any, at: Dentry, fstype: str | None, source: str | None,
               flags: int, data: str) -> None:
    if not fstype:
        raise SyscallError(errno.EINVAL)
    if fstype not in TYPES and fstype not in DISK_TYPES:
        raise SyscallError(errno.ENODEV)
    src = source if source else "none"
    opts = M.flag_options(flags)
    ro = bool(flags & M.MS_RDONLY)
    if fstype in DISK_TYPES:
        M.attach(ns, disk_fs(t, ctx_of(t), fstype, source, ro), at, source=src,
                 options=opts, readonly=ro)
        return
    if fstype == "devpts":
        m = mount_devpts(ns, at, options=opts, make_default=False)
        m.readonly = ro
        return
    fs = _new_fs(t, fstype, src, data)
    fixed = set(fs.options().split(","))  # proc says nosuid,nodev,noexec itself
    opts = ",".join(o for o in opts.split(",") if o and o not in fixed)
    M.attach(ns, fs, at, source=src, options=opts, readonly=ro)


_ATIME_FLAGS = M.MS_NOATIME | M.MS_NODIRATIME | M.MS_RELATIME | M.MS_STRICTATIME
_ATIME_NAMES = ("noatime", "nodiratime", "relatime", "strictatime")


def _remount_options(old: str | None, flags: int) -> str:
    """A remount's per-mount options: those ``flags`` ask for, but the atime
    ones kept as they were when ``flags`` names none (Linux's rule)."""
    if flags & _ATIME_FLAGS:
        return M.flag_options(flags)
    kept = [o for o in (old or "").split(",") if o in _ATIME_NAMES]
    new = [o for o in M.flag_options(flags | M.MS_NOATIME).split(",") if o not in _ATIME_NAMES]
    return ",".join(new + kept)


def mount(t: Task, a: Args) -> int:
    """mount(2)."""
    flags = a[3]
    if flags & M.MS_MGC_MSK == M.MS_MGC_VAL:
        flags &= ~M.MS_MGC_MSK & 0xFFFFFFFF
    fstype = _string(t, a[2])
    source = _string(t, a[0])
    data = _data(t, a[4])
    ctx = ctx_of(t)
    target = path_arg(t, a[1])
    with TREE_LOCK:
        d = resolve(ctx, target, follow=True)
        if d.inode.is_symlink():
            # Only a magic link (/proc/PID/fd/N of an O_PATH|O_NOFOLLOW
            # descriptor) ends on a symlink: Linux mounts nothing on one.
            raise SyscallError(errno.ENOENT)
        if flags & M.MS_NOUSER:
            raise SyscallError(errno.EINVAL)
        if not t.creds.capable(CAP_SYS_ADMIN):
            raise SyscallError(errno.EPERM)
        ns = ctx.ns
        if ns is None:
            raise SyscallError(errno.EINVAL)
        if flags & M.MS_REMOUNT:
            m = _mount_root(d)
            m.readonly = bool(flags & M.MS_RDONLY)
            m._options = _remount_options(m._options, flags)
            return 0
        if flags & M.MS_BIND:
            if not source:
                raise SyscallError(errno.EINVAL)
            src = resolve(ctx, source.encode("utf-8", "surrogateescape"), follow=True)
            M.bind(ns, src, d, bool(flags & M.MS_REC))
            return 0
        if flags & M.PROPAGATION:
            kind = flags & ~(M.MS_REC | M.MS_SILENT)
            if kind not in (M.MS_SHARED, M.MS_PRIVATE, M.MS_SLAVE, M.MS_UNBINDABLE):
                raise SyscallError(errno.EINVAL)
            M.set_propagation(_mount_root(d), flags)
            return 0
        if flags & M.MS_MOVE:
            _move(ctx, source, d)
            return 0
        _new_mount(t, ns, d, fstype, source, flags, data)
    return 0


def _move(ctx: Any, source: str | None, at: Dentry) -> None:
    """MS_MOVE: the mount at ``source`` goes to ``at`` (ELOOP below itself)."""
    if not source:
        raise SyscallError(errno.EINVAL)
    m = _mount_root(resolve(ctx, source.encode("utf-8", "surrogateescape"), follow=True))
    if m.parent is None or m.mountpoint is None:
        raise SyscallError(errno.EINVAL)
    at = follow_mounts(at)
    cur: Mount | None = at.mount
    while cur is not None:
        if cur is m:
            raise SyscallError(errno.ELOOP)
        cur = cur.parent
    if at.inode.is_dir() != m.root.inode.is_dir():
        raise SyscallError(errno.ENOTDIR)
    M.detach(m)
    m.detached = False  # type: ignore[attr-defined]
    m.parent, m.mountpoint = at.mount, at
    at.mounted = m
    at.mount.children.append(m)


def _contexts(t: Task) -> list[Any]:
    """Every process's FsContext (each once)."""
    k = t.kernel
    with k.lock:
        seen: dict[int, Any] = {}
        for g in k.thread_groups.values():
            if g.fs is not None and not g.zombie:
                seen.setdefault(id(g.fs), g.fs)
        return list(seen.values())


def _busy(t: Task, m: Mount) -> bool:
    """Whether anything holds ``m``: an open file, a cwd or a root on it."""
    for ctx in _contexts(t):
        if ctx.cwd.mount is m or ctx.root.mount is m:
            return True
    k = t.kernel
    with k.lock:
        tables = {id(g.fds): g.fds for g in k.thread_groups.values()
                  if g.fds is not None and not g.zombie}
    for fds in tables.values():
        for fd in fds.fds():
            try:
                d = dentry_of(fds.get(fd))
            except SyscallError:
                continue
            if d is not None and d.mount is m:
                return True
    return False


def umount2(t: Task, a: Args) -> int:
    """umount2(2)."""
    flags = a[1] & 0xFFFFFFFF
    if flags & ~(MNT_FORCE | MNT_DETACH | MNT_EXPIRE | UMOUNT_NOFOLLOW):
        raise SyscallError(errno.EINVAL)
    ctx = ctx_of(t)
    target = path_arg(t, a[0])
    with TREE_LOCK:
        d = resolve(ctx, target, follow=not flags & UMOUNT_NOFOLLOW)
        if not t.creds.capable(CAP_SYS_ADMIN):
            raise SyscallError(errno.EPERM)
        m = _mount_root(d)
        if flags & MNT_EXPIRE and flags & (MNT_FORCE | MNT_DETACH):
            raise SyscallError(errno.EINVAL)
        if m.parent is None or m.mountpoint is None:
            raise SyscallError(errno.EINVAL if flags & MNT_DETACH else errno.EBUSY)
        if flags & MNT_DETACH:
            M.detach(m)
            _gone(ctx.ns, m)
            return 0
        if m.children or _busy(t, m):
            raise SyscallError(errno.EBUSY)
        if flags & MNT_EXPIRE:
            # The first call marks; the next unmounts if nothing used the
            # mount in between (this call's own lookup is its one crossing).
            uses = getattr(m, "crossings", 0)
            mark = getattr(m, "expiry_mark", None)
            if mark is None or uses != mark + 1:
                m.expiry_mark = uses  # type: ignore[attr-defined]
                raise SyscallError(errno.EAGAIN)
        M.detach(m)
        _gone(ctx.ns, m)
    return 0


def _gone(ns: Any, m: Mount) -> None:
    """After an unmount: when no mount of the namespace shows its filesystem
    any more, watches on its files hear IN_UNMOUNT (then lose their watch),
    and a disk filesystem lets its device go (a loop device's autoclear)."""
    if ns is None or any(o.fs is m.fs for o in ns.all_mounts()):
        return
    notify.unmounted(m.fs)
    release = getattr(m.fs, "release_device", None)
    if release is not None:
        release()


def pivot_root(t: Task, a: Args) -> int:
    """pivot_root(2)."""
    if not t.creds.capable(CAP_SYS_ADMIN):
        raise SyscallError(errno.EPERM)
    ctx = ctx_of(t)
    new_path, old_path = path_arg(t, a[0]), path_arg(t, a[1])
    with TREE_LOCK:
        new_root = resolve(ctx, new_path, follow=True, want_dir=True)
        put_old = resolve(ctx, old_path, follow=True, want_dir=True)
        ns = ctx.ns
        if ns is None:
            raise SyscallError(errno.EINVAL)
        old_root = ctx.root
        old_mnt = M.pivot(ns, old_root, new_root, put_old)
        for c in _contexts(t):
            if c.ns is not ns:
                continue
            if c.root is old_root:
                c.root = new_root
            if c.cwd is old_root:
                c.cwd = new_root
        del old_mnt
    return 0


ENTRIES: list[Entry] = [
    partial("mount", mount, note="tmpfs, proc, sysfs, devpts, mqueue, cgroup (v1 empty), "
            "cgroup2 (groups, cgroup.procs, no controllers), ext2 (also as ext3/ext4 when "
            "the image has ext2's features only) from a Sentry block device (RAM disk, loop), "
            "bind (MS_REC), remount, MS_MOVE, propagation recorded and shown (not "
            "propagated); other types ENODEV; nosymfollow, noexec and nodev enforced, nosuid "
            "for set-id bits, the atime flags only recorded (statfs f_flags, /proc/mounts)"),
    partial("umount2", umount2, note="MNT_DETACH, MNT_EXPIRE (a use in between undoes the "
            "mark), UMOUNT_NOFOLLOW, IN_UNMOUNT to watches; MNT_FORCE is a plain unmount "
            "(no filesystem here can be forced)"),
    partial("pivot_root", pivot_root, note="within the caller's mount namespace; Linux's "
            "EINVAL/EBUSY rules; shared mounts are EINVAL"),
]
