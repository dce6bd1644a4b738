"""Host descriptors donated by the Gofer to the Sentry (Tlopenfd, SCM_RIGHTS).

Why: every 9P read is a round trip between two processes (~70 µs on an idle
2-vCPU machine, far more under load), and a first read pass of a big file
moves its bytes three times (host -> shm slot -> bytes -> application).  A
read-only host descriptor in the Sentry lets it pread/preadv the file
straight into application memory, as gVisor's gofer client reads a host FD
donated by lisafs' OpenAt.

What is donated (the Gofer decides, gofer/handlers.py ``t_lopenfd``): the
O_RDONLY descriptor the Gofer opened for a fid's Tlopen, of a *regular file*
of a *read-only* attach point.  It opens no new path to the host: the Gofer
reaches the file exactly as for Tlopen (one name at a time, O_NOFOLLOW, the
inode checked against the walked one), and the descriptor can do nothing the
fid cannot already do through Tread.  Writable attach points keep reading
through 9P: the Sentry does not cache their data (goferfs.py), so a donated
descriptor would be coherent with host changes there too, but it would be a
second read path beside the write fid for no measured gain; gVisor donates
for writable files only under its own page-cache rules (see docs/security.md).

Facts this relies on (unix(7), cmsg(3), recvmsg(2)):

* SCM_RIGHTS dups the sender's open file description into the receiver: the
  Sentry's descriptor shares the O_RDONLY mode (write/ftruncate/fallocate
  fail with EBADF/EINVAL), and pread never moves the shared file offset.
* A SOCK_SEQPACKET message keeps its payload and its descriptors together;
  a message read without room for its control data loses the descriptors
  (MSG_CTRUNC: they are closed by the kernel, nothing leaks).
* The Gofer serves one request at a time and sends the descriptor before it
  writes the answer into the channel, so the message is in the socket when
  the Sentry reads Rlopenfd(donated=1).  Several Sentry threads may be
  waiting at once, so each message carries the request's (tag, fid), and a
  thread that reads another's message leaves it in ``_stash``.
* Descriptors received are in flight against RLIMIT_NOFILE: :class:`Donated`
  bounds how many the Sentry keeps (an LRU); a file past the bound reads
  through 9P again, or asks again on its next read.
"""

from __future__ import annotations

import errno
import os
import socket
import struct
import threading
from collections import OrderedDict, deque

__all__ = ["Donated", "HostFd", "Receiver", "send_fd"]

PAYLOAD = struct.Struct("<HI")  # tag, fid
STASH_MAX = 64
"""Messages of other requests a receiver keeps before dropping the oldest."""
DEFAULT_MAX = 1024
"""Most donated descriptors the Sentry holds (less under a low RLIMIT_NOFILE)."""


def send_fd(sock: socket.socket, tag: int, fid: int, fd: int) -> bool:
    """The Gofer's side: ``fd`` with (tag, fid) over ``sock``; False when it
    could not go now (a full or closed socket: the request is then answered
    donated=0, and the Sentry reads through Tread)."""
    try:
        return sock.sendmsg([PAYLOAD.pack(tag, fid)],
                           [(socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack("i", fd))],
                           socket.MSG_DONTWAIT) == PAYLOAD.size
    except OSError:
        return False


def _close_all(fds: list[int]) -> None:
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass


class Receiver:
    """The Sentry's side of the donation socket (it owns ``sock``)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._lock = threading.Lock()
        self._stash: OrderedDict[tuple[int, int], int] = OrderedDict()
        self.closed = False

    def take(self, tag: int, fid: int) -> int:
        """The descriptor sent for request (tag, fid), or -1 when none is
        there (a Gofer that claimed a donation and sent nothing, or a message
        that was not one: either way the caller reads through 9P)."""
        with self._lock:
            fd = self._stash.pop((tag, fid), -1)
            while fd < 0 and not self.closed:
                got = self._recv_one()
                if got is None:
                    break
                key, one = got
                if key == (tag, fid):
                    fd = one
                else:
                    self._stash[key] = one  # another thread's: it takes it from here
                    while len(self._stash) > STASH_MAX:  # whoever asked gave up
                        _close_all([self._stash.popitem(last=False)[1]])
            return fd

    def _recv_one(self) -> tuple[tuple[int, int], int] | None:
        """One message (never blocks); None when the socket has none.  A
        message that is not exactly one payload and one descriptor is
        dropped, its descriptors closed."""
        while True:
            try:
                data, anc, flags, _ = self.sock.recvmsg(
                    PAYLOAD.size, socket.CMSG_SPACE(4),
                    socket.MSG_DONTWAIT | socket.MSG_CMSG_CLOEXEC)
            except (BlockingIOError, InterruptedError):
                return None
            except OSError:
                self.closed = True
                return None
            if not data and not anc:
                self.closed = True  # EOF: the Gofer is gone
                return None
            fds: list[int] = []
            for level, kind, raw in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    n = len(raw) // 4
                    fds += struct.unpack(f"{n}i", raw[: n * 4])
            if (len(data) == PAYLOAD.size and len(fds) == 1
                    and not flags & (socket.MSG_CTRUNC | socket.MSG_TRUNC)):
                return PAYLOAD.unpack(data), fds[0]
            _close_all(fds)  # malformed: nothing kept, try the next one

    def close(self) -> None:
        with self._lock:
            self.closed = True
            _close_all(list(self._stash.values()))
            self._stash.clear()
        self.sock.close()


class HostFd:
    """One donated descriptor, shared by the reads of one file.  ``fd`` is
    valid while ``users`` > 0 or the descriptor is not retired: a read
    acquires it, so eviction by another thread never closes it mid-pread
    (the number could be reused by the next descriptor received)."""

    __slots__ = ("fd", "key", "retired", "users")

    def __init__(self, fd: int, key: int) -> None:
        self.fd = fd
        self.key = key
        self.users = 0
        self.retired = False


class Donated:
    """Every donated descriptor the Sentry holds, least recently used first,
    at most ``limit``: adding one past it retires the oldest (closed once no
    read is using it).  Thread-safe."""

    def __init__(self, limit: int | None = None) -> None:
        self.limit = limit if limit is not None else default_limit()
        self._lru: OrderedDict[int, HostFd] = OrderedDict()
        self._lock = threading.Lock()
        self._next = 0
        self._later: deque[HostFd] = deque()  # see retire_later
        self.closed = False
        self.given = 0
        """Descriptors received in all (tests, debugging)."""

    def __len__(self) -> int:
        return len(self._lru)

    def add(self, fd: int) -> HostFd | None:
        """Keep ``fd`` (now owned here); None, and ``fd`` closed, once every
        descriptor was dropped for good (:meth:`close_all`)."""
        old: list[int] = []
        with self._lock:
            old += self._drain()
            if self.closed:
                old.append(fd)
                h = None
            else:
                self._next += 1
                self.given += 1
                h = HostFd(fd, self._next)
                self._lru[h.key] = h
                while len(self._lru) > self.limit:
                    old += self._retire(self._lru.popitem(last=False)[1])
        _close_all(old)
        return h

    def acquire(self, h: HostFd) -> int:
        """``h``'s descriptor for one read (-1: retired, read through 9P);
        pair with :meth:`release`."""
        with self._lock:
            if h.retired:
                return -1
            h.users += 1
            self._lru.move_to_end(h.key)
            return h.fd

    def release(self, h: HostFd) -> None:
        with self._lock:
            h.users -= 1
            close = h.retired and h.users == 0
        if close:
            _close_all([h.fd])

    def _retire(self, h: HostFd) -> list[int]:
        """Mark ``h`` retired (lock held); its fd to close now, if unused."""
        h.retired = True
        return [h.fd] if h.users == 0 else []

    def retire(self, h: HostFd) -> None:
        """The file is released (its inode freed): close its descriptor."""
        with self._lock:
            if h.retired:
                return
            self._lru.pop(h.key, None)
            old = self._retire(h)
        _close_all(old)

    def retire_later(self, h: HostFd) -> None:
        """:meth:`retire` from a finalizer, which may run while this object's
        lock is held: only queued (deque.append takes no lock), done by the
        next :meth:`add` or :meth:`close_all`."""
        self._later.append(h)

    def _drain(self) -> list[int]:
        """Retire the queued descriptors (lock held); returns fds to close."""
        old: list[int] = []
        while self._later:
            try:
                h = self._later.popleft()
            except IndexError:
                break
            if not h.retired:
                self._lru.pop(h.key, None)
                old += self._retire(h)
        return old

    def close_all(self) -> None:
        """The Gofer is gone, or the sandbox ends: no donated descriptor is
        used again (reads fail with EIO as uncached ones do)."""
        with self._lock:
            self.closed = True
            old = self._drain()
            for h in self._lru.values():
                old += self._retire(h)
            self._lru.clear()
        _close_all(old)


def default_limit() -> int:
    """DEFAULT_MAX, or a quarter of the soft RLIMIT_NOFILE if that is less:
    the Sentry's own descriptors (memory file arenas, channels, stubs'
    sockets, host stdio) must always have room."""
    import resource

    try:
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (OSError, ValueError):
        return 64
    if soft == resource.RLIM_INFINITY:
        return DEFAULT_MAX
    return max(8, min(DEFAULT_MAX, soft // 4))


def check_errno(exc: OSError) -> int:
    """The errno a failed pread of a donated descriptor gives the application."""
    return exc.errno or errno.EIO


def socketpair() -> tuple[socket.socket, socket.socket]:
    """(the Sentry's end, the Gofer's end) of a new donation socket."""
    return socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
