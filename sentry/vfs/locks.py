"""Advisory file locks inside the sandbox: fcntl record locks and flock.

Facts (fcntl(2), flock(2)): record locks belong to a process and an inode,
cover byte ranges (len 0 = to end of file), and a process never conflicts with
itself; all of a process's locks on a file go when it closes any fd of that
file or exits.  flock locks belong to an open file description.  Both are only
advisory and only among the sandbox's own processes (the host never sees them).

Lock order: the table's condition lock is a leaf.
"""

from __future__ import annotations

import errno
import threading
from collections.abc import Callable

from sentry.kernel.errors import SyscallError
from shm.records import record

F_RDLCK, F_WRLCK, F_UNLCK = 0, 1, 2
END = 1 << 63
WAIT_SLICE = 0.05
MAX_DEPTH = 10  # Linux's MAX_DEADLK_ITERATIONS


@record
class RecordLock:
    owner: int
    kind: int
    start: int
    end: int  # exclusive; END = to end of file


class LockTable:
    """Every record lock and flock of one sandbox, keyed by inode identity."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._records: dict[int, list[RecordLock]] = {}
        self._flocks: dict[int, dict[int, int]] = {}  # inode key -> {description id: kind}
        self._waiting: dict[int, tuple[int, int, int, int]] = {}  # owner -> what it waits for

    # -- fcntl record locks --------------------------------------------------
    def conflict(self, key: int, owner: int, kind: int, start: int, end: int
                 ) -> RecordLock | None:
        with self._cond:
            return self._conflict(key, owner, kind, start, end)

    def _conflict(self, key: int, owner: int, kind: int, start: int, end: int
                  ) -> RecordLock | None:
        for lk in self._records.get(key, ()):
            if lk.owner == owner or lk.end <= start or end <= lk.start:
                continue
            if kind == F_WRLCK or lk.kind == F_WRLCK:
                return lk
        return None

    def set(self, key: int, owner: int, kind: int, start: int, end: int, wait: bool,
            interrupted: Callable[[], None]) -> None:
        with self._cond:
            if kind != F_UNLCK:
                try:
                    while (lk := self._conflict(key, owner, kind, start, end)) is not None:
                        if not wait:
                            raise SyscallError(errno.EAGAIN)
                        if self._deadlocks(owner, lk.owner):
                            raise SyscallError(errno.EDEADLK)
                        self._waiting[owner] = (key, kind, start, end)
                        interrupted()
                        self._cond.wait(WAIT_SLICE)
                finally:
                    self._waiting.pop(owner, None)
            self._carve(key, owner, start, end)
            if kind != F_UNLCK:
                self._records.setdefault(key, []).append(RecordLock(owner, kind, start, end))
            self._cond.notify_all()

    def _deadlocks(self, owner: int, blocker: int) -> bool:
        """Whether waiting for ``blocker`` closes a cycle: it waits (through
        at most MAX_DEPTH owners, as Linux's posix_locks_deadlock) for a lock
        that ``owner`` holds. The caller then gets EDEADLK instead of sleeping."""
        for _ in range(MAX_DEPTH):
            req = self._waiting.get(blocker)
            if req is None:
                return False
            key, kind, start, end = req
            lk = self._conflict(key, blocker, kind, start, end)
            if lk is None:
                return False
            if lk.owner == owner:
                return True
            blocker = lk.owner
        return False

    def _carve(self, key: int, owner: int, start: int, end: int) -> None:
        """Remove ``owner``'s coverage of [start, end), splitting locks that straddle it."""
        kept: list[RecordLock] = []
        for lk in self._records.get(key, []):
            if lk.owner != owner or lk.end <= start or end <= lk.start:
                kept.append(lk)
                continue
            if lk.start < start:
                kept.append(RecordLock(owner, lk.kind, lk.start, start))
            if end < lk.end:
                kept.append(RecordLock(owner, lk.kind, end, lk.end))
        if kept:
            self._records[key] = kept
        else:
            self._records.pop(key, None)

    def release_owner(self, key: int, owner: int) -> None:
        with self._cond:
            self._carve(key, owner, 0, END)
            self._cond.notify_all()

    def release_all(self, owner: int) -> None:
        """A process exited: every record lock it held goes."""
        with self._cond:
            for key in list(self._records):
                self._carve(key, owner, 0, END)
            self._cond.notify_all()

    # -- flock ---------------------------------------------------------------
    def flock(self, key: int, holder: int, kind: int, wait: bool,
              interrupted: Callable[[], None]) -> None:
        with self._cond:
            held = self._flocks.setdefault(key, {})
            if kind == F_UNLCK:
                held.pop(holder, None)
                self._cond.notify_all()
                return
            held.pop(holder, None)  # conversion drops the old lock first, as Linux
            while any(k == F_WRLCK or kind == F_WRLCK for h, k in held.items() if h != holder):
                if not wait:
                    raise SyscallError(errno.EWOULDBLOCK)
                interrupted()
                self._cond.wait(WAIT_SLICE)
            held[holder] = kind
            self._cond.notify_all()


LOCKS = LockTable()
