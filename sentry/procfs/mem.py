"""/proc/PID/mem: a process's memory as a file, for debuggers.

gdb reads and writes its inferior through it (pread64/pwrite64 at the
address) and falls back to PTRACE_PEEKTEXT word by word without it.  Opening
needs the right to ptrace the process (Linux's PTRACE_MODE_ATTACH): the
process itself, its tracer, or the same ids or CAP_SYS_PTRACE.  Reads go
through the Sentry's own mapping of the memory file; writes ignore page
protection as Linux's FOLL_FORCE does (a private file mapping gets its own
copy first: the breakpoint lands in this process only).  A transfer stops at
the first page that cannot be touched; nothing at all is EIO.
"""

from __future__ import annotations

import errno
import stat as _stat
import threading
from typing import TYPE_CHECKING

from sentry.kernel.errors import SyscallError
from sentry.kernel.ptrace import may_access
from sentry.kernel.task import current_task
from sentry.mm.layout import PAGE_SIZE
from sentry.procfs.nodes import ProcessRef, ProcInode
from sentry.vfs.description import InodeFile, seek_position
from sentry.vfs.file import FileDescription

if TYPE_CHECKING:
    from sentry.kernel.threadgroup import ThreadGroup
    from sentry.vfs.inode import Filesystem

MAX_TRANSFER = 1 << 20  # per call, as Linux moves a page at a time anyway


class MemInode(ProcInode):
    """The /proc/PID/mem inode (mode 0600, the process's owner)."""

    def __init__(self, fs: Filesystem, ref: ProcessRef) -> None:
        super().__init__(fs, _stat.S_IFREG | 0o600, ref)

    def open(self, flags: int) -> FileDescription:
        tg = self.alive()
        opener = current_task()
        task = self.ref.task() if self.ref is not None else None
        if tg is None or task is None or tg.zombie:
            raise SyscallError(errno.ESRCH)
        if opener is not None and opener.tg is not tg and not may_access(opener, task):
            raise SyscallError(errno.EACCES)
        return MemFile(self, flags, tg)


class MemFile(InodeFile):
    """An open /proc/PID/mem: the offset is an address in the process."""

    def __init__(self, inode: MemInode, flags: int, tg: ThreadGroup) -> None:
        super().__init__(inode, flags)
        self.tg = tg
        self.offset = 0
        self._lock = threading.Lock()

    def _mm(self):  # noqa: ANN202 - the process's AddressSpace, while it lives
        if self.tg.zombie:
            return None
        return self.tg.mm

    def pread(self, count: int, offset: int) -> bytes:
        if offset < 0:
            raise SyscallError(errno.EINVAL)
        mm = self._mm()
        if mm is None or count <= 0:
            return b""
        out = bytearray()
        addr, left = offset, min(count, MAX_TRANSFER)
        while left:
            n = min(left, PAGE_SIZE - addr % PAGE_SIZE)
            try:
                out += mm.copy_in(addr, n)
            except SyscallError:
                break
            addr += n
            left -= n
        if not out:
            raise SyscallError(errno.EIO)
        return bytes(out)

    def pwrite(self, data: bytes, offset: int) -> int:
        if offset < 0:
            raise SyscallError(errno.EINVAL)
        mm = self._mm()
        if mm is None or not data:
            return 0
        data = bytes(data[:MAX_TRANSFER])
        done = 0
        while done < len(data):
            addr = offset + done
            n = min(len(data) - done, PAGE_SIZE - addr % PAGE_SIZE)
            try:
                mm.copy_out_force(addr, data[done:done + n])
            except SyscallError:
                break
            done += n
        if not done:
            raise SyscallError(errno.EIO)
        return done

    def read(self, count: int) -> bytes:
        with self._lock:
            out = self.pread(count, self.offset)
            self.offset += len(out)
            return out

    def write(self, data: bytes) -> int:
        with self._lock:
            n = self.pwrite(data, self.offset)
            self.offset += n
            return n

    def seek(self, offset: int, whence: int) -> int:
        with self._lock:
            self.offset = seek_position(self.offset, 0, offset, whence)
            return self.offset
