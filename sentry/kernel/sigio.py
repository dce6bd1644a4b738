"""Signal-driven I/O: the signal a description's owner gets when something
happens to it (Linux's send_sigio): dnotify events, O_ASYNC readiness.

Why one helper: the owner (F_SETOWN/F_SETOWN_EX: a thread, a process or a
process group) and the signal (F_SETSIG: 0 means a plain SIGIO) are recorded
on the description by syscalls/fcntl_cmds.py; every source of such a signal
delivers it the same way. With F_SETSIG's signal the siginfo carries si_fd
and si_band (the poll events), as Linux's; plain SIGIO carries neither.
"""

from __future__ import annotations

from typing import Any

from sentry.kernel.signals import SI_KERNEL, SigInfo
from sentry.kernel.task import current_task

SIGIO = 29
POLL_IN, POLL_OUT, POLL_MSG = 1, 2, 3
# si_band per si_code (Linux's band_table): POLLIN|POLLRDNORM, POLLOUT|POLLWRNORM|POLLWRBAND,
# POLLIN|POLLRDNORM|POLLMSG.
BANDS = {POLL_IN: 0x41, POLL_OUT: 0x304, POLL_MSG: 0x441}
F_OWNER_TID, F_OWNER_PID, F_OWNER_PGRP = 0, 1, 2


def send_io_signal(desc: Any, fd: int, reason: int) -> None:
    """Signal ``desc``'s owner that ``reason`` (POLL_IN, POLL_OUT, POLL_MSG)
    happened on descriptor ``fd``; nothing when it has no owner. Runs in the
    task that caused the event (its kernel delivers)."""
    kind, ident = desc.__dict__.get("owner", (F_OWNER_PID, 0))
    task = current_task()
    if not ident or task is None:
        return
    signo = int(desc.__dict__.get("fsig", 0))
    info = (SigInfo(signo, code=reason, band=BANDS[reason], fd=fd) if signo
            else SigInfo(SIGIO, code=SI_KERNEL))
    k = task.kernel
    with k.lock:
        if kind == F_OWNER_TID:
            target = k.tasks.get(ident)
            groups = []
        elif kind == F_OWNER_PID:
            target = None
            groups = [g for g in (k.thread_groups.get(ident),) if g is not None]
        else:
            target = None
            groups = [g for g in k.thread_groups.values() if g.pgid == ident]
    if target is not None:
        k.send_task(target, info)
    for g in groups:
        if not g.zombie:
            k.send_group(g, info)
