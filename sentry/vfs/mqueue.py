"""mqueue: POSIX message queues as files of a Sentry-held filesystem.

Facts about Linux's mqueue filesystem (ipc/mqueue.c) that shape this module:

* Each IPC namespace has one mqueue filesystem; mq_open/mq_unlink name its
  root's entries, and ``mount -t mqueue`` (/dev/mqueue) shows the same one.
  The root is 01777; it holds only queues (no mkdir, links or devices: EPERM),
  at most 256 of them without CAP_SYS_RESOURCE (ENOSPC).
* A queue is a regular file of size 80; reading it gives one status line,
  ``QSIZE:... NOTIFY:... SIGNO:... NOTIFY_PID:...``; the root's size is 40
  plus 20 per queue.
* Messages come out highest priority first, FIFO within a priority. A queue
  holds ``maxmsg`` messages of at most ``msgsize`` bytes; send and receive
  block (EAGAIN with O_NONBLOCK, ETIMEDOUT at an absolute CLOCK_REALTIME
  deadline) and are restarted after a handler with SA_RESTART.
* One process may register for notification (mq_notify): it is told when a
  message arrives in an empty queue and no receiver is waiting, then
  unregistered.
* A message is kernel memory charged to the memory cgroup (load_msg,
  GFP_KERNEL_ACCOUNT); mq_timedsend fails with ENOMEM when it cannot be
  allocated. Here a queue's messages are charged to the Sentry's account
  (sentry/kmem.py): a privileged queue may be 65536 messages of 16 MiB.

Lock order: each queue's condition lock is innermost (below TREE_LOCK and
TmpFs.lock); the notification callback runs after it is released.
"""

from __future__ import annotations

import errno
import threading
import time
from collections.abc import Callable
from typing import Any

from sentry import kmem
from sentry.kernel.errors import SyscallError
from sentry.vfs.file import (
    O_ACCMODE,
    O_NONBLOCK,
    O_RDONLY,
    O_WRONLY,
    POLLIN,
    POLLOUT,
    FileDescription,
    check_interrupt,
)
from sentry.vfs.inode import S_IFREG, Inode
from sentry.vfs.tmpfs import TmpDir, TmpFs

MQUEUE_MAGIC = 0x19800202
MQ_PRIO_MAX = 32768
DEFAULT_MAXMSG = 10  # /proc/sys/fs/mqueue/msg_default (and msg_max)
DEFAULT_MSGSIZE = 8192  # msgsize_default (and msgsize_max)
HARD_MSGMAX = 65536
HARD_MSGSIZEMAX = 16 * 1024 * 1024
QUEUES_MAX = 256
FILENT_SIZE = 80
DIRENT_SIZE = 20
POLLRDNORM, POLLWRNORM = 0x40, 0x100
SLICE_S = 0.05
MSG_OVERHEAD = 128  # a queued message's tuple, ints and bytes header

# What mq_notify registered: (sigev_notify, signo, pid) and the callback that
# delivers (sender tgid, sender uid) -> None.
Notify = tuple[int, int, int, Callable[[int, int], None]]


class MessageQueue(Inode):
    """One queue: its attributes, messages and waiting state."""

    def __init__(self, fs: MqueueFs, mode: int, maxmsg: int, msgsize: int, **kw: int) -> None:
        super().__init__(fs, S_IFREG | (mode & 0o7777), **kw)
        self.size = FILENT_SIZE
        self.maxmsg = maxmsg
        self.msgsize = msgsize
        self._messages: list[tuple[int, int, bytes]] = []  # (-prio, seq, text), sorted
        self._seq = 0
        self.qsize = 0
        self.cond = threading.Condition()
        self.receivers = 0
        self.notify: Notify | None = None
        self.kbuf = kmem.Buffer()  # the messages in the Sentry's account

    def stat(self) -> Any:
        st = super().stat()
        st.blocks = 0  # the messages are not file blocks
        return st

    @property
    def curmsgs(self) -> int:
        return len(self._messages)

    def status(self) -> bytes:
        how, signo, pid = self.notify[:3] if self.notify is not None else (0, 0, 0)
        return (f"QSIZE:{self.qsize:<10d} NOTIFY:{how:<5d} SIGNO:{signo if how == 0 else 0:<5d} "
                f"NOTIFY_PID:{pid:<6d}\n").encode()

    def _wait(self, deadline: float | None) -> None:
        """One slice of a blocking send or receive (under ``cond``); ETIMEDOUT
        past the CLOCK_REALTIME ``deadline``, ERESTARTSYS on a signal."""
        check_interrupt()
        if deadline is not None:
            left = deadline - time.time()
            if left <= 0:
                raise SyscallError(errno.ETIMEDOUT)
            self.cond.wait(min(left, SLICE_S))
        else:
            self.cond.wait(SLICE_S)

    def send(self, text: bytes, prio: int, nonblock: bool, deadline: float | None,
             sender: tuple[int, int]) -> None:
        if len(text) > self.msgsize:
            raise SyscallError(errno.EMSGSIZE)
        notify = None
        with self.cond:
            while len(self._messages) >= self.maxmsg:
                if nonblock:
                    raise SyscallError(errno.EAGAIN)
                self._wait(deadline)
            cost = self.qsize + len(text) + MSG_OVERHEAD * (len(self._messages) + 1)
            if not self.kbuf.fits(cost):
                raise SyscallError(errno.ENOMEM)
            if not self._messages and not self.receivers and self.notify is not None:
                notify, self.notify = self.notify, None
            self._seq += 1
            entry = (-prio, self._seq, text)
            pos = len(self._messages)
            while pos and self._messages[pos - 1] > entry:
                pos -= 1
            self._messages.insert(pos, entry)
            self.qsize += len(text)
            self.mtime_ns = self.ctime_ns = time.time_ns()
            self.cond.notify_all()
        if notify is not None and notify[0] == 0:  # SIGEV_SIGNAL
            notify[3](*sender)

    def receive(self, bufsize: int, nonblock: bool, deadline: float | None) -> tuple[bytes, int]:
        if bufsize < self.msgsize:
            raise SyscallError(errno.EMSGSIZE)
        with self.cond:
            self.receivers += 1
            try:
                while not self._messages:
                    if nonblock:
                        raise SyscallError(errno.EAGAIN)
                    self._wait(deadline)
            finally:
                self.receivers -= 1
            neg_prio, _, text = self._messages.pop(0)
            self.qsize -= len(text)
            self.kbuf.holds(self.qsize + MSG_OVERHEAD * len(self._messages))
            self.atime_ns = self.ctime_ns = time.time_ns()
            self.cond.notify_all()
            return text, -neg_prio

    def set_notify(self, pid: int, notify: Notify | None) -> None:
        """mq_notify: register ``pid`` (EBUSY if another is), or with None
        unregister it (only the registered process may)."""
        with self.cond:
            if notify is None:
                if self.notify is not None and self.notify[2] == pid:
                    self.notify = None
                return
            if self.notify is not None:
                raise SyscallError(errno.EBUSY)
            self.notify = notify

    def readiness(self) -> int:
        with self.cond:
            ready = POLLIN | POLLRDNORM if self._messages else 0
            if len(self._messages) < self.maxmsg:
                ready |= POLLOUT | POLLWRNORM
            return ready

    def open(self, flags: int) -> FileDescription:
        return QueueDescription(self, flags)


class QueueDescription(FileDescription):
    """An open queue: mq_* calls act on it; read() gives the status line."""

    def __init__(self, queue: MessageQueue, flags: int) -> None:
        super().__init__(flags)
        self.inode = queue
        self.queue = queue
        self._pos = 0

    def read(self, count: int) -> bytes:
        data = self.queue.status()[self._pos:self._pos + count]
        self._pos += len(data)
        return data

    def write(self, data: bytes) -> int:
        raise SyscallError(errno.EINVAL)

    def pread(self, count: int, offset: int) -> bytes:
        return self.queue.status()[offset:offset + count]

    def seek(self, offset: int, whence: int) -> int:
        if whence != 0 or offset < 0:
            raise SyscallError(errno.EINVAL)
        self._pos = offset
        return offset

    def stat(self) -> Any:
        return self.queue.stat()

    def poll(self, events: int, timeout_s: float | None) -> int:
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            got = self.queue.readiness() & events
            if got or (deadline is not None and time.monotonic() >= deadline):
                return got
            check_interrupt()
            time.sleep(SLICE_S if deadline is None else
                       max(0.0, min(SLICE_S, deadline - time.monotonic())))

    @property
    def can_send(self) -> bool:
        return (self.flags & O_ACCMODE) != O_RDONLY

    @property
    def can_receive(self) -> bool:
        return (self.flags & O_ACCMODE) != O_WRONLY

    @property
    def nonblocking(self) -> bool:
        return bool(self.flags & O_NONBLOCK)


class QueueDir(TmpDir):
    """The mqueue root: only queues may be made here."""

    fs: MqueueFs

    def _sized(self) -> None:
        self.size = 2 * DIRENT_SIZE + DIRENT_SIZE * len(self.entries)

    def create(self, name: bytes, mode: int, uid: int, gid: int) -> Inode:
        return self.create_queue(name, mode, uid, gid, DEFAULT_MAXMSG, DEFAULT_MSGSIZE,
                                 privileged=True)

    def create_queue(self, name: bytes, mode: int, uid: int, gid: int, maxmsg: int,
                     msgsize: int, privileged: bool) -> MessageQueue:
        with self.fs.lock:
            if len(self.entries) >= QUEUES_MAX and not privileged:
                raise SyscallError(errno.ENOSPC)
            q = MessageQueue(self.fs, mode, maxmsg, msgsize, uid=uid, gid=gid)
            self._add(name, q)
            self._sized()
            return q

    def unlink(self, name: bytes) -> None:
        super().unlink(name)
        self._sized()

    def mkdir(self, name: bytes, mode: int, uid: int, gid: int) -> Inode:
        raise SyscallError(errno.EPERM)

    def mknod(self, name: bytes, mode: int, rdev: int, uid: int, gid: int) -> Inode:
        raise SyscallError(errno.EPERM)

    def symlink(self, name: bytes, target: bytes, uid: int, gid: int) -> Inode:
        raise SyscallError(errno.EPERM)

    def link(self, name: bytes, inode: Inode) -> None:
        raise SyscallError(errno.EPERM)


class MqueueFs(TmpFs):
    """One IPC namespace's queues."""

    name = "mqueue"
    magic = MQUEUE_MAGIC

    def __init__(self) -> None:
        super().__init__(mode=0o1777, source="mqueue")
        root = QueueDir(self, self.root.mode)
        root.ino = self.root.ino
        self.root = root
        root._sized()
