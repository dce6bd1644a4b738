"""The checkpoint op: quiesce the kernel, save every object, write the image.

Runs in the confined Sentry (sentry/oci/sentry_ops.py's ``checkpoint`` op):
it opens nothing, the image goes to the fd the host sent with the request.
The order: quiesce (every task held, quiesce.py), then the state is read with
nothing running, then the held tasks either go on (--leave-running) or the
host kills the sandbox.  Any CheckpointError thaws the kernel and is the
op's one-line error.
"""

from __future__ import annotations

import contextlib
import os
from typing import TYPE_CHECKING, Any

from sentry.checkpoint import file_state, image, mm_state, quiesce, task_state, tmpfs_state
from sentry.checkpoint.quiesce import CheckpointError
from sentry.kernel.errors import SyscallError
from sentry.vfs import vfs
from sentry.vfs.mount import format_mounts

if TYPE_CHECKING:
    from sentry.kernel.kernel import Kernel
    from sentry.vfs.resolve import FsContext


def _mount_table(ctx: FsContext) -> list[str]:
    """The mount table as /proc/mounts shows it: recorded for the reader of the
    image (the restored sandbox's mounts come from the same bundle)."""
    try:
        text = format_mounts(ctx.ns.mounts(ctx.root)) if ctx.ns is not None else b""
    except Exception:  # noqa: BLE001 - informational only
        return []
    return text.decode("utf-8", "replace").splitlines()


def _refuse_ipc(kernel: Kernel) -> None:
    """System V IPC objects and POSIX message queues are not saved: refuse,
    naming them, rather than restore without them."""
    ipc = kernel.ipc
    counts = {"System V semaphore sets": len(ipc.sem.sets.by_index),
              "System V message queues": len(ipc.msg.queues.by_index),
              "System V shared memory segments": len(ipc.shm.segments.by_index),
              "POSIX message queues": len(getattr(ipc.mqueue.root, "entries", ()))}
    held = [f"{n} {what}" for what, n in counts.items() if n]
    if held:
        raise CheckpointError(f"the sandbox has {', '.join(held)}, which cannot be saved")


def snapshot(kernel: Kernel, root: FsContext) -> dict[str, Any]:
    """Every kernel object as plain data (the kernel must be quiesced)."""
    _refuse_ipc(kernel)
    shared = mm_state.SharedTable()
    files = file_state.FileTable()
    mms: list[dict[str, Any]] = []
    mm_index: dict[int, int] = {}
    fdtables: list[list[list[Any]]] = []
    fd_index: dict[int, int] = {}
    groups = []
    with kernel.lock:
        tgs = sorted(kernel.thread_groups.values(), key=lambda g: g.tgid)
        init = kernel.init
        next_pid = kernel._next_pid  # noqa: SLF001
    for tg in tgs:
        who = f"process {tg.tgid} ({(tg.comm or b'').decode('utf-8', 'replace')})"
        rec = task_state.save_group(tg, who)
        rec["mm"] = rec["fds"] = None
        rec["cwd"] = b"/"
        if not tg.zombie:
            ctx = tg.fs
            if ctx is None or ctx.root is not root.root:
                raise CheckpointError(f"{who}: a changed root (chroot) cannot be saved")
            try:
                rec["cwd"] = vfs.getcwd(ctx)
            except SyscallError:
                raise CheckpointError(f"{who}: its working directory was removed") from None
            if id(tg.mm) not in mm_index:
                if any(g is not tg and g.mm is tg.mm and not g.zombie for g in tgs):
                    raise CheckpointError(f"{who} shares its memory with another process "
                                          "(vfork or CLONE_VM): cannot be saved")
                mm_index[id(tg.mm)] = len(mms)
                mms.append(mm_state.save(tg.mm, shared, who))
            rec["mm"] = mm_index[id(tg.mm)]
            if id(tg.fds) not in fd_index:
                fd_index[id(tg.fds)] = len(fdtables)
                fdtables.append(file_state.save_fds(ctx, tg.fds, files, who))
            rec["fds"] = fd_index[id(tg.fds)]
        groups.append(rec)
    return {
        "kernel": {"next_pid": next_pid, "init": init.tgid if init is not None else None,
                   "hostname": kernel.uts.nodename},
        "groups": groups, "mms": mms, "shared": shared.lengths, "fdtables": fdtables,
        "descs": files.descs, "pipes": files.pipes, "mounts": _mount_table(root),
        "trees": tmpfs_state.save(root),
    }


def checkpoint(kernel: Kernel, root: FsContext, fd: int, leave_running: bool) -> dict[str, Any]:
    """The op: write the image to ``fd`` (closed here); the reply map."""
    was_paused = kernel.frozen  # containerd pauses a task before checkpointing it
    try:
        try:
            quiesce.quiesce(kernel, keep_frozen=was_paused)
        except CheckpointError as exc:
            return {"ok": False, "error": f"checkpoint: {exc}"}
        try:
            data = image.encode(snapshot(kernel, root))
            image.write_fd(fd, data)
        except CheckpointError as exc:
            quiesce.resume(kernel, was_paused)
            return {"ok": False, "error": f"checkpoint: {exc}"}
        except OSError as exc:
            quiesce.resume(kernel, was_paused)
            return {"ok": False, "error": f"checkpoint: writing the image: {exc.strerror}"}
        if leave_running:
            quiesce.resume(kernel, was_paused)
        return {"ok": True, "bytes": len(data)}
    finally:
        with contextlib.suppress(OSError):
            os.close(fd)
