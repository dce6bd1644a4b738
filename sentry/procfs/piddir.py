"""/proc/<pid>, /proc/<pid>/task/<tid>, and their fd/, fdinfo/ and task/ directories.

Every inode here carries a :class:`ProcessRef` and fails with ENOENT once its
process (or thread, or fd) is gone.  A thread directory has the same files as
its process except ``task/`` (Linux's tid_base_stuff is the same subset, give
or take files this sandbox does not have), with the thread's own Pid, state and
signal masks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from sentry.kernel.errors import SyscallError
from sentry.procfs import fds as F
from sentry.procfs import process as P
from sentry.procfs.nodes import ProcDir, ProcessRef, ProcFile, ProcLink, TableDir, const, gone
from sentry.vfs.file import FileDescription, Stat
from sentry.vfs.inode import S_IFLNK, Inode

if TYPE_CHECKING:
    from sentry.kernel.threadgroup import ThreadGroup
    from sentry.procfs.fs import ProcFilesystem
    from sentry.vfs.dentry import Dentry
    from sentry.vfs.resolve import FsContext

ID_MAP = b"         0          0 4294967295\n"


def parse_number(name: bytes) -> int | None:
    """A canonical decimal name ("12", not "012" or "+12"), as proc accepts."""
    if not name.isdigit() or (len(name) > 1 and name.startswith(b"0")) or len(name) > 10:
        return None
    return int(name)


def pid_dir(fs: ProcFilesystem, ref: ProcessRef) -> TableDir:
    """The directory of one process (``ref.tid`` None) or one thread."""
    k = fs.kernel

    def tg() -> ThreadGroup:  # looked up again by every operation
        return ref.tg()

    def file(gen: Callable[[], bytes], mode: int = 0o444,
             writer: Callable[[bytes], None] | None = None) -> Callable[[], Inode]:
        return lambda: ProcFile(fs, gen, mode=mode, ref=ref, writer=writer)

    def link(target: Callable[[], bytes],
             follow: Callable[[FsContext], Dentry | None]) -> Callable[[], Inode]:
        return lambda: ProcLink(fs, target, follow, ref=ref)

    table: dict[bytes, Callable[[], Inode]] = {
        b"cmdline": file(lambda: P.cmdline(tg())),
        b"comm": file(lambda: P.comm(tg()), 0o644, lambda d: P.set_comm(tg(), d)),
        b"cwd": link(lambda: P.cwd_target(tg()),
                     lambda ctx: P.fs_of(tg()).cwd),
        b"environ": file(const(b""), 0o400),
        b"exe": link(lambda: P.exe_target(tg()), lambda ctx: P.exe_dentry(tg())),
        b"fd": lambda: FdDir(fs, ref),
        b"fdinfo": lambda: FdInfoDir(fs, ref),
        b"gid_map": file(const(ID_MAP)),
        b"limits": file(lambda: P.limits(tg())),
        b"maps": file(lambda: P.maps(tg())),
        b"mountinfo": file(lambda: F.mountinfo(tg())),
        b"mounts": file(lambda: F.mounts(tg())),
        b"ns": lambda: _ns_dir(fs, ref),
        b"oom_score": file(const(b"0\n")),
        b"oom_score_adj": file(lambda: P.oom_score_adj(tg()), 0o644,
                               lambda d: P.set_oom_score_adj(tg(), d)),
        b"root": link(lambda: P.root_target(tg()),
                      lambda ctx: P.fs_of(tg()).root),
        b"stat": file(lambda: P.stat_line(k, ref)),
        b"statm": file(lambda: P.statm(tg())),
        b"status": file(lambda: P.status(k, ref, fs.host)),
        b"uid_map": file(const(ID_MAP)),
    }
    if ref.tid is None:
        table[b"task"] = lambda: TaskDir(fs, ref)
    return TableDir(fs, table, ref)


def _ns_dir(fs: ProcFilesystem, ref: ProcessRef) -> TableDir:
    """/proc/<pid>/ns: one namespace of each kind, shared by every process."""
    kinds = (b"cgroup", b"ipc", b"mnt", b"net", b"pid", b"user", b"uts")

    def maker(body: bytes) -> Callable[[], Inode]:
        return lambda: ProcLink(fs, const(body), ref=ref)

    table = {kind: maker(b"%s:[%d]" % (kind, 4026531835 + i)) for i, kind in enumerate(kinds)}
    return TableDir(fs, table, ref, 0o511)


class TaskDir(ProcDir):
    """/proc/<pid>/task: one directory per live thread."""

    def __init__(self, fs: ProcFilesystem, ref: ProcessRef) -> None:
        super().__init__(fs, ref)
        self.pfs = fs

    def listing(self) -> list[bytes]:
        assert self.ref is not None
        tg = self.ref.tg()
        return [str(t.tid).encode() for t in tg.live_tasks()]

    def make(self, name: bytes) -> Inode:
        assert self.ref is not None
        tid = parse_number(name)
        if tid is None:
            raise gone()
        return pid_dir(self.pfs, ProcessRef(self.ref.kernel, self.ref.pid, tid))


class FdDir(ProcDir):
    """/proc/<pid>/fd: a magic link per open descriptor, named by number."""

    link_dir = True

    def __init__(self, fs: ProcFilesystem, ref: ProcessRef) -> None:
        super().__init__(fs, ref, 0o500)
        self.pfs = fs

    def listing(self) -> list[bytes]:
        assert self.ref is not None
        tg = self.ref.tg()
        return [] if tg.zombie else [str(fd).encode() for fd in tg.fds.fds()]

    def exists(self, name: bytes) -> bool:
        assert self.ref is not None
        fd = parse_number(name)
        if fd is None:
            return False
        tg = self.ref.tg()
        if tg.zombie:
            return False
        try:
            tg.fds.get(fd)
        except SyscallError:  # EBADF: not open
            return False
        return True

    def make(self, name: bytes) -> Inode:
        ref = self.ref
        assert ref is not None
        fd = parse_number(name)
        if fd is None:
            raise gone()
        if self.link_dir:
            return FdLink(self.pfs, lambda: F.fd_target(ref.tg(), fd),
                          lambda ctx: F.fd_follow(ref.tg(), fd), ref=FdRef(ref, fd))
        return ProcFile(self.pfs, lambda: F.fdinfo(ref.tg(), fd), mode=0o400,
                        ref=FdRef(ref, fd))


class FdInfoDir(FdDir):
    """/proc/<pid>/fdinfo: one small text file per open descriptor."""

    link_dir = False

    def __init__(self, fs: ProcFilesystem, ref: ProcessRef) -> None:
        super().__init__(fs, ref)
        self.mode = (self.mode & ~0o777) | 0o500


class FdLink(ProcLink):
    """fd/N: its mode tells the access mode (Linux: r-x read, -wx write), size 64.

    Hook wanted in the VFS: opening fd/N of a pipe or of host stdio (and so
    /dev/stdin, /dev/stdout) has no dentry to follow.  vfs.open should, when
    the last component is a symlink with a ``reopen`` method, call
    ``reopen(flags)`` and use the description it returns (None: follow as now).
    """

    def reopen(self, flags: int) -> FileDescription | None:
        ref = self.ref
        assert isinstance(ref, FdRef)
        return F.fd_reopen(ref.tg(), ref.fd, flags)

    def stat(self) -> Stat:
        st = super().stat()
        ref = self.ref
        assert isinstance(ref, FdRef)
        desc = F.fd_desc(ref.tg(), ref.fd)
        perm = (0o500 if desc.readable() else 0) | (0o300 if desc.writable() else 0)
        st.mode = S_IFLNK | perm
        st.size = 64
        return st


class FdRef(ProcessRef):
    """A process reference that is also gone once one fd is closed, so a cached
    fd/N dentry of a closed descriptor stats and reads as ENOENT."""

    __slots__ = ("fd",)

    def __init__(self, ref: ProcessRef, fd: int) -> None:
        super().__init__(ref.kernel, ref.pid, ref.tid)
        self.fd = fd

    def tg(self) -> ThreadGroup:
        g = super().tg()
        F.fd_desc(g, self.fd)
        return g
