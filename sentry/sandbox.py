"""Boot wiring: one sandbox = memory file + platform + kernel + its first task.

This is where the syscall table meets the kernel (the kernel never imports
``syscalls/``), and where host resources are taken before the Sentry confines
itself: the program file, host stdio, the CPU's auxv facts.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sentry import confine, rootfs
from sentry.kernel import execimage
from sentry.kernel.errors import SyscallError
from sentry.kernel.kernel import Kernel, Utsname
from sentry.kernel.task import Credentials, SentryBug, Task, initial_regs
from sentry.kernel.threadgroup import ThreadGroup
from sentry.mm.memfile import MemoryFile
from sentry.systrap import stubs
from sentry.vfs import vfs
from sentry.vfs.fdtable import FdTable
from sentry.vfs.file import check_interrupt
from sentry.vfs.host import HostFile
from sentry.vfs.pipe import Pipe
from sentry.vfs.resolve import FsContext

log = logging.getLogger("pyvisor")

MEMORY_FILE_SIZE = 1 << 37  # sparse; the Sentry maps all of it, so keep it well below 1 TiB


class LaunchError(Exception):
    """The program cannot be started: a one-line message and a shell-like status."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class SandboxOptions:
    root: str = "/"
    confine: bool = True
    strace: bool = False
    hostname: str = "pyvisor"
    strace_sink: Callable[[str], None] | None = None
    cwd: str | None = None
    extra_env: dict[str, str] = field(default_factory=dict)
    warn: Callable[[str], None] = field(default=lambda msg: log.warning("%s", msg))
    # Called once everything is loaded, just before the first instruction runs
    # (OCI create/start: the container's init waits here until `start`).
    before_start: Callable[[], None] | None = None
    # Given the kernel once the init task exists (OCI kill/ps act inside it).
    on_kernel: Callable[[Kernel], None] | None = None


def resolve_program(ctx: FsContext, name: str, path: str | None) -> str:
    """Find ``name`` in the sandbox's tree the way a shell does: as given when it
    has a slash, else the first executable regular file on PATH."""
    if "/" in name:
        return name
    for d in (path or "/usr/local/bin:/usr/bin:/bin").split(":"):
        candidate = os.path.join(d or ".", name)
        try:
            st = vfs.stat(ctx, None, os.fsencode(candidate))
        except SyscallError:
            continue
        if stat.S_ISREG(st.mode) and st.mode & 0o111:
            return candidate
    raise LaunchError(f"{name}: command not found", 127)


def _import_stdio(fds: FdTable) -> None:
    for fd in (0, 1, 2):
        try:
            flags = fcntl.fcntl(fd, fcntl.F_GETFL)
        except OSError:
            continue
        fds.install_at(fd, HostFile(fd, flags & ~os.O_CLOEXEC))


def _pipe_wait_check() -> bool:
    """Pipes poll this between wait slices: the task's check raises (a restartable
    interruption or a kill), which is what the syscall layer wants to see."""
    check_interrupt()
    return False


def wait_status_to_exit_code(status: int) -> int:
    """What a shell reports for a wait status: the code, or 128+signal."""
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


def _launch_error(path: str, exc: execimage.ImageError, ctx: FsContext) -> LaunchError:
    status = 127 if exc.errno == errno.ENOENT else 126
    if exc.errno == errno.ENOEXEC:
        return LaunchError(f"{path}: Exec format error ({exc.message})", status)
    reason = os.strerror(exc.errno)
    if exc.errno == errno.EACCES:
        try:
            if stat.S_ISDIR(vfs.stat(ctx, None, os.fsencode(path)).mode):
                reason = "Is a directory"
        except SyscallError:
            pass
    detail = "" if exc.message == os.strerror(exc.errno) else f" ({exc.message})"
    return LaunchError(f"{path}: {reason}{detail}", status)


def run(argv: list[str], env: dict[str, str], opts: SandboxOptions) -> int:
    """Run ``argv`` in a new sandbox; returns the exit code a shell would show."""
    from syscalls.linux64 import build_table  # the one place syscalls meet the kernel

    pending = rootfs.spawn(opts.root)  # the Gofer's Python starts while we boot
    try:
        table = build_table()
        Pipe.interrupted = _pipe_wait_check
        stubs.reserve_stub_region()
        kernel = Kernel(
            dispatch=table.dispatch, syscall_name=table.name, strace=opts.strace,
            strace_sink=opts.strace_sink, uts=Utsname(nodename=opts.hostname),
        )
    except BaseException:
        pending.abort()
        raise
    try:
        root = rootfs.build(pending, opts.root, kernel, cwd=opts.cwd)
    except SyscallError as exc:
        raise LaunchError(f"cannot set up the root {opts.root}: {exc}", 125) from None
    mf = None
    platform = None
    started = False
    try:
        ctx = root.ctx
        path = resolve_program(ctx, argv[0], env.get("PATH"))
        bargv = [os.fsencode(a) for a in argv]
        envp = [os.fsencode(f"{k}={v}") for k, v in {**env, **opts.extra_env}.items()]
        uid, gid = os.getuid(), os.getgid()

        def read_file(p: bytes) -> bytes:
            return rootfs.read_executable(ctx, p)

        try:
            image, bargv, execfn = execimage.prepare(read_file, os.fsencode(path), bargv)
        except execimage.ImageError as exc:
            raise _launch_error(path, exc, ctx) from None
        mf = MemoryFile(MEMORY_FILE_SIZE)
        try:
            mm, result = execimage.load(mf, image, bargv, envp, execfn, read_file,
                                        (uid, uid, gid, gid))
        except execimage.ImageError as exc:
            raise _launch_error(path, exc, ctx) from None
        kernel.mf = mf  # type: ignore[attr-defined]
        fds = FdTable()
        _import_stdio(fds)
        platform = stubs.Platform(mf)
        kernel.platform = platform
        pid = kernel.alloc_pid()
        tg = ThreadGroup(tgid=pid, parent=None, pgid=pid, sid=pid, mm=mm, fds=fds,
                         proc=platform.new_process(), fs=ctx, exe=execfn, argv=bargv,
                         comm=execfn.rsplit(b"/", 1)[-1][:15])
        task = Task(kernel, tg, tg.proc.thread(0), pid,
                    Credentials(uid, uid, uid, gid, gid, gid))
        kernel.register(tg, task)
        if opts.on_kernel is not None:
            opts.on_kernel(kernel)
        if opts.confine:
            confine.confine_sentry()
        if opts.before_start is not None:
            opts.before_start()
        task.start(initial_regs(result.entry, result.stack_pointer))
        started = True
        gofer_lost = False
        while True:
            done = kernel.done.wait(0.2)
            if not gofer_lost and (root.client.dead or root.gofer.poll() is not None):
                # The application gets EIO from file operations; say so once.
                gofer_lost = True
                opts.warn("the file server (Gofer) died: file operations fail with EIO")
            if done:
                break
        if kernel.fatal is not None:
            raise SentryBug(str(kernel.fatal))
        return wait_status_to_exit_code(kernel.init_status)
    finally:
        if started:
            kernel.shutdown()
            _join_tasks(kernel)
        if platform is not None:
            platform.close()
        root.close()
        if mf is not None:
            mf.close()


def _join_tasks(kernel: Kernel, timeout: float = 5.0) -> None:
    """Wait (bounded) for task threads to finish their exits after a shutdown."""
    deadline = time.monotonic() + timeout
    with kernel.lock:
        tasks = list(kernel.tasks.values())
    for t in tasks:
        if t.py_thread is not None:
            t.py_thread.join(max(0.0, deadline - time.monotonic()))
