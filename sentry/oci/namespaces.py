"""Join the host namespaces a bundle's ``linux.namespaces`` names by path.

Why: the OCI state's ``pid`` is the sandbox host, and tools (the runtime
validation suite, podman and Kubernetes pods sharing a namespace, ``nsenter``)
look at ``/proc/PID/ns/*`` to see the container's namespaces.  runc joins
each path given; so does this, in the sandbox host before it forks the Sentry,
so the Sentry, the Gofer and the stubs are in them too.  The application sees
only the Sentry's own namespaces either way.

Facts (setns(2), ioctl_ns(2)): a path must be a namespace file of the type
named, which NS_GET_NSTYPE tells (a wrong one is a one-line error naming the
field, as runc refuses it); setns acts on the calling thread, so this runs
while the host is single-threaded; every path is opened before any is joined
(a joined mount namespace changes what later paths name).  A time namespace
applies to children only: the Sentry, forked next, is in it.
Joining a user namespace is refused with a clear error: the sandbox's files
need the identity map (sentry/userns.py), which a namespace made by someone
else does not have.

A type listed without a path is a new namespace for the host, as runc makes
one for the container's process: ipc, uts and mount here (:func:`unshare`),
cgroup once the host sits in its cgroups (:func:`unshare_cgroup`), network in
sentry/oci/netns.py, user last of all, identity-mapped, once the host needs
no privilege of the initial user namespace any more (sentry/oci/host_userns.py;
the Sentry shows the application the config's id maps).

The pid namespace is `create`'s to set (:func:`host_born_in_pid_namespace`):
a process never changes its own pid namespace, unshare(CLONE_NEWPID) and
setns(CLONE_NEWPID) only choose where the caller's next child is born
(pid_namespaces(7)), so the sandbox host, the state's pid that a shim waits
on, must be *born* in it, as runc's container process is.  With a new one
the host is its pid 1 and the Sentry, Gofer, zygote and stubs it forks live
in it too; the host's os.getpid() is then 1, so every pid it hands the host
(state.json, the hooks' state) is its host pid (shm.layout.host_view_pid).
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import os
from collections.abc import Iterator

NS_GET_NSTYPE = 0xB703  # _IO(0xb7, 0x3)
CLONE_FLAGS = {
    "mount": 0x00020000, "uts": 0x04000000, "ipc": 0x08000000, "user": 0x10000000,
    "pid": 0x20000000, "network": 0x40000000, "cgroup": 0x02000000, "time": 0x00000080,
}
# Joined by the host in this order (runc's, less user and pid: pid is
# create's, host_born_in_pid_namespace): mount last, as it changes paths.
JOIN_ORDER = ("ipc", "uts", "network", "cgroup", "time", "mount")


class NamespaceError(Exception):
    """A one-line reason a namespace path cannot be joined."""


def _where(kind: str) -> str:
    return f"linux.namespaces[type={kind}].path"


def _open_checked(kind: str, path: str) -> int:
    """An fd of ``path``, checked to be a ``kind`` namespace."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise NamespaceError(f"{_where(kind)}: {path}: {exc.strerror}") from None
    try:
        actual = fcntl.ioctl(fd, NS_GET_NSTYPE)
    except OSError:
        os.close(fd)
        raise NamespaceError(f"{_where(kind)}: {path} is not a namespace file") from None
    if actual != CLONE_FLAGS[kind]:
        os.close(fd)
        named = next((k for k, v in CLONE_FLAGS.items() if v == actual), hex(actual))
        raise NamespaceError(f"{_where(kind)}: {path} is a {named} namespace, not {kind}")
    return fd


def check_paths(namespaces: dict[str, str | None]) -> None:
    """Every path given names a namespace of its type (``create`` calls this
    before starting anything, so a wrong one leaves nothing behind)."""
    for kind, path in namespaces.items():
        if path is not None:
            os.close(_open_checked(kind, path))


def _unshare(flags: int, what: str) -> None:
    if flags and ctypes.CDLL(None, use_errno=True).unshare(flags) != 0:
        err = ctypes.get_errno()
        raise NamespaceError(f"new {what} namespace: {os.strerror(err)}")


def _setns(fd: int, kind: str, what: str) -> None:
    """setns(2) of the calling thread into ``fd``, a ``kind`` namespace;
    NamespaceError naming ``what`` when the kernel refuses."""
    if ctypes.CDLL(None, use_errno=True).setns(fd, CLONE_FLAGS[kind]) != 0:
        err = ctypes.get_errno()
        raise NamespaceError(f"{what}: {os.strerror(err)}")


def unshare(namespaces: dict[str, str | None]) -> None:
    """New ipc, uts and mount namespaces for those listed without a path."""
    kinds = [k for k in ("ipc", "uts", "mount") if k in namespaces and namespaces[k] is None]
    flags = 0
    for kind in kinds:
        flags |= CLONE_FLAGS[kind]
    _unshare(flags, "/".join(kinds))


def unshare_cgroup(namespaces: dict[str, str | None]) -> None:
    """A new cgroup namespace if listed without a path (after the cgroups are
    joined: its root is then the container's cgroup, as runc's is)."""
    if "cgroup" in namespaces and namespaces["cgroup"] is None:
        _unshare(CLONE_FLAGS["cgroup"], "cgroup")


@contextlib.contextmanager
def host_born_in_pid_namespace(namespaces: dict[str, str | None]) -> Iterator[None]:
    """While in this block, the calling thread's children are born in the
    container's pid namespace: a new one (the first child is its pid 1) when
    ``pid`` is listed without a path, the one at its path (type checked)
    when given; unchanged when ``pid`` is not listed (docker --pid=host).
    Afterwards this thread's children are born in its own again (setns to
    one's active namespace is always allowed), so `create`'s hooks and any
    later child stay in the caller's."""
    if "pid" not in namespaces:
        yield
        return
    path = namespaces["pid"]
    own = os.open("/proc/thread-self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
    try:
        if path is None:
            _unshare(CLONE_FLAGS["pid"], "pid")
        else:
            fd = _open_checked("pid", path)
            try:
                _setns(fd, "pid", f"join pid namespace {path}")
            finally:
                os.close(fd)
        try:
            yield
        finally:
            _setns(own, "pid", "back to the runtime's pid namespace")
    finally:
        os.close(own)


def join(namespaces: dict[str, str | None]) -> None:
    """setns into each namespace given by path (see the module docstring)."""
    wanted = {k: p for k, p in namespaces.items() if p is not None}
    if "user" in wanted:
        raise NamespaceError(f"{_where('user')}: joining a user namespace is not supported "
                             "(the sandbox's files need its own identity-mapped one)")
    fds = {}
    try:
        for kind in JOIN_ORDER:
            if kind in wanted:
                fds[kind] = _open_checked(kind, wanted[kind])
        for kind, fd in fds.items():
            _setns(fd, kind, f"join {kind} namespace {wanted[kind]}")
    finally:
        for fd in fds.values():
            os.close(fd)
