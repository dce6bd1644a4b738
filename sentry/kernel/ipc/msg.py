"""System V message queues: msgget, msgsnd, msgrcv and msgctl's state.

Facts about Linux's message queues (ipc/msg.c) that shape this module:

* A queue holds at most ``qbytes`` bytes of text (MSGMNB, 16384, by default)
  and at most ``qbytes`` messages; a sender waits for room (EAGAIN with
  IPC_NOWAIT).  A message's type is at least 1 and its text at most MSGMAX
  (8192) bytes.
* msgrcv's type selects: 0 the first message; > 0 the first of that type (or,
  with MSG_EXCEPT, the first of another type); < 0 the first of the lowest
  type at most its absolute value.  A message longer than the buffer is E2BIG
  and stays queued unless MSG_NOERROR truncates it.  MSG_COPY (with
  IPC_NOWAIT) copies the message at that position without removing it.
* Waits end with EIDRM when the queue is removed and EINTR on a signal
  (never restarted); an empty queue with IPC_NOWAIT is ENOMSG.
* A message is kernel memory charged to the memory cgroup (load_msg's
  GFP_KERNEL_ACCOUNT); when it cannot be allocated msgsnd fails with ENOMEM.
  Here each queue is charged to the Sentry's account (sentry/kmem.py) for
  its text plus MSG_OVERHEAD a message: root may raise qbytes without bound
  (IPC_SET), and 32000 queues of the default 16 KiB are 500 MiB.
"""

from __future__ import annotations

import errno
import threading
import time
from collections import deque
from typing import TYPE_CHECKING

from sentry import kmem
from sentry.kernel.creds import Credentials
from sentry.kernel.errors import SyscallError
from sentry.kernel.ipc.registry import IPC_NOWAIT, S_IRUGO, S_IWUGO, IpcObject, Registry

if TYPE_CHECKING:
    from sentry.kernel.task import Task

MSGMAX = 8192
MSGMNB = 16384
MSGMNI = 32000
MSG_NOERROR = 0o10000
MSG_EXCEPT = 0o20000
MSG_COPY = 0o40000
MSG_OVERHEAD = 128  # a queued message's tuple, int and bytes header (Linux's msg_msg: 48)


class MsgQueue(IpcObject):
    """One message queue."""

    def __init__(self, key: int, ident: int, c: Credentials, mode: int) -> None:
        super().__init__(key, ident, c, mode)
        self.messages: deque[tuple[int, bytes]] = deque()
        self.cbytes = 0
        self.qbytes = MSGMNB
        self.stime = self.rtime = 0
        self.lspid = self.lrpid = 0
        self.kbuf = kmem.Buffer()  # the queue's messages in the Sentry's account

    def cost(self, extra: int = 0) -> int:
        """What the queue's messages cost in the Sentry's account, plus
        ``extra`` (lock held)."""
        return self.cbytes + MSG_OVERHEAD * len(self.messages) + extra

    def find(self, msgtyp: int, flags: int) -> int | None:
        """The position of the message msgrcv's ``msgtyp`` selects, if any."""
        if msgtyp == 0:
            return 0 if self.messages else None
        if msgtyp > 0:
            for i, (mtype, _) in enumerate(self.messages):
                if (mtype != msgtyp) if flags & MSG_EXCEPT else (mtype == msgtyp):
                    return i
            return None
        best = None
        for i, (mtype, _) in enumerate(self.messages):
            if mtype <= -msgtyp and (best is None or mtype < self.messages[best][0]):
                best = i
        return best


class MsgNamespace:
    """The message queues of one IPC namespace."""

    def __init__(self, lock: threading.Lock) -> None:
        self.queues: Registry[MsgQueue] = Registry(MSGMNI)
        self.cond = threading.Condition(lock)

    def msgget(self, c: Credentials, key: int, flags: int) -> int:
        with self.cond:
            return self.queues.get(key, flags, c,
                                   lambda ident: MsgQueue(key, ident, c, flags))

    def _wait(self, task: Task) -> None:
        if task.interrupted():
            raise SyscallError(errno.EINTR)
        self.cond.wait(0.05)

    def msgsnd(self, task: Task, msqid: int, mtype: int, text: bytes, flags: int) -> None:
        with self.cond:
            q = self.queues.lookup(msqid)
            q.check(task.creds, S_IWUGO)
            while True:
                if q.deleted:
                    raise SyscallError(errno.EIDRM)
                if (q.cbytes + len(text) <= q.qbytes
                        and len(q.messages) + 1 <= q.qbytes):
                    break
                if flags & IPC_NOWAIT:
                    raise SyscallError(errno.EAGAIN)
                self._wait(task)
            if not q.kbuf.fits(q.cost(len(text) + MSG_OVERHEAD)):
                raise SyscallError(errno.ENOMEM)
            q.messages.append((mtype, text))
            q.cbytes += len(text)
            q.lspid = task.tg.tgid
            q.stime = int(time.time())
            self.cond.notify_all()

    def msgrcv(self, task: Task, msqid: int, bufsz: int, msgtyp: int,
               flags: int) -> tuple[int, bytes]:
        """The message's type and text (cut to ``bufsz`` with MSG_NOERROR)."""
        with self.cond:
            q = self.queues.lookup(msqid)
            q.check(task.creds, S_IRUGO)
            while True:
                if q.deleted:
                    raise SyscallError(errno.EIDRM)
                if flags & MSG_COPY:
                    if not 0 <= msgtyp < len(q.messages):
                        raise SyscallError(errno.ENOMSG)
                    mtype, text = q.messages[msgtyp]
                    if len(text) > bufsz and not flags & MSG_NOERROR:
                        raise SyscallError(errno.E2BIG)
                    return mtype, text[:bufsz]
                pos = q.find(msgtyp, flags)
                if pos is not None:
                    mtype, text = q.messages[pos]
                    if len(text) > bufsz and not flags & MSG_NOERROR:
                        raise SyscallError(errno.E2BIG)
                    del q.messages[pos]
                    q.cbytes -= len(text)
                    q.kbuf.holds(q.cost())
                    q.lrpid = task.tg.tgid
                    q.rtime = int(time.time())
                    self.cond.notify_all()
                    return mtype, text[:bufsz]
                if flags & IPC_NOWAIT:
                    raise SyscallError(errno.ENOMSG)
                self._wait(task)

    def remove(self, q: MsgQueue) -> None:
        """IPC_RMID (under the lock): the messages go, waiters get EIDRM."""
        self.queues.remove(q)
        q.messages.clear()
        q.cbytes = 0
        q.kbuf.release()
        self.cond.notify_all()
