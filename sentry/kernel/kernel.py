"""The kernel object: what every task of one sandbox shares.

The syscall table is handed in at boot (sentry/sandbox.py): the kernel never
imports ``syscalls/``, as gVisor's boot wires ``syscalls/linux`` into its kernel.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sentry.kernel.futex import FutexManager

log = logging.getLogger("pyvisor")

Handler = Callable[[Any, tuple[int, ...]], int]


@dataclass(frozen=True, slots=True)
class Utsname:
    """What uname(2) reports: the sandbox's own identity, not the host's."""

    sysname: str = "Linux"
    nodename: str = "pyvisor"
    release: str = "4.4.0"
    version: str = "#1 SMP Sun Jan 10 15:06:54 PST 2016"
    machine: str = "x86_64"
    domainname: str = "(none)"


@dataclass
class Kernel:
    """Shared kernel state of one sandbox."""

    dispatch: Sequence[Handler | None]
    syscall_name: Callable[[int], str]
    strace: bool = False
    strace_sink: Callable[[str], None] | None = None
    uts: Utsname = field(default_factory=Utsname)
    boot_monotonic_ns: int = field(default_factory=time.monotonic_ns)
    futexes: FutexManager = field(default_factory=FutexManager)
    _reported: set[int] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def report_unsupported(self, nr: int) -> None:
        """Name an unimplemented syscall once in the debug log (it got ENOSYS)."""
        with self._lock:
            if nr in self._reported:
                return
            self._reported.add(nr)
        log.info("unsupported syscall %s (%d): returned ENOSYS", self.syscall_name(nr), nr)

    def emit_strace(self, line: str) -> None:
        if self.strace_sink is not None:
            self.strace_sink(line)
        else:
            log.info("%s", line)
