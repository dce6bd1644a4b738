"""System-wide calls a container may make about its own sandbox: the kernel
log (syslog), host and domain names, personality, and memory barriers.

* syslog reads an empty ring, as gVisor's: the sandbox has no kernel log of
  its own to show, and the host's is not the application's to read.
* sethostname/setdomainname change the sandbox's UTS names (CAP_SYS_ADMIN),
  never the host's.
* personality is recorded per process and inherited (ADDR_NO_RANDOMIZE and
  friends change nothing the Sentry does: its address-space layout is fixed).
* membarrier's barriers are the host's MEMBARRIER_CMD_GLOBAL, issued by the
  Sentry: the application's threads run in stub processes, which a barrier
  private to the Sentry would not reach.
"""

from __future__ import annotations

import ctypes
import errno
from typing import TYPE_CHECKING

from sentry.kernel import namespaces
from sentry.kernel.creds import CAP_SYS_ADMIN, CAP_SYS_PTRACE, CAP_SYSLOG
from sentry.kernel.errors import SyscallError
from syscalls.abi import s32
from syscalls.table import Entry, error, partial, supported

if TYPE_CHECKING:
    from sentry.kernel.task import Task

Args = tuple[int, ...]

# syslog actions
SYSLOG_READ, SYSLOG_READ_ALL, SYSLOG_READ_CLEAR = 2, 3, 4
SYSLOG_CONSOLE_LEVEL, SYSLOG_SIZE_UNREAD, SYSLOG_SIZE_BUFFER = 8, 9, 10
LOG_BUF_LEN = 1 << 17
NEW_UTS_LEN = 64
PERSONALITY_QUERY = 0xFFFF_FFFF
# membarrier commands: each bit is one; registrations are the odd-named ones.
MB_GLOBAL, MB_GLOBAL_EXPEDITED, MB_REGISTER_GLOBAL_EXPEDITED = 1, 2, 4
MB_PRIVATE_EXPEDITED, MB_REGISTER_PRIVATE_EXPEDITED = 8, 16
MB_PRIVATE_EXPEDITED_SYNC_CORE, MB_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE = 32, 64
MB_PRIVATE_EXPEDITED_RSEQ, MB_REGISTER_PRIVATE_EXPEDITED_RSEQ = 128, 256
MB_GET_REGISTRATIONS = 512
MB_ALL = 1023
MB_FLAG_CPU = 1
MB_NEEDS = {MB_PRIVATE_EXPEDITED: MB_REGISTER_PRIVATE_EXPEDITED,
            MB_PRIVATE_EXPEDITED_SYNC_CORE: MB_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE,
            MB_PRIVATE_EXPEDITED_RSEQ: MB_REGISTER_PRIVATE_EXPEDITED_RSEQ}
SYS_MEMBARRIER = 324
_libc = ctypes.CDLL(None, use_errno=True)


def syslog(t: Task, a: Args) -> int:
    """syslog(2) over an empty ring; reading needs CAP_SYSLOG (dmesg_restrict)."""
    action, length = s32(a[0]), s32(a[2])
    if not 0 <= action <= SYSLOG_SIZE_BUFFER:
        raise SyscallError(errno.EINVAL)
    if action not in (0, 1) and not (t.creds.capable(CAP_SYSLOG)
                                     or t.creds.capable(CAP_SYS_ADMIN)):
        raise SyscallError(errno.EPERM)
    if action in (SYSLOG_READ, SYSLOG_READ_ALL, SYSLOG_READ_CLEAR):
        if not a[1] or length < 0:
            raise SyscallError(errno.EINVAL)
        if action == SYSLOG_READ and length:
            while True:  # nothing ever arrives: wait as Linux does, until a signal
                t.sleep_until(None)
        return 0
    if action == SYSLOG_CONSOLE_LEVEL and not 1 <= length <= 8:
        raise SyscallError(errno.EINVAL)
    if action == SYSLOG_SIZE_BUFFER:
        return LOG_BUF_LEN
    return 0


def _set_uts(t: Task, field: str, addr: int, length: int) -> int:
    length = s32(length)
    if not 0 <= length <= NEW_UTS_LEN:
        raise SyscallError(errno.EINVAL)
    if not t.creds.capable(CAP_SYS_ADMIN):
        raise SyscallError(errno.EPERM)
    raw = t.mm.copy_in(addr, length) if length else b""
    name = raw.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
    namespaces.set_uts(t, **{field: name})
    return 0


def sethostname(t: Task, a: Args) -> int:
    """sethostname(2): the sandbox's UTS namespace, never the host's."""
    return _set_uts(t, "nodename", a[0], a[1])


def setdomainname(t: Task, a: Args) -> int:
    """setdomainname(2)."""
    return _set_uts(t, "domainname", a[0], a[1])


def personality(t: Task, a: Args) -> int:
    """personality(2): returns the old persona; 0xffffffff only asks."""
    persona = a[0] & 0xFFFF_FFFF
    old = t.tg.prctl.get("personality", 0)
    if persona != PERSONALITY_QUERY:
        t.tg.prctl["personality"] = persona
    return old


def _host_barrier() -> None:
    if _libc.syscall(SYS_MEMBARRIER, MB_GLOBAL, 0, 0) != 0:
        ctypes.set_errno(0)  # nohz_full hosts refuse it; the handoff was a barrier


def membarrier(t: Task, a: Args) -> int:
    """membarrier(2): every command, the private ones after their registration."""
    cmd, flags = s32(a[0]), s32(a[1])
    cpu_flag_ok = cmd == MB_PRIVATE_EXPEDITED_RSEQ and flags == MB_FLAG_CPU
    if flags and not cpu_flag_ok:
        raise SyscallError(errno.EINVAL)
    registered = t.tg.prctl.get("membarrier", 0)
    if cmd == 0:
        return MB_ALL
    if cmd == MB_GET_REGISTRATIONS:
        return registered
    if cmd in (MB_REGISTER_GLOBAL_EXPEDITED, MB_REGISTER_PRIVATE_EXPEDITED,
               MB_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE, MB_REGISTER_PRIVATE_EXPEDITED_RSEQ):
        t.tg.prctl["membarrier"] = registered | cmd
        return 0
    if cmd in MB_NEEDS and not registered & MB_NEEDS[cmd]:
        raise SyscallError(errno.EPERM)
    if cmd in (MB_GLOBAL, MB_GLOBAL_EXPEDITED, *MB_NEEDS):
        _host_barrier()
        return 0
    raise SyscallError(errno.EINVAL)


def get_robust_list(t: Task, a: Args) -> int:
    """get_robust_list(2): another thread's needs the same uid or CAP_SYS_PTRACE."""
    pid = s32(a[0])
    target = t if pid == 0 else t.kernel.tasks.get(pid)
    if target is None or target.exited:
        raise SyscallError(errno.ESRCH)
    if target is not t:
        c, tc = t.creds, target.creds
        same = c.uid == tc.uid == tc.euid == tc.suid and c.gid == tc.gid == tc.egid == tc.sgid
        if not same and not c.capable(CAP_SYS_PTRACE):
            raise SyscallError(errno.EPERM)
    head, length = target.robust_list
    t.mm.copy_out(a[1], head.to_bytes(8, "little"))
    t.mm.copy_out(a[2], (length or 24).to_bytes(8, "little"))
    return 0


ENTRIES: list[Entry] = [
    partial("syslog", syslog, note="an empty ring, as gVisor"),
    supported("sethostname", sethostname),
    supported("setdomainname", setdomainname),
    partial("personality", personality, note="recorded and inherited; changes no layout"),
    supported("membarrier", membarrier),
    supported("get_robust_list", get_robust_list),
    error("reboot", errno.EPERM, note="the sandbox's kernel is not rebooted", support="partial"),
    error("swapon", errno.EPERM, note="no swap in the sandbox", support="partial"),
    error("swapoff", errno.EPERM, note="no swap in the sandbox", support="partial"),
    error("init_module", errno.EPERM, note="no kernel modules", support="partial"),
    error("finit_module", errno.EPERM, note="no kernel modules", support="partial"),
    error("delete_module", errno.EPERM, note="no kernel modules", support="partial"),
]
