"""Files the Gofer serves: the container root and bind mounts, over 9P.

The Sentry never opens a host file; every byte comes from the Gofer through
:class:`GoferClient` (gofer/client.py).  Two modes:

* read-only (the container root under its overlay, and "ro" binds): the Gofer
  only ever walks, stats, opens for reading, reads, lists and reads links.
* writable ("rw" bind mounts, and an OCI root without the overlay;
  gofer_writes.py): creates, writes, truncates, renames and removes go
  through to the host file.

Revalidation rules (what gVisor's gofer filesystem calls its caching modes;
its default, "exclusive", assumes the sandbox owns the tree):

* A read-only tree is owned by the sandbox (exclusive): nothing inside the
  sandbox can change it (the Gofer refuses writes; the overlay's writes land
  in its upper tmpfs, which the overlay consults first) and the host is
  expected to leave it alone while the sandbox runs, as a container's image
  is.  So nothing here is revalidated: a name walked once stays walked, its
  attributes from that walk (Twalkgetattr: walk and getattr in one round
  trip) are kept, failed lookups are remembered (at most ABSENT_MAX names
  per directory), and file data stays in the page cache below.  A repeated
  stat or open of an unchanged path costs no Gofer round trip.  A host that
  does change such a tree under a running sandbox is seen only for names
  not yet looked up, and for data of files whose mtime the sandbox has not
  yet seen (the page cache is keyed by it).
* A writable tree is shared with the host (a bind mount's source usually is:
  `docker run -v` exists for that), so attributes are fetched on every stat
  (one Tgetattr), data is not cached and failed lookups are not remembered.
  Names already looked up stay cached (a host-side rename or unlink under a
  running sandbox can leave a stale name, as gVisor's non-revalidating modes
  do).  Changes made inside the sandbox are seen at once by every process in
  it, since they go through the same inodes: every create, link, unlink,
  rename and setattr updates or invalidates the cached names and marks the
  attributes of the inodes involved stale (gofer_writes.py).  Trusting
  attributes here until a change marks them stale is not enough: two names
  of one host file (a hard link walked by both names) are two inodes, and a
  change through one leaves the other's link count and size stale
  (tests/test_gofer_cache.py shows it).
* The bundle cannot yet declare a read-only tree shared (gVisor's
  ``dev.gvisor.spec.mount.*.share`` annotation): that would be the switch
  for a revalidating read-only mode.

Caching of the read-only mode, in detail:

* each inode holds the fid of one walk; a child is walked once and kept for
  as long as it is in use or recently used (below);
* file data goes through a Sentry page cache of 64 KiB chunks (LRU, ~256 MiB
  total by default), so repeated reads and mmap of the same binary do not ask
  the Gofer again.  A chunk is keyed by the file's qid path and mtime, so a
  file that did change is read afresh once its attributes are refreshed, and
  a file whose inode was evicted and looked up again finds its chunks.
  A read copies cached chunks straight into the application's memory
  (``read_to``: one copy, no bytes assembled in between); a miss of a big
  read fills FILL_CHUNKS chunks with one Tread.
  A hit is served only while the Gofer is alive (one poll of its pidfd,
  GoferClient.alive): once it is dead, cached reads fail with EIO as
  uncached ones do, so nothing is read that no live server vouches for.
* a regular file's first read asks the Gofer for its host descriptor
  (Tlopenfd, gofer/donate.py); with one, read(2) preadv's it straight into
  application memory (the host's page cache is the cache, nothing is kept
  here) and the page cache above fills from it instead of Tread
  (gofer_hostfd.py, with the same EIO rule once the Gofer is dead).  The
  writable mode reads through 9P: see gofer/donate.py for why.

Reads use one lopen'ed fid per file, shared by every description of that file
(9P reads carry their own offset): in the read-only mode the file's own walk
fid, opened once (a regular file is never walked from, and 9P forbids walking
an open fid); in the writable mode a clone made with a zero-name walk, since a
write fid is cloned from the walk fid later.  Opening and closing a file N
times costs no new fid.

Bounded fids.  Every live GoferInode holds its walk fid and maybe a read and a
write fid; the Gofer allows MAX_FIDS (gofer/fids.py) and each costs it host
descriptors, so inodes must not live forever.  The filesystem is ``evictable``
(dentry.py): the child maps here are weak, an inode lives while an overlay
inode, a dentry or a description holds it, and the dentry LRU bounds the
unheld ones.  When an inode is freed, its finalizer (``__del__``) hands its
fids to ``client.clunk_later``: a finalizer may run in any thread at any point,
even while the client's lock is held, so it only queues them, and the client
clunks them before its next walk.  An inode whose fids were already clunked
(``clunk``, teardown) has them set to None so they are never clunked twice (a
clunked fid number is reused).  Nothing is lost by eviction: the Gofer's tree
is the truth, the inode number is the qid path, the page cache is keyed by it.

Lock order: ``GoferInode._lock`` (child cache, lazy fids) -> ``PageCache._lock``;
neither is held across another inode's lock.  Client calls are made with an
inode lock held only to open the shared read fid once.
"""

from __future__ import annotations

import errno
import os
import threading
import time
import weakref
from collections.abc import MutableMapping
from typing import Any, Protocol

from sentry import memlimit
from sentry.bytes_lru import BytesLru
from sentry.kernel.errors import SyscallError
from sentry.vfs.dentry import child_map
from sentry.vfs.file import O_ACCMODE, O_RDONLY, FileDescription, Stat
from sentry.vfs.gofer_hostfd import GoferHostFd, read_open
from sentry.vfs.gofer_writes import GoferWrites
from sentry.vfs.inode import S_IFDIR, S_IFLNK, S_IFMT, S_IFREG, Filesystem, Inode, StatFs

CHUNK = 64 * 1024
PAGE = 4096
DEFAULT_CACHE_BYTES = memlimit.cache_bytes(256 * 1024 * 1024)  # less under a memory limit
FILL_CHUNKS = max(1, min(15, DEFAULT_CACHE_BYTES // (8 * CHUNK)))
"""Chunks one Tread fills on a miss of a big read: 960 KiB, under the default
msize (1 MiB + 4 KiB less the headers), so one round trip.  Under a small
memory limit, an eighth of the page cache (256 KiB at 32 MiB): a fill is
held twice in the Sentry while it is cut into chunks and once more in the
Gofer while it is answered, ~3 MiB at the moment an exec reads its binary,
which alone was past what `docker run -m 32m` leaves (issue 16)."""
ATTR_TTL_S = float("inf")
"""How long a read-only tree's attributes are trusted: for ever (exclusive)."""
NEG_TTL_S = float("inf")
"""How long a read-only tree's failed lookups are trusted: for ever (exclusive)."""
ABSENT_MAX = 1024
"""Failed lookups remembered per directory (a million probed names stay bounded)."""
READDIR_COUNT = 64 * 1024
V9FS_MAGIC = 0x01021997
O_DIRECTORY = 0o200000
O_TRUNC = 0o1000


def copy_what_fits(mm: Any, addr: int, view: memoryview) -> int:
    """After a copy_out of ``view`` to ``addr`` failed: copy it page by
    page up to the first page that takes no write, as Linux's
    copy_to_user ends short; returns the bytes copied.  (The rare path:
    a buffer whose tail is unmapped or read-only.)"""
    done = 0
    while done < len(view):
        step = min(len(view) - done, PAGE - (addr + done) % PAGE)
        try:
            mm.copy_out(addr + done, view[done:done + step])
        except SyscallError:
            break
        done += step
    return done


class GoferClient(Protocol):
    """What this filesystem needs from gofer/client.py (every call may raise SyscallError)."""

    def walk(self, fid: int, names: list[bytes]) -> tuple[int, list[Any]]: ...
    def getattr(self, fid: int) -> Any: ...
    def lopen(self, fid: int, flags: int) -> tuple[Any, int]: ...
    def read(self, fid: int, offset: int, count: int) -> bytes: ...
    def alive(self) -> bool: ...
    def readdir(self, fid: int, offset: int, count: int) -> list[Any]: ...
    def readlink(self, fid: int) -> bytes: ...
    def statfs(self, fid: int) -> Any: ...
    def clunk(self, fid: int) -> None: ...
    def clunk_later(self, fid: int) -> None: ...  # safe from a finalizer (optional)
    # Used by writable filesystems only (gofer_writes.py).
    def setattr(self, fid: int, valid: int, mode: int = 0, uid: int = 0, gid: int = 0,
                size: int = 0, atime_ns: int = 0, mtime_ns: int = 0) -> None: ...
    def write(self, fid: int, offset: int, data: bytes) -> int: ...
    def lcreate(self, dfid: int, name: bytes, flags: int, mode: int,
                gid: int) -> tuple[Any, int]: ...
    def mkdir(self, dfid: int, name: bytes, mode: int, gid: int) -> Any: ...
    def symlink(self, dfid: int, name: bytes, target: bytes, gid: int) -> Any: ...
    def mknod(self, dfid: int, name: bytes, mode: int, major: int, minor: int,
              gid: int) -> Any: ...
    def link(self, dfid: int, fid: int, name: bytes) -> None: ...
    def renameat(self, olddfid: int, oldname: bytes, newdfid: int, newname: bytes) -> None: ...
    def unlinkat(self, dfid: int, name: bytes, flags: int = 0) -> None: ...


class PageCache(BytesLru):
    """An LRU of file chunks shared by every gofer-backed file of a sandbox."""

    # The key tuple, the bytes object's header and the OrderedDict node: a
    # tree of empty or tiny files must not fill the Sentry unaccounted.
    entry_overhead = 256

    def __init__(self, limit_bytes: int = DEFAULT_CACHE_BYTES) -> None:
        super().__init__(limit_bytes)
        self.misses = 0


class GoferFs(Filesystem):
    """A filesystem served by the Gofer from ``root_fid`` (an attach point's
    root: a directory, or a regular file for a file bind)."""

    name = "9p"
    magic = V9FS_MAGIC
    evictable = True  # dentries and inodes here are bounded (dentry.py)

    def __init__(self, client: GoferClient, root_fid: int, *,
                 cache: PageCache | None = None, source: str = "none",
                 readonly: bool = True, root_path: str = "/") -> None:
        super().__init__(readonly=readonly, source=source)
        # What mountinfo's root field shows: a bind's host source, as Linux
        # shows the bound directory's path within its filesystem.
        self.root_path = root_path
        self.client = client
        self.cache = cache if cache is not None else PageCache()
        # Every live inode, for teardown; weak, so it keeps none alive.
        self._inodes: weakref.WeakSet[GoferInode] = weakref.WeakSet()
        # Where a freed inode's fids go: the client's queue, drained before its
        # next walk; an in-process client without one clunks at once.
        self.clunk_later = getattr(client, "clunk_later", client.clunk)
        self.attr_ttl = ATTR_TTL_S if readonly else 0.0
        self.root: GoferInode = GoferInode(self, root_fid)

    def statfs(self) -> StatFs:
        try:
            r = self.client.statfs(self.root.fid)
        except SyscallError:
            return StatFs(type=self.magic, fsid=self.dev)
        return StatFs(type=self.magic, bsize=getattr(r, "bsize", 4096),
                      blocks=getattr(r, "blocks", 0), bfree=getattr(r, "bfree", 0),
                      bavail=getattr(r, "bavail", 0), files=getattr(r, "files", 0),
                      ffree=getattr(r, "ffree", 0), fsid=self.dev,
                      namelen=getattr(r, "namelen", 255), frsize=getattr(r, "bsize", 4096),
                      flags=1 if self.readonly else 0)  # ST_RDONLY

    def options(self) -> str:
        return "ro" if self.readonly else "rw"

    def close(self, *, server_ending: bool = False) -> None:
        """Clunk every fid this filesystem holds (sandbox teardown).
        ``server_ending``: the Gofer is about to end, and its fids with it,
        so they are only forgotten here: no round trip each (~20 for a
        `do /bin/true`, on the exit path a user waits on)."""
        for inode in list(self._inodes):
            inode.clunk(send=not server_ending)
        self._inodes.clear()


class GoferInode(GoferHostFd, GoferWrites, Inode):
    """A file of the Gofer's tree, named by one walked fid."""

    fs: GoferFs

    def __init__(self, fs: GoferFs, fid: int, attr: Any = None) -> None:
        """Take ownership of ``fid`` once its attributes are read (``attr``:
        already read, by the walk that made ``fid``); if that fails the caller
        still owns (and clunks) it."""
        self.fs = fs
        self.fid = -1  # -1: no fid owned (not yet, or clunked)
        self._io_fid: int | None = None
        self._wfid: int | None = None
        self._lock = threading.Lock()
        self._absent: dict[bytes, float] = {}
        self._link: bytes | None = None
        self._attr_at = 0.0
        self._pipe = None
        self.fid = fid
        try:
            if attr is not None:
                self._set_attr(attr, time.monotonic())
            else:
                self._refresh(force=True)
        except BaseException:
            self.fid = -1
            raise
        self.ino = self._attr_ino
        self._children: MutableMapping[bytes, GoferInode] = child_map(self.is_dir())  # type: ignore[assignment]
        fs._inodes.add(self)

    def _owned_fids(self) -> set[int]:
        """Every fid this inode holds (the read fid may be the walk fid itself)."""
        return {f for f in (self._io_fid, self._wfid, self.fid) if f is not None and f >= 0}

    def __del__(self) -> None:
        # A finalizer: queue the fids, never talk to the Gofer from here.
        try:
            self._retire_host(later=True)
            for fid in self._owned_fids():
                self.fs.clunk_later(fid)
        except Exception:  # noqa: BLE001 - interpreter shutdown, dead client
            pass

    # Attributes.
    def _refresh(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._attr_at < self.fs.attr_ttl:
            return
        self._set_attr(self.fs.client.getattr(self.fid), now)

    def _set_attr(self, a: Any, now: float) -> None:
        """Take the attributes ``a`` (a gofer Attr) read at ``now``."""
        self.mode = a.mode
        self.uid = a.uid
        self.gid = a.gid
        self.nlink = a.nlink
        self.rdev = a.rdev
        self.size = a.size
        self._blocks = a.blocks
        self._blksize = a.blksize or 4096
        self.atime_ns = a.atime_ns
        self.mtime_ns = a.mtime_ns
        self.ctime_ns = a.ctime_ns
        self._attr_ino = a.ino
        self._attr_at = now

    def stat(self) -> Stat:
        self._refresh()
        return Stat(dev=self.fs.dev, ino=self.ino, mode=self.mode, nlink=self.nlink,
                    uid=self.uid, gid=self.gid, rdev=self.rdev, size=self.size,
                    blksize=self._blksize, blocks=self._blocks, atime_ns=self.atime_ns,
                    mtime_ns=self.mtime_ns, ctime_ns=self.ctime_ns)

    # Names.
    def lookup(self, name: bytes) -> Inode:
        if not self.is_dir():
            raise SyscallError(errno.ENOTDIR)
        with self._lock:
            child = self._children.get(name)
            if child is not None:
                return child
            seen = self._absent.get(name)
            if seen is not None and time.monotonic() - seen < NEG_TTL_S:
                raise SyscallError(errno.ENOENT)
        walk_getattr = getattr(self.fs.client, "walk_getattr", None)
        walk_open = (getattr(self.fs.client, "walk_open_fd", None)
                     if self.fs.readonly and read_open() else None)
        attr = None
        opened, host = False, None
        try:
            if walk_open is not None:  # an open(O_RDONLY)'s name: walk, open, donate
                fid, attr, opened, host = walk_open(self.fid, name)
            elif walk_getattr is not None:  # one round trip for both
                fid, attr = walk_getattr(self.fid, name)
            else:
                fid, _ = self.fs.client.walk(self.fid, [name])
        except SyscallError as e:
            if e.errno == errno.ENOENT and self.fs.readonly:
                with self._lock:
                    self._remember_absent(name)
            raise
        try:
            child = GoferInode(self.fs, fid, attr)
        except SyscallError:
            if host is not None:
                self.fs.client.donated.retire(host)
            self.fs.client.clunk(fid)
            raise
        child._take_open(fid, opened, host)
        with self._lock:
            prior = self._children.get(name)
            if prior is not None:  # another thread walked it meanwhile
                child.clunk()
                return prior
            self._children[name] = child
            return child

    def _remember_absent(self, name: bytes) -> None:
        """Note a failed lookup (``_lock`` held), keeping at most ABSENT_MAX."""
        absent = self._absent
        now = time.monotonic()
        if len(absent) >= ABSENT_MAX:
            for n in [n for n, t in absent.items() if now - t >= NEG_TTL_S]:
                del absent[n]
            while len(absent) >= ABSENT_MAX:  # all fresh: forget the oldest
                del absent[next(iter(absent))]
        absent[name] = now

    def iterdir(self) -> list[tuple[bytes, int, int]]:
        if not self.is_dir():
            raise SyscallError(errno.ENOTDIR)
        client = self.fs.client
        fid, _ = client.walk(self.fid, [])
        out: list[tuple[bytes, int, int]] = []
        try:
            client.lopen(fid, os.O_RDONLY | O_DIRECTORY)
            cookie = 0
            while True:
                ents = client.readdir(fid, cookie, READDIR_COUNT)
                if not ents:
                    break
                for e in ents:
                    name = e.name.encode("utf-8", "surrogateescape")
                    if name not in (b".", b".."):
                        out.append((name, e.qid.path, e.type))
                    cookie = e.offset
        finally:
            client.clunk(fid)
        return out

    # Symlinks.
    def readlink(self) -> bytes:
        if (self.mode & S_IFMT) != S_IFLNK:
            raise SyscallError(errno.EINVAL)
        if self._link is None:
            self._link = self.fs.client.readlink(self.fid)
        return self._link

    # Data.
    def _read_fid(self) -> int:
        with self._lock:
            if self._io_fid is None and self.fs.readonly:
                # A regular file of a read-only tree is never walked from (9P
                # forbids walking an open fid): open its own fid, saving the
                # clone's walk and clunk.
                self.fs.client.lopen(self.fid, os.O_RDONLY)
                self._io_fid = self.fid
            elif self._io_fid is None:
                fid, _ = self.fs.client.walk(self.fid, [])
                try:
                    self.fs.client.lopen(fid, os.O_RDONLY)
                except SyscallError:
                    self.fs.client.clunk(fid)
                    raise
                self._io_fid = fid
            return self._io_fid

    def _read(self, offset: int, count: int) -> bytes:
        """This file's bytes from the Gofer.  A read-only tree's file is
        opened by its first read (Tlopenread: one round trip, not two), with
        the inode lock held so no Tlopen races it (as ``_read_fid``)."""
        data = self._host_pread(offset, count)  # a donated descriptor (gofer_hostfd.py)
        if data is not None:
            return data
        client = self.fs.client
        if self._io_fid is None and self.fs.readonly:
            lopen_read = getattr(client, "lopen_read", None)
            if lopen_read is not None:
                with self._lock:
                    if self._io_fid is None:
                        data = lopen_read(self.fid, offset, count)
                        self._io_fid = self.fid
                        return data
        return client.read(self._read_fid(), offset, count)

    def _chunk(self, idx: int) -> bytes:
        key = (self.fs.dev, self.ino, self.mtime_ns, idx)
        data = self.fs.cache.get(key)
        if data is not None:
            if not self.fs.client.alive():  # a dead server's files: EIO, cached or not
                raise SyscallError(errno.EIO)
            return data
        self.fs.cache.misses += 1
        data = self._read_full(idx * CHUNK, CHUNK)
        self.fs.cache.put(key, data)
        return data

    def _read_full(self, start: int, count: int) -> bytes:
        """Up to ``count`` bytes at ``start``, reading on after a short answer
        (a server answers at most its msize) until the count, an empty read,
        or the end the attributes say (no second read to learn it)."""
        data = self._read(start, count)
        if not data or len(data) >= count or start + len(data) >= self.size:
            return data
        parts = [data]
        got = len(data)
        while got < count and start + got < self.size:
            part = self._read(start + got, count - got)
            if not part:
                break
            parts.append(part)
            got += len(part)
        return b"".join(parts)

    def _fill(self, idx: int, want: int) -> bytes:
        """Chunks ``idx`` .. ``idx + want - 1`` (at most FILL_CHUNKS) read in
        one Tread and cached; returns chunk ``idx``.  A big read that misses
        then costs one Gofer round trip per MiB, not one per chunk."""
        want = max(1, min(want, FILL_CHUNKS))
        if want == 1:
            return self._chunk(idx)
        self.fs.cache.misses += 1
        start = idx * CHUNK
        data = self._read_full(start, min(want * CHUNK, max(CHUNK, self.size - start)))
        view = memoryview(data)
        first = b""
        for i in range(0, max(len(data), 1), CHUNK):
            piece = bytes(view[i:i + CHUNK])
            self.fs.cache.put((self.fs.dev, self.ino, self.mtime_ns, idx + i // CHUNK), piece)
            if i == 0:
                first = piece
            if len(piece) < CHUNK:
                break
        return first

    def read_at(self, offset: int, count: int) -> bytes:
        if (self.mode & S_IFMT) != S_IFREG:
            raise SyscallError(errno.EINVAL)
        if not self.fs.readonly:  # the host may change it: no page cache
            return self.fs.client.read(self._read_fid(), offset, count)
        out = []
        pos, end = offset, offset + count
        cache = self.fs.cache
        while pos < end:
            idx, off = divmod(pos, CHUNK)
            want = -(-(end - idx * CHUNK) // CHUNK)  # chunks this read still spans
            if want > 1 and cache.get((self.fs.dev, self.ino, self.mtime_ns, idx)) is None:
                chunk = self._fill(idx, want)  # a big miss (the loader's): one Tread per MiB
            else:
                chunk = self._chunk(idx)
            piece = chunk[off:off + (end - pos)]
            if not piece:
                break
            out.append(piece)
            pos += len(piece)
            if len(chunk) < CHUNK:
                break
        return b"".join(out)

    def read_to(self, mm: Any, addr: int, offset: int, count: int) -> int:
        """read_at straight into application memory at ``addr``: each cached
        chunk is copied once, from the page cache into the memory file, with
        no bytes object assembled in between (a 1 MiB join cost more than the
        copy itself: a fresh 1 MiB allocation is a fresh mmap, page-faulted
        on every read).  Returns the bytes copied; EFAULT with none copied
        is raised, after some it ends the read short, as Linux's copy_to_user
        does."""
        if (self.mode & S_IFMT) != S_IFREG:
            raise SyscallError(errno.EINVAL)
        if not self.fs.readonly:
            data = self.fs.client.read(self._read_fid(), offset, count)
            try:
                mm.copy_out(addr, data)
            except SyscallError:
                n = copy_what_fits(mm, addr, memoryview(data))
                if not n:
                    raise
                return n
            return len(data)
        n = self._host_read_to(mm, addr, offset, count)  # a donated descriptor
        if n is not None:
            return n
        cache = self.fs.cache
        dev, ino, mtime = self.fs.dev, self.ino, self.mtime_ns
        alive_checked = False
        pos, end = offset, offset + count
        while pos < end:
            idx, off = divmod(pos, CHUNK)
            chunk = cache.get((dev, ino, mtime, idx))
            if chunk is None:
                chunk = self._fill(idx, -(-(end - idx * CHUNK) // CHUNK))
            elif not alive_checked:  # a dead server's files: EIO, cached or not
                if not self.fs.client.alive():
                    raise SyscallError(errno.EIO)
                alive_checked = True
            n = min(len(chunk) - off, end - pos)
            if n <= 0:
                break
            try:
                mm.copy_out(addr + pos - offset, memoryview(chunk)[off:off + n])
            except SyscallError:
                pos += copy_what_fits(mm, addr + pos - offset, memoryview(chunk)[off:off + n])
                if pos == offset:
                    raise
                break
            pos += n
            if len(chunk) < CHUNK:
                break
        return pos - offset

    def open(self, flags: int) -> FileDescription:
        fmt = self.mode & S_IFMT
        if fmt in (S_IFREG, S_IFDIR) and ((flags & O_ACCMODE) != O_RDONLY or flags & O_TRUNC):
            if fmt == S_IFDIR:
                raise SyscallError(errno.EISDIR)
            if self.fs.readonly:
                raise SyscallError(errno.EROFS)
        if not self.fs.readonly:
            self._refresh(force=True)  # the host may have changed it (O_APPEND uses size)
        return super().open(flags)

    def clunk(self, *, send: bool = True) -> None:
        """Clunk this inode's fids now (it must not be used afterwards);
        ``send=False``: only forget them (the server is ending)."""
        self._retire_host(later=False)
        fids = self._owned_fids() if send else []
        self._io_fid = self._wfid = None
        self.fid = -1
        for fid in fids:
            try:
                self.fs.client.clunk(fid)
            except SyscallError:
                pass
