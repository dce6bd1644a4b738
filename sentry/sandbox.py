"""Boot wiring: one sandbox = memory file + platform + kernel + its first task.

This is where the syscall table meets the kernel (the kernel never imports
``syscalls/``), and where host resources are taken before the Sentry confines
itself: the program file, host stdio, the CPU's auxv facts.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import stat
import time
from collections.abc import Callable, Sequence
from typing import Any

from sentry import confine, placement, rootfs
from sentry.kernel import creds, dac, execimage, rlimits
from sentry.kernel.errors import SyscallError
from sentry.kernel.fork import tasks_charged
from sentry.kernel.kernel import DEFAULT_RELEASE, Kernel, Utsname
from sentry.kernel.profile import SyscallProfile
from sentry.kernel.signals import SIG_IGN, SigAction
from sentry.kernel.task import SentryBug, Task, initial_regs
from sentry.kernel.threadgroup import ThreadGroup
from sentry.mm.image_cache import ImageCache
from sentry.mm.memfile import MemoryFile
from sentry.mountspec import MountError, MountSpec
from sentry.systrap import processes
from sentry.systrap.region import reserve_stub_region
from sentry.vfs import vfs
from sentry.vfs.fdtable import FdTable
from sentry.vfs.file import check_interrupt
from sentry.vfs.host import HostFile
from sentry.vfs.pipe import Pipe
from sentry.vfs.resolve import FsContext
from shm import faults
from shm.records import field, record

log = logging.getLogger("pyvisor")

MEMORY_FILE_SIZE = 1 << 37  # sparse; the Sentry maps all of it, so keep it well below 1 TiB


class LaunchError(Exception):
    """The program cannot be started: a one-line message and a shell-like status.

    ``program`` and ``errno`` (when the program itself is at fault) let
    :meth:`runc_message` say it the way runc does, for container tools.
    """

    def __init__(self, message: str, status: int, *, program: str | None = None,
                 errno_: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.program = program
        self.errno = errno_

    def runc_message(self) -> str:
        """runc's wording: Docker's CLI turns "executable file not found" and
        "no such file or directory" into status 127 and "permission denied"
        into 126 by matching these words in the runtime's error."""
        name = self.program
        if name is None:
            return str(self)
        if self.errno is None:  # not found on PATH
            return f'exec: "{name}": executable file not found in $PATH'
        if self.errno == errno.ENOENT:
            return f'exec: "{name}": stat {name}: no such file or directory'
        if self.errno == errno.EACCES:
            return f'exec: "{name}": permission denied ({self})'
        return f'exec: "{name}": {self}'


@record
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
    # Called just before the Sentry confines itself (OCI: waits for `start`
    # there, so what start brings can still import: runsc too installs its
    # filters at start).
    before_confine: Callable[[], None] | None = None
    # Given the running sandbox once the init task exists (OCI kill/ps/exec act
    # inside it); called before the Sentry confines itself.
    on_kernel: Callable[[Booted], None] | None = None
    # The init's identity and limits (OCI process.user, rlimits, noNewPrivileges);
    # user None: the caller's own uid and gid, as `do` runs a host program.
    user: tuple[int, int, tuple[int, ...]] | None = None
    rlimits: dict[int, tuple[int, int]] = field(default_factory=dict)
    no_new_privs: bool = False
    # The init's capability sets by OCI name (process.capabilities); None:
    # the caller's own bounding, inheritable and ambient sets, as exec gives.
    caps: dict[str, int] | None = None
    # A container's init ignores signals it has no handler for, as in Linux
    # (Kernel._init_ignores); not for `runsc.py do`.
    protect_init: bool = False
    # A host terminal to be the init's terminal (`do` from a tty, an OCI
    # console): bridged to an internal pty, never handed to the application
    # (sentry/tty/console.py).  Owned: closed at the end (an OCI console's
    # replica); sigterm: SIGTERM unwinds so the host terminal is restored.
    console_fd: int | None = None
    console_owned: bool = False
    console_sigterm: bool = False
    # Mounts after the boot tree, in order (OCI mounts, `do -v`), already
    # checked (sentry/mountspec.py); root_readonly: OCI root.readonly.
    mounts: list[MountSpec] = field(default_factory=list)
    root_readonly: bool = False
    # Device nodes to make in /dev (OCI linux.devices): (path, mode with the
    # file type, rdev, uid, gid).
    devices: list[tuple[str, int, int, int, int]] = field(default_factory=list)
    # OCI linux.maskedPaths and linux.readonlyPaths (sentry/maskpaths.py).
    masked_paths: list[str] = field(default_factory=list)
    readonly_paths: list[str] = field(default_factory=list)
    # /proc/PID/oom_score_adj of the init (OCI process.oomScoreAdj).
    oom_score_adj: int | None = None
    # Writes to the root go to an in-memory overlay (`do`; an OCI container
    # with --overlay2=root:memory), else through the Gofer to the root
    # directory itself, as runc writes to the bundle's rootfs.
    root_overlay: bool = True
    # What uname(2) and /proc report as the kernel's release.
    kernel_release: str = DEFAULT_RELEASE
    # Given the syscall profile (sentry/kernel/profile.py) when the run ends;
    # None: no profile is taken (`do --profile` sets it).
    profile: Callable[[dict[str, Any]], None] | None = None
    # The container's pids limit (OCI linux.resources.pids.limit): the kernel
    # refuses a clone past it with EAGAIN (sentry/kernel/fork.py).
    pids_limit: int | None = None
    # Signals the init starts ignoring: SIG_IGN survives execve on Linux, so
    # `do` passes on the caller's (inherited_ignores); an OCI container starts
    # with every disposition at default, as runc starts it.
    ignored_signals: tuple[int, ...] = ()
    # runsc's --network: "none" (loopback in the Sentry) or "host" (the
    # application's inet sockets are host sockets: sentry/net/hostinet.py).
    network: str = "none"
    # A checkpoint image's state (sentry/checkpoint/image.py): the processes
    # are rebuilt from it instead of the init being loaded (restore.py).
    restore: dict[str, Any] | None = None
    # A pod's sandbox container: its Gofer takes the pod's later containers'
    # trees too (gofer/late.py, sentry/oci/pod_sentry.py).
    pod: bool = False


@record
class ProcessSpec:
    """One process to start inside a sandbox: what an OCI ``process`` says.

    ``stdio``: host fds for the process's 0, 1 and 2, which :func:`launch`
    owns from the call on (closed with the process, or on failure); None
    gives it the Sentry's own stdio (the init's, inherited from the CLI).
    This is the one place a terminal plugs in: its fds go here.
    """

    argv: list[str]
    env: dict[str, str]
    cwd: str | None = None  # None: the root context's cwd
    uid: int = 0
    gid: int = 0
    groups: tuple[int, ...] = ()
    rlimits: dict[int, tuple[int, int]] = field(default_factory=dict)
    no_new_privs: bool = False
    # Capability sets by OCI name (bounding, effective, inheritable, permitted,
    # ambient); None: the caller's own (runsc.py do), read at boot.
    caps: dict[str, int] | None = None
    # /proc/PID/oom_score_adj to start with (OCI process.oomScoreAdj); None: 0.
    oom_score_adj: int | None = None
    stdio: Sequence[int] | None = None
    # A sentry.tty.console.ConsoleBridge: its internal pty's replica is the
    # process's 0-2 and controlling terminal (``stdio`` is then not used).
    console: Any = None
    ignored_signals: tuple[int, ...] = ()  # SIG_IGN from the start, as inherited across exec


@record
class Booted:
    """A running sandbox as its owner sees it: the kernel, and the container's
    root context (its mount namespace), in which `exec` starts processes."""

    kernel: Kernel
    ctx: FsContext
    root: Any = None  # the RootFs (rootfs.py): a pod's later containers use its Gofer

    def exec(self, spec: ProcessSpec) -> Task:
        """Start ``spec`` as a new thread group: no parent (ppid 0), its own
        session and process group, as gVisor's exec does."""
        task, regs = launch(self.kernel, self.ctx, spec)
        task.start(regs)
        return task


def inherited_ignores() -> tuple[int, ...]:
    """The signals this process was started with ignored, which execve would
    pass on to a program (`nohup`, a background job's SIGINT and SIGQUIT).

    SIGPIPE and SIGXFSZ are left out: Python ignores them itself at startup,
    so the caller's disposition is unknowable; they start at default, as
    Python's own subprocess gives them to its children.
    """
    import signal

    python_owned = {signal.SIGPIPE, signal.SIGXFSZ, signal.SIGKILL, signal.SIGSTOP}
    return tuple(int(s) for s in sorted(signal.valid_signals())
                 if s not in python_owned and signal.getsignal(s) == signal.SIG_IGN)


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
    raise LaunchError(f"{name}: command not found", 127, program=name)


def _import_stdio(fds: FdTable, host_fds: Sequence[int] | None) -> None:
    """Fds 0-2 of a new process: the given host fds (owned, closed with their
    description) or the Sentry's own stdio (kept open: the init's)."""
    for fd in (0, 1, 2):
        host_fd = fd if host_fds is None else host_fds[fd]
        try:
            flags = fcntl.fcntl(host_fd, fcntl.F_GETFL)
        except OSError:
            continue
        fds.install_at(fd, HostFile(host_fd, flags & ~os.O_CLOEXEC,
                                    owned=host_fds is not None))


def _close_unowned(spec: ProcessSpec, fds: FdTable | None) -> None:
    """On a failed launch: close the spec's host fds no fd table took over."""
    if spec.stdio is None:
        return
    taken = set() if fds is None else {
        getattr(fds.get(i), "host_fd", -1) for i in fds.fds()}
    for fd in spec.stdio:
        if fd not in taken:
            with contextlib.suppress(OSError):
                os.close(fd)


def launch(kernel: Kernel, root: FsContext, spec: ProcessSpec) -> tuple[Task, list[int]]:
    """Make ``spec`` a new process in ``kernel``: a registered thread group
    with one task, loaded and ready; the caller starts it with the registers
    returned (``task.start(regs)``).  The init and every `exec` come through
    here, so they resolve, load and set up a process the same way.

    Raises LaunchError (a shell-like status: 127 not found, 126 not
    executable) with nothing left behind.
    """
    ctx = root.fork()
    fds: FdTable | None = None
    mm = proc = None
    try:
        if spec.cwd is not None:
            try:
                vfs.chdir(ctx, None, os.fsencode(spec.cwd))
            except SyscallError as exc:
                raise LaunchError(f"cwd {spec.cwd}: {os.strerror(exc.errno)}", 126) from None
        ctx.uid, ctx.gid = spec.uid, spec.gid
        ctx.permission, ctx.owner_check = dac.check, dac.owner_or_root
        ctx.chown_check = dac.chown_check
        path = resolve_program(ctx, spec.argv[0], spec.env.get("PATH"))
        bargv = [os.fsencode(a) for a in spec.argv]
        envp = [os.fsencode(f"{k}={v}") for k, v in spec.env.items()]

        found: list[Any] = []

        def read_file(p: bytes) -> bytes:
            return rootfs.read_executable(ctx, p, found, kernel.image_cache)

        try:
            image, bargv, execfn = execimage.prepare(read_file, os.fsencode(path), bargv)
            exe_file = found[-1]  # as do_execve: the file run, a script's interpreter
            mm, result = execimage.load(kernel.mf, image, bargv, envp, execfn, read_file,
                                        (spec.uid, spec.uid, spec.gid, spec.gid),
                                        kernel.image_cache)
        except execimage.ImageError as exc:
            raise _launch_error(path, exc, ctx) from None
        limits = dict(spec.rlimits)
        fds = FdTable()
        if rlimits.RLIMIT_NOFILE in limits:
            fds.limit = rlimits.fd_limit(limits[rlimits.RLIMIT_NOFILE][0])
        if spec.console is not None:
            spec.console.install_stdio(fds)
        else:
            _import_stdio(fds, spec.stdio)
        proc = kernel.platform.new_process(mm.arena)
        with kernel.lock:
            if kernel.done.is_set():  # under the lock: the init's exit kills all it sees
                raise LaunchError("the container's init has exited", 125)
            if kernel.pids_limit is not None and tasks_charged(kernel) >= kernel.pids_limit:
                raise LaunchError("fork/exec: resource temporarily unavailable "
                                  "(the container's pids limit)", 125)
            pid = kernel.alloc_pid()
            tg = ThreadGroup(tgid=pid, parent=None, pgid=pid, sid=pid, mm=mm, fds=fds,
                             proc=proc, fs=ctx, exe=execfn, exe_file=exe_file, argv=bargv,
                             comm=execfn.rsplit(b"/", 1)[-1][:15], rlimits=limits,
                             sigactions={s: SigAction(SIG_IGN) for s in spec.ignored_signals})
            if spec.no_new_privs:
                tg.prctl["no_new_privs"] = 1
            if spec.oom_score_adj is not None:
                from sentry.procfs import process as procfs_process  # above the kernel

                procfs_process.set_oom_score_adj(tg, b"%d" % spec.oom_score_adj)
            uid, gid = spec.uid, spec.gid
            task = Task(kernel, tg, proc.thread(0), pid,
                        creds.for_launch(uid, gid, tuple(spec.groups), spec.caps))
            kernel.register(tg, task)
            if spec.console is not None:
                spec.console.attach(tg, kernel)
    except BaseException:
        if proc is not None:
            proc.kill()
            proc.release()
        if mm is not None:
            mm.release()
            mm.commit_frees()
        _close_unowned(spec, fds)
        if fds is not None:
            fds.close_all()
        raise
    return task, initial_regs(result.entry, result.stack_pointer)


def _caller_caps() -> dict[str, int]:
    """This process's capability sets (the CLI's, not yet dropped): what a
    program started by ``runsc.py do`` gets, as if the caller exec'd it."""
    try:
        with open("/proc/self/status") as f:
            return creds.host_caps(f.read())
    except OSError:
        return {}


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
        return LaunchError(f"{path}: Exec format error ({exc.message})", status,
                           program=path, errno_=exc.errno)
    reason = os.strerror(exc.errno)
    if exc.errno == errno.EACCES:
        try:
            if stat.S_ISDIR(vfs.stat(ctx, None, os.fsencode(path)).mode):
                reason = "Is a directory"
        except SyscallError:
            pass
    detail = "" if exc.message == os.strerror(exc.errno) else f" ({exc.message})"
    return LaunchError(f"{path}: {reason}{detail}", status, program=path, errno_=exc.errno)


def _preload_unwinder() -> None:
    """Load libgcc_s now, while the Sentry may still open files: glibc loads it
    the first time a thread ends through pthread_exit (Python does so for a
    daemon thread that wakes during interpreter shutdown), and once the
    Sentry's filter forbids open() that load fails and glibc aborts: a long
    trinity run ended with "libgcc_s.so.1 must be installed for pthread_exit
    to work" and SIGABRT instead of the program's exit status."""
    import ctypes

    try:
        ctypes.CDLL("libgcc_s.so.1")
    except OSError:
        pass  # a static or musl build: nothing to unwind with, nothing to load


def run(argv: list[str], env: dict[str, str], opts: SandboxOptions) -> int:
    """Run ``argv`` in a new sandbox; returns the exit code a shell would show."""
    from syscalls.linux64 import build_table  # the one place syscalls meet the kernel

    caller_caps = _caller_caps()  # before anything confines this process
    # While this process is one thread (the Gofer was forked, not threaded).
    own_mntns = confine.enter_mount_namespace() if opts.confine else False
    pending = rootfs.spawn(opts.root, opts.mounts,  # its Python starts while we boot
                           writable=not opts.root_overlay, late=opts.pod)
    try:
        table = build_table()
        faults.wrap_handlers(table.dispatch, table.name)  # tests only; inert unset
        Pipe.interrupted = _pipe_wait_check
        reserve_stub_region()
        kernel = Kernel(
            dispatch=table.dispatch, syscall_name=table.name, strace=opts.strace,
            strace_sink=opts.strace_sink,
            uts=Utsname(nodename=opts.hostname, release=opts.kernel_release),
            protect_init=opts.protect_init, pids_limit=opts.pids_limit,
        )
        if opts.network == "host":
            _host_network(kernel)
        # Built while the Gofer starts (rootfs.build waits for it), loaded below.
        network = getattr(opts, "network", "none")
        sentry_filter = (confine.prepare_filter(network, own_mntns=own_mntns,
                                                strace=opts.strace)
                         if opts.confine else None)
    except BaseException:
        pending.abort()
        raise
    try:
        root = rootfs.build(pending, opts.root, kernel, cwd=None, mounts=opts.mounts,
                            root_readonly=opts.root_readonly, overlay=opts.root_overlay,
                            devices=opts.devices,
                            linux_paths=(opts.masked_paths, opts.readonly_paths))
    except MountError as exc:
        _discard(sentry_filter)
        raise LaunchError(str(exc), 125) from None
    except SyscallError as exc:
        _discard(sentry_filter)
        raise LaunchError(f"cannot set up the root {opts.root}: {exc}", 125) from None
    except BaseException:
        _discard(sentry_filter)
        raise
    faults.at("sentry-rootfs")
    mf = None
    platform = None
    started = False
    console = None
    prof = None
    try:
        uid, gid, groups = opts.user or (os.getuid(), os.getgid(), ())
        if opts.console_fd is not None:
            from sentry.tty.console import ConsoleBridge  # above the kernel, wired here

            console = ConsoleBridge(opts.console_fd, kernel=kernel, uid=uid,
                                    owned=opts.console_owned, sigterm=opts.console_sigterm)
        spec = ProcessSpec(argv=list(argv), env={**env, **opts.extra_env}, cwd=opts.cwd,
                           uid=uid, gid=gid, groups=groups, rlimits=opts.rlimits,
                           no_new_privs=opts.no_new_privs, console=console,
                           caps=opts.caps if opts.caps is not None else caller_caps,
                           ignored_signals=opts.ignored_signals,
                           oom_score_adj=opts.oom_score_adj)
        # Boot is done (the Gofer and this process imported in parallel): from
        # here the sandbox shares one CPU; the zygote and stubs inherit it.
        placement.settle((root.gofer.pid,))
        mf = MemoryFile(MEMORY_FILE_SIZE)
        faults.at("sentry-memory-file")
        kernel.mf = mf
        kernel.image_cache = ImageCache(mf)
        platform = processes.Platform(mf)
        kernel.platform = platform
        faults.at("sentry-platform")
        starts = _first_tasks(kernel, root.ctx, spec, opts.restore)
        faults.at("sentry-launched")
        if opts.on_kernel is not None:
            opts.on_kernel(Booted(kernel, root.ctx, root))
        _trim_heap()
        if opts.before_confine is not None:
            opts.before_confine()
        if sentry_filter is not None:
            _preload_unwinder()
            confine.confine_sentry(sentry_filter, memfd_base=mf.fd_base)
            faults.at("sentry-confined")
        if opts.before_start is not None:
            opts.before_start()
        if console is not None:
            console.start()
        if opts.profile is not None:
            prof = SyscallProfile(kernel, table.name)
            prof.start()
        for task, regs, fs_base in starts:
            task.start(regs, fs_base)
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
        if console is not None:
            console.close()  # the program's last output, then the host terminal back
        if started:
            kernel.shutdown()
            _join_tasks(kernel)
        if prof is not None and opts.profile is not None:
            opts.profile(prof.snapshot())
            prof.print_cprofile()
        if platform is not None:
            platform.close()
        root.close()
        if mf is not None:
            mf.close()
        _discard(sentry_filter)


def _first_tasks(kernel: Kernel, ctx: FsContext, spec: ProcessSpec,
                 image: dict[str, Any] | None) -> list[tuple[Task, list[int], int]]:
    """The init, loaded; or with a checkpoint image, every saved process."""
    if image is None:
        task, regs = launch(kernel, ctx, spec)
        return [(task, regs, 0)]
    from sentry.checkpoint import restore  # only a restore needs it (before confinement)

    try:
        return restore.restore(kernel, ctx, image)
    except (ValueError, KeyError, TypeError, IndexError, AttributeError, OverflowError,
            MemoryError, SyscallError) as exc:  # an image is input: never a traceback
        raise LaunchError(f"cannot restore the checkpoint: {exc}", 125) from None


def _discard(prepared: confine.Prepared | None) -> None:
    """Remove what confinement prepared on the host when it never happened."""
    if prepared is not None:
        prepared.discard()


def _host_network(kernel: Kernel) -> None:
    """--network=host: the interface table copied from the host, and the
    host sockets' poller started, before the Sentry confines itself."""
    from sentry.net import hostinet, hostinet_config
    from sentry.net.netconfig import NetConfig

    cfg = NetConfig(loopback=False)
    cfg.mode = "host"
    try:
        hostinet_config.load_host(cfg)
    except OSError as exc:
        raise LaunchError(f"--network=host: cannot read the host's interfaces: {exc}",
                          125) from None
    kernel.netconfig = cfg
    hostinet.prepare()


def _trim_heap() -> None:
    """Return the free pages boot left in the heap (imports, the program's
    bytes on their way to the memory file) to the host: under a container
    memory limit every page the Sentry keeps is one the application lacks."""
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).malloc_trim(0)


def _join_tasks(kernel: Kernel, timeout: float = 5.0) -> None:
    """Wait (bounded) for task threads to finish their exits after a shutdown."""
    deadline = time.monotonic() + timeout
    with kernel.lock:
        tasks = list(kernel.tasks.values())
    for t in tasks:
        if t.job is not None:
            t.job.join(deadline - time.monotonic())
