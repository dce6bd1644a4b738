"""Futex wait queues, keyed by (address space, address).

Lock order: the manager's lock is a leaf; the value check and the enqueue happen
under it, and a waker takes it to dequeue, so a wake between "value still
matches" and "asleep" is never lost (the futex(2) guarantee).
"""

from __future__ import annotations

import errno
import threading
import time
from collections.abc import Callable

from sentry.kernel.errors import SyscallError

FUTEX_BITSET_MATCH_ANY = 0xFFFFFFFF


class _Waiter:
    __slots__ = ("event", "bitset")

    def __init__(self, bitset: int) -> None:
        self.event = threading.Event()
        self.bitset = bitset


class FutexManager:
    """The futex wait queues of one sandbox."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queues: dict[tuple[int, int], list[_Waiter]] = {}

    def wait(self, key: tuple[int, int], load: Callable[[], int], expected: int,
             deadline: float | None, bitset: int = FUTEX_BITSET_MATCH_ANY) -> None:
        """Sleep while the word equals ``expected``; EAGAIN if it does not,
        ETIMEDOUT at ``deadline`` (a time.monotonic() value)."""
        if bitset == 0:
            raise SyscallError(errno.EINVAL)
        w = _Waiter(bitset)
        with self._lock:
            if load() != expected:
                raise SyscallError(errno.EAGAIN)
            self._queues.setdefault(key, []).append(w)
        timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
        if w.event.wait(timeout):
            return
        with self._lock:
            q = self._queues.get(key)
            if q is not None and w in q:
                q.remove(w)
                if not q:
                    del self._queues[key]
                raise SyscallError(errno.ETIMEDOUT)
        # Woken while timing out: the wake counts.

    def wake(self, key: tuple[int, int], count: int,
             bitset: int = FUTEX_BITSET_MATCH_ANY) -> int:
        if bitset == 0:
            raise SyscallError(errno.EINVAL)
        woken = 0
        with self._lock:
            q = self._queues.get(key)
            if not q:
                return 0
            keep = []
            for w in q:
                if woken < count and w.bitset & bitset:
                    w.event.set()
                    woken += 1
                else:
                    keep.append(w)
            if keep:
                self._queues[key] = keep
            else:
                del self._queues[key]
        return woken
