"""Reads of a Gofer file through a host descriptor the Gofer donated.

When (gofer/donate.py): a regular file of a read-only tree, on its first
read, asks Tlopenfd instead of Tlopenread; the Gofer sends the read-only
descriptor it opened for the fid.  From then on:

* read(2)/pread(2) (``read_to``) preadv the descriptor straight into the
  application's memory: one copy (host page cache -> memory file), no Gofer
  round trip and no Sentry page cache; the host's page cache is the cache.
* The Sentry page cache's fills (``_read``: the bytes reads behind
  MAP_PRIVATE copies of a file, the loader, sendfile) pread the descriptor
  instead of sending Tread; hits stay hits.

Coherence: a read-only tree is exclusive (goferfs.py), so nothing inside the
sandbox changes these files; a host-side change is seen by pread at once
(fresher than the page cache, which is keyed by the mtime the sandbox saw).

Bounds and release: the descriptors live in the client's ``Donated`` LRU
(at most a quarter of RLIMIT_NOFILE, 1024 by default).  A descriptor retired
by the LRU is asked for again by the file's next read (one round trip, as a
Tread miss costs); a file the Gofer did not donate reads through 9P for
good.  An inode freed by the dentry LRU retires its descriptor: from its
finalizer only queued (a finalizer may run while the LRU's lock is held),
closed by the next donation; ``clunk`` (teardown) closes it at once.

The Gofer's death: every read of a donated descriptor first asks
``client.alive()`` (one poll of the Gofer's pidfd, as a page-cache hit
does), and a dead Gofer closes them all: reads then fail with EIO as
uncached ones do (issue 16: nothing is read that no live server vouches for).
"""

from __future__ import annotations

import errno
import os
import threading
from typing import Any

from gofer.donate import Donated, HostFd
from sentry.kernel.errors import SyscallError
from sentry.vfs.inode import S_IFMT, S_IFREG

_intent = threading.local()


def set_read_open(on: bool) -> bool:
    """Mark this thread's path walk as one for an open(O_RDONLY) (vfs.py
    sets it around the resolve and puts back the returned old value): a
    name not yet walked is then walked, opened and donated in one round
    trip (Twalkopenfd), since its first read would ask anyway."""
    old = getattr(_intent, "read_open", False)
    _intent.read_open = on
    return old


def read_open() -> bool:
    return getattr(_intent, "read_open", False)


class GoferHostFd:
    """Mixin of GoferInode: the donated descriptor of one file (goferfs.py)."""

    fs: Any
    fid: int
    mode: int
    _io_fid: int | None
    _lock: Any
    _host: HostFd | None = None
    _no_donate: bool = False

    def _donated(self) -> Donated | None:
        d = getattr(self.fs.client, "donated", None)
        return d if isinstance(d, Donated) else None

    def _host_fd(self) -> HostFd | None:
        """This file's donated descriptor, asked for (Tlopenfd, which also
        opens the fid) if it may have one and has none live; None: read
        through 9P."""
        h = self._host
        if h is not None and not h.retired:
            return h
        if self._no_donate or not self.fs.readonly or (self.mode & S_IFMT) != S_IFREG:
            return None
        donated = self._donated()
        if donated is None:
            return None
        with self._lock:
            h = self._host
            if h is not None and not h.retired:
                return h
            _, h = self.fs.client.lopen_fd(self.fid)
            self._io_fid = self.fid  # open now, whether donated or not
            self._host = h
            if h is None:
                self._no_donate = True
            return h

    def _take_open(self, fid: int, opened: bool, h: HostFd | None) -> None:
        """Take what Twalkopenfd gave this new inode: its walk fid opened
        (so it is the read fid, as ``_read_fid`` would make it) and the
        descriptor."""
        if opened:
            self._io_fid = fid
        self._host = h

    def _host_pread(self, offset: int, count: int) -> bytes | None:
        """``count`` bytes at ``offset`` from the donated descriptor; None
        when there is none (read through 9P)."""
        h = self._host_fd()
        if h is None:
            return None
        return self._with_fd(h, lambda fd: os.pread(fd, count, offset))

    def _host_read_to(self, mm: Any, addr: int, offset: int, count: int) -> int | None:
        """preadv of the donated descriptor straight into application memory
        at ``addr``; None when there is none, or when part of the buffer is
        not writable (the caller's path then copies what fits, as Linux's
        copy_to_user ends short)."""
        if count <= 0:
            return None
        h = self._host_fd()
        if h is None:
            return None
        fill_out = getattr(mm, "fill_out", None)
        if fill_out is None:
            return None

        def read(fd: int) -> int | None:
            try:
                return fill_out(addr, count, lambda views: os.preadv(fd, views, offset))
            except SyscallError as e:
                if e.errno == errno.EFAULT:
                    return None
                raise
        return self._with_fd(h, read)

    def _with_fd(self, h: HostFd, use: Any) -> Any:
        """``use(fd)`` with ``h``'s descriptor held (never closed under it);
        EIO once the Gofer is dead; None when ``h`` was retired meanwhile."""
        client = self.fs.client
        if not client.alive():  # closes every donated descriptor, too
            raise SyscallError(errno.EIO)
        donated = self._donated()
        if donated is None:
            return None
        fd = donated.acquire(h)
        if fd < 0:
            return None
        try:
            return use(fd)
        except OSError as e:
            raise SyscallError(e.errno or errno.EIO) from None
        finally:
            donated.release(h)

    def _retire_host(self, *, later: bool) -> None:
        """The file is released: its descriptor goes (``later``: from a
        finalizer, queued)."""
        h, self._host = self._host, None
        donated = self._donated()
        if h is None or donated is None:
            return
        if later:
            donated.retire_later(h)
        else:
            donated.retire(h)
