"""Fault containment: a syscall handler that fails with a Python exception
other than SyscallError gives the calling task an errno, not a dead Sentry.

Why: one kernel serves every process of a sandbox, so a bug reachable from one
syscall's arguments (a slip in a rarely used path, an input no test thought
of) used to end the whole sandbox, and an application could provoke that on
purpose.  gVisor's Sentry recovers from panics in some paths for the same
reason; Linux returns an error (or oopses only the one task) where it can.
The task keeps running with the errno, the failure is logged once per place
with its traceback (the debug log: `runsc.py --debug-log`), and later ones
from the same place are counted, not logged, so a program that loops on the
failing call cannot flood the log.

Which errno: EFAULT where the exception is what decoding or slicing an
application buffer raises (a short buffer, an index or an integer out of
range: the handler read something the application handed it that does not
hold what it claimed); ENOMEM for MemoryError; EIO for everything else.

Control-flow exceptions (task exit, exec switch, kills, a dead stub) are not
failures and never reach here: the caller catches them first.
"""

from __future__ import annotations

import errno
import logging
import struct
import threading
import traceback

log = logging.getLogger("pyvisor")

_BAD_POINTER = (struct.error, IndexError, OverflowError, BufferError)
_MAX_PLACES = 1024  # distinct failure places remembered (a bounded set)

_lock = threading.Lock()
_seen: dict[tuple[str, str, str, int], int] = {}


def errno_for(exc: BaseException) -> int:
    """The errno an application sees for a handler's unexpected exception."""
    if isinstance(exc, _BAD_POINTER):
        return errno.EFAULT
    if isinstance(exc, MemoryError):
        return errno.ENOMEM
    return errno.EIO


def _place(exc: BaseException) -> tuple[str, int]:
    """Where the exception was raised (file, line): the innermost frame."""
    tb = traceback.extract_tb(exc.__traceback__)
    if not tb:
        return "?", 0
    return tb[-1].filename, tb[-1].lineno or 0


def contain(syscall: str, tid: int, exc: Exception) -> int:
    """Log ``exc`` (raised by the handler of ``syscall`` for task ``tid``) once
    per place and return the negative errno to give the task."""
    code = errno_for(exc)
    filename, line = _place(exc)
    key = (syscall, type(exc).__name__, filename, line)
    with _lock:
        count = _seen.get(key, 0) + 1
        if count == 1 and len(_seen) >= _MAX_PLACES:
            count = 2  # too many places already: count nothing new, log one line
        else:
            _seen[key] = count
    if count == 1:
        log.error("Sentry bug in syscall %s (task %d): %r; the task gets %s",
                  syscall, tid, exc, errno.errorcode[code], exc_info=exc)
    else:
        log.debug("Sentry bug in syscall %s (task %d) again: %r -> %s",
                  syscall, tid, exc, errno.errorcode[code])
    return -code


def seen() -> dict[tuple[str, str, str, int], int]:
    """How often each failure place was hit (a copy; for tests and debugging)."""
    with _lock:
        return dict(_seen)
