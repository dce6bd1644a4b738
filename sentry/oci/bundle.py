"""Parse and validate an OCI bundle's config.json (runtime-spec config.md).

Why validate up front and so strictly: ``create`` must fail before anything
exists (no state directory, no process) when a bundle is wrong, and the message
must name the field, the way runc's own validation does, because the caller is
usually a daemon that shows one line of our stderr to a user who wrote the
field.  Unknown fields are ignored, as the spec asks of runtimes.

Everything the runtime does not implement yet (capabilities, rlimits,
noNewPrivileges, mounts) is still parsed, checked for shape and kept, so later
work has it and so a malformed value is caught now rather than ignored.
"""

from __future__ import annotations

import json
import os
from typing import Any

from sentry.oci import bundle_resources
from shm.records import field, record

CONFIG_NAME = "config.json"
OCI_VERSION = "1.1.0"
# Hook kinds in lifecycle order; startContainer runs inside the container in the
# spec, which this runtime cannot do yet (see lifecycle.py).
HOOK_KINDS = ("prestart", "createRuntime", "createContainer", "startContainer",
              "poststart", "poststop")


class BundleError(Exception):
    """The bundle is unusable: a one-line message that names the field."""


@record(frozen=True)
class User:
    uid: int = 0
    gid: int = 0
    additional_gids: tuple[int, ...] = ()


@record(frozen=True)
class Rlimit:
    type: str
    soft: int
    hard: int


@record(frozen=True)
class Process:
    args: tuple[str, ...]
    env: tuple[str, ...] = ()
    cwd: str = "/"
    user: User = field(default_factory=User)
    terminal: bool = False
    rlimits: tuple[Rlimit, ...] = ()
    no_new_privileges: bool = False
    capabilities: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def env_dict(self) -> dict[str, str]:
        """process.env as a mapping; a later K=V wins, like execve's consumers."""
        out: dict[str, str] = {}
        for kv in self.env:
            k, _, v = kv.partition("=")
            out[k] = v
        return out


@record(frozen=True)
class Mount:
    destination: str
    type: str = ""
    source: str = ""
    options: tuple[str, ...] = ()


@record(frozen=True)
class Hook:
    path: str
    args: tuple[str, ...] = ()
    env: tuple[str, ...] = ()
    timeout: int | None = None


@record(frozen=True)
class Bundle:
    """A validated bundle; ``root_path`` is absolute and is a directory."""

    path: str
    oci_version: str
    process: Process
    root_path: str
    root_readonly: bool
    hostname: str
    mounts: tuple[Mount, ...]
    annotations: dict[str, str]
    hooks: dict[str, tuple[Hook, ...]]
    raw: dict[str, Any]
    # linux.namespaces: type -> path to join, or None for a new one.
    namespaces: dict[str, str | None] = field(default_factory=dict)


def _err(where: str, what: str) -> BundleError:
    return BundleError(f"{CONFIG_NAME}: {where}: {what}")


def _obj(value: Any, where: str, required: bool = False) -> dict[str, Any]:
    if value is None:
        if required:
            raise _err(where, "is required")
        return {}
    if not isinstance(value, dict):
        raise _err(where, "must be an object")
    return value


def _str(value: Any, where: str, default: str | None = None) -> str:
    if value is None:
        if default is None:
            raise _err(where, "is required")
        return default
    if not isinstance(value, str):
        raise _err(where, "must be a string")
    if "\0" in value:
        raise _err(where, "must not contain NUL")
    return value


def _bool(value: Any, where: str) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        raise _err(where, "must be a boolean")
    return value


def _uint(value: Any, where: str, default: int = 0, bits: int = 32) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 1 << bits:
        raise _err(where, f"must be an integer in [0, 2^{bits})")
    return value


def _str_list(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise _err(where, "must be a list of strings")
    return tuple(_str(v, f"{where}[{i}]") for i, v in enumerate(value))


def _env_list(value: Any, where: str) -> tuple[str, ...]:
    env = _str_list(value, where)
    for i, kv in enumerate(env):
        if "=" not in kv or kv.startswith("="):
            raise _err(f"{where}[{i}]", "must be KEY=VALUE")
    return env


def _parse_user(value: Any) -> User:
    u = _obj(value, "process.user")
    gids = u.get("additionalGids")
    if gids is not None and not isinstance(gids, list):
        raise _err("process.user.additionalGids", "must be a list of integers")
    return User(
        uid=_uint(u.get("uid"), "process.user.uid"),
        gid=_uint(u.get("gid"), "process.user.gid"),
        additional_gids=tuple(_uint(g, f"process.user.additionalGids[{i}]")
                              for i, g in enumerate(gids or [])),
    )


def _parse_rlimits(value: Any) -> tuple[Rlimit, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise _err("process.rlimits", "must be a list")
    out = []
    seen: set[str] = set()
    for i, r in enumerate(value):
        where = f"process.rlimits[{i}]"
        r = _obj(r, where, required=True)
        kind = _str(r.get("type"), f"{where}.type")
        if not kind.startswith("RLIMIT_"):
            raise _err(f"{where}.type", f"unknown limit {kind!r}")
        if kind in seen:
            raise _err(f"{where}.type", f"{kind} given twice")
        seen.add(kind)
        soft = _uint(r.get("soft"), f"{where}.soft", bits=64)
        hard = _uint(r.get("hard"), f"{where}.hard", bits=64)
        if soft > hard:
            raise _err(where, "soft limit above the hard limit")
        out.append(Rlimit(kind, soft, hard))
    return tuple(out)


def _parse_caps(value: Any) -> dict[str, tuple[str, ...]]:
    caps = _obj(value, "process.capabilities")
    out = {}
    for kind in ("bounding", "effective", "inheritable", "permitted", "ambient"):
        names = _str_list(caps.get(kind), f"process.capabilities.{kind}")
        for i, name in enumerate(names):
            if not name.startswith("CAP_"):
                raise _err(f"process.capabilities.{kind}[{i}]", f"unknown capability {name!r}")
        out[kind] = names
    return out


def _parse_process(value: Any) -> Process:
    p = _obj(value, "process", required=True)
    args = p.get("args")
    if not isinstance(args, list) or not args:
        raise _err("process.args", "must be a non-empty list")
    cwd = _str(p.get("cwd"), "process.cwd", default="/")
    if not cwd.startswith("/"):
        raise _err("process.cwd", f"must be an absolute path, not {cwd!r}")
    if p.get("commandLine") is not None:
        raise _err("process.commandLine", "is for Windows only")
    return Process(
        args=_str_list(args, "process.args"),
        env=_env_list(p.get("env"), "process.env"),
        cwd=cwd,
        user=_parse_user(p.get("user")),
        terminal=_bool(p.get("terminal"), "process.terminal"),
        rlimits=_parse_rlimits(p.get("rlimits")),
        no_new_privileges=_bool(p.get("noNewPrivileges"), "process.noNewPrivileges"),
        capabilities=_parse_caps(p.get("capabilities")),
    )


def parse_process(value: Any) -> Process:
    """A process object on its own: ``exec --process FILE``, and the exec
    request the Sentry checks again (errors name the field as process.*)."""
    return _parse_process(value)


def rlimit_numbers(p: Process) -> dict[int, tuple[int, int]]:
    """process.rlimits by resource number; an unknown name is an error, as in runc."""
    from sentry.kernel import rlimits  # the names and numbers live with the kernel's table

    out = {}
    for i, r in enumerate(p.rlimits):
        number = rlimits.BY_NAME.get(r.type)
        if number is None:
            raise _err(f"process.rlimits[{i}].type", f"unknown limit {r.type!r}")
        out[number] = (r.soft, r.hard)
    return out


def container_rlimits(p: Process) -> dict[int, tuple[int, int]]:
    """The limits a container's processes start with: the runtime's own
    RLIMIT_FSIZE and RLIMIT_NOFILE, then ``process.rlimits`` on top.

    Why those two: runc's container process inherits every limit of the
    runtime (Docker sets none in config.json unless asked), and gVisor's runsc
    likewise takes FSIZE and NOFILE from the host, so `ulimit -n` in a
    container is the same under runc, runsc and pyvisor.  The other limits
    stay the kernel's defaults (sentry/kernel/rlimits.py).
    """
    import resource  # imported by the Sentry before it confines itself (processes.py)

    from sentry.kernel import rlimits

    out: dict[int, tuple[int, int]] = {}
    for number in (resource.RLIMIT_FSIZE, resource.RLIMIT_NOFILE):
        soft, hard = resource.getrlimit(number)
        soft = rlimits.RLIM_INFINITY if soft == resource.RLIM_INFINITY else soft
        hard = rlimits.RLIM_INFINITY if hard == resource.RLIM_INFINITY else hard
        if number == resource.RLIMIT_NOFILE:  # the fd table's own ceiling (nr_open)
            soft, hard = min(soft, rlimits.NR_OPEN), min(hard, rlimits.NR_OPEN)
        out[number] = (soft, hard)
    out.update(rlimit_numbers(p))
    return out


def _parse_mounts(value: Any) -> tuple[Mount, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise _err("mounts", "must be a list")
    out = []
    for i, m in enumerate(value):
        where = f"mounts[{i}]"
        m = _obj(m, where, required=True)
        dest = _str(m.get("destination"), f"{where}.destination")
        if not dest.startswith("/"):
            raise _err(f"{where}.destination", f"must be an absolute path, not {dest!r}")
        out.append(Mount(dest, _str(m.get("type"), f"{where}.type", ""),
                         _str(m.get("source"), f"{where}.source", ""),
                         _str_list(m.get("options"), f"{where}.options")))
    return tuple(out)


NAMESPACE_TYPES = ("pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time")


def _parse_namespaces(value: Any) -> dict[str, str | None]:
    """linux.namespaces as runc reads it: known types only, each at most once,
    a path (to join) absolute.  ``linux.resources`` is checked for its types
    (sentry/oci/bundle_resources.py) and applied by sentry/oci/cgroups.py.  The
    rest of ``linux`` (seccomp, devices, sysctl, masked paths, ...) is what real
    tools always send and is left unread: the Sentry is the container's kernel,
    and those are host kernel settings."""
    if value is None:
        return {}
    if not isinstance(value, list):
        raise _err("linux.namespaces", "must be a list")
    out: dict[str, str | None] = {}
    for i, ns in enumerate(value):
        where = f"linux.namespaces[{i}]"
        ns = _obj(ns, where, required=True)
        kind = _str(ns.get("type"), f"{where}.type")
        if kind not in NAMESPACE_TYPES:
            raise _err(f"{where}.type", f"unknown namespace type {kind!r}")
        if kind in out:
            raise _err(f"{where}.type", f"namespace {kind!r} given twice")
        path = _str(ns.get("path"), f"{where}.path", default="") or None
        if path is not None and not path.startswith("/"):
            raise _err(f"{where}.path", f"must be an absolute path, not {path!r}")
        out[kind] = path
    return out


def parse_hooks(value: Any) -> dict[str, tuple[Hook, ...]]:
    """The hooks object; also used to re-read hooks from a container's saved config."""
    h = _obj(value, "hooks")
    out: dict[str, tuple[Hook, ...]] = {}
    for kind, entries in h.items():
        if kind not in HOOK_KINDS:
            continue  # unknown hook kinds are ignored, as unknown fields are
        if not isinstance(entries, list):
            raise _err(f"hooks.{kind}", "must be a list")
        hooks = []
        for i, e in enumerate(entries):
            where = f"hooks.{kind}[{i}]"
            e = _obj(e, where, required=True)
            path = _str(e.get("path"), f"{where}.path")
            if not os.path.isabs(path):
                raise _err(f"{where}.path", f"must be an absolute path, not {path!r}")
            timeout = e.get("timeout")
            if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, int)
                                        or timeout <= 0):
                raise _err(f"{where}.timeout", "must be a positive integer")
            hooks.append(Hook(path, _str_list(e.get("args"), f"{where}.args"),
                              _env_list(e.get("env"), f"{where}.env"), timeout))
        out[kind] = tuple(hooks)
    return out


def parse(raw: Any, bundle_dir: str) -> Bundle:
    """Validate a decoded config.json against the bundle directory it came from."""
    if not isinstance(raw, dict):
        raise BundleError(f"{CONFIG_NAME}: must be a JSON object")
    version = _str(raw.get("ociVersion"), "ociVersion")
    if not version.startswith("1."):
        raise _err("ociVersion", f"unsupported version {version!r} (need 1.x)")
    process = _parse_process(raw.get("process"))
    root = _obj(raw.get("root"), "root", required=True)
    root_path = _str(root.get("path"), "root.path")
    if not root_path:
        raise _err("root.path", "must not be empty")
    full_root = os.path.normpath(os.path.join(bundle_dir, root_path))
    if not os.path.isdir(full_root):
        raise _err("root.path", f"{full_root}: not a directory")
    annotations = _obj(raw.get("annotations"), "annotations")
    for k, v in annotations.items():
        if not isinstance(v, str):
            raise _err(f"annotations.{k}", "must be a string")
    hostname = _str(raw.get("hostname"), "hostname", default="")
    if len(hostname) > 64:
        raise _err("hostname", "longer than 64 characters")
    linux = _obj(raw.get("linux"), "linux")
    try:
        bundle_resources.check(linux.get("resources"))
    except bundle_resources.ResourceError as exc:
        raise BundleError(f"{CONFIG_NAME}: {exc}") from None
    return Bundle(
        path=bundle_dir, oci_version=version, process=process, root_path=full_root,
        root_readonly=_bool(root.get("readonly"), "root.readonly"), hostname=hostname,
        mounts=_parse_mounts(raw.get("mounts")), annotations=dict(annotations),
        hooks=parse_hooks(raw.get("hooks")), raw=raw,
        namespaces=_parse_namespaces(linux.get("namespaces")),
    )


def read_config(path: str) -> Any:
    """Decode a config.json, turning I/O and JSON errors into BundleError."""
    try:
        with open(path, "rb") as f:
            data = f.read(16 << 20)
    except FileNotFoundError:
        raise BundleError(f"{path}: no such file (is --bundle right?)") from None
    except OSError as exc:
        raise BundleError(f"{path}: {exc.strerror}") from None
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BundleError(f"{CONFIG_NAME}: invalid JSON: {exc}") from None
    except RecursionError:  # Python's decoder recurses once per nesting level
        raise BundleError(f"{CONFIG_NAME}: invalid JSON: nested too deeply") from None


def load(bundle_dir: str) -> Bundle:
    """Load and validate ``bundle_dir``/config.json."""
    bundle_dir = os.path.abspath(bundle_dir)
    if not os.path.isdir(bundle_dir):
        raise BundleError(f"bundle {bundle_dir}: not a directory")
    return parse(read_config(os.path.join(bundle_dir, CONFIG_NAME)), bundle_dir)


def default_spec(args: list[str] | None = None) -> dict[str, Any]:
    """What ``spec`` writes: runc's template, trimmed to what matters here.

    ``terminal`` is false (runc's template says true) so the template works as
    written in every mode (a terminal needs --console-socket when detached).
    """
    return {
        "ociVersion": OCI_VERSION,
        "process": {
            "terminal": False,
            "user": {"uid": 0, "gid": 0},
            "args": list(args or ["sh"]),
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    "TERM=xterm"],
            "cwd": "/",
            "capabilities": {k: ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
                             for k in ("bounding", "effective", "permitted")},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": True,
        },
        "root": {"path": "rootfs", "readonly": True},
        "hostname": "pyvisor",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
        ],
        "linux": {"namespaces": [{"type": t} for t in
                                 ("pid", "network", "ipc", "uts", "mount")]},
    }
