"""fcntl's commands about a description's owner, signal and lease, and the
pipe size: F_SETOWN/F_GETOWN and their _EX forms, F_SETSIG/F_GETSIG,
F_SETLEASE/F_GETLEASE, F_SETPIPE_SZ/F_GETPIPE_SZ (the rest of fcntl is
``syscalls/fs.py``).

What is and is not modelled:

* The owner and signal are recorded, checked and read back as Linux does
  (ESRCH for an owner that does not exist, EINVAL for a bad type or signal);
  sentry/kernel/sigio.py sends them: O_ASYNC on pipes, dnotify
  (syscalls/dnotify.py). Other files' O_ASYNC sends nothing.
* A lease is taken with Linux's checks (a regular file, the caller owns it
  or has CAP_LEASE, no writer for a read lease, no other open description
  for a write lease, no other holder's conflicting lease: EAGAIN) and read
  back; a conflicting open or truncate breaks it (sentry/vfs/leases.py).
"""

from __future__ import annotations

import errno
import stat
import struct
from typing import TYPE_CHECKING, Any

from sentry.kernel.creds import CAP_LEASE, CAP_SYS_RESOURCE
from sentry.kernel.errors import SyscallError
from sentry.vfs import leases
from sentry.vfs.description import dentry_of

if TYPE_CHECKING:
    from sentry.kernel.task import Task
    from sentry.vfs.file import FileDescription

F_SETOWN, F_GETOWN, F_SETSIG, F_GETSIG = 8, 9, 10, 11
F_SETOWN_EX, F_GETOWN_EX = 15, 16
F_SETLEASE, F_GETLEASE = 1024, 1025
F_SETPIPE_SZ, F_GETPIPE_SZ = 1031, 1032
F_RDLCK, F_WRLCK, F_UNLCK = 0, 1, 2
F_OWNER_TID, F_OWNER_PID, F_OWNER_PGRP = 0, 1, 2
O_ACCMODE, O_RDONLY = 3, 0
F_OWNER_EX = struct.Struct("<ii")
NSIG = 64
COMMANDS = frozenset({F_SETOWN, F_GETOWN, F_SETSIG, F_GETSIG, F_SETOWN_EX, F_GETOWN_EX,
                      F_SETLEASE, F_GETLEASE, F_SETPIPE_SZ, F_GETPIPE_SZ})


def handle(t: Task, f: FileDescription, cmd: int, arg: int, fd: int = 0) -> int:
    """One of :data:`COMMANDS` on description ``f`` (descriptor ``fd``)."""
    if cmd in (F_SETOWN, F_GETOWN, F_SETOWN_EX, F_GETOWN_EX):
        return _owner(t, f, cmd, arg)
    if cmd == F_SETSIG:
        if not 0 <= arg <= NSIG:
            raise SyscallError(errno.EINVAL)
        f.__dict__["fsig"] = arg
        return 0
    if cmd == F_GETSIG:
        return int(f.__dict__.get("fsig", 0))
    if cmd in (F_SETLEASE, F_GETLEASE):
        return _lease(t, f, cmd, arg, fd)
    return _pipe_size(t, f, cmd, arg)


# -- owner ---------------------------------------------------------------------

def _exists(t: Task, kind: int, ident: int) -> bool:
    k = t.kernel
    with k.lock:
        if kind == F_OWNER_TID:
            return ident in k.tasks
        if kind == F_OWNER_PID:
            g = k.thread_groups.get(ident)
            return g is not None and not g.reaped
        return any(g.pgid == ident and not g.reaped for g in k.thread_groups.values())


def _owner(t: Task, f: FileDescription, cmd: int, arg: int) -> int:
    kind, ident = f.__dict__.get("owner", (F_OWNER_PID, 0))
    if cmd == F_GETOWN:
        return -ident if kind == F_OWNER_PGRP else ident
    if cmd == F_GETOWN_EX:
        t.mm.copy_out(arg, F_OWNER_EX.pack(kind, ident))
        return 0
    if cmd == F_SETOWN:
        who = arg - (1 << 32) if arg & 0x80000000 else arg & 0xFFFFFFFF
        kind, ident = (F_OWNER_PGRP, -who) if who < 0 else (F_OWNER_PID, who)
    else:
        kind, ident = F_OWNER_EX.unpack(t.mm.copy_in(arg, F_OWNER_EX.size))
        if kind not in (F_OWNER_TID, F_OWNER_PID, F_OWNER_PGRP):
            raise SyscallError(errno.EINVAL)
    if ident and not _exists(t, kind, ident):
        raise SyscallError(errno.ESRCH)
    f.__dict__["owner"] = (kind, ident)
    return 0


# -- leases --------------------------------------------------------------------

def _same_file(t: Task, inode: Any) -> list[FileDescription]:
    """Every open description of ``inode`` in the sandbox."""
    k = t.kernel
    with k.lock:
        tables = {id(g.fds): g.fds for g in k.thread_groups.values()
                  if not g.zombie and g.fds is not None}
    out: dict[int, FileDescription] = {}
    for table in tables.values():
        for desc in table.descriptions():
            if getattr(desc, "inode", None) is inode:
                out[id(desc)] = desc
    return list(out.values())


def _lease(t: Task, f: FileDescription, cmd: int, arg: int, fd: int) -> int:
    if cmd == F_GETLEASE:  # during a break: what the lease is being broken to
        target = leases.breaking_to(f)
        return int(f.__dict__.get("lease", F_UNLCK) if target is None else target)
    d = dentry_of(f)
    inode = getattr(f, "inode", None)
    if d is None or inode is None or not stat.S_ISREG(inode.mode):
        raise SyscallError(errno.EINVAL)
    if arg not in (F_RDLCK, F_WRLCK, F_UNLCK):
        raise SyscallError(errno.EINVAL)
    c = t.creds
    if c.fsuid != inode.uid and not c.capable(CAP_LEASE):
        raise SyscallError(errno.EACCES)
    if arg == F_UNLCK:
        leases.set_lease(f, inode, F_UNLCK)
        return 0
    if arg == F_RDLCK and leases.breaking_to(f) == F_UNLCK:
        raise SyscallError(errno.EAGAIN)  # the breaker opens for writing: no read lease
    others = [x for x in _same_file(t, inode) if x is not f]
    if any(x.__dict__.get("lease") == F_WRLCK
           or (arg == F_WRLCK and x.__dict__.get("lease") == F_RDLCK) for x in others):
        raise SyscallError(errno.EAGAIN)
    if arg == F_RDLCK and (f.writable() or any(x.writable() for x in others)):
        raise SyscallError(errno.EAGAIN)
    if arg == F_WRLCK and others:
        raise SyscallError(errno.EAGAIN)
    f.__dict__["owner"] = (F_OWNER_PID, t.tg.tgid)  # a break signals the lease's taker
    f.__dict__["lease_fd"] = fd
    leases.set_lease(f, inode, arg)
    return 0


# -- pipe size -----------------------------------------------------------------

def _pipe_size(t: Task, f: FileDescription, cmd: int, arg: int) -> int:
    pipe = getattr(f, "pipe", None)
    if pipe is None:
        raise SyscallError(errno.EBADF)
    if cmd == F_GETPIPE_SZ:
        return int(pipe.capacity)
    size = arg & 0xFFFFFFFF
    sc, c = t.kernel.sysctl, t.creds
    return pipe.set_capacity(size, privileged=c.capable(CAP_SYS_RESOURCE),
                             max_size=sc.pipe_max_size,
                             limits=(sc.pipe_user_pages_soft, sc.pipe_user_pages_hard))
