"""The x86-64 syscall table: every family's entries in one place.

One hop from a number to its handler: ``build_table().entry(nr).handler`` is a
function in the family module named here.
"""

from __future__ import annotations

from syscalls import (
    creds,
    fs,
    inotify,
    ipc,
    misc,
    mm,
    mqueue,
    net,
    path,
    pidfd,
    poll,
    process,
    ptrace,
    sched,
    signal,
    signalfd,
    splice,
    system,
    time,
    timerfd,
    xattr,
)
from syscalls.table import SyscallTable

FAMILIES = (fs, path, inotify, xattr, mm, poll, process, ptrace, pidfd, sched, creds, ipc, mqueue,
            signal, signalfd, splice, system, time, timerfd, misc, net)


def build_table() -> SyscallTable:
    return SyscallTable(e for fam in FAMILIES for e in fam.ENTRIES)
