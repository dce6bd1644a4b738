"""Put the sandbox host in the network namespace the bundle asks for.

Why this matters even though the Sentry has no host networking
(``--network=none``): the OCI state's ``pid`` is the sandbox host, and tools
act on ``/proc/PID/ns/net``.  Docker's default bridge network runs a prestart
hook (``libnetwork-setkey``) that moves a veth into that namespace and gives it
an address and a default route; in the host's own namespace that would rewire
the host.  runc makes the container a new namespace when
``linux.namespaces`` has ``{"type": "network"}`` without a path, and joins the
one named by ``path`` otherwise (podman's netavark, Kubernetes pods); gVisor's
runsc does the same for its sandbox, and so does this.

Facts: unshare(CLONE_NEWNET) and setns(fd, CLONE_NEWNET) need CAP_SYS_ADMIN
and act on the calling thread only, so they run before the host forks the
Sentry or starts a thread; children inherit the namespace.  Unix sockets bound
to a path (the control socket) work across network namespaces; abstract ones
would not, and none is used.  Python 3.11 has no os.unshare/os.setns, hence
libc through ctypes.
"""

from __future__ import annotations

import ctypes
import os

CLONE_NEWNET = 0x40000000


class NamespaceError(Exception):
    """A one-line reason the sandbox could not enter its network namespace."""


def enter_network_namespace(namespaces: dict[str, str | None]) -> None:
    """New network namespace, or join ``path``; nothing if "network" is not listed."""
    if "network" not in namespaces:
        return  # the spec shares the caller's namespace, as runc does
    path = namespaces["network"]
    libc = ctypes.CDLL(None, use_errno=True)
    if path is None:
        if libc.unshare(CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise NamespaceError(f"new network namespace: {os.strerror(err)}")
        return
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise NamespaceError(f"network namespace {path}: {exc.strerror}") from None
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise NamespaceError(f"join network namespace {path}: {os.strerror(err)}")
    finally:
        os.close(fd)
