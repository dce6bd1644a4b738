"""Starting a Gofer: the child process, its sockets, and the client's first call.

Why apart from gofer/client.py: the client is the 9P session (what every
file operation of the Sentry runs through); this is process plumbing used
once per sandbox at boot (and by tests): the channel and the donation
socket made before the child, the child pre-forked (gofer/prefork.py) or
exec'd as ``python3 -m gofer.server``, PR_SET_PDEATHSIG so it dies with
the Sentry, and a pidfd opened while it is surely unreaped, since the
confined Sentry signals no host process by pid.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Sequence

from gofer import donate, prefork
from gofer.client import GoferClient
from shm import faults
from shm.channel import ClientChannel

__all__ = ["GoferProcess", "PendingGofer", "spawn_gofer", "start_gofer"]


_PROJECT = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
_PR_SET_PDEATHSIG = 1
_Child = subprocess.Popen[bytes] | prefork.ForkedProcess
"""A Gofer child: exec'd (Popen) or pre-forked (gofer/prefork.py)."""


def _die_with_parent() -> None:  # runs in the child between fork and exec
    import ctypes
    import signal

    ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


class GoferProcess:
    """Handle on a running Gofer child."""

    def __init__(self, proc: _Child) -> None:
        self._proc = proc
        self.pid = proc.pid
        # A pidfd opened at boot, while the child is surely unreaped: the
        # confined Sentry signals no host process by pid (confine_filters.py).
        self._pidfd = os.pidfd_open(proc.pid)

    def kill(self) -> None:
        """SIGKILL the Gofer (no-op once it has been reaped)."""
        if self._proc.returncode is None and self._pidfd >= 0:
            try:
                signal.pidfd_send_signal(self._pidfd, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def wait(self, timeout: float | None = None) -> int:
        """Reap the Gofer; returns its exit status (-N for signal N)."""
        code = self._proc.wait(timeout)
        if self._pidfd >= 0:
            os.close(self._pidfd)
            self._pidfd = -1
        return code

    def poll(self) -> int | None:
        return self._proc.poll()


class PendingGofer:
    """A Gofer process that is starting: the Sentry does its own boot work while
    the Gofer's Python starts, then :meth:`connect` waits for it."""

    def __init__(self, channel: ClientChannel, proc: _Child,
                 receiver: donate.Receiver | None = None,
                 late: socket.socket | None = None) -> None:
        self.channel = channel
        self.proc = proc
        self.receiver = receiver
        self.late = late  # the Sentry's end of gofer/late.py's socket

    def connect(self) -> tuple[GoferClient, GoferProcess]:
        """Version and attach; on failure both the channel and the process go."""
        try:
            client = GoferClient(self.channel, receiver=self.receiver)
            client.late = self.late
            client.connect()
            faults.at("sentry-gofer-connected")
            # The Gofer has mapped the segment and opened the semaphores (it
            # answered), so the names can go now: nothing is left in /dev/shm to
            # leak, whichever side is later SIGKILLed (the confined Gofer cannot
            # see /dev/shm at all).
            self.channel.unlink()
            return client, GoferProcess(self.proc)
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        self.proc.kill()
        self.proc.wait()
        self.channel.close()
        if self.late is not None:
            self.late.close()
        if self.receiver is not None:
            self.receiver.close()


def spawn_gofer(
    root: str, *, readonly: bool, confine: bool = True, msize: int | None = None,
    stderr: int | None = None, attach: Sequence[tuple[str, str, bool]] = (),
    late: bool = False,
) -> PendingGofer:
    """Start a Gofer serving ``root``; :meth:`PendingGofer.connect` finishes.

    ``late``: also give it a socket for trees that come after it confined
    itself (a pod's later containers, gofer/late.py); the client holds the
    other end as ``client.late``.

    ``attach``: more trees for the same Gofer, as (aname, host path, writable);
    the Sentry reaches each with :meth:`GoferClient.attach` (one Gofer serves
    every bind mount: one process start, one confinement).

    The Gofer gets PR_SET_PDEATHSIG=SIGKILL, so it dies with the thread that
    started it (call this from a thread that lives as long as the Sentry, e.g.
    the main thread). If this process called :func:`gofer.prefork.prefork`,
    the Gofer forked then gets the same argv instead of a new interpreter
    being exec'd (gofer/prefork.py: why that fork is safe and ~0.2 s faster).
    """
    channel = ClientChannel(**({} if msize is None else {"msize": msize}))
    faults.at("sentry-channel")
    mine, theirs = donate.socketpair()
    late_mine = late_theirs = None
    try:
        if late:
            late_mine, late_theirs = socket.socketpair(
                socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
        argv = ["--root", root, "--channel", channel.name]
        argv += ["--donate-fd", str(theirs.fileno())]
        argv += ["--sentry-pid", str(os.getpid())]
        argv += ["--readonly"] if readonly else []
        for name, path, writable in attach:
            argv += ["--attach", f"{name}:{'rw' if writable else 'ro'}:{path}"]
        argv += [] if confine else ["--no-confine"]
        argv += os.environ.get("PYVISOR_GOFER_ARGS", "").split()  # debugging aid
        if late_theirs is not None:
            argv += ["--late-fd", str(late_theirs.fileno())]  # the forked child renumbers it
        forked = prefork.take()
        fds = [theirs.fileno()] + ([] if late_theirs is None else [late_theirs.fileno()])
        proc = None if forked is None else forked.start(
            argv, stderr, theirs.fileno(), None if late_theirs is None else late_theirs.fileno())
        if proc is None:
            proc = _exec_gofer(argv, stderr, tuple(fds))
    except BaseException:
        channel.close()
        mine.close()
        if late_mine is not None:
            late_mine.close()
        raise
    finally:
        theirs.close()
        if late_theirs is not None:
            late_theirs.close()
    channel.set_peer(proc.pid)
    faults.at("sentry-gofer-spawned")
    return PendingGofer(channel, proc, donate.Receiver(mine), late_mine)


def _exec_gofer(argv: list[str], stderr: int | None,
                pass_fds: tuple[int, ...] = ()) -> subprocess.Popen[bytes]:
    """The Gofer as a fresh interpreter (when no pre-forked one is waiting)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [_PROJECT, env.get("PYTHONPATH")]))
    return subprocess.Popen(
        [sys.executable, "-m", "gofer.server", *argv],
        close_fds=True,
        pass_fds=pass_fds,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL if stderr is None else stderr,
        env=env,
        cwd="/",
        preexec_fn=_die_with_parent,  # noqa: PLW1509  (single prctl, no locks taken)
    )


def start_gofer(
    root: str, *, readonly: bool, confine: bool = True, msize: int | None = None,
    stderr: int | None = None, attach: Sequence[tuple[str, str, bool]] = (),
) -> tuple[GoferClient, GoferProcess]:
    """Start a Gofer serving ``root`` and connect to it; returns (client, process).

    On any failure both the channel and the process are cleaned up before the
    error is re-raised. The root fid is ``client.root``.
    """
    return spawn_gofer(root, readonly=readonly, confine=confine, msize=msize,
                       stderr=stderr, attach=attach).connect()
