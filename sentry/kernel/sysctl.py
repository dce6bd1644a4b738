"""The sandbox's writable kernel tunables (/proc/sys): what root inside may
change, kept per sandbox, never the host's.

Why only these: a tunable is writable here when the Sentry honours its value
(pid_max bounds the pids it hands out; nr_open caps RLIMIT_NOFILE;
max_map_count caps each address space's mappings;
inotify/max_user_instances caps each user's inotify instances;
pipe-user-pages-soft/-hard limit an unprivileged user's pipe buffers;
pipe-max-size caps F_SETPIPE_SZ without CAP_SYS_RESOURCE) or when
its value has no effect on Linux either beyond being read back
(core_pattern: no core files are written; printk: the log is empty;
lease-break-time: leases are never broken; drop_caches: the caches are
transparent, so dropping them changes nothing a program can see). Writes are
parsed as Linux's proc_dointvec does: EINVAL for text that is not a number in
range.
"""

from __future__ import annotations

import errno
import threading

from sentry.kernel.errors import SyscallError
from sentry.mm import vma_table
from shm.records import record

PID_MAX_LIMIT = 4194304  # PID_MAX_LIMIT on 64-bit
PID_MAX_MIN = 301  # RESERVED_PIDS + 1
NR_OPEN_MAX = (1 << 31) - 64  # sysctl_nr_open_max, rounded as Linux's
NR_OPEN_MIN = 64  # BITS_PER_LONG


def parse_int(data: bytes, lo: int, hi: int) -> int:
    """One integer, surrounded by blanks at most, within [lo, hi]: EINVAL else."""
    text = data.strip()
    try:
        value = int(text, 10)
    except ValueError:
        raise SyscallError(errno.EINVAL) from None
    if not lo <= value <= hi:
        raise SyscallError(errno.EINVAL)
    return value


@record
class Sysctls:
    """The values; the Sentry reads them where they apply."""

    pid_max: int = PID_MAX_LIMIT
    nr_open: int = 1 << 20
    core_pattern: bytes = b"core"
    printk: bytes = b"4\t4\t1\t7"
    lease_break_time: int = 45
    pipe_max_size: int = 1 << 20
    drop_caches: int = 0
    inotify_max_user_instances: int = 128
    pipe_user_pages_soft: int = 16384
    pipe_user_pages_hard: int = 0
    max_map_count: int = 65530

    def __post_init__(self) -> None:
        self.lock = threading.Lock()

    def set_int(self, name: str, data: bytes, lo: int, hi: int) -> None:
        value = parse_int(data, lo, hi)
        with self.lock:
            setattr(self, name, value)

    def set_max_map_count(self, data: bytes) -> None:
        """vm.max_map_count: how many mappings one address space may have
        (sentry/mm/vma_table.py enforces it, for every address space)."""
        self.set_int("max_map_count", data, 0, (1 << 31) - 1)
        vma_table.limits.max_map_count = self.max_map_count

    def set_text(self, name: str, data: bytes, limit: int = 128) -> None:
        text = data.split(b"\n", 1)[0]
        if len(text) >= limit:
            raise SyscallError(errno.EINVAL)
        with self.lock:
            setattr(self, name, text)
