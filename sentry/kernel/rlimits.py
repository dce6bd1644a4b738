"""Resource limits: the defaults a fresh process has, and their names.

One table for everyone who reports or applies a limit: getrlimit/prlimit
(syscalls/process.py), /proc/<pid>/limits and status (sentry/procfs), and the
OCI runtime's ``process.rlimits`` (sentry/sandbox.py).  It lives in the kernel
because procfs may not import the syscall layer, and both need the same
numbers or ``ulimit -a`` and /proc/self/limits would disagree.

A thread group keeps only the limits that were changed (``ThreadGroup.rlimits``);
:func:`get` fills in the default for the rest.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sentry.kernel.threadgroup import ThreadGroup

RLIM_INFINITY = (1 << 64) - 1
RLIMIT_FSIZE = 1
RLIMIT_DATA = 2
RLIMIT_NPROC = 6
RLIMIT_MEMLOCK = 8
RLIMIT_AS = 9
RLIMIT_NLIMITS = 16
RLIMIT_STACK = 3
RLIMIT_RSS = 5
RLIMIT_NOFILE = 7
RLIMIT_SIGPENDING = 11
# The fd table's hard ceiling (Linux's fs.nr_open default): a larger NOFILE
# limit is refused, as setrlimit(2) refuses it with EPERM.
NR_OPEN = 1 << 20

# The names runtime-spec config.md uses (and <sys/resource.h>), by number.
NAMES: tuple[str, ...] = (
    "RLIMIT_CPU", "RLIMIT_FSIZE", "RLIMIT_DATA", "RLIMIT_STACK", "RLIMIT_CORE",
    "RLIMIT_RSS", "RLIMIT_NPROC", "RLIMIT_NOFILE", "RLIMIT_MEMLOCK", "RLIMIT_AS",
    "RLIMIT_LOCKS", "RLIMIT_SIGPENDING", "RLIMIT_MSGQUEUE", "RLIMIT_NICE",
    "RLIMIT_RTPRIO", "RLIMIT_RTTIME",
)
BY_NAME: dict[str, int] = {name: i for i, name in enumerate(NAMES)}

# Linux's defaults for a fresh init process (what `ulimit -a` shows in a container).
DEFAULTS: dict[int, tuple[int, int]] = {
    0: (RLIM_INFINITY, RLIM_INFINITY),  # CPU
    1: (RLIM_INFINITY, RLIM_INFINITY),  # FSIZE
    2: (RLIM_INFINITY, RLIM_INFINITY),  # DATA
    RLIMIT_STACK: (8 << 20, RLIM_INFINITY),
    4: (0, RLIM_INFINITY),  # CORE
    RLIMIT_RSS: (RLIM_INFINITY, RLIM_INFINITY),
    6: (4096, 4096),  # NPROC
    RLIMIT_NOFILE: (1024, 4096),
    8: (64 << 20, 64 << 20),  # MEMLOCK
    9: (RLIM_INFINITY, RLIM_INFINITY),  # AS
    10: (RLIM_INFINITY, RLIM_INFINITY),  # LOCKS
    RLIMIT_SIGPENDING: (4096, 4096),
    12: (819200, 819200),  # MSGQUEUE
    13: (0, 0),  # NICE
    14: (0, 0),  # RTPRIO
    15: (RLIM_INFINITY, RLIM_INFINITY),  # RTTIME
}


def get(tg: ThreadGroup, resource: int) -> tuple[int, int]:
    """(soft, hard) of ``resource`` for ``tg``; the caller checks the range."""
    return tg.rlimits.get(resource, DEFAULTS[resource])


def fd_limit(soft: int) -> int:
    """The fd table size a NOFILE soft limit allows."""
    return min(soft, NR_OPEN)
