"""The control plane: msgpack frames over a unix stream socket.

A frame is a 4-byte big-endian length followed by that many bytes of msgpack
that must decode to a map.  Requests carry ``op`` (start, state, kill, ps,
wait, exec, exec-wait, pause, resume, stats); every request gets exactly one
reply map, ``{"ok": True, ...}`` or ``{"ok": False, "error": "..."}``.  A
connection may carry several requests in turn (exec, then exec-wait).

File descriptors travel with a frame as SCM_RIGHTS on its first bytes (exec
passes the process's stdio).  The server hands a request's fds to the handler
as ``req["fds"]`` (a key a client cannot forge: the server drops any ``fds``
the client wrote); the handler takes the ones it keeps out of that list and
the server closes whatever is left, so no error path leaks a descriptor.

Why it is shaped this way:

- The socket lives in the container's state directory (0700, root-owned), and
  the server also checks SO_PEERCRED: only our own uid may drive a container.
- Frames are bounded (MAX_FRAME) and every read has a deadline, so a client
  that sends garbage, a huge length or nothing at all costs one thread for a
  bounded time and gets an error reply; it never harms the server or the
  container.  After a bad length the stream cannot be resynchronised, so that
  connection is closed after the reply; after a bad payload of a good length
  it stays usable.
- sun_path holds 108 bytes; a deep state root is reached through
  /proc/self/fd/<dirfd>/control.sock instead, which bind and connect resolve.
- Connections are served by short-lived threads, at most MAX_CLIENTS at once
  (``wait`` holds one until the container exits).
"""

from __future__ import annotations

import array
import contextlib
import logging
import os
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import msgpack

log = logging.getLogger("pyvisor")

MAX_FRAME = 1 << 20
MAX_FDS = 8  # per frame; more are closed by the kernel (MSG_CTRUNC) and refused
HEADER = struct.Struct(">I")
READ_TIMEOUT = 10.0  # for a request to arrive once a client connects
MAX_CLIENTS = 64
SUN_PATH_MAX = 107

Handler = Callable[[dict[str, Any]], dict[str, Any]]


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


def valid_signal(value: Any) -> int:
    """A signal number from a frame (1..64), or ValueError."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 64:
        raise ValueError(f"bad signal {value!r}")
    return value


def encode(msg: dict[str, Any]) -> bytes:
    payload = msgpack.packb(msg, use_bin_type=True)
    if len(payload) > MAX_FRAME:
        raise FrameError(f"frame of {len(payload)} bytes exceeds {MAX_FRAME}", fatal=False)
    return HEADER.pack(len(payload)) + payload


def decode(payload: bytes) -> dict[str, Any]:
    try:
        msg = msgpack.unpackb(payload, raw=False, strict_map_key=True)
    except Exception as exc:  # noqa: BLE001 - msgpack raises many unrelated types
        raise FrameError(f"malformed frame: {type(exc).__name__}", fatal=False) from None
    if not isinstance(msg, dict):
        raise FrameError("frame is not a map", fatal=False)
    return msg


def _recv(sock: socket.socket, n: int, fds: list[int] | None) -> bytes:
    """recv, or recvmsg collecting SCM_RIGHTS fds into ``fds`` (close-on-exec)."""
    if fds is None:
        return sock.recv(n)
    data, anc, flags, _ = sock.recvmsg(n, socket.CMSG_SPACE(MAX_FDS * 4),
                                       socket.MSG_CMSG_CLOEXEC)
    for level, kind, cdata in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            got = array.array("i")
            got.frombytes(cdata[: len(cdata) - len(cdata) % got.itemsize])
            fds.extend(got)
    if flags & socket.MSG_CTRUNC:
        raise FrameError(f"more than {MAX_FDS} file descriptors", fatal=True)
    return data


def _recv_exact(sock: socket.socket, n: int, deadline: float | None,
                fds: list[int] | None = None) -> bytes | None:
    """n bytes, or None on a clean EOF before the first byte."""
    buf = bytearray()
    while len(buf) < n:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("timed out reading a frame")
            sock.settimeout(left)
        else:
            sock.settimeout(None)
        chunk = _recv(sock, min(n - len(buf), 1 << 16), fds)
        if not chunk:
            if not buf:
                return None
            raise FrameError("connection closed inside a frame", fatal=True)
        buf += chunk
    return bytes(buf)


def read_frame(sock: socket.socket, timeout: float | None,
               fds: list[int] | None = None) -> dict[str, Any] | None:
    """One decoded frame, or None on EOF at a frame boundary.  With ``fds``,
    descriptors that came with the frame are appended to it (the caller owns
    them, even when this raises)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    head = _recv_exact(sock, HEADER.size, deadline, fds)
    if head is None:
        return None
    (length,) = HEADER.unpack(head)
    if length > MAX_FRAME:
        raise FrameError(f"frame length {length} exceeds {MAX_FRAME}", fatal=True)
    payload = _recv_exact(sock, length, deadline, fds)
    if payload is None:
        raise FrameError("connection closed inside a frame", fatal=True)
    return decode(payload)


@contextlib.contextmanager
def _reachable(path: str) -> Iterator[str]:
    """A name for ``path`` that fits in sun_path."""
    if len(os.fsencode(path)) <= SUN_PATH_MAX:
        yield path
        return
    fd = os.open(os.path.dirname(path), os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        yield f"/proc/self/fd/{fd}/{os.path.basename(path)}"
    finally:
        os.close(fd)


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
            with _reachable(path) as name:
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
            with _reachable(self.path) as name:
                s.connect(name)


class Client:
    """One connection to a container's socket, for requests in turn."""

    def __init__(self, path: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            self.sock.settimeout(5.0)
            with _reachable(path) as name:
                self.sock.connect(name)
        except (FileNotFoundError, ConnectionRefusedError):
            self.sock.close()
            raise ControlError("the sandbox is not running (no control socket)") from None
        except OSError as exc:
            self.sock.close()
            raise ControlError(f"control socket: {exc.strerror or exc}") from None

    def call(self, msg: dict[str, Any], timeout: float | None = 10.0,
             fds: Sequence[int] = ()) -> dict[str, Any]:
        """Send ``msg`` (with ``fds``) and return the reply map, ``ok`` checked.
        ``timeout`` None waits for as long as the server lives (its death is EOF)."""
        try:
            self.sock.settimeout(timeout)
            send_frame(self.sock, msg, fds)
            reply = read_frame(self.sock, timeout)
        except TimeoutError:
            raise ControlError(f"no reply to {msg.get('op')!r} within {timeout} s") from None
        except FrameError as exc:
            raise ControlError(f"bad reply: {exc}") from None
        except OSError as exc:
            raise ControlError(f"control socket: {exc.strerror or exc}") from None
        if reply is None:
            raise ControlError("the sandbox closed the connection (did it exit?)")
        if not reply.get("ok"):
            status = reply.get("status")
            raise ControlError(str(reply.get("error", "request failed")),
                               status if isinstance(status, int) else None)
        return reply

    def close(self) -> None:
        self.sock.close()


def request(path: str, msg: dict[str, Any], timeout: float | None = 10.0) -> dict[str, Any]:
    """Send one request and return the reply map (``ok`` already checked)."""
    client = Client(path)
    try:
        return client.call(msg, timeout)
    finally:
        client.close()


def send_frame(sock: socket.socket, msg: dict[str, Any], fds: Sequence[int] = ()) -> None:
    """Blocking write of one frame, ``fds`` riding on its first bytes (the host
    <-> Sentry channel uses this too)."""
    data = encode(msg)
    if fds:
        sent = sock.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                                      array.array("i", fds).tobytes())])
        data = data[sent:]
    if data:
        sock.sendall(data)


def take_fds(req: dict[str, Any]) -> list[int]:
    """The fds that came with a request, now the caller's to close (the server
    closes only those still in ``req["fds"]``)."""
    fds = req.get("fds")
    if not isinstance(fds, list):
        return []
    taken = list(fds)
    fds.clear()
    return taken


def close_fds(fds: Sequence[int]) -> None:
    """Close received descriptors nobody took (errors ignored: best effort)."""
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)
