"""The x86-64 syscall table: every family's entries in one place.

One hop from a number to its handler: ``build_table().entry(nr).handler`` is a
function in the family module named here.
"""

from __future__ import annotations

from syscalls import (
    aio,
    clone,
    creds,
    fallocate,
    fhandle,
    fs,
    inotify,
    ipc,
    kcmp,
    misc,
    mlock,
    mm,
    mount,
    mqueue,
    namespaces,
    net,
    openat2,
    path,
    path_attrs,
    pidfd,
    poll,
    prctl,
    process,
    ptrace,
    sched,
    seccomp,
    signal,
    signalfd,
    splice,
    system,
    time,
    timerfd,
    xattr,
)
from syscalls.table import SyscallTable

FAMILIES = (clone, fs, path, path_attrs, fallocate, fhandle, openat2, inotify, xattr, mm, mlock,
            poll, process, ptrace, pidfd, sched, creds, seccomp, ipc, kcmp, mqueue, aio, signal,
            signalfd, splice, system, time, timerfd, misc, prctl, net, mount, namespaces)


def build_table() -> SyscallTable:
    return SyscallTable(e for fam in FAMILIES for e in fam.ENTRIES)
