"""System V shared memory: shmget, shmat, shmdt, shmctl's state.

Facts about Linux's shm (ipc/shm.c) that shape this module:

* A segment is an unnamed shmem file; shmat maps it MAP_SHARED, so every
  attachment, in any process, sees the same pages (here: a file of the
  Sentry's internal tmpfs, mapped through its shared backing, as
  memfd_create's files are).
* ``shm_nattch`` counts attachments: fork copies them, exit and exec drop
  them. Here it is counted when asked, from the address spaces of the
  sandbox's processes (a mapping of the segment that starts at its first
  page is one attachment), so no hook in fork, exit or munmap is needed.
* IPC_RMID marks the segment SHM_DEST and frees its key; it goes when the
  last attachment does (swept whenever the namespace is next used). Linux
  still lets such a segment be attached by id.
* A segment is at least SHMMIN (1) byte and at most shmmax; an existing one
  asked for with a larger size is EINVAL.  A new SHM_HUGETLB segment is
  EINVAL, as on a Linux without huge pages (/proc/config.gz says HUGETLBFS
  is not set).
* Not done: Linux's shmdt also detaches a fragment of an attachment (left by
  a partial munmap or SHM_REMAP) whose distance from the address is its page
  offset; here only whole attachments, found by where they start, are.
"""

from __future__ import annotations

import errno
import threading
import time
from typing import TYPE_CHECKING, Any

from sentry.kernel.creds import Credentials
from sentry.kernel.errors import SyscallError
from sentry.kernel.ipc.registry import IPC_PRIVATE, IpcObject, Registry
from sentry.vfs.tmpfs import memfd_file

if TYPE_CHECKING:
    from sentry.kernel.kernel import Kernel

SHMMIN = 1
SHMMAX = (1 << 64) - 1 - (1 << 24)
SHMALL = SHMMAX
SHMMNI = 4096
SHM_DEST = 0o1000
SHM_HUGETLB = 0o4000
SHM_LOCKED = 0o2000
PAGE = 4096


class ShmSegment(IpcObject):
    """One segment: its file, size and times."""

    def __init__(self, key: int, ident: int, c: Credentials, mode: int, size: int,
                 pid: int) -> None:
        super().__init__(key, ident, c, mode)
        self.size = size
        desc = memfd_file(f"SYSV{key & 0xFFFF_FFFF:08x}".encode(), c.euid, c.egid)
        desc.truncate(size)
        self.inode = desc.inode
        self.backing: Any = None  # the shared backing, made at the first shmat
        self.cpid, self.lpid = pid, 0
        self.atime = self.dtime = 0
        self.flags = 0  # SHM_DEST, SHM_LOCKED

    @property
    def pages(self) -> int:
        return -(-self.size // PAGE)

    def map_backing(self, mf: Any) -> Any:
        if self.backing is None:
            self.backing = self.inode.shared_backing(mf)
        return self.backing

    def first_offset(self) -> int | None:
        if self.backing is None:
            return None
        (off, _), *_ = self.backing.runs(0, PAGE, hold=False)
        return off

    def nattch(self, kernel: Kernel) -> int:
        off = self.first_offset()
        if off is None:
            return 0
        seen: set[int] = set()
        count = 0
        for tg in list(kernel.thread_groups.values()):
            mm = tg.mm
            if mm is None or tg.zombie or id(mm) in seen:
                continue
            seen.add(id(mm))
            count += len(mm.attachments(self.backing, off))
        return count


class ShmNamespace:
    """The segments of one IPC namespace."""

    def __init__(self, lock: threading.Lock) -> None:
        self.segments: Registry[ShmSegment] = Registry(SHMMNI)
        self.lock = lock
        self.shmmax = SHMMAX  # /proc/sys/kernel/shmmax

    def sweep(self, kernel: Kernel) -> None:
        """Free the segments marked for destruction that nothing attaches (lock held)."""
        for s in list(self.segments):
            if s.flags & SHM_DEST and s.nattch(kernel) == 0:
                self.segments.remove(s)

    def shmget(self, kernel: Kernel, c: Credentials, key: int, size: int, flags: int,
               pid: int) -> int:
        def make(ident: int) -> ShmSegment:
            if not SHMMIN <= size <= self.shmmax:
                raise SyscallError(errno.EINVAL)
            if flags & SHM_HUGETLB:  # no huge page size (Linux without HUGETLBFS)
                raise SyscallError(errno.EINVAL)
            return ShmSegment(key, ident, c, flags, size, pid)

        def more_checks(s: ShmSegment) -> None:
            if s.size < size:
                raise SyscallError(errno.EINVAL)

        with self.lock:
            self.sweep(kernel)
            return self.segments.get(key, flags, c, make, more_checks)

    def remove(self, kernel: Kernel, s: ShmSegment) -> None:
        """IPC_RMID (lock held): the key is free at once, the pages with the
        last attachment."""
        s.flags |= SHM_DEST
        if self.segments.by_key.get(s.key) is s:
            del self.segments.by_key[s.key]
        s.key = IPC_PRIVATE
        s.ctime = int(time.time())
        self.sweep(kernel)
