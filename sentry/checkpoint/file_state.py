"""Fd tables and open file descriptions as plain data, and back.

Descriptions are shared (dup, fork), so they are saved once each in a table
and fd tables name them by index; a pipe is saved once with the data in its
buffer, and both ends point at it.  What each kind becomes:

- the init's stdio (the Sentry's own fds 0-2, HostFile): the new sandbox's
  fds 0-2 (as CRIU's external files, the runtime's stdio is the caller's);
- a pipe: a new pipe with the same buffered bytes, capacity and ends;
- a file opened by path whose contents are the host's (the Gofer's files) or
  are saved with the image (tmpfs, the in-memory overlay: tmpfs_state.py),
  a device node, a directory: opened again by path with the same flags, its
  offset (or directory position) set;
- anything else (sockets, eventfd, epoll, inotify, a terminal, a FIFO, an
  unlinked file, a file of devfs/sysfs/procfs, an exec'd process's stdio):
  CheckpointError naming the process, fd and object.
"""

from __future__ import annotations

import fcntl
from typing import TYPE_CHECKING, Any

from sentry.checkpoint.quiesce import CheckpointError
from sentry.kernel.errors import SyscallError
from sentry.vfs import vfs
from sentry.vfs.description import DirectoryDescription, RegularFileDescription, dentry_of
from sentry.vfs.devfs import _CharDevice
from sentry.vfs.fdtable import FdTable
from sentry.vfs.goferfs import GoferFs
from sentry.vfs.host import HostFile
from sentry.vfs.overlay import OverlayFs
from sentry.vfs.pipe import Pipe, PipeFile
from sentry.vfs.tmpfs import TmpFs

if TYPE_CHECKING:
    from sentry.vfs.file import FileDescription
    from sentry.vfs.resolve import FsContext

O_CREAT, O_EXCL, O_TRUNC = 0o100, 0o200, 0o1000


class FileTable:
    """Descriptions and pipes met while saving, by identity."""

    def __init__(self) -> None:
        self.descs: list[dict[str, Any]] = []
        self.pipes: list[dict[str, Any]] = []
        self._desc_index: dict[int, int] = {}
        self._pipe_index: dict[int, int] = {}


def _describe(ctx: FsContext, desc: FileDescription) -> str:
    try:
        return vfs.fd_path(ctx, desc).decode("utf-8", "replace")
    except Exception:  # noqa: BLE001 - only a name for an error message
        return type(desc).__name__


def _save_desc(ctx: FsContext, desc: FileDescription, table: FileTable, where: str
               ) -> dict[str, Any]:
    flags = desc.flags
    if isinstance(desc, HostFile):
        if desc.owned or not 0 <= desc.host_fd <= 2:
            raise CheckpointError(f"{where}: {_describe(ctx, desc)} (a host file passed in "
                                  "by exec) cannot be saved")
        return {"kind": "stdio", "fd": desc.host_fd, "flags": flags}
    if isinstance(desc, PipeFile):
        if desc.inode is not None:
            raise CheckpointError(f"{where}: the FIFO {_describe(ctx, desc)} cannot be saved")
        pipe = desc.pipe
        idx = table._pipe_index.get(id(pipe))
        if idx is None:
            idx = table._pipe_index[id(pipe)] = len(table.pipes)
            with pipe._lock:  # noqa: SLF001 - its buffer is what is saved
                table.pipes.append({"buf": bytes(pipe._buf), "capacity": pipe.capacity})  # noqa: SLF001
        return {"kind": "pipe", "pipe": idx, "flags": flags}
    d = dentry_of(desc)
    path_kind = isinstance(desc, (RegularFileDescription, DirectoryDescription, _CharDevice))
    if d is None or not path_kind:
        raise CheckpointError(f"{where}: {_describe(ctx, desc)} ({type(desc).__name__}) "
                              "cannot be saved")
    if d.dead:
        raise CheckpointError(f"{where}: {_describe(ctx, desc)} was removed; an unlinked "
                              "open file cannot be saved")
    if isinstance(desc, RegularFileDescription) and not (
            isinstance(d.mount.fs, (GoferFs, OverlayFs)) or type(d.mount.fs) is TmpFs):
        raise CheckpointError(f"{where}: {_describe(ctx, desc)} is a file of "
                              f"{type(d.mount.fs).__name__}, whose contents are not saved")
    rec: dict[str, Any] = {"kind": "path", "path": vfs.fd_path(ctx, desc), "flags": flags,
                           "cls": type(desc).__name__}
    if isinstance(desc, RegularFileDescription):
        rec["offset"] = desc.offset
    elif isinstance(desc, DirectoryDescription):
        rec["pos"] = desc.pos
    return rec


def save_fds(ctx: FsContext, fds: FdTable, table: FileTable, who: str) -> list[list[Any]]:
    """[[fd, description index, cloexec], ...] for one fd table."""
    out = []
    for fd in fds.fds():
        try:
            desc, cloexec = fds.get(fd), fds.get_cloexec(fd)
        except SyscallError:
            continue  # closed meanwhile (no task runs: cannot happen)
        idx = table._desc_index.get(id(desc))
        if idx is None:
            rec = _save_desc(ctx, desc, table, f"{who} fd {fd}")
            idx = table._desc_index[id(desc)] = len(table.descs)
            table.descs.append(rec)
        out.append([fd, idx, bool(cloexec)])
    return out


class Reopener:
    """Makes the saved descriptions again, each once, on first use."""

    def __init__(self, descs: list[dict[str, Any]], pipes: list[dict[str, Any]]) -> None:
        self.descs = descs
        self.pipe_recs = pipes
        self.made: dict[int, FileDescription] = {}
        self.pipes: dict[int, Pipe] = {}

    def _pipe(self, idx: int) -> Pipe:
        pipe = self.pipes.get(idx)
        if pipe is None:
            rec = self.pipe_recs[idx]
            pipe = self.pipes[idx] = Pipe(int(rec["capacity"]))
            pipe.restore(rec["buf"])
        return pipe

    def get(self, idx: int, ctx: FsContext) -> FileDescription:
        desc = self.made.get(idx)
        if desc is not None:
            return desc
        rec = self.descs[idx]
        kind, flags = rec["kind"], int(rec["flags"])
        if kind == "stdio":
            host_fd = int(rec["fd"])
            try:
                fcntl.fcntl(host_fd, fcntl.F_GETFL)
            except OSError:
                raise ValueError(f"stdio fd {host_fd} is not open in the new sandbox") from None
            desc = HostFile(host_fd, flags)
        elif kind == "pipe":
            desc = PipeFile(self._pipe(int(rec["pipe"])), flags)
        elif kind == "path":
            path = bytes(rec["path"])
            try:
                desc = vfs.open(ctx, None, path, flags & ~(O_CREAT | O_EXCL | O_TRUNC))
            except SyscallError as exc:
                raise ValueError(f"cannot open {path.decode('utf-8', 'replace')} again: "
                                 f"{exc}") from None
            if type(desc).__name__ != rec["cls"]:
                raise ValueError(f"{path.decode('utf-8', 'replace')} is now a "
                                 f"{type(desc).__name__}, not a {rec['cls']}")
            if "offset" in rec:
                desc.offset = int(rec["offset"])  # type: ignore[attr-defined]
            if "pos" in rec:
                desc.pos = int(rec["pos"])  # type: ignore[attr-defined]
            desc.flags = flags
        else:
            raise ValueError(f"unknown file kind {kind!r}")
        self.made[idx] = desc
        return desc


def restore_fds(entries: list[list[Any]], reopener: Reopener, ctx: FsContext) -> FdTable:
    fds = FdTable()
    for fd, idx, cloexec in entries:
        fds.install_at(int(fd), reopener.get(int(idx), ctx), cloexec=bool(cloexec))
    return fds
