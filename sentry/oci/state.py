"""Container state on disk: one directory per container under the state root.

Layout (``--root``, default /var/run/pyvisor, created 0700)::

    <root>/<id>/            0700, root-owned: only the runtime reaches it
        lock                flock(2) target serialising commands on this id
        config.json         the bundle's config as it was at create (hooks for delete)
        state.json          the OCI state plus private fields, replaced atomically
        control.sock        the sandbox host's control socket (control.py)

Facts this relies on:

- rename(2) within a directory is atomic, so a reader sees the old or the new
  state.json, never half of one: state and list read without the lock.
- flock(2) locks an open file description, not a name.  ``delete`` removes the
  directory while another command may be queued on its lock; that command then
  holds a lock on an unlinked file, so after locking we check that the name
  still leads to the same inode, and report "does not exist" otherwise.
- A pid alone does not name a process for long: pids are reused.  The sandbox
  host's start time (field 22 of /proc/PID/stat) is recorded next to its pid, and
  a process only counts as the container if both match and it is not a zombie
  (a reparented zombie still answers kill(pid, 0)).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import re
from collections.abc import Iterator

TYPE_CHECKING = False  # typing unimported at run time: see sentry/oci/shimcalls.py
if TYPE_CHECKING:
    from typing import Any

ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
MAX_ID = 1024
STATE_FILE = "state.json"
LOCK_FILE = "lock"
CONFIG_COPY = "config.json"
SOCKET_NAME = "control.sock"
# Keys of state.json that ``state`` prints (the spec's, plus runc's extras).
# Statuses with a sandbox host behind them (a dead host means "stopped").
LIVE = ("created", "running", "paused")
PUBLIC_KEYS = ("ociVersion", "id", "pid", "status", "bundle", "rootfs", "created", "owner",
               "annotations")


class StateError(Exception):
    """A one-line reason a command cannot act on a container."""


class NotFound(StateError):
    pass


def validate_id(cid: str) -> str:
    """runc's rule: letters, digits, ``_ . -``, not starting with a separator."""
    if not cid or len(cid) > MAX_ID or not ID_RE.fullmatch(cid):
        raise StateError(f"invalid container id {cid!r}: use [A-Za-z0-9][A-Za-z0-9_.-]*")
    return cid


def now_rfc3339() -> str:
    import datetime  # here: most commands never need it

    return datetime.datetime.now(datetime.UTC).isoformat(timespec="microseconds").replace(
        "+00:00", "Z")


def stat_fields(pid: int | str) -> list[bytes] | None:
    """/proc/PID/stat from field 3 (state) on; None if the process is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    # comm (field 2) may hold spaces and parentheses: split after the last ')'.
    return data[data.rfind(b")") + 2:].split() or None


def process_start_time(pid: int) -> int | None:
    """Field 22 of /proc/PID/stat (clock ticks since boot); None if gone or a zombie."""
    fields = stat_fields(pid)
    if fields is None or fields[0] in (b"Z", b"X"):
        return None
    return int(fields[19])


def host_alive(pid: int, start_time: int | None) -> bool:
    if pid <= 0:
        return False
    t = process_start_time(pid)
    return t is not None and (start_time is None or t == start_time)


class StateRoot:
    """The directory given by --root."""

    def __init__(self, path: str) -> None:
        self.path = os.path.abspath(path)

    def ensure(self) -> None:
        os.makedirs(self.path, mode=0o700, exist_ok=True)
        st = os.stat(self.path)
        if st.st_uid != os.geteuid():
            raise StateError(f"state root {self.path}: owned by uid {st.st_uid}, not us")
        if st.st_mode & 0o077:
            os.chmod(self.path, 0o700)

    def container_dir(self, cid: str) -> str:
        return os.path.join(self.path, validate_id(cid))

    def ids(self) -> list[str]:
        try:
            names = os.listdir(self.path)
        except FileNotFoundError:
            return []
        return sorted(n for n in names if ID_RE.fullmatch(n)
                      and os.path.isdir(os.path.join(self.path, n)))

    def new_container(self, cid: str) -> Container:
        """Make the directory for a new id; an existing one is an error (no reuse)."""
        self.ensure()
        d = self.container_dir(cid)
        try:
            os.mkdir(d, 0o700)
        except FileExistsError:
            raise StateError(f"container with id {cid!r} already exists") from None
        return Container(self, cid)

    def container(self, cid: str) -> Container:
        d = self.container_dir(cid)
        if not os.path.isdir(d):
            raise NotFound(f"container {cid!r} does not exist")
        return Container(self, cid)


class Container:
    """One container's directory; methods never follow a stale path silently."""

    def __init__(self, root: StateRoot, cid: str) -> None:
        self.root = root
        self.id = cid
        self.dir = root.container_dir(cid)

    @property
    def socket_path(self) -> str:
        return os.path.join(self.dir, SOCKET_NAME)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold this container's lock; raises NotFound if it was deleted meanwhile."""
        path = os.path.join(self.dir, LOCK_FILE)
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        except FileNotFoundError:
            raise NotFound(f"container {self.id!r} does not exist") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                same = os.stat(path, follow_symlinks=False).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if not same:
                raise NotFound(f"container {self.id!r} does not exist")
            yield
        finally:
            os.close(fd)

    def read(self) -> dict[str, Any] | None:
        """state.json as written, or None while the container is still being created."""
        try:
            with open(os.path.join(self.dir, STATE_FILE), "rb") as f:
                data = json.loads(f.read(1 << 20))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise StateError(f"container {self.id!r}: unreadable state: {exc}") from None
        return data if isinstance(data, dict) else None

    def write(self, state: dict[str, Any]) -> None:
        """Replace state.json atomically (tmp file, fsync, rename)."""
        tmp = os.path.join(self.dir, f".{STATE_FILE}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, json.dumps(state, sort_keys=True).encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, os.path.join(self.dir, STATE_FILE))

    def update(self, **changes: Any) -> None:
        """Merge ``changes`` into state.json; a deleted container is not an error."""
        try:
            cur = self.read() or {}
            cur.update(changes)
            self.write(cur)
        except (OSError, StateError) as exc:
            if getattr(exc, "errno", None) != errno.ENOENT and os.path.isdir(self.dir):
                raise

    def current(self) -> dict[str, Any]:
        """The state as a reader should see it: a dead host process means stopped."""
        st = self.read()
        if st is None:
            return {"ociVersion": "1.1.0", "id": self.id, "status": "creating", "pid": 0,
                    "bundle": "", "annotations": {}}
        if st.get("status") in LIVE and not host_alive(
                int(st.get("pid", 0)), st.get("hostStartTime")):
            st["status"] = "stopped"
        return st

    def public(self) -> dict[str, Any]:
        st = self.current()
        out = {k: st[k] for k in PUBLIC_KEYS if k in st}
        if out.get("status") == "stopped":
            out["pid"] = 0  # runc reports no pid for a stopped container
        return out

    def remove(self) -> None:
        """Forget the container: its host cgroups (once its processes are
        gone, as here) and its state directory."""
        from sentry.oci import cgroups

        cgroups.remove(self.dir)
        _remove_flat(self.dir)
        if os.path.exists(self.dir):
            import shutil

            shutil.rmtree(self.dir)  # a second pass raises with the real reason


def _remove_flat(directory: str) -> None:
    """Remove a container directory, which holds only files and a socket,
    without importing shutil (and the compression modules it loads) on the
    path of every `delete`; anything deeper goes to shutil.rmtree."""
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return
    except OSError:
        entries = []
    for entry in entries:
        with contextlib.suppress(OSError):
            if entry.is_dir(follow_symlinks=False):
                import shutil

                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                os.unlink(entry.path)
    with contextlib.suppress(OSError):
        os.rmdir(directory)
