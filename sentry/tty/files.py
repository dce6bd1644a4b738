"""Open files of a pty pair: the master (/dev/ptmx) and the replica (/dev/pts/N),
and the terminal ioctls both answer.

Which end answers what follows Linux (tty_io.c, tty_ioctl(4)): the settings
requests (TCGETS/TCSETS*, TIOCGWINSZ/TIOCSWINSZ, TCFLSH, TCXONC) act on the
pair's one terminal from either end; TIOCGPGRP and TIOCGSID on the replica
need it to be the caller's controlling terminal (ENOTTY otherwise), on the
master they just answer; TIOCSPGRP always needs the caller's controlling
terminal to be this pair; TIOCNOTTY works on the replica only; TIOCGPTN,
TIOCSPTLCK, TIOCGPTLCK and TIOCGPTPEER on the master only.  The settings
changes by a background process group are subject to SIGTTOU
(Terminal.check_change).
"""

from __future__ import annotations

import errno
import struct
from typing import TYPE_CHECKING, Any

from sentry.kernel.errors import SyscallError
from sentry.kernel.task import current_task
from sentry.tty import termios as t
from sentry.tty.terminal import SIGTTIN, SIGTTOU, Terminal, terminal_stat
from sentry.vfs.file import O_ACCMODE, O_NONBLOCK, FileDescription, Stat

if TYPE_CHECKING:
    from sentry.vfs.inode import Inode

TCGETS, TCSETS, TCSETSW, TCSETSF, TCGETA = 0x5401, 0x5402, 0x5403, 0x5404, 0x5405
TCSBRK, TCXONC, TCFLSH = 0x5409, 0x540A, 0x540B
TIOCEXCL, TIOCNXCL, TIOCSCTTY, TIOCGPGRP, TIOCSPGRP = 0x540C, 0x540D, 0x540E, 0x540F, 0x5410
TIOCOUTQ, TIOCSTI, TIOCGWINSZ, TIOCSWINSZ = 0x5411, 0x5412, 0x5413, 0x5414
FIONREAD, TIOCNOTTY, TIOCSETD, TIOCGETD, TCSBRKP = 0x541B, 0x5422, 0x5423, 0x5424, 0x5425
TIOCSBRK, TIOCCBRK, TIOCGSID = 0x5427, 0x5428, 0x5429
TIOCGPTN, TIOCSPTLCK, TIOCGPTLCK, TIOCGPTPEER = 0x80045430, 0x40045431, 0x80045439, 0x5441
TCOOFF, TCOON, TCIOFF, TCION = 0, 1, 2, 3
TCIFLUSH, TCOFLUSH, TCIOFLUSH = 0, 1, 2

_I32 = struct.Struct("<i")


def _get_int(task: Any, arg: int) -> int:
    return _I32.unpack(task.mm.copy_in(arg, 4))[0]


def _put_int(task: Any, arg: int, value: int) -> None:
    task.mm.copy_out(arg, _I32.pack(value))


class TtyFile(FileDescription):
    """What both ends share: the terminal, and the ioctls that act on it."""

    master = False

    def __init__(self, term: Terminal, flags: int, inode: Inode | None = None) -> None:
        super().__init__(flags & ~0o400)  # O_NOCTTY is an open-time flag only
        self.term = term
        self.inode = inode
        self.dentry: Any = None  # set by vfs.open
        self._released = False
        term.attach(self.master)

    def stat(self) -> Stat:
        if self.inode is not None:
            return self.inode.stat()
        return terminal_stat(self.term, self.master)

    def release(self) -> None:
        if not self._released:
            self._released = True
            self.term.detach(self.master)

    def _nonblock(self) -> bool:
        return bool(self.flags & O_NONBLOCK)

    def _is_ctty(self, task: Any) -> bool:
        return task is not None and task.tg.tty is self.term

    def ioctl(self, cmd: int, arg: int, task: object) -> int:
        term = self.term
        if cmd == TCGETS:
            with term.cond:
                data = term.ld.termios.pack()
            task.mm.copy_out(arg, data)  # type: ignore[attr-defined]
            return 0
        if cmd == TCGETA:
            with term.cond:
                data = term.ld.termios.pack_termio()
            task.mm.copy_out(arg, data)  # type: ignore[attr-defined]
            return 0
        if cmd in (TCSETS, TCSETSW, TCSETSF):
            new = t.Termios.unpack(task.mm.copy_in(arg, t.TERMIOS_SIZE))  # type: ignore
            self._check_change(task)
            with term.cond:
                if cmd == TCSETSF:
                    term.ld.flush_input()
                term.ld.set_termios(new)
                term.cond.notify_all()
            return 0
        if cmd == TIOCGWINSZ:
            task.mm.copy_out(arg, term.winsize.pack())  # type: ignore[attr-defined]
            return 0
        if cmd == TIOCSWINSZ:
            term.set_winsize(t.WinSize.unpack(task.mm.copy_in(arg, t.WINSIZE_SIZE)))  # type: ignore
            return 0
        if cmd == FIONREAD:
            with term.cond:
                n = len(term.ld.out) if self.master else term.ld.readable()
            _put_int(task, arg, n)
            return 0
        if cmd == TIOCOUTQ:
            with term.cond:
                n = 0 if self.master else len(term.ld.out)
            _put_int(task, arg, n)
            return 0
        if cmd == TCFLSH:
            return self._flush(arg, task)
        if cmd == TCXONC:
            return self._xonc(arg, task)
        if cmd in (TCSBRK, TCSBRKP, TIOCSBRK, TIOCCBRK, TIOCEXCL, TIOCNXCL):
            return 0  # tcdrain and breaks: nothing to wait for in memory
        if cmd == TIOCGETD:
            _put_int(task, arg, 0)  # N_TTY
            return 0
        if cmd == TIOCSETD:
            if _get_int(task, arg) != 0:
                raise SyscallError(errno.EINVAL)
            return 0
        if cmd == TIOCSTI:
            c = task.mm.copy_in(arg, 1)  # type: ignore[attr-defined]
            term.master_write(c, nonblock=True)
            return 0
        if cmd == TIOCGPGRP:
            return self._get_pgrp(task, arg)
        if cmd == TIOCSPGRP:
            return self._set_pgrp(task, arg)
        if cmd == TIOCGSID:
            if not self.master and not self._is_ctty(task):
                raise SyscallError(errno.ENOTTY)
            with term.cond:
                sid = term.session
            if sid is None:
                raise SyscallError(errno.ENOTTY)
            _put_int(task, arg, sid)
            return 0
        if cmd == TIOCSCTTY:
            if term.hung_up:
                raise SyscallError(errno.EIO)
            term.acquire(task, steal=arg == 1)
            return 0
        if cmd == TIOCNOTTY:
            return self._notty(task)
        return self.end_ioctl(cmd, arg, task)

    def end_ioctl(self, cmd: int, arg: int, task: Any) -> int:
        """Requests only one end answers."""
        raise SyscallError(errno.ENOTTY)

    def _check_change(self, task: Any) -> None:
        if not self.master:
            self.term.check_change(task, SIGTTOU)

    def _flush(self, arg: int, task: Any) -> int:
        if arg not in (TCIFLUSH, TCOFLUSH, TCIOFLUSH):
            raise SyscallError(errno.EINVAL)
        self._check_change(task)
        term = self.term
        # The master's input is what the replica wrote, and the other way round.
        flush_in = arg in (TCIFLUSH, TCIOFLUSH)
        flush_out = arg in (TCOFLUSH, TCIOFLUSH)
        if self.master:
            flush_in, flush_out = flush_out, flush_in
        with term.cond:
            if flush_in:
                term.ld.flush_input()
            if flush_out:
                term.ld.flush_output()
            term.cond.notify_all()
        return 0

    def _xonc(self, arg: int, task: Any) -> int:
        if arg not in (TCOOFF, TCOON, TCIOFF, TCION):
            raise SyscallError(errno.EINVAL)
        self._check_change(task)
        term = self.term
        with term.cond:
            if arg == TCOOFF:
                term.ld.stopped = True
            elif arg == TCOON:
                term.ld.stopped = False
            term.cond.notify_all()
        return 0

    def _get_pgrp(self, task: Any, arg: int) -> int:
        if not self.master and not self._is_ctty(task):
            raise SyscallError(errno.ENOTTY)
        with self.term.cond:
            pgid = self.term.fg_pgid
        # Linux answers 0 when no foreground group is set (the session is gone).
        _put_int(task, arg, pgid or 0)
        return 0

    def _set_pgrp(self, task: Any, arg: int) -> int:
        term = self.term
        if not self._is_ctty(task) or term.session != task.tg.sid:
            raise SyscallError(errno.ENOTTY)
        pgid = _get_int(task, arg)
        if pgid < 0:
            raise SyscallError(errno.EINVAL)
        self.term.check_change(task, SIGTTOU)
        kernel = task.kernel
        with kernel.lock:
            members = [g for g in kernel.thread_groups.values()
                       if g.pgid == pgid and not g.zombie]
            if not members:
                raise SyscallError(errno.ESRCH)
            if any(g.sid != task.tg.sid for g in members):
                raise SyscallError(errno.EPERM)
            with term.cond:
                term.fg_pgid = pgid
        return 0

    def _notty(self, task: Any) -> int:
        if self.master or not self._is_ctty(task):
            raise SyscallError(errno.ENOTTY)
        tg = task.tg
        if tg.sid == tg.tgid:
            self.term.release_session(task.kernel, tg.sid, leader_exit=False)
        else:
            with task.kernel.lock:
                tg.tty = None
        return 0


class MasterFile(TtyFile):
    """The master end: writes are typing, reads are what the terminal shows."""

    master = True

    def read(self, count: int) -> bytes:
        if not self.readable():
            raise SyscallError(errno.EBADF)
        if count == 0:
            return b""
        return self.term.master_read(count, self._nonblock())

    def write(self, data: bytes) -> int:
        if not self.writable():
            raise SyscallError(errno.EBADF)
        if not data:
            return 0
        return self.term.master_write(data, self._nonblock())

    def poll(self, events: int, timeout_s: float | None) -> int:
        return self.term.wait_poll(self.term.poll_master, events, timeout_s)

    def end_ioctl(self, cmd: int, arg: int, task: Any) -> int:
        term = self.term
        if cmd == TIOCGPTN:
            _put_int(task, arg, term.index)
            return 0
        if cmd == TIOCSPTLCK:
            with term.cond:
                term.locked = _get_int(task, arg) != 0
            return 0
        if cmd == TIOCGPTLCK:
            _put_int(task, arg, 1 if term.locked else 0)
            return 0
        if cmd == TIOCGPTPEER:
            if term.locked:
                raise SyscallError(errno.EIO)
            peer = ReplicaFile(term, arg & (O_ACCMODE | O_NONBLOCK | 0o400),
                               term.replica_inode)
            return task.fds.install(peer, cloexec=bool(arg & 0o2000000))
        raise SyscallError(errno.ENOTTY)

    def link_name(self) -> bytes:
        return b"/dev/ptmx"


class ReplicaFile(TtyFile):
    """The replica end: what the program on the terminal reads and writes."""

    def read(self, count: int) -> bytes:
        if not self.readable():
            raise SyscallError(errno.EBADF)
        if count == 0:
            return b""
        self.term.check_change(current_task(), SIGTTIN)
        return self.term.replica_read(count, self._nonblock())

    def write(self, data: bytes) -> int:
        if not self.writable():
            raise SyscallError(errno.EBADF)
        if not data:
            return 0
        with self.term.cond:
            tostop = bool(self.term.ld.termios.lflag & t.TOSTOP)
        if tostop:
            self.term.check_change(current_task(), SIGTTOU)
        return self.term.replica_write(data, self._nonblock())

    def poll(self, events: int, timeout_s: float | None) -> int:
        return self.term.wait_poll(self.term.poll_replica, events, timeout_s)

    def link_name(self) -> bytes:
        return b"/dev/pts/%d" % self.term.index


def open_replica(term: Terminal, flags: int, inode: Inode | None = None) -> ReplicaFile:
    """open(2) of /dev/pts/N or /dev/tty: locked or hung-up pairs refuse it
    (EIO); a session leader without a terminal may acquire this one."""
    if term.hung_up or term.locked:
        raise SyscallError(errno.EIO)
    f = ReplicaFile(term, flags, inode)
    term.maybe_acquire(current_task(), flags)
    return f
