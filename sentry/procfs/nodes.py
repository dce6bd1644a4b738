"""The building blocks of /proc: generated files, computed symlinks, directories.

Facts about procfs this module follows (proc(5), and gVisor's fsimpl/proc):

* A proc file's text is made when the file is opened, and the description
  keeps that snapshot, so a reader that reads one byte at a time still sees
  one consistent status or maps (Linux's seq files behave the same way for
  one read pass).  ``stat`` reports size 0, as Linux does for these files.
* Everything under /proc/<pid> names its process *by number* and looks the
  process up again on every operation.  The VFS caches dentries forever, so a
  dentry for "/proc/123" outlives process 123; binding by number makes a
  stale dentry fail with ENOENT and makes a reused pid show the new process.
  (A held-open /proc/123 directory therefore follows the pid, where Linux
  would keep failing: the price of having no dentry revalidation hook.)
* A vanished process is ENOENT from every operation: lookups, stat, open,
  readlink.  Nothing here raises anything but SyscallError.
* chmod/chown of proc files is EPERM (Linux's proc_setattr refuses modes).

Lock order: ``ProcDir._lock`` (a child-inode cache) is a leaf; it is taken
under ``dentry.TREE_LOCK`` (lookups) and never held while calling the kernel.
Single reads of ``Kernel.thread_groups`` / ``Kernel.tasks`` (one ``dict.get``)
are atomic under the GIL and take no lock.
"""

from __future__ import annotations

import errno
import os
import stat as _stat
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from sentry.kernel.errors import SyscallError
from sentry.vfs.description import InodeFile, seek_position
from sentry.vfs.file import O_ACCMODE, O_RDONLY, O_WRONLY, FileDescription, Stat
from sentry.vfs.inode import Filesystem, Inode, dtype_of

if TYPE_CHECKING:
    from sentry.kernel.kernel import Kernel
    from sentry.kernel.task import Task
    from sentry.kernel.threadgroup import ThreadGroup
    from sentry.vfs.dentry import Dentry
    from sentry.vfs.resolve import FsContext

Gen = Callable[[], bytes]
Writer = Callable[[bytes], None]


def gone() -> SyscallError:
    """The error for a process (or fd, or thread) that is no longer there."""
    return SyscallError(errno.ENOENT)


class ProcessRef:
    """A process (and optionally one of its threads) named by number.

    ``pid`` may be a thread group id or, as Linux allows for /proc/<tid>, the id
    of any thread; ``tid`` selects a thread for /proc/<pid>/task/<tid>.
    """

    __slots__ = ("kernel", "pid", "tid")

    def __init__(self, kernel: Kernel, pid: int, tid: int | None = None) -> None:
        self.kernel = kernel
        self.pid = pid
        self.tid = tid

    def tg(self) -> ThreadGroup:
        """The thread group, zombies included (Linux lists them until reaped)."""
        k = self.kernel
        g = k.thread_groups.get(self.pid)
        if g is None:
            t = k.tasks.get(self.pid)
            g = t.tg if t is not None else None
        if g is None or g.reaped:
            raise gone()
        if self.tid is not None:
            t = k.tasks.get(self.tid)
            if t is None or t.tg is not g or t.exited:
                raise gone()
        return g

    def task(self) -> Task | None:
        """The thread this directory shows: ``tid``, the pid's own thread, or
        the first live one (None for a zombie, which has no threads left)."""
        g = self.tg()
        k = self.kernel
        for want in (self.tid, self.pid):
            if want is not None:
                t = k.tasks.get(want)
                if t is not None and t.tg is g and not t.exited:
                    return t
        live = g.live_tasks()
        return live[0] if live else None

    def shown_pid(self) -> int:
        """The number a status "Pid:" or stat line shows for this directory."""
        if self.tid is not None:
            return self.tid
        return self.pid


class ProcInode(Inode):
    """An inode of /proc: optionally tied to a process, ENOENT once it is gone."""

    def __init__(self, fs: Filesystem, mode: int, ref: ProcessRef | None = None) -> None:
        super().__init__(fs, mode)
        self.ref = ref

    # Linux: /proc/<pid> entries belong to the process's effective ids, and
    # permission checks (sentry/kernel/dac.py reads inode.uid/gid) must see the
    # same owner stat reports: a process that dropped root (setpriv, su) could
    # not open its own /proc/self/fd, mode 0500, while stat said it owned it.
    def _owner(self) -> Task | None:
        """The task whose ids own this entry (None: gone, or no process)."""
        if self.ref is None:
            return None
        try:
            return self.ref.task()
        except SyscallError:  # the process is gone: the ids it was made with
            return None

    @property
    def uid(self) -> int:  # type: ignore[override]
        task = self._owner()
        return task.creds.euid if task is not None else self._uid

    @uid.setter
    def uid(self, value: int) -> None:
        self._uid = value

    @property
    def gid(self) -> int:  # type: ignore[override]
        task = self._owner()
        return task.creds.egid if task is not None else self._gid

    @gid.setter
    def gid(self, value: int) -> None:
        self._gid = value

    def alive(self) -> ThreadGroup | None:
        """Raise ENOENT if the owning process vanished; its thread group if any."""
        return self.ref.tg() if self.ref is not None else None

    def stat(self) -> Stat:
        tg = self.alive()
        st = super().stat()
        if tg is not None and self.ref is not None:
            # Linux: /proc/<pid> entries belong to the process's effective ids.
            task = self.ref.task()
            if task is not None:
                st.uid, st.gid = task.creds.euid, task.creds.egid
        return st

    def setattr(self, *, mode: int | None = None, uid: int | None = None,
                gid: int | None = None, size: int | None = None,
                atime_ns: int | None = None, mtime_ns: int | None = None) -> None:
        """Proc files keep their modes and owners (Linux: EPERM)."""
        self.alive()
        if size is not None and self.is_reg():
            return  # O_TRUNC / truncate of a writable proc file is a no-op
        raise SyscallError(errno.EPERM)


class SnapshotFile(InodeFile):
    """An open proc file: the bytes generated when it was opened."""

    def __init__(self, inode: ProcFile, data: bytes, flags: int) -> None:
        super().__init__(inode, flags)
        self.data: bytes | None = data
        self.offset = 0
        self.writer = inode.writer
        self._lock = threading.Lock()

    def read(self, count: int) -> bytes:
        with self._lock:
            if self.data is None:
                raise SyscallError(errno.ESRCH)
            out = self.data[self.offset:self.offset + max(count, 0)]
            self.offset += len(out)
            return out

    def pread(self, count: int, offset: int) -> bytes:
        if offset < 0:
            raise SyscallError(errno.EINVAL)
        if self.data is None:
            raise SyscallError(errno.ESRCH)
        return self.data[offset:offset + max(count, 0)]

    def seek(self, offset: int, whence: int) -> int:
        """A seek back to the start makes the next read generate the text
        afresh, as Linux's seq_file does (tools poll /proc/<pid>/stat through
        one descriptor with lseek+read); a process reaped since then reads as
        ESRCH, which is how they learn it is gone."""
        with self._lock:
            self.offset = seek_position(self.offset, len(self.data or b""), offset, whence)
            if self.offset == 0 and self.readable():
                inode = self.inode
                try:
                    inode.alive()
                    self.data = inode.gen()
                except SyscallError:
                    self.data = None  # read: ESRCH
            return self.offset

    def stat(self) -> Stat:
        """fstat keeps working after the process is gone (the inode is still open)."""
        try:
            return self.inode.stat()
        except SyscallError:
            return Inode.stat(self.inode)

    def write(self, data: bytes) -> int:
        """A whole value per write, as Linux's proc write handlers take it."""
        if not self.writable() or self.writer is None:
            raise SyscallError(errno.EBADF)
        self.writer(data)
        return len(data)

    def pwrite(self, data: bytes, offset: int) -> int:
        return self.write(data)


class ProcFile(ProcInode):
    """A regular file whose text ``gen`` makes at open; ``writer`` takes writes."""

    def __init__(self, fs: Filesystem, gen: Gen, *, mode: int = 0o444,
                 ref: ProcessRef | None = None, writer: Writer | None = None) -> None:
        super().__init__(fs, _stat.S_IFREG | mode, ref)
        self.gen = gen
        self.writer = writer

    def open(self, flags: int) -> FileDescription:
        self.alive()
        wants_write = flags & O_ACCMODE != O_RDONLY
        if wants_write and self.writer is None:
            raise SyscallError(errno.EACCES)
        data = b"" if flags & O_ACCMODE == O_WRONLY else self.gen()
        return SnapshotFile(self, data, flags)

    def read_at(self, offset: int, count: int) -> bytes:
        self.alive()
        return self.gen()[offset:offset + count]


class ProcLink(ProcInode):
    """A symlink with a computed body; ``follow`` makes it a magic link (a dentry)."""

    def __init__(self, fs: Filesystem, target: Gen,
                 follow: Callable[[FsContext], Dentry | None] | None = None, *,
                 ref: ProcessRef | None = None) -> None:
        super().__init__(fs, _stat.S_IFLNK | 0o777, ref)
        self.target = target
        self.follow = follow

    def readlink(self) -> bytes:
        self.alive()
        return self.target()

    def follow_link(self, ctx: FsContext) -> Dentry | None:
        self.alive()
        return self.follow(ctx) if self.follow is not None else None


class ProcDir(ProcInode):
    """A directory whose names are computed; child inodes are kept per name so
    getdents and stat agree on inode numbers while the name exists."""

    def __init__(self, fs: Filesystem, ref: ProcessRef | None = None, mode: int = 0o555) -> None:
        super().__init__(fs, _stat.S_IFDIR | mode, ref)
        self._kids: dict[bytes, Inode] = {}
        self._lock = threading.Lock()

    # What a subclass says.
    def listing(self) -> list[bytes]:
        """The names getdents shows, in order."""
        return []

    def exists(self, name: bytes) -> bool:
        """Whether ``name`` can be looked up (may accept names not listed)."""
        return name in self.listing()

    def make(self, name: bytes) -> Inode:
        raise gone()

    # The Inode interface.
    def _child(self, name: bytes) -> Inode:
        with self._lock:
            kid = self._kids.get(name)
        if kid is None:
            kid = self.make(name)
            with self._lock:
                kid = self._kids.setdefault(name, kid)
        return kid

    def open(self, flags: int) -> FileDescription:
        self.alive()  # opening /proc/<gone pid> is ENOENT, not an empty directory
        return super().open(flags)

    def lookup(self, name: bytes) -> Inode:
        self.alive()
        if not self.exists(name):
            raise gone()
        return self._child(name)

    def iterdir(self) -> list[tuple[bytes, int, int]]:
        self.alive()
        names = self.listing()
        keep = set(names)
        with self._lock:
            for stale in [n for n in self._kids if n not in keep]:
                del self._kids[stale]
        out = []
        for name in names:
            try:
                kid = self._child(name)
            except SyscallError:
                continue  # vanished between listing and now
            out.append((name, kid.ino, dtype_of(kid.mode)))
        return out


class TableDir(ProcDir):
    """A directory with a fixed set of entries: name -> inode maker."""

    def __init__(self, fs: Filesystem, table: dict[bytes, Callable[[], Inode]],
                 ref: ProcessRef | None = None, mode: int = 0o555) -> None:
        super().__init__(fs, ref, mode)
        self.table = table

    def listing(self) -> list[bytes]:
        return list(self.table)

    def exists(self, name: bytes) -> bool:
        return name in self.table

    def make(self, name: bytes) -> Inode:
        return self.table[name]()


def const(text: str | bytes) -> Gen:
    """A generator for a file whose text never changes."""
    data = text.encode() if isinstance(text, str) else text
    return lambda: data


def random_uuid() -> str:
    """A random (version 4) UUID in its text form, as /proc/sys/kernel/random
    gives them; not through the uuid module, whose import (it pulls in
    platform) would cost every sandbox start ~3 ms for two calls."""
    b = bytearray(os.urandom(16))
    b[6] = (b[6] & 0x0F) | 0x40  # version 4
    b[8] = (b[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = b.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
