"""Per-process file descriptor tables.

Lock order: a table's lock is a leaf; never call into a file description while
holding it (a blocking read must not stall close() of another fd).
"""

from __future__ import annotations

import errno
import threading

from sentry.kernel.errors import SyscallError
from sentry.vfs.file import FileDescription
from sentry.vfs.locks import F_UNLCK, LOCKS

DEFAULT_NOFILE = 1024


class FdTable:
    """fd -> (description, close-on-exec); lowest free number first, like Linux."""

    def __init__(self, limit: int = DEFAULT_NOFILE) -> None:
        self._fds: dict[int, tuple[FileDescription, bool]] = {}
        self._lock = threading.Lock()
        self.limit = limit

    def get(self, fd: int) -> FileDescription:
        try:
            return self._fds[fd][0]
        except KeyError:
            raise SyscallError(errno.EBADF) from None

    def get_cloexec(self, fd: int) -> bool:
        try:
            return self._fds[fd][1]
        except KeyError:
            raise SyscallError(errno.EBADF) from None

    def set_cloexec(self, fd: int, cloexec: bool) -> None:
        with self._lock:
            if fd not in self._fds:
                raise SyscallError(errno.EBADF)
            self._fds[fd] = (self._fds[fd][0], cloexec)

    def install(self, desc: FileDescription, *, minfd: int = 0, cloexec: bool = False) -> int:
        """Put ``desc`` at the lowest free fd >= minfd (EMFILE when full)."""
        with self._lock:
            fd = minfd
            while fd in self._fds:
                fd += 1
            if fd >= self.limit:
                raise SyscallError(errno.EMFILE)
            desc.refs += 1
            self._fds[fd] = (desc, cloexec)
            return fd

    def install_at(self, fd: int, desc: FileDescription, *, cloexec: bool = False) -> None:
        """dup2 semantics: replace whatever ``fd`` held."""
        if not 0 <= fd < self.limit:
            raise SyscallError(errno.EBADF)
        with self._lock:
            old = self._fds.get(fd)
            desc.refs += 1
            self._fds[fd] = (desc, cloexec)
        if old is not None:
            self._drop(old[0])

    def close(self, fd: int) -> None:
        with self._lock:
            entry = self._fds.pop(fd, None)
        if entry is None:
            raise SyscallError(errno.EBADF)
        self._drop(entry[0])

    def close_range(self, first: int, last: int, *, cloexec_only: bool = False) -> None:
        with self._lock:
            fds = [fd for fd in self._fds if first <= fd <= last]
        for fd in fds:
            if cloexec_only:
                self.set_cloexec(fd, True)
            else:
                try:
                    self.close(fd)
                except SyscallError:
                    pass

    def fork(self) -> FdTable:
        """A copy for a new process: same descriptions (shared offsets), same flags."""
        new = FdTable(self.limit)
        with self._lock:
            for fd, (desc, cloexec) in self._fds.items():
                desc.refs += 1
                new._fds[fd] = (desc, cloexec)
        return new

    def close_cloexec(self) -> None:
        """execve: close every close-on-exec descriptor."""
        with self._lock:
            doomed = [fd for fd, (_, cloexec) in self._fds.items() if cloexec]
        for fd in doomed:
            try:
                self.close(fd)
            except SyscallError:
                pass

    def close_all(self) -> None:
        self.close_range(0, 1 << 31)

    def fds(self) -> list[int]:
        with self._lock:
            return sorted(self._fds)

    def descriptions(self) -> list[FileDescription]:
        """Every description the table holds (a lease's conflict check)."""
        with self._lock:
            return [desc for desc, _ in self._fds.values()]

    @staticmethod
    def _drop(desc: FileDescription) -> None:
        desc.refs -= 1
        if desc.refs == 0:
            key = getattr(desc, "flock_key", None)
            if key is not None:  # flock(2) locks belong to the open description
                LOCKS.flock(key, id(desc), F_UNLCK, False, lambda: None)
            desc.release()
