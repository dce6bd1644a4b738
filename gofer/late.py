"""Trees the Gofer is given after it confined itself: a pod's later containers.

A pod runs in one sandbox (docs/pods.md): its first container boots the
Sentry and this Gofer; every later container of the pod brings a root
filesystem (and bind sources) of its own that did not exist when the Gofer
pivot_root'ed into the first one's root.  The confined Gofer can open no host
path any more, so the sandbox host (unconfined, root on the host) opens each
tree and the descriptors travel, by SCM_RIGHTS, host -> Sentry -> Gofer, on a
SOCK_SEQPACKET socket the Sentry made before either process confined itself.

One message per tree: a JSON object ``{"name": ANAME, "writable": BOOL}``
with the tree's O_PATH descriptor (and, for a file, the file opened for I/O)
as ``fds``, or ``{"drop": ANAME}`` with no descriptor, when the container is
gone (its rootfs must be unmountable: containerd unmounts it at delete, and
a descriptor held here would make that EBUSY).

Facts this relies on:

- A descriptor received over a socket names the same open file in the
  receiver: walks from it are the Gofer's usual one-O_NOFOLLOW-name-at-a-time
  walks and ".." clamps at it, exactly as for a bind source opened before
  confinement (gofer/fids.py open_attaches).  A pivot_root does not matter
  to a descriptor.
- What comes over the socket is from the Sentry, which the Gofer does not
  trust: every message is checked (size, JSON shape, name, descriptor count
  and file type), and a bad one is dropped with its descriptors closed.  The
  Sentry gains nothing by sending a descriptor: it already held it, and its
  own filter denies openat, so the tree is reachable only through 9P here.
- SOCK_SEQPACKET keeps message boundaries; MSG_DONTWAIT makes the read a
  poll: the socket is drained at every Tattach (the Sentry sends a tree
  before it attaches to it), so the single-threaded serve loop needs no
  thread and no wake-up of its own.  recvmsg is allowed by the Gofer's
  filter on this one descriptor only (gofer/confine.py).
"""

from __future__ import annotations

import array
import json
import os
import socket
import stat
from collections.abc import MutableMapping

from gofer.fids import Attach

MAX_MESSAGE = 4096
MAX_FDS = 2  # the tree's O_PATH descriptor, and a file's I/O descriptor
MAX_LATE = 4096  # trees served at once: a bound on what the Sentry can make us hold


def _close(fds: list[int]) -> None:
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass


def _check(name: object, writable: object, fds: list[int]) -> Attach:
    """The Attach a well-formed message describes; ValueError otherwise."""
    if not isinstance(name, str) or not name or name == "/" or len(name) > 255:
        raise ValueError(f"bad tree name {name!r}")
    if not isinstance(writable, bool) or not 1 <= len(fds) <= MAX_FDS:
        raise ValueError("bad tree message")
    st = os.fstat(fds[0])
    if stat.S_ISDIR(st.st_mode):
        if len(fds) != 1:
            raise ValueError("a directory comes alone")
        return Attach(name, fds[0], writable)
    if not stat.S_ISREG(st.st_mode) or len(fds) != 2:
        raise ValueError("a tree is a directory, or a file with its I/O descriptor")
    io = os.fstat(fds[1])
    if (io.st_dev, io.st_ino) != (st.st_dev, st.st_ino):
        raise ValueError("a file's two descriptors differ")
    return Attach(name, fds[0], writable, fds[1])


def _recv(sock: socket.socket) -> tuple[bytes, list[int], int]:
    """One message without waiting (BlockingIOError when there is none).
    Not socket.recv_fds: up to Python 3.12 it drops its ``flags`` argument,
    so MSG_DONTWAIT would block."""
    data, anc, flags, _ = sock.recvmsg(MAX_MESSAGE, socket.CMSG_SPACE(MAX_FDS * 4),
                                       socket.MSG_DONTWAIT | socket.MSG_CMSG_CLOEXEC)
    fds = array.array("i")
    for level, kind, payload in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(payload[: len(payload) - len(payload) % fds.itemsize])
    return data, list(fds), flags


class LateTrees:
    """The Gofer's end of the tree socket; :meth:`drain` applies what came."""

    def __init__(self, fd: int) -> None:
        self.sock = socket.socket(fileno=fd)
        self.names: set[str] = set()  # what came this way (only these may be dropped)

    def drain(self, attaches: MutableMapping[str, Attach], release: object) -> None:
        """Apply every queued message to ``attaches``; ``release(attach)`` closes
        the fids still open below a dropped tree.  Never raises for bad input."""
        while True:
            try:
                data, fds, flags = _recv(self.sock)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return  # the Sentry's end closed: nothing more will come
            if not data and not fds:
                return  # EOF
            try:
                if flags & (socket.MSG_TRUNC | socket.MSG_CTRUNC):
                    raise ValueError("truncated")
                msg = json.loads(data)
                if not isinstance(msg, dict):
                    raise ValueError("not an object")
                if "drop" in msg:
                    _close(fds)
                    fds = []
                    self._drop(attaches, msg["drop"], release)
                    continue
                if len(self.names) >= MAX_LATE:
                    raise ValueError("too many trees")
                at = _check(msg.get("name"), msg.get("writable"), fds)
                if at.name in attaches:
                    raise ValueError(f"tree {at.name!r} exists")
                attaches[at.name] = at
                self.names.add(at.name)
            except (ValueError, OSError, UnicodeDecodeError):
                _close(fds)

    def _drop(self, attaches: MutableMapping[str, Attach], name: object,
              release: object) -> None:
        if not isinstance(name, str) or name not in self.names:
            return
        self.names.discard(name)
        at = attaches.pop(name, None)
        if at is None:
            return
        release(at)  # type: ignore[operator]
        _close([at.fd] + ([at.io_fd] if at.io_fd >= 0 else []))

    def close(self) -> None:
        self.sock.close()
