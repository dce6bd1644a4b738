"""The CLI's side of an OCI terminal: a host pty whose master goes to the
caller's console socket, and whose replica the Sentry bridges to the
container's own pty (console.py).  Nothing here runs inside the Sentry.

Facts this follows (runc's --console-socket protocol, which containerd's shim
and conmon implement as the receiving side):

* The runtime connects to the unix socket (SOCK_STREAM) at the given path and
  sends one message: the data is the pty master's name ("/dev/ptmx", what
  runc's console.NewPty file is called) and an SCM_RIGHTS control message
  carries exactly one fd, the master.  Then it closes the connection.
* The receiver owns the master from then on (resizes it, copies bytes).  The
  runtime keeps only the replica; the container's process sees a terminal.
* runc refuses ``terminal: true`` for a detached container without a console
  socket, and a console socket without ``terminal: true``.
"""

from __future__ import annotations

import array
import contextlib
import os
import socket
import termios
from typing import Any

MASTER_NAME = b"/dev/ptmx"
CONNECT_TIMEOUT = 10.0


class ConsoleError(Exception):
    """The console socket could not take the terminal: a one-line reason."""


def send_fd(sock: socket.socket, fd: int, name: bytes = MASTER_NAME) -> None:
    """One sendmsg: ``name`` as the data, ``fd`` in SCM_RIGHTS (runc's utils.SendFd)."""
    sock.sendmsg([name], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [fd]))])


def _connect(path: str) -> socket.socket:
    last: OSError | None = None
    for kind in (socket.SOCK_STREAM, socket.SOCK_SEQPACKET):
        s = socket.socket(socket.AF_UNIX, kind | socket.SOCK_CLOEXEC)
        s.settimeout(CONNECT_TIMEOUT)
        try:
            s.connect(path)
            return s
        except OSError as exc:
            s.close()
            last = exc
            if exc.errno != 91:  # EPROTOTYPE: the listener is another socket type
                break
    assert last is not None
    raise ConsoleError(f"--console-socket {path}: {last.strerror or last}")


def open_console(socket_path: str) -> int:
    """Allocate a host pty, hand its master to ``socket_path``; returns the
    replica fd (the caller's, to pass on to the Sentry)."""
    master, replica = os.openpty()
    try:
        os.set_inheritable(replica, False)
        sock = _connect(socket_path)
        try:
            send_fd(sock, master)
        except OSError as exc:
            raise ConsoleError(f"--console-socket {socket_path}: {exc.strerror or exc}") \
                from None
        finally:
            sock.close()
    except BaseException:
        os.close(replica)
        raise
    finally:
        os.close(master)
    return replica


class SavedTerminal:
    """The CLI's own terminal settings, put back when the container ends even
    if the Sentry could not (killed): a context manager."""

    def __init__(self, fd: int = 0) -> None:
        self.fd = fd
        self.saved: list[Any] | None = None

    def __enter__(self) -> SavedTerminal:
        with contextlib.suppress(termios.error, OSError):
            self.saved = termios.tcgetattr(self.fd)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.saved is not None:
            with contextlib.suppress(termios.error, OSError):
                termios.tcsetattr(self.fd, termios.TCSADRAIN, self.saved)
