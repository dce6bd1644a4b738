"""Large writes to pipes and stream sockets, copied in a bounded piece at a
time.

Why: the Sentry copies an application's bytes out of its memory before a
pipe or a socket takes them. Copied whole, one write(2) of 1 GiB to a pipe
is a 1 GiB bytes object in the Sentry's heap, charged to the sandbox's
memory cgroup but to no account of the Sentry's (sentry/kmem.py): a sandbox
under `-m 256m` could grow the Sentry past its limit with a single call,
and with the same call in a few threads, the host's OOM killer takes the
whole sandbox. Linux never holds more than a page of such a write outside
the pipe (pipe_write copies page by page into the pipe's own pages;
unix_stream_sendmsg and tcp_sendmsg build one skb at a time, each as big
as the send buffer allows).

So here a write to a destination that may take a write in parts (a pipe, a
stream socket: ``takes_pieces``) is copied in PIECE bytes at a time, each
piece written before the next is copied in. What the caller sees is what
Linux gives: a blocking write delivers every byte (waiting for the reader
as the pipe fills); a short write of a piece (non-blocking, a signal, no
memory) or an error after bytes went ends the call with the bytes written
so far (no SIGPIPE for a socket then, as unix_stream_sendmsg and
tcp_sendmsg send it only when nothing went; a pipe's writer gets it either
way, as pipe_write sends it; a fault in the buffer too: the bytes before the bad page go, as
copy_from_user's short copy makes Linux write them); an error before any
byte went is the call's error. A write of at
most PIECE bytes is one piece, so PIPE_BUF atomicity is untouched.
Datagram and record sockets (UDP, unix SOCK_DGRAM/SOCK_SEQPACKET) and
regular files keep the one copy: a datagram is one message, and a file's
write is not held by the Sentry in between.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from sentry.kernel.errors import SyscallError

if TYPE_CHECKING:
    from sentry.kernel.task import Task

PIECE = 1 << 20  # at most this many bytes of one write in the Sentry at a time
PAGE = 4096


def takes_pieces(f: object) -> bool:
    """Whether a write to ``f`` may be handed over in parts (a pipe's end, a
    stream socket's file: their ``takes_pieces`` says)."""
    return bool(getattr(f, "takes_pieces", False))


def write_pieces(t: Task, iovs: list[tuple[int, int]], count: int,
                 write: Callable[[bytes, int], int]) -> int:
    """Write ``count`` bytes gathered from ``iovs`` (address, length) with
    ``write(piece, bytes written before it)``, PIECE bytes at a time; the
    bytes written (see the module docstring for where it stops)."""
    done = 0
    i, at = 0, 0  # the iovec being read and how far into it
    while done < count:
        parts: list[bytes] = []
        size = 0
        try:
            while size < PIECE and done + size < count:
                base, n = iovs[i]
                take = min(n - at, PIECE - size, count - done - size)
                if take > 0:
                    try:
                        parts.append(t.mm.copy_in(base + at, take))
                    except SyscallError:  # the bytes before the bad page still go
                        head = _readable_head(t, base + at, take)
                        if head:
                            parts.append(head)
                            size += len(head)
                        raise
                    size += take
                    at += take
                if at >= n:
                    i, at = i + 1, 0
        except SyscallError:  # EFAULT: what went before is the call's result
            if done or size:
                if size:
                    done += _write_part(write, b"".join(parts), done)
                return done
            raise
        data = b"".join(parts)
        del parts
        wrote = _write_part(write, data, done)
        done += wrote
        if wrote < len(data):
            break
    return done


def _readable_head(t: Task, addr: int, n: int) -> bytes:
    """The bytes of [addr, addr + n) before its first unreadable page (a
    fault in the middle of a write: Linux writes what came before it)."""
    parts: list[bytes] = []
    end = addr + n
    while addr < end:
        step = min(end, (addr | PAGE - 1) + 1) - addr
        try:
            parts.append(t.mm.copy_in(addr, step))
        except SyscallError:
            break
        addr += step
    return b"".join(parts)


def _write_part(write: Callable[[bytes, int], int], data: bytes, done: int) -> int:
    """One piece; an error after earlier pieces went is a short write."""
    try:
        return write(data, done)
    except SyscallError:
        if done:
            return 0
        raise
