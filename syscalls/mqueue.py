"""POSIX message queues: mq_open, mq_unlink, mq_timedsend, mq_timedreceive,
mq_notify and mq_getsetattr over the IPC namespace's mqueue filesystem
(sentry/vfs/mqueue.py holds the queues and their rules).

glibc strips the leading "/" of a queue name; the kernel sees a bare name,
refused when empty (ENOENT), "." or "..", or holding a "/" (EACCES). A queue
descriptor is always close-on-exec, as Linux opens it.
"""

from __future__ import annotations

import errno
import struct
from typing import TYPE_CHECKING

from sentry.kernel.creds import CAP_FOWNER, CAP_SYS_RESOURCE
from sentry.kernel.dac import MAY_EXEC, MAY_READ, MAY_WRITE, allowed
from sentry.kernel.errors import SyscallError
from sentry.kernel.namespaces import ipc_of
from sentry.kernel.signals import SigInfo
from sentry.vfs import mqueue
from sentry.vfs.file import O_ACCMODE, O_NONBLOCK
from syscalls.abi import TIMESPEC, s32
from syscalls.table import Entry, partial, supported

if TYPE_CHECKING:
    from sentry.kernel.task import Task

Args = tuple[int, ...]

O_CREAT, O_EXCL = 0o100, 0o200
NAME_MAX = 255
PATH_MAX = 4096
MQ_ATTR = struct.Struct("<qqqq32x")  # mq_flags, mq_maxmsg, mq_msgsize, mq_curmsgs
SIGEVENT = struct.Struct("<qii")  # sigev_value, sigev_signo, sigev_notify
SIGEV_SIGNAL, SIGEV_NONE, SIGEV_THREAD = 0, 1, 2
SI_MESGQ = -3
U32 = struct.Struct("<I")


def _name(t: Task, addr: int) -> bytes:
    name = t.mm.read_cstring(addr, PATH_MAX)
    if not name:  # getname() refuses an empty string
        raise SyscallError(errno.ENOENT)
    if name in (b".", b"..") or b"/" in name:
        raise SyscallError(errno.EACCES)
    if len(name) > NAME_MAX:
        raise SyscallError(errno.ENAMETOOLONG)
    return name


def _root(t: Task) -> mqueue.QueueDir:
    return ipc_of(t).mqueue.root  # type: ignore[return-value]


def _queue(t: Task, fd: int) -> mqueue.QueueDescription:
    desc = t.fds.get(fd)
    if not isinstance(desc, mqueue.QueueDescription):
        raise SyscallError(errno.EBADF)
    return desc


def _deadline(t: Task, addr: int) -> float | None:
    """An absolute CLOCK_REALTIME timeout, checked up front as Linux does."""
    if not addr:
        return None
    sec, nsec = TIMESPEC.unpack(t.mm.copy_in(addr, TIMESPEC.size))
    if sec < 0 or not 0 <= nsec < 1_000_000_000:
        raise SyscallError(errno.EINVAL)
    return sec + nsec / 1e9


def mq_open(t: Task, a: Args) -> int:
    """mq_open(2)."""
    name, oflag, mode = _name(t, a[0]), s32(a[1]), a[2] & 0o7777
    attr = MQ_ATTR.unpack(t.mm.copy_in(a[3], MQ_ATTR.size)) if oflag & O_CREAT and a[3] else None
    root = _root(t)
    c = t.creds
    try:
        q = root.lookup(name)
    except SyscallError as e:
        if e.errno != errno.ENOENT or not oflag & O_CREAT:
            raise
        q = None
    if q is None:
        if not allowed(root.mode, root.uid, root.gid, c, MAY_WRITE | MAY_EXEC):
            raise SyscallError(errno.EACCES)
        privileged = c.capable(CAP_SYS_RESOURCE)
        maxmsg, msgsize = mqueue.DEFAULT_MAXMSG, mqueue.DEFAULT_MSGSIZE
        if attr is not None:
            _, maxmsg, msgsize, _ = attr
            top = ((mqueue.HARD_MSGMAX, mqueue.HARD_MSGSIZEMAX) if privileged
                   else (mqueue.DEFAULT_MAXMSG, mqueue.DEFAULT_MSGSIZE))
            if not (0 < maxmsg <= top[0] and 0 < msgsize <= top[1]):
                raise SyscallError(errno.EINVAL)
        q = root.create_queue(name, mode & ~t.tg.umask, c.fsuid, c.fsgid, maxmsg, msgsize,
                              privileged)
    else:
        if oflag & O_CREAT and oflag & O_EXCL:
            raise SyscallError(errno.EEXIST)
        acc = oflag & O_ACCMODE
        if acc == O_ACCMODE:
            raise SyscallError(errno.EINVAL)
        want = {0: MAY_READ, 1: MAY_WRITE, 2: MAY_READ | MAY_WRITE}[acc]
        if not allowed(q.mode, q.uid, q.gid, c, want):
            raise SyscallError(errno.EACCES)
    desc = q.open(oflag & (O_ACCMODE | O_NONBLOCK))
    return t.fds.install(desc, cloexec=True)


def mq_unlink(t: Task, a: Args) -> int:
    """mq_unlink(2): the root is sticky, as /tmp."""
    name = _name(t, a[0])
    root = _root(t)
    q = root.lookup(name)
    c = t.creds
    if not allowed(root.mode, root.uid, root.gid, c, MAY_WRITE | MAY_EXEC):
        raise SyscallError(errno.EACCES)
    if c.fsuid not in (q.uid, root.uid) and not c.capable(CAP_FOWNER):
        raise SyscallError(errno.EPERM)
    root.unlink(name)
    return 0


def mq_timedsend(t: Task, a: Args) -> int:
    """mq_timedsend(2)."""
    fd, addr, length, prio = s32(a[0]), a[1], a[2], a[3] & 0xFFFF_FFFF
    deadline = _deadline(t, a[4])
    if prio >= mqueue.MQ_PRIO_MAX:
        raise SyscallError(errno.EINVAL)
    desc = _queue(t, fd)
    if not desc.can_send:
        raise SyscallError(errno.EBADF)
    if length > desc.queue.msgsize:
        raise SyscallError(errno.EMSGSIZE)
    text = t.mm.copy_in(addr, length) if length else b""
    desc.queue.send(text, prio, desc.nonblocking, deadline, (t.tg.tgid, t.creds.uid))
    return 0


def mq_timedreceive(t: Task, a: Args) -> int:
    """mq_timedreceive(2): the message's length; its priority to ``a[3]``."""
    fd, addr, length, prio_addr = s32(a[0]), a[1], a[2], a[3]
    deadline = _deadline(t, a[4])
    desc = _queue(t, fd)
    if not desc.can_receive:
        raise SyscallError(errno.EBADF)
    text, prio = desc.queue.receive(length, desc.nonblocking, deadline)
    t.mm.copy_out(addr, text)
    if prio_addr:
        t.mm.copy_out(prio_addr, U32.pack(prio))
    return len(text)


def mq_notify(t: Task, a: Args) -> int:
    """mq_notify(2): SIGEV_SIGNAL and SIGEV_NONE (SIGEV_THREAD needs a
    netlink socket, which the sandbox does not have: EINVAL)."""
    desc = _queue(t, s32(a[0]))
    pid = t.tg.tgid
    if not a[1]:
        desc.queue.set_notify(pid, None)
        return 0
    value, signo, how = SIGEVENT.unpack(t.mm.copy_in(a[1], SIGEVENT.size))
    if how not in (SIGEV_SIGNAL, SIGEV_NONE):
        raise SyscallError(errno.EINVAL)
    if how == SIGEV_SIGNAL and not 1 <= signo <= 64:
        raise SyscallError(errno.EINVAL)
    kernel, tg = t.kernel, t.tg

    def deliver(sender_pid: int, sender_uid: int) -> None:
        kernel.send_group(tg, SigInfo(signo, code=SI_MESGQ, pid=sender_pid, uid=sender_uid,
                                      value=value))

    desc.queue.set_notify(pid, (how, signo, pid, deliver))
    return 0


def mq_getsetattr(t: Task, a: Args) -> int:
    """mq_getsetattr(2): only O_NONBLOCK can be set."""
    desc = _queue(t, s32(a[0]))
    new = MQ_ATTR.unpack(t.mm.copy_in(a[1], MQ_ATTR.size)) if a[1] else None
    if new is not None and new[0] & ~O_NONBLOCK:
        raise SyscallError(errno.EINVAL)
    q = desc.queue
    old = MQ_ATTR.pack(desc.flags & O_NONBLOCK, q.maxmsg, q.msgsize, q.curmsgs)
    if new is not None:
        desc.flags = (desc.flags & ~O_NONBLOCK) | (new[0] & O_NONBLOCK)
    if a[2]:
        t.mm.copy_out(a[2], old)
    return 0


ENTRIES: list[Entry] = [
    supported("mq_open", mq_open),
    supported("mq_unlink", mq_unlink),
    supported("mq_timedsend", mq_timedsend),
    supported("mq_timedreceive", mq_timedreceive),
    partial("mq_notify", mq_notify, note="SIGEV_SIGNAL and SIGEV_NONE; SIGEV_THREAD needs "
            "netlink (EINVAL)"),
    supported("mq_getsetattr", mq_getsetattr),
]
