"""Fields of config.json that bundle.py leaves raw and the sandbox honours:
``linux.devices`` (device nodes made in the container's /dev),
``linux.maskedPaths`` and ``linux.readonlyPaths`` (sentry/maskpaths.py) and
``process.oomScoreAdj``.

Why here: bundle.py checks shapes for `create`; these turn the raw values
into what sentry/sandbox.py takes, and what the sandbox host applies to
itself (its own oom_score_adj, which the Sentry and its stubs inherit, so
the host's OOM killer weighs the whole sandbox as Docker's --oom-score-adj
asks, as runc sets the container's process).
"""

from __future__ import annotations

import contextlib
import stat
from typing import Any

_TYPES = {"c": stat.S_IFCHR, "u": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}


def bundle_devices(raw_linux: Any) -> list[tuple[str, int, int, int, int]]:
    """linux.devices as (path, mode with the file type, rdev, uid, gid);
    entries that are not objects with a known type and an absolute path are
    left out (bundle validation names them)."""
    import os

    out = []
    devices = raw_linux.get("devices") if isinstance(raw_linux, dict) else None
    for d in devices if isinstance(devices, list) else []:
        if not isinstance(d, dict) or d.get("type") not in _TYPES:
            continue
        path = d.get("path")
        if not isinstance(path, str) or not path.startswith("/"):
            continue
        mode = d.get("fileMode") if isinstance(d.get("fileMode"), int) else 0o666
        major = d.get("major") if isinstance(d.get("major"), int) else 0
        minor = d.get("minor") if isinstance(d.get("minor"), int) else 0
        uid = d.get("uid") if isinstance(d.get("uid"), int) else 0
        gid = d.get("gid") if isinstance(d.get("gid"), int) else 0
        rdev = 0 if d["type"] == "p" else os.makedev(major, minor)
        out.append((path, _TYPES[d["type"]] | (mode & 0o7777), rdev, uid, gid))
    return out


def linux_paths(raw_linux: Any, key: str) -> list[str]:
    """linux.maskedPaths or linux.readonlyPaths: the absolute paths listed."""
    paths = raw_linux.get(key) if isinstance(raw_linux, dict) else None
    return [p for p in paths if isinstance(p, str) and p.startswith("/")] \
        if isinstance(paths, list) else []


def id_map(raw_linux: Any, key: str) -> bytes | None:
    """linux.uidMappings / gidMappings in /proc/PID/uid_map's format; None
    when absent or malformed (the identity map is shown then)."""
    maps = raw_linux.get(key) if isinstance(raw_linux, dict) else None
    if not isinstance(maps, list) or not maps:
        return None
    lines = []
    for m in maps:
        vals = [m.get(k) for k in ("containerID", "hostID", "size")] if isinstance(m, dict) \
            else []
        if len(vals) != 3 or not all(isinstance(v, int) and not isinstance(v, bool)
                                     and 0 <= v < 1 << 32 for v in vals):
            return None
        lines.append(b"%10d %10d %10d\n" % tuple(vals))
    return b"".join(lines)


def oom_score_adj(raw: Any) -> int | None:
    """process.oomScoreAdj, if it is an integer in Linux's range."""
    proc = raw.get("process") if isinstance(raw, dict) else None
    value = proc.get("oomScoreAdj") if isinstance(proc, dict) else None
    if isinstance(value, bool) or not isinstance(value, int) or not -1000 <= value <= 1000:
        return None
    return value


def apply_host_oom_score_adj(raw: Any) -> None:
    """The sandbox host's own /proc/self/oom_score_adj (inherited by all it forks)."""
    value = oom_score_adj(raw)
    if value is not None:
        with contextlib.suppress(OSError), open("/proc/self/oom_score_adj", "w") as f:
            f.write(str(value))
