"""unshare(2) and setns(2) over the namespaces sentry/kernel/namespaces.py models.

Facts about Linux that shape this module (kernel/fork.c ksys_unshare,
kernel/nsproxy.c setns):

* unshare takes CLONE_FILES, CLONE_FS, CLONE_SYSVSEM, CLONE_THREAD,
  CLONE_SIGHAND, CLONE_VM and the CLONE_NEW* flags; any other bit is EINVAL.
  CLONE_NEWUSER implies CLONE_THREAD and CLONE_FS, CLONE_NEWNS implies
  CLONE_FS; CLONE_THREAD, CLONE_SIGHAND and CLONE_VM are EINVAL in a process
  with more than one thread.  Then EPERM without CAP_SYS_ADMIN for a new
  namespace.  Unsharing CLONE_FS or CLONE_FILES copies the cwd/root or the
  descriptor table only when another process shares it.
* setns takes a /proc/PID/ns/* file (``nstype`` 0 or that file's kind) or a
  pidfd (``nstype`` a non-empty set of CLONE_NEW* kinds); anything else is
  EINVAL, a bad descriptor EBADF.  Joining needs CAP_SYS_ADMIN (EPERM).
  Joining a mount namespace moves the root and cwd to its root; joining a
  user namespace needs a single-threaded caller and another namespace than
  its own (EINVAL).
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING, Any

from sentry.kernel import namespaces as N
from sentry.kernel import pidns
from sentry.kernel.creds import CAP_SYS_ADMIN
from sentry.kernel.errors import SyscallError
from sentry.procfs.nsfs import NsInode, capture
from sentry.vfs.description import dentry_of
from sentry.vfs.mount import follow_mounts
from shm import records
from syscalls.abi import s32
from syscalls.pidfd import PidFd
from syscalls.table import Entry, partial

if TYPE_CHECKING:
    from sentry.kernel.task import Task
    from sentry.kernel.threadgroup import ThreadGroup

Args = tuple[int, ...]

CLONE_VM, CLONE_FS, CLONE_FILES, CLONE_SIGHAND = 0x100, 0x200, 0x400, 0x800
CLONE_THREAD, CLONE_SYSVSEM = 0x10000, 0x40000
UNSHARE_FLAGS = (CLONE_THREAD | CLONE_FS | CLONE_SIGHAND | CLONE_VM | CLONE_FILES
                 | CLONE_SYSVSEM | N.ALL)
KIND_FLAGS = {b"mnt": N.CLONE_NEWNS, b"uts": N.CLONE_NEWUTS, b"ipc": N.CLONE_NEWIPC,
              b"user": N.CLONE_NEWUSER, b"cgroup": N.CLONE_NEWCGROUP,
              b"pid": N.CLONE_NEWPID, b"pid_for_children": N.CLONE_NEWPID,
              b"net": N.CLONE_NEWNET, b"time": N.CLONE_NEWTIME,
              b"time_for_children": N.CLONE_NEWTIME}


def _shared(t: Task, attr: str) -> bool:
    """Whether another process shares the caller's ``attr`` (fs or fds)."""
    mine = getattr(t.tg, attr)
    with t.kernel.lock:
        return any(getattr(g, attr) is mine for g in t.kernel.thread_groups.values()
                   if g is not t.tg and not g.zombie)


def _check_copy_fits(t: Task) -> None:
    """dup_fd()'s limit: EMFILE when the copy's table, sized in 64-fd words
    up to the highest open fd, would be bigger than fs.nr_open allows."""
    fds = t.tg.fds.fds()
    words = lambda n: (n + 63) // 64  # noqa: E731
    if fds and words(max(fds) + 1) > words(t.kernel.sysctl.nr_open):
        raise SyscallError(errno.EMFILE)


def unshare_files(t: Task) -> None:
    """Give the caller's process its own copy of a shared descriptor table
    (unshare(CLONE_FILES), close_range(CLOSE_RANGE_UNSHARE))."""
    tg = t.tg
    if tg.fds is not None and _shared(t, "fds"):
        _check_copy_fits(t)
        tg.fds = tg.fds.fork()


def unshare(t: Task, a: Args) -> int:
    """unshare(2)."""
    flags = a[0] & 0xFFFFFFFF
    if flags & ~UNSHARE_FLAGS or a[0] >> 32:
        raise SyscallError(errno.EINVAL)
    if flags & N.CLONE_NEWUSER:
        flags |= CLONE_THREAD | CLONE_FS
    if flags & N.CLONE_NEWNS:
        flags |= CLONE_FS
    if flags & (CLONE_THREAD | CLONE_SIGHAND | CLONE_VM) and len(t.tg.live_tasks()) > 1:
        raise SyscallError(errno.EINVAL)
    N.check_new(t, flags)
    tg = t.tg
    if flags & CLONE_FILES:
        unshare_files(t)
    if flags & N.CLONE_NEWNS and tg.fs is not None:
        tg.fs = N.new_mount_ns(tg.fs)
    elif flags & CLONE_FS and tg.fs is not None and _shared(t, "fs"):
        tg.fs = tg.fs.fork()
    if flags & N.MODELLED & ~N.CLONE_NEWNS:
        tg.namespaces = N.new_set(t, N.nsset(tg), flags)
    return 0


def _join(t: Task, kind: bytes, target: Any) -> None:
    """Move the caller into ``target``, a namespace of ``kind`` (None: the first)."""
    tg: ThreadGroup = t.tg
    s = N.nsset(tg)
    if kind == b"mnt":
        if target is None:
            raise SyscallError(errno.EINVAL)
        if _shared(t, "fs"):
            raise SyscallError(errno.EINVAL)
        c = tg.fs.fork()
        c.ns = target
        c.root = c.cwd = follow_mounts(target.root)
        tg.fs = c
        return
    if kind == b"user":
        if len(tg.live_tasks()) > 1 or target is s.user:
            raise SyscallError(errno.EINVAL)
    if kind in (b"time", b"time_for_children"):
        # the caller moves at once (timens_install), alone in its process
        if len(tg.live_tasks()) > 1:
            raise SyscallError(errno.EUSERS)
        tg.namespaces = records.replace(s, time=target, time_children=None)
        if target is not None:
            target.enter()
        return
    if kind in (b"pid", b"pid_for_children"):
        # only where the caller's children go, to its own namespace or one below
        if not pidns.is_visible_from(target, pidns.active(tg)):
            raise SyscallError(errno.EINVAL)
        tg.namespaces = records.replace(s, pid_children=target)
        return
    fields = {"uts": s.uts, "ipc": s.ipc, "user": s.user, "cgroup": s.cgroup,
              "pid_children": s.pid_children, "time": s.time,
              "time_children": s.time_children}
    fields[kind.decode()] = target
    tg.namespaces = N.NsSet(**fields)


def setns(t: Task, a: Args) -> int:
    """setns(2)."""
    nstype = s32(a[1])
    desc = t.fds.get(s32(a[0]))
    if isinstance(desc, PidFd):
        flags = nstype & 0xFFFFFFFF
        if not flags or flags & ~N.ALL:
            raise SyscallError(errno.EINVAL)
        if flags & N.NOT_MODELLED:
            raise SyscallError(errno.EINVAL)
        if not t.creds.capable(CAP_SYS_ADMIN):
            raise SyscallError(errno.EPERM)
        tg = desc.tg
        if tg.zombie:
            raise SyscallError(errno.ESRCH)
        for kind, flag in KIND_FLAGS.items():
            if flags & flag and kind in (b"mnt", b"uts", b"ipc", b"user", b"cgroup", b"pid",
                                         b"time"):
                target = capture(tg, kind)
                if kind == b"user" and target is N.nsset(t.tg).user:
                    continue
                _join(t, kind, target)
        return 0
    d = dentry_of(desc)
    inode = d.inode if d is not None else None
    if not isinstance(inode, NsInode):
        raise SyscallError(errno.EINVAL)
    if nstype and nstype != KIND_FLAGS[inode.kind]:
        raise SyscallError(errno.EINVAL)
    if not t.creds.capable(CAP_SYS_ADMIN):
        raise SyscallError(errno.EPERM)
    if inode.kind not in (b"mnt", b"uts", b"ipc", b"user", b"cgroup", b"pid",
                          b"pid_for_children", b"time", b"time_for_children"):
        return 0  # net: there is only the one, which the caller is in
    _join(t, inode.kind, inode.target)
    return 0


ENTRIES: list[Entry] = [
    partial("unshare", unshare, note="mount, UTS, IPC, cgroup, pid, time, user (root "
            "only, maps recorded not applied) namespaces; net namespaces EINVAL"),
    partial("setns", setns, note="/proc/PID/ns files and pidfds; mount, UTS, IPC, cgroup, "
            "pid (for children), time, user namespaces"),
]
