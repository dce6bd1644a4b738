"""One memory arena: a memfd of its own, seen by the Sentry through a window
of the memory file's offsets (sentry/mm/memfile.py).

Why arenas: a stub can map only files it holds a descriptor for, so what one
process may map is decided by which arenas' descriptors its stub holds
(docs/security.md, "Memory isolation").  Each address space allocates its
private memory (and its stub's slots) from an arena of its own; pages shared
between processes live in shared objects' arenas (a file each, or a few
for one tmpfs file), which a stub receives only when its process maps them.

Offsets are the memory file's (global): the arena's window is [base, base +
size) and the file offset of a global offset ``o`` is ``o - base``.  Freed
ranges are hole-punched at once, so the host frees the pages and a range
handed out again reads zeros.
"""

from __future__ import annotations

import ctypes
import errno
import os
import threading
from typing import TYPE_CHECKING

from sentry.mm.ranges import RangeAllocator

if TYPE_CHECKING:
    from sentry.mm.memfile import MemoryFile

MFD_EXEC = 0x10
FALLOC_FL_KEEP_SIZE = 0x01
FALLOC_FL_PUNCH_HOLE = 0x02
_F_DUPFD_CLOEXEC = 1030
F_SEAL_FUTURE_WRITE = 0x10

_libc = ctypes.CDLL(None, use_errno=True)
_fallocate = _libc.fallocate
_fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long]
_fallocate.restype = ctypes.c_int


def make_memfd(name: str, size: int, fd_base: int, *, sealable: bool = False) -> int:
    """A sparse executable memfd of ``size`` bytes at a descriptor number of at
    least ``fd_base`` (the Sentry's filter binds its memory-file calls to that
    range).  ``MFD_EXEC`` (Linux 6.3+) asks for an executable memfd where
    ``vm.memfd_noexec`` would refuse PROT_EXEC maps; older kernels reject the
    flag with EINVAL and make every memfd executable, so retry without it."""
    flags = os.MFD_CLOEXEC | (os.MFD_ALLOW_SEALING if sealable else 0)
    try:
        fd = os.memfd_create(name, flags | MFD_EXEC)
    except OSError as e:
        if e.errno != errno.EINVAL:
            raise
        fd = os.memfd_create(name, flags)
    try:
        if fd < fd_base:
            import fcntl

            high = fcntl.fcntl(fd, _F_DUPFD_CLOEXEC, fd_base)
            os.close(fd)
            fd = high
        os.ftruncate(fd, size)
    except BaseException:
        os.close(fd)
        raise
    return fd


class Arena:
    """A memfd and the allocator of its window.  ``refs`` counts the address
    spaces and stub processes that use it; the memory file retires it (closes
    the file, frees the window) once nothing uses it and nothing is allocated,
    so a late free can never land in a window handed to another arena."""

    def __init__(self, owner: MemoryFile, base: int, size: int, fd: int, *,
                 permanent: bool = False, shared_object: bool = False) -> None:
        self.owner = owner
        # One shared object's pages (shared anonymous memory, cached program
        # text): stubs receive its file when they first map it.
        self.shared_object = shared_object
        self.sealed = False
        self.base = base
        self.size = size
        self.fd = fd
        self.refs = 0 if not permanent else 1
        self.permanent = permanent
        self.closed = False
        self.lock = threading.Lock()
        self._ranges = RangeAllocator(base, size)

    def allocate(self, length: int) -> int:
        """The global offset of a fresh, zero range of ``length`` (a page multiple)."""
        self.owner.reap()
        with self.lock:
            if self.closed:
                raise ValueError("allocation from a retired arena")
            return self._ranges.allocate(length)

    def reserve(self, offset: int, length: int) -> bool:
        """Claim exactly [offset, offset+length) if it is free and in this window."""
        with self.lock:
            return self._ranges.reserve(offset, length)

    def free(self, offset: int, length: int) -> None:
        """Hole-punch an allocated range and make it allocatable again."""
        with self.lock:
            self._ranges.check_allocated(offset, length)
            if not self.sealed:  # a sealed file's pages go with the file
                self.punch(offset, length)
            self._ranges.release(offset, length)
            idle = self.refs == 0 and self._ranges.used == 0
        if idle:
            self.owner.retire(self)

    def punch(self, offset: int, length: int) -> None:
        """Free the pages of [offset, +length) (they read zeros from now on)."""
        mode = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE
        if _fallocate(self.fd, mode, offset - self.base, length) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"fallocate(PUNCH_HOLE): {os.strerror(err)}")

    def seal(self) -> None:
        """No new writable mapping of this file, anywhere, from now on
        (F_SEAL_FUTURE_WRITE; the Sentry's own mapping predates it), nor a
        size change: a stub can map it only read-only, so a program's cached
        text cannot be changed under the processes that run it."""
        import fcntl

        fcntl.fcntl(self.fd, fcntl.F_ADD_SEALS,
                    F_SEAL_FUTURE_WRITE | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW)
        self.sealed = True

    @property
    def used(self) -> int:
        with self.lock:
            return self._ranges.used

    def host_bytes(self) -> int:
        """Host memory the arena's file holds (st_blocks), for usage reports;
        0 once its file is closed."""
        try:
            return os.fstat(self.fd).st_blocks * 512
        except OSError:
            return 0

    def hold(self) -> None:
        """One more address space or stub process uses this arena."""
        with self.lock:
            self.refs += 1

    def drop(self) -> None:
        """One fewer; the last one out of an empty arena retires it."""
        with self.lock:
            self.refs -= 1
            idle = self.refs == 0 and self._ranges.used == 0
        if idle:
            self.owner.retire(self)

    def __repr__(self) -> str:
        return f"Arena(base={self.base:#x}, fd={self.fd}, refs={self.refs})"
