"""clone for new processes (fork, vfork, CLONE_VM without threads) and execve.

A new process is a new stub process from the zygote.  Its memory is a copy of
the parent's (mm.fork(): private pages copied sparsely, shared pages shared) or,
with CLONE_VM, the very same address space mapped into the new stub, which is
how vfork's child writes what its parent later reads.  The child task's first
trap is answered with the parent's registers and RAX = 0.

Limits, as Linux's pids controller and a host that runs out give them: a
clone beyond the container's pids limit (``kernel.pids_limit``: OCI
linux.resources.pids.limit, Docker's --pids-limit) fails with EAGAIN, and so
does one the host cannot back with a thread or a stub process.  The host
cgroup holds the Sentry's own threads and processes too, so it is sized
above the container's limit (sentry/oci/cgroups.py) and the limit on the
container's tasks is kept here, as gVisor's Sentry keeps it.
"""

from __future__ import annotations

import errno
import threading
from typing import TYPE_CHECKING, Any

from sentry.kernel import cputimers, creds, execimage, namespaces, pidns, ptrace, rlimits
from sentry.kernel.creds import CAP_SYS_ADMIN, CAP_SYS_RESOURCE
from sentry.kernel.errors import SyscallError
from sentry.kernel.task import ExecSwitch, Task
from sentry.kernel.threadgroup import ThreadGroup
from sentry.kernel.workers import WORKERS, NoThread
from sentry.mm.address_space import StubOp
from sentry.rootfs import read_executable
from sentry.systrap import patch
from sentry.systrap.stubs import RAX, RSP
from sentry.vfs import cgroupfs

if TYPE_CHECKING:
    from sentry.kernel.kernel import Kernel

CLONE_VM = 0x00000100
CLONE_FS = 0x00000200
CLONE_FILES = 0x00000400
CLONE_SIGHAND = 0x00000800
CLONE_PIDFD = 0x00001000
CLONE_PTRACE = 0x00002000
CLONE_VFORK = 0x00004000
CLONE_PARENT = 0x00008000
CLONE_THREAD = 0x00010000
CLONE_NEWNS = 0x00020000
CLONE_SYSVSEM = 0x00040000
CLONE_SETTLS = 0x00080000
CLONE_PARENT_SETTID = 0x00100000
CLONE_CHILD_CLEARTID = 0x00200000
CLONE_DETACHED = 0x00400000
CLONE_UNTRACED = 0x00800000
CLONE_CHILD_SETTID = 0x01000000
CSIGNAL = 0xFF
CLONE_CLEAR_SIGHAND = 0x100000000  # clone3: handlers back to SIG_DFL (ignored stay ignored)
# prctl settings a forked child keeps (ThreadGroup.prctl keys; see syscalls/misc.py)
INHERITED_PRCTL = frozenset({"no_new_privs", "dumpable", "personality"})
NAMESPACE_FLAGS = 0x7E020080  # NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET, NEWTIME
OP_MAP = 1
CAP_CHECKPOINT_RESTORE = 40


def _shared_map_ops(mm: object) -> list[StubOp]:
    """OP_MAPs that show every VMA of ``mm`` to one more stub process."""
    return [StubOp(OP_MAP, v.start, v.end - v.start, v.prot, v.offset)
            for v in mm.vmas()]  # type: ignore[attr-defined]


def _child_task(parent: Task, tg: ThreadGroup, thread: object, tid: int, flags: int,
                stack: int, ctid: int) -> tuple[Task, list[int]]:
    """The new task of a clone and the registers it starts with: the parent's,
    returning 0, on ``stack`` when one was given."""
    child = Task(parent.kernel, tg, thread, tid, parent.creds)  # type: ignore[arg-type]
    child.sigmask = parent.sigmask
    child.sched = parent.sched.forked()
    child.cpu_mask = parent.cpu_mask
    child.seccomp = parent.seccomp
    child.clear_child_tid = ctid if flags & CLONE_CHILD_CLEARTID else 0
    if parent.ptrace is not None:
        ptrace.on_clone(parent, child, flags)
    regs = list(parent.regs)
    regs[RAX] = 0
    if stack:
        regs[RSP] = stack
    return child, regs


def _write_tids(parent: Task, child_mm: object, child: Task, flags: int, ptid: int,
                ctid: int) -> int:
    """CLONE_PARENT_SETTID (in the parent's memory, and the child's copy of
    it) with the child's id as the parent sees it, and CLONE_CHILD_SETTID (in
    the child's memory) with the id the child sees; the first is returned
    (what clone returns to the parent)."""
    tid = pidns.vtid(pidns.active(parent.tg), child)
    tidb = tid.to_bytes(4, "little")
    if flags & CLONE_PARENT_SETTID:
        parent.mm.copy_out(ptid, tidb)
        if child_mm is not parent.mm:
            child_mm.copy_out(ptid, tidb)  # type: ignore[attr-defined]
    if flags & CLONE_CHILD_SETTID:
        own = pidns.vtid(pidns.active(child.tg), child).to_bytes(4, "little")
        child_mm.copy_out(ctid, own)  # type: ignore[attr-defined]
    return tid


def tasks_charged(kernel: Kernel) -> int:
    """What the pids controller counts: every live task (thread), and each
    zombie process until it is reaped (its leader still exists)."""
    with kernel.lock:
        return len(kernel.tasks) + sum(1 for g in kernel.thread_groups.values()
                                       if g.zombie and not g.reaped)


def _charge(kernel: Kernel) -> None:
    """Count one more task against the container's pids limit, or EAGAIN;
    :func:`_settle` ends the charge once the task is registered (or failed)."""
    if kernel.pids_limit is None:
        return
    with kernel.lock:
        if tasks_charged(kernel) + kernel.pids_pending >= kernel.pids_limit:
            raise SyscallError(errno.EAGAIN)
        kernel.pids_pending += 1


def _check_nproc(parent: Task) -> None:
    """RLIMIT_NPROC, as copy_process(): EAGAIN when the caller's real user
    already has as many tasks (threads included, zombies until reaped) as its
    soft limit, unless that user is root or the caller has CAP_SYS_RESOURCE
    or CAP_SYS_ADMIN."""
    limit = rlimits.get(parent.tg, rlimits.RLIMIT_NPROC)[0]
    c = parent.creds
    if limit == rlimits.RLIM_INFINITY or c.uid == 0:
        return
    if c.capable(CAP_SYS_RESOURCE) or c.capable(CAP_SYS_ADMIN):
        return
    kernel = parent.kernel
    with kernel.lock:
        n = sum(1 for t in kernel.tasks.values() if t.creds.uid == c.uid)
        n += sum(1 for g in kernel.thread_groups.values()
                 if g.zombie and not g.reaped and g.tasks and g.tasks[0].creds.uid == c.uid)
    if n >= limit:
        raise SyscallError(errno.EAGAIN)


def _settle(kernel: Kernel) -> None:
    if kernel.pids_limit is not None:
        with kernel.lock:
            kernel.pids_pending -= 1


def _reserve_worker() -> Any:
    """The new task's Sentry thread, taken before the task exists."""
    try:
        return WORKERS.reserve()
    except NoThread:
        raise SyscallError(errno.EAGAIN) from None


def _clone_thread(parent: Task, flags: int, stack: int, ptid: int, ctid: int,
                  tls: int, set_tid: int = 0) -> int:
    """A new thread: a new host thread in the same stub process, its own slot."""
    if not flags & CLONE_SIGHAND or not flags & CLONE_VM:
        raise SyscallError(errno.EINVAL)
    if flags & NAMESPACE_FLAGS:  # namespaces are per process here
        raise SyscallError(errno.EINVAL)
    kernel = parent.kernel
    tg = parent.tg
    _check_nproc(parent)
    _charge(kernel)
    worker = None
    try:
        worker = _reserve_worker()
        try:
            th = tg.proc.new_thread(parent.thread)
        except Exception:
            raise SyscallError(errno.EAGAIN) from None
        tid = kernel.alloc_pid(set_tid)
        child, regs = _child_task(parent, tg, th, tid, flags, stack, ctid)
        with kernel.lock:
            pidns.enter_thread(kernel, child)
            kernel.tasks[tid] = child
            tg.tasks.append(child)
            _settle(kernel)
    except BaseException:
        _settle(kernel)
        if worker is not None:
            WORKERS.release(worker)
        raise
    child.boot_fp = parent.thread.clone_fp()
    vtid = _write_tids(parent, parent.mm, child, flags, ptid, ctid)
    child.start(regs, tls if flags & CLONE_SETTLS else parent.fs_base, worker)
    return vtid


def do_clone(parent: Task, flags: int, stack: int, ptid: int, ctid: int, tls: int,
             set_tid: list[int] | None = None, into_cgroup: Any = None) -> int:
    """clone: a thread, or a new process (copied or, with CLONE_VM, shared memory).
    ``flags`` may carry clone3's CLONE_CLEAR_SIGHAND; ``set_tid`` is clone3's
    (the innermost pid namespace's id first).  Returns the new task's id as
    the caller sees it."""
    set_tid = set_tid or []
    if flags & CLONE_THREAD:
        if len(set_tid) > len(pidns.chain(pidns.active(parent.tg))) + 1:
            raise SyscallError(errno.EINVAL)
        pidns.check_set_tid(set_tid, pidns.active(parent.tg), namespaces.nsset(parent.tg).user,
                            parent.creds.capable(CAP_SYS_ADMIN)
                            or parent.creds.capable(CAP_CHECKPOINT_RESTORE))
        depth = len(pidns.chain(pidns.active(parent.tg)))
        return _clone_thread(parent, flags, stack, ptid, ctid, tls,
                             set_tid[depth] if len(set_tid) > depth else 0)
    if flags & CLONE_SIGHAND and not flags & CLONE_VM:
        raise SyscallError(errno.EINVAL)
    if flags & NAMESPACE_FLAGS:
        namespaces.check_clone(parent, flags)
    kernel = parent.kernel
    ptg = parent.tg
    child_ns = pidns.for_children(ptg)
    if flags & namespaces.CLONE_NEWPID:
        pidns.check_unshared(ptg)
        child_ns = pidns.new_child_ns(child_ns, namespaces.nsset(ptg).user)
    # set_tid names the ids from the innermost namespace out; the last one
    # that reaches the sandbox's first namespace is its sandbox-wide id.
    depth = len(pidns.chain(child_ns))
    if len(set_tid) > depth + 1:
        raise SyscallError(errno.EINVAL)
    global_want = set_tid[depth] if len(set_tid) > depth else 0
    pidns.check_set_tid(set_tid, child_ns, namespaces.nsset(ptg).user,
                        parent.creds.capable(CAP_SYS_ADMIN)
                        or parent.creds.capable(CAP_CHECKPOINT_RESTORE))
    _check_nproc(parent)
    _charge(kernel)
    worker = mm = fds = None
    try:
        worker = _reserve_worker()
        if flags & CLONE_VM:
            mm = ptg.mm
            patch.freeze(mm)  # two stub processes now map it (sentry/systrap/patch.py)
            child_ops = _shared_map_ops(mm)
        else:
            mm = ptg.mm.fork()
            mm.defer_frees = True
            child_ops = list(mm.pending)
            mm.pending.clear()
        fds = ptg.fds if flags & CLONE_FILES else ptg.fds.fork()
        try:
            proc = kernel.platform.new_process(mm.arena)
        except Exception:  # the zygote could not clone: the host's EAGAIN
            raise SyscallError(errno.EAGAIN) from None
    except BaseException:
        _settle(kernel)
        if worker is not None:
            WORKERS.release(worker)
        if mm is not None and not flags & CLONE_VM:
            mm.release()
            mm.commit_frees()  # no stub has mapped the child's memory
        if fds is not None and not flags & CLONE_FILES:
            fds.close_all()
        raise
    try:
        tid = kernel.alloc_pid(global_want)
        real_parent = ptg.parent if flags & CLONE_PARENT and ptg.parent is not None else ptg
        tg = ThreadGroup(
            tgid=tid, parent=real_parent, pgid=ptg.pgid, sid=ptg.sid, mm=mm, fds=fds, proc=proc,
            fs=ptg.fs if flags & CLONE_FS or ptg.fs is None else ptg.fs.fork(), cwd=ptg.cwd,
            exe=ptg.exe, exe_file=ptg.exe_file, argv=list(ptg.argv), comm=ptg.comm,
            umask=ptg.umask, rlimits=dict(ptg.rlimits),
            exit_signal=ptg.exit_signal if flags & CLONE_PARENT else flags & CSIGNAL,
            # fork keeps no_new_privs, dumpable and personality, not pdeathsig or
            # subreaper (keepcaps is a securebit: the credentials carry it)
            prctl={k: v for k, v in ptg.prctl.items() if k in INHERITED_PRCTL},
            tty=ptg.tty, namespaces=ptg.namespaces,
        )
        if flags & NAMESPACE_FLAGS:
            namespaces.apply_clone(parent, tg, flags)
        namespaces.settle_child(tg)
        cgroupfs.on_fork(kernel, ptg, tg, into_cgroup)
        if flags & namespaces.CLONE_NEWPID and child_ns is not None:
            child_ns.owner = namespaces.nsset(tg).user  # a CLONE_NEWUSER's new one owns it
        cputimers.watch_cpu_limit(parent.kernel, tg)  # an inherited RLIMIT_CPU
        tg.sigactions = {s: type(a)(a.handler, a.flags, a.restorer, a.mask)
                         for s, a in ptg.sigactions.items()
                         if not flags & CLONE_CLEAR_SIGHAND or a.handler == 1}
        child, regs = _child_task(parent, tg, proc.thread(0), tid, flags, stack, ctid)
        child.altstack = parent.altstack
        fs_base = tls if flags & CLONE_SETTLS else parent.fs_base
        with kernel.lock:
            pidns.enter(kernel, tg, child, child_ns, set_tid[:depth])
            try:
                vtid = _write_tids(parent, mm, child, flags, ptid, ctid)
            except BaseException:
                pidns.reaped(tg)
                raise
            kernel.register(tg, child)
    except BaseException:
        proc.kill()
        proc.release()
        if not flags & CLONE_VM:
            mm.release()
            mm.commit_frees()
        if not flags & CLONE_FILES:
            fds.close_all()
        WORKERS.release(worker)
        raise
    finally:
        _settle(kernel)
    done = threading.Event()
    if flags & CLONE_VFORK:
        tg.vfork_waiters.append(done)
    child.boot_ops = child_ops
    child.boot_private = not flags & CLONE_VM
    child.boot_fp = parent.thread.clone_fp()
    child.start(regs, fs_base, worker)
    if flags & CLONE_VFORK:
        if parent.ptrace is not None:  # PTRACE_EVENT_VFORK comes before the wait
            ptrace.vfork_waiting(parent)
        while not done.wait(0.05):
            if parent.killed:
                break
        if parent.ptrace is not None:
            ptrace.vfork_done(parent, tid)
    return vtid


def do_execve(task: Task, path: bytes, argv: list[bytes], envp: list[bytes]) -> None:
    """Replace the task's image; raises ExecSwitch for the task loop to switch stubs."""
    kernel = task.kernel
    ctx = task.tg.fs

    found: list[Any] = []

    def read_file(p: bytes) -> bytes:
        return read_executable(ctx, p, found, kernel.image_cache)

    try:
        image, argv, execfn = execimage.prepare(read_file, path, argv)
        # The file the exec ran, the last prepare read (a #! script's
        # interpreter, as Linux's bprm->file): Linux's mm->exe_file.
        exe_file = found[-1]
        c, secure = exec_creds(task, exe_file)
        # The new image's private memory goes into the old one's arena only
        # when no other process's stub holds that arena (a vfork parent does).
        old_proc, old_mm = task.tg.proc, task.tg.mm
        arena = (old_mm.arena if old_proc is not None and old_proc.arena is old_mm.arena
                 and not _shared_with_others(task, old_mm) else None)
        mm, result = execimage.load(kernel.mf, image, argv, envp, execfn,
                                    read_file, (c.uid, c.euid, c.gid, c.egid, int(secure)),
                                    kernel.image_cache, arena)
    except execimage.ImageError as exc:
        raise SyscallError(exc.errno) from None
    tg = task.tg
    # A process with one thread keeps its stub process (emptied by the switch):
    # no zygote clone, no teardown. Other threads are ended by killing the
    # whole stub process, so then the image needs a new one.
    proc = None
    while True:
        with kernel.lock:  # execve ends every other thread of the process (de_thread)
            others = [t for t in tg.live_tasks() if t is not task]
            if (not others and tg.proc.arena is mm.arena) or proc is not None:
                for t in others:
                    t.dethreaded = True
                    t.kill()
                break
        try:
            proc = kernel.platform.new_process(mm.arena)
        except Exception:
            mm.release()
            mm.commit_frees()
            raise SyscallError(errno.EAGAIN) from None
    old_mm = tg.mm
    tg.mm = mm
    task.creds = c
    tg.exe = execfn
    tg.exe_file = exe_file
    tg.argv = argv
    tg.comm = path.rsplit(b"/", 1)[-1][:15]
    tg.fds.close_cloexec()
    with kernel.lock:
        for s, act in list(tg.sigactions.items()):
            if act.handler not in (0, 1):  # handlers reset; ignored stays ignored
                del tg.sigactions[s]
        for w in tg.vfork_waiters:
            w.set()
        tg.vfork_waiters.clear()
    task.altstack = (0, 2, 0)
    task.fs_base = 0
    release_old = old_mm is not mm and not _shared_with_others(task, old_mm)
    raise ExecSwitch(proc, result.entry, result.stack_pointer,
                     old_mm if release_old else None)


S_ISUID, S_ISGID, S_IXGRP = 0o4000, 0o2000, 0o010


def exec_creds(task: Task, exe: Any) -> tuple[creds.Credentials, bool]:
    """The credentials the new image runs with, and whether the exec is secure
    (AT_SECURE): the file's set-id bits apply unless its mount is nosuid or
    the process set no_new_privs (Linux's bprm_fill_uid)."""
    setuid_to = setgid_to = None
    if exe is not None and not exe.mount.nosuid and not task.tg.prctl.get("no_new_privs"):
        st = exe.inode.stat()
        if st.mode & S_ISUID:
            setuid_to = st.uid
        if st.mode & S_ISGID and st.mode & S_IXGRP:
            setgid_to = st.gid
    return creds.exec_transition(task.creds, setuid_to, setgid_to)


def _shared_with_others(task: Task, mm: object) -> bool:
    kernel = task.kernel
    with kernel.lock:
        return any(g.mm is mm and g is not task.tg and not g.zombie
                   for g in kernel.thread_groups.values())
