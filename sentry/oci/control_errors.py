"""The control plane's two failures (control.py), in a module of their own
so that code which only needs to catch them (sentry/oci/lifecycle.py on the
`delete` path, which often makes no request at all) does not import msgpack
and socket to do so."""

from __future__ import annotations


class FrameError(Exception):
    """A bad frame.  ``fatal``: the stream is out of step and must be closed."""

    def __init__(self, message: str, fatal: bool) -> None:
        super().__init__(message)
        self.fatal = fatal


class ControlError(Exception):
    """A client-side failure: no server, a timeout, or an error reply.

    ``status``: the exit status an error reply proposes (e.g. 127 for an exec
    whose program is missing), or None.
    """

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status
