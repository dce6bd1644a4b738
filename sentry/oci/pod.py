"""Pods: which sandbox a container belongs to, and the trees it brings along.

containerd's CRI plugin (and cri-o) run a Kubernetes pod as a "sandbox"
container (the pause process) plus one container per pod container, and say
so in annotations: ``io.kubernetes.cri.container-type`` is ``sandbox`` or
``container``, and ``io.kubernetes.cri.sandbox-id`` names the pod's sandbox
container (cri-o: ``io.kubernetes.cri-o.ContainerType`` and
``io.kubernetes.cri-o.SandboxID``).  Like runsc (runsc/specutils'
ShouldCreateSandbox), a container of type "container" whose sandbox is a
container we run joins that sandbox's Sentry instead of booting its own:
one kernel, one network stack, one IPC namespace per pod, a mount namespace
and root per container (docs/pods.md).

This module is the part both sides share: reading the annotations, and on
the host (unconfined) opening a member's root and bind sources, which then
travel to the pod's Gofer (gofer/late.py).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from typing import Any

from shm.records import record

CONTAINER_TYPE = ("io.kubernetes.cri.container-type", "io.kubernetes.cri-o.ContainerType")
SANDBOX_ID = ("io.kubernetes.cri.sandbox-id", "io.kubernetes.cri-o.SandboxID")


def _first(annotations: Mapping[str, Any], keys: tuple[str, ...]) -> str | None:
    for k in keys:
        v = annotations.get(k)
        if isinstance(v, str) and v:
            return v
    return None


def role(annotations: Mapping[str, Any] | None) -> tuple[str | None, str | None]:
    """(``"sandbox"``, ``"container"`` or None, the pod's sandbox id or None)."""
    if not isinstance(annotations, Mapping):
        return None, None
    kind = _first(annotations, CONTAINER_TYPE)
    return (kind if kind in ("sandbox", "container") else None), _first(annotations, SANDBOX_ID)


def is_pod_sandbox(annotations: Mapping[str, Any] | None) -> bool:
    return role(annotations)[0] == "sandbox"


def sandbox_to_join(annotations: Mapping[str, Any] | None, own_id: str) -> str | None:
    """The sandbox container a container joins, or None (it boots its own)."""
    kind, sid = role(annotations)
    if kind != "container" or sid is None or sid == own_id:
        return None
    return sid


@record
class Tree:
    """One tree for the pod's Gofer: ``index`` -1 for the root, else the
    mount's index (its aname's "m<N>"); ``fds`` the O_PATH descriptor (and a
    file's I/O descriptor)."""

    index: int
    writable: bool
    fds: list[int]


def open_trees(root: str, mounts: list[Any]) -> list[Tree]:
    """Open a member's root and bind sources now, as the Gofer would have at
    its start (gofer/fids.py open_attaches: symlinks in the configured path
    followed, directories and regular files only).  OSError with the path."""
    from gofer.fids import _open_file_source
    from sentry import rootfs

    out: list[Tree] = []
    try:
        fd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        out.append(Tree(-1, True, [fd]))
        for i, m in enumerate(mounts):
            if not rootfs._served_by_gofer(m):
                continue
            fd = os.open(m.source, os.O_PATH | os.O_CLOEXEC)
            tree = Tree(i, not m.readonly, [fd])
            out.append(tree)
            if m.file:
                io_fd, tree.writable = _open_file_source(m.source, not m.readonly)
                tree.fds.append(io_fd)
    except OSError:
        close_trees(out)
        raise
    return out


def close_trees(trees: list[Tree]) -> None:
    for t in trees:
        for fd in t.fds:
            with contextlib.suppress(OSError):
                os.close(fd)


def mount_to_wire(m: Any) -> dict[str, Any]:
    """A MountSpec as a msgpack map (the Sentry rebuilds it: mount_from_wire)."""
    return {"destination": m.destination, "type": m.type, "source": m.source,
            "readonly": m.readonly, "file": m.file, "size": m.size, "mode": m.mode,
            "uid": m.uid, "gid": m.gid, "flags": list(m.flags)}


def mount_from_wire(d: Any) -> Any:
    """The MountSpec the host checked (sentry/mountspec.py); ValueError if
    the map is not one (the host is trusted, but a bad frame is no traceback)."""
    from sentry.mountspec import TYPES, MountSpec

    if not isinstance(d, dict) or d.get("type") not in TYPES:
        raise ValueError("bad mount")
    try:
        return MountSpec(destination=str(d["destination"]), type=d["type"],
                         source=str(d["source"]), readonly=bool(d["readonly"]),
                         file=bool(d["file"]), size=d["size"], mode=d["mode"],
                         uid=int(d["uid"]), gid=int(d["gid"]),
                         flags=tuple(str(f) for f in d["flags"]))
    except (KeyError, TypeError) as exc:
        raise ValueError(f"bad mount: {exc}") from None
