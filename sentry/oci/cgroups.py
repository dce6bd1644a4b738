"""The container's host cgroups: the sandbox's processes in ``linux.cgroupsPath``
with ``linux.resources`` applied, as runc places a container.

Why a sandbox needs them: the application's memory is the Sentry's memory file
and its CPU time is spent in the stubs and the Sentry, so putting the sandbox
host (before it forks the Sentry; everything below inherits the cgroup) in the
container's cgroup makes `docker run -m/--cpus/--pids-limit` bound the whole
sandbox, and lets the shim's stats (`docker stats`, which reads the cgroup of
the pid in --pid-file) see it.  gVisor's runsc does the same for its sandbox.

Scope and rules:

- cgroup v1 (one hierarchy per controller, e.g. /sys/fs/cgroup/memory) and v2
  (the unified hierarchy) as found in /proc/self/mountinfo; an absolute path
  is taken from the root of each hierarchy, a relative one from the caller's
  own cgroup there, as runc's cgroupfs driver does.
- The systemd driver's ``slice:prefix:name`` form (what Docker, podman and
  containerd pass with ``--systemd-cgroup``) is placed where systemd puts
  that unit, from each hierarchy's root: the slice expanded by its dashes
  (``a-b.slice`` -> ``/a.slice/a-b.slice``; an empty slice is
  ``system.slice``), then ``prefix-name.scope`` (or ``name`` itself when it
  is a slice).  systemd is not asked over D-Bus to make the scope, as runc
  does: the directories are made directly, so the host needs no systemd (this
  machine's kind has none), and a host that has one sees an unmanaged scope.
- Best effort: a host where cgroups cannot be made (no permission, a
  read-only cgroupfs) still runs the container, and says why in the debug
  log; a resource that was asked for and could not be set is also logged.
- The directories made are recorded in the container's state directory;
  ``delete`` removes them once the processes are gone (:func:`remove`).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import time

from sentry.oci import cgroup_files

TYPE_CHECKING = False  # typing unimported at run time: see sentry/oci/shimcalls.py
if TYPE_CHECKING:
    from typing import Any


def _log(level: str, message: str, *args: object) -> None:
    """Log to the ``pyvisor`` logger, importing logging only then: `delete`
    calls :func:`remove` on every container and rarely has anything to say."""
    import logging

    getattr(logging.getLogger("pyvisor"), level)(message, *args)


RECORD = "cgroups.json"  # in the container's state directory
RMDIR_GRACE = 2.0  # seconds for the last processes to leave a cgroup
_MAX_PATH_PARTS = 32


def _hierarchies() -> dict[str, str]:
    """Mount point of each v1 controller (key: controller) and of v2 (key "")."""
    out: dict[str, str] = {}
    try:
        with open("/proc/self/mountinfo") as f:
            lines = f.readlines()
    except OSError:
        return out
    for line in lines:
        pre, _, post = line.partition(" - ")
        fields, sfields = pre.split(), post.split()
        if len(fields) < 5 or len(sfields) < 3:
            continue
        fstype, mnt, opts = sfields[0], fields[4], sfields[2].split(",")
        if fstype == "cgroup2":
            out.setdefault("", mnt)
        elif fstype == "cgroup":
            for o in opts:
                if o in ("cpu", "cpuacct", "cpuset", "memory", "pids", "blkio", "devices",
                         "freezer", "net_cls", "net_prio", "perf_event", "hugetlb", "rdma"):
                    out.setdefault(o, mnt)
    return out


def _expand_slice(slice_name: str) -> str | None:
    """systemd's path of a slice unit: each dash opens a level, as
    ``a-b-c.slice`` lives at ``/a.slice/a-b.slice/a-b-c.slice``; None if the
    name is not a slice systemd would accept."""
    if slice_name == "-.slice":
        return ""
    stem = slice_name.removesuffix(".slice")
    if (stem == slice_name or not stem or "/" in stem or stem.startswith("-")
            or stem.endswith("-") or "--" in stem):
        return None
    parts = stem.split("-")
    return "".join("/" + "-".join(parts[: i + 1]) + ".slice" for i in range(len(parts)))


def _systemd_path(path: str) -> str | None:
    """``slice:prefix:name`` -> the unit's absolute cgroup path, or None."""
    slice_name, prefix, name = path.split(":")
    parent = _expand_slice(slice_name or "system.slice")
    if parent is None or not name or "/" in name or "/" in prefix:
        return None
    if name.endswith(".slice"):
        unit = _expand_slice(name)
        if unit is None or not unit.startswith(parent + "/"):
            return None  # a sub-slice must sit under its parent slice
        return unit
    return f"{parent}/{prefix + '-' if prefix else ''}{name}.scope"


def _clean_path(path: str) -> str | None:
    """``linux.cgroupsPath`` with no '..' (absolute: from each hierarchy's
    root; relative: below the caller's own cgroup, as runc's cgroupfs driver
    places it; ``slice:prefix:name``: where systemd puts that unit); None if
    unusable."""
    if path.count(":") == 2:
        path = _systemd_path(path) or ""
    if not path or ":" in path:
        return None
    parts = [p for p in path.split("/") if p and p != "."]
    if not parts or ".." in parts or len(parts) > _MAX_PATH_PARTS:
        return None
    return ("/" if path.startswith("/") else "") + "/".join(parts)


def _write(path: str, value: str) -> bool:
    try:
        with open(path, "w") as f:
            f.write(value)
        return True
    except OSError as exc:
        _log("debug", "cgroups: cannot write %r to %s: %s", value, path, exc.strerror)
        return False


def _inherit_cpuset(directory: str) -> None:
    """A new v1 cpuset cgroup starts with no cpus and mems, and refuses tasks
    until it has them: take the parent's, as runc does."""
    for name in ("cpuset.cpus", "cpuset.mems"):
        mine = os.path.join(directory, name)
        try:
            with open(mine) as f:
                if f.read().strip():
                    continue
            with open(os.path.join(os.path.dirname(directory), name)) as f:
                _write(mine, f.read().strip())
        except OSError:
            continue


def pids_limit(raw_linux: Any) -> int | None:
    """The container's pids limit (linux.resources.pids.limit), None when
    unlimited: absent, 0 or negative (Docker's -1), or not an integer."""
    try:
        limit = raw_linux["resources"]["pids"]["limit"]
    except (KeyError, TypeError):
        return None
    if isinstance(limit, bool) or not isinstance(limit, int) or limit <= 0:
        return None
    return limit


def host_pids_max(limit: int) -> int:
    """What the host cgroup's pids.max gets for a container limit of ``limit``:
    enough that the sandbox's own threads never trip it before the Sentry's
    count of the container's tasks does (sentry/oci/cgroup_files.py)."""
    return cgroup_files.host_pids_max(limit)


def _limits(resources: dict[str, Any]) -> dict[str, list[tuple[str, str]]]:
    """linux.resources -> {controller: [(file, value)]} for v1, and "" for v2."""
    return cgroup_files.files(resources, pids_limit({"resources": resources}))


def join(raw_linux: Any, state_dir: str, pid: int) -> list[str]:
    """Put ``pid`` (the sandbox host, before it forks) in the container's
    cgroups and apply its resources; returns (and records) the directories made."""
    made, _joined = _join(raw_linux, pid, _hierarchies())
    record(state_dir, made)
    return made


def record(state_dir: str, made: list[str]) -> None:
    """Note the directories made, for :func:`remove` at `delete`."""
    with contextlib.suppress(OSError), open(os.path.join(state_dir, RECORD), "w") as f:
        json.dump(made, f)


def recorded(state_dir: str) -> bool:
    """Whether this container's cgroups were joined already (by `create`)."""
    return os.path.exists(os.path.join(state_dir, RECORD))


def _join(raw_linux: Any, pid: int,
          hierarchies: dict[str, str]) -> tuple[list[str], list[str]]:
    """(directories made, mount points of the hierarchies ``pid`` joined)."""
    if not isinstance(raw_linux, dict):
        return [], []
    rel = _clean_path(raw_linux.get("cgroupsPath") or "")
    if rel is None:
        if raw_linux.get("cgroupsPath"):
            _log("debug", "cgroups: path %r not handled", raw_linux.get("cgroupsPath"))
        return [], []
    resources = raw_linux.get("resources")
    limits = _limits(resources if isinstance(resources, dict) else {})
    made: list[str] = []
    joined: list[str] = []
    own = {} if rel.startswith("/") else _current(hierarchies)
    for ctrl, mnt in sorted(hierarchies.items()):
        directory = os.path.join(own.get(mnt, mnt), rel.lstrip("/"))
        try:
            existed = os.path.isdir(directory)
            os.makedirs(directory, exist_ok=True)
        except OSError as exc:
            _log("debug", "cgroups: cannot make %s: %s", directory, exc.strerror)
            continue
        if not existed:
            made.append(directory)
        if ctrl == "cpuset":
            _inherit_cpuset(directory)
        for name, value in limits.get(ctrl, ()):
            if not _write(os.path.join(directory, name), value):
                _log("warning", "cgroups: could not set %s=%s", name, value)
        if _write(os.path.join(directory, "cgroup.procs"), str(pid)):
            joined.append(mnt)
    return made, joined


def _current(hierarchies: dict[str, str]) -> dict[str, str]:
    """This process's cgroup directory in each hierarchy (mount point -> dir)."""
    out: dict[str, str] = {}
    try:
        with open("/proc/self/cgroup") as f:
            lines = f.read().splitlines()
    except OSError:
        return out
    for line in lines:
        _, ctrls, path = line.split(":", 2)
        for ctrl in ctrls.split(",") if ctrls else [""]:
            mnt = hierarchies.get(ctrl)
            if mnt is not None:
                out[mnt] = os.path.join(mnt, path.lstrip("/"))
    return out


class EarlyJoin:
    """`create` itself joins the container's cgroups, on a thread, while it
    imports and validates; the sandbox host it forks then inherits them.

    Why: the first move of a process into a cgroup waits in the kernel for
    an RCU grace period.  That is 10-25 ms on this project's VMs, the largest
    single step of a Docker `create`, and the thread spends it asleep while
    the main thread works.  Doing it later, after the Sentry is up, would leave
    the Sentry's start-up memory (~20 MB) charged outside the container.

    `create` never stays in the container's cgroups: :meth:`leave` moves it
    back once the host is forked (a later move costs ~0.1 ms).  If `create`
    fails first, :meth:`abandon` also removes the directories it made, so
    nothing is left behind.  The host sees :func:`recorded` and does not join
    again.
    """

    def __init__(self, raw_linux: Any) -> None:
        import threading

        self.raw_linux = raw_linux
        self.made: list[str] = []
        self.joined: list[str] = []
        self.hierarchies = _hierarchies()
        self.origin = _current(self.hierarchies)
        self.thread = threading.Thread(target=self._run, name="cgroups", daemon=True)
        self.thread.start()

    @classmethod
    def start(cls, bundle_dir: str) -> EarlyJoin | None:
        """Begin for the bundle's ``linux.cgroupsPath``; None when it has none
        usable (the config is read again, and validated, by `create`)."""
        try:
            with open(os.path.join(bundle_dir, "config.json"), "rb") as f:
                raw_linux = json.loads(f.read()).get("linux")
        except (OSError, ValueError, AttributeError, RecursionError):
            return None
        if not isinstance(raw_linux, dict) or _clean_path(
                raw_linux.get("cgroupsPath") or "") is None:
            return None
        return cls(raw_linux)

    def _run(self) -> None:
        with contextlib.suppress(Exception):  # best effort, as join
            self.made, self.joined = _join(self.raw_linux, os.getpid(), self.hierarchies)

    def wait(self) -> None:
        self.thread.join()

    def leave(self) -> None:
        """Move this process back where it was."""
        self.wait()
        for mnt in self.joined:
            if mnt in self.origin:
                _write(os.path.join(self.origin[mnt], "cgroup.procs"), str(os.getpid()))
        self.joined = []

    def abandon(self) -> None:
        """`create` failed: leave, and remove what was made."""
        self.leave()
        _remove_dirs(self.made)
        self.made = []


def remove(state_dir: str) -> None:
    """Remove the cgroup directories ``join`` made (deepest first); the
    processes are gone by then, so the directories are empty."""
    try:
        with open(os.path.join(state_dir, RECORD)) as f:
            made = json.load(f)
    except (OSError, ValueError):
        return
    if isinstance(made, list):
        _remove_dirs([d for d in made if isinstance(d, str)])


def _remove_dirs(made: list[str]) -> None:
    """rmdir each, deepest first, waiting out EBUSY for RMDIR_GRACE."""
    deadline = time.monotonic() + RMDIR_GRACE
    for directory in sorted(made, key=len, reverse=True):
        while True:
            try:
                os.rmdir(directory)
                break
            except FileNotFoundError:
                break
            except OSError as exc:
                # EBUSY: a killed process of the sandbox is still on its way out
                if exc.errno != errno.EBUSY or time.monotonic() > deadline:
                    _log("debug", "cgroups: cannot remove %s: %s", directory, exc.strerror)
                    break
                time.sleep(0.02)
