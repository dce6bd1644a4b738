"""The shim's side of an OCI --console-socket, shared by the terminal tests
(test_tty.py) and the pod members' (test_pods.py)."""

from __future__ import annotations

import array
import os
import select
import socket
import threading
import time

TIMEOUT = 30.0


class ConsoleListener:
    """The shim's side of --console-socket: accept once, take the fd."""

    def __init__(self, path: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(1)
        self.sock.settimeout(TIMEOUT)
        self.fd: int | None = None
        self.name = b""
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        try:
            conn, _ = self.sock.accept()
            with conn:
                conn.settimeout(TIMEOUT)
                fds = array.array("i")
                msg, anc, _, _ = conn.recvmsg(1024, socket.CMSG_SPACE(4 * fds.itemsize))
                for level, kind, data in anc:
                    if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                        fds.frombytes(data[:len(data) - len(data) % fds.itemsize])
                self.name = msg
                self.fd = fds[0] if len(fds) == 1 else None
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error = exc

    def master(self) -> int:
        self.thread.join(TIMEOUT)
        assert self.error is None, self.error
        assert self.fd is not None, "no fd came over the console socket"
        return self.fd

    def close(self) -> None:
        self.sock.close()
        if self.fd is not None:
            os.close(self.fd)


def read_until(fd: int, needle: bytes, timeout: float = TIMEOUT) -> bytes:
    buf = b""
    deadline = time.monotonic() + timeout
    while needle not in buf:
        left = deadline - time.monotonic()
        assert left > 0, f"no {needle!r} within {timeout} s; got {buf!r}"
        r, _, _ = select.select([fd], [], [], min(left, 0.5))
        if r:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                chunk = b""
            assert chunk, f"EOF before {needle!r}; got {buf!r}"
            buf += chunk
    return buf
