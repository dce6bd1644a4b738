"""One Sentry-wide account of the bytes the Sentry holds for the application
in kernel buffers (pipes, socket queues, netlink queues, corked socket
bytes, System V and POSIX message queues, inotify queues) and caches (file
pages, executables), bounded by a budget taken from the sandbox's memory
limit. (A large write's own bytes are never all in the Sentry at once:
syscalls/pieces.py copies them in a piece at a time.)

Why: every byte a pipe or a socket holds lives in the Sentry's Python heap,
which is charged to the same memory cgroup as the application. Without a
bound, a program that opens thousands of pipes and fills each one grows the
Sentry past `docker run -m 256m`, and the host's OOM killer then ends the
whole sandbox (or, with no limit at all, the host suffers). gVisor keeps
such buffers in its own heap too and bounds them by the container's memory
(issue 16, item 4).

Facts from Linux this follows, and what pyvisor does instead:

* Pipe pages and socket buffers are kernel memory charged to the memory
  cgroup (``__GFP_ACCOUNT``), as is the page cache. A charge over the limit
  first reclaims (the page cache shrinks); when that is not enough, the
  allocation fails, or the OOM killer runs. Natively the OOM killer usually
  wins: a program filling pipes under a 256 MiB cgroup is killed (SIGKILL).
  In a sandbox the host's OOM killer would take the Sentry, that is every
  process of the sandbox, so pyvisor takes the other branch: the
  allocation fails, with the errno Linux gives for that failure.
* pipe_write (fs/pipe.c): a page that cannot be allocated ends the write
  with the bytes written so far, or ENOMEM if none were.
* AF_UNIX sendmsg (sock_alloc_send_pskb, alloc_skb_with_frags): ENOBUFS,
  or the bytes sent so far on a stream.
* TCP (sk_stream_alloc_skb failing, then sk_stream_wait_memory): the sender
  waits for memory as for room in the send buffer; EAGAIN when non-blocking.
* UDP (__udp_enqueue_schedule_skb, sk_rmem_schedule): the datagram is
  dropped at the receiver; the sender's sendto succeeds.
* msgsnd and mq_timedsend (load_msg): ENOMEM. inotify (an event that
  cannot be allocated): IN_Q_OVERFLOW is queued instead.
* Netlink (netlink_overrun): the kernel's answer is dropped and the next
  recv is ENOBUFS. Corked bytes (sentry/net/cork.py): TCP as any send
  without memory (push, then wait or EAGAIN); UDP ENOBUFS.

Caches yield first: before a buffer's charge fails, every registered cache
is asked to shrink (``shrink(nbytes)``, least recently used first), as
Linux reclaims page cache before failing a charge. A cache's own growth
never makes anything else shrink: a put that does not fit drops the cache's
oldest entries instead (sentry/bytes_lru.py).

The budget: what the limit leaves after SELF_RESERVE (the Sentry's own heap,
the Gofer and the stubs: a whole shell sandbox peaks at about 32 MiB), halved,
because the application's own memory is charged to the same limit and
Python's bytearrays may hold up to twice what they contain (a front delete
shrinks one only under half full). Under small limits, where nothing is
left after the reserve, a sixteenth of the limit (2 MiB under `-m 34m`:
32 full pipes), and never less than MIN_BUDGET: a fixed 8 MiB floor took a
34 MiB shell sandbox past its limit (the image cache and the file pages
fill what they may, and the stubs' memory and the Sentry's heap come on
top). With no limit: a quarter of the host's memory.

Cost on the hot path: a buffer charges whole pages and keeps one page
charged while it lives (Linux's pipe keeps a spare page, ``tmp_page``), so a
ping-pong of small messages takes no lock here; growing by a page is one
lock round, one add and one compare.

Lock order: ``_lock`` is a leaf. Shrinkers run without it, under the lock of
the pipe or socket whose charge needs room; a shrinker takes only its cache's
own lock (and this one, to uncharge). No cache calls into a pipe or socket.
"""

from __future__ import annotations

import os
import threading
import weakref
from typing import Protocol

from sentry import memlimit

PAGE = 4096
SELF_RESERVE = 48 << 20
MIN_BUDGET = 1 << 20
_UNLIMITED = 1 << 62


class Shrinker(Protocol):
    """A cache that can give bytes back under pressure."""

    def shrink(self, nbytes: int) -> int:
        """Drop at least ``nbytes`` (or everything), least recently used
        first; return the bytes uncharged."""


def _host_memory() -> int:
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return 4 << 30


def budget_for(limit: int) -> int:
    """The bytes buffers and caches may hold under a memory ``limit``."""
    if limit >= _UNLIMITED:
        return max(MIN_BUDGET, _host_memory() // 4)
    return max(MIN_BUDGET, limit // 16, (limit - SELF_RESERVE) // 2)


_lock = threading.Lock()
budget = budget_for(memlimit.limit())
used = 0
_shrinkers: list[weakref.ref[Shrinker]] = []


def _take(n: int) -> bool:
    global used
    with _lock:
        if used + n > budget:
            return False
        used += n
        return True


def try_charge(n: int, reclaim: bool = True) -> bool:
    """Count ``n`` bytes more; False (nothing counted) past the budget,
    after asking the caches for room when ``reclaim``."""
    if _take(n):
        return True
    if not reclaim:
        return False
    for ref in list(_shrinkers):
        cache = ref()
        if cache is None:
            continue
        cache.shrink(n)
        if _take(n):
            return True
    return False


def force_charge(n: int) -> None:
    """Count ``n`` bytes even past the budget (a checkpoint's restored
    buffers: refusing them would lose the application's data)."""
    global used
    with _lock:
        used += n


def uncharge(n: int) -> None:
    """``n`` counted bytes were freed."""
    global used
    with _lock:
        used -= n


def register_shrinker(cache: Shrinker) -> None:
    """Ask ``cache`` for room when a charge does not fit (weakly held)."""
    with _lock:
        _shrinkers[:] = [r for r in _shrinkers if r() is not None]
        _shrinkers.append(weakref.ref(cache))


def set_budget(n: int) -> int:
    """Replace the budget (tests); returns the old one."""
    global budget
    with _lock:
        old, budget = budget, n
    return old


class Buffer:
    """The charge of one buffer (a pipe's, a socket's receive queue), in
    whole pages. Not locked: its owner's lock guards it."""

    __slots__ = ("charged",)

    def __init__(self) -> None:
        self.charged = 0

    def fits(self, size: int) -> bool:
        """Whether the buffer may grow to hold ``size`` bytes; charges the
        pages it lacks (False, nothing charged, when they are not there)."""
        if size <= self.charged:
            return True
        want = (size + PAGE - 1) & -PAGE
        if not try_charge(want - self.charged):
            return False
        self.charged = want
        return True

    def force(self, size: int) -> None:
        """Charge for ``size`` bytes whatever the budget (restoring a checkpoint)."""
        want = (size + PAGE - 1) & -PAGE
        if want > self.charged:
            force_charge(want - self.charged)
            self.charged = want

    def holds(self, size: int) -> None:
        """The buffer now holds ``size`` bytes: give back the pages past them,
        keeping one while the buffer lives."""
        keep = max(PAGE, (size + PAGE - 1) & -PAGE)
        if self.charged > keep:
            uncharge(self.charged - keep)
            self.charged = keep

    def release(self) -> None:
        """The buffer is gone (or emptied for good)."""
        if self.charged:
            uncharge(self.charged)
            self.charged = 0

    def __del__(self) -> None:
        # A buffer dropped without release (an IPC namespace's queues when
        # it goes): its pages go back all the same.
        if self.charged:
            uncharge(self.charged)
