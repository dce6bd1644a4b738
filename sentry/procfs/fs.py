"""The proc filesystem's inodes: directories computed on lookup, files
generated on open, symlinks (some "magic": they resolve to a dentry)."""

from __future__ import annotations

import errno
import os
import stat as _stat
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sentry.kernel.errors import SyscallError
from sentry.kernel.task import current_task
from sentry.procfs import content
from sentry.vfs.file import O_ACCMODE, O_RDONLY, FileDescription, Stat
from sentry.vfs.inode import DT_DIR, DT_LNK, DT_REG, Filesystem, Inode, StatFs

if TYPE_CHECKING:
    from sentry.kernel.kernel import Kernel
    from sentry.kernel.threadgroup import ThreadGroup
    from sentry.vfs.dentry import Dentry
    from sentry.vfs.resolve import FsContext

PROC_SUPER_MAGIC = 0x9FA0
Gen = Callable[[], bytes]


class ProcFilesystem(Filesystem):
    """/proc for one sandbox's kernel."""

    name = "proc"
    magic = PROC_SUPER_MAGIC

    def __init__(self, kernel: Kernel) -> None:
        super().__init__(readonly=True, source="proc")
        self.kernel = kernel
        self.host = content.HostFacts.read()
        self.root: Inode = ProcRoot(self)

    def statfs(self) -> StatFs:
        return StatFs(type=self.magic, fsid=self.dev)

    def options(self) -> str:
        return "rw,nosuid,nodev,noexec,relatime"


class SnapshotFile(FileDescription):
    """An open proc file: the bytes generated at open time."""

    def __init__(self, inode: ProcFile, data: bytes, flags: int) -> None:
        super().__init__(flags)
        self.inode = inode
        self.data = data
        self.pos = 0
        self.dentry: Dentry | None = None

    def read(self, count: int) -> bytes:
        out = self.data[self.pos : self.pos + count]
        self.pos += len(out)
        return out

    def pread(self, count: int, offset: int) -> bytes:
        return self.data[offset : offset + count]

    def seek(self, offset: int, whence: int) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self.pos, os.SEEK_END: len(self.data)}.get(whence)
        if base is None or base + offset < 0:
            raise SyscallError(errno.EINVAL)
        self.pos = base + offset
        return self.pos

    def write(self, data: bytes) -> int:
        raise SyscallError(errno.EACCES)

    def stat(self) -> Stat:
        return self.inode.stat()

    def read_pages(self, offset: int, length: int) -> bytes:
        return self.data[offset : offset + length]


class ProcFile(Inode):
    """A file whose text ``gen`` makes when it is opened."""

    def __init__(self, fs: ProcFilesystem, gen: Gen, mode: int = 0o444) -> None:
        super().__init__(fs, _stat.S_IFREG | mode)
        self.gen = gen

    def open(self, flags: int) -> FileDescription:
        if flags & O_ACCMODE != O_RDONLY:
            raise SyscallError(errno.EACCES)
        return SnapshotFile(self, self.gen(), flags)

    def read_at(self, offset: int, count: int) -> bytes:
        return self.gen()[offset : offset + count]


class ProcLink(Inode):
    """A symlink with a computed target; ``follow`` makes it magic (a dentry)."""

    def __init__(self, fs: ProcFilesystem, target: Callable[[], bytes],
                 follow: Callable[[FsContext], Dentry | None] | None = None) -> None:
        super().__init__(fs, _stat.S_IFLNK | 0o777)
        self.target = target
        self.follow = follow

    def readlink(self) -> bytes:
        return self.target()

    def follow_link(self, ctx: FsContext) -> Dentry | None:
        return self.follow(ctx) if self.follow is not None else None


class ProcDir(Inode):
    """A directory whose entries are computed: name -> (d_type, inode maker)."""

    def __init__(self, fs: ProcFilesystem, mode: int = 0o555) -> None:
        super().__init__(fs, _stat.S_IFDIR | mode)
        self.pfs = fs

    def entries(self) -> dict[bytes, Callable[[], Inode]]:
        return {}

    def lookup(self, name: bytes) -> Inode:
        make = self.entries().get(name)
        if make is None:
            raise SyscallError(errno.ENOENT)
        return make()

    def iterdir(self) -> list[tuple[bytes, int, int]]:
        out = []
        for name, make in self.entries().items():
            inode = make()
            kind = DT_DIR if inode.is_dir() else DT_LNK if inode.is_symlink() else DT_REG
            out.append((name, inode.ino, kind))
        return out


def _const(text: str) -> Gen:
    data = text.encode()
    return lambda: data


class ProcRoot(ProcDir):
    """/proc: the live pids, self, and the system-wide files."""

    def entries(self) -> dict[bytes, Callable[[], Inode]]:
        fs = self.pfs
        k = fs.kernel
        host = fs.host
        out: dict[bytes, Callable[[], Inode]] = {
            b"self": lambda: ProcLink(fs, _self_target),
            b"thread-self": lambda: ProcLink(fs, _thread_self_target),
            b"cpuinfo": lambda: ProcFile(fs, lambda: host.cpuinfo),
            b"meminfo": lambda: ProcFile(fs, lambda: content.meminfo(host)),
            b"mounts": lambda: ProcLink(fs, lambda: b"self/mounts"),
            b"filesystems": lambda: ProcFile(fs, _const(content.FILESYSTEMS)),
            b"uptime": lambda: ProcFile(fs, lambda: content.uptime(k)),
            b"loadavg": lambda: ProcFile(fs, lambda: content.loadavg(k)),
            b"version": lambda: ProcFile(fs, lambda: content.version(k)),
            b"stat": lambda: ProcFile(fs, lambda: content.system_stat(k, host)),
            b"sys": lambda: SysDir(fs),
        }
        with k.lock:
            pids = sorted(g.tgid for g in k.thread_groups.values() if not g.zombie)
        for pid in pids:
            out[str(pid).encode()] = lambda pid=pid: PidDir(fs, pid)
        return out


def _self_target() -> bytes:
    t = current_task()
    if t is None:
        raise SyscallError(errno.ENOENT)
    return str(t.pid).encode()


def _thread_self_target() -> bytes:
    t = current_task()
    if t is None:
        raise SyscallError(errno.ENOENT)
    return f"{t.pid}/task/{t.tid}".encode()


class SysDir(ProcDir):
    """/proc/sys: the few tunables programs read."""

    def __init__(self, fs: ProcFilesystem, path: tuple[str, ...] = ()) -> None:
        super().__init__(fs)
        self.path = path

    def entries(self) -> dict[bytes, Callable[[], Inode]]:
        fs = self.pfs
        node: Any = content.sys_tree(fs.kernel)
        for part in self.path:
            node = node[part]
        out: dict[bytes, Callable[[], Inode]] = {}
        for name, value in node.items():
            if isinstance(value, dict):
                out[name.encode()] = lambda name=name: SysDir(fs, (*self.path, name))
            else:
                out[name.encode()] = lambda value=value: ProcFile(fs, _const(value), 0o644)
        return out


class PidDir(ProcDir):
    """/proc/<pid> (or /proc/<pid>/task/<tid> when ``tid`` is given)."""

    def __init__(self, fs: ProcFilesystem, pid: int, tid: int | None = None) -> None:
        super().__init__(fs)
        self.pid = pid
        self.tid = tid

    def tg(self) -> ThreadGroup:
        k = self.pfs.kernel
        with k.lock:
            g = k.thread_groups.get(self.pid)
        if g is None or g.zombie and not g.tasks:
            raise SyscallError(errno.ENOENT)
        return g

    def entries(self) -> dict[bytes, Callable[[], Inode]]:
        fs = self.pfs
        tg = self.tg

        def fs_ctx() -> Any:
            ctx = tg().fs
            if ctx is None:
                raise SyscallError(errno.ENOENT)
            return ctx

        out: dict[bytes, Callable[[], Inode]] = {
            b"cmdline": lambda: ProcFile(fs, lambda: content.cmdline(tg())),
            b"comm": lambda: ProcFile(fs, lambda: tg().comm + b"\n", 0o644),
            b"environ": lambda: ProcFile(fs, lambda: b"", 0o400),
            b"status": lambda: ProcFile(fs, lambda: content.status(tg(), self.tid)),
            b"stat": lambda: ProcFile(fs, lambda: content.pid_stat(fs.kernel, tg(), self.tid)),
            b"statm": lambda: ProcFile(fs, lambda: content.statm(tg())),
            b"maps": lambda: ProcFile(fs, lambda: content.maps(tg())),
            b"mounts": lambda: ProcFile(fs, lambda: content.mounts(fs_ctx())),
            b"limits": lambda: ProcFile(fs, lambda: content.limits(tg())),
            b"oom_score_adj": lambda: ProcFile(fs, _const("0\n"), 0o644),
            b"uid_map": lambda: ProcFile(fs, _const("         0          0 4294967295\n")),
            b"gid_map": lambda: ProcFile(fs, _const("         0          0 4294967295\n")),
            b"exe": lambda: ProcLink(fs, lambda: tg().exe),
            b"cwd": lambda: ProcLink(fs, lambda: content.path_in(fs_ctx(), fs_ctx().cwd),
                                     lambda ctx: fs_ctx().cwd),
            b"root": lambda: ProcLink(fs, lambda: content.path_in(fs_ctx(), fs_ctx().root),
                                      lambda ctx: fs_ctx().root),
            b"fd": lambda: FdDir(fs, self.pid),
        }
        if self.tid is None:
            out[b"task"] = lambda: TaskDir(fs, self.pid)
        return out


class TaskDir(ProcDir):
    """/proc/<pid>/task: one directory per thread."""

    def __init__(self, fs: ProcFilesystem, pid: int) -> None:
        super().__init__(fs)
        self.pid = pid

    def entries(self) -> dict[bytes, Callable[[], Inode]]:
        k = self.pfs.kernel
        with k.lock:
            g = k.thread_groups.get(self.pid)
            tids = [t.tid for t in g.live_tasks()] if g is not None else []
        return {str(tid).encode(): (lambda tid=tid: PidDir(self.pfs, self.pid, tid))
                for tid in tids}


class FdDir(ProcDir):
    """/proc/<pid>/fd: a magic link per open descriptor."""

    def __init__(self, fs: ProcFilesystem, pid: int) -> None:
        super().__init__(fs, 0o500)
        self.pid = pid

    def entries(self) -> dict[bytes, Callable[[], Inode]]:
        k = self.pfs.kernel
        with k.lock:
            g = k.thread_groups.get(self.pid)
        if g is None or g.zombie:
            return {}
        out: dict[bytes, Callable[[], Inode]] = {}
        for fd in g.fds.fds():
            out[str(fd).encode()] = lambda fd=fd: self._link(g, fd)
        return out

    def _link(self, g: ThreadGroup, fd: int) -> Inode:
        desc = g.fds.get(fd)
        return ProcLink(self.pfs, lambda: content.fd_target(g, desc),
                        lambda ctx: getattr(desc, "dentry", None))
