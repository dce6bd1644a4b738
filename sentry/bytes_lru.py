"""Byte strings by key, least recently used dropped first past a total size.

Shared by the Gofer page cache (sentry/vfs/goferfs.py: file chunks) and the
exec image cache (sentry/mm/image_cache.py: whole executables).

Every byte kept is charged to the Sentry's kernel-memory account
(sentry/kmem.py), where caches yield to buffers: a put that does not fit
the account drops this cache's oldest entries (never another's), and a
pipe or socket short of room makes the cache shrink (``shrink``), as
Linux reclaims page cache before failing a charge.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable

from sentry import kmem


class BytesLru:
    """An LRU of byte strings holding at most ``limit`` bytes in all, each
    entry counted as its length plus ``entry_overhead`` (what a subclass full
    of tiny entries says one costs besides its bytes, so that a million empty
    ones are not free).

    Lock order: ``_lock`` above kmem's; nothing else is taken under it."""

    entry_overhead = 0

    def __init__(self, limit_bytes: int) -> None:
        self.limit = limit_bytes
        self.used = 0
        self._items: OrderedDict[Hashable, bytes] = OrderedDict()
        self._lock = threading.Lock()
        kmem.register_shrinker(self)

    def __del__(self) -> None:
        try:
            if self.used:
                kmem.uncharge(self.used)
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass

    def get(self, key: Hashable) -> bytes | None:
        with self._lock:
            data = self._items.get(key)
            if data is not None:
                self._items.move_to_end(key)
            return data

    def _pop_oldest(self) -> int:
        """Drop the least recently used entry (lock held); its cost."""
        _, dropped = self._items.popitem(last=False)
        cost = len(dropped) + self.entry_overhead
        self.used -= cost
        kmem.uncharge(cost)
        return cost

    def put(self, key: Hashable, data: bytes) -> None:
        """Keep ``data`` (unless it alone is over the limit, or the Sentry's
        account has no room even once this cache is empty)."""
        cost = len(data) + self.entry_overhead
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                old_cost = len(old) + self.entry_overhead
                self.used -= old_cost
                kmem.uncharge(old_cost)
            while self._items and self.used + cost > self.limit:
                self._pop_oldest()
            if cost > self.limit:
                return
            while not kmem.try_charge(cost, reclaim=False):
                if not self._items:
                    return
                self._pop_oldest()
            self._items[key] = data
            self.used += cost

    def shrink(self, nbytes: int) -> int:
        """Drop the oldest entries until ``nbytes`` are freed (or none is
        left): the account needs room (sentry/kmem.py)."""
        freed = 0
        with self._lock:
            while self._items and freed < nbytes:
                freed += self._pop_oldest()
        return freed

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            kmem.uncharge(self.used)
            self.used = 0
