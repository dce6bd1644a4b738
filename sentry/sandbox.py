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
from collections.abc import Callable
from dataclasses import dataclass, field

from sentry.kernel.errors import SyscallError
from sentry.kernel.kernel import Kernel, Utsname
from sentry.kernel.task import Credentials, Task
from sentry.loader import elf, loader
from sentry.mm.address_space import AddressSpace
from sentry.mm.memfile import MemoryFile
from sentry.systrap import stubs
from sentry.vfs.fdtable import FdTable
from sentry.vfs.host import HostFile

log = logging.getLogger("pyvisor")

MEMORY_FILE_SIZE = 1 << 37  # sparse; the Sentry maps all of it, so keep it well below 1 TiB
MAX_SCRIPT_DEPTH = 4  # Linux's binfmt_script nesting limit


class LaunchError(Exception):
    """The program cannot be started: a one-line message and a shell-like status."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class SandboxOptions:
    strace: bool = False
    hostname: str = "pyvisor"
    strace_sink: Callable[[str], None] | None = None
    cwd: str | None = None
    extra_env: dict[str, str] = field(default_factory=dict)


def resolve_program(name: str, path: str | None) -> str:
    """Find ``name`` the way a shell does: as given when it has a slash, else on PATH."""
    if "/" in name:
        return name
    for d in (path or "/usr/local/bin:/usr/bin:/bin").split(":"):
        candidate = os.path.join(d or ".", name)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    raise LaunchError(f"{name}: command not found", 127)


def _read_executable(path: str) -> bytes:
    """The bytes of an executable, with execve's errors turned into a LaunchError."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise LaunchError(f"{path}: No such file or directory", 127) from None
    except OSError as exc:
        raise LaunchError(f"{path}: {os.strerror(exc.errno or errno.EACCES)}", 126) from None
    if stat.S_ISDIR(st.st_mode):
        raise LaunchError(f"{path}: Is a directory", 126)
    if not stat.S_ISREG(st.st_mode) or not os.access(path, os.X_OK):
        raise LaunchError(f"{path}: Permission denied", 126)
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as exc:
        raise LaunchError(f"{path}: {os.strerror(exc.errno or errno.EIO)}", 126) from None


def _read_interp(path: bytes) -> bytes:
    with open(os.fsdecode(path), "rb") as f:
        return f.read()


def prepare_image(path: str, argv: list[bytes]) -> tuple[bytes, list[bytes], bytes]:
    """Follow #! lines (as execve does) to the ELF that will run: (image, argv, execfn)."""
    execfn = os.fsencode(path)
    data = _read_executable(path)
    for _ in range(MAX_SCRIPT_DEPTH + 1):
        try:
            script = elf.parse_shebang(data)
        except elf.ElfError as exc:
            raise LaunchError(f"{path}: {exc.message}", 126) from None
        if script is None:
            return data, argv, execfn
        interp, arg = script
        argv = elf.shebang_argv(interp, arg, os.fsencode(path), argv)
        path = os.fsdecode(interp)
        data = _read_executable(path)
    raise LaunchError(f"{path}: Too many levels of symbolic links (#! nesting)", 126)


def _import_stdio(fds: FdTable) -> None:
    for fd in (0, 1, 2):
        try:
            flags = fcntl.fcntl(fd, fcntl.F_GETFL)
        except OSError:
            continue
        fds.install_at(fd, HostFile(fd, flags & ~os.O_CLOEXEC))


def wait_status_to_exit_code(status: int) -> int:
    """What a shell reports for a wait status: the code, or 128+signal."""
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


def run(argv: list[str], env: dict[str, str], opts: SandboxOptions) -> int:
    """Run ``argv`` in a new sandbox; returns the exit code a shell would show."""
    from syscalls.linux64 import build_table  # the one place syscalls meet the kernel

    path = resolve_program(argv[0], env.get("PATH"))
    bargv = [os.fsencode(a) for a in argv]
    image, bargv, execfn = prepare_image(path, bargv)
    envp = [os.fsencode(f"{k}={v}") for k, v in {**env, **opts.extra_env}.items()]
    info = loader.host_auxv()

    table = build_table()
    stubs.reserve_stub_region()
    mf = MemoryFile(MEMORY_FILE_SIZE)
    platform = None
    proc = None
    try:
        mm = AddressSpace(mf)
        uid, gid = os.getuid(), os.getgid()
        try:
            result = loader.load_elf(
                mm, image, argv=bargv, envp=envp, execfn=execfn, open_interp=_read_interp,
                creds=(uid, uid, gid, gid), hwcap=info.get(loader.AT_HWCAP, 0),
                hwcap2=info.get(loader.AT_HWCAP2, 0),
                minsigstksz=info.get(loader.AT_MINSIGSTKSZ, 2048), random16=os.urandom(16),
            )
        except elf.ElfError as exc:
            msg = "Exec format error" if exc.errno == errno.ENOEXEC else os.strerror(exc.errno)
            raise LaunchError(f"{path}: {msg} ({exc.message})", 126) from None
        except SyscallError as exc:
            raise LaunchError(f"{path}: cannot load: {exc}", 126) from None
        kernel = Kernel(
            dispatch=table.dispatch, syscall_name=table.name, strace=opts.strace,
            strace_sink=opts.strace_sink, uts=Utsname(nodename=opts.hostname),
        )
        fds = FdTable()
        _import_stdio(fds)
        platform = stubs.Platform(mf)
        proc = platform.new_process()
        task = Task(
            kernel=kernel, mm=mm, fds=fds, thread=proc.thread(0),
            creds=Credentials(uid, uid, uid, gid, gid, gid), exe=execfn, argv=bargv,
        )
        status = task.run(result.entry, result.stack_pointer)
        return wait_status_to_exit_code(status)
    finally:
        if proc is not None:
            proc.kill()
        if platform is not None:
            platform.close()
        mf.close()
