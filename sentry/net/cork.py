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
"""

from __future__ import annotations

import errno
import threading
from typing import Any

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
        with ep.cond:
            if ep.cork_held is None:
                ep.cork_held = bytearray()
            ep.cork_held += data
            full = len(ep.cork_held) >= SEGMENT
        if full:
            stream_flush(ep, nonblock)
        else:
            _arm(ep)
        return len(data)
    if not ep.cork_held:
        return ep._send_now(data, nonblock)
    return stream_flush(ep, nonblock, data)


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
    return n - len(held)


def _put_back(ep: Any, held: bytes) -> None:
    with ep.cond:
        if ep.cork_held is None:
            ep.cork_held = bytearray()
        ep.cork_held[:0] = held


def _arm(ep: Any) -> None:
    """The 200 ms ceiling: what is still held then goes out."""
    with ep.cond:
        if ep.cork_timer is not None:
            return
        timer = ep.cork_timer = threading.Timer(CEILING, _expire, args=(ep,))
    timer.daemon = True
    timer.start()


def _expire(ep: Any) -> None:
    with ep.cond:
        ep.cork_timer = None
    try:
        stream_flush(ep, True)
    except SyscallError:
        pass  # closed, reset or still full: what is held stays (or goes with the socket)


def set_stream_cork(ep: Any, on: bool) -> None:
    """TCP_CORK set or cleared; clearing sends what is held."""
    ep.corked = on
    if not on and ep.cork_held:
        try:
            stream_flush(ep, True)
        except SyscallError:
            pass


def release_stream(ep: Any) -> None:
    """Shutdown for writing or close: what is held goes first."""
    if ep.cork_held:
        try:
            stream_flush(ep, True)
        except SyscallError:
            pass


def dgram_take(ep: Any, data: bytes, flags: int, dest: bytes | None,
               limit: int) -> tuple[bytes, bytes | None] | None:
    """A UDP send: None when it is held (corked), else the datagram to send
    and its destination (what was held joined in front). ``limit`` is the
    largest datagram (EMSGSIZE past it, for the whole)."""
    held = ep.cork_held
    if flags & c.MSG_MORE or ep.corked:
        total = len(data) + (len(held[0]) if held else 0)
        if total > limit:
            ep.cork_held = None
            raise SyscallError(errno.EMSGSIZE)
        if held:
            held[0].extend(data)
        else:
            ep.cork_held = (bytearray(data), dest)
        return None
    if not held:
        return data, dest
    ep.cork_held = None
    return bytes(held[0]) + data, held[1]
