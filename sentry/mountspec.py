"""What to mount in a sandbox: an OCI bundle's ``mounts`` or ``do --volume``.

This module only checks and normalises the request (no kernel, no VFS: the
CLI imports it to fail early); sentry/rootfs.py does the mounting.  It is
called twice for a bundle: by ``create`` before anything exists (so a wrong
mount is a one-line error naming the field and nothing is left behind), and
again in the Sentry, which re-reads the same config.json.

Types, as runc and gVisor's runsc understand them:

* ``bind`` (or type "none"/"" with "bind"/"rbind" among the options): a host
  directory or regular file served by the Gofer; "ro" makes it read-only
  (EROFS), otherwise writes go through to the host.  A relative source is
  relative to the bundle directory, as runc (which runs in the bundle) sees it.
  rbind and bind are the same here: the Gofer serves the source's own tree,
  and host mounts below it are simply directories of that tree.
* ``tmpfs``, with options ``size=``, ``mode=``, ``uid=``, ``gid=``
  (``nr_inodes=`` is accepted and ignored); ``mqueue``, the sandbox's POSIX
  message queues (sentry/vfs/mqueue.py: the same queues mq_open names).
* ``proc``, ``sysfs`` (read-only, a minimal tree), ``cgroup``/``cgroup2``
  (an empty read-only directory), ``devpts``.
* A tmpfs, devtmpfs or bind at /dev is the Sentry's own device tree (its
  device nodes are the only ones that work in the sandbox), shown with the
  type the config names and /dev/ptmx a link to pts/ptmx, as runc's /dev.

"nosuid", "nodev", "noexec" are kept and shown in /proc/mounts; noexec is
enforced at execve.  Propagation and atime options are accepted and ignored.
"""

from __future__ import annotations

import os
import posixpath
import stat
from collections.abc import Sequence
from typing import NamedTuple, Protocol

from shm.records import record


class OciMount(Protocol):
    """A bundle's mount entry as sentry/oci/bundle.py parses it (shape only)."""

    destination: str
    type: str
    source: str
    options: tuple[str, ...]


class _Volume(NamedTuple):
    destination: str
    type: str
    source: str
    options: tuple[str, ...]

TYPES = ("bind", "tmpfs", "mqueue", "proc", "sysfs", "cgroup", "cgroup2", "devpts",
         "devtmpfs")
FLAG_OPTIONS = ("nosuid", "nodev", "noexec")
_IGNORED = frozenset({
    "rw", "suid", "dev", "exec", "bind", "rbind", "private", "rprivate", "shared", "rshared",
    "slave", "rslave", "unbindable", "runbindable", "relatime", "norelatime", "strictatime",
    "nostrictatime", "noatime", "atime", "nodiratime", "diratime", "sync", "async",
    "dirsync", "mand", "nomand", "lazytime", "nolazytime", "newinstance", "tmpcopyup",
    "rro", "rrw", "nosymfollow", "symfollow", "silent", "loud",
})
_SIZE_SUFFIX = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


class MountError(ValueError):
    """A mount request that cannot be honoured: one line naming the field."""


@record(frozen=True)
class MountSpec:
    """One mount, checked: ``type`` is one of TYPES ("bind" for every bind),
    ``source`` an absolute host path for binds (else the bundle's text),
    ``file`` True for a bind of a regular file, ``size`` a tmpfs size limit in
    bytes (None: unlimited),
    ``mode`` a tmpfs root mode (None: 0o1777), ``flags`` the kept flag options."""

    destination: str
    type: str
    source: str = ""
    readonly: bool = False
    file: bool = False
    size: int | None = None
    mode: int | None = None
    uid: int = 0
    gid: int = 0
    flags: tuple[str, ...] = ()

    @property
    def options(self) -> str:
        """The /proc/mounts option text beyond ro/rw."""
        extra = list(self.flags)  # (a tmpfs reports its own size=)
        if self.mode is not None:
            extra.append(f"mode={self.mode:o}")
        return ",".join(extra)


def _size(text: str) -> int:
    t = text.strip().lower()
    if t.endswith("%"):
        pct = int(t[:-1])
        if not 0 < pct <= 100:
            raise ValueError(text)
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        return pages * pct // 100
    suffix = t[-1:] if t[-1:] in _SIZE_SUFFIX else ""
    value = int(t[: len(t) - len(suffix)], 0 if t.startswith("0x") else 10)
    if value < 0:
        raise ValueError(text)
    return value * _SIZE_SUFFIX[suffix]


def _kind(m: OciMount) -> str:
    if m.type in ("", "none") and ("bind" in m.options or "rbind" in m.options):
        return "bind"
    return m.type


# Files below /proc that runc lets a bind cover (lxcfs serves these to show a
# container its own CPU and memory figures); anything else below /proc would
# hide the kernel's own view of the sandbox.
PROC_BIND_ALLOWED = frozenset({
    "/proc/cpuinfo", "/proc/diskstats", "/proc/meminfo", "/proc/stat", "/proc/swaps",
    "/proc/uptime", "/proc/loadavg", "/proc/slabinfo", "/proc/net/dev",
    "/proc/sys/kernel/ns_last_pid",
})


def _check_proc_destination(dest: str, kind: str, where: str) -> None:
    """runc's rule for /proc: only a proc mount may cover /proc itself, and
    nothing may be mounted below it but the lxcfs files above.  Without it
    ``-v X:/proc`` silently replaces the sandbox's /proc with a host directory."""
    if dest == "/proc" and kind != "proc":
        raise MountError(f"{where}.destination: /proc cannot be mounted because it is "
                         f"not of type proc")
    if dest.startswith("/proc/") and dest not in PROC_BIND_ALLOWED:
        raise MountError(f"{where}.destination: {dest} cannot be mounted because it is "
                         f"inside /proc")


def check(m: OciMount, where: str, base_dir: str) -> MountSpec:
    """One bundle mount as a MountSpec, or MountError naming ``where``.field."""
    kind = _kind(m)
    if kind not in TYPES:
        shown = repr(m.type) if m.type else "none (without a bind option)"
        raise MountError(f"{where}.type: unsupported mount type {shown}")
    dest = posixpath.normpath(m.destination)
    if not dest.startswith("/"):
        raise MountError(f"{where}.destination: must be an absolute path, not {m.destination!r}")
    if dest in ("/", "//"):
        raise MountError(f"{where}.destination: cannot mount over /")
    _check_proc_destination(dest, kind, where)
    readonly = False
    flags: list[str] = []
    size = mode = None
    uid = gid = 0
    for opt in m.options:
        key, eq, value = opt.partition("=")
        try:
            if opt == "ro" or opt == "rro":
                readonly = True
            elif opt in ("rw", "rrw"):
                readonly = False
            elif opt in FLAG_OPTIONS:
                if opt not in flags:
                    flags.append(opt)
            elif eq and key == "size":
                size = _size(value)
            elif eq and key == "mode":
                mode = int(value, 8) & 0o7777
            elif eq and key in ("uid", "gid"):
                n = int(value)
                if not 0 <= n < 1 << 32:
                    raise ValueError(value)
                uid, gid = (n, gid) if key == "uid" else (uid, n)
        except ValueError:
            raise MountError(f"{where}.options: bad value in {opt!r}") from None
        # everything else (propagation, atime, nr_inodes=, ptmxmode=, ...) is accepted
    source = m.source  # what /proc/mounts shows for a non-bind ("tmpfs", "shm", ...)
    is_file = False
    if kind == "bind":
        if not m.source:
            raise MountError(f"{where}.source: a bind mount needs a source")
        source = os.path.normpath(os.path.join(base_dir, m.source))
        try:
            st = os.stat(source)
        except OSError as exc:
            raise MountError(f"{where}.source: {source}: {exc.strerror}") from None
        if not (stat.S_ISDIR(st.st_mode) or stat.S_ISREG(st.st_mode)):
            raise MountError(f"{where}.source: {source}: not a directory or a regular file "
                             "(only those can be bound)")
        is_file = stat.S_ISREG(st.st_mode)
    if kind in ("sysfs", "cgroup", "cgroup2"):
        readonly = True  # ours are fixed trees; the application cannot change them
    return MountSpec(dest, kind, source, readonly, is_file, size, mode, uid, gid, tuple(flags))


def from_oci(mounts: Sequence[OciMount], bundle_dir: str) -> list[MountSpec]:
    """A bundle's mounts, in order, checked; BundleError names the field."""
    from sentry.oci.bundle import BundleError  # the OCI layer's error, not a dependency

    out = []
    for i, m in enumerate(mounts):
        try:
            out.append(check(m, f"mounts[{i}]", bundle_dir))
        except MountError as exc:
            raise BundleError(f"config.json: {exc}") from None
    return out


def parse_volume(text: str) -> MountSpec:
    """``HOST:DEST[:ro|rw]`` as ``docker run -v`` takes it (HOST absolute, or
    relative to the current directory; it must exist). MountError on a bad one."""
    parts = text.split(":")
    if len(parts) == 3 and parts[2] in ("ro", "rw"):
        host, dest, opt = parts
    elif len(parts) == 2:
        (host, dest), opt = parts, "rw"
    else:
        raise MountError(f"-v {text}: expected HOST:DEST[:ro]")
    if not host or not dest.startswith("/"):
        raise MountError(f"-v {text}: expected HOST:DEST[:ro] with an absolute DEST")
    try:
        return check(_Volume(dest, "bind", host, ("rbind", opt)), f"-v {text}", os.getcwd())
    except MountError as exc:
        raise MountError(str(exc).replace(".source:", ":").replace(".destination:", ":")) from None
