"""Enter an identity-mapped user namespace (the Sentry, the Gofer, the OCI host).

Why: every privilege the kernel checks against the *initial* user namespace is
gone for good from the moment of entry, whatever the process does later:
mounting filesystems other than the few a user namespace may mount, loading
modules, raw I/O, writing host sysctls, ptrace or signals to host processes
owned by root in the initial namespace, mknod of devices, configuring the
host's network.  runsc's sandbox process lives in a user namespace for the
same reason.

Why the identity map ("0 0 4294967295" for uids and gids) and not runsc's
nobody: the Gofer serves host files of any owner, and the OCI host writes
root's state directory; with every id mapped to itself a file keeps its
owner, the capabilities held in the new namespace still act on it
(capable_wrt_inode_uidgid: the inode's ids are mapped), and SO_PEERCRED
still reports uid 0 for the runtime's CLI (sentry/oci/control_server.py).

Facts this relies on (user_namespaces(7)):

- unshare(CLONE_NEWUSER) is refused to a process with other threads
  (EINVAL) or a chroot (EPERM), and where user namespaces are turned off
  (user.max_user_namespaces=0, ENOSPC) or nested too deep (EUSERS): any
  refusal leaves the caller unchanged, and the caller goes on as before.
- A process may not write a full map for itself: the writer of
  /proc/PID/uid_map must hold CAP_SETUID (CAP_SETGID for gid_map) in the
  *parent* namespace to map ids other than its own.  So a helper is forked
  first, in the parent namespace with the caller's capabilities, waits on a
  pipe while the caller unshares, writes both maps and exits.
- Entering gives the process every capability in the new namespace (and
  an empty inheritable and ambient set): the caller's sets are read before
  and put back right after (:func:`_restore_caps`), so nothing it did not
  hold is gained (a host without CAP_SYS_RESOURCE stays without it, and
  the Sentry shows `runsc.py do`'s program the caller's sets, as before).
- Other namespaces made in the same unshare (CLONE_NEWPID) or later are
  owned by the new user namespace, so the caller keeps every power over them
  (mounting their procfs, pivot_root, its own network namespace).  Joining
  (setns) a namespace owned by the initial namespace needs CAP_SYS_ADMIN
  there: every join is done before this.

``PYVISOR_SENTRY_USER_NS=0`` turns it off.
"""

from __future__ import annotations

import ctypes
import logging
import os
import select
import signal
import time

log = logging.getLogger("pyvisor")

CLONE_NEWUSER = 0x10000000
ENV = "PYVISOR_SENTRY_USER_NS"
IDENTITY_MAP = b"0 0 4294967295\n"
HELPER_TIMEOUT = 10.0
# This process (or the one it was forked from) entered a namespace here.
ENTERED = False


class UserNamespaceError(OSError):
    """The namespace was made but its maps could not be written: the caller
    has no usable ids any more and must stop (one line, no traceback)."""


def enabled() -> bool:
    return os.environ.get(ENV, "1") != "0"


def _single_threaded() -> bool:
    try:
        return len(os.listdir("/proc/self/task")) == 1
    except OSError:
        return False


def _helper(target: int, go: int) -> None:
    """The forked writer: wait for the caller's unshare, map its ids (``target``:
    the caller's /proc/PID directory), exit.
    Exit status 0: both maps written; 1: not told to (the caller's unshare
    failed or it died); 2: a write failed."""
    try:
        if os.read(go, 1) != b"g":
            os._exit(1)
        for name in ("uid_map", "gid_map"):
            fd = os.open(name, os.O_WRONLY, dir_fd=target)
            try:
                os.write(fd, IDENTITY_MAP)
            finally:
                os.close(fd)
    except OSError:
        os._exit(2)
    os._exit(0)


PR_CAPBSET_DROP = 24
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_RAISE = 2
_LINUX_CAPABILITY_VERSION_3 = 0x20080522
_CAP_SETS = ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")


def _read_caps() -> dict[str, int]:
    """This process's capability sets, from /proc/self/status."""
    with open("/proc/self/status") as f:
        return {k: int(v, 16) for k, _, v in (line.partition(":\t") for line in f)
                if k in _CAP_SETS}


def _restore_caps(caps: dict[str, int]) -> None:
    """Cut the sets the new namespace gave back to ``caps`` (the caller's):
    bounding set first (it needs CAP_SETPCAP), then capset, then ambient."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl.argtypes = [ctypes.c_int] + [ctypes.c_ulong] * 4
    have = _read_caps()
    for cap in range(64):
        if have["CapBnd"] >> cap & 1 and not caps["CapBnd"] >> cap & 1:
            if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
                raise OSError(ctypes.get_errno(), f"PR_CAPBSET_DROP {cap}")
    words = b""
    for i in range(2):  # struct __user_cap_data_struct[2]: effective, permitted, inheritable
        for key in ("CapEff", "CapPrm", "CapInh"):
            words += (caps[key] >> (32 * i) & 0xFFFFFFFF).to_bytes(4, "little")
    header = ctypes.create_string_buffer(
        _LINUX_CAPABILITY_VERSION_3.to_bytes(4, "little") + bytes(4))
    if libc.capset(header, ctypes.create_string_buffer(words, len(words))) != 0:
        raise OSError(ctypes.get_errno(), "capset")
    for cap in range(64):
        if caps["CapAmb"] >> cap & 1:
            if libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) != 0:
                raise OSError(ctypes.get_errno(), f"PR_CAP_AMBIENT_RAISE {cap}")


def _reap(pid: int, timeout: float) -> int | None:
    """The helper's exit status, or None if it did not end within ``timeout``
    (it is then killed and reaped)."""
    pidfd = os.pidfd_open(pid)
    try:
        if not select.select([pidfd], [], [], timeout)[0]:
            signal.pidfd_send_signal(pidfd, signal.SIGKILL)
            os.waitpid(pid, 0)
            return None
        _, status = os.waitpid(pid, 0)
        return os.waitstatus_to_exitcode(status)
    finally:
        os.close(pidfd)


def enter(also: int = 0, what: str = "sentry") -> bool:
    """unshare(CLONE_NEWUSER | ``also``) with the identity map written by a
    helper (see the module docstring).  True: entered.  False: nothing
    changed (turned off, threads already, or the kernel refused; one debug
    line says why), and the caller goes on in the user namespace it is in.
    Raises UserNamespaceError if the maps cannot be written."""
    if not enabled():
        return False
    if not _single_threaded():
        log.debug("%s: threads already; no user namespace of its own", what)
        return False
    caps = _read_caps()
    # The caller's /proc/PID directory, opened by the caller: right whatever
    # pid namespace the procfs counts in (a host in its own one is pid 1).
    target = os.open("/proc/self", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    go_r, go_w = os.pipe()
    try:
        pid = os.fork()
    except OSError:
        for fd in (target, go_r, go_w):
            os.close(fd)
        raise
    if pid == 0:  # pragma: no cover - the helper child
        os.close(go_w)
        _helper(target, go_r)
    os.close(go_r)
    os.close(target)
    start = time.monotonic()
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWUSER | also) != 0:
        err = ctypes.get_errno()
        os.close(go_w)  # EOF: the helper exits 1
        _reap(pid, HELPER_TIMEOUT)
        log.debug("%s: no user namespace of its own: %s", what, os.strerror(err))
        return False
    try:
        os.write(go_w, b"g")
    finally:
        os.close(go_w)
    code = _reap(pid, HELPER_TIMEOUT)
    if code != 0:
        why = "timed out" if code is None else "could not write them"
        raise UserNamespaceError(f"{what}: user namespace id maps: the helper {why}")
    try:
        _restore_caps(caps)
    except OSError as exc:
        raise UserNamespaceError(f"{what}: user namespace: {exc.strerror or exc}") from None
    global ENTERED
    ENTERED = True
    log.debug("%s: in an identity-mapped user namespace (%.1f ms)", what,
              (time.monotonic() - start) * 1000)
    return True


# -- a procfs for a pid namespace this user namespace does not own -----------

SYS_OPEN_TREE, SYS_MOVE_MOUNT, SYS_FSOPEN, SYS_FSCONFIG, SYS_FSMOUNT = 428, 429, 430, 431, 432
FSOPEN_CLOEXEC = FSMOUNT_CLOEXEC = 1
FSCONFIG_CMD_CREATE = 6
MOUNT_ATTR_NOSUID, MOUNT_ATTR_NODEV, MOUNT_ATTR_NOEXEC = 0x1, 0x2, 0x8
MOVE_MOUNT_F_EMPTY_PATH = 0x4
AT_FDCWD = -100

# The detached procfs mount made by the OCI host for its Sentry (set in the
# host before it forks the Sentry; sentry/oci/host_userns.py).
PROCFS_FD: int | None = None


def detached_procfs() -> int | None:
    """A new procfs of this process's pid namespace as a mount not attached
    anywhere yet (fsopen/fsmount), or None (one debug line) if the kernel
    refuses.  Why: mounting a procfs needs CAP_SYS_ADMIN over the user
    namespace that owns the pid namespace; an OCI host whose pid namespace
    `create` made (owned by the initial user namespace) makes it before it
    enters its own user namespace, and the Sentry attaches it later, which
    needs power over its own mount namespace only (move_mount(2))."""
    libc = ctypes.CDLL(None, use_errno=True)
    fs = libc.syscall(SYS_FSOPEN, b"proc", FSOPEN_CLOEXEC)
    if fs < 0:
        log.debug("no detached procfs: fsopen: %s", os.strerror(ctypes.get_errno()))
        return None
    try:
        if libc.syscall(SYS_FSCONFIG, fs, FSCONFIG_CMD_CREATE, None, None, 0) < 0:
            log.debug("no detached procfs: fsconfig: %s", os.strerror(ctypes.get_errno()))
            return None
        mnt = libc.syscall(SYS_FSMOUNT, fs, FSMOUNT_CLOEXEC,
                           MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC)
        if mnt < 0:
            log.debug("no detached procfs: fsmount: %s", os.strerror(ctypes.get_errno()))
            return None
        return int(mnt)
    finally:
        os.close(fs)


def attach_procfs(target: bytes) -> int:
    """Attach :data:`PROCFS_FD` on ``target`` and let go of it; 0, or -1
    with errno set (the caller reports it)."""
    fd, globals()["PROCFS_FD"] = PROCFS_FD, None
    assert fd is not None
    libc = ctypes.CDLL(None, use_errno=True)
    ret = libc.syscall(SYS_MOVE_MOUNT, fd, b"", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH)
    err = ctypes.get_errno()
    os.close(fd)
    ctypes.set_errno(err)
    return int(ret)


def drop_procfs() -> None:
    """Close :data:`PROCFS_FD` unused (the Sentry made no mount namespace)."""
    fd, globals()["PROCFS_FD"] = PROCFS_FD, None
    if fd is not None:
        os.close(fd)
