"""Per-user pipe buffer accounting: /proc/sys/fs/pipe-user-pages-soft and
pipe-user-pages-hard (pipe(7)).

What Linux does and this module follows: each user's anonymous pipes count
their buffer pages. A user without CAP_SYS_RESOURCE or CAP_SYS_ADMIN whose
pages would pass the soft limit gets new pipes of two pages (8 KiB) instead
of sixteen; passing the hard limit (0: none) fails pipe() with ENFILE, and
F_SETPIPE_SZ growing a pipe past either limit with EPERM. Privileged users
are counted but never limited. Named pipes (fifos) are not counted here.
"""

from __future__ import annotations

import errno
import threading
from collections import Counter

from sentry.kernel.errors import SyscallError

DEFAULT_PAGES = 16  # PIPE_DEF_BUFFERS
MIN_PAGES = 2  # PIPE_MIN_DEF_BUFFERS

_lock = threading.Lock()
_pages: Counter[int] = Counter()


def _over(total: int, limit: int) -> bool:
    return bool(limit) and total > limit


def charge_new(uid: int, soft: int, hard: int, privileged: bool) -> int:
    """The pages a new pipe of ``uid`` gets, counted to the user."""
    with _lock:
        pages = DEFAULT_PAGES
        if _over(_pages[uid] + pages, soft) and not privileged:
            pages = MIN_PAGES
        if _over(_pages[uid] + pages, hard) and not privileged:
            raise SyscallError(errno.ENFILE)
        _pages[uid] += pages
        return pages


def resize(uid: int, old: int, new: int, soft: int, hard: int, privileged: bool) -> None:
    """F_SETPIPE_SZ from ``old`` to ``new`` pages (EPERM past a limit when growing)."""
    with _lock:
        total = _pages[uid] - old + new
        if new > old and not privileged and (_over(total, hard) or _over(total, soft)):
            raise SyscallError(errno.EPERM)
        _pages[uid] = total


def release(uid: int, pages: int) -> None:
    """A counted pipe is gone."""
    with _lock:
        _pages[uid] -= pages
