"""inotify: inotify_init, inotify_init1, inotify_add_watch, inotify_rm_watch,
and reading events (sentry/vfs/notify.py is where the VFS reports them).

Facts about Linux's inotify that shape this module:

* A watch is on an inode; adding one for an inode the instance already
  watches returns the same descriptor, its mask replaced (or OR'ed with
  IN_MASK_ADD; IN_MASK_CREATE makes that EEXIST). Watch descriptors count
  up from 1 per instance.
* Each event is ``struct inotify_event {int wd; u32 mask, cookie, len; char
  name[len]}``, the name NUL-padded to a multiple of 16. An event identical
  to the last one queued (same wd, mask, cookie, name) is merged into it. A
  queue past 16384 events ends with one IN_Q_OVERFLOW. So does an event
  that cannot be allocated (inotify_handle_inode_event: its events are
  GFP_KERNEL_ACCOUNT): here, one the Sentry's kernel-memory account
  (sentry/kmem.py) has no room for; 128 instances of 16384 named events
  are ~600 MiB per user.
* A watch removed (inotify_rm_watch, IN_ONESHOT after its event, its file
  gone) queues IN_IGNORED.
* read() with a buffer too small for the next event is EINVAL; with no
  event it blocks, or EAGAIN under O_NONBLOCK. FIONREAD gives the queued
  bytes.
"""

from __future__ import annotations

import errno
import struct
import threading
from collections import Counter, deque
from typing import TYPE_CHECKING, Any

from sentry import kmem
from sentry.kernel.errors import SyscallError
from sentry.vfs import notify
from sentry.vfs import vfs as vfs_mod
from sentry.vfs.file import (
    O_CLOEXEC,
    O_NONBLOCK,
    O_RDONLY,
    POLLIN,
    FileDescription,
    Stat,
    check_interrupt,
)
from syscalls.abi import s32
from syscalls.path import ctx_of, dirfd_arg, path_arg
from syscalls.table import Entry, supported

if TYPE_CHECKING:
    from sentry.kernel.task import Task

Args = tuple[int, ...]

IN_ALL_EVENTS = 0xFFF
IN_UNMOUNT, IN_Q_OVERFLOW, IN_IGNORED = 0x2000, 0x4000, 0x8000
IN_ONLYDIR, IN_DONT_FOLLOW, IN_EXCL_UNLINK = 0x01000000, 0x02000000, 0x04000000
IN_MASK_CREATE, IN_MASK_ADD, IN_ISDIR, IN_ONESHOT = 0x10000000, 0x20000000, 0x40000000, \
    0x80000000
VALID = IN_ALL_EVENTS | IN_ONLYDIR | IN_DONT_FOLLOW | IN_EXCL_UNLINK | IN_MASK_CREATE \
    | IN_MASK_ADD | IN_ONESHOT
EVENT = struct.Struct("<iIII")
MAX_QUEUED = 16384
EVENT_OVERHEAD = 64  # a queued event's bytes object header and deque slot
FIONREAD = 0x541B
AT_FDCWD = -100
SLICE_S = 0.05


# Live instances per user (fs/inotify/max_user_instances bounds them).
_INSTANCES: Counter[int] = Counter()
_COUNT_LOCK = threading.Lock()


class Watch:
    """One watch of one instance on one inode: a listener for notify.py.

    It holds the dentry it was added by, not only the inode: the dentry cache
    forgets names nobody holds (sentry/vfs/dentry.py), and a name looked up
    afresh on a Gofer-backed or overlay filesystem gets a new inode object,
    whose changes this watch would not hear."""

    def __init__(self, owner: InotifyFd, wd: int, dentry: Any, mask: int) -> None:
        self.owner, self.wd, self.dentry, self.mask = owner, wd, dentry, mask
        self.inode = dentry.inode

    def __call__(self, mask: int, name: bytes, cookie: int) -> None:
        wanted = bool(mask & self.mask & IN_ALL_EVENTS) or bool(mask & IN_UNMOUNT)
        if wanted:
            self.owner.queue(self.wd, mask, cookie, name)
        if (wanted and self.mask & IN_ONESHOT) or mask & (notify.IN_DELETE_SELF | IN_UNMOUNT):
            self.owner.drop(self)  # its file is gone, or it was for one event


class InotifyFd(FileDescription):
    """An inotify instance: its watches and its event queue."""

    def __init__(self, flags: int, uid: int = 0) -> None:
        super().__init__(O_RDONLY | (flags & O_NONBLOCK))
        self.uid = uid  # whose max_user_instances count this instance is in
        self.cond = threading.Condition()
        self.events: deque[bytes] = deque()
        self.last: tuple[int, int, int, bytes] | None = None
        self.watches: dict[int, Watch] = {}
        self.next_wd = 1
        self.kbuf = kmem.Buffer()  # the queue in the Sentry's account
        self.qcost = 0  # the queued events' bytes + EVENT_OVERHEAD each

    def queue(self, wd: int, mask: int, cookie: int, name: bytes) -> None:
        with self.cond:
            key = (wd, mask, cookie, name)
            if self.events and key == self.last:
                return  # merged into the identical event before it
            padded = name + bytes(-(len(name) + 1) % 16 + 1) if name else b""
            ev = EVENT.pack(wd, mask, cookie, len(padded)) + padded
            cost = self.qcost + len(ev) + EVENT_OVERHEAD
            if len(self.events) >= MAX_QUEUED or not self.kbuf.fits(cost):
                if self.last is None or self.last[1] != IN_Q_OVERFLOW:
                    ev = EVENT.pack(-1, IN_Q_OVERFLOW, 0, 0)
                    self.qcost += len(ev) + EVENT_OVERHEAD
                    self.kbuf.force(self.qcost)  # one at a time: always room
                    self.events.append(ev)
                    self.last = (-1, IN_Q_OVERFLOW, 0, b"")
                    self.cond.notify_all()
                return
            self.qcost = cost
            self.events.append(ev)
            self.last = key
            self.cond.notify_all()

    def add(self, dentry: Any, mask: int) -> int:
        inode = dentry.inode
        with self.cond:
            for w in self.watches.values():
                if w.inode is inode:
                    if mask & IN_MASK_CREATE:
                        raise SyscallError(errno.EEXIST)
                    w.mask = (w.mask | mask) if mask & IN_MASK_ADD else mask
                    return w.wd
            w = Watch(self, self.next_wd, dentry, mask)
            self.next_wd += 1
            self.watches[w.wd] = w
        notify.add_watch(inode, w)
        return w.wd

    def drop(self, w: Watch) -> None:
        """Remove a watch and queue its IN_IGNORED."""
        with self.cond:
            if self.watches.pop(w.wd, None) is None:
                return
        notify.remove_watch(w.inode, w)
        self.queue(w.wd, IN_IGNORED, 0, b"")

    def read(self, count: int) -> bytes:
        with self.cond:
            while not self.events:
                if self.flags & O_NONBLOCK:
                    raise SyscallError(errno.EAGAIN)
                check_interrupt()
                self.cond.wait(SLICE_S)
            if len(self.events[0]) > count:
                raise SyscallError(errno.EINVAL)
            out = []
            size = 0
            while self.events and size + len(self.events[0]) <= count:
                ev = self.events.popleft()
                out.append(ev)
                size += len(ev)
                self.qcost -= len(ev) + EVENT_OVERHEAD
            self.kbuf.holds(self.qcost)
            if not self.events:
                self.last = None
            return b"".join(out)

    def write(self, data: bytes) -> int:
        raise SyscallError(errno.EINVAL)

    def poll(self, events: int, timeout_s: float | None) -> int:
        return POLLIN & events if self.events else 0

    def ioctl(self, cmd: int, arg: int, task: object) -> int:
        if cmd != FIONREAD:
            raise SyscallError(errno.EINVAL)
        with self.cond:
            n = sum(len(e) for e in self.events)
        task.mm.copy_out(arg, struct.pack("<i", n))  # type: ignore[attr-defined]
        return 0

    def stat(self) -> Stat:
        return Stat(mode=0o600)

    def fdinfo_lines(self) -> bytes:
        """/proc/PID/fdinfo's line per watch, in Linux's inotify_fdinfo format
        (the mask as the user gave it; no file handle: none are exported)."""
        out = []
        for w in list(self.watches.values()):
            mask = w.mask & (IN_ALL_EVENTS | IN_EXCL_UNLINK | IN_ONESHOT)
            out.append(b"inotify wd:%x ino:%x sdev:%x mask:%x ignored_mask:0\n"
                       % (w.wd, w.inode.ino, w.inode.fs.dev, mask))
        return b"".join(out)

    def release(self) -> None:
        for w in list(self.watches.values()):
            notify.remove_watch(w.inode, w)
        self.watches.clear()
        with self.cond:
            self.events.clear()
            self.qcost = 0
            self.kbuf.release()
        with _COUNT_LOCK:
            _INSTANCES[self.uid] -= 1
        super().release()


def _instance(t: Task, fd: int) -> InotifyFd:
    desc = t.fds.get(fd)
    if not isinstance(desc, InotifyFd):
        raise SyscallError(errno.EINVAL)
    return desc


def inotify_init1(t: Task, a: Args) -> int:
    """inotify_init1(2)."""
    flags = s32(a[0])
    if flags & ~(O_CLOEXEC | O_NONBLOCK):
        raise SyscallError(errno.EINVAL)
    uid = t.creds.uid
    with _COUNT_LOCK:  # Linux's ucounts: per real uid, root included
        if _INSTANCES[uid] >= t.kernel.sysctl.inotify_max_user_instances:
            raise SyscallError(errno.EMFILE)
        _INSTANCES[uid] += 1
    try:
        return t.fds.install(InotifyFd(flags, uid), cloexec=bool(flags & O_CLOEXEC))
    except BaseException:
        with _COUNT_LOCK:
            _INSTANCES[uid] -= 1
        raise


def inotify_init(t: Task, a: Args) -> int:
    """inotify_init(2)."""
    return inotify_init1(t, (0, 0, 0, 0, 0, 0))


def inotify_add_watch(t: Task, a: Args) -> int:
    """inotify_add_watch(2): read permission on the file is needed."""
    mask = a[2] & 0xFFFF_FFFF
    if not mask & IN_ALL_EVENTS or mask & ~VALID:
        raise SyscallError(errno.EINVAL)
    if mask & IN_MASK_ADD and mask & IN_MASK_CREATE:
        raise SyscallError(errno.EINVAL)
    inst = _instance(t, s32(a[0]))
    path = path_arg(t, a[1])
    ctx = ctx_of(t)
    d = vfs_mod.resolve(ctx, path, dirfd_dentry=dirfd_arg(t, AT_FDCWD & 0xFFFFFFFF, path),
                        follow=not mask & IN_DONT_FOLLOW)
    if mask & IN_ONLYDIR and not d.inode.is_dir():
        raise SyscallError(errno.ENOTDIR)
    ctx.check(d, 4)  # MAY_READ
    return inst.add(d, mask)


def inotify_rm_watch(t: Task, a: Args) -> int:
    """inotify_rm_watch(2)."""
    inst = _instance(t, s32(a[0]))
    w = inst.watches.get(s32(a[1]))
    if w is None:
        raise SyscallError(errno.EINVAL)
    inst.drop(w)
    return 0


ENTRIES: list[Entry] = [
    supported("inotify_init", inotify_init),
    supported("inotify_init1", inotify_init1),
    supported("inotify_add_watch", inotify_add_watch),
    supported("inotify_rm_watch", inotify_rm_watch),
]
