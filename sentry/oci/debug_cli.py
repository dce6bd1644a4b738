"""`runsc.py debug`, the client side: ask a running container's Sentry for its
tasks' stacks, or profile its syscalls for a while, and format the answer.
The Sentry's side is sentry/oci/debug_ops.py; the profile's table format is
sentry/kernel/profile.py's, shared with `do --profile`."""

from __future__ import annotations

import time

from sentry.oci.inspection import parse_duration, request_running
from sentry.oci.lifecycle import OciError

TYPE_CHECKING = False  # typing unimported at run time: see sentry/oci/shimcalls.py
if TYPE_CHECKING:
    from typing import Any


def stacks(root: str, cid: str) -> list[dict[str, Any]]:
    """Each task of the container: tid, pid, comm, state, syscall, stack."""
    tasks = request_running(root, cid, {"op": "stacks"}).get("tasks")
    return tasks if isinstance(tasks, list) else []


def profile(root: str, cid: str, duration: str) -> dict[str, Any]:
    """A syscall profile of the container over ``duration`` ("5s", "500ms")."""
    seconds = parse_duration(duration)
    request_running(root, cid, {"op": "profile-start", "seconds": seconds})
    time.sleep(seconds)
    snap = request_running(root, cid, {"op": "profile-read"}).get("profile")
    if not isinstance(snap, dict):
        raise OciError("the sandbox sent no profile")
    return snap


def format_stacks(tasks: list[dict[str, Any]]) -> str:
    """The stacks as text, one block per task."""
    out = []
    for t in tasks:
        head = f"task {t.get('tid')} (pid {t.get('pid')}, {t.get('comm')}): {t.get('state')}"
        if t.get("syscall"):
            head += f", in {t['syscall']}"
        out.append(head)
        out.extend(f"    {line}" for line in t.get("stack") or [])
    return "\n".join(out) + "\n"
