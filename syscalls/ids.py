"""The set*id family: real, effective and saved user and group ids.

Each call changes the calling thread's credentials only, as Linux does (glibc
repeats it on every thread).  Privilege is euid 0 (CAP_SETUID / CAP_SETGID);
without it a new id must be one the thread already holds (real, effective or
saved).  Ids are u32: (u32)-1 leaves an id unchanged where Linux reads it so
(setres*id, setre*id) and is EINVAL where it would be stored (set*id).
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING

from sentry.kernel.errors import SyscallError
from shm import records
from syscalls.abi import NO_ID, U32, id_arg
from syscalls.table import Entry, supported

if TYPE_CHECKING:
    from sentry.kernel.task import Task

Args = tuple[int, ...]



def _ids(t: Task, kind: str) -> tuple[int, int, int]:
    c = t.creds
    return (c.uid, c.euid, c.suid) if kind == "u" else (c.gid, c.egid, c.sgid)


def _set_ids(t: Task, kind: str, real: int, eff: int, saved: int) -> None:
    if kind == "u":
        t.creds = records.replace(t.creds, uid=real, euid=eff, suid=saved)
    else:
        t.creds = records.replace(t.creds, gid=real, egid=eff, sgid=saved)


def _setres(t: Task, kind: str, r: int, e: int, s: int) -> int:
    """setresuid/setresgid(2)."""
    cur = _ids(t, kind)
    want = (r, e, s)
    if t.creds.euid != 0 and any(v != NO_ID and v not in cur for v in want):
        raise SyscallError(errno.EPERM)
    _set_ids(t, kind, *(cur[i] if want[i] == NO_ID else want[i] for i in range(3)))
    return 0


def _setre(t: Task, kind: str, r: int, e: int) -> int:
    """setreuid/setregid(2): the saved id follows the effective one when the real
    id is set, or the effective one is set to other than the old real id."""
    ruid, euid, suid = _ids(t, kind)
    if t.creds.euid != 0 and (r != NO_ID and r not in (ruid, euid)
                              or e != NO_ID and e not in (ruid, euid, suid)):
        raise SyscallError(errno.EPERM)
    new_r = ruid if r == NO_ID else r
    new_e = euid if e == NO_ID else e
    new_s = new_e if r != NO_ID or (e != NO_ID and e != ruid) else suid
    _set_ids(t, kind, new_r, new_e, new_s)
    return 0


def _set1(t: Task, kind: str, v: int) -> int:
    """setuid/setgid(2): all three ids with privilege, else the effective one."""
    if v == NO_ID:
        raise SyscallError(errno.EINVAL)
    ruid, euid, suid = _ids(t, kind)
    if t.creds.euid == 0:
        _set_ids(t, kind, v, v, v)
    elif v in (ruid, suid):
        _set_ids(t, kind, ruid, v, suid)
    else:
        raise SyscallError(errno.EPERM)
    return 0


def _getres(t: Task, kind: str, a: Args) -> int:
    """getresuid/getresgid(2): three u32 values."""
    for addr, v in zip(a[:3], _ids(t, kind), strict=True):
        t.mm.copy_out(addr, U32.pack(v))
    return 0


def setuid(t: Task, a: Args) -> int:
    """setuid(2)."""
    return _set1(t, "u", id_arg(a[0]))


def setgid(t: Task, a: Args) -> int:
    """setgid(2)."""
    return _set1(t, "g", id_arg(a[0]))


def setreuid(t: Task, a: Args) -> int:
    """setreuid(2)."""
    return _setre(t, "u", id_arg(a[0]), id_arg(a[1]))


def setregid(t: Task, a: Args) -> int:
    """setregid(2)."""
    return _setre(t, "g", id_arg(a[0]), id_arg(a[1]))


def setresuid(t: Task, a: Args) -> int:
    """setresuid(2)."""
    return _setres(t, "u", id_arg(a[0]), id_arg(a[1]), id_arg(a[2]))


def setresgid(t: Task, a: Args) -> int:
    """setresgid(2)."""
    return _setres(t, "g", id_arg(a[0]), id_arg(a[1]), id_arg(a[2]))


def getresuid(t: Task, a: Args) -> int:
    """getresuid(2)."""
    return _getres(t, "u", a)


def getresgid(t: Task, a: Args) -> int:
    """getresgid(2)."""
    return _getres(t, "g", a)


ENTRIES: list[Entry] = [
    supported("setuid", setuid),
    supported("setgid", setgid),
    supported("setreuid", setreuid),
    supported("setregid", setregid),
    supported("setresuid", setresuid),
    supported("setresgid", setresgid),
    supported("getresuid", getresuid),
    supported("getresgid", getresgid),
]
