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
  (``wait`` holds one until the container exits): control_server.py.  This
  module is the codec and the client, which every runtime call imports, so
  it imports neither threading nor logging.
"""

from __future__ import annotations

import array
import contextlib
import os
import socket
import struct
import time
from collections.abc import Callable, Iterator, Sequence

import msgpack

from sentry.oci.control_errors import ControlError, FrameError

TYPE_CHECKING = False  # typing unimported at run time: see sentry/oci/shimcalls.py
if TYPE_CHECKING:
    from typing import Any

    Handler = Callable[[dict[str, Any]], dict[str, Any]]

__all__ = ["ControlError", "FrameError"]  # re-exported: callers name them control.X

MAX_FRAME = 1 << 20
MAX_FDS = 8  # per frame; more are closed by the kernel (MSG_CTRUNC) and refused
HEADER = struct.Struct(">I")
READ_TIMEOUT = 10.0  # for a request to arrive once a client connects
MAX_CLIENTS = 64
SUN_PATH_MAX = 107



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
def reachable(path: str) -> Iterator[str]:
    """A name for ``path`` that fits in sun_path."""
    if len(os.fsencode(path)) <= SUN_PATH_MAX:
        yield path
        return
    fd = os.open(os.path.dirname(path), os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        yield f"/proc/self/fd/{fd}/{os.path.basename(path)}"
    finally:
        os.close(fd)


class Client:
    """One connection to a container's socket, for requests in turn."""

    def __init__(self, path: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            self.sock.settimeout(5.0)
            with reachable(path) as name:
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
