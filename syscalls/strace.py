"""strace-format lines for ``--strace``: ``openat(AT_FDCWD, "/etc/passwd", O_RDONLY) = 3``.

Table-driven, as strace and gVisor's ``pkg/sentry/strace`` are: ``SIGNATURES`` maps a
syscall name to a tuple of argument kinds, and ``KINDS`` maps each kind to a small
formatter. Adding a syscall is one line, never a new branch.

Facts that shaped this module:

* Arguments arrive as the six raw registers (unsigned 64-bit). C ``int`` arguments
  (fds, pids, flags) are only the low 32 bits, sign-extended: ``AT_FDCWD`` is
  ``0xffffff9c`` or ``0xffffffffffffff9c`` depending on the compiler, both are -100.
* Everything read from application memory is untrusted and may be unmapped: any
  exception from ``mem`` prints the pointer in hex instead, never an error.
* Output buffers (read, recvfrom, getrandom) only have contents after the call, and
  this line is written before it, so they print as pointers.
* As strace does with ``-s 32``: strings and buffers stop at 32 bytes followed by
  ``...``; path names are printed whole (up to PATH_MAX), since a cut path misleads.
* Return values in [-4095, -1] are errnos; 512..516 are the kernel-internal
  restart codes, which strace prints as ``= ? ERESTARTSYS (...)``.
"""

from __future__ import annotations

import errno as _errno
import os
import re
import struct
from collections.abc import Callable
from typing import Protocol

from syscalls.numbers import NAMES

STRLEN = 32  # strace's default -s: bytes of a string or buffer shown
PATH_MAX = 4096
MAX_ELEMS = 32  # array elements shown (argv, iovec)
MAX_ENV = 4096  # envp entries counted for the "/* N vars */" comment
MASK64 = (1 << 64) - 1
_U64 = struct.Struct("<Q")
_PAIR = struct.Struct("<qq")
_UPAIR = struct.Struct("<QQ")
_SIGACTION = struct.Struct("<4Q")  # kernel struct sigaction: handler, flags, restorer, mask


class Memory(Protocol):
    """Read access to the traced task's memory; either call may raise any Exception."""

    def read_cstring(self, addr: int, limit: int) -> bytes: ...

    def copy_in(self, addr: int, length: int) -> bytes: ...


# (value, all six args, index of this arg, memory) -> text
Formatter = Callable[[int, tuple[int, ...], int, Memory], str]
Flags = tuple[tuple[str, int], ...]


def _s32(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v & 0x80000000 else v


def _s64(v: int) -> int:
    v &= MASK64
    return v - (1 << 64) if v >> 63 else v


def _hex(v: int) -> str:
    """C's ``%#lx``: 0 prints as ``0``."""
    return hex(v) if v else "0"


def _ptr(v: int) -> str:
    return hex(v) if v else "NULL"


# ---- strings -------------------------------------------------------------------

_ESCAPES = {9: "\\t", 10: "\\n", 11: "\\v", 12: "\\f", 13: "\\r", 34: '\\"', 92: "\\\\"}


def quote(data: bytes, more: bool = False) -> str:
    """Quote bytes as strace does: C escapes, octal for the rest, ``...`` if cut."""
    out = []
    for k, c in enumerate(data):
        if c in _ESCAPES:
            out.append(_ESCAPES[c])
        elif 32 <= c < 127:
            out.append(chr(c))
        else:
            # Short octal unless the next byte is an octal digit ("\0" vs "\0001").
            nxt = data[k + 1] if k + 1 < len(data) else 0
            out.append(f"\\{c:03o}" if 0x30 <= nxt <= 0x37 else f"\\{c:o}")
    return '"' + "".join(out) + '"' + ("..." if more else "")


def _cstr(mem: Memory, addr: int, limit: int) -> str:
    if addr == 0:
        return "NULL"
    try:
        data = bytes(mem.read_cstring(addr, limit + 1)).split(b"\0", 1)[0]
    except Exception:
        return hex(addr)
    return quote(data[:limit], len(data) > limit)


def _buf(mem: Memory, addr: int, length: int) -> str:
    if addr == 0 and length:
        return "NULL"
    try:
        data = bytes(mem.copy_in(addr, min(length, STRLEN))) if length else b""
    except Exception:
        return hex(addr)
    return quote(data[:STRLEN], length > STRLEN)


# ---- flags and enums -----------------------------------------------------------


def _flags(
    v: int, table: Flags, mask: int = 0, enum: dict[int, str] | None = None, zero: str = "0"
) -> str:
    """``A|B|0x40``: the ``mask`` bits are an enumerated field (O_ACCMODE, MAP_TYPE)."""
    parts = []
    if mask:
        field, v = v & mask, v & ~mask
        if enum is not None and field in enum:
            parts.append(enum[field])
        elif field:
            parts.append(hex(field))
    for name, bit in table:
        if v & bit == bit:
            parts.append(name)
            v &= ~bit
    if v:
        parts.append(hex(v))
    return "|".join(parts) or zero


def _split(names: str, first: int = 0) -> dict[int, str]:
    """Consecutive values starting at ``first``; ``-`` skips a value."""
    return {first + k: n for k, n in enumerate(names.split()) if n != "-"}


def _bits(names: str, first: int = 1) -> Flags:
    """Consecutive single-bit flags starting at ``first``; ``-`` skips a bit."""
    return tuple((n, first << k) for k, n in enumerate(names.split()) if n != "-")


_O_FLAGS: Flags = (("O_SYNC", 0o4010000), ("O_TMPFILE", 0o20200000)) + _bits(
    "O_CREAT O_EXCL O_NOCTTY O_TRUNC O_APPEND O_NONBLOCK O_DSYNC O_ASYNC O_DIRECT"
    " O_LARGEFILE O_DIRECTORY O_NOFOLLOW O_NOATIME O_CLOEXEC - O_PATH",
    0o100,
)
_O_ACC = {0: "O_RDONLY", 1: "O_WRONLY", 2: "O_RDWR"}
_O_CREAT, _O_TMPFILE = 0o100, 0o20000000
_PROT: Flags = _bits("PROT_READ PROT_WRITE PROT_EXEC PROT_SEM") + (
    ("PROT_GROWSDOWN", 0x01000000),
    ("PROT_GROWSUP", 0x02000000),
)
_MAP_TYPE = {1: "MAP_SHARED", 2: "MAP_PRIVATE", 3: "MAP_SHARED_VALIDATE"}
_MAP: Flags = _bits(
    "MAP_FIXED MAP_ANONYMOUS MAP_32BIT - MAP_GROWSDOWN - - MAP_DENYWRITE MAP_EXECUTABLE"
    " MAP_LOCKED MAP_NORESERVE MAP_POPULATE MAP_NONBLOCK MAP_STACK MAP_HUGETLB MAP_SYNC"
    " MAP_FIXED_NOREPLACE",
    0x10,
) + (("MAP_UNINITIALIZED", 0x4000000),)
_AT: Flags = _bits(
    "AT_SYMLINK_NOFOLLOW - AT_SYMLINK_FOLLOW AT_NO_AUTOMOUNT AT_EMPTY_PATH"
    " AT_STATX_FORCE_SYNC AT_STATX_DONT_SYNC AT_RECURSIVE",
    0x100,
)
_CLONE: Flags = _bits(
    "CLONE_VM CLONE_FS CLONE_FILES CLONE_SIGHAND CLONE_PIDFD CLONE_PTRACE CLONE_VFORK"
    " CLONE_PARENT CLONE_THREAD CLONE_NEWNS CLONE_SYSVSEM CLONE_SETTLS CLONE_PARENT_SETTID"
    " CLONE_CHILD_CLEARTID CLONE_DETACHED CLONE_UNTRACED CLONE_CHILD_SETTID CLONE_NEWCGROUP"
    " CLONE_NEWUTS CLONE_NEWIPC CLONE_NEWUSER CLONE_NEWPID CLONE_NEWNET CLONE_IO",
    0x100,
)
_SA: Flags = (
    ("SA_NOCLDSTOP", 1), ("SA_NOCLDWAIT", 2), ("SA_SIGINFO", 4), ("SA_RESTORER", 0x04000000),
    ("SA_ONSTACK", 0x08000000), ("SA_RESTART", 0x10000000), ("SA_NODEFER", 0x40000000),
    ("SA_RESETHAND", 0x80000000),
)  # fmt: skip
_SA_RESTORER = 0x04000000
_WAIT: Flags = (
    ("WNOHANG", 1), ("WUNTRACED", 2), ("WEXITED", 4), ("WCONTINUED", 8), ("WNOWAIT", 0x1000000),
    ("__WNOTHREAD", 0x20000000), ("__WALL", 0x40000000), ("__WCLONE", 0x80000000),
)  # fmt: skip
_FD_FLAGS: Flags = (("O_NONBLOCK", 0o4000), ("O_DIRECT", 0o40000), ("O_CLOEXEC", 0o2000000))
_SOCK_FLAGS: Flags = (("SOCK_NONBLOCK", 0o4000), ("SOCK_CLOEXEC", 0o2000000))

_SIGNAMES = (
    _split(
        "HUP INT QUIT ILL TRAP ABRT BUS FPE KILL USR1 SEGV USR2 PIPE ALRM TERM STKFLT CHLD"
        " CONT STOP TSTP TTIN TTOU URG XCPU XFSZ VTALRM PROF WINCH IO PWR SYS",
        1,
    )
    | {32: "RTMIN"}
    | {32 + k: f"RT_{k}" for k in range(1, 33)}
)
_FUTEX_CMDS = _split(
    "FUTEX_WAIT FUTEX_WAKE FUTEX_FD FUTEX_REQUEUE FUTEX_CMP_REQUEUE FUTEX_WAKE_OP"
    " FUTEX_LOCK_PI FUTEX_UNLOCK_PI FUTEX_TRYLOCK_PI FUTEX_WAIT_BITSET FUTEX_WAKE_BITSET"
    " FUTEX_WAIT_REQUEUE_PI FUTEX_CMP_REQUEUE_PI FUTEX_LOCK_PI2"
)
# How many arguments each futex command uses (strace prints only those).
_FUTEX_ARGC = (4, 3, 3, 5, 6, 6, 4, 2, 2, 6, 6, 5, 6, 4)
_FCNTL_CMDS = _split(
    "F_DUPFD F_GETFD F_SETFD F_GETFL F_SETFL F_GETLK F_SETLK F_SETLKW F_SETOWN F_GETOWN"
    " F_SETSIG F_GETSIG"
) | {15: "F_SETOWN_EX", 16: "F_GETOWN_EX", 36: "F_OFD_GETLK", 37: "F_OFD_SETLK",
     38: "F_OFD_SETLKW"} | _split(
    "F_SETLEASE F_GETLEASE F_NOTIFY - - - F_DUPFD_CLOEXEC F_SETPIPE_SZ F_GETPIPE_SZ"
    " F_ADD_SEALS F_GET_SEALS", 1024)  # fmt: skip
_FCNTL_NOARG = frozenset({1, 3, 9, 11, 1025, 1032, 1034})  # the F_GET* commands
_FCNTL_INTARG = frozenset({0, 8, 10, 1024, 1026, 1030, 1031})
_ENUMS: dict[str, dict[int, str]] = {
    "whence": _split("SEEK_SET SEEK_CUR SEEK_END SEEK_DATA SEEK_HOLE"),
    "sighow": _split("SIG_BLOCK SIG_UNBLOCK SIG_SETMASK"),
    "clockid": _split(
        "CLOCK_REALTIME CLOCK_MONOTONIC CLOCK_PROCESS_CPUTIME_ID CLOCK_THREAD_CPUTIME_ID"
        " CLOCK_MONOTONIC_RAW CLOCK_REALTIME_COARSE CLOCK_MONOTONIC_COARSE CLOCK_BOOTTIME"
        " CLOCK_REALTIME_ALARM CLOCK_BOOTTIME_ALARM - CLOCK_TAI"
    ),
    "rlimres": _split(
        "RLIMIT_CPU RLIMIT_FSIZE RLIMIT_DATA RLIMIT_STACK RLIMIT_CORE RLIMIT_RSS RLIMIT_NPROC"
        " RLIMIT_NOFILE RLIMIT_MEMLOCK RLIMIT_AS RLIMIT_LOCKS RLIMIT_SIGPENDING"
        " RLIMIT_MSGQUEUE RLIMIT_NICE RLIMIT_RTPRIO RLIMIT_RTTIME"
    ),
    "madv": _split(
        "MADV_NORMAL MADV_RANDOM MADV_SEQUENTIAL MADV_WILLNEED MADV_DONTNEED - - - MADV_FREE"
        " MADV_REMOVE MADV_DONTFORK MADV_DOFORK MADV_MERGEABLE MADV_UNMERGEABLE"
        " MADV_HUGEPAGE MADV_NOHUGEPAGE MADV_DONTDUMP MADV_DODUMP MADV_WIPEONFORK"
        " MADV_KEEPONFORK MADV_COLD MADV_PAGEOUT MADV_POPULATE_READ MADV_POPULATE_WRITE"
    ),
    "archcode": {0x1001: "ARCH_SET_GS", 0x1002: "ARCH_SET_FS", 0x1003: "ARCH_GET_FS",
                 0x1004: "ARCH_GET_GS", 0x1011: "ARCH_GET_CPUID", 0x1012: "ARCH_SET_CPUID"},
    "epollop": _split("EPOLL_CTL_ADD EPOLL_CTL_DEL EPOLL_CTL_MOD", 1),
    "who": {0: "RUSAGE_SELF", -1: "RUSAGE_CHILDREN", 1: "RUSAGE_THREAD"},
    "af": {0: "AF_UNSPEC", 1: "AF_UNIX", 2: "AF_INET", 10: "AF_INET6", 16: "AF_NETLINK",
           17: "AF_PACKET"},
    "prctlop": {1: "PR_SET_PDEATHSIG", 2: "PR_GET_PDEATHSIG", 3: "PR_GET_DUMPABLE",
                4: "PR_SET_DUMPABLE", 15: "PR_SET_NAME", 16: "PR_GET_NAME",
                22: "PR_SET_SECCOMP", 23: "PR_CAPBSET_READ", 36: "PR_SET_CHILD_SUBREAPER",
                38: "PR_SET_NO_NEW_PRIVS", 39: "PR_GET_NO_NEW_PRIVS",
                0x53564D41: "PR_SET_VMA"},
    "ioctlreq": {0x5401: "TCGETS", 0x5402: "TCSETS", 0x5403: "TCSETSW", 0x5404: "TCSETSF",
                 0x540E: "TIOCSCTTY", 0x540F: "TIOCGPGRP", 0x5410: "TIOCSPGRP",
                 0x5411: "TIOCOUTQ", 0x5413: "TIOCGWINSZ", 0x5414: "TIOCSWINSZ",
                 0x541B: "FIONREAD", 0x5421: "FIONBIO", 0x5422: "TIOCNOTTY",
                 0x5429: "TIOCGSID", 0x5450: "FIONCLEX", 0x5451: "FIOCLEX",
                 0x5452: "FIOASYNC", 0x80045430: "TIOCGPTN", 0x40045431: "TIOCSPTLCK"},
    "fcntlcmd": _FCNTL_CMDS,
}  # fmt: skip
_FLAG_TABLES: dict[str, Flags] = {
    "prot": _PROT,
    "atflags": _AT,
    "unlinkflags": (("AT_REMOVEDIR", 0x200),),
    "accessatflags": (("AT_EACCESS", 0x200),) + _AT,
    "waitopts": _WAIT,
    "fdflags": _FD_FLAGS,
    "sockflags": _SOCK_FLAGS,
    "epollflags": (("EPOLL_CLOEXEC", 0o2000000),),
    "mremapflags": _bits("MREMAP_MAYMOVE MREMAP_FIXED MREMAP_DONTUNMAP"),
    "msyncflags": _bits("MS_ASYNC MS_INVALIDATE MS_SYNC"),
    "flockop": _bits("LOCK_SH LOCK_EX LOCK_NB LOCK_UN"),
    "access": _bits("X_OK W_OK R_OK"),
    "grnd": _bits("GRND_NONBLOCK GRND_RANDOM GRND_INSECURE"),
    "mfdflags": _bits("MFD_CLOEXEC MFD_ALLOW_SEALING MFD_HUGETLB"),
    "closerange": _bits("- CLOSE_RANGE_UNSHARE CLOSE_RANGE_CLOEXEC"),
    "timerflags": (("TIMER_ABSTIME", 1),),
}
_ZERO = {"prot": "PROT_NONE", "access": "F_OK"}  # names for an empty flag set


def _enum(names: dict[int, str]) -> Formatter:
    return lambda v, a, i, m: names.get(_s32(v), str(_s32(v)))


def _flag_kind(table: Flags, zero: str) -> Formatter:
    return lambda v, a, i, m: _flags(v & 0xFFFFFFFF, table, zero=zero)


def _signame(sig: int) -> str:
    return "SIG" + _SIGNAMES[sig] if sig in _SIGNAMES else str(sig)


def _sigmask(mask: int) -> str:
    """``[INT TERM]``, or ``~[KILL]`` when most signals are in the set, as strace does."""
    members = [s for s in range(1, 65) if mask >> (s - 1) & 1]
    if len(members) > 32:
        absent = [s for s in range(1, 65) if not mask >> (s - 1) & 1]
        return "~[" + " ".join(_SIGNAMES[s] for s in absent) + "]"
    return "[" + " ".join(_SIGNAMES[s] for s in members) + "]"


# ---- kinds that read memory ----------------------------------------------------


def _read(mem: Memory, addr: int, st: struct.Struct) -> tuple[int, ...]:
    return st.unpack(bytes(mem.copy_in(addr, st.size))[: st.size])


def _struct_kind(st: struct.Struct, render: Callable[..., str]) -> Formatter:
    """A pointer to an input struct: decoded, or the pointer if it cannot be read."""

    def fmt(v: int, args: tuple[int, ...], i: int, mem: Memory) -> str:
        if v == 0:
            return "NULL"
        try:
            return render(*_read(mem, v, st))
        except Exception:
            return hex(v)

    return fmt


def _sigaction(handler: int, flags: int, restorer: int, mask: int) -> str:
    h = {0: "SIG_DFL", 1: "SIG_IGN"}.get(handler) or hex(handler)
    text = f"{{sa_handler={h}, sa_mask={_sigmask(mask)}, sa_flags={_flags(flags, _SA)}"
    if flags & _SA_RESTORER:
        text += f", sa_restorer={_ptr(restorer)}"
    return text + "}"


def _rlim(v: int) -> str:
    return "RLIM64_INFINITY" if v == MASK64 else str(v)


def _argv(v: int, args: tuple[int, ...], i: int, mem: Memory) -> str:
    if v == 0:
        return "NULL"
    items: list[str] = []
    try:
        for k in range(MAX_ELEMS + 1):
            (p,) = _read(mem, v + 8 * k, _U64)
            if p == 0:
                break
            items.append("..." if k == MAX_ELEMS else _cstr(mem, p, STRLEN))
    except Exception:
        return hex(v)
    return "[" + ", ".join(items) + "]"


def _envp(v: int, args: tuple[int, ...], i: int, mem: Memory) -> str:
    if v == 0:
        return "NULL"
    try:
        n = next(k for k in range(MAX_ENV) if _read(mem, v + 8 * k, _U64)[0] == 0)
    except Exception:
        return hex(v)
    return f"{hex(v)} /* {n} var{'' if n == 1 else 's'} */"


def _iov(v: int, args: tuple[int, ...], i: int, mem: Memory) -> str:
    """writev's iovec array (the count is the next argument), each buffer quoted."""
    if v == 0:
        return "NULL"
    count = _s32(args[i + 1])
    items = []
    try:
        for k in range(min(max(count, 0), MAX_ELEMS)):
            base, length = _read(mem, v + 16 * k, _UPAIR)
            items.append(f"{{iov_base={_buf(mem, base, length)}, iov_len={length}}}")
    except Exception:
        return hex(v)
    return "[" + ", ".join(items + (["..."] if count > MAX_ELEMS else [])) + "]"


def _fcntl_arg(v: int, args: tuple[int, ...], i: int, mem: Memory) -> str:
    cmd = _s32(args[1])
    if cmd == 2:  # F_SETFD
        return _flags(v & 0xFFFFFFFF, (("FD_CLOEXEC", 1),))
    if cmd == 4:  # F_SETFL
        return _oflags(v)
    return str(_s32(v)) if cmd in _FCNTL_INTARG else _hex(v)


def _oflags(v: int) -> str:
    return _flags(v & 0xFFFFFFFF, _O_FLAGS, 3, _O_ACC)


def _futex_op(v: int) -> str:
    v &= 0xFFFFFFFF
    text = _FUTEX_CMDS.get(v & 0x7F, hex(v & 0x7F)) + ("_PRIVATE" if v & 128 else "")
    rest = v & ~0x1FF
    return text + ("|FUTEX_CLOCK_REALTIME" if v & 256 else "") + (f"|{hex(rest)}" if rest else "")


def _clone_flags(v: int) -> str:
    """CLONE_* bits; the low byte is the exit signal (``...|SIGCHLD``)."""
    sig = v & 0xFF
    text = _flags(v & ~0xFF, _CLONE)
    if not sig:
        return text
    return _signame(sig) if text == "0" else f"{text}|{_signame(sig)}"


def _mode(v: int) -> str:
    """strace's ``%#03o``: 0644, 022, 000."""
    return ("0" + format(v & 0o7777777, "o")).rjust(3, "0")


KINDS: dict[str, Formatter] = {
    "int": lambda v, a, i, m: str(_s32(v)),
    "fd": lambda v, a, i, m: str(_s32(v)),
    "dirfd": lambda v, a, i, m: "AT_FDCWD" if _s32(v) == -100 else str(_s32(v)),
    "uint": lambda v, a, i, m: str(v),
    # uid_t/gid_t: unsigned, but (u32)-1 ("unchanged") shows as -1, as strace prints it
    "id": lambda v, a, i, m: "-1" if v & 0xFFFFFFFF == 0xFFFFFFFF else str(v & 0xFFFFFFFF),
    "long": lambda v, a, i, m: str(_s64(v)),
    "hex": lambda v, a, i, m: _hex(v),
    "ptr": lambda v, a, i, m: _ptr(v),
    "path": lambda v, a, i, m: _cstr(m, v, PATH_MAX),
    "str": lambda v, a, i, m: _cstr(m, v, STRLEN),
    "wbuf": lambda v, a, i, m: _buf(m, v, a[i + 1]),  # length is the next argument
    "rbuf": lambda v, a, i, m: _ptr(v),  # filled by the call: unknown yet
    "oflags": lambda v, a, i, m: _oflags(v),
    "mode": lambda v, a, i, m: _mode(v),
    "mapflags": lambda v, a, i, m: _flags(v & 0xFFFFFFFF, _MAP, 0xF, _MAP_TYPE),
    "cloneflags": lambda v, a, i, m: _clone_flags(v),
    "signal": lambda v, a, i, m: _signame(_s32(v)),
    "futexop": lambda v, a, i, m: _futex_op(v),
    "fcntlarg": _fcntl_arg,
    "socktype": lambda v, a, i, m: _flags(v & 0xFFFFFFFF, _SOCK_FLAGS, 0xF, _split(
        "- SOCK_STREAM SOCK_DGRAM SOCK_RAW SOCK_RDM SOCK_SEQPACKET") | {10: "SOCK_PACKET"}),
    "sigset": _struct_kind(_U64, _sigmask),
    "sigaction": _struct_kind(_SIGACTION, _sigaction),
    "timespec": _struct_kind(_PAIR, lambda s, ns: f"{{tv_sec={s}, tv_nsec={ns}}}"),
    "timeval": _struct_kind(_PAIR, lambda s, us: f"{{tv_sec={s}, tv_usec={us}}}"),
    "rlimit": _struct_kind(_UPAIR, lambda c, m: f"{{rlim_cur={_rlim(c)}, rlim_max={_rlim(m)}}}"),
    "argv": _argv,
    "envp": _envp,
    "iov": _iov,
    **{kind: _enum(names) for kind, names in _ENUMS.items()},
    **{kind: _flag_kind(t, _ZERO.get(kind, "0")) for kind, t in _FLAG_TABLES.items()},
}  # fmt: skip


# Argument kinds per syscall, in x86-64 argument order, written like strace's
# prototypes; parsed once into SIGNATURES (name -> tuple of kinds in KINDS).
_SPEC = """
read(fd, rbuf, uint) write(fd, wbuf, uint) open(path, oflags, mode) close(fd) stat(path, ptr)
fstat(fd, ptr) lstat(path, ptr) poll(ptr, uint, int) lseek(fd, long, whence)
mmap(ptr, uint, prot, mapflags, fd, hex) mprotect(ptr, uint, prot) munmap(ptr, uint) brk(ptr)
rt_sigaction(signal, sigaction, ptr, uint) rt_sigprocmask(sighow, sigset, ptr, uint)
rt_sigreturn() ioctl(fd, ioctlreq, hex) pread64(fd, rbuf, uint, long)
pwrite64(fd, wbuf, uint, long) readv(fd, ptr, int) writev(fd, iov, int) access(path, access)
pipe(ptr) select(int, ptr, ptr, ptr, timeval) sched_yield()
mremap(ptr, uint, uint, mremapflags, ptr) msync(ptr, uint, msyncflags) mincore(ptr, uint, ptr)
madvise(ptr, uint, madv) dup(fd) dup2(fd, fd) pause() nanosleep(timespec, ptr)
getitimer(int, ptr) alarm(uint) setitimer(int, ptr, ptr) getpid() sendfile(fd, fd, ptr, uint)
socket(af, socktype, int) connect(fd, ptr, int) accept(fd, ptr, ptr)
sendto(fd, wbuf, uint, hex, ptr, int) recvfrom(fd, rbuf, uint, hex, ptr, ptr)
sendmsg(fd, ptr, hex) recvmsg(fd, ptr, hex) shutdown(fd, int) bind(fd, ptr, int)
listen(fd, int) getsockname(fd, ptr, ptr) getpeername(fd, ptr, ptr)
socketpair(af, socktype, int, ptr) setsockopt(fd, int, int, ptr, int)
getsockopt(fd, int, int, ptr, ptr) clone(cloneflags, ptr, ptr, ptr, hex) fork() vfork()
execve(path, argv, envp) exit(int) wait4(int, ptr, waitopts, ptr) kill(int, signal) uname(ptr)
fcntl(fd, fcntlcmd, fcntlarg) flock(fd, flockop) fsync(fd) fdatasync(fd) truncate(path, long)
ftruncate(fd, long) getdents(fd, ptr, uint) getcwd(rbuf, uint) chdir(path) fchdir(fd)
rename(path, path) mkdir(path, mode) rmdir(path) creat(path, mode) link(path, path)
unlink(path) symlink(path, path) readlink(path, rbuf, uint) chmod(path, mode) fchmod(fd, mode)
chown(path, id, id) fchown(fd, id, id) lchown(path, id, id) umask(mode)
gettimeofday(ptr, ptr) getrlimit(rlimres, ptr) getrusage(who, ptr) sysinfo(ptr) times(ptr)
getuid() getgid() setuid(id) setgid(id) geteuid() getegid() setpgid(int, int) getppid()
getpgrp() setsid() setreuid(id, id) setregid(id, id) getgroups(int, ptr)
setgroups(int, ptr) setresuid(id, id, id) getresuid(ptr, ptr, ptr) setresgid(id, id, id)
getresgid(ptr, ptr, ptr) getpgid(int) setfsuid(id) setfsgid(id) getsid(int) capget(ptr, ptr)
capset(ptr, ptr) rt_sigpending(ptr, uint) rt_sigtimedwait(sigset, ptr, timespec, uint)
rt_sigsuspend(sigset, uint) sigaltstack(ptr, ptr) utime(path, ptr) personality(hex)
statfs(path, ptr) fstatfs(fd, ptr) prctl(prctlop, hex, hex, hex, hex) arch_prctl(archcode, hex)
setrlimit(rlimres, rlimit) chroot(path) sync() acct(path) settimeofday(ptr, ptr) gettid()
tkill(int, signal) time(ptr) futex(ptr, futexop, int, ptr, ptr, hex)
sched_setaffinity(int, uint, ptr) sched_getaffinity(int, uint, ptr) epoll_create(int)
getdents64(fd, ptr, uint) set_tid_address(ptr) restart_syscall() fadvise64(fd, long, long, int)
clock_settime(clockid, ptr) clock_gettime(clockid, ptr) clock_getres(clockid, ptr)
clock_nanosleep(clockid, timerflags, timespec, ptr) exit_group(int)
epoll_wait(fd, ptr, int, int) epoll_ctl(fd, epollop, fd, ptr) tgkill(int, int, signal)
waitid(int, int, ptr, waitopts, ptr) inotify_init() openat(dirfd, path, oflags, mode)
mkdirat(dirfd, path, mode) mknodat(dirfd, path, mode, hex)
fchownat(dirfd, path, id, id, atflags) newfstatat(dirfd, path, ptr, atflags)
unlinkat(dirfd, path, unlinkflags) renameat(dirfd, path, dirfd, path)
linkat(dirfd, path, dirfd, path, atflags) symlinkat(path, dirfd, path)
readlinkat(dirfd, path, rbuf, uint) fchmodat(dirfd, path, mode) faccessat(dirfd, path, access)
pselect6(int, ptr, ptr, ptr, timespec, ptr) ppoll(ptr, uint, timespec, sigset, uint)
unshare(cloneflags) set_robust_list(ptr, uint) get_robust_list(int, ptr, ptr)
utimensat(dirfd, path, ptr, atflags) epoll_pwait(fd, ptr, int, int, sigset, uint)
timerfd_create(clockid, fdflags) fallocate(fd, int, long, long)
timerfd_settime(fd, int, ptr, ptr) accept4(fd, ptr, ptr, sockflags)
signalfd4(fd, sigset, uint, fdflags) eventfd2(uint, fdflags) epoll_create1(epollflags)
dup3(fd, fd, fdflags) pipe2(ptr, fdflags) inotify_init1(fdflags) preadv(fd, ptr, int, long)
pwritev(fd, iov, int, long) prlimit64(int, rlimres, rlimit, ptr) syncfs(fd)
setns(fd, cloneflags) getcpu(ptr, ptr, ptr) renameat2(dirfd, path, dirfd, path, hex)
seccomp(int, hex, ptr) getrandom(rbuf, uint, grnd) memfd_create(str, mfdflags)
execveat(dirfd, path, argv, envp, atflags) membarrier(int, int)
statx(dirfd, path, atflags, hex, ptr) rseq(ptr, uint, int, hex) pidfd_open(int, int)
clone3(ptr, uint) close_range(uint, uint, closerange)
faccessat2(dirfd, path, access, accessatflags)
sendmmsg(fd, ptr, uint, hex) recvmmsg(fd, ptr, uint, hex, ptr)
"""
SIGNATURES: dict[str, tuple[str, ...]] = {
    m[1]: tuple(m[2].replace(",", " ").split()) for m in re.finditer(r"(\w+)\(([^)]*)\)", _SPEC)
}

# Calls whose argument count depends on another argument, as strace prints them.
_ARGC: dict[str, Callable[[tuple[int, ...]], int]] = {
    "open": lambda a: 3 if a[1] & (_O_CREAT | _O_TMPFILE) else 2,
    "openat": lambda a: 4 if a[2] & (_O_CREAT | _O_TMPFILE) else 3,
    "fcntl": lambda a: 2 if _s32(a[1]) in _FCNTL_NOARG else 3,
    "futex": lambda a: _FUTEX_ARGC[a[1] & 0x7F] if a[1] & 0x7F < len(_FUTEX_ARGC) else 6,
}

# nr -> (name, formatters), resolved once so a bad kind fails at import, not mid-trace.
_PLAN: dict[int, tuple[str, tuple[Formatter, ...]]] = {
    nr: (name, tuple(KINDS[k] for k in SIGNATURES[name]))
    for nr, name in NAMES.items()
    if name in SIGNATURES
}

_HEX_RESULT = frozenset({"mmap", "mremap", "brk", "shmat"})
_NO_RETURN = frozenset({"exit", "exit_group"})
# Python's errno.errorcode picks the other alias for these; strace prints these.
_ERRNAMES = _errno.errorcode | {35: "EDEADLK", 95: "EOPNOTSUPP"}
_RESTART = {
    512: ("ERESTARTSYS", "To be restarted if SA_RESTART is set"),
    513: ("ERESTARTNOINTR", "To be restarted"),
    514: ("ERESTARTNOHAND", "To be restarted if no handler"),
    515: ("ENOIOCTLCMD", "Inappropriate ioctl for device"),
    516: ("ERESTART_RESTARTBLOCK", "Interrupted by signal"),
}


def format_call(nr: int, args: tuple[int, ...], mem: Memory) -> str:
    """``name(arg, ...)`` for a syscall about to run; unknown ones get six hex args."""
    regs = (tuple(a & MASK64 for a in args) + (0,) * 6)[:6]
    plan = _PLAN.get(nr)
    if plan is None:
        name = NAMES.get(nr, f"syscall_{nr}")
        return f"{name}({', '.join(_hex(a) for a in regs)})"
    name, fmts = plan
    argc = _ARGC[name](regs) if name in _ARGC else len(fmts)
    return f"{name}({', '.join(f(regs[i], regs, i, mem) for i, f in enumerate(fmts[:argc]))})"


def format_result(nr: int, ret: int) -> str:
    """`` = 3``, `` = -1 ENOENT (No such file or directory)``, `` = 0x7f...`` for mmap."""
    name = NAMES.get(nr)
    if name in _NO_RETURN:
        return " = ?"
    ret = _s64(ret)
    if -4095 <= ret < 0:
        err = -ret
        if err in _RESTART:
            ename, msg = _RESTART[err]
            return f" = ? {ename} ({msg})"
        return f" = -1 {_ERRNAMES.get(err, str(err))} ({os.strerror(err)})"
    if name in _HEX_RESULT:
        return f" = {_hex(ret & MASK64)}"
    return f" = {ret}"
