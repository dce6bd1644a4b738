"""The memory the sandbox may use, as its host cgroup says, and cache sizes
scaled to it.

Why: the Sentry's caches (file pages read through the Gofer, in
sentry/vfs/goferfs.py; executables' pages in the memory file,
sentry/mm/image_cache.py; both sized here) have defaults sized for a machine (hundreds of
MiB).  Under `docker run -m 32m` every byte they keep is charged to the same
limit as the application, which is then OOM-killed for the Sentry's caching.
gVisor sizes its caches from the container's memory limit too.  The limit is
read from the cgroup this process is in (so a limit set by a parent cgroup or
another tool counts, not only the bundle's), once, before the Sentry
confines itself.
"""

from __future__ import annotations

import os

# A cache gets at most this fraction of the memory limit.
CACHE_FRACTION = 16
_UNLIMITED = 1 << 62
_limit: int | None = None


def _cgroup_limit() -> int:
    """The memory limit of this process's cgroup (v1 memory.limit_in_bytes or
    v2 memory.max), walking up to the root; _UNLIMITED if none or unreadable."""
    from sentry.oci import cgroups

    hierarchies = cgroups._hierarchies()
    best = _UNLIMITED
    for ctrl, name in (("memory", "memory.limit_in_bytes"), ("", "memory.max")):
        mnt = hierarchies.get(ctrl)
        if mnt is None:
            continue
        d = cgroups._current({ctrl: mnt}).get(mnt)
        while d and d.startswith(mnt):
            try:
                with open(os.path.join(d, name)) as f:
                    raw = f.read().strip()
                if raw.isdigit():
                    best = min(best, int(raw))
            except OSError:
                pass
            if d == mnt:
                break
            d = os.path.dirname(d)
    return best


def limit() -> int:
    """The sandbox's memory limit in bytes (a huge number when unlimited)."""
    global _limit
    if _limit is None:
        _limit = _cgroup_limit()
    return _limit


def cache_bytes(default: int) -> int:
    """A cache's size: ``default``, or less under a memory limit."""
    return max(1 << 20, min(default, limit() // CACHE_FRACTION))
