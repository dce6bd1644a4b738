"""Confine the Gofer process to the tree it serves (DESIGN.md, trust boundary 4).

Four layers, so that a bug in the file server (or in Python) still cannot reach
host files outside the container root:

1. a private mount namespace whose root is the served directory (pivot_root;
   chroot when pivot_root is impossible),
2. capabilities cut to what serving files as root needs,
3. no_new_privs,
4. a seccomp allowlist (libseccomp through pyseccomp): no execve, no sockets, no
   ptrace, no mount, no namespace or root changes, no memory made executable.

Under all four, the user namespace it is born in: the Sentry's identity-mapped
one (sentry/userns.py; the Gofer is forked after the Sentry entered it; none
with --network=host), so its capabilities reach nothing the initial user
namespace guards.

Facts about this kernel API (what the kernel guarantees, what surprised us):

* ``unshare(CLONE_NEWNS)`` copies the mount tree, but with the propagation of
  the host: a mount we make would propagate back to the host's shared mounts.
  Hence ``mount(NULL, "/", NULL, MS_REC|MS_PRIVATE)`` first.
* ``pivot_root(new, old)`` needs ``new`` to be a mount point that is not the
  current root's mount, and refuses (EINVAL) when the current root is the
  initramfs "rootfs". Bind-mounting the directory onto itself makes it a mount
  point; ``pivot_root(".", ".")`` then stacks the old root on top of the new one
  and ``umount2(".", MNT_DETACH)`` removes it, so no path and no ".." leads out
  any more. After that, a descriptor opened before the pivot still points into
  the detached old tree: the caller must reopen "/" and close the old root fd.
* chroot alone is weaker (a process with CAP_SYS_CHROOT and a directory fd
  outside the root can walk out), so when it is the fallback CAP_SYS_CHROOT is
  dropped and the chroot syscall is not in the seccomp allowlist.
* The capability bounding set can only shrink, with ``PR_CAPBSET_DROP``, which
  needs CAP_SETPCAP: drop the bounding set before capset() removes SETPCAP.
  capset() takes a version-3 header and two 32-bit data words (caps 0-31 and
  32-63).
* ``PR_SET_NO_NEW_PRIVS`` is inherited and irreversible; it is also what lets a
  process without CAP_SYS_ADMIN load a seccomp filter.
* A seccomp filter applies to the calling thread only unless loaded with TSYNC
  (libseccomp sets it); the Gofer is single-threaded anyway. Filters survive
  execve, but execve is denied.
* Python needs more syscalls than the file server itself: anything imported
  after the filter may need openat/newfstatat/getdents64 on its source (fine:
  allowed, and confined to the new root where it is not found), and the
  interpreter calls getrandom, sigaltstack, ioctl(TCGETS) on odd paths. Import
  every module the serve loop needs BEFORE loading the filter (serve() does).
  The list below was found by running the test suite under strace with the
  filter in ERRNO mode, then checked with the filter in KILL mode.
* Bind mounts (gofer/fids.py ``Attach``) are served from descriptors opened
  before ``enter_root``: after pivot_root and the detach of the old root they
  still name their directories (a detached mount stays usable through open
  descriptors), while no path in the new root leads to them. Walks from them
  are one O_NOFOLLOW name at a time, and ".." is answered from remembered
  names, so they are no ladder out. Writable binds need no syscall beyond the
  list below: creating, writing, truncating, renaming, linking, removing and
  chmod/chown/utimes were already there for the root's write path (openat
  with O_CREAT, pwrite64, ftruncate, renameat, linkat, unlinkat, mkdirat,
  symlinkat, mknodat, fchmodat2, fchownat, utimensat); a file bind's I/O
  descriptor is duplicated with fcntl(F_DUPFD_CLOEXEC), also listed.
* /proc/PID/status shows ``Seccomp: 2`` (filter mode) and ``NoNewPrivs: 1``;
  /proc/PID/root of the Gofer shows the served directory.
"""

from __future__ import annotations

import ctypes
import errno
import logging
import os
import struct

log = logging.getLogger("pyvisor.gofer")

CLONE_NEWNS = 0x00020000
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18
MNT_DETACH = 2
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
_LINUX_CAPABILITY_VERSION_3 = 0x20080522

CAP_CHOWN = 0
CAP_DAC_OVERRIDE = 1
CAP_DAC_READ_SEARCH = 2
CAP_FOWNER = 3
CAP_FSETID = 4
KEEP_CAPS = (CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER, CAP_FSETID)
"""Serving files as root: bypass permission checks (the Sentry enforces them),
chown new files to the caller, keep setgid bits, link by descriptor."""

_SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41}

ALLOWED_SYSCALLS = (
    # the file server's own work
    "read", "write", "pread64", "pwrite64", "preadv", "pwritev", "preadv2", "pwritev2",
    "readv", "writev",
    "openat", "close", "fstat", "newfstatat", "statx", "getdents64", "lseek",
    "fchmod", "fchmodat", "fchmodat2", "fchown", "fchownat", "utimensat", "ftruncate",
    "mkdirat", "symlinkat", "mknodat", "linkat", "renameat", "renameat2", "unlinkat",
    "readlinkat", "fsync", "fdatasync", "fstatfs", "statfs", "dup", "fcntl", "fadvise64",
    # the shm channel: futex-based semaphores, pidfd liveness, clocks
    "futex", "clock_gettime", "clock_nanosleep", "nanosleep", "gettimeofday",
    "pidfd_open", "poll", "ppoll",
    # the interpreter
    "mmap", "munmap", "mremap", "mprotect", "brk", "madvise",
    "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "sigaltstack",
    "getpid", "gettid", "getuid", "geteuid", "getgid", "getegid", "getppid",
    "getrandom", "sched_yield", "sched_getaffinity", "restart_syscall",
    "exit", "exit_group",
)  # fmt: skip
_NO_EXEC_MEMORY = ("mmap", "mprotect")  # allowed only without PROT_EXEC
_PROT_EXEC = 4

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p] * 3 + [ctypes.c_ulong, ctypes.c_void_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.prctl.argtypes = [ctypes.c_int] + [ctypes.c_ulong] * 4
_libc.syscall.restype = ctypes.c_long


class ConfineError(OSError):
    """A confinement step failed; the Gofer must not serve unconfined."""


def _check(ret: int, what: str) -> None:
    if ret < 0:
        err = ctypes.get_errno()
        raise ConfineError(err, f"{what}: {os.strerror(err)}")


def _mount(src: str | None, target: str, fstype: str | None, flags: int) -> None:
    def enc(s: str | None) -> bytes | None:
        return None if s is None else os.fsencode(s)

    _check(_libc.mount(enc(src), enc(target), enc(fstype), flags, None), f"mount {target}")


def enter_root(root_fd: int) -> str:
    """Make the directory behind ``root_fd`` this process's "/" in a private
    mount namespace. Returns "pivot_root" or "chroot" (what worked)."""
    _check(_libc.unshare(CLONE_NEWNS), "unshare(CLONE_NEWNS)")
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    want = os.fstat(root_fd)
    nr = _SYS_PIVOT_ROOT.get(os.uname().machine)
    try:
        if nr is None:
            raise ConfineError(errno.ENOSYS, "pivot_root: unknown architecture")
        path = os.readlink(f"/proc/self/fd/{root_fd}")
        _mount(path, path, None, MS_BIND | MS_REC)
        os.chdir(path)  # into the bind mount, not the directory beneath it
        here = os.stat(".")
        if (here.st_dev, here.st_ino) != (want.st_dev, want.st_ino):
            raise ConfineError(errno.ESTALE, f"{path} changed under us")
        _check(_libc.syscall(ctypes.c_long(nr), b".", b"."), "pivot_root")
        _check(_libc.umount2(b".", MNT_DETACH), "umount2(old root)")
        os.chdir("/")
        return "pivot_root"
    except OSError as exc:
        log.warning("gofer: pivot_root failed (%s); falling back to chroot", exc)
    os.fchdir(root_fd)
    os.chroot(".")
    os.chdir("/")
    return "chroot"


def cap_last_cap() -> int:
    """The highest capability this kernel knows (read it while /proc is visible)."""
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            return int(f.read())
    except (OSError, ValueError):
        return 63


def drop_capabilities(keep: tuple[int, ...] = KEEP_CAPS, last: int = 63) -> None:
    """Shrink bounding, ambient, effective, permitted and inheritable sets to
    ``keep``. Capabilities above what the kernel knows (EINVAL) end the loop."""
    for cap in range(last + 1):
        if cap in keep:
            continue
        if _libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0:
            if ctypes.get_errno() == errno.EINVAL and cap > CAP_FSETID:
                break
            _check(-1, f"PR_CAPBSET_DROP {cap}")
    _check(_libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0), "ambient clear")
    mask = sum(1 << c for c in keep)
    header = ctypes.create_string_buffer(struct.pack("=Ii", _LINUX_CAPABILITY_VERSION_3, 0))
    lo, hi = mask & 0xFFFF_FFFF, mask >> 32
    data = ctypes.create_string_buffer(struct.pack("=6I", lo, lo, 0, hi, hi, 0))
    _check(_libc.capset(header, data), "capset")


def no_new_privs() -> None:
    """Never gain privileges again (setuid binaries, file caps); needed for seccomp."""
    _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "PR_SET_NO_NEW_PRIVS")


def install_seccomp(action: str = "kill", late_fd: int = -1, donate_fd: int = -1) -> None:
    """Load the allowlist; anything else kills the Gofer ("kill"), fails with
    EPERM ("errno") or is allowed and logged by the kernel ("log", for finding
    what a new Python needs).  ``late_fd``: the socket a pod's later trees come
    on (gofer/late.py), the one descriptor recvmsg is allowed on."""
    from gofer.seccomp_loader import pyseccomp

    seccomp = pyseccomp()
    default = {
        "kill": seccomp.KILL_PROCESS,
        "errno": seccomp.ERRNO(errno.EPERM),
        "log": seccomp.LOG,
    }[action]
    flt = seccomp.SyscallFilter(default)
    for name in ALLOWED_SYSCALLS:
        try:
            if name in _NO_EXEC_MEMORY:
                flt.add_rule(seccomp.ALLOW, name, seccomp.Arg(2, seccomp.MASKED_EQ, _PROT_EXEC, 0))
            else:
                flt.add_rule(seccomp.ALLOW, name)
        except (OSError, RuntimeError, ValueError):  # a name this libseccomp lacks
            log.debug("gofer: seccomp has no syscall %s", name)
    # ioctl only for the terminal queries Python makes on stderr (TCGETS).
    flt.add_rule(seccomp.ALLOW, "ioctl", seccomp.Arg(1, seccomp.EQ, 0x5401))
    if late_fd >= 0:
        flt.add_rule(seccomp.ALLOW, "recvmsg", seccomp.Arg(0, seccomp.EQ, late_fd))
    if donate_fd >= 0:  # read-only descriptors to the Sentry (gofer/donate.py), on that socket only
        flt.add_rule(seccomp.ALLOW, "sendmsg", seccomp.Arg(0, seccomp.EQ, donate_fd))
    flt.load()


def confine(root_fd: int, *, seccomp_action: str = "kill", late_fd: int = -1,
            donate_fd: int = -1) -> str:
    """Confine this process to the tree under ``root_fd``; raise ConfineError
    if any step fails (the caller must then exit, not serve). Returns how the
    root was entered ("pivot_root" or "chroot"). Must run as root, before any
    thread is started, after every module the serve loop needs is imported."""
    from gofer.seccomp_loader import pyseccomp

    pyseccomp()  # imported while files outside the root are reachable

    last = cap_last_cap()
    how = enter_root(root_fd)
    drop_capabilities(last=last)
    no_new_privs()
    install_seccomp(seccomp_action, late_fd, donate_fd)
    return how
