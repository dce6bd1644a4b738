"""Futex wait queues, keyed as Linux's get_futex_key keys them.

A futex in private memory, or any futex used with FUTEX_PRIVATE_FLAG, is keyed
by (address space, address): only threads sharing the mm meet there.  A futex
in a MAP_SHARED mapping (anonymous shared memory inherited through fork, a
tmpfs or /dev/shm file, a Gofer file's cache) is keyed by the word's offset in
the memory file (``(0, offset)``, AddressSpace.futex_key), the same for every
process and every mapping of that page: so pthread process-shared mutexes,
POSIX semaphores and cross-process futex waits meet, as Linux's (inode or
shmem object, page index) keys do.

Lock order: the manager's lock is a leaf; the value check and the enqueue happen
under it, and a waker takes it to dequeue, so a wake between "value still
matches" and "asleep" is never lost (the futex(2) guarantee).
"""

from __future__ import annotations

import errno
import struct
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sentry.kernel.errors import SyscallError

if TYPE_CHECKING:
    from sentry.kernel.task import Task

FUTEX_BITSET_MATCH_ANY = 0xFFFFFFFF
POLL_SLICE = 0.05  # how often a waiter nobody can poke re-checks for signals
POKED_SLICE = 1.0  # the same for a waiter its task's wake() pokes: a safety net
FUTEX_PRIVATE_FLAG = 128


def futex_key(mm: Any, addr: int, private: bool = False) -> tuple[int, int]:
    """The wait-queue key of the futex word at ``addr`` (see the module
    docstring); EFAULT when a shared lookup finds nothing mapped there."""
    if private:
        return (id(mm), addr)
    return mm.futex_key(addr)  # type: ignore[no-any-return]


class _Wakeup:
    """A one-shot wake-up: a pre-acquired lock the waker releases.

    Cheaper than threading.Event (no Condition, no per-wait allocation): a futex
    round trip between two threads is two of these."""

    __slots__ = ("_lock", "_set")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lock.acquire()
        self._set = False

    def set(self) -> None:
        if not self._set:
            self._set = True
            try:
                self._lock.release()
            except RuntimeError:  # a poke released it already
                pass

    def poke(self) -> None:
        """End the wait without waking (``is_set`` stays False): the waiter
        re-checks for a signal at once instead of at its next slice."""
        try:
            self._lock.release()
        except RuntimeError:  # released already: set, or poked
            pass

    def is_set(self) -> bool:
        return self._set

    def wait(self, timeout: float | None) -> bool:
        if self._set:
            return True
        if self._lock.acquire(timeout=-1 if timeout is None else timeout):
            return True
        return self._set


class _Waiter:
    __slots__ = ("event", "bitset", "key", "hit")

    def __init__(self, bitset: int, key: tuple[int, int], event: _Wakeup | None = None) -> None:
        self.event = event or _Wakeup()  # futex_waitv's waiters share one
        self.bitset = bitset
        self.key = key  # where it is queued now (requeue moves it)
        self.hit = False  # a waker took this one

    def fire(self) -> None:
        self.hit = True
        self.event.set()


class FutexManager:
    """The futex wait queues of one sandbox."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queues: dict[tuple[int, int], list[_Waiter]] = {}

    def wait(self, key: tuple[int, int], load: Callable[[], int], expected: int,
             deadline: float | None, bitset: int = FUTEX_BITSET_MATCH_ANY,
             interrupted: Callable[[], None] | None = None, task: Any = None) -> None:
        """Sleep while the word equals ``expected``; EAGAIN if it does not,
        ETIMEDOUT at ``deadline`` (a time.monotonic() value).  With ``task``,
        its wake() and kill() poke the wait (``Task.blocker``), so the signal
        check need not poll: a thousand waiters polling every 50 ms kept the
        Sentry busy with 20,000 wake-ups a second (LTP futex_cmp_requeue01)."""
        if bitset == 0:
            raise SyscallError(errno.EINVAL)
        w = _Waiter(bitset, key)
        with self._lock:
            if load() != expected:
                raise SyscallError(errno.EAGAIN)
            self._queues.setdefault(key, []).append(w)
        if task is not None:
            task.blocker = w.event
        try:
            self._wait_queued(w, deadline, interrupted, poked=task is not None)
        finally:
            if task is not None:
                task.blocker = None

    def _wait_queued(self, w: _Waiter, deadline: float | None,
                     interrupted: Callable[[], None] | None, poked: bool) -> None:
        poll = POKED_SLICE if poked else POLL_SLICE
        # A signal that came before the task's blocker was set poked nothing:
        # a poked wait checks before its first sleep.
        first = poked
        while True:
            if not first:
                timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
                slice_s = poll if timeout is None else min(timeout, poll)
                if w.event.wait(slice_s) and w.event.is_set():
                    return
                if deadline is not None and time.monotonic() >= deadline:
                    break
            first = False
            if interrupted is not None:
                try:
                    interrupted()
                except BaseException:
                    self._dequeue(w)
                    if w.event.is_set():
                        return  # the wake won the race: it counts
                    raise
        if self._dequeue(w):
            raise SyscallError(errno.ETIMEDOUT)
        # Woken while timing out: the wake counts.

    def wait_any(self, words: list[tuple[tuple[int, int], Callable[[], int], int]],
                 deadline: float | None, interrupted: Callable[[], None] | None = None) -> int:
        """futex_waitv: sleep on every (key, load, expected) word at once while
        each still holds its value; the index of the one woken (EAGAIN if a
        word differs at the start, ETIMEDOUT at ``deadline``)."""
        event = _Wakeup()
        ws: list[_Waiter] = []
        with self._lock:
            for key, load, expected in words:
                try:
                    same = load() == expected
                except BaseException:
                    self._unqueue_locked(ws)
                    raise
                if not same:
                    self._unqueue_locked(ws)
                    raise SyscallError(errno.EAGAIN)
                w = _Waiter(FUTEX_BITSET_MATCH_ANY, key, event)
                self._queues.setdefault(key, []).append(w)
                ws.append(w)
        failure: BaseException | None = None
        while True:
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
            if event.wait(0.05 if timeout is None else min(timeout, 0.05)):
                break
            if deadline is not None and time.monotonic() >= deadline:
                failure = SyscallError(errno.ETIMEDOUT)
                break
            if interrupted is not None:
                try:
                    interrupted()
                except BaseException as exc:  # noqa: BLE001 - re-raised below
                    failure = exc
                    break
        with self._lock:
            self._unqueue_locked(ws)
        for i, w in enumerate(ws):
            if w.hit:
                return i  # a wake counts even when it raced the timeout or signal
        assert failure is not None
        raise failure

    def _unqueue_locked(self, ws: list[_Waiter]) -> None:
        for w in ws:
            q = self._queues.get(w.key)
            if q is not None and w in q:
                q.remove(w)
                if not q:
                    del self._queues[w.key]

    def _dequeue(self, w: _Waiter) -> bool:
        """Take ``w`` off its queue; False if a waker already took it."""
        with self._lock:
            q = self._queues.get(w.key)
            if q is None or w not in q:
                return False
            q.remove(w)
            if not q:
                del self._queues[w.key]
            return True

    def requeue(self, key: tuple[int, int], key2: tuple[int, int], nwake: int, nmove: int,
                check: Callable[[], bool] | None = None) -> int:
        """FUTEX_(CMP_)REQUEUE: wake ``nwake`` on key, move up to ``nmove`` more to key2.
        ``check`` (CMP_REQUEUE) runs under the lock and EAGAINs when false."""
        woken = moved = 0
        with self._lock:
            if check is not None and not check():
                raise SyscallError(errno.EAGAIN)
            q = self._queues.pop(key, [])
            keep = []
            for w in q:
                if woken < nwake:
                    w.fire()
                    woken += 1
                elif moved < nmove and key2 != key:
                    w.key = key2
                    self._queues.setdefault(key2, []).append(w)
                    moved += 1
                else:
                    keep.append(w)
            if keep:
                self._queues[key] = keep
        return woken + moved

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
                    w.fire()
                    woken += 1
                else:
                    keep.append(w)
            if keep:
                self._queues[key] = keep
            else:
                del self._queues[key]
        return woken


# -- what a thread's exit does to futexes ------------------------------------------

ROBUST_HEAD = struct.Struct("<QqQ")  # next, futex_offset, list_op_pending
ROBUST_LIST_LIMIT = 2048  # Linux's ROBUST_LIST_LIMIT
FUTEX_WAITERS = 0x80000000
FUTEX_OWNER_DIED = 0x40000000
FUTEX_TID_MASK = 0x3FFFFFFF
U64 = (1 << 64) - 1


def robust_cleanup(task: Task) -> None:
    """Mark the robust futexes this thread still holds as OWNER_DIED and wake a
    waiter on each (set_robust_list(2)), so other threads' mutexes recover."""
    head, _ = task.robust_list
    if not head:
        return
    mm = task.mm
    try:
        nxt, offset, pending = ROBUST_HEAD.unpack(mm.copy_in(head, ROBUST_HEAD.size))
        entries = []
        p = nxt
        while p and p != head and len(entries) < ROBUST_LIST_LIMIT:
            entries.append(p)
            p = int.from_bytes(mm.copy_in(p, 8), "little")
        if pending:
            entries.append(pending)
        for e in entries:
            uaddr = (e + offset) & U64
            word = int.from_bytes(mm.copy_in(uaddr, 4), "little")
            if word & FUTEX_TID_MASK != task.tid:
                continue
            died = (word & FUTEX_WAITERS) | FUTEX_OWNER_DIED
            mm.copy_out(uaddr, died.to_bytes(4, "little"))
            if word & FUTEX_WAITERS:
                task.kernel.futexes.wake(futex_key(mm, uaddr), 1)
    except SyscallError:
        return  # a damaged list ends the walk, as on Linux

def clear_child_tid(task: Task) -> None:
    """CLONE_CHILD_CLEARTID: zero the tid word and wake one futex waiter (join)."""
    addr = task.clear_child_tid
    if not addr:
        return
    task.clear_child_tid = 0
    try:
        task.mm.copy_out(addr, bytes(4))
        key = futex_key(task.mm, addr)  # Linux wakes it as a shared futex
    except SyscallError:
        return
    task.kernel.futexes.wake(key, 1)
