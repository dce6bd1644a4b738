"""Is the process on the other side still alive?

A POSIX semaphore knows nothing about who will post it: if the peer dies, a
waiter sleeps until its timeout. So every wait is sliced and, between slices,
the waiter asks a PeerWatch. The watch uses a pidfd (Linux 5.3+): it is immune
to pid reuse and becomes readable as soon as the process exits, even while it
is an unreaped zombie. ``os.kill(pid, 0)`` is only the fallback: it succeeds on
a zombie (our own unreaped child looks alive forever) and on a reused pid, so
the fallback also reads the state letter in /proc/PID/stat.
"""

from __future__ import annotations

import os
import select
import threading


class PeerWatch:
    """Liveness of one process, checked without blocking."""

    def __init__(self, pid: int) -> None:
        if pid <= 0:
            raise ValueError(f"bad peer pid {pid}")
        self.pid = pid
        self._dead = False
        self._fd: int | None = None
        self._poll: select.poll | None = None
        # A poll object refuses a second poll() while one runs in another
        # thread (RuntimeError: concurrent poll() invocation); the Sentry's
        # threads ask at once (two execs reading cached pages of one file).
        self._lock = threading.Lock()
        try:
            self._fd = os.pidfd_open(pid)
        except ProcessLookupError:
            self._dead = True
        except (OSError, AttributeError):
            self._fd = None  # old kernel or seccomp-denied: fall back to kill(0)
        if self._fd is not None:
            self._poll = select.poll()
            self._poll.register(self._fd, select.POLLIN)

    def alive(self) -> bool:
        """False once the process has exited (sticky); one cheap syscall."""
        if self._dead:
            return False
        if self._poll is not None:
            with self._lock:
                if self._poll.poll(0):
                    self._dead = True
        else:
            self._dead = not _alive_by_kill(self.pid)
        return not self._dead

    def close(self) -> None:
        """Release the pidfd; idempotent."""
        fd, self._fd, self._poll = self._fd, None, None
        if fd is not None:
            os.close(fd)
        self._dead = True


def _alive_by_kill(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return True  # no /proc (e.g. confined): trust kill()
    state = stat[stat.rfind(b")") + 2 : stat.rfind(b")") + 3]
    return state not in (b"Z", b"X")
