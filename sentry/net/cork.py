"""MSG_MORE, TCP_CORK and UDP_CORK: data held back until the sender says the
message is complete (send(2), tcp(7), udp(7)).

TCP: while corked (a send with MSG_MORE, or TCP_CORK set) the bytes are
kept on the sender and the receiver sees nothing; they go out, ahead of
the new bytes, with the next send that is not corked, when TCP_CORK is
cleared, at shutdown or close, when a full segment has gathered, or after
tcp(7)'s 200 ms ceiling.

UDP: the datagrams sent with MSG_MORE (or while UDP_CORK is set) are
joined into one, sent to the first one's destination by the next send that
is not corked (or when UDP_CORK is cleared); its size is checked as a whole.

Memory: held bytes live in the Sentry's heap, so they are bounded and
charged to its kernel-memory account (sentry/kmem.py, ``cork_kbuf``), as
Linux keeps them in the socket's send queue, bounded by SO_SNDBUF and
charged to the memory cgroup. TCP holds at most max(SO_SNDBUF, one
segment); a corked send that finds no room (or no memory) pushes what is
held first, as tcp_sendmsg pushes before it waits for memory: a blocking
send waits for the peer to take it, a non-blocking one takes what fits
(EAGAIN when nothing does). A UDP datagram is at most 64 KiB already; with
no memory for it the send is ENOBUFS (ip_append_data's failed allocation)
and nothing is held.
"""

from __future__ import annotations

import errno
import threading
from typing import Any

from sentry import kmem
from sentry.kernel.errors import SyscallError
from sentry.net import consts as c

TCP_CORK = 3
UDP_CORK = 1
SEGMENT = 65483  # loopback's MSS: a full segment goes out even while corked
CEILING = 0.2  # tcp(7): "a 200 millisecond ceiling" on corked data


def stream_send(ep: Any, data: bytes, flags: int, nonblock: bool) -> int:
    """send(2) on a TCP endpoint: ``ep._send_now(data, nonblock)`` is the
    uncorked send; ``ep.corked`` is TCP_CORK; ``ep.cork_held`` the bytes held."""
    if flags & c.MSG_MORE or ep.corked:
        ep._send_now(b"", nonblock)  # the errors any send reports (EPIPE, ENOTCONN)
        done = 0
        while done < len(data):
            n = _hold(ep, data, done)
            if n:
                done += n
                continue
            if not ep.cork_held:  # no memory to hold even a byte: it goes now
                return done + _send_rest(ep, data[done:], nonblock, done)
            try:  # no room: push what is held (tcp_push before waiting for memory)
                stream_flush(ep, nonblock)
            except SyscallError:
                if done:
                    break
                raise
        with ep.cond:
            full = len(ep.cork_held or b"") >= SEGMENT
        if full:
            try:
                stream_flush(ep, True)
            except SyscallError:
                pass  # the peer is full: what is held waits (ceiling, next send)
        if ep.cork_held:
            _arm(ep)
        return done
    if not ep.cork_held:
        return ep._send_now(data, nonblock)
    return stream_flush(ep, nonblock, data)


def _hold(ep: Any, data: bytes, start: int) -> int:
    """Hold as much of ``data[start:]`` as the limit and the account allow;
    how much that was."""
    with ep.cond:
        held = ep.cork_held
        if held is None:
            held = ep.cork_held = bytearray()
        if ep.cork_kbuf is None:
            ep.cork_kbuf = kmem.Buffer()
        n = min(len(data) - start, max(ep.sndbuf, SEGMENT) - len(held))
        if n <= 0 or not ep.cork_kbuf.fits(len(held) + n):
            return 0
        held += data[start:start + n]
        return n


def _send_rest(ep: Any, rest: bytes, nonblock: bool, done: int) -> int:
    """The uncorked send of what could not be held; an error after some
    bytes were taken ends the call with those."""
    try:
        return ep._send_now(rest, nonblock)
    except SyscallError:
        if done:
            return 0
        raise


def _held_now(ep: Any) -> None:
    """The account follows what is held (cond held)."""
    if ep.cork_kbuf is not None:
        n = len(ep.cork_held or b"")
        if n:
            ep.cork_kbuf.holds(n)
        else:
            ep.cork_kbuf.release()


def stream_flush(ep: Any, nonblock: bool, extra: bytes = b"") -> int:
    """Send what is held, then ``extra``; returns how much of ``extra`` went.
    What could not go stays held (EAGAIN when none of ``extra`` went)."""
    with ep.cond:
        held = bytes(ep.cork_held or b"")
        if ep.cork_held is not None:
            ep.cork_held.clear()
        timer, ep.cork_timer = ep.cork_timer, None
    if timer is not None:
        timer.cancel()
    if not held and not extra:
        return 0
    try:
        n = ep._send_now(held + extra, nonblock)
    except SyscallError:
        _put_back(ep, held)
        raise
    if n < len(held):
        _put_back(ep, held[n:])
        if extra:
            raise SyscallError(errno.EAGAIN)
        return 0
    with ep.cond:
        _held_now(ep)
    return n - len(held)


def _put_back(ep: Any, held: bytes) -> None:
    """Bytes that could not go are held again, ahead of any held meanwhile
    (their pages stayed charged: the account is trimmed only here and once
    they have gone)."""
    with ep.cond:
        if ep.cork_held is None:
            ep.cork_held = bytearray()
        ep.cork_held[:0] = held
        _held_now(ep)


def _arm(ep: Any) -> None:
    """The 200 ms ceiling: what is still held then goes out."""
    with ep.cond:
        if ep.cork_timer is not None:
            return
        timer = ep.cork_timer = threading.Timer(CEILING, _expire, args=(ep,))
    timer.daemon = True
    timer.start()


def _expire(ep: Any) -> None:
    """The ceiling passed: what is held goes; what the peer has no room
    for yet is tried again a ceiling later, while the socket lives."""
    with ep.cond:
        ep.cork_timer = None
    try:
        stream_flush(ep, True)
    except SyscallError:
        pass  # closed, reset or still full: what is held stays (or goes with the socket)
    if ep.cork_held and not ep.closed:
        _arm(ep)


def set_stream_cork(ep: Any, on: bool) -> None:
    """TCP_CORK set or cleared; clearing sends what is held (what the peer
    has no room for goes later: ``_expire``)."""
    ep.corked = on
    if not on and ep.cork_held:
        try:
            stream_flush(ep, True)
        except SyscallError:
            pass
        if ep.cork_held:
            _arm(ep)


def release_stream(ep: Any, closing: bool = False) -> None:
    """Shutdown for writing or close: what is held goes first; at close,
    what could not go is dropped and its charge given back."""
    if ep.cork_held:
        try:
            stream_flush(ep, True)
        except SyscallError:
            pass
    if closing:
        with ep.cond:
            ep.cork_held = None
            if ep.cork_kbuf is not None:
                ep.cork_kbuf.release()


def dgram_take(ep: Any, data: bytes, flags: int, dest: bytes | None,
               limit: int) -> tuple[bytes, bytes | None] | None:
    """A UDP send: None when it is held (corked), else the datagram to send
    and its destination (what was held joined in front). ``limit`` is the
    largest datagram (EMSGSIZE past it, for the whole); no memory to hold
    it is ENOBUFS (what was held stays)."""
    held = ep.cork_held
    if flags & c.MSG_MORE or ep.corked:
        total = len(data) + (len(held[0]) if held else 0)
        if total > limit:
            dgram_drop(ep)
            raise SyscallError(errno.EMSGSIZE)
        if ep.cork_kbuf is None:
            ep.cork_kbuf = kmem.Buffer()
        if not ep.cork_kbuf.fits(total):
            raise SyscallError(errno.ENOBUFS)
        if held:
            held[0].extend(data)
        else:
            ep.cork_held = (bytearray(data), dest)
        return None
    if not held:
        return data, dest
    dgram_drop(ep)
    return bytes(held[0]) + data, held[1]


def dgram_drop(ep: Any) -> None:
    """The held datagram went (or is dropped, or the socket closed)."""
    ep.cork_held = None
    if ep.cork_kbuf is not None:
        ep.cork_kbuf.release()
