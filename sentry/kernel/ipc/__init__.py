"""System V IPC inside the sandbox: one namespace per kernel (per sandbox),
as Linux's IPC namespaces keep containers apart.

``registry`` holds what every kind shares (keys, ids, ipc_perm and its
checks), ``sem``, ``msg`` and ``shm`` the semaphore sets, message queues and
shared memory segments. POSIX
message queues are files of the namespace's mqueue filesystem
(sentry/vfs/mqueue.py), which /dev/mqueue mounts show too. The syscalls that
read and write application memory live in syscalls/ipc.py and mqueue.py.
"""

from __future__ import annotations

import threading

from sentry.kernel.ipc.msg import MsgNamespace
from sentry.kernel.ipc.sem import SemNamespace
from sentry.kernel.ipc.shm import ShmNamespace
from sentry.vfs.mqueue import MqueueFs


class IpcNamespace:
    """A sandbox's System V objects, under one lock (see registry.py)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.sem = SemNamespace(self.lock)
        self.msg = MsgNamespace(self.lock)
        self.shm = ShmNamespace(self.lock)
        self.mqueue = MqueueFs()

    def process_exited(self, tgid: int) -> None:
        """The last thread of ``tgid`` is gone: its SEM_UNDO adjustments apply."""
        self.sem.exit_undo(tgid)
