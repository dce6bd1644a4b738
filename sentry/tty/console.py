"""The console bridge: a host terminal as the sandbox's terminal.

The application never touches the host terminal.  The Sentry makes an
internal pty pair (in the sandbox's devpts, so the program sees /dev/pts/N
and ttyname works); the replica is the process's stdio and controlling
terminal, and two Sentry threads copy bytes between the host terminal fd and
the internal master: what the user types goes through *our* line discipline
(so ^C becomes SIGINT for the sandbox's foreground job, not for pyvisor), and
what the program writes comes back out.  The host terminal is put in raw mode
for that (its own line discipline must not interpret anything) and restored
on close, on errors, and (``sigterm``) when SIGTERM ends the CLI.

Facts this relies on:

* A raw host tty delivers each keystroke as it comes (VMIN 1, no echo, no
  signals, no CR/NL translation, no output processing): the internal pty's
  termios does all of that, as a remote-login server's pty does.
* The window size is the host terminal's: copied at start and whenever it
  changes (polled every ``WINSIZE_POLL`` seconds: a SIGWINCH handler could
  only run on the CLI's main thread, which may be busy); a change sends
  SIGWINCH to the sandbox's foreground group.
* Every wait is bounded (``SLICE``) and checks the stop flag; closing drains
  what the program wrote last (bounded by ``drain_s``).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import select
import signal
import termios
import threading
import time
import tty
from types import FrameType
from typing import Any

from sentry.kernel.errors import SyscallError
from sentry.tty import termios as t
from sentry.tty.devpts import DevPtsFs, default_devpts
from sentry.tty.files import MasterFile, ReplicaFile
from sentry.vfs.file import O_RDWR

log = logging.getLogger("pyvisor")

SLICE = 0.1
WINSIZE_POLL = 0.25
CHUNK = 4096


def host_winsize(fd: int) -> t.WinSize | None:
    """The host terminal's window size, or None if ``fd`` is no terminal."""
    try:
        return t.WinSize.unpack(fcntl.ioctl(fd, termios.TIOCGWINSZ, bytes(t.WINSIZE_SIZE)))
    except OSError:
        return None


class RawMode:
    """Host terminal ``fd`` in raw mode until :meth:`restore` (idempotent)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._saved: list[Any] | None = None
        try:
            self._saved = termios.tcgetattr(fd)
            tty.setraw(fd, termios.TCSANOW)
        except termios.error as exc:
            log.debug("console: cannot set raw mode on fd %d: %s", fd, exc)
            self._saved = None

    def restore(self) -> None:
        saved, self._saved = self._saved, None
        if saved is not None:
            with contextlib.suppress(termios.error, OSError):
                termios.tcsetattr(self.fd, termios.TCSADRAIN, saved)


class ConsoleBridge:
    """Relays one host terminal fd and an internal pty of the sandbox."""

    def __init__(self, host_fd: int, *, kernel: Any = None, devpts: DevPtsFs | None = None,
                 uid: int = 0, raw: bool = True, owned: bool = False,
                 sigterm: bool = False) -> None:
        fs = devpts if devpts is not None else default_devpts()
        if fs is None:
            raise RuntimeError("no devpts mounted: cannot make the console terminal")
        self.host_fd = host_fd
        # The CLI's own terminal: typed on stdin, shown on stdout (stdin may be
        # open read-only); any other console fd (a pty replica) does both.
        self.out_fd = 1 if host_fd == 0 and os.isatty(1) else host_fd
        self.owned = owned  # close host_fd with the bridge (an OCI console replica)
        self.term = fs.new_terminal(uid)
        self.term.kernel = kernel
        self.term.locked = False
        self.master = MasterFile(self.term, O_RDWR, fs.ptmx)
        ws = host_winsize(host_fd)
        if ws is not None:
            self.term.winsize = ws
        self._raw = RawMode(host_fd) if raw else None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._old_sigterm: Any = None
        self._closed = False
        if sigterm and threading.current_thread() is threading.main_thread():
            self._old_sigterm = signal.signal(signal.SIGTERM, self._on_sigterm)

    # -- the sandbox side ------------------------------------------------------
    def replica(self) -> ReplicaFile:
        """A new open file of the replica (O_RDWR) for a process's stdio."""
        return ReplicaFile(self.term, O_RDWR, self.term.replica_inode)

    def install_stdio(self, fds: Any) -> None:
        """Fds 0, 1 and 2 of a new process: one open file of the replica."""
        f = self.replica()
        for fd in (0, 1, 2):
            fds.install_at(fd, f)

    def attach(self, tg: Any, kernel: Any) -> None:
        """Make the terminal ``tg``'s controlling terminal, ``tg``'s group the
        foreground one (``tg`` leads its own session: the init, an exec)."""
        with kernel.lock:
            with self.term.cond:
                self.term.kernel = kernel
                self.term.session = tg.sid
                self.term.fg_pgid = tg.pgid
            tg.tty = self.term

    # -- relaying ----------------------------------------------------------------
    def start(self) -> None:
        for target, name in ((self._host_to_pty, "console-in"), (self._pty_to_host, "console-out")):
            th = threading.Thread(target=target, name=name, daemon=True)
            th.start()
            self._threads.append(th)

    def _host_to_pty(self) -> None:
        poller = select.poll()
        poller.register(self.host_fd, select.POLLIN)
        next_ws = time.monotonic() + WINSIZE_POLL
        while not self._stop.is_set():
            try:
                ready = poller.poll(int(SLICE * 1000))
            except InterruptedError:
                continue
            now = time.monotonic()
            if now >= next_ws:
                next_ws = now + WINSIZE_POLL
                ws = host_winsize(self.host_fd)
                if ws is not None:
                    self.term.set_winsize(ws)
            if not ready:
                continue
            try:
                data = os.read(self.host_fd, CHUNK)
            except BlockingIOError:
                continue
            except OSError as exc:
                data = b""
                if exc.errno not in (errno.EIO, errno.EBADF):
                    log.debug("console: host read failed: %s", exc)
            if not data:  # the host terminal hung up: nothing more to type
                return
            self._feed(data)

    def _feed(self, data: bytes) -> None:
        """Type ``data`` at the master, waiting (bounded, stoppable) for room."""
        while data and not self._stop.is_set():
            try:
                n = self.term.master_write(data, nonblock=True)
            except SyscallError:
                n = 0
            data = data[n:]
            if data:
                with self.term.cond:
                    self.term.cond.wait(SLICE)

    def _pty_to_host(self) -> None:
        term = self.term
        while True:
            with term.cond:
                if not term.ld.output_ready():
                    term.cond.wait(SLICE)
                data = term.ld.take_output(CHUNK) if term.ld.output_ready() else b""
                if data:
                    term.cond.notify_all()
            if data:
                if not self._write_host(data):
                    return
            elif self._stop.is_set():
                return

    def _write_host(self, data: bytes) -> bool:
        while data:
            try:
                n = os.write(self.out_fd, data)
            except BlockingIOError:
                select.select([], [self.out_fd], [], SLICE)
                if self._stop.is_set():
                    return False
                continue
            except OSError as exc:
                log.debug("console: host write failed: %s", exc)
                return False
            data = data[n:]
        return True

    # -- ending ------------------------------------------------------------------
    def _on_sigterm(self, signo: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signo)

    def close(self, drain_s: float = 2.0) -> None:
        """Stop relaying (after what the program wrote last reaches the host,
        within ``drain_s``), restore the host terminal, drop the master."""
        if self._closed:
            return
        self._closed = True
        deadline = time.monotonic() + drain_s
        with self.term.cond:
            while self.term.ld.output_ready() and time.monotonic() < deadline:
                self.term.cond.wait(SLICE)
        self._stop.set()
        for th in self._threads:
            th.join(max(0.1, deadline - time.monotonic()))
        if self._raw is not None:
            self._raw.restore()
        if self._old_sigterm is not None:
            with contextlib.suppress(ValueError):
                signal.signal(signal.SIGTERM, self._old_sigterm)
        self.master.release()
        if self.owned:
            with contextlib.suppress(OSError):
                os.close(self.host_fd)
