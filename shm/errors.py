"""Exceptions of the shared-memory channel.

Narrow classes so that callers can tell a dead Gofer (restart or kill the
sandbox) from a slow one (retry or give up) from a hostile one (protocol error).
Every class derives from ChannelError, so "anything went wrong on the channel"
is still one except clause.
"""

from __future__ import annotations


class ChannelError(Exception):
    """Base class: the channel could not carry this request."""


class ChannelClosed(ChannelError):
    """This side, or the peer in an orderly way, closed the channel."""


class ChannelTimeout(ChannelError):
    """A wait ran past its deadline while the peer still looked alive."""


class PeerDiedError(ChannelError):
    """The process on the other side of the channel has exited."""


class FrameTooLarge(ChannelError):
    """A request or response does not fit in one slot (msize bytes)."""


class ProtocolError(ChannelError):
    """The peer left something impossible in shared memory (bad length, state,
    sequence number or header). The peer is untrusted: this is reported, never
    turned into an IndexError, a crash or a hang."""


class RemoteError(ChannelError):
    """The server's handler failed on this request (a server bug, reported to
    the client instead of leaving it waiting)."""
