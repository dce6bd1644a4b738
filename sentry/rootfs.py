"""The sandbox's file tree at boot: the Gofer-served root under an in-memory
overlay, with devtmpfs at /dev (and tmpfs at /dev/shm) and procfs at /proc.

Writes land in the overlay's upper tmpfs: the host directory served by the
Gofer is opened read-only and never modified, as with `runsc do`.
"""

from __future__ import annotations

import errno
import logging
import os
import stat as _stat
from dataclasses import dataclass
from typing import Any

from gofer.client import GoferClient, GoferProcess, PendingGofer, spawn_gofer
from sentry.kernel.errors import SyscallError
from sentry.vfs import vfs
from sentry.vfs.devfs import mount_devfs
from sentry.vfs.goferfs import GoferFs
from sentry.vfs.mount import MountNamespace
from sentry.vfs.overlay import OverlayFs
from sentry.vfs.resolve import FsContext, resolve

log = logging.getLogger("pyvisor")


@dataclass
class RootFs:
    """What boot built, and what teardown must close."""

    ns: MountNamespace
    ctx: FsContext
    client: GoferClient
    gofer: GoferProcess
    lower: GoferFs

    def close(self) -> None:
        try:
            self.lower.close()
        except SyscallError:
            pass
        self.client.close()
        self.gofer.kill()
        self.gofer.wait(timeout=5)


def _debug_log_fd() -> int | None:
    """Where the Gofer's own warnings go: the debug log's file, else nowhere (never
    the application's stderr)."""
    for h in log.handlers:
        stream = getattr(h, "stream", None)
        if stream is not None and hasattr(stream, "fileno"):
            try:
                return stream.fileno()
            except (OSError, ValueError):
                return None
    return None


def _ensure_dir(ctx: FsContext, path: bytes) -> None:
    try:
        vfs.mkdir(ctx, None, path, 0o755)
    except SyscallError as exc:
        if exc.errno != errno.EEXIST:
            raise


def spawn(root_dir: str) -> PendingGofer:
    """Start the Gofer for ``root_dir`` early (main thread): its Python starts
    while the Sentry boots; :func:`build` connects to it."""
    return spawn_gofer(root_dir, readonly=True, stderr=_debug_log_fd())


def build(pending: PendingGofer, root_dir: str, kernel: Any, *, cwd: str | None) -> RootFs:
    """Connect to the Gofer and assemble the mount tree (main thread)."""
    client, gofer = pending.connect()
    try:
        lower = GoferFs(client, client.root, source=root_dir)
        ns = MountNamespace(OverlayFs(lower), source="overlay")
        ctx = FsContext.for_namespace(ns)
        _ensure_dir(ctx, b"/dev")
        mount_devfs(ns, resolve(ctx, b"/dev"))
        _ensure_dir(ctx, b"/proc")
        from sentry.procfs import ProcFilesystem  # above the kernel, wired here

        ns.mount(ProcFilesystem(kernel), resolve(ctx, b"/proc"), "proc")
        _ensure_dir(ctx, b"/tmp")
        ctx = FsContext.for_namespace(ns)
        if cwd is not None:
            try:
                vfs.chdir(ctx, None, os.fsencode(cwd))
            except SyscallError as exc:
                raise SyscallError(exc.errno) from None
        return RootFs(ns, ctx, client, gofer, lower)
    except BaseException:
        client.close()
        gofer.kill()
        raise


def read_executable(ctx: FsContext, path: bytes) -> bytes:
    """The bytes of an executable, through the VFS, with execve's errors."""
    desc = vfs.open(ctx, None, path, os.O_RDONLY)
    try:
        st = desc.stat()
        if not _stat.S_ISREG(st.mode):
            raise SyscallError(errno.EACCES)
        if not st.mode & 0o111:
            raise SyscallError(errno.EACCES)
        chunks = []
        off = 0
        while True:
            chunk = desc.pread(1 << 20, off)
            if not chunk:
                break
            chunks.append(chunk)
            off += len(chunk)
        return b"".join(chunks)
    finally:
        desc.release()
