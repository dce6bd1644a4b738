"""Fuzzing the 9P client against a hostile Gofer (the codec's other way).

The codec itself is fuzzed both ways in tests/test_p9.py (random, mutated and
chunked frames of every message type) and the Gofer's request side in
tests/test_gofer.py (random frames and bodies into a live server).  What was
left is the Sentry's side of the wall: the Gofer is a separate process that a
compromised file tree or a bug could turn hostile, and every reply it sends
reaches gofer/client.py.  Whatever it answers (a wrong message type, a wrong
tag, random bytes, a mutated frame, an Rlerror with any number), every client
call must return or raise SyscallError with an errno an application can be
given (1..4095), never another exception.

A reply stream is drawn per example and served by :class:`HostileChannel` in
place of the shared-memory channel: a real object speaking the channel's
interface, answering from the drawn list.
"""

from __future__ import annotations

import errno
import struct
from typing import Any

from fuzzing import fuzz
from hypothesis import example
from hypothesis import strategies as st
from test_p9 import any_message, frames, mutated_frames, tags

from gofer import p9
from gofer.client import GoferClient
from sentry.kernel.errors import SyscallError
from shm.errors import PeerDiedError

MAX_ERRNO = 4095
MSIZE = 8192


class HostileChannel:
    """The channel's interface, answering each request with the next drawn reply.

    A reply is raw bytes, or a message to encode with the request's own tag (so
    the frame gets past the tag check and reaches the type and field checks).
    Past the end of the list the peer counts as dead."""

    def __init__(self, replies: list[Any]) -> None:
        self.replies = list(replies)
        self.msize = MSIZE
        self.name = "/hostile"

    def send_request(self, payload: bytes, *, timeout: float | None = None) -> bytes:
        if not self.replies:
            raise PeerDiedError("no more replies")
        reply = self.replies.pop(0)
        if isinstance(reply, bytes):
            return reply
        # The tag of the last frame in the payload (queued Tclunks come first).
        pos, tag = 0, 0
        while pos + 7 <= len(payload):
            size, _, tag = struct.unpack_from("<IBH", payload, pos)
            pos += max(size, 7)
        return p9.encode(reply, tag, MSIZE)

    def peer_alive(self) -> bool:
        return bool(self.replies)

    def close(self) -> None:
        self.replies.clear()


def _calls(client: GoferClient) -> list[Any]:
    """Every client operation, with plausible arguments."""
    return [
        lambda: client.connect(),
        lambda: client.walk(1, [b"etc", b"passwd"]),
        lambda: client.walk(1, [b"x"] * 20),
        lambda: client.walk(1, []),
        lambda: client.getattr(1),
        lambda: client.setattr(1, p9.P9_SETATTR_MODE, mode=0o644),
        lambda: client.statfs(1),
        lambda: client.readlink(1),
        lambda: client.lopen(1, 0),
        lambda: client.lcreate(1, b"new", 0o102, 0o644, 0),
        lambda: client.read(1, 0, 3 * MSIZE),
        lambda: client.write(1, 0, b"x" * (2 * MSIZE)),
        lambda: client.readdir(1, 0, 4096),
        lambda: client.fsync(1),
        lambda: client.mkdir(1, b"d", 0o755, 0),
        lambda: client.symlink(1, b"l", b"/target", 0),
        lambda: client.mknod(1, b"f", 0o100644, 0, 0, 0),
        lambda: client.link(1, 2, b"h"),
        lambda: client.renameat(1, b"a", 1, b"b"),
        lambda: client.unlinkat(1, b"a"),
        lambda: client.remove(2),
        lambda: client.clunk(3),
        lambda: client.attach("/mnt"),
    ]


def _error_frame(ecode: int) -> Any:
    return p9.Rlerror(ecode)


replies = st.lists(
    st.one_of(
        any_message,                                   # any message, the right tag
        st.integers(0, 0xFFFF_FFFF).map(_error_frame),  # any errno a Gofer may claim
        frames,                                        # any message, any tag
        mutated_frames(),
        st.binary(max_size=64),
        st.builds(lambda m, t: p9.encode(m, t, MSIZE), any_message, tags),
    ),
    max_size=6,
)


@fuzz(call=st.integers(0, len(_calls(GoferClient(HostileChannel([])))) - 1),  # type: ignore[arg-type]
      answers=replies)
@example(call=4, answers=[p9.Rlerror(0)])             # "error 0": a success that is not
@example(call=4, answers=[p9.Rlerror(0xFFFF_FFFF)])   # beyond any errno
@example(call=10, answers=[p9.Rread(b"x" * 100)])     # more than asked? (asked more)
@example(call=12, answers=[p9.Rreaddir(b"\x00" * 30)])
def test_client_survives_hostile_replies(call: int, answers: list[Any]) -> None:
    client = GoferClient(HostileChannel(answers))  # type: ignore[arg-type]
    try:
        _calls(client)[call]()
    except SyscallError as exc:
        assert 1 <= exc.errno <= MAX_ERRNO, f"errno {exc.errno} from a hostile reply"


test_client_survives_hostile_replies_long = test_client_survives_hostile_replies.long


def test_rlerror_outside_errno_range_is_eio() -> None:
    """The seed the fuzzer found first: a Gofer's Rlerror(0) made the client
    raise SyscallError(0), which the dispatcher returns as 0 (success), and a
    huge ecode reached the application as a return value no errno has."""
    for ecode in (0, MAX_ERRNO + 1, 0xFFFF_FFFF):
        client = GoferClient(HostileChannel([p9.Rlerror(ecode)]))  # type: ignore[arg-type]
        try:
            client.getattr(1)
        except SyscallError as exc:
            assert exc.errno == errno.EIO
        else:
            raise AssertionError(f"Rlerror({ecode}) answered a getattr")
