"""The namespaces a process belongs to, and making new ones (clone, unshare,
setns).

What is modelled (namespaces(7)):

* **mount**: the process's ``FsContext.ns``; a new one is a copy of every
  mount (sentry/vfs/mountns.py), root and cwd kept at the same places.
* **UTS**: host and domain name per namespace (uname, sethostname,
  /proc/sys/kernel/hostname read the caller's).  The sandbox's first one is
  ``Kernel.uts``.
* **IPC**: System V objects and POSIX message queues per namespace
  (sentry/kernel/ipc ``IpcNamespace``).  The first one is ``Kernel.ipc``.
* **cgroup**: a new identity only; the view (/proc/self/cgroup shows "/") is
  already a namespace root's.
* **user**: for a caller with CAP_SYS_ADMIN only, a new identity whose
  uid_map and gid_map take one write each and are shown back; ids and
  capabilities are not translated (the caller is root in the sandbox
  already, and the maps it writes are recorded, not applied).
* **pid**: sentry/kernel/pidns.py (a process's ids at each level, the
  namespace's init and its death); ``NsSet.pid_children`` is where
  unshare(CLONE_NEWPID) sends the caller's next children.
* **time**: sentry/kernel/timens.py (the clock offsets); ``NsSet.time`` is
  the process's, ``NsSet.time_children`` its next children's.
* **net**: not modelled; asking for a new one is EINVAL, the answer of a
  kernel built without it.

A process's set is ``ThreadGroup.namespaces`` (None: every first namespace of
the sandbox), inherited by fork; each namespace gets an inode number the
first time one is asked for, and /proc/PID/ns/* shows it as Linux does
("mnt:[4026531840]").
"""

from __future__ import annotations

import errno
import itertools
import threading
import weakref
from typing import TYPE_CHECKING, Any

from sentry.kernel import pidns, timens
from sentry.kernel.creds import CAP_SYS_ADMIN
from sentry.kernel.errors import SyscallError
from sentry.kernel.ipc import IpcNamespace
from sentry.vfs import mountns
from shm import records
from shm.records import record

if TYPE_CHECKING:
    from sentry.kernel.kernel import Utsname
    from sentry.kernel.task import Task
    from sentry.kernel.threadgroup import ThreadGroup

CLONE_NEWTIME = 0x00000080
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
MODELLED = (CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER
            | CLONE_NEWPID | CLONE_NEWTIME)
NOT_MODELLED = CLONE_NEWNET
ALL = MODELLED | NOT_MODELLED

# /proc/PID/ns names, each with its CLONE_NEW* flag and Linux's first inode number.
KINDS: dict[bytes, tuple[int, int]] = {
    b"cgroup": (CLONE_NEWCGROUP, 4026531835), b"ipc": (CLONE_NEWIPC, 4026531839),
    b"mnt": (CLONE_NEWNS, 4026531840), b"net": (0, 4026531992),
    b"pid": (0, 4026531836), b"pid_for_children": (0, 4026531836),
    b"time": (0, 4026531834), b"time_for_children": (0, 4026531834),
    b"user": (CLONE_NEWUSER, 4026531837), b"uts": (CLONE_NEWUTS, 4026531838),
}


class UtsNamespace:
    """A UTS namespace other than the sandbox's first (which is ``Kernel.uts``)."""

    def __init__(self, uts: Utsname) -> None:
        self.uts = uts


class UserNamespace:
    """A user namespace made by unshare/clone: its maps, each written once."""

    def __init__(self, parent: UserNamespace | None, owner_uid: int = 0) -> None:
        self.parent = parent
        self.owner_uid = owner_uid  # the creator's euid (NS_GET_OWNER_UID)
        self.maps: dict[str, bytes] = {}
        self.lock = threading.Lock()

    def write_map(self, kind: str, data: bytes) -> None:
        """uid_map/gid_map: one write, of lines "inside outside count" (EPERM
        once written, EINVAL when malformed, as Linux)."""
        rows = []
        for line in data.decode("ascii", "replace").splitlines():
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 3 or not all(p.isdigit() for p in parts):
                raise SyscallError(errno.EINVAL)
            first, lower, count = (int(p) for p in parts)
            if count == 0 or first + count > 1 << 32 or lower + count > 1 << 32:
                raise SyscallError(errno.EINVAL)
            rows.append((first, lower, count))
        if not rows or len(rows) > 340:
            raise SyscallError(errno.EINVAL)
        with self.lock:
            if kind in self.maps:
                raise SyscallError(errno.EPERM)
            self.maps[kind] = b"".join(b"%10d %10d %10d\n" % r for r in rows)


class CgroupNamespace:
    """A cgroup namespace: an identity (the view is the container's root)."""


@record(eq=False, slots=True)
class NsSet:
    """One process's namespaces; None in a field: the sandbox's first one."""

    uts: UtsNamespace | None = None
    ipc: IpcNamespace | None = None
    user: UserNamespace | None = None
    cgroup: CgroupNamespace | None = None
    pid_children: Any = None  # unshare(CLONE_NEWPID)/setns: children's pid namespace
    time: Any = None  # sentry/kernel/timens.py TimeNamespace
    time_children: Any = None  # unshare(CLONE_NEWTIME): children's time namespace


_ids: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()
_next_id = itertools.count(4026532200)
_ids_lock = threading.Lock()


def nsset(tg: ThreadGroup) -> NsSet:
    return getattr(tg, "namespaces", None) or _ROOT


_ROOT = NsSet()


def uts_of(t: Task) -> Utsname:
    """The caller's host and domain names (uname)."""
    u = nsset(t.tg).uts
    return t.kernel.uts if u is None else u.uts


def set_uts(t: Task, **fields: str) -> None:
    """sethostname/setdomainname in the caller's UTS namespace."""
    u = nsset(t.tg).uts
    if u is None:
        t.kernel.uts = records.replace(t.kernel.uts, **fields)
    else:
        u.uts = records.replace(u.uts, **fields)


def ipc_of(t: Task) -> IpcNamespace:
    """The caller's System V and POSIX message queue namespace."""
    i = nsset(t.tg).ipc
    return t.kernel.ipc if i is None else i


def inode_number(tg: ThreadGroup, kind: bytes) -> int:
    """The inode number /proc/PID/ns/<kind> shows for ``tg``."""
    flag, first = KINDS[kind]
    obj: Any = None
    s = nsset(tg)
    if flag == CLONE_NEWNS:
        fs = tg.fs
        obj = getattr(fs, "ns", None)
        if obj is not None and not getattr(obj, "copied", False):
            return first
    elif flag == CLONE_NEWUTS:
        obj = s.uts
    elif flag == CLONE_NEWIPC:
        obj = s.ipc
    elif flag == CLONE_NEWUSER:
        obj = s.user
    elif flag == CLONE_NEWCGROUP:
        obj = s.cgroup
    elif kind == b"pid":
        obj = pidns.active(tg)
    elif kind == b"pid_for_children":
        obj = pidns.for_children(tg)
    elif kind == b"time":
        obj = timens.active(tg)
    elif kind == b"time_for_children":
        obj = timens.for_children(tg)
    return number_of(kind.split(b"_")[0], obj)


def number_of(kind: bytes, obj: Any) -> int:
    """The inode number of namespace ``obj`` of ``kind`` (None: the first)."""
    if obj is None:
        return KINDS[kind][1]
    with _ids_lock:
        n = _ids.get(obj)
        if n is None:
            n = _ids[obj] = next(_next_id)
        return n


# The user namespace that owns each namespace made here (absent: the first).
_owners: weakref.WeakKeyDictionary[Any, UserNamespace] = weakref.WeakKeyDictionary()


def owner_of(obj: Any) -> UserNamespace | None:
    """The user namespace owning ``obj`` (None: the sandbox's first), as
    NS_GET_USERNS answers; a user namespace's owner is its parent."""
    if isinstance(obj, UserNamespace):
        return obj.parent
    return None if obj is None else _owners.get(obj)


def check_new(t: Task, flags: int) -> None:
    """EPERM without CAP_SYS_ADMIN, then EINVAL for a namespace kind not
    modelled: Linux's order (copy_namespaces and unshare_nsproxy_namespaces
    check the capability before making any namespace, and a kernel built
    without a kind says EINVAL only then)."""
    if flags & ALL and not t.creds.capable(CAP_SYS_ADMIN):
        raise SyscallError(errno.EPERM)
    if flags & NOT_MODELLED:
        raise SyscallError(errno.EINVAL)


def check_clone(t: Task, flags: int) -> None:
    """clone's namespace rules: CLONE_NEWNS or CLONE_NEWUSER with CLONE_FS,
    CLONE_NEWIPC with CLONE_SYSVSEM, are EINVAL; then :func:`check_new`."""
    if flags & (CLONE_NEWNS | CLONE_NEWUSER) and flags & 0x200:
        raise SyscallError(errno.EINVAL)
    if flags & CLONE_NEWIPC and flags & 0x40000:
        raise SyscallError(errno.EINVAL)
    check_new(t, flags)


def new_set(t: Task, old: NsSet, flags: int) -> NsSet:
    """The set a process gets with ``flags`` (mount namespaces aside)."""
    s = NsSet(uts=old.uts, ipc=old.ipc, user=old.user, cgroup=old.cgroup,
              pid_children=old.pid_children, time=old.time, time_children=old.time_children)
    if flags & CLONE_NEWUTS:
        s.uts = UtsNamespace(uts_of(t))
    if flags & CLONE_NEWIPC:
        s.ipc = IpcNamespace()
    if flags & CLONE_NEWUSER:
        s.user = UserNamespace(old.user, t.creds.euid)
    if flags & CLONE_NEWCGROUP:
        s.cgroup = CgroupNamespace()
    if flags & CLONE_NEWTIME:
        s.time_children = timens.new_from(t.tg, s.user)
    if flags & CLONE_NEWPID:
        pidns.check_unshared(t.tg)
        s.pid_children = pidns.new_child_ns(pidns.active(t.tg), s.user)
    for obj, was in ((s.uts, old.uts), (s.ipc, old.ipc), (s.cgroup, old.cgroup)):
        if obj is not was and s.user is not None:  # made now: the caller's user ns owns it
            _owners[obj] = s.user
    return s


def settle_child(tg: ThreadGroup) -> None:
    """A new process (its set copied from its parent's, new namespaces made):
    its children go to its own pid namespace, whatever its parent's
    unshare(CLONE_NEWPID) chose; it runs in the time namespace its parent's
    children go to, which it enters (its offsets fixed from now on)."""
    s = nsset(tg)
    time_ns = s.time_children if s.time_children is not None else s.time
    if s.pid_children is not None or s.time_children is not None:
        tg.namespaces = records.replace(s, pid_children=None, time=time_ns,  # type: ignore[attr-defined]
                                        time_children=None)
    if time_ns is not None:
        time_ns.enter()


def new_mount_ns(fs: Any) -> Any:
    """A new FsContext on a copy of ``fs``'s mount namespace, at the same root and cwd."""
    c = fs.fork()
    if fs.ns is None:
        return c
    c.ns, mapping = mountns.copy_namespace(fs.ns)
    c.ns.copied = True
    c.root = mountns.translate(fs.root, mapping)
    c.cwd = mountns.translate(fs.cwd, mapping)
    return c


def apply_clone(parent: Task, tg: ThreadGroup, flags: int) -> None:
    """Give a new process (clone with CLONE_NEW* flags, already checked) its
    namespaces."""
    tg.namespaces = new_set(parent, nsset(parent.tg), flags)  # type: ignore[attr-defined]
    if flags & CLONE_NEWNS and tg.fs is not None:
        tg.fs = new_mount_ns(tg.fs)
