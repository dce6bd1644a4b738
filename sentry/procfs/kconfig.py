"""/proc/config.gz: the sandbox kernel's configuration, in kconfig's form.

Why: programs and test suites (the LTP's tst_kconfig, container checkers,
systemd) read the running kernel's config to learn which features exist.
The kernel they run on is the Sentry, not the host, so this file describes
the Sentry: an option is ``=y`` only where the Sentry implements the feature
(see ``runsc.py help syscalls``), and written "is not set" where a program
would otherwise try something that is refused. It says nothing about the
host's kernel. Keep it true when a feature lands or goes.
"""

from __future__ import annotations

import functools
import gzip  # now: the confined Sentry cannot import later

ENABLED = (
    "64BIT", "X86_64", "MMU", "MULTIUSER", "IKCONFIG", "IKCONFIG_PROC",
    # processes, time, signals
    "FUTEX", "POSIX_TIMERS", "HIGH_RES_TIMERS", "CHECKPOINT_RESTORE",
    "SECCOMP", "SECCOMP_FILTER", "CROSS_MEMORY_ATTACH", "ADVISE_SYSCALLS", "MEMBARRIER",
    "KSM",  # MADV_MERGEABLE known, the merger stopped (sysfs kernel/mm/ksm/run = 0)
    # files and events
    "PROC_FS", "SYSFS", "TMPFS", "TMPFS_XATTR", "SHMEM", "MEMFD_CREATE", "FILE_LOCKING",
    "EPOLL", "SIGNALFD", "TIMERFD", "EVENTFD", "AIO", "INOTIFY_USER", "DNOTIFY",
    "FHANDLE",  # Sentry handles of the sandbox's own files (syscalls/fhandle.py)
    "DEVPTS_FS", "UNIX98_PTYS",
    # block devices and disk filesystems in the Sentry (sentry/vfs/loop.py, ramdisk.py, ext2/)
    "BLOCK", "BLK_DEV", "BLK_DEV_LOOP", "BLK_DEV_RAM", "EXT2_FS",
    # IPC and namespaces
    "SYSVIPC", "POSIX_MQUEUE", "NAMESPACES", "UTS_NS", "IPC_NS", "USER_NS", "PID_NS", "TIME_NS",
    "CGROUPS",
    # network
    "NET", "UNIX", "INET", "IPV6",
)
NOT_SET = (
    "NET_NS", "SWAP", "USERFAULTFD", "IO_URING", "NUMA", "HUGETLBFS",
    "BSD_PROCESS_ACCT", "MANDATORY_FILE_LOCKING", "FANOTIFY",
    "BPF_SYSCALL", "KEYS", "PERF_EVENTS", "MODULES", "QUOTA", "FS_VERITY", "MEMORY_FAILURE",
    "RSEQ",
)


def text() -> bytes:
    """The config as `make savedefconfig`-style lines, enabled then not set."""
    lines = ["#", "# pyvisor: the Sentry's features (not the host kernel's)", "#"]
    lines += [f"CONFIG_{name}=y" for name in ENABLED]
    lines += [f"# CONFIG_{name} is not set" for name in NOT_SET]
    return ("\n".join(lines) + "\n").encode()


@functools.cache
def gzipped() -> bytes:
    """What /proc/config.gz holds (fixed mtime: the same bytes every read),
    made at the first read, not at boot."""
    return gzip.compress(text(), mtime=0)
