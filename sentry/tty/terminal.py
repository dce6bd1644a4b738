"""A pseudo-terminal pair: the shared :class:`Terminal` and its two kinds of
open file (master, replica), with reads that block as the kernel's waits do.

Facts (pty(7), tty_ioctl(4), Linux drivers/tty/pty.c and tty_jobctrl.c):

* Reading the master once every replica fd is closed (after one was open)
  fails with EIO when nothing is queued; poll reports POLLHUP.  Before the
  replica is first opened the master's read simply waits.
* Once the master is closed the pair is hung up: replica reads return 0,
  writes fail with EIO, poll reports everything; the /dev/pts entry goes.
* A replica becomes the controlling terminal of a session leader that has
  none when opened without O_NOCTTY and no session owns it; the master never
  does.  TIOCSCTTY does it explicitly; setsid() drops it; the session
  leader's exit hangs it up for the foreground group (SIGHUP, SIGCONT).
* Job control on the controlling terminal: a read from a process group other
  than the foreground one sends SIGTTIN to that group (EIO if the reader
  ignores or blocks SIGTTIN, or its group is orphaned); a write under TOSTOP,
  or a settings change (TCSETS*, TIOCSPGRP, TCFLSH, ...), sends SIGTTOU
  (allowed outright if SIGTTOU is ignored or blocked).  The call then
  restarts once the group is continued.
* TIOCSWINSZ with a new size sends SIGWINCH to the foreground group.

Lock order: ``Kernel.lock`` before ``Terminal.cond``; signals are sent only
after ``cond`` is released (the kernel's lock is never taken inside it).
Waits are slices of ``WAIT_SLICE`` ending with the caller's interruption check
(a signal: ERESTARTSYS; a kill), the rule every blocking file follows.
"""

from __future__ import annotations

import errno
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sentry.kernel.creds import CAP_SYS_ADMIN
from sentry.kernel.errors import SyscallError
from sentry.kernel.signals import SIG_IGN, SigInfo, bit
from sentry.tty import termios as t
from sentry.tty.ldisc import LineDiscipline
from sentry.vfs.file import (
    POLLERR,
    POLLHUP,
    POLLIN,
    POLLOUT,
    WAIT_SLICE,
    Stat,
    check_interrupt,
    interrupted,
)

if TYPE_CHECKING:
    from sentry.kernel.kernel import Kernel
    from sentry.kernel.threadgroup import ThreadGroup
    from sentry.vfs.inode import Inode

ERESTARTSYS = 512
SI_KERNEL = 0x80
SIGHUP, SIGCONT, SIGTTIN, SIGTTOU, SIGWINCH = 1, 18, 21, 22, 28


class Terminal:
    """The state both ends share: line discipline, window size, session."""

    def __init__(self, index: int, on_gone: Callable[[Terminal], None] | None = None) -> None:
        self.index = index
        self.cond = threading.Condition(threading.Lock())
        self.ld = LineDiscipline()
        self.winsize = t.WinSize()
        self.locked = True  # TIOCSPTLCK: a new pair is locked until unlockpt()
        self.masters = 0
        self.replicas = 0
        self.replica_seen = False
        self.hung_up = False  # the master is gone
        self.session: int | None = None  # sid whose controlling terminal this is
        self.fg_pgid: int | None = None
        self.kernel: Kernel | None = None  # whose process groups get the signals
        self.replica_inode: Inode | None = None  # /dev/pts/N (devpts)
        self.master_inode: Inode | None = None  # the ptmx node (fstat of the master)
        self._on_gone = on_gone

    # -- waiting -----------------------------------------------------------
    def wait(self, ready: Callable[[], bool], deadline: float | None = None) -> bool:
        """Wait (cond held) until ``ready()``; False at ``deadline``.  A pending
        signal or a kill ends the wait by raising (the task's check)."""
        while not ready():
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return False
            self.cond.wait(WAIT_SLICE if left is None else min(left, WAIT_SLICE))
            if not ready():
                self.cond.release()
                try:
                    check_interrupt()
                finally:
                    self.cond.acquire()
        return True

    # -- ends coming and going ----------------------------------------------
    def attach(self, master: bool) -> None:
        with self.cond:
            if master:
                self.masters += 1
            else:
                self.replicas += 1
                self.replica_seen = True
            self.cond.notify_all()

    def detach(self, master: bool) -> None:
        with self.cond:
            if master:
                self.masters -= 1
                gone = self.masters == 0
                if gone:
                    self.hung_up = True
            else:
                self.replicas -= 1
                gone = False
            self.cond.notify_all()
        if gone:
            self._hangup()

    def _hangup(self) -> None:
        """The master closed: the session loses its terminal, the foreground
        group hears SIGHUP (and SIGCONT, in case it was stopped)."""
        kernel, fg = self.kernel, self.fg_pgid
        if kernel is not None:
            with kernel.lock:
                for g in kernel.thread_groups.values():
                    if g.tty is self:
                        g.tty = None
            if fg is not None:
                signal_pgrp(kernel, fg, SIGHUP)
                signal_pgrp(kernel, fg, SIGCONT)
        with self.cond:
            self.session = self.fg_pgid = None
        if self._on_gone is not None:
            self._on_gone(self)

    # -- job control -----------------------------------------------------------
    def acquire(self, task: Any, *, steal: bool = False) -> None:
        """Become the controlling terminal of ``task``'s session (TIOCSCTTY rules)."""
        tg = task.tg
        kernel = task.kernel
        with kernel.lock:
            if tg.tty is self:
                return
            if tg.sid != tg.tgid or tg.tty is not None:
                raise SyscallError(errno.EPERM)
            with self.cond:
                if self.hung_up:
                    raise SyscallError(errno.EIO)
                if self.session is not None and not (steal and task.creds.capable(CAP_SYS_ADMIN)):
                    raise SyscallError(errno.EPERM)
                old = self.session
                self.session, self.fg_pgid, self.kernel = tg.sid, tg.pgid, kernel
            if old is not None:
                for g in kernel.thread_groups.values():
                    if g.sid == old and g.tty is self:
                        g.tty = None
            tg.tty = self

    def maybe_acquire(self, task: Any, flags: int) -> None:
        """open(2) without O_NOCTTY by a session leader with no terminal."""
        if task is None or flags & 0o400:
            return
        tg = task.tg
        if tg.sid != tg.tgid or tg.tty is not None:
            return
        with self.cond:
            if self.session is not None:
                return
        try:
            self.acquire(task)
        except SyscallError:
            pass

    def release_session(self, kernel: Kernel, sid: int, *, leader_exit: bool) -> None:
        """The session lets go of this terminal (TIOCNOTTY by the leader, or the
        leader's exit): the foreground group gets SIGHUP and SIGCONT."""
        with kernel.lock:
            with self.cond:
                if self.session != sid:
                    return
                fg = self.fg_pgid
                self.session = self.fg_pgid = None
            for g in kernel.thread_groups.values():
                if g.sid == sid and g.tty is self:
                    g.tty = None
            if fg is not None:
                signal_pgrp(kernel, fg, SIGHUP)
                signal_pgrp(kernel, fg, SIGCONT)

    def check_change(self, task: Any, signo: int) -> None:
        """tty_check_change: may ``task`` act on this terminal as its controlling
        one now?  A background group is sent ``signo`` and the call restarts."""
        if task is None:
            return
        tg = task.tg
        kernel = task.kernel
        with kernel.lock:
            if tg.tty is not self:
                return
            with self.cond:
                fg = self.fg_pgid
            if fg is None or tg.pgid == fg:
                return
            ignored = tg.action(signo).handler == SIG_IGN or task.sigmask & bit(signo)
            if ignored:
                if signo == SIGTTIN:
                    raise SyscallError(errno.EIO)
                return
            if _orphaned(kernel, tg.pgid, tg.sid):
                raise SyscallError(errno.EIO)
            signal_pgrp(kernel, tg.pgid, signo)
        raise SyscallError(ERESTARTSYS)

    def signal_fg(self, signo: int) -> None:
        """Send ``signo`` to the foreground process group, if there is one."""
        kernel, fg = self.kernel, self.fg_pgid
        if kernel is not None and fg is not None:
            signal_pgrp(kernel, fg, signo)

    def set_winsize(self, ws: t.WinSize) -> None:
        with self.cond:
            changed = ws != self.winsize
            self.winsize = ws
        if changed:
            self.signal_fg(SIGWINCH)

    # -- data ------------------------------------------------------------------
    def master_write(self, data: bytes, nonblock: bool) -> int:
        """Typing: feed the line discipline; signal characters act at once."""
        signals: list[int] = []
        written = 0
        try:
            with self.cond:
                while written < len(data):
                    n = self.ld.input(data[written:], signals)
                    written += n
                    if n:
                        self.cond.notify_all()
                    if written >= len(data):
                        break
                    if nonblock or signals:
                        break
                    if not self.wait(lambda: self.ld.input_room() > 0, None):
                        break
        except SyscallError:
            if not written:
                raise
        finally:
            for signo in signals:
                self.signal_fg(signo)
        if not written and nonblock and data:
            raise SyscallError(errno.EAGAIN)
        return written

    def master_read(self, count: int, nonblock: bool) -> bytes:
        with self.cond:
            def ready() -> bool:
                return self.ld.output_ready() or self._replica_gone()
            if not ready():
                if nonblock:
                    raise SyscallError(errno.EAGAIN)
                self.wait(ready)
            if self.ld.output_ready():
                data = self.ld.take_output(count)
                self.cond.notify_all()
                return data
            raise SyscallError(errno.EIO)

    def _replica_gone(self) -> bool:
        return self.replica_seen and self.replicas == 0

    def replica_read(self, count: int, nonblock: bool) -> bytes:
        with self.cond:
            ld = self.ld
            if not ld.canonical:
                return self._read_noncanon(count, nonblock)
            if not ld.input_ready():
                if self.hung_up:
                    return b""
                if nonblock:
                    raise SyscallError(errno.EAGAIN)
                self.wait(lambda: ld.input_ready() or self.hung_up)
                if not ld.input_ready():
                    return b""
            data = ld.take_input(count)
            self.cond.notify_all()
            return data

    def _read_noncanon(self, count: int, nonblock: bool) -> bytes:
        """VMIN/VTIME (termios(3)): MIN bytes or TIME tenths of a second."""
        ld = self.ld
        vmin, vtime = ld.termios.cc[t.VMIN], ld.termios.cc[t.VTIME]
        want = max(1, min(vmin, count))
        if not ld.raw:
            if self.hung_up or (vmin == 0 and vtime == 0):
                return b""
            if nonblock:
                raise SyscallError(errno.EAGAIN)
            deadline = time.monotonic() + vtime / 10 if vmin == 0 else None
            self.wait(lambda: bool(ld.raw) or self.hung_up, deadline)
        if vmin and len(ld.raw) < want and not nonblock:
            while len(ld.raw) < want and not self.hung_up and not ld.canonical:
                have = len(ld.raw)
                deadline = time.monotonic() + vtime / 10 if vtime else None
                got = self.wait(lambda have=have: len(ld.raw) > have or self.hung_up
                                or ld.canonical,
                                deadline)
                if not got:
                    break  # the inter-byte timer expired
        data = ld.take_input(count) if not ld.canonical else b""
        self.cond.notify_all()
        return data

    def replica_write(self, data: bytes, nonblock: bool) -> int:
        written = 0
        with self.cond:
            while written < len(data):
                if self.hung_up:
                    if written:
                        return written
                    raise SyscallError(errno.EIO)
                room = self.ld.output_room()
                if room <= 0:
                    if nonblock:
                        break
                    try:
                        self.wait(lambda: self.ld.output_room() > 0 or self.hung_up)
                    except SyscallError:
                        if written:
                            return written
                        raise
                    continue
                chunk = data[written:written + room]
                self.ld.output(chunk)
                written += len(chunk)
                self.cond.notify_all()
        if not written and data:
            raise SyscallError(errno.EAGAIN)
        return written

    def poll_master(self, events: int) -> int:
        with self.cond:
            r = 0
            if self.ld.output_ready():
                r |= POLLIN
            if self.ld.input_room() > 0:
                r |= POLLOUT
            if self._replica_gone():
                r |= POLLHUP
            return r & (events | POLLHUP | POLLERR)

    def poll_replica(self, events: int) -> int:
        with self.cond:
            if self.hung_up:
                return (POLLIN | POLLOUT | POLLHUP | POLLERR) & (events | POLLHUP | POLLERR)
            r = 0
            if self.ld.input_ready():
                r |= POLLIN
            if self.ld.output_room() > 0:
                r |= POLLOUT
            return r & events

    def wait_poll(self, check: Callable[[int], int], events: int,
                  timeout_s: float | None) -> int:
        """FileDescription.poll: ``check(events)`` now, or within ``timeout_s``."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            got = check(events)
            if got or timeout_s == 0:
                return got
            left = WAIT_SLICE if deadline is None else deadline - time.monotonic()
            if left <= 0 or interrupted():
                return 0
            with self.cond:
                self.cond.wait(min(left, WAIT_SLICE))


def signal_pgrp(kernel: Kernel, pgid: int, signo: int) -> None:
    """Send ``signo`` from the kernel to every process of group ``pgid``."""
    with kernel.lock:
        groups = [g for g in kernel.thread_groups.values() if g.pgid == pgid and not g.zombie]
        for g in groups:
            kernel.send_group(g, SigInfo(signo, code=SI_KERNEL))


def _orphaned(kernel: Kernel, pgid: int, sid: int) -> bool:
    """POSIX: no member has a parent in another group of the same session."""
    for g in kernel.thread_groups.values():
        if g.pgid != pgid or g.zombie:
            continue
        p: ThreadGroup | None = g.parent
        if p is not None and p.pgid != pgid and p.sid == sid:
            return False
    return True


def terminal_stat(term: Terminal, master: bool) -> Stat:
    inode = term.master_inode if master else term.replica_inode
    if inode is not None:
        return inode.stat()
    return Stat(mode=0o20620, rdev=(136 << 8) | term.index)

