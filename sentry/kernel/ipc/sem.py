"""System V semaphore sets: semget, semop/semtimedop and semctl's state.

Facts about Linux's semaphores (ipc/sem.c) that shape this module:

* semop applies all its operations or none: each is tried in order on a
  scratch copy; a decrease below zero, or a wait-for-zero on a non-zero
  value, blocks the whole call (EAGAIN with IPC_NOWAIT); a result above
  SEMVMX is ERANGE.
* A blocked semop is retried whenever the set changes; it ends with EIDRM if
  the set is removed, EAGAIN at its timeout, and EINTR on a signal (never
  restarted, even with SA_RESTART).
* SEM_UNDO keeps, per process, an adjustment per semaphore (the negation of
  what the process's SEM_UNDO operations did); when the process exits it is
  applied, clamped to [0, SEMVMX]. SETVAL and SETALL zero the adjustments of
  what they set. A new process starts with none (fork does not inherit them).
* GETNCNT / GETZCNT count the tasks whose blocking operation waits for that
  semaphore to grow / to reach zero.
"""

from __future__ import annotations

import errno
import threading
import time
from typing import TYPE_CHECKING

from sentry.kernel.creds import Credentials
from sentry.kernel.errors import SyscallError
from sentry.kernel.ipc.registry import IPC_NOWAIT, S_IRUGO, S_IWUGO, IpcObject, Registry

if TYPE_CHECKING:
    from sentry.kernel.task import Task

SEMMSL = 32000  # semaphores per set
SEMMNS = 1024000000
SEMOPM = 500  # operations per semop
SEMVMX = 32767
SEMAEM = SEMVMX
SEM_UNDO = 0x1000

Sop = tuple[int, int, int]  # sem_num, sem_op, sem_flg


class SemSet(IpcObject):
    """One semaphore set."""

    def __init__(self, key: int, ident: int, c: Credentials, mode: int, nsems: int) -> None:
        super().__init__(key, ident, c, mode)
        self.values = [0] * nsems
        self.pids = [0] * nsems
        self.otime = 0
        # Blocked operations: id(waiter) -> the op each waits on (for NCNT/ZCNT).
        self.blocked: dict[int, Sop] = {}

    @property
    def nsems(self) -> int:
        return len(self.values)

    def count_waiters(self, semnum: int, zero: bool) -> int:
        return sum(1 for num, op, _ in self.blocked.values()
                   if num == semnum and (op == 0 if zero else op < 0))


class SemNamespace:
    """The semaphore sets of one IPC namespace, their undo lists and waits."""

    def __init__(self, lock: threading.Lock) -> None:
        self.sets: Registry[SemSet] = Registry()
        self.cond = threading.Condition(lock)
        # tgid -> {set id -> per-semaphore adjustment}
        self.undo: dict[int, dict[int, list[int]]] = {}

    def semget(self, c: Credentials, key: int, nsems: int, flags: int) -> int:
        if not 0 <= nsems <= SEMMSL:
            raise SyscallError(errno.EINVAL)

        def make(ident: int) -> SemSet:
            if nsems == 0:
                raise SyscallError(errno.EINVAL)
            if sum(s.nsems for s in self.sets) + nsems > SEMMNS:
                raise SyscallError(errno.ENOSPC)
            return SemSet(key, ident, c, flags, nsems)

        def more_checks(s: SemSet) -> None:
            if nsems > s.nsems:
                raise SyscallError(errno.EINVAL)

        with self.cond:
            return self.sets.get(key, flags, c, make, more_checks)

    def semop(self, task: Task, semid: int, sops: list[Sop], deadline: float | None) -> None:
        """semop/semtimedop after the caller checked nsops and read ``sops``."""
        c = task.creds
        alter = any(op for _, op, _ in sops)
        tgid = task.tg.tgid
        waiter = id(task)
        with self.cond:
            s = self.sets.lookup(semid)
            if max(num for num, _, _ in sops) >= s.nsems:
                raise SyscallError(errno.EFBIG)
            s.check(c, S_IWUGO if alter else S_IRUGO)
            try:
                while True:
                    if s.deleted:
                        raise SyscallError(errno.EIDRM)
                    blocking = self._try(s, sops, tgid)
                    if blocking is None:
                        self.cond.notify_all()
                        return
                    if blocking[2] & IPC_NOWAIT:
                        raise SyscallError(errno.EAGAIN)
                    s.blocked[waiter] = blocking
                    if task.interrupted():
                        raise SyscallError(errno.EINTR)
                    left = None if deadline is None else deadline - time.monotonic()
                    if left is not None and left <= 0:
                        raise SyscallError(errno.EAGAIN)
                    self.cond.wait(0.05 if left is None else min(left, 0.05))
            finally:
                s.blocked.pop(waiter, None)

    def _try(self, s: SemSet, sops: list[Sop], tgid: int) -> Sop | None:
        """Apply ``sops`` if they all can be; else the operation that blocks."""
        values = list(s.values)
        adj = None
        for num, op, flg in sops:
            result = values[num]
            if op == 0 and result:
                return (num, op, flg)
            result += op
            if result < 0:
                return (num, op, flg)
            if result > SEMVMX:
                raise SyscallError(errno.ERANGE)
            if flg & SEM_UNDO:
                if adj is None:
                    adj = list(self.undo.get(tgid, {}).get(s.id, [0] * s.nsems))
                undo = adj[num] - op
                if not -SEMAEM - 1 <= undo <= SEMAEM:
                    raise SyscallError(errno.ERANGE)
                adj[num] = undo
            values[num] = result
        s.values = values
        for num, _, _ in sops:
            s.pids[num] = tgid
        s.otime = int(time.time())
        if adj is not None:
            self.undo.setdefault(tgid, {})[s.id] = adj
        return None

    def set_values(self, s: SemSet, values: dict[int, int], tgid: int) -> None:
        """SETVAL / SETALL (under the lock): the values, undo cleared, waiters woken."""
        for num, value in values.items():
            s.values[num] = value
            s.pids[num] = tgid
            for per_set in self.undo.values():
                adj = per_set.get(s.id)
                if adj is not None:
                    adj[num] = 0
        s.ctime = int(time.time())
        self.cond.notify_all()

    def remove(self, s: SemSet) -> None:
        """IPC_RMID (under the lock): waiters get EIDRM, undo entries go."""
        self.sets.remove(s)
        for per_set in self.undo.values():
            per_set.pop(s.id, None)
        self.cond.notify_all()

    def exit_undo(self, tgid: int) -> None:
        """A process exited: apply its SEM_UNDO adjustments (exit_sem())."""
        with self.cond:
            per_set = self.undo.pop(tgid, None)
            if not per_set:
                return
            for semid, adj in per_set.items():
                try:
                    s = self.sets.lookup(semid)
                except SyscallError:
                    continue
                for num, delta in enumerate(adj):
                    if delta:
                        s.values[num] = min(max(s.values[num] + delta, 0), SEMVMX)
                        s.pids[num] = tgid
                s.otime = int(time.time())
            self.cond.notify_all()
