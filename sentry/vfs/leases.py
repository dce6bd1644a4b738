"""Lease breaking (fcntl(2) F_SETLEASE): an open or truncate that conflicts
with another description's lease waits for the holder to give way.

What Linux does and this module follows (fcntl(2) "Leases", fs/locks.c):

* A read lease conflicts with opening for writing or truncating; a write
  lease with any open. The breaker's call signals each holder's owner
  (SIGIO, or F_SETSIG's signal with si_fd, POLL_MSG) and then blocks until
  the holder downgrades (to F_RDLCK, when the breaker only reads) or
  removes the lease, or until /proc/sys/fs/lease-break-time seconds pass,
  when the kernel does it for the holder. With O_NONBLOCK the open fails with
  EWOULDBLOCK instead of waiting (the break still starts).
* While a lease is being broken to "none", the holder cannot downgrade it
  to a read lease (the breaker already counts as a writer): EAGAIN.

The wait happens outside the VFS tree lock: the check raises
:class:`Breaking` inside it, the caller waits and then tries again.
"""

from __future__ import annotations

import errno
import threading
import time
from typing import Any

from sentry.kernel.errors import SyscallError
from sentry.kernel.sigio import POLL_MSG, send_io_signal
from sentry.kernel.task import current_task

F_RDLCK, F_WRLCK, F_UNLCK = 0, 1, 2
COND = threading.Condition()  # leaf: held only around lease state
SLICE_S = 0.05


class Breaking(Exception):  # noqa: N818 - a control-flow signal, not an error
    """An open/truncate must wait for leases on ``inode`` to give way."""

    def __init__(self, inode: Any, writing: bool) -> None:
        super().__init__()
        self.inode, self.writing = inode, writing

    def wait(self) -> None:
        """Until no conflicting lease is left, or lease-break-time is over
        (then the leases are downgraded or removed by force); interruptible."""
        task = current_task()
        limit = 45.0 if task is None else float(task.kernel.sysctl.lease_break_time)
        deadline = time.monotonic() + limit
        with COND:
            while _conflicts(self.inode, self.writing):
                left = deadline - time.monotonic()
                if left <= 0:
                    for d in _conflicts(self.inode, self.writing):
                        set_lease(d, self.inode, d.__dict__.get("breaking", F_UNLCK))
                    return
                if task is not None:
                    task.check_interrupt()
                COND.wait(min(left, SLICE_S))


def _holders(inode: Any) -> list[Any]:
    held = getattr(inode, "_lease_holders", None)
    if not held:
        return []
    live = [d for d in held if d.refs > 0 and d.__dict__.get("lease", F_UNLCK) != F_UNLCK]
    if len(live) != len(held):
        inode._lease_holders = live  # closed descriptions lose their leases
    return live


def _conflicts(inode: Any, writing: bool) -> list[Any]:
    out = []
    for d in _holders(inode):
        kind = d.__dict__.get("lease")
        if kind == F_WRLCK or (writing and kind == F_RDLCK):
            out.append(d)
    return out


def set_lease(desc: Any, inode: Any, kind: int) -> None:
    """Record ``desc``'s lease (F_UNLCK removes it) and wake breakers."""
    with COND:
        desc.__dict__.pop("breaking", None)
        held = [d for d in getattr(inode, "_lease_holders", None) or [] if d is not desc]
        if kind == F_UNLCK:
            desc.__dict__.pop("lease", None)
        else:
            desc.__dict__["lease"] = kind
            held.append(desc)
        inode._lease_holders = held
        COND.notify_all()


def breaking_to(desc: Any) -> int | None:
    """What ``desc``'s lease is being broken to (None: no break under way)."""
    return desc.__dict__.get("breaking")


def check(inode: Any, writing: bool, nonblock: bool) -> None:
    """An open (or truncate) of ``inode``: start breaking the leases it
    conflicts with and raise :class:`Breaking` (EWOULDBLOCK if ``nonblock``)."""
    if not getattr(inode, "_lease_holders", None):
        return
    with COND:
        conflicts = _conflicts(inode, writing)
        fresh = [d for d in conflicts if "breaking" not in d.__dict__]
        for d in fresh:
            d.__dict__["breaking"] = F_UNLCK if writing else F_RDLCK
    for d in fresh:
        send_io_signal(d, d.__dict__.get("lease_fd", 0), POLL_MSG)
    if not conflicts:
        return
    if nonblock:
        raise SyscallError(errno.EWOULDBLOCK)
    raise Breaking(inode, writing)
