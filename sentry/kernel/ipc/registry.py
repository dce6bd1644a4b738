"""One kind of System V IPC object (semaphore sets, message queues) in one
IPC namespace: keys, ids, ownership and Linux's permission rules.

Facts about Linux's System V IPC that shape this module (ipc/util.c):

* An id is ``seq * 32768 + index``. Indexes are handed out cyclically
  (``idr_alloc_cyclic``: the next free one after the last given, below
  max(64, 1.5 x in use), wrapping to 0), and the sequence number goes up each
  time they wrap, so a stale id of a removed object is EINVAL, not another
  object's.
* ``get(key, flags)``: IPC_PRIVATE always makes a new object; another key
  finds its object, or makes one with IPC_CREAT (ENOENT without); IPC_CREAT
  with IPC_EXCL on an existing key is EEXIST; otherwise the low nine bits of
  ``flags`` are the access wanted (EACCES if refused).
* Access (``ipcperms``): the owner's or creator's bits for the effective
  uid, the group's for the owner's or creator's group (fs gid or a
  supplementary group), else the others'; CAP_IPC_OWNER overrides.
* IPC_SET and IPC_RMID are for the owner, the creator, or CAP_SYS_ADMIN.
* Every object of the sandbox lives in its kernel's namespace: containers do
  not see each other's objects, nor the host's.
* Each kind has a count limit (msgmni, shmmni, sem's fourth field; ENOSPC
  once reached) and a ``next_id`` (msg_next_id & co., for checkpoint/restore
  tools): when set, the next object takes that id's sequence number and the
  first free index from that id's on, and ``next_id`` goes back to -1.

Lock order: one lock per namespace (``IpcNamespace.lock``), taken inside the
kernel lock when a process exits (SEM_UNDO) and never around it.
"""

from __future__ import annotations

import errno
import itertools
import time
from collections.abc import Callable
from typing import Generic, TypeVar

from sentry.kernel.creds import CAP_IPC_OWNER, CAP_SYS_ADMIN, Credentials
from sentry.kernel.errors import SyscallError

IPC_PRIVATE = 0
IPC_CREAT = 0o1000
IPC_EXCL = 0o2000
IPC_NOWAIT = 0o4000
SEQ_MULTIPLIER = 32768
IPCMNI = 32000  # objects of one kind per namespace
MNI_MAX = SEQ_MULTIPLIER  # the most a count limit may be set to (Linux's IPCMNI)
S_IRUGO, S_IWUGO = 0o444, 0o222


class IpcObject:
    """What every IPC object has: its key, id and ipc_perm fields."""

    def __init__(self, key: int, ident: int, c: Credentials, mode: int) -> None:
        self.key = key
        self.id = ident
        self.uid = self.cuid = c.euid
        self.gid = self.cgid = c.egid
        self.mode = mode & 0o777
        self.ctime = int(time.time())
        self.deleted = False

    @property
    def seq(self) -> int:
        return self.id // SEQ_MULTIPLIER

    def may(self, c: Credentials, want: int) -> bool:
        """ipcperms(): may ``c`` have the access bits ``want`` (of 0o777)?"""
        granted = self.mode
        if c.euid in (self.cuid, self.uid):
            granted >>= 6
        elif c.in_group(self.cgid) or c.in_group(self.gid):
            granted >>= 3
        want = (want | want >> 3 | want >> 6) & 7
        return not want & ~granted & 7 or c.capable(CAP_IPC_OWNER)

    def check(self, c: Credentials, want: int) -> None:
        if not self.may(c, want):
            raise SyscallError(errno.EACCES)

    def check_owner(self, c: Credentials) -> None:
        """IPC_SET / IPC_RMID: the owner, the creator, or CAP_SYS_ADMIN."""
        if c.euid not in (self.uid, self.cuid) and not c.capable(CAP_SYS_ADMIN):
            raise SyscallError(errno.EPERM)

    def set_perm(self, uid: int, gid: int, mode: int) -> None:
        """IPC_SET's part of ipc_perm (ipc_update_perm)."""
        self.uid, self.gid = uid, gid
        self.mode = (self.mode & ~0o777) | (mode & 0o777)
        self.ctime = int(time.time())


T = TypeVar("T", bound=IpcObject)


class Registry(Generic[T]):
    """The objects of one kind: index slots, keys, the sequence counter."""

    def __init__(self, mni: int = IPCMNI) -> None:
        self.by_index: dict[int, T] = {}
        self.by_key: dict[int, T] = {}
        self._seq = 0
        self._last = -1
        self.mni = mni  # the kind's count limit (its /proc/sys/kernel tunable)
        self.next_id = -1  # the id the next object gets, or -1 (cyclic)

    def get(self, key: int, flags: int, c: Credentials, make: Callable[[int], T],
            more_checks: Callable[[T], None] | None = None) -> int:
        """The id for ``key`` with ``flags`` (see the module docstring);
        ``make(id)`` builds a new object."""
        key = key & 0xFFFF_FFFF
        key = key - (1 << 32) if key >= 1 << 31 else key
        found = self.by_key.get(key) if key != IPC_PRIVATE else None
        if found is None:
            if key != IPC_PRIVATE and not flags & IPC_CREAT:
                raise SyscallError(errno.ENOENT)
            return self._add(key, make)
        if flags & IPC_CREAT and flags & IPC_EXCL:
            raise SyscallError(errno.EEXIST)
        if more_checks is not None:
            more_checks(found)
        found.check(c, flags & 0o777)
        return found.id

    def _add(self, key: int, make: Callable[[int], T]) -> int:
        if len(self.by_index) >= self.mni:
            raise SyscallError(errno.ENOSPC)
        if self.next_id >= 0:
            return self._add_at(key, make, self.next_id)
        limit = min(max(len(self.by_index) * 3 // 2, 64), IPCMNI)
        order = itertools.chain(range(self._last + 1, limit), range(min(self._last + 1, limit)))
        index = next((i for i in order if i not in self.by_index), None)
        if index is None:
            raise SyscallError(errno.ENOSPC)
        seq = self._seq + 1 if index <= self._last else self._seq
        obj = make((seq % (1 << 16)) * SEQ_MULTIPLIER + index)
        self._seq, self._last = seq % (1 << 16), index
        return self._insert(key, index, obj)

    def _add_at(self, key: int, make: Callable[[int], T], want: int) -> int:
        """The object asked for through ``next_id``: ``want``'s sequence
        number, the first free index from ``want``'s (the cyclic counter is
        left alone)."""
        start = want % SEQ_MULTIPLIER
        index = next((i for i in range(start, SEQ_MULTIPLIER) if i not in self.by_index), None)
        if index is None:
            raise SyscallError(errno.ENOSPC)
        obj = make(want // SEQ_MULTIPLIER * SEQ_MULTIPLIER + index)
        self.next_id = -1
        return self._insert(key, index, obj)

    def _insert(self, key: int, index: int, obj: T) -> int:
        self.by_index[index] = obj
        if key != IPC_PRIVATE:
            self.by_key[key] = obj
        return obj.id

    def lookup(self, ident: int) -> T:
        """The object ``ident`` names: EINVAL for a negative, free or stale id."""
        if ident < 0:
            raise SyscallError(errno.EINVAL)
        obj = self.by_index.get(ident % SEQ_MULTIPLIER)
        if obj is None or obj.id != ident:
            raise SyscallError(errno.EINVAL)
        return obj

    def at_index(self, index: int) -> T:
        """SEM_STAT / MSG_STAT take an index, not an id."""
        obj = self.by_index.get(index) if 0 <= index < IPCMNI else None
        if obj is None:
            raise SyscallError(errno.EINVAL)
        return obj

    def remove(self, obj: T) -> None:
        obj.deleted = True
        self.by_index.pop(obj.id % SEQ_MULTIPLIER, None)
        if self.by_key.get(obj.key) is obj:
            del self.by_key[obj.key]

    def max_index(self) -> int:
        """IPC_INFO's answer: the highest index in use (0 when none)."""
        return max(self.by_index, default=0)

    def __len__(self) -> int:
        return len(self.by_index)

    def __iter__(self):  # noqa: ANN204 - an iterator of T
        return iter(sorted(self.by_index.values(), key=lambda o: o.id % SEQ_MULTIPLIER))
