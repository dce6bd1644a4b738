"""The Sentry's seccomp allowlist, as a function of the network mode.

Why an allowlist: the Sentry is the part an application attacks first (it
parses every syscall's arguments); if a bug there gave an attacker control of
the Sentry's Python, a denylist would still leave every host syscall nobody
thought to list.  gVisor's Sentry filter (runsc/boot/filter) allows only what
the Sentry is known to call, with argument checks on the calls that could do
harm with other arguments.  This list was found the same way: by running the
suite's workloads under a filter whose default action is SCMP_ACT_LOG and
reading which calls the kernel logged (tests/test_confine_allowlist.py does
that on every run and fails on a call outside this list).

Argument checks, where gVisor has them and they hold for a Python Sentry:

- futex: only the operations the interpreter (private wait/wake, bitset
  waits of pthread condition variables and semaphores) and the stub wait
  protocol (shared WAIT_BITSET/WAKE_BITSET on slots, shm ring wake-ups) use.
- mmap/mprotect: never PROT_EXEC (a Sentry that maps new code is already
  lost); mmap only MAP_SHARED of a descriptor (the memory file, channels) or
  MAP_PRIVATE|MAP_ANONYMOUS for the heap and thread stacks.
- fcntl: the descriptor-flag and status-flag commands and F_DUPFD_CLOEXEC
  (for the descriptors an OCI exec hands over), nothing that locks, leases
  or sets an owner on host files.
- preadv2: only with no flags (RWF_*), as a plain preadv: CPython's
  os.preadv makes it, for reads of a descriptor the Gofer donated
  (gofer/donate.py: read-only regular files, straight into application memory).
- signals to processes (SIGNALS): no host process by number.  kill only
  to the Sentry itself; tgkill only to its own threads (as gVisor's) or
  with the stubs' kick, SIGURG, whose default action is to be ignored, so a
  compromised Sentry can wake but never stop or kill another host process;
  the stubs and the zygote are killed through pidfds it holds
  (pidfd_send_signal), which the zygote sends it for each stub (CLONE_PIDFD)
  and the zygote's own opened at boot.  pidfd_open is off the list: with
  it, any pid would become a pidfd to signal.
- ioctl: only the terminal calls the console bridge makes on the host
  terminal (TCGETS/TCSETS*, TIOCGWINSZ/TIOCSWINSZ) and FIONREAD/FIONBIO.
- socket calls: none that make a socket (socket, socketpair) unless the
  network mode is "host"; sendmsg/recvmsg on the sockets the Sentry already
  holds (the OCI control channel, SCM_RIGHTS from `exec`).

What the network modes add (DESIGN.md §6):

- "none": nothing.
- "sandbox": one packet descriptor opened at boot; read/write/recvmsg/sendmsg/
  poll are already here; ioctl(SIOCGIFNAME), which CPython makes for each
  packet's address (socket(2) stays refused).
- "host": the host-socket calls of runsc's hostinet.
"""

from __future__ import annotations

import errno
import os

# What every Sentry calls once booted (found by the logging run, see above).
BASE = (
    # descriptors it already holds
    "read", "write", "readv", "writev", "pread64", "pwrite64", "preadv", "pwritev",
    "close", "close_range", "dup", "dup2", "dup3", "lseek", "fstat", "newfstatat",
    "ftruncate", "fallocate", "fsync", "fdatasync", "pipe2",
    # memory: the memory file, the heap, thread stacks
    "munmap", "mremap", "madvise", "brk", "membarrier",
    # threads and waiting
    "clone", "clone3", "set_robust_list", "rseq", "exit", "exit_group",
    "gettid", "getpid", "getppid", "sched_yield",
    "sched_getaffinity", "sched_setaffinity", "getpriority", "setpriority",
    "wait4", "waitid", "pidfd_send_signal",  # (pidfds it holds; see SIGNALS)
    "poll", "ppoll", "select", "pselect6", "epoll_create1", "epoll_ctl", "epoll_wait",
    "epoll_pwait", "eventfd2", "restart_syscall",
    # signals (Python's handlers; the console's SIGWINCH and SIGTERM)
    "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "sigaltstack", "rt_sigtimedwait",
    # time
    "clock_gettime", "clock_getres", "clock_nanosleep", "nanosleep", "gettimeofday",
    "getrusage", "times", "timerfd_create", "timerfd_settime", "timerfd_gettime",
    # identity (read only) and limits of its own children
    "getuid", "geteuid", "getgid", "getegid", "getresuid", "getresgid", "getgroups",
    "prlimit64", "getrlimit", "uname", "getrandom", "getcwd", "sysinfo",
    # the control channel and OCI exec's descriptors (sockets it already holds)
    "sendmsg", "recvmsg", "sendto", "recvfrom", "shutdown", "getsockopt",
    "getsockname",  # socket.socket(fileno=...) asks a received socket its family
    # the memory file's sizing
    "memfd_create",
)  # fmt: skip

HOST_NETWORK = (
    "socket", "connect", "bind", "listen", "accept", "accept4", "setsockopt",
    "getpeername", "sendmmsg", "recvmmsg", "socketpair",
)  # fmt: skip

# Killed whatever the default action: a Sentry that opens a host file or runs
# a program after boot is a compromised Sentry.
NEVER = ("open", "openat", "openat2", "execve", "execveat")

NETWORK_MODES = ("none", "sandbox", "host")

# Syscalls whose calls are checked argument by argument below.
FUTEX_OPS = (
    0, 1, 9, 10,  # FUTEX_WAIT, FUTEX_WAKE, FUTEX_WAIT_BITSET, FUTEX_WAKE_BITSET (shared)
    128, 129, 137, 138,  # the same, FUTEX_PRIVATE_FLAG
    0x100 | 9, 0x100 | 137,  # WAIT_BITSET with FUTEX_CLOCK_REALTIME
)
FCNTL_CMDS = (
    0x406,  # F_DUPFD_CLOEXEC
    1, 2,  # F_GETFD, F_SETFD
    3, 4,  # F_GETFL, F_SETFL
    1034,  # F_GETPIPE_SZ (the pipe bridge of a console)
    1033,  # F_ADD_SEALS (a cached program's text sealed read-only, sentry/mm/arena.py)
)
IOCTL_CMDS = (
    0x5401, 0x5402, 0x5403, 0x5404,  # TCGETS, TCSETS, TCSETSW, TCSETSF
    0x5413, 0x5414,  # TIOCGWINSZ, TIOCSWINSZ
    0x541B, 0x5421,  # FIONREAD, FIONBIO
    0x540F,  # TIOCGPGRP
)
# --network=sandbox: CPython asks the interface's name for every AF_PACKET
# address recvmsg returns (makesockaddr), on the packet descriptor.
SANDBOX_IOCTL_CMDS = (0x8910,)  # SIOCGIFNAME
SIGURG = 23  # the stubs' kick (stub.h, STUB_KICK_SIGNAL): ignored by default
PROT_EXEC = 0x4
AF_UNIX = 1
SOCK_SEQPACKET = 5
SOCK_TYPE_MASK = 0xF
MAP_SHARED = 0x01
MAP_PRIVATE = 0x02
MAP_ANONYMOUS = 0x20
MAP_TYPE = 0x0F


def sentry_allowlist(network_mode: str = "none") -> tuple[str, ...]:
    """Every syscall the Sentry may make in ``network_mode`` (besides the
    argument-checked ones: futex, mmap, mprotect, fcntl, ioctl, kill, tgkill)."""
    if network_mode not in NETWORK_MODES:
        raise ValueError(f"unknown network mode {network_mode!r}")
    extra = HOST_NETWORK if network_mode == "host" else ()
    return BASE + extra


def build(network_mode: str = "none", *, default: str = "kill") -> object:
    """The libseccomp filter object (not loaded). ``default``: what a call off
    the list gets: "kill" (the whole Sentry, SCMP_ACT_KILL_PROCESS), "errno"
    (EPERM) or "log" (allowed and logged by the kernel: the discovery mode)."""
    from gofer.seccomp_loader import pyseccomp

    sc = pyseccomp()
    action = {"kill": sc.KILL_PROCESS, "errno": sc.ERRNO(errno.EPERM), "log": sc.LOG}[default]
    f = sc.SyscallFilter(defaction=action)
    for name in sentry_allowlist(network_mode):
        try:
            f.add_rule(sc.ALLOW, name)
        except (ValueError, OSError, RuntimeError):
            continue  # a syscall this architecture does not have
    for op in FUTEX_OPS:
        f.add_rule(sc.ALLOW, "futex", sc.Arg(1, sc.EQ, op))
    # mmap: no code; shared mappings of a descriptor, or private anonymous memory.
    f.add_rule(sc.ALLOW, "mmap", sc.Arg(2, sc.MASKED_EQ, PROT_EXEC, 0),
               sc.Arg(3, sc.MASKED_EQ, MAP_TYPE | MAP_ANONYMOUS, MAP_SHARED))
    f.add_rule(sc.ALLOW, "mmap", sc.Arg(2, sc.MASKED_EQ, PROT_EXEC, 0),
               sc.Arg(3, sc.MASKED_EQ, MAP_TYPE | MAP_ANONYMOUS, MAP_PRIVATE | MAP_ANONYMOUS))
    f.add_rule(sc.ALLOW, "mprotect", sc.Arg(2, sc.MASKED_EQ, PROT_EXEC, 0))
    # Signals by number: only to itself, or the stubs' harmless kick.
    me = os.getpid()
    f.add_rule(sc.ALLOW, "kill", sc.Arg(0, sc.EQ, me))
    f.add_rule(sc.ALLOW, "tgkill", sc.Arg(0, sc.EQ, me))
    f.add_rule(sc.ALLOW, "tgkill", sc.Arg(2, sc.EQ, SIGURG))
    for cmd in FCNTL_CMDS:
        f.add_rule(sc.ALLOW, "fcntl", sc.Arg(1, sc.EQ, cmd))
    f.add_rule(sc.ALLOW, "preadv2", sc.Arg(5, sc.EQ, 0))  # flags (pos_l, pos_h before them)
    if "socketpair" not in sentry_allowlist(network_mode):
        # Each new stub's socket (shared objects' files go over it): an
        # AF_UNIX SOCK_SEQPACKET pair and nothing else.
        f.add_rule(sc.ALLOW, "socketpair", sc.Arg(0, sc.EQ, AF_UNIX),
                   sc.Arg(1, sc.MASKED_EQ, SOCK_TYPE_MASK, SOCK_SEQPACKET))
    for cmd in IOCTL_CMDS + (SANDBOX_IOCTL_CMDS if network_mode == "sandbox" else ()):
        f.add_rule(sc.ALLOW, "ioctl", sc.Arg(1, sc.EQ, cmd))
    if default != "kill":  # (libseccomp refuses a rule that repeats the default)
        for name in NEVER:  # killed even in the discovery modes
            f.add_rule(sc.KILL_PROCESS, name)
    f.set_attr(sc.Attr.CTL_TSYNC, 1)
    f.set_attr(sc.Attr.CTL_NNP, 1)
    return f


def allow_memory_file(f: object, memfd_base: int) -> None:
    """Calls bound to the memory file's descriptors, known only once it is
    made: copy_file_range between its arenas' files (fork's copy of private
    pages), which all have descriptor numbers of at least ``memfd_base``."""
    from gofer.seccomp_loader import pyseccomp

    sc = pyseccomp()
    f.add_rule(sc.ALLOW, "copy_file_range",  # type: ignore[attr-defined]
               sc.Arg(0, sc.GE, memfd_base), sc.Arg(2, sc.GE, memfd_base))
