"""A socket as a file description: read/write/poll/fstat/ioctl on an
endpoint, so the ordinary file paths (read, readv, write, close, poll,
select, epoll, fcntl O_NONBLOCK) work on sockets as on Linux.

Facts: fstat of a socket gives S_IFSOCK|0777 on sockfs with a fresh inode
number (/proc/PID/fd shows "socket:[ino]"); read is recv with no flags and
write is send with no flags (so a write to a broken stream raises SIGPIPE
through the ordinary write path); FIONREAD/SIOCINQ give the bytes queued
(a datagram socket: the next datagram's size).
"""

from __future__ import annotations

import errno
import itertools
import struct
import time
import weakref
from collections.abc import Callable
from typing import ClassVar

from sentry.kernel.errors import SyscallError
from sentry.net import consts as c
from sentry.net import netconfig_ioctl, parked, unix_gc
from sentry.net.endpoint import Endpoint, drop_rights
from sentry.net.stream import StreamEndpoint
from sentry.vfs.file import (
    O_NONBLOCK,
    O_RDWR,
    POLLERR,
    POLLHUP,
    FileDescription,
    Stat,
    check_interrupt,
)
from sentry.vfs.inode import S_IFSOCK, alloc_dev, now_ns

SOCKFS_DEV = alloc_dev()
_ino = itertools.count(1)
FIONREAD = 0x541B  # == SIOCINQ
SIOCOUTQ = 0x5411
FIONBIO = 0x5421
SIOCGSTAMP = 0x8906


class SocketFile(FileDescription):
    """An open socket: O_RDWR, O_NONBLOCK from SOCK_NONBLOCK or fcntl."""

    # (pid, uid, gid) of the task calling write(2), for SCM_CREDENTIALS: the
    # syscall layer installs it (this layer sits below the kernel's tasks).
    caller_creds: ClassVar[Callable[[], tuple[int, int, int]]] = staticmethod(
        lambda: (0, 0, 0))
    live: ClassVar[int] = 0  # sockets not released yet (/proc/net/sockstat's "used")

    def __init__(self, endpoint: Endpoint, nonblock: bool = False) -> None:
        super().__init__(O_RDWR | (O_NONBLOCK if nonblock else 0))
        self.endpoint = endpoint
        endpoint.file_ref = weakref.ref(self)  # type: ignore[attr-defined]  # unix_gc's owner
        self.ino = next(_ino)
        SocketFile.live += 1
        self.ctime_ns = now_ns()
        self._released = False

    @property
    def takes_pieces(self) -> bool:
        """A stream socket may take a large write in parts (syscalls/pieces.py);
        a datagram or a record is one message."""
        return self.endpoint.stype == c.SOCK_STREAM

    @property
    def nonblock(self) -> bool:
        return bool(self.flags & O_NONBLOCK)

    def read(self, count: int) -> bytes:
        if count == 0:
            return b""  # sock_read_iter: a zero-length read is 0 for every socket
        got = self.endpoint.recv(count, 0, self.nonblock)
        drop_rights(got.rights)  # read(2) discards passed descriptors
        return got.data

    def read_into(self, task: object, addr: int, count: int) -> int:
        """read(2) straight into ``task``'s memory: a blocked stream read
        parks and the writer finishes it (sentry/net/parked.py)."""
        ep = self.endpoint
        if isinstance(ep, StreamEndpoint) and ep.parks_reads():
            return parked.read_into(ep, task, addr, count, self.nonblock)
        got = ep.recv(count, 0, self.nonblock)
        drop_rights(got.rights)
        if got.data:
            task.mm.copy_out(addr, got.data)  # type: ignore[attr-defined]
        return got.size

    def write(self, data: bytes) -> int:
        return self.endpoint.send(data, 0, self.nonblock, None, None, None,
                                  SocketFile.caller_creds())

    def stat(self) -> Stat:
        t = self.ctime_ns
        return Stat(dev=SOCKFS_DEV, ino=self.ino, mode=S_IFSOCK | 0o777, nlink=1,
                    atime_ns=t, mtime_ns=t, ctime_ns=t)

    def ioctl(self, cmd: int, arg: int, task: object) -> int:
        mm = task.mm  # type: ignore[attr-defined]
        if cmd == FIONREAD:
            mm.copy_out(arg, struct.pack("<i", self.endpoint.nread()))
            return 0
        if cmd == SIOCOUTQ:
            mm.copy_out(arg, struct.pack("<i", 0))
            return 0
        if netconfig_ioctl.handles(cmd):  # interface queries (netdevice(7))
            creds = task.creds  # type: ignore[attr-defined]
            return netconfig_ioctl.ioctl(task.kernel.netconfig, cmd, arg, mm,  # type: ignore[attr-defined]
                                         creds.capable(12))  # CAP_NET_ADMIN
        raise SyscallError(errno.ENOTTY)

    def poll(self, events: int, timeout_s: float | None) -> int:
        always = POLLERR | POLLHUP
        got = self.endpoint.readiness() & (events | always)
        if got or timeout_s == 0:
            return got
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            check_interrupt()
            with self.endpoint.cond:
                self.endpoint.cond.wait(0.05)
            got = self.endpoint.readiness() & (events | always)
            if got or (deadline is not None and time.monotonic() >= deadline):
                return got

    def poll_generation(self) -> int:
        """Moves on every change of the endpoint's state (EPOLLET's edges)."""
        return getattr(self.endpoint.cond, "changes", 0)

    def release(self) -> None:
        if not self._released:
            self._released = True
            SocketFile.live -= 1
            self.endpoint.release()
            unix_gc.released(self.endpoint)

    def link_name(self) -> bytes:
        return b"socket:[%d]" % self.ino
