"""The server side of the control plane (the frame format and its rules are
in control.py): one listening socket per container, in the sandbox host.

A module of its own so that the runtime's short calls (start, kill, state,
delete), which only need control.py's client, do not import threading and
logging on every call.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import struct
import threading
import time
from typing import TYPE_CHECKING, Any

import msgpack

from sentry.oci.control import (
    MAX_CLIENTS,
    READ_TIMEOUT,
    FrameError,
    close_fds,
    encode,
    reachable,
    read_frame,
)

if TYPE_CHECKING:
    from sentry.oci.control import Handler

log = logging.getLogger("pyvisor")


class ControlServer:
    """Serves one container's socket until ``close``."""

    def __init__(self, path: str, handler: Handler) -> None:
        self.path = path
        self.handler = handler
        self._stop = threading.Event()
        self._slots = threading.BoundedSemaphore(MAX_CLIENTS)
        self._threads: set[threading.Thread] = set()
        self._lock = threading.Lock()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        old = os.umask(0o177)
        try:
            with reachable(path) as name:
                self._sock.bind(name)
        finally:
            os.umask(old)
        self._sock.listen(16)
        self._sock.settimeout(0.2)  # accept polls the stop flag
        self._acceptor = threading.Thread(target=self._accept_loop, name="oci-control",
                                          daemon=True)

    def start(self) -> None:
        self._acceptor.start()

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                if self._stop.is_set():
                    return
                time.sleep(0.05)  # EMFILE and friends: back off, keep serving
                continue
            if self._stop.is_set():  # close()'s wake-up call, or too late
                conn.close()
                return
            if not self._slots.acquire(blocking=False):
                self._reply_and_close(conn, {"ok": False, "error": "too many clients"})
                continue
            t = threading.Thread(target=self._serve, args=(conn,), daemon=True,
                                 name="oci-control-conn")
            with self._lock:
                self._threads.add(t)
            t.start()

    @staticmethod
    def _reply_and_close(conn: socket.socket, reply: dict[str, Any]) -> None:
        with contextlib.suppress(OSError):
            conn.settimeout(1.0)
            conn.sendall(encode(reply))
        conn.close()

    def _peer_allowed(self, conn: socket.socket) -> bool:
        creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        _pid, uid, _gid = struct.unpack("3i", creds)
        return uid in (0, os.geteuid())

    def _serve(self, conn: socket.socket) -> None:
        try:
            if not self._peer_allowed(conn):
                self._reply_and_close(conn, {"ok": False, "error": "permission denied"})
                return
            while not self._stop.is_set():
                fds: list[int] = []
                try:
                    try:
                        req = read_frame(conn, READ_TIMEOUT, fds)
                    except FrameError as exc:
                        conn.settimeout(1.0)
                        conn.sendall(encode({"ok": False, "error": str(exc)}))
                        if exc.fatal:
                            return
                        continue
                    if req is None:
                        return
                    req.pop("fds", None)  # only the kernel's SCM_RIGHTS say what came
                    if fds:
                        req["fds"] = fds  # the handler takes what it keeps
                    reply = self._dispatch(req)
                finally:
                    close_fds(fds)
                conn.settimeout(5.0)
                conn.sendall(encode(reply))
        except (OSError, TimeoutError):
            pass  # the client went away or stalled: its loss only
        finally:
            conn.close()
            self._slots.release()
            with self._lock:
                self._threads.discard(threading.current_thread())

    def _dispatch(self, req: dict[str, Any]) -> dict[str, Any]:
        op = req.get("op")
        if not isinstance(op, str):
            return {"ok": False, "error": "request has no op"}
        try:
            reply = self.handler(req)
        except Exception as exc:  # noqa: BLE001 - a handler bug must not kill the server
            log.exception("control op %r failed", op)
            return {"ok": False, "error": f"internal error: {exc!r}"}
        try:
            msgpack.packb(reply)
        except (TypeError, ValueError):
            return {"ok": False, "error": "internal error: unencodable reply"}
        return reply

    def close(self, linger: float = 2.0) -> None:
        """Stop accepting, remove the socket, give in-flight replies ``linger`` s."""
        self._stop.set()
        if self._acceptor.is_alive():
            self._wake_acceptor()
            self._acceptor.join(1.0)
        self._sock.close()
        with contextlib.suppress(OSError):
            os.unlink(self.path)
        deadline = time.monotonic() + linger
        with self._lock:
            threads = list(self._threads)
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))


    def _wake_acceptor(self) -> None:
        """Connect once, so accept() returns now and sees the stop flag instead
        of at its next 0.2 s poll: the sandbox host closes the server on its
        way out, on the path `docker run` waits on.  (shutdown() of a
        listening unix socket does not wake a thread polling it.)"""
        with contextlib.suppress(OSError), socket.socket(
                socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC) as s:
            s.settimeout(1.0)
            with reachable(self.path) as name:
                s.connect(name)
