"""Pipes and fifos, as pipe(7) and fifo(7) describe them.

Facts about the Linux API this module keeps:

* Capacity 64 KiB (F_SETPIPE_SZ can change it, rounded to a power-of-two
  number of pages).  A write of at most PIPE_BUF (4096) bytes is atomic: it
  waits (or fails with EAGAIN) until there is room for all of it, so it is
  never interleaved with another writer's data.  A larger write may be split.
* read on an empty pipe with no writers returns 0 (EOF); with writers it
  blocks, or fails with EAGAIN under O_NONBLOCK.
* write with no readers fails with EPIPE (the syscall layer then sends
  SIGPIPE); bytes already written by a large write are reported instead
  (and the syscall layer sends SIGPIPE all the same, as pipe_write does).
* Opening a fifo read-only blocks until a writer opens it, write-only until a
  reader does; O_NONBLOCK read-only opens at once, O_NONBLOCK write-only fails
  with ENXIO when there is no reader; O_RDWR never blocks.
* A page the buffer cannot get ends a write with what it wrote, or ENOMEM
  (pipe_write's failed alloc_page): the buffer is charged to the Sentry's
  kernel-memory account (sentry/kmem.py) in pages, one kept while it lives.
  When the last end closes, the bytes are dropped (a fifo's too, as Linux
  frees the pipe_inode_info).
* poll: POLLIN when data is buffered, POLLOUT when PIPE_BUF bytes fit,
  POLLHUP on the read side once every writer has gone (only if a writer was
  ever seen by this description, as Linux's w_counter check does), POLLERR on
  the write side when no reader is left.

Blocking waits are a loop of short condition waits so a pending signal can
interrupt them: the ``interrupted`` hook (per pipe, or the class-wide default
``Pipe.interrupted``) is polled and a true answer raises EINTR.

Lock order: ``Pipe._lock`` is below the VFS locks; it is never held while
calling the interrupted hook's owner back into the VFS. Taken under it: a
reading task's address-space lock (copying a read's bytes out: ``read_into``
and ``_serve_parked``), and a write's charge (sentry/kmem.py: its lock, and
a cache's when the charge needs room).
"""

from __future__ import annotations

import errno
import itertools
import threading
import time
from _thread import allocate_lock as _allocate_lock
from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar

from sentry import kmem
from sentry.kernel import parking
from sentry.kernel.errors import SyscallError
from sentry.kernel.sigio import POLL_IN, POLL_OUT, send_io_signal
from sentry.vfs import pipe_acct
from sentry.vfs.file import (
    O_ACCMODE,
    O_NONBLOCK,
    O_RDONLY,
    O_RDWR,
    O_WRONLY,
    POLLERR,
    POLLHUP,
    POLLIN,
    POLLOUT,
    READINESS,
    FileDescription,
    Stat,
)
from sentry.vfs.inode import S_IFIFO, alloc_dev, now_ns
from shm.records import record

O_ASYNC = 0o20000

if TYPE_CHECKING:
    from sentry.kernel.task import Task
    from sentry.vfs.dentry import Dentry
    from sentry.vfs.inode import Inode

PIPE_BUF = 4096
DEFAULT_CAPACITY = 65536
MAX_CAPACITY = 1 << 20  # /proc/sys/fs/pipe-max-size
PAGE = 4096
FIONREAD = 0x541B
FIONBIO = 0x5421
TICK_S = 0.05

PIPEFS_DEV = alloc_dev()
_pipe_ino = itertools.count(1)


class Pipe:
    """The buffer shared by a pipe's two ends (or by every opener of a fifo)."""

    interrupted: ClassVar[Callable[[], bool] | None] = None

    def __init__(self, capacity: int = DEFAULT_CAPACITY,
                 interrupted: Callable[[], bool] | None = None) -> None:
        self._buf = bytearray()
        self.capacity = capacity
        self.readers = 0
        self.writers = 0
        self.r_counter = 0  # reader opens ever (fifo rendezvous)
        self.w_counter = 0  # writer opens ever
        self.changes = 0  # moves on every state change (_notify_all)
        # epoll's edges, per end as Linux's two wait queues: the read end's
        # move when data arrives (every write) or an end comes or goes; the
        # write end's when a read makes it writable again, or an end comes or
        # goes (a read that leaves it full wakes no writer: no edge).
        self.rd_changes = 0
        self.wr_changes = 0
        # A lock and one-shot waiter locks rather than threading.Condition:
        # the same protocol without Condition's Python-level bookkeeping, which
        # cost ~3 us of every pipe round trip's 45.
        self._lock = threading.Lock()
        self._waiters: list[threading.Lock] = []
        self._parked: list[_ParkedRead] = []  # reads a writer finishes (read_into)
        self._hook = interrupted
        self.async_ends: list[PipeFile] = []  # ends ever given O_ASYNC (F_SETFL)
        self.account: tuple[int, int] | None = None  # (uid, pages): pipe_acct.py
        self.kbuf = kmem.Buffer()  # the buffer's pages in the Sentry's account
        self.ino = next(_pipe_ino)
        self.ctime_ns = now_ns()

    # Waiting.
    def _check_interrupt(self) -> None:
        hook = self._hook if self._hook is not None else Pipe.interrupted
        if hook is not None and hook():
            raise SyscallError(errno.EINTR)

    def _wait(self, deadline: float | None = None) -> bool:
        """One tick of a blocking wait (lock held, released while asleep); False
        once ``deadline`` passed."""
        self._check_interrupt()
        tick = TICK_S
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            tick = min(tick, left)
        waiter = _allocate_lock()
        waiter.acquire()
        self._waiters.append(waiter)
        self._lock.release()
        try:
            woken = waiter.acquire(True, tick)
        finally:
            self._lock.acquire()
        if not woken:
            try:
                self._waiters.remove(waiter)
            except ValueError:  # woken between the timeout and the lock
                pass
        return True

    def _writable(self) -> bool:
        """What poll reports as POLLOUT: PIPE_BUF bytes fit (lock held)."""
        return self.capacity - len(self._buf) >= PIPE_BUF

    def _notify_read(self, was_writable: bool) -> None:
        """After bytes left the buffer: wake everyone; an edge for the write
        end only if that made it writable (lock held)."""
        self._notify_all(readers=False, writers=not was_writable and self._writable())

    def _notify_all(self, readers: bool = True, writers: bool = True) -> None:
        """Wake every waiter, and finish or hand back parked reads (lock held);
        ``readers``/``writers``: whether the ends' epoll edges move."""
        self.changes += 1
        self.rd_changes += readers
        self.wr_changes += writers
        READINESS.changed()  # and tasks in poll/select/epoll
        waiters = self._waiters
        if waiters:
            self._waiters = []
            for waiter in waiters:
                waiter.release()
        if self._parked:
            self._serve_parked()

    def _serve_parked(self) -> None:
        """Finish parked reads from the buffer in arrival order; at EOF hand them
        back (their threads read the EOF). Lock order: a reader's address-space
        lock is taken under this one (copy_out), never the other way round."""
        was_writable = self._writable()
        while self._parked and (self._buf or self.writers == 0):
            r = self._parked.pop(0)
            if not self._buf:
                parking.hand_back(r.task)
            elif parking.claim(r.task):
                n = min(r.count, len(self._buf))
                if parking.finish_read(r.task, r.addr, bytes(self._buf[:n])):
                    del self._buf[:n]
                    if self.kbuf.charged > PAGE:  # pages to give back?
                        self.kbuf.holds(len(self._buf))
        if not was_writable and self._writable():
            self.wr_changes += 1

    def read_into(self, task: Task, addr: int, count: int, nonblock: bool) -> int:
        """read(2) of up to ``count`` bytes into ``task``'s memory at ``addr``.

        Blocking, the read parks until a writer finishes it (parking.ParkedDone
        goes up to the task loop: this never returns then) or hands it back.
        The bytes leave the pipe only once they are copied: an EFAULT leaves
        them for the next read, as on Linux."""
        while True:
            with self._lock:
                if self._buf:
                    n = min(count, len(self._buf))
                    task.mm.copy_out(addr, bytes(self._buf[:n]))
                    was_writable = self._writable()
                    del self._buf[:n]
                    if self.kbuf.charged > PAGE:  # pages to give back?
                        self.kbuf.holds(len(self._buf))
                    self._notify_read(was_writable)
                    return n
                if self.writers == 0:
                    return 0
                if nonblock:
                    raise SyscallError(errno.EAGAIN)
                self._check_interrupt()
                r = _ParkedRead(task, addr, count)
                parking.park(task)
                self._parked.append(r)
            parking.wait(task, lambda r=r: self._withdraw(r))

    def _withdraw(self, r: _ParkedRead) -> None:
        with self._lock:
            if r in self._parked:
                self._parked.remove(r)

    # Ends coming and going.
    def attach(self, reader: bool, writer: bool) -> None:
        with self._lock:
            if reader:
                self.readers += 1
                self.r_counter += 1
            if writer:
                self.writers += 1
                self.w_counter += 1
            self._notify_all()

    def detach(self, reader: bool, writer: bool) -> None:
        with self._lock:
            if reader:
                self.readers -= 1
            if writer:
                self.writers -= 1
            unused = self.readers == 0 and self.writers == 0
            gone = self.account if unused else None
            if gone is not None:
                self.account = None
            if unused:  # no file left to read them: the bytes go
                self._buf = bytearray()
                self.kbuf.release()
            self._notify_all()
        if gone is not None:
            pipe_acct.release(*gone)

    # Data.
    def nread(self) -> int:
        with self._lock:
            return len(self._buf)

    def _await_data(self, nonblock: bool) -> bool:
        """Wait (lock held) until the buffer has bytes; False at end of file
        (empty with no writer left), EAGAIN when empty and ``nonblock``."""
        while not self._buf:
            if self.writers == 0:
                return False
            if nonblock:
                raise SyscallError(errno.EAGAIN)
            self._wait()
        return True

    def read(self, count: int, nonblock: bool) -> bytes:
        with self._lock:
            if not self._await_data(nonblock):
                return b""
            data = bytes(self._buf[:count])
            was_writable = self._writable()
            del self._buf[:count]
            if self.kbuf.charged > PAGE:  # pages to give back?
                self.kbuf.holds(len(self._buf))
            self._notify_read(was_writable)
            return data

    def peek(self, count: int, nonblock: bool) -> bytes:
        """Up to ``count`` bytes without taking them (tee(2)), waiting as read does."""
        with self._lock:
            if not self._await_data(nonblock):
                return b""
            return bytes(self._buf[:count])

    def room(self) -> int:
        """Free bytes now (splice and tee move no more than fits)."""
        with self._lock:
            return self.capacity - len(self._buf)

    def write(self, data: bytes, nonblock: bool) -> int:
        n = len(data)
        with self._lock:
            if self.readers == 0:
                raise SyscallError(errno.EPIPE)
            if n <= PIPE_BUF:
                while self.capacity - len(self._buf) < n:
                    if nonblock:
                        raise SyscallError(errno.EAGAIN)
                    self._wait()
                    if self.readers == 0:
                        raise SyscallError(errno.EPIPE)
                size = len(self._buf) + n
                if size > self.kbuf.charged and not self.kbuf.fits(size):
                    raise SyscallError(errno.ENOMEM)
                self._buf += data
                self._notify_all()
                return n
            written = 0
            while written < n:
                if self.readers == 0:
                    if written:
                        return written
                    raise SyscallError(errno.EPIPE)
                room = self.capacity - len(self._buf)
                if room <= 0:
                    if nonblock:
                        if written:
                            return written
                        raise SyscallError(errno.EAGAIN)
                    try:
                        self._wait()
                    except SyscallError:
                        if written:
                            return written
                        raise
                    continue
                room = min(room, n - written)
                if not self.kbuf.fits(len(self._buf) + room):
                    if written:
                        return written
                    raise SyscallError(errno.ENOMEM)
                self._buf += data[written:written + room]
                written += room
                self._notify_all()
            return written

    def restore(self, data: bytes) -> None:
        """A checkpoint's saved bytes, before any end is attached (charged
        whatever the budget: refusing them would lose them)."""
        with self._lock:
            self._buf = bytearray(data)
            self.kbuf.force(len(data))

    def signal_async(self, writers: bool) -> None:
        """O_ASYNC: data came (tell the read ends, POLL_IN) or room was made
        (tell the write ends, POLL_OUT), as Linux's kill_fasync after each
        pipe_write and pipe_read; called outside the pipe's lock."""
        if not self.async_ends:
            return
        for end in list(self.async_ends):
            if end.flags & O_ASYNC and not end._released and \
                    (end.is_writer if writers else end.is_reader):
                send_io_signal(end, end.__dict__.get("async_fd", 0),
                               POLL_OUT if writers else POLL_IN)

    def set_capacity(self, size: int, privileged: bool = False,
                     max_size: int = MAX_CAPACITY, limits: tuple[int, int] = (0, 0)) -> int:
        """F_SETPIPE_SZ: round up to a power-of-two number of pages (at least
        one); past 2^31 is EINVAL, past pipe-max-size (``max_size``) EPERM unless
        ``privileged`` (CAP_SYS_RESOURCE), as Linux's pipe_set_size."""
        if size > 1 << 31:
            raise SyscallError(errno.EINVAL)
        if size > max_size and not privileged:
            raise SyscallError(errno.EPERM)
        pages = 1
        while pages * PAGE < size:
            pages *= 2
        with self._lock:
            if len(self._buf) > pages * PAGE:
                raise SyscallError(errno.EBUSY)
            if self.account is not None:  # per-user pages (soft, hard ``limits``)
                uid, old = self.account
                pipe_acct.resize(uid, old, pages, *limits, privileged)
                self.account = (uid, pages)
            self.capacity = pages * PAGE
            self._notify_all()
            return self.capacity

    def readiness(self, reader: bool, writer: bool, w_seen: int) -> int:
        """Poll bits for an end (cond held)."""
        r = 0
        if reader:
            if self._buf:
                r |= POLLIN
            if self.writers == 0 and self.w_counter != w_seen:
                r |= POLLHUP
        if writer:
            if self.capacity - len(self._buf) >= PIPE_BUF:
                r |= POLLOUT
            if self.readers == 0:
                r |= POLLERR
        return r

    def poll(self, events: int, reader: bool, writer: bool, w_seen: int,
             timeout_s: float | None) -> int:
        """Ready bits for an end; waits up to ``timeout_s`` (None: forever).

        A zero timeout only looks: it never checks for a signal.  poll,
        select and epoll call it on each file of a set in turn, and a raise
        from the second file lost the edge epoll had already taken from the
        first (go build waited forever on a finished child's pipe)."""
        always = POLLHUP | POLLERR
        with self._lock:
            r = self.readiness(reader, writer, w_seen) & (events | always)
            if r or timeout_s == 0:
                return r
            deadline = None if timeout_s is None else time.monotonic() + timeout_s
            while True:
                if not self._wait(deadline):
                    return r
                r = self.readiness(reader, writer, w_seen) & (events | always)
                if r:
                    return r


@record(slots=True, eq=False)  # identity: the pipe withdraws this very waiter
class _ParkedRead:
    """A blocked read a writer may finish (read_into)."""

    task: Task
    addr: int
    count: int


class PipeFile(FileDescription):
    """One end of a pipe (a fifo opened O_RDWR is both ends)."""

    takes_pieces = True  # a large write may go in parts (syscalls/pieces.py)

    def __init__(self, pipe: Pipe, flags: int, inode: Inode | None = None) -> None:
        super().__init__(flags)
        self.pipe = pipe
        self.inode = inode
        self.dentry: Dentry | None = None
        acc = flags & O_ACCMODE
        self.is_reader = acc in (O_RDONLY, O_RDWR)
        self.is_writer = acc in (O_WRONLY, O_RDWR)
        self._w_seen = pipe.w_counter
        self._released = False
        pipe.attach(self.is_reader, self.is_writer)

    def read(self, count: int) -> bytes:
        if not self.is_reader:
            raise SyscallError(errno.EBADF)
        if count == 0:
            return b""
        data = self.pipe.read(count, bool(self.flags & O_NONBLOCK))
        if data:
            self.pipe.signal_async(writers=True)
        return data

    def read_into(self, task: Task, addr: int, count: int) -> int:
        """read(2) straight into ``task``'s memory; another task's write may
        finish it (sentry/kernel/parking.py)."""
        if not self.is_reader:
            raise SyscallError(errno.EBADF)
        n = self.pipe.read_into(task, addr, count, bool(self.flags & O_NONBLOCK))
        if n:
            self.pipe.signal_async(writers=True)
        return n

    def write(self, data: bytes) -> int:
        if not self.is_writer:
            raise SyscallError(errno.EBADF)
        if not data:
            return 0
        n = self.pipe.write(data, bool(self.flags & O_NONBLOCK))
        self.pipe.signal_async(writers=False)
        return n

    def stat(self) -> Stat:
        if self.inode is not None:
            return self.inode.stat()
        t = self.pipe.ctime_ns
        return Stat(dev=PIPEFS_DEV, ino=self.pipe.ino, mode=S_IFIFO | 0o600, nlink=1,
                    blksize=PAGE, atime_ns=t, mtime_ns=t, ctime_ns=t)

    def ioctl(self, cmd: int, arg: int, task: object) -> int:
        mm = task.mm  # type: ignore[attr-defined]
        if cmd == FIONREAD:
            mm.copy_out(arg, self.pipe.nread().to_bytes(4, "little"))
            return 0
        if cmd == FIONBIO:
            on = int.from_bytes(mm.copy_in(arg, 4), "little")
            self.flags = (self.flags | O_NONBLOCK) if on else (self.flags & ~O_NONBLOCK)
            return 0
        raise SyscallError(errno.ENOTTY)

    def poll(self, events: int, timeout_s: float | None) -> int:
        return self.pipe.poll(events, self.is_reader, self.is_writer, self._w_seen, timeout_s)

    def poll_generation(self) -> int:
        p = self.pipe
        return p.rd_changes * self.is_reader + p.wr_changes * self.is_writer

    def release(self) -> None:
        if not self._released:
            self._released = True
            self.pipe.detach(self.is_reader, self.is_writer)

    def link_name(self) -> bytes:
        """The /proc/self/fd/N text of an anonymous pipe."""
        return b"pipe:[%d]" % self.pipe.ino


def make_pipe(flags: int = 0, *, interrupted: Callable[[], bool] | None = None,
              user: tuple[int, int, int, bool] | None = None) -> tuple[PipeFile, PipeFile]:
    """pipe2(2): (read end, write end).  O_CLOEXEC is the caller's business.
    ``user`` (uid, soft, hard, privileged) counts it to that user (pipe_acct.py)."""
    pipe = Pipe(interrupted=interrupted)
    if user is not None:
        pages = pipe_acct.charge_new(*user)
        pipe.capacity = pages * PAGE
        pipe.account = (user[0], pages)
    status = flags & O_NONBLOCK
    reader = PipeFile(pipe, O_RDONLY | status)
    writer = PipeFile(pipe, O_WRONLY | status)
    return reader, writer


def open_fifo(pipe: Pipe, flags: int, inode: Inode | None = None) -> PipeFile:
    """Open a fifo's pipe with fifo(7)'s rendezvous rules."""
    acc = flags & O_ACCMODE
    nonblock = bool(flags & O_NONBLOCK)
    if acc == O_WRONLY and nonblock:
        with pipe._lock:
            if pipe.readers == 0:
                raise SyscallError(errno.ENXIO)
    f = PipeFile(pipe, flags, inode)
    if acc == O_RDWR or nonblock:
        return f
    try:
        with pipe._lock:
            if acc == O_RDONLY:
                start = pipe.w_counter - (1 if f.is_writer else 0)
                while pipe.writers == 0 and pipe.w_counter == start:
                    pipe._wait()
            else:
                start = pipe.r_counter
                while pipe.readers == 0 and pipe.r_counter == start:
                    pipe._wait()
    except SyscallError:
        f.release()
        raise
    return f
