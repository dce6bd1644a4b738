"""A Gofer forked early, before the Sentry boots, that waits for its command line.

Why: exec'ing ``python -m gofer.server`` starts a fresh interpreter (site, the
codec, the channel, pyseccomp) for every sandbox, ~150-250 ms on the project's
2-vCPU machines, and the Sentry waits for it before it can load the program.
Instead the process that will become the Sentry calls :func:`prefork` first
thing, while it is still small; the child imports what the Gofer needs while
the parent imports the kernel, and :func:`gofer.spawn.spawn_gofer` later sends
it the very argv it would have exec'd (:meth:`Prefork.start`). The child then
runs ``gofer.server.main(argv)``: the same code as the exec'd Gofer, so it
opens the channel, opens the root and confines itself (mount namespace,
capabilities, no_new_privs, seccomp: gofer/confine.py) before it serves a
single request, exactly as before.

Why the fork point is safe (the Gofer's trust boundary stays what it was):

* Exactly one thread: :func:`prefork` refuses (and spawn_gofer execs as
  before) unless ``threading.active_count() == 1``. The callers (``runsc.py
  do`` and the OCI Sentry, sentry/oci/host.py) call it before any thread
  exists, so no lock can be held by a thread that is missing in the child.
* No application memory: it runs before the Sentry imports the kernel, creates
  the memory file (sentry/mm/memfile.py), reserves the stub region or starts a
  stub, so there is nothing of the application to inherit, and the child is a
  separate address space from then on (a later mapping in the Sentry is never
  seen by it).
* No inherited file descriptors but the request socket: the child points 0-2
  at /dev/null and closes every other fd (close_range) before anything else;
  the request brings the one fd it is given (its stderr: the debug log, or
  nothing). The shm channel is created after the fork and opened by name, as
  the exec'd Gofer does.
* Dies with its parent: PR_SET_PDEATHSIG, then a check that the parent is
  still the one that forked it (closing the race), as spawn_gofer's exec
  path does; the signal is SIGTERM, whose handler first removes the
  channel names a dead parent left (gofer/lifeline.py); an EOF on the
  request socket (the parent exited or never used it) ends it too, so every
  wait has a peer-death check.
* Never returns into the parent's code: the child ends with ``os._exit``
  (no atexit handlers, no finalizers of the parent's objects, e.g. the
  channel names that only their creator may unlink), and it never frees an
  object of the parent's (``gc.freeze``, references kept), since a file
  object's finalizer would close an fd number the Gofer may have reused.
* What it does inherit is the parent's Python heap at fork time: the parsed
  command line and environment, which the Gofer (root on the host until it
  confines itself) could read anyway.

Facts this relies on:

* ``/proc/PID/cmdline`` of a forked child is its parent's; tests and operators
  find the Gofer by ``gofer.server`` and ``--sentry-pid PID`` on it. Moving
  the argument area (``prctl(PR_SET_MM, PR_SET_MM_ARG_START)``) needs
  CAP_SYS_RESOURCE, which runsc is not always given (a container's root, as
  on this project's CI machines), so the child overwrites the area in place,
  as setproctitle does: ``gofer.server --sentry-pid N --root ...``, cut to
  the parent's command line's length (the interpreter copied argv at start,
  nothing reads that memory again). ``comm`` becomes "gofer.server".
* SOCK_SEQPACKET keeps the request one message, and SCM_RIGHTS carries the fd.

`ForkedProcess`, `forget_parent` and `set_cmdline` are also what runsc.py uses
to fork the sandbox host from `create` instead of exec'ing a new interpreter
(sentry/oci/shimcalls.py spawn_host): the same rules for a child of a Python process.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import importlib
import json
import os
import select
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Collection, Sequence

__all__ = ["ForkedProcess", "Prefork", "forget_parent", "prefork", "set_cmdline", "take"]

_PR_SET_NAME = 15
_MAX_REQUEST = 1 << 16
_MAX_FD = 1 << 20  # above any RLIMIT_NOFILE we meet; closerange uses close_range(2)

_pending: Prefork | None = None
_parent_objects: list[object] = []  # the child's references to objects it must never free


class ForkedProcess:
    """The subset of ``subprocess.Popen`` a Gofer handle uses, for a child this
    process forked itself: ``pid``, ``returncode``, ``poll``, ``wait``, ``kill``."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self._lock = threading.Lock()  # one waitpid at a time (poll vs wait)
        # Opened now, while the pid surely names this unreaped child: the
        # confined Sentry may neither signal by pid nor open a pidfd later
        # (sentry/confine_filters.py); kill and wait use this one.
        self.pidfd = os.pidfd_open(pid)

    def _reap(self, flags: int) -> int | None:
        with self._lock:
            if self.returncode is not None:
                return self.returncode
            try:
                pid, status = os.waitpid(self.pid, flags)
            except ChildProcessError:  # reaped elsewhere: as Popen, call it 0
                self.returncode = 0
                return 0
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
            return self.returncode

    def close(self) -> None:
        """Let go of the pidfd (once reaped: nothing left to signal or wait for)."""
        with self._lock:
            if self.pidfd >= 0:
                os.close(self.pidfd)
                self.pidfd = -1

    def poll(self) -> int | None:
        return self._reap(os.WNOHANG)

    def wait(self, timeout: float | None = None) -> int:
        """Reap; -N when signal N killed it. TimeoutExpired as Popen.wait."""
        if timeout is None:
            code = self._reap(0)
            assert code is not None
            return code
        code = self.poll()
        if code is not None:
            return code
        if self.pidfd >= 0:
            select.select([self.pidfd], [], [], timeout)  # readable once it exited
        code = self.poll()
        if code is None:
            raise subprocess.TimeoutExpired(["gofer.server"], timeout)
        return code

    def kill(self) -> None:
        with self._lock:
            if self.returncode is None and self.pidfd >= 0:
                with contextlib.suppress(ProcessLookupError):
                    signal.pidfd_send_signal(self.pidfd, signal.SIGKILL)


class Prefork:
    """A forked Gofer waiting for its argv; owned by the process that forked it."""

    def __init__(self, owner: int, pid: int, sock: socket.socket) -> None:
        self.owner = owner
        self.proc = ForkedProcess(pid)
        self.sock = sock

    def start(self, argv: Sequence[str], stderr: int | None,
              donate: int | None = None,
              late: int | None = None) -> ForkedProcess | None:
        """Hand the child the Gofer's arguments (``gofer.server.main``'s argv),
        its stderr, its end of the donation socket (gofer/donate.py; argv then
        has ``--donate-fd`` with any number: the child puts its own) and the
        socket later trees come on (``late``, sent last: the child puts its
        own number for it after ``--late-fd``); None if it is gone (the caller
        then execs a Gofer)."""
        try:
            data = json.dumps(list(argv)).encode()
            fds = ([] if stderr is None else [stderr]) + ([] if donate is None else [donate])
            fds += [] if late is None else [late]
            socket.send_fds(self.sock, [data], fds)
        except OSError:
            self.cancel()
            return None
        finally:
            self.sock.close()
        return self.proc

    def cancel(self) -> None:
        """Not needed after all: the child sees EOF and exits; reap it."""
        self.sock.close()
        self.proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5.0)


# What the Gofer imports before it confines itself (gofer.server.main reports
# a module that is missing), in the order it needs them.
GOFER_MODULES = ("gofer.seccomp_loader", "shm.channel", "gofer.confine", "gofer.server")


def import_shared() -> None:
    """Import the Gofer's modules in the process about to call :func:`prefork`
    (the Sentry needs the codec, the channel and seccomp too): the forked
    Gofer then shares those pages with it, and under a container memory
    limit they are charged once, not twice.  Also what a forked Gofer would
    load (libseccomp), gc-frozen so neither process's GC copies them."""
    for module in GOFER_MODULES:
        with contextlib.suppress(Exception):
            importlib.import_module(module)
    with contextlib.suppress(Exception):
        importlib.import_module("gofer.seccomp_loader").pyseccomp()
    gc.freeze()


def prefork() -> bool:
    """Fork the next Gofer now (see the module docstring for when that is
    safe); False, and nothing done, when the process has other threads."""
    global _pending
    me = os.getpid()
    if _pending is not None and _pending.owner == me:
        return True
    if threading.active_count() != 1:
        return False
    mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            code = _child(theirs.detach(), me)
        finally:
            os._exit(code)
    theirs.close()
    _pending = Prefork(me, pid, mine)
    return True


def take() -> Prefork | None:
    """The forked Gofer, once, if this process forked one (a child of this
    process, e.g. the Sentry forked by a test, does not own its parent's)."""
    global _pending
    p, _pending = _pending, None
    if p is None or p.owner != os.getpid():
        return None
    return p


# -- the child ------------------------------------------------------------------


def _child(sock_fd: int, parent: int) -> int:
    """Become the Gofer: die with the parent, drop every fd, import, wait for
    the argv, run gofer.server.main. Returns the exit status."""
    from gofer import lifeline
    from shm import faults

    lifeline.die_with(parent)  # and removes the names of a channel it made
    faults.at("gofer-forked")
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    keep = os.dup2(sock_fd, 3) if sock_fd != 3 else 3
    os.set_inheritable(keep, False)
    forget_parent(keep=(keep,))
    os.chdir("/")
    # What the exec'd Gofer imports before it confines itself, loaded while the
    # parent boots; main() reports a module that is missing.
    for module in GOFER_MODULES:
        with contextlib.suppress(Exception):
            importlib.import_module(module)
    with contextlib.suppress(Exception):
        importlib.import_module("gofer.seccomp_loader").pyseccomp()
    sock = socket.socket(fileno=keep)
    try:
        # stderr, the donation socket, a pod's late-tree socket
        data, fds, _flags, _addr = socket.recv_fds(sock, _MAX_REQUEST, 3)
    except OSError:
        return 1
    finally:
        sock.close()
    if not data:
        # The parent went away (its pdeath SIGTERM is on its way, and the
        # handler removes any channel names it left: gofer/lifeline.py; its
        # fds close before the signal is sent) or cancelled (SIGKILL follows).
        time.sleep(5.0)
        return 0
    try:
        argv = json.loads(data)
        if not isinstance(argv, list) or not all(isinstance(a, str) for a in argv):
            return 1
    except ValueError:
        return 1
    if "--late-fd" in argv and fds:  # the last descriptor: gofer/late.py's socket
        late = fds.pop()
        argv[argv.index("--late-fd") + 1 : argv.index("--late-fd") + 2] = [str(late)]
    if "--donate-fd" in argv and fds:  # the donation socket came before it
        i = argv.index("--donate-fd")
        donate = fds.pop()
        os.set_inheritable(donate, False)
        argv[i + 1:i + 2] = [str(donate)]
    for fd in fds:
        os.dup2(fd, 2)
        os.close(fd)
    faults.at("gofer-argv")
    set_cmdline(["gofer.server", *_sentry_pid_first(argv)], comm="gofer.server")
    from gofer import server

    return server.main(argv)


def _sentry_pid_first(argv: list[str]) -> list[str]:
    """``--sentry-pid N`` first: it must survive the truncation in set_cmdline."""
    try:
        i = argv.index("--sentry-pid")
    except ValueError:
        return argv
    return [*argv[i : i + 2], *argv[:i], *argv[i + 2 :]]


def forget_parent(keep: Collection[int]) -> None:
    """In a child forked from a Python process, before it does its own work:
    close every fd but 0-2 and ``keep``, and let go of the parent's logging.

    The parent's objects are never collected in the child (``gc.freeze``, and
    the replaced logging handlers stay referenced): a file object's finalizer
    would close its fd number, which by then may be one of the child's own
    files; and the cyclic GC does not walk, and so copy, the shared pages.
    The logging state left is a fresh interpreter's: no handlers, so the
    child's own set-up (gofer.server.main, runsc.py's) configures it.
    """
    import logging

    gc.freeze()
    low = 3
    for fd in sorted(k for k in keep if k >= low):
        os.closerange(low, fd)  # close_range(2)
        low = fd + 1
    os.closerange(low, _MAX_FD)
    for name in ("", "pyvisor"):
        lg = logging.getLogger(name)
        _parent_objects.append(lg.handlers)
        lg.handlers = []
        lg.propagate = True
        lg.setLevel(logging.WARNING if name == "" else logging.NOTSET)


def set_cmdline(argv: list[str], comm: str | None = None) -> None:
    """Best effort: make ``ps`` and /proc/self/cmdline name what a forked child
    became (it still shows its parent's command line): overwrite the argument
    area in place, as setproctitle does, cut to its length, so put what
    identifies the process first. ``comm``: also the 15-byte thread name."""
    libc = ctypes.CDLL(None)
    if comm is not None:
        libc.prctl(_PR_SET_NAME, os.fsencode(comm)[:15], 0, 0, 0)
    try:
        with open("/proc/self/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        start, end = int(fields[45]), int(fields[46])  # arg_start, arg_end (fields 48, 49)
    except (OSError, IndexError, ValueError):
        return
    if not 0 < start < end:
        return
    raw = b"\0".join(os.fsencode(a) for a in argv)[: end - start - 1]
    ctypes.memmove(start, raw.ljust(end - start, b"\0"), end - start)
