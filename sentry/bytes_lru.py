"""Byte strings by key, least recently used dropped first past a total size.

Shared by the Gofer page cache (sentry/vfs/goferfs.py: file chunks) and the
exec image cache (sentry/mm/image_cache.py: whole executables).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable


class BytesLru:
    """An LRU of byte strings holding at most ``limit`` bytes in all, each
    entry counted as its length plus ``entry_overhead`` (what a subclass full
    of tiny entries says one costs besides its bytes, so that a million empty
    ones are not free)."""

    entry_overhead = 0

    def __init__(self, limit_bytes: int) -> None:
        self.limit = limit_bytes
        self.used = 0
        self._items: OrderedDict[Hashable, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> bytes | None:
        with self._lock:
            data = self._items.get(key)
            if data is not None:
                self._items.move_to_end(key)
            return data

    def put(self, key: Hashable, data: bytes) -> None:
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self.used -= len(old) + self.entry_overhead
            self._items[key] = data
            self.used += len(data) + self.entry_overhead
            while self.used > self.limit and self._items:
                _, dropped = self._items.popitem(last=False)
                self.used -= len(dropped) + self.entry_overhead

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self.used = 0
