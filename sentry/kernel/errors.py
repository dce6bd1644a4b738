"""The one error type a syscall handler raises.

Handlers raise ``SyscallError(errno.EBADF)``; the dispatcher turns it into -errno in
one place. Any other exception escaping a handler is a Sentry bug: it is logged with
the syscall and the sandbox is killed rather than an errno being invented.
"""

from __future__ import annotations

import errno as _errno
import os


class SyscallError(Exception):
    """A syscall failed with a Linux errno (a positive number)."""

    __slots__ = ("errno",)

    def __init__(self, err: int) -> None:
        super().__init__(err)
        self.errno = err

    def __str__(self) -> str:
        name = _errno.errorcode.get(self.errno, str(self.errno))
        return f"{name}: {os.strerror(self.errno)}"
