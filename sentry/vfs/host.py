"""Host file descriptors imported at start-up: the CLI's stdin/stdout/stderr.

The Sentry owns these descriptors (they were open before it confined itself);
the application reaches them only through this file description, which
performs the Sentry's own reads, writes and terminal ioctls on them, as gVisor
does for a container's host stdio and TTY.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import select
import stat as _stat
import termios

from sentry.kernel.errors import SyscallError
from sentry.vfs.file import (
    O_NONBLOCK,
    POLLERR,
    POLLHUP,
    POLLIN,
    POLLNVAL,
    WAIT_SLICE,
    FileDescription,
    Stat,
    check_interrupt,
    stat_from_host,
)

TCGETS = 0x5401
TCSETS = 0x5402
TCSETSW = 0x5403
TCSETSF = 0x5404
TIOCGPGRP = 0x540F
TIOCSPGRP = 0x5410
TIOCGWINSZ = 0x5413
TIOCSWINSZ = 0x5414
FIONREAD = 0x541B
FIONBIO = 0x5421
KERNEL_TERMIOS_SIZE = 36
WINSIZE_SIZE = 8


class HostFile(FileDescription):
    """One of the Sentry's own host fds, offered to the application."""

    def __init__(self, host_fd: int, flags: int, *, owned: bool = False) -> None:
        super().__init__(flags)
        self.host_fd = host_fd
        # owned: the fd came for this description alone (an OCI exec's stdio,
        # passed over the control socket) and is closed with it.
        self.owned = owned
        mode = os.fstat(host_fd).st_mode
        self.is_tty = _stat.S_ISCHR(mode) and os.isatty(host_fd)
        self.seekable = _stat.S_ISREG(mode)

    def _check_errno(self, exc: OSError) -> SyscallError:
        return SyscallError(exc.errno or errno.EIO)

    def read(self, count: int) -> bytes:
        if not self.readable():
            raise SyscallError(errno.EBADF)
        if self.flags & O_NONBLOCK:
            if not self._ready(POLLIN, 0):
                raise SyscallError(errno.EAGAIN)
        else:
            while not self._ready(POLLIN | POLLHUP | POLLERR, WAIT_SLICE):
                check_interrupt()  # a signal ends the wait (EINTR or restart)
        try:
            return os.read(self.host_fd, count)
        except OSError as exc:
            raise self._check_errno(exc) from None

    def write(self, data: bytes) -> int:
        if not self.writable():
            raise SyscallError(errno.EBADF)
        try:
            return os.write(self.host_fd, data)
        except BrokenPipeError:
            raise SyscallError(errno.EPIPE) from None
        except OSError as exc:
            raise self._check_errno(exc) from None

    def pread(self, count: int, offset: int) -> bytes:
        if not self.seekable:
            raise SyscallError(errno.ESPIPE)
        try:
            return os.pread(self.host_fd, count, offset)
        except OSError as exc:
            raise self._check_errno(exc) from None

    def pwrite(self, data: bytes, offset: int) -> int:
        if not self.seekable:
            raise SyscallError(errno.ESPIPE)
        try:
            return os.pwrite(self.host_fd, data, offset)
        except OSError as exc:
            raise self._check_errno(exc) from None

    def seek(self, offset: int, whence: int) -> int:
        if not self.seekable:
            raise SyscallError(errno.ESPIPE)
        try:
            return os.lseek(self.host_fd, offset, whence)
        except OSError as exc:
            raise self._check_errno(exc) from None

    def stat(self) -> Stat:
        return stat_from_host(os.fstat(self.host_fd))

    def ioctl(self, cmd: int, arg: int, task: object) -> int:
        mm = task.mm  # type: ignore[attr-defined]
        if cmd == FIONBIO:
            on = int.from_bytes(mm.copy_in(arg, 4), "little")
            self.flags = (self.flags | O_NONBLOCK) if on else (self.flags & ~O_NONBLOCK)
            return 0
        if cmd == FIONREAD:
            n = self._host_ioctl(termios.FIONREAD, 4)
            mm.copy_out(arg, n)
            return 0
        if not self.is_tty:
            raise SyscallError(errno.ENOTTY)
        if cmd == TCGETS:
            mm.copy_out(arg, self._host_ioctl(TCGETS, KERNEL_TERMIOS_SIZE))
            return 0
        if cmd in (TCSETS, TCSETSW, TCSETSF):
            self._host_ioctl(cmd, KERNEL_TERMIOS_SIZE, mm.copy_in(arg, KERNEL_TERMIOS_SIZE))
            return 0
        if cmd == TIOCGWINSZ:
            mm.copy_out(arg, self._host_ioctl(TIOCGWINSZ, WINSIZE_SIZE))
            return 0
        if cmd == TIOCSWINSZ:
            self._host_ioctl(cmd, WINSIZE_SIZE, mm.copy_in(arg, WINSIZE_SIZE))
            return 0
        if cmd == TIOCGPGRP:
            mm.copy_out(arg, (1).to_bytes(4, "little"))  # the sandbox's init is foreground
            return 0
        if cmd == TIOCSPGRP:
            return 0
        raise SyscallError(errno.ENOTTY)

    def _host_ioctl(self, cmd: int, size: int, data: bytes | None = None) -> bytes:
        try:
            return fcntl.ioctl(self.host_fd, cmd, data if data is not None else bytes(size))
        except OSError as exc:
            raise self._check_errno(exc) from None

    def _ready(self, events: int, timeout_s: float | None) -> int:
        if self.host_fd < 0:  # released while another thread still used it
            return POLLNVAL
        p = select.poll()
        p.register(self.host_fd, events)
        ms = -1 if timeout_s is None else int(timeout_s * 1000)
        res = p.poll(ms)
        return res[0][1] if res else 0

    def poll(self, events: int, timeout_s: float | None) -> int:
        want = events | POLLERR | POLLHUP
        got = self._ready(want, timeout_s)
        return got & (events | POLLERR | POLLHUP | POLLNVAL)

    def link_name(self) -> bytes:
        """What /proc/self/fd/N shows for an imported host descriptor."""
        st = os.fstat(self.host_fd)
        if _stat.S_ISFIFO(st.st_mode):
            return b"pipe:[%d]" % st.st_ino
        if _stat.S_ISSOCK(st.st_mode):
            return b"socket:[%d]" % st.st_ino
        if self.is_tty:
            try:
                return os.fsencode(os.ttyname(self.host_fd))
            except OSError:
                return b"/dev/tty"
        if _stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(1, 3):
            return b"/dev/null"
        return b"anon_inode:[host]"

    def release(self) -> None:
        """An owned fd is closed (its reader sees EOF once no process holds it);
        the Sentry's own stdio stays open (it is the CLI's)."""
        if self.owned and self.host_fd >= 0:
            fd, self.host_fd = self.host_fd, -1
            with contextlib.suppress(OSError):
                os.close(fd)
