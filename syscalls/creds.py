"""Credentials: the get/set id calls, supplementary groups, capget/capset and
prctl's capability options.

Every change builds a new :class:`sentry.kernel.creds.Credentials` (the rules
live there) and replaces the calling thread's: Linux's credentials are per
thread, and glibc's setuid() and friends repeat the call on every thread of
the process themselves (the SIGSETXID broadcast), so the kernel must not.
"""

from __future__ import annotations

import errno
import struct
from typing import TYPE_CHECKING

from sentry.kernel import creds
from sentry.kernel.errors import SyscallError
from syscalls.abi import s32
from syscalls.table import Entry, supported

if TYPE_CHECKING:
    from sentry.kernel.task import Task

Args = tuple[int, ...]

# capget/capset header versions (linux/capability.h) and their data sizes.
CAP_V1 = 0x19980330  # one 32-bit word per set
CAP_V2 = 0x20071026  # two words (deprecated, same layout as v3)
CAP_V3 = 0x20080522
CAP_WORDS = {CAP_V1: 1, CAP_V2: 2, CAP_V3: 2}
CAP_HEADER = struct.Struct("<Ii")  # version, pid
CAP_DATA = struct.Struct("<III")  # effective, permitted, inheritable (one word of each)
U32 = struct.Struct("<I")

# prctl options this module answers.
PR_GET_KEEPCAPS = 7
PR_SET_KEEPCAPS = 8
PR_CAPBSET_READ = 23
PR_CAPBSET_DROP = 24
PR_GET_SECUREBITS = 27
PR_SET_SECUREBITS = 28
PR_CAP_AMBIENT = 47
PRCTL_OPTIONS = frozenset({PR_GET_KEEPCAPS, PR_SET_KEEPCAPS, PR_CAPBSET_READ, PR_CAPBSET_DROP,
                           PR_GET_SECUREBITS, PR_SET_SECUREBITS, PR_CAP_AMBIENT})


# --- ids -----------------------------------------------------------------------------

def getuid(t: Task, a: Args) -> int:
    """getuid(2)."""
    return t.creds.uid


def geteuid(t: Task, a: Args) -> int:
    """geteuid(2)."""
    return t.creds.euid


def getgid(t: Task, a: Args) -> int:
    """getgid(2)."""
    return t.creds.gid


def getegid(t: Task, a: Args) -> int:
    """getegid(2)."""
    return t.creds.egid


def _put_three(t: Task, addrs: Args, values: tuple[int, int, int]) -> None:
    """getresuid/getresgid: each id to its own pointer (Linux writes them one by one)."""
    for addr, value in zip(addrs, values, strict=True):
        t.mm.copy_out(addr, U32.pack(value))


def getresuid(t: Task, a: Args) -> int:
    """getresuid(2)."""
    c = t.creds
    _put_three(t, a[:3], (c.uid, c.euid, c.suid))
    return 0


def getresgid(t: Task, a: Args) -> int:
    """getresgid(2)."""
    c = t.creds
    _put_three(t, a[:3], (c.gid, c.egid, c.sgid))
    return 0


def setuid(t: Task, a: Args) -> int:
    """setuid(2)."""
    t.creds = creds.setuid(t.creds, a[0])
    return 0


def setgid(t: Task, a: Args) -> int:
    """setgid(2)."""
    t.creds = creds.setgid(t.creds, a[0])
    return 0


def setreuid(t: Task, a: Args) -> int:
    """setreuid(2)."""
    t.creds = creds.setreuid(t.creds, a[0], a[1])
    return 0


def setregid(t: Task, a: Args) -> int:
    """setregid(2)."""
    t.creds = creds.setregid(t.creds, a[0], a[1])
    return 0


def setresuid(t: Task, a: Args) -> int:
    """setresuid(2)."""
    t.creds = creds.setresuid(t.creds, a[0], a[1], a[2])
    return 0


def setresgid(t: Task, a: Args) -> int:
    """setresgid(2)."""
    t.creds = creds.setresgid(t.creds, a[0], a[1], a[2])
    return 0


def setfsuid(t: Task, a: Args) -> int:
    """setfsuid(2): returns the previous fs uid, whether or not it changed."""
    t.creds, old = creds.setfsuid(t.creds, a[0])
    return old


def setfsgid(t: Task, a: Args) -> int:
    """setfsgid(2): returns the previous fs gid, whether or not it changed."""
    t.creds, old = creds.setfsgid(t.creds, a[0])
    return old


def getgroups(t: Task, a: Args) -> int:
    """getgroups(2): the supplementary groups; size 0 asks only for the count."""
    groups = t.creds.groups
    size = s32(a[0])
    if size < 0:
        raise SyscallError(errno.EINVAL)
    if size == 0:
        return len(groups)
    if size < len(groups):
        raise SyscallError(errno.EINVAL)
    if groups:
        t.mm.copy_out(a[1], struct.pack(f"<{len(groups)}I", *groups))
    return len(groups)


def setgroups(t: Task, a: Args) -> int:
    """setgroups(2): CAP_SETGID; the calling thread's credentials only."""
    if not t.creds.capable(creds.CAP_SETGID):
        raise SyscallError(errno.EPERM)
    size = s32(a[0])
    if not 0 <= size <= creds.NGROUPS_MAX:
        raise SyscallError(errno.EINVAL)
    raw = t.mm.copy_in(a[1], size * 4) if size else b""
    groups = struct.unpack(f"<{size}I", raw)
    if creds.NO_ID in groups:  # groups_from_user: (gid_t)-1 is no group
        raise SyscallError(errno.EINVAL)
    t.creds = creds.setgroups(t.creds, groups)
    return 0


# --- capabilities -------------------------------------------------------------------

def _cap_header(t: Task, addr: int) -> tuple[int, int]:
    """The header's version's word count and pid; an unknown version is
    EINVAL after the kernel's preferred version is written back (how
    libcap asks which version to use)."""
    version, pid = CAP_HEADER.unpack(t.mm.copy_in(addr, CAP_HEADER.size))
    words = CAP_WORDS.get(version)
    if words is None:
        t.mm.copy_out(addr, U32.pack(CAP_V3))
        raise SyscallError(errno.EINVAL)
    return words, pid


def capget(t: Task, a: Args) -> int:
    """capget(2): the capability sets of the caller or of another task."""
    try:
        words, pid = _cap_header(t, a[0])
    except SyscallError as e:
        if e.errno == errno.EINVAL and not a[1]:
            return 0  # a probe for the version with no data pointer
        raise
    if not a[1]:
        return 0
    if pid < 0:
        raise SyscallError(errno.EINVAL)
    target = t if pid in (0, t.tid) else t.kernel.tasks.get(pid)
    if target is None:
        raise SyscallError(errno.ESRCH)
    c = target.creds
    out = b"".join(CAP_DATA.pack(c.cap_effective >> (32 * i) & 0xFFFF_FFFF,
                                 c.cap_permitted >> (32 * i) & 0xFFFF_FFFF,
                                 c.cap_inheritable >> (32 * i) & 0xFFFF_FFFF)
                   for i in range(words))
    t.mm.copy_out(a[1], out)
    return 0


def capset(t: Task, a: Args) -> int:
    """capset(2): the caller's own sets only (another pid is EPERM, as Linux)."""
    words, pid = _cap_header(t, a[0])
    if pid not in (0, t.tid):
        raise SyscallError(errno.EPERM)
    raw = t.mm.copy_in(a[1], CAP_DATA.size * words)
    eff = prm = inh = 0
    for i in range(words):
        e, p, h = CAP_DATA.unpack_from(raw, CAP_DATA.size * i)
        eff |= e << (32 * i)
        prm |= p << (32 * i)
        inh |= h << (32 * i)
    t.creds = creds.capset(t.creds, eff, prm, inh)
    return 0


def cap_prctl(t: Task, option: int, a: Args) -> int:
    """prctl(2)'s capability and securebits options (``option`` in PRCTL_OPTIONS)."""
    c = t.creds
    if option == PR_GET_KEEPCAPS:
        return int(bool(c.securebits & creds.SECBIT_KEEP_CAPS))
    if option == PR_SET_KEEPCAPS:
        t.creds = creds.set_keepcaps(c, a[1])
        return 0
    if option == PR_CAPBSET_READ:
        if not creds.valid_cap(a[1]):
            raise SyscallError(errno.EINVAL)
        return c.cap_bounding >> a[1] & 1
    if option == PR_CAPBSET_DROP:
        t.creds = creds.drop_bounding(c, a[1])
        return 0
    if option == PR_GET_SECUREBITS:
        return c.securebits
    if option == PR_SET_SECUREBITS:
        t.creds = creds.set_securebits(c, a[1])
        return 0
    # PR_CAP_AMBIENT
    if a[1] == 4:  # CLEAR_ALL takes nothing else
        if any(a[2:5]):
            raise SyscallError(errno.EINVAL)
    elif a[3] or a[4]:
        raise SyscallError(errno.EINVAL)
    t.creds, result = creds.ambient(c, a[1], a[2])
    return result


ENTRIES: list[Entry] = [
    supported("getuid", getuid),
    supported("geteuid", geteuid),
    supported("getgid", getgid),
    supported("getegid", getegid),
    supported("getresuid", getresuid),
    supported("getresgid", getresgid),
    supported("setuid", setuid),
    supported("setgid", setgid),
    supported("setreuid", setreuid),
    supported("setregid", setregid),
    supported("setresuid", setresuid),
    supported("setresgid", setresgid),
    supported("setfsuid", setfsuid),
    supported("setfsgid", setfsgid),
    supported("getgroups", getgroups),
    supported("setgroups", setgroups),
    supported("capget", capget),
    supported("capset", capset),
]
