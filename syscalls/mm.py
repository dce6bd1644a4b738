"""Memory syscalls: brk, mmap, munmap, mprotect, mremap, madvise.

The address space (sentry/mm) does the bookkeeping and queues the stub-side
map operations; the task loop applies them before the application resumes.
"""

from __future__ import annotations

import errno
import mmap as _mmap
from typing import TYPE_CHECKING

from sentry.kernel.errors import SyscallError
from sentry.vfs import vfs
from sentry.vfs.description import dentry_of
from syscalls.abi import s32
from syscalls.table import Entry, partial, supported

if TYPE_CHECKING:
    from sentry.kernel.task import Task

Args = tuple[int, ...]

PROT_MASK = _mmap.PROT_READ | _mmap.PROT_WRITE | _mmap.PROT_EXEC
PROT_GROWSDOWN = 0x01000000
PROT_GROWSUP = 0x02000000
MAP_SHARED_VALIDATE = 0x03


def brk(t: Task, a: Args) -> int:
    """brk(2): the raw syscall returns the (possibly unchanged) break."""
    return t.mm.brk(a[0])


def mmap(t: Task, a: Args) -> int:
    """mmap(2): anonymous mappings; file mappings arrive with the VFS."""
    addr, length, prot, flags, fd, off = a
    if prot & ~PROT_MASK:
        raise SyscallError(errno.EINVAL)
    if off & 0xFFF:
        raise SyscallError(errno.EINVAL)
    if not flags & _mmap.MAP_ANONYMOUS:
        return _mmap_file(t, addr, length, prot, flags & 0xFFFFFFFF, s32(fd), off)
    return t.mm.mmap(addr, length, prot, flags & 0xFFFFFFFF)


def _mmap_file(t: Task, addr: int, length: int, prot: int, flags: int, fd: int,
               off: int) -> int:
    """A file mapping: its bytes copied into fresh memory (MAP_PRIVATE semantics).

    MAP_SHARED of a file is mapped the same way: the application sees the file
    as it was when mapped, and its stores do not reach the file (partial).
    """
    desc = t.fds.get(fd)
    read_pages = getattr(desc, "read_pages", None)
    if read_pages is None:
        raise SyscallError(errno.ENODEV)
    if not desc.readable():
        raise SyscallError(errno.EACCES)
    shared = flags & 0x3 in (_mmap.MAP_SHARED, MAP_SHARED_VALIDATE)
    if shared and prot & _mmap.PROT_WRITE and not desc.writable():
        raise SyscallError(errno.EACCES)
    if length == 0:
        raise SyscallError(errno.EINVAL)
    anon = (flags & ~0x3) | _mmap.MAP_PRIVATE | _mmap.MAP_ANONYMOUS
    d = dentry_of(desc)
    name = vfs.fd_path(t.tg.fs, desc).decode(errors="replace") if d is not None else ""
    start = t.mm.mmap(addr, length, prot, anon, name=name)
    data = read_pages(off, (length + 0xFFF) & ~0xFFF)
    if data:
        t.mm.copy_out_force(start, data)
    return start


def munmap(t: Task, a: Args) -> int:
    """munmap(2)."""
    t.mm.munmap(a[0], a[1])
    return 0


def mprotect(t: Task, a: Args) -> int:
    """mprotect(2)."""
    prot = a[2]
    if prot & ~(PROT_MASK | PROT_GROWSDOWN | PROT_GROWSUP):
        raise SyscallError(errno.EINVAL)
    t.mm.mprotect(a[0], a[1], prot & PROT_MASK)
    return 0


def mremap(t: Task, a: Args) -> int:
    """mremap(2)."""
    return t.mm.mremap(a[0], a[1], a[2], a[3] & 0xFFFFFFFF, a[4])


def madvise(t: Task, a: Args) -> int:
    """madvise(2): DONTNEED/FREE zero private pages; hints are accepted."""
    t.mm.madvise(a[0], a[1], s32(a[2]))
    return 0


ENTRIES: list[Entry] = [
    supported("brk", brk),
    partial("mmap", mmap,
            note="file mappings are private copies (MAP_SHARED stores do not reach the file)"),
    supported("munmap", munmap),
    supported("mprotect", mprotect),
    supported("mremap", mremap),
    supported("madvise", madvise),
]
