"""OCI commands that look at or hold a running container without changing
its life: list, ps (sandbox and host pids), pause/resume, stats, events and
features.  Split from lifecycle.py (create, start, kill, delete, wait, run),
whose helpers they share."""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Callable

from sentry.oci.control_errors import ControlError
from sentry.oci.lifecycle import OciError, open_container, request
from sentry.oci.state import LIVE, Container, StateError, StateRoot, stat_fields

TYPE_CHECKING = False  # typing unimported at run time: see sentry/oci/shimcalls.py
if TYPE_CHECKING:
    from typing import Any


def list_containers(root: str) -> list[dict[str, Any]]:
    sr = StateRoot(root)
    out = []
    for cid in sr.ids():
        with contextlib.suppress(StateError):
            out.append(Container(sr, cid).public())
    return out


def ps(root: str, cid: str) -> list[dict[str, Any]]:
    c = open_container(root, cid)
    try:
        if c.current()["status"] == "stopped":
            return []
        reply = request(c.socket_path, {"op": "ps"})
    except (StateError, ControlError) as exc:
        raise OciError(str(exc)) from None
    procs = reply.get("processes")
    return procs if isinstance(procs, list) else []


def _ppids() -> dict[int, int]:
    """pid -> ppid for every host process (a /proc snapshot)."""
    out = {}
    for name in os.listdir("/proc"):
        if name.isdigit() and (fields := stat_fields(name)) is not None:  # None: gone meanwhile
            out[int(name)] = int(fields[1])
    return out


def host_pids(root: str, cid: str) -> list[int]:
    """The host processes that make up the container: its sandbox host (the
    state's pid) and everything below it (Sentry, Gofer, stubs).

    What `ps --format json` prints, as runc prints the host pids in the
    container's cgroup: `docker top` looks these up in the host's ps.  The
    pids inside the sandbox would name unrelated host processes there.
    """
    c = open_container(root, cid)
    try:
        st = c.current()
    except StateError as exc:
        raise OciError(str(exc)) from None
    pid = st.get("pid")
    if st.get("status") == "stopped" or not isinstance(pid, int) or pid <= 0:
        return []
    ppids = _ppids()
    if pid not in ppids:
        return []
    found, frontier = [pid], [pid]
    while frontier:
        parents = set(frontier)
        frontier = [p for p, pp in ppids.items() if pp in parents]
        found += frontier
    return sorted(found)


def pause(root: str, cid: str, resume: bool = False) -> None:
    """Freeze (or thaw) every task of a running container: the kernel holds them
    before they next run application code (Kernel.freeze)."""
    c = open_container(root, cid)
    want = "paused" if resume else "running"
    try:
        status = c.current()["status"]
        if status != want:
            raise OciError(f"container {cid!r} is {status}, not {want}")
        request(c.socket_path, {"op": "resume" if resume else "pause"})
    except (StateError, ControlError) as exc:
        raise OciError(str(exc)) from None


def request_running(root: str, cid: str, msg: dict[str, Any],
                    timeout: float = 10.0) -> dict[str, Any]:
    """One control request to a running (or paused) container's Sentry: what
    stats and `debug` ask; OciError when it is not running or does not answer."""
    c = open_container(root, cid)
    try:
        if c.current()["status"] not in ("running", "paused"):
            raise OciError(f"container {cid!r} is not running")
        return request(c.socket_path, msg, timeout)
    except (StateError, ControlError) as exc:
        raise OciError(str(exc)) from None


def stats(root: str, cid: str) -> dict[str, Any]:
    """One runc-style stats event: CPU (application user time, Sentry kernel
    time), memory the application uses, live tasks (Kernel.usage)."""
    u = request_running(root, cid, {"op": "stats"})
    user, kern = int(u.get("user", 0)), int(u.get("kernel", 0))
    return {"type": "stats", "id": cid, "data": {
        "cpu": {"usage": {"total": user + kern, "user": user, "kernel": kern}},
        "memory": {"usage": {"usage": int(u.get("memory", 0))}},
        "pids": {"current": int(u.get("tasks", 0))},
    }}


_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0,
                   "h": 3600.0}
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")


def parse_duration(text: str) -> float:
    """Go's time.ParseDuration subset runc takes: "5s", "500ms", "1m30s" -> seconds."""
    t = text.strip()
    pos, total = 0, 0.0
    while pos < len(t):
        m = _DURATION_PART.match(t, pos)
        if m is None:
            break
        total += float(m[1]) * _DURATION_UNITS[m[2]]
        pos = m.end()
    if not t or pos != len(t) or total <= 0:
        raise OciError(f"invalid duration {text!r} (e.g. 5s, 500ms, 1m)")
    return total


def events(root: str, cid: str, emit: Callable[[dict[str, Any]], None], *,
           once: bool = False, interval: float = 5.0) -> None:
    """Emit a stats event now and then every ``interval`` s until the container
    stops (``once``: just one)."""
    c = open_container(root, cid)
    while True:
        try:
            event = stats(root, cid)
        except OciError:
            if not once and _stopped(c):
                return
            raise
        emit(event)
        if once:
            return
        deadline = time.monotonic() + interval
        while time.monotonic() < deadline:
            if _stopped(c):
                return
            time.sleep(min(0.25, max(0.0, deadline - time.monotonic())))


def _stopped(c: Container) -> bool:
    try:
        return c.current()["status"] not in LIVE
    except StateError:
        return True  # deleted


def features() -> dict[str, Any]:
    """What ``features`` prints (runtime-spec features.md shape)."""
    from sentry.oci import bundle

    return {
        "ociVersionMin": "1.0.0",
        "ociVersionMax": bundle.OCI_VERSION,
        "hooks": list(bundle.HOOK_KINDS),
        "mountOptions": [],
        "linux": {
            "namespaces": ["mount", "pid", "uts", "ipc", "network"],
            "capabilities": [],
            "cgroup": {"v1": False, "v2": False, "systemd": False, "systemdUser": False},
            "seccomp": {"enabled": False},
            "apparmor": {"enabled": False},
            "selinux": {"enabled": False},
        },
        "annotations": {
            "org.opencontainers.runc.checkpoint.enabled": "false",
            "dev.pyvisor.sandbox": "sentry (systrap)",
        },
        "pyvisor": {"unsupported": [
            "mounts", "capabilities", "startContainer hooks"]},
    }
