"""The Sentry confines itself once start-up is over, as runsc's sandbox does.

Order (each step needs what the one before still allows):

0. At the start of boot, while the Sentry is still one thread
   (:func:`enter_mount_namespace`): a private mount namespace (a copy of the
   host's tree, no propagation), in which the zygote and stubs are forked too.
1. Namespaces: new ipc, uts and cgroup namespaces, and a new network
   namespace unless the network mode needs the one it is in ("host": host
   sockets; "sandbox": the packet descriptor was opened in it, but a
   descriptor keeps working after its opener changes namespace, so "sandbox"
   leaves too).  These are per thread: the main thread's, inherited by every
   thread it starts afterwards (all task threads).
2. Root: pivot_root onto an empty read-only tmpfs mounted on a fresh
   directory, the old root detached, the directory's host name removed
   (nothing left behind).  Without a mount namespace of its own (the Sentry
   had threads already, or PYVISOR_SENTRY_MOUNT_NS=0), chroot into that
   directory, then remove it.  The root is the process's (threads share one
   fs_struct).
3. Capabilities: the bounding set, then every set, emptied on this thread;
   the task threads started afterwards inherit the empty sets.
4. no_new_privs and the seccomp allowlist (sentry/confine_filters.py), on
   every thread (TSYNC).

Made before this module runs: the user namespace (sentry/userns.py:
entered while the process is one thread, by `runsc.py do` with its pid
namespace in sentry/pidns.py, by an OCI host or Sentry in
sentry/oci/host_userns.py) and the pid namespace (the Sentry is forked into
it).  See docs/security.md.

Facts this relies on (seccomp(2), libseccomp, namespaces(7), capabilities(7)):

- By the time the filter goes on, everything the Sentry needs from the host is
  open: the memory file, the Gofer channel, stdio, the debug log; the zygote is
  forked (stubs are cloned from it, so they never inherit this filter).
- recvmsg/sendmsg/close on sockets the Sentry already holds stay allowed: an
  OCI exec's stdio arrives later as SCM_RIGHTS on the host channel
  (sentry/oci/sentry_ops.py).
- A call off the list kills the whole Sentry (SCMP_ACT_KILL_PROCESS): a Sentry
  that tries to open a host file after boot is a compromised Sentry.
  PYVISOR_SENTRY_SECCOMP=log (or errno) changes that for finding what a new
  Python or a new code path calls; it is read before boot, by this process,
  from its own environment, which the application never reaches.
- Modules must be imported before this point: an import opens files.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import logging
import os

from sentry import confine_filters, pidns, userns

log = logging.getLogger("pyvisor")

CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWNET = 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REC = 0x4000
MS_PRIVATE = 1 << 18
MNT_DETACH = 2
SYS_PIVOT_ROOT = 155  # x86_64
M_ARENA_MAX = -8
M_TRIM_THRESHOLD = -1
PR_CAPBSET_DROP = 24
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
_LINUX_CAPABILITY_VERSION_3 = 0x20080522

FILTER_MODE_ENV = "PYVISOR_SENTRY_SECCOMP"
# "0": keep the host's mount namespace and chroot instead of pivot_root (an
# escape hatch should a host refuse the mount namespace in a way not caught).
MOUNT_NS_ENV = "PYVISOR_SENTRY_MOUNT_NS"
# Network modes that keep the Sentry in the network namespace it was started in.
KEEPS_NETNS = ("host",)


class ConfineError(OSError):
    """A confinement step failed; the Sentry must not run the application."""


def _preimport(network_mode: str, strace: bool) -> None:
    """Import what later code paths import lazily (an import opens files).
    The idna codec (with stringprep, ~400 KB of the Sentry's memory) only
    where host sockets are given names: host network mode; elsewhere the
    Sentry passes host sockets ASCII addresses, which CPython's socket
    module takes without the codec.  The strace formatter (~300 KB) only
    under --strace, which is fixed at boot (Kernel.strace)."""
    if network_mode == "host":
        import encodings.idna  # noqa: F401
    import encodings.latin_1  # noqa: F401
    import encodings.utf_8  # noqa: F401

    if strace:
        import syscalls.strace  # noqa: F401


def _make_empty_dir() -> str:
    """A new empty directory, private to root, under the temporary directory
    (tempfile.mkdtemp without importing tempfile, shutil and random: ~300 KB
    of the Sentry's memory for one directory)."""
    bases = [d for d in (os.environ.get("TMPDIR"), "/tmp", "/var/tmp") if d and os.path.isdir(d)]
    err: OSError = FileNotFoundError(errno.ENOENT, "no temporary directory for the empty root")
    for base in bases:
        for _ in range(100):
            path = os.path.join(base, "pyvisor-root-" + os.urandom(6).hex())
            try:
                os.mkdir(path, 0o700)
            except FileExistsError:
                continue
            except OSError as exc:  # not writable here: the next candidate, as mkdtemp
                err = exc
                break
            return path
    raise err


def _no_source_lines() -> None:
    """Tracebacks stop reading source files: logging one (a contained handler
    exception, sentry/kernel/contain.py) goes through linecache, whose open()
    the filter answers by killing the Sentry. Frames keep file and line."""
    import linecache

    linecache.clearcache()
    linecache.updatecache = lambda *args, **kwargs: []  # type: ignore[assignment]
    linecache.checkcache = lambda *args, **kwargs: None  # type: ignore[assignment]
    linecache.lazycache = lambda *args, **kwargs: False  # type: ignore[assignment]


class Prepared:
    """What confine_sentry needs, made while the Gofer starts: the filter
    (~5-10 ms of libseccomp work, off the path `create` waits on) and /proc
    facts read while /proc is still reachable."""

    def __init__(self, network_mode: str, mode: str, own_mntns: bool,
                 strace: bool = True) -> None:
        _preimport(network_mode, strace)
        self.network_mode = network_mode
        self.own_mntns = own_mntns
        self.filter = confine_filters.build(network_mode, default=mode)
        # Made in confine_sentry, just before it is entered and removed: a
        # Sentry killed during boot leaves nothing behind on the host.
        self.empty = ""
        try:
            with open("/proc/sys/kernel/cap_last_cap") as f:
                self.last_cap = int(f.read())
        except (OSError, ValueError):
            self.last_cap = 63
        self.libc = ctypes.CDLL(None, use_errno=True)
        # glibc's malloc opens files on two thread-arena paths, which the
        # filter kills the Sentry for: /sys/devices/system/cpu/online when a
        # thread first needs a new arena (unless the arena limit is set), and
        # /proc/sys/vm/overcommit_memory when a thread arena's heap first
        # shrinks (heap_trim, only past the trim threshold). So: no new
        # arenas (threads share the ones that exist; the interpreter's lock
        # serializes allocation anyway), and a trim threshold no heap reaches
        # (heaps are at most 64 MiB). malloc_trim still gives pages back.
        self.libc.mallopt(M_ARENA_MAX, 1)
        self.libc.mallopt(M_TRIM_THRESHOLD, 1 << 30)

    def discard(self) -> None:
        """Remove the empty directory when confinement does not happen."""
        if self.empty:
            with contextlib.suppress(OSError):
                os.rmdir(self.empty)  # made empty, and nothing put in it
            self.empty = ""


def prepare_filter(network_mode: str = "none", *, own_mntns: bool = False,
                   strace: bool = True) -> Prepared:
    """Build what confinement needs (not applied yet); see :class:`Prepared`.
    ``own_mntns``: :func:`enter_mount_namespace` succeeded; ``strace``: the
    Sentry will format system calls (its module is imported now)."""
    mode = os.environ.get(FILTER_MODE_ENV, "kill")
    if mode not in ("kill", "errno", "log"):
        mode = "kill"
    return Prepared(network_mode, mode, own_mntns, strace)


def enter_mount_namespace() -> bool:
    """A private mount namespace for the Sentry (and the zygote and stubs it
    forks), made at the start of boot: unshare(CLONE_NEWNS) needs a process
    whose threads do not share its fs_struct, i.e. one thread.  The tree is
    the host's copy, private (no propagation either way), until
    :func:`confine_sentry` pivots into an empty root.  False: not made
    (threads already, not privileged, or turned off by PYVISOR_SENTRY_MOUNT_NS=0)."""
    if not _unshare_mount_namespace():
        userns.drop_procfs()
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mount.argtypes = [ctypes.c_char_p] * 3 + [ctypes.c_ulong, ctypes.c_char_p]
    _check(libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None), "make / private")
    if pidns.procfs_is_foreign():
        # In a pid namespace of its own (init of it with `runsc.py do`,
        # sentry/pidns.py; pid 2 under an OCI sandbox host,
        # sentry/oci/namespaces.py): a procfs of that namespace, so /proc/PID
        # means what pid PID means to the Sentry (placement pins its threads
        # and the Gofer's by /proc/PID/task), and no host process is listed.
        # An OCI host in a user namespace made that procfs before entering
        # it (the namespace's root may not: sentry/userns.py).
        if userns.PROCFS_FD is not None:
            _check(userns.attach_procfs(b"/proc"), "attach the pid namespace's /proc")
        else:
            _check(libc.mount(b"proc", b"/proc", b"proc", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                              None), "mount the pid namespace's /proc")
    return True


def _unshare_mount_namespace() -> bool:
    if os.environ.get(MOUNT_NS_ENV) == "0":
        return False
    try:
        if len(os.listdir("/proc/self/task")) != 1:
            log.debug("sentry: threads already; no mount namespace of its own")
            return False
    except OSError:
        return False
    if ctypes.CDLL(None, use_errno=True).unshare(CLONE_NEWNS) < 0:
        log.debug("sentry: no mount namespace: %s", os.strerror(ctypes.get_errno()))
        return False
    return True


def _check(ret: int, what: str) -> None:
    if ret < 0:
        err = ctypes.get_errno()
        raise ConfineError(err, f"sentry confinement: {what}: {os.strerror(err)}")


def enter_namespaces(p: Prepared) -> None:
    """New ipc, uts, cgroup (and network) namespaces for this thread and the
    threads it starts from now on."""
    flags = CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWCGROUP
    if p.network_mode not in KEEPS_NETNS:
        flags |= CLONE_NEWNET
    if p.libc.unshare(flags) < 0:
        err = ctypes.get_errno()
        if err != errno.EPERM:
            _check(-1, "unshare")
        log.debug("sentry: no new namespaces (not privileged)")


def enter_empty_root(p: Prepared) -> None:
    """Make the prepared directory the root: pivot_root onto an empty
    read-only tmpfs mounted there when the Sentry has its own mount namespace
    (the old root detached: no path leads back), else chroot into it."""
    if p.own_mntns:
        libc = p.libc
        libc.mount.argtypes = [ctypes.c_char_p] * 3 + [ctypes.c_ulong, ctypes.c_char_p]
        libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
        flags = MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC
        _check(libc.mount(b"none", os.fsencode(p.empty), b"tmpfs", flags,
                          b"size=4k,nr_inodes=1,mode=0555"), "mount the empty root")
        os.chdir(p.empty)
        _check(libc.syscall(ctypes.c_long(SYS_PIVOT_ROOT), b".", b"."), "pivot_root")
        _check(libc.umount2(b".", MNT_DETACH), "detach the old root")
        os.chdir("/")
        return
    fd = os.open(p.empty, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fchdir(fd)
        os.chroot(".")
        os.chdir("/")
    finally:
        os.close(fd)


def drop_capabilities(p: Prepared) -> None:
    """Empty the bounding, ambient, effective, permitted and inheritable sets."""
    libc = p.libc
    libc.prctl.argtypes = [ctypes.c_int] + [ctypes.c_ulong] * 4
    for cap in range(p.last_cap + 1):
        if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0:
            if ctypes.get_errno() != errno.EPERM:  # EPERM: no CAP_SETPCAP, not root
                _check(-1, f"PR_CAPBSET_DROP {cap}")
            break
    _check(libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0), "ambient clear")
    header = ctypes.create_string_buffer(
        _LINUX_CAPABILITY_VERSION_3.to_bytes(4, "little") + bytes(4))
    data = ctypes.create_string_buffer(24)
    _check(libc.capset(header, data), "capset")


def confine_sentry(prepared: Prepared | None = None, *, memfd_base: int | None = None) -> None:
    """Apply every step (see the module docstring); raises ConfineError if a
    step the host supports fails.  ``memfd_base``: the lowest descriptor
    number of the memory file's arenas (sentry/mm/memfile.py), the files the
    Sentry copies pages between (fork's copy of private memory)."""
    p = prepared if prepared is not None else prepare_filter()
    if memfd_base is not None:
        confine_filters.allow_memory_file(p.filter, memfd_base)
    enter_namespaces(p)
    # The empty directory's name is removed through its parent's descriptor,
    # opened while the host's tree is still the root.
    p.empty = _make_empty_dir()
    parent, name = os.path.split(p.empty)
    parent_fd = os.open(parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        try:
            enter_empty_root(p)
        except PermissionError:
            log.debug("sentry: no chroot (not privileged)")
        os.rmdir(name, dir_fd=parent_fd)
        p.empty = ""
    finally:
        os.close(parent_fd)
    drop_capabilities(p)
    _no_source_lines()
    p.filter.load()  # type: ignore[attr-defined]
