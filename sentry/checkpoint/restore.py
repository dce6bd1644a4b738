"""Rebuilding a saved sandbox in a new kernel, before its first task runs.

The new Sentry boots as for a new container (same bundle: the same root,
mounts and Gofer), then, instead of loading the init's program, makes every
saved object again: address spaces (mm_state), descriptions and fd tables
(file_state), thread groups and tasks (task_state), each process in a new
stub process.  Tasks are returned with the registers to start with; the
caller starts them all at once, so no task runs while others are half made.

Everything read from the image is untrusted (a corrupt image is caught by
its checksum, image.py, but an image is still input): a value of the wrong
type or out of range raises ValueError/KeyError/TypeError, which the caller
reports as a one-line error.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sentry.checkpoint import file_state, mm_state, task_state, tmpfs_state
from sentry.kernel import dac
from sentry.kernel.itimer import RealTimer
from sentry.kernel.task import Task
from sentry.kernel.threadgroup import ThreadGroup
from sentry.loader import loader
from sentry.mm.address_space import AddressSpace
from sentry.systrap import stubs
from sentry.vfs import vfs
from sentry.vfs.fdtable import FdTable

if TYPE_CHECKING:
    from sentry.kernel.kernel import Kernel
    from sentry.systrap.processes import StubProcess
    from sentry.vfs.resolve import FsContext

Start = tuple[Task, list[int], int]
MAX_THREADS = stubs.lib.STUB_MAX_THREADS


def _context(root: FsContext, cwd: bytes, creds: Any) -> FsContext:
    ctx = root.fork()
    ctx.permission, ctx.owner_check = dac.check, dac.owner_or_root
    ctx.chown_check = dac.chown_check
    if creds is not None:
        ctx.uid, ctx.gid = creds.fsuid, creds.fsgid
    vfs.chdir(ctx, None, cwd)
    return ctx


def _stub_threads(proc: StubProcess, count: int) -> list[stubs.StubThread]:
    """``count`` host threads in a new stub process.  Its first thread makes
    the others (StubProcess.new_thread needs it stopped in an event), so with
    more than one, its first event is taken here and every task is told so
    (Task.boot_waited); each new thread stops in its own first event."""
    first = proc.thread(0)
    if count == 1:
        return [first]
    first.wait_event()
    threads = [first]
    for _ in range(count - 1):
        th = proc.new_thread(first)
        th.wait_event()
        threads.append(th)
    return threads


def restore(kernel: Kernel, root: FsContext, state: dict[str, Any]) -> list[Start]:
    """Make every saved process in ``kernel``; the tasks to start."""
    # What loading the init reads from the host before the Sentry confines
    # itself, read now: the restored processes' first execve needs it then.
    loader.host_auxv()
    tmpfs_state.restore(root, state["trees"])  # before files are opened again by path
    shared = mm_state.SharedTable()
    lengths = [int(n) for n in state["shared"]]
    mms: dict[int, AddressSpace] = {}
    fdtables: dict[int, FdTable] = {}
    reopener = file_state.Reopener(state["descs"], state["pipes"])
    groups: dict[int, ThreadGroup] = {}
    starts: list[Start] = []
    made_procs: list[Any] = []
    try:
        for rec in state["groups"]:
            tgid = int(rec["tgid"])
            if tgid <= 0 or tgid in groups:
                raise ValueError(f"bad or repeated pid {tgid}")
            zombie = bool(rec["zombie"])
            tasks = rec["tasks"]
            first_creds = task_state.restore_creds(tasks[0]["creds"]) if tasks else None
            if zombie:
                mm, fds, ctx, proc = AddressSpace(kernel.mf), FdTable(), root.fork(), None
            else:
                if not 1 <= len(tasks) <= MAX_THREADS:
                    raise ValueError(f"process {tgid}: {len(tasks)} tasks saved")
                ctx = _context(root, bytes(rec["cwd"]), first_creds)
                mi = int(rec["mm"])
                if mi not in mms:
                    mms[mi] = mm_state.restore(kernel.mf, state["mms"][mi], shared, lengths)
                mm = mms[mi]
                fi = int(rec["fds"])
                if fi not in fdtables:
                    fdtables[fi] = file_state.restore_fds(state["fdtables"][fi], reopener, ctx)
                fds = fdtables[fi]
                proc = kernel.platform.new_process(mm.arena)
                made_procs.append(proc)
            tg = ThreadGroup(tgid=tgid, parent=None, pgid=int(rec["pgid"]), sid=int(rec["sid"]),
                             mm=mm, fds=fds, proc=proc, fs=ctx, cwd=bytes(rec["cwd"]))
            task_state.apply_group(tg, rec)
            value, interval = (int(x) for x in rec["itimer"])
            if value > 0 and not zombie:
                tg.real_timer = RealTimer(kernel, tg)
                tg.real_timer.set(value, interval)
            if proc is not None:
                for trec, th in zip(tasks, _stub_threads(proc, len(tasks)), strict=True):
                    tid = int(trec["tid"])
                    if tid <= 0 or tid in kernel.tasks:
                        raise ValueError(f"bad or repeated tid {tid}")
                    t = Task(kernel, tg, th, tid, task_state.restore_creds(trec["creds"]))
                    t.boot_waited = len(tasks) > 1  # _stub_threads took the first event
                    task_state.apply_task(t, trec)
                    regs = [int(r) for r in trec["regs"]]
                    if len(regs) != stubs.NREGS:
                        raise ValueError(f"task {tid}: {len(regs)} registers saved")
                    tg.tasks.append(t)
                    kernel.tasks[tid] = t
                    starts.append((t, regs, int(trec["fs_base"])))
            groups[tgid] = tg
            kernel.thread_groups[tgid] = tg
        for rec in state["groups"]:
            parent = rec["parent"]
            if parent is not None:
                tg, ptg = groups[int(rec["tgid"])], groups[int(parent)]
                tg.parent = ptg
                ptg.children.append(tg)
        init = state["kernel"]["init"]
        kernel.init = groups[int(init)] if init is not None else None
        kernel._next_pid = int(state["kernel"]["next_pid"])  # noqa: SLF001 - alloc skips used ids
    except BaseException:
        for proc in made_procs:
            proc.kill()
            proc.release()
        with kernel.lock:
            kernel.thread_groups.clear()
            kernel.tasks.clear()
            kernel.init = None
        raise
    return starts
