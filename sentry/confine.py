"""The Sentry confines itself once start-up is over, as runsc's sandbox does.

Order (each step needs what the one before still allows):

1. Namespaces: new ipc, uts and cgroup namespaces, and a new network
   namespace unless the network mode needs the one it is in ("host": host
   sockets; "sandbox": the packet descriptor was opened in it, but a descriptor
   keeps working after the opener changes namespace, so "sandbox" leaves too).
   A new pid namespace takes effect for children only; the stubs are cloned by
   the zygote, forked earlier, so it would change nothing and is not made.
2. Root: chroot into an empty directory that no longer exists (made with
   mkdtemp, entered, removed): no path leads anywhere, nothing can be created
   in it, and nothing is left behind on the host.  The root is the process's
   (all threads share one fs_struct), unlike the namespaces and capabilities,
   which are per thread.
3. Capabilities: the bounding set, then every set, emptied on this thread;
   the task threads started afterwards inherit the empty sets.
4. no_new_privs and the seccomp allowlist (sentry/confine_filters.py), on
   every thread (TSYNC).

Why not user and mount namespaces and pivot_root here: unshare(CLONE_NEWUSER)
and unshare(CLONE_NEWNS) refuse (EINVAL) a process whose threads share its
fs_struct, which every Python thread does, and by this point the Sentry has
threads (the Gofer client, the worker pool, OCI's control server).  They need
the Sentry started as a separate, single-threaded process (runsc re-executes
itself for this); see docs/security.md for what is and is not done.

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

import ctypes
import errno
import logging
import os
import shutil
import tempfile

from sentry import confine_filters

log = logging.getLogger("pyvisor")

CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWNET = 0x40000000
M_ARENA_MAX = -8
PR_CAPBSET_DROP = 24
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
_LINUX_CAPABILITY_VERSION_3 = 0x20080522

FILTER_MODE_ENV = "PYVISOR_SENTRY_SECCOMP"
# Network modes that keep the Sentry in the network namespace it was started in.
KEEPS_NETNS = ("host",)


class ConfineError(OSError):
    """A confinement step failed; the Sentry must not run the application."""


def _preimport() -> None:
    """Import what later code paths import lazily (an import opens files)."""
    import encodings.idna  # noqa: F401
    import encodings.latin_1  # noqa: F401
    import encodings.utf_8  # noqa: F401

    import syscalls.strace  # noqa: F401


class Prepared:
    """What confine_sentry needs, made while the Gofer starts: the filter
    (~5-10 ms of libseccomp work, off the path `create` waits on), the empty
    directory, and /proc facts read while /proc is still reachable."""

    def __init__(self, network_mode: str, mode: str) -> None:
        _preimport()
        self.network_mode = network_mode
        self.filter = confine_filters.build(network_mode, default=mode)
        self.empty = tempfile.mkdtemp(prefix="pyvisor-root-")
        try:
            with open("/proc/sys/kernel/cap_last_cap") as f:
                self.last_cap = int(f.read())
        except (OSError, ValueError):
            self.last_cap = 63
        self.libc = ctypes.CDLL(None, use_errno=True)
        # glibc's malloc reads /sys/devices/system/cpu/online the first time a
        # thread needs a new arena unless the arena limit is set: set it to
        # glibc's own default (8 per CPU) while files can still be opened.
        self.libc.mallopt(M_ARENA_MAX, 8 * (os.cpu_count() or 1))

    def discard(self) -> None:
        """Remove the empty directory when confinement does not happen."""
        if self.empty:
            shutil.rmtree(self.empty, ignore_errors=True)
            self.empty = ""


def prepare_filter(network_mode: str = "none") -> Prepared:
    """Build what confinement needs (not applied yet); see :class:`Prepared`."""
    mode = os.environ.get(FILTER_MODE_ENV, "kill")
    if mode not in ("kill", "errno", "log"):
        mode = "kill"
    return Prepared(network_mode, mode)


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
    """chroot into the prepared directory, then remove it: an empty root that
    is gone from the host (see the module docstring)."""
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


def confine_sentry(prepared: Prepared | None = None, *, memfd: int | None = None) -> None:
    """Apply every step (see the module docstring); raises ConfineError if a
    step the host supports fails.  ``memfd``: the memory file's descriptor,
    the one the Sentry copies pages within (fork's copy of private memory)."""
    p = prepared if prepared is not None else prepare_filter()
    if memfd is not None:
        confine_filters.allow_memory_file(p.filter, memfd)
    enter_namespaces(p)
    # The empty directory's name is removed through its parent's descriptor,
    # opened while the host's tree is still the root.
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
    p.filter.load()  # type: ignore[attr-defined]
