"""/proc/<pid>, /proc/<pid>/task/<tid>, and their fd/, fdinfo/ and task/ directories.

Every inode here carries a :class:`ProcessRef` and fails with ENOENT once its
process (or thread, or fd) is gone.  A thread directory has the same files as
its process except ``task/`` (Linux's tid_base_stuff is the same subset, give
or take files this sandbox does not have), with the thread's own Pid, state and
signal masks.
"""

from __future__ import annotations

import errno
import time as _time
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING

from sentry.kernel import namespaces, schedparams, timens
from sentry.kernel.creds import CAP_SYS_TIME
from sentry.kernel.errors import SyscallError
from sentry.kernel.task import current_task
from sentry.procfs import fds as F
from sentry.procfs import nsfs, smaps
from sentry.procfs import process as P
from sentry.procfs.mem import MemInode
from sentry.procfs.mountpoll import mounts_maker
from sentry.procfs.nodes import ProcDir, ProcessRef, ProcFile, ProcLink, TableDir, const, gone
from sentry.procfs.procmap import MapsInode
from sentry.vfs.file import FileDescription, Stat
from sentry.vfs.inode import S_IFLNK, Inode

if TYPE_CHECKING:
    from sentry.kernel.threadgroup import ThreadGroup
    from sentry.procfs.fs import ProcFilesystem
    from sentry.vfs.dentry import Dentry

ID_MAP = b"         0          0 4294967295\n"
# What uid_map and gid_map show: the identity map, or an OCI container's
# linux.uidMappings/gidMappings (set at boot by sentry/oci/host.py): the
# user namespace the application sees, as runc's container process sees it.
ID_MAPS: dict[bytes, bytes] = {b"uid_map": ID_MAP, b"gid_map": ID_MAP}


def parse_number(name: bytes) -> int | None:
    """A canonical decimal name ("12", not "012" or "+12"), as proc accepts."""
    if not name.isdigit() or (len(name) > 1 and name.startswith(b"0")) or len(name) > 10:
        return None
    return int(name)


Maker = Callable[["ProcFilesystem", ProcessRef], Inode]


def _id_map(tg: ThreadGroup, kind: str) -> bytes:
    """uid_map/gid_map: the identity map, or what was written in a new user namespace."""
    user = namespaces.nsset(tg).user
    if user is None:  # the container's own (OCI uid/gidMappings), else identity
        return ID_MAPS[b"uid_map" if kind == "uid" else b"gid_map"]
    return user.maps.get(kind, b"")


def _write_id_map(tg: ThreadGroup, kind: str, data: bytes) -> None:
    """A write of uid_map/gid_map: once, in a user namespace made in the sandbox
    (the first one's maps are fixed: EPERM, as Linux)."""
    user = namespaces.nsset(tg).user
    if user is None:
        raise SyscallError(errno.EPERM)
    user.write_map(kind, data)


def _timens_offsets(tg: ThreadGroup) -> bytes:
    """timens_offsets: those of the namespace the process's children go to."""
    ns = timens.for_children(tg)
    return (ns or timens.TimeNamespace()).show()


def _write_timens_offsets(tg: ThreadGroup, data: bytes) -> None:
    """Offsets of a namespace no process has entered yet (EACCES after, and
    for the first one), by a writer with CAP_SYS_TIME (EPERM)."""
    writer = current_task()
    if writer is not None and not writer.creds.capable(CAP_SYS_TIME):
        raise SyscallError(errno.EPERM)
    ns = timens.for_children(tg)
    if ns is None:
        raise SyscallError(errno.EACCES)
    ns.write_offsets(data, lambda clk: _time.clock_gettime_ns(clk))


def _file(text: Callable[[ProcFilesystem, ProcessRef], Callable[[], bytes]], mode: int = 0o444,
          writer: Callable[[ProcessRef], Callable[[bytes], None]] | None = None) -> Maker:
    def make(fs: ProcFilesystem, ref: ProcessRef) -> Inode:
        return ProcFile(fs, text(fs, ref), mode=mode, ref=ref,
                        writer=None if writer is None else writer(ref))
    return make


def _of_tg(fn: Callable[[ThreadGroup], bytes]) -> Callable[[ProcFilesystem, ProcessRef],
                                                           Callable[[], bytes]]:
    """Text from the thread group, looked up again at every read."""
    return lambda fs, ref: lambda: fn(ref.tg())


def _fixed(text: bytes) -> Callable[[ProcFilesystem, ProcessRef], Callable[[], bytes]]:
    return lambda fs, ref: const(text)


def _link(target: Callable[[ThreadGroup], bytes],
          follow: Callable[[ThreadGroup], Dentry | None]) -> Maker:
    def make(fs: ProcFilesystem, ref: ProcessRef) -> Inode:
        return ProcLink(fs, lambda: target(ref.tg()), lambda ctx: follow(ref.tg()), ref=ref)
    return make


def _timer_slack(ref: ProcessRef) -> bytes:
    """timerslack_ns: the thread's prctl(PR_SET_TIMERSLACK) value."""
    task = ref.task()
    if task is None:
        raise gone()
    return b"%d\n" % task.sched.timer_slack_ns


def _set_timer_slack(ref: ProcessRef, data: bytes) -> None:
    """Writing it sets the slack; 0 restores the thread's default, as Linux."""
    task = ref.task()
    if task is None:
        raise gone()
    try:
        ns = int(data.strip() or b"x", 0)
    except ValueError:
        raise SyscallError(errno.EINVAL) from None
    if not 0 <= ns < 1 << 64:
        raise SyscallError(errno.EINVAL)
    task.sched = schedparams.with_slack(task.sched, ns)


# What /proc/<pid> holds, in listing order; each inode is made when first looked
# up (a directory made for every new process used to build all of them: ~100 us
# of every readlink("/proc/self/exe"), which every static glibc program makes).
_PID_ENTRIES: dict[bytes, Maker] = {
    b"auxv": _file(_of_tg(P.auxv), 0o400),
    b"cmdline": _file(_of_tg(P.cmdline)),
    b"comm": _file(_of_tg(P.comm), 0o644, lambda ref: lambda d: P.set_comm(ref.tg(), d)),
    b"cwd": _link(P.cwd_target, lambda tg: P.fs_of(tg).cwd),
    b"environ": _file(_fixed(b""), 0o400),
    b"exe": _link(P.exe_target, P.exe_dentry),
    b"fd": lambda fs, ref: FdDir(fs, ref),
    b"fdinfo": lambda fs, ref: FdInfoDir(fs, ref),
    b"gid_map": _file(lambda fs, ref: lambda: _id_map(ref.tg(), "gid"), 0o644,
                      lambda ref: lambda d: _write_id_map(ref.tg(), "gid", d)),
    b"limits": _file(_of_tg(P.limits)),
    b"maps": lambda fs, ref: MapsInode(fs, _of_tg(P.maps)(fs, ref), ref=ref),
    b"mem": lambda fs, ref: MemInode(fs, ref),
    b"mountinfo": mounts_maker(_of_tg(F.mountinfo)),
    b"mounts": mounts_maker(_of_tg(F.mounts)),
    b"ns": lambda fs, ref: _ns_dir(fs, ref),
    b"pagemap": lambda fs, ref: smaps.PagemapInode(fs, ref),
    b"oom_score": _file(_fixed(b"0\n")),
    b"oom_score_adj": _file(_of_tg(P.oom_score_adj), 0o644,
                            lambda ref: lambda d: P.set_oom_score_adj(ref.tg(), d)),
    b"root": _link(P.root_target, lambda tg: P.fs_of(tg).root),
    b"setgroups": _file(_fixed(b"allow\n"), 0o644, lambda ref: lambda d: None),
    b"smaps": _file(_of_tg(smaps.smaps)),
    b"smaps_rollup": _file(_of_tg(smaps.smaps_rollup)),
    b"stat": _file(lambda fs, ref: lambda: P.stat_line(fs.kernel, ref)),
    b"statm": _file(_of_tg(P.statm)),
    b"status": _file(lambda fs, ref: lambda: P.status(fs.kernel, ref, fs.host)),
    b"uid_map": _file(lambda fs, ref: lambda: _id_map(ref.tg(), "uid"), 0o644,
                      lambda ref: lambda d: _write_id_map(ref.tg(), "uid", d)),
    b"timens_offsets": _file(_of_tg(_timens_offsets), 0o644,
                             lambda ref: lambda d: _write_timens_offsets(ref.tg(), d)),
    b"timerslack_ns": _file(lambda fs, ref: lambda: _timer_slack(ref), 0o666,
                            lambda ref: lambda d: _set_timer_slack(ref, d)),
    b"task": lambda fs, ref: TaskDir(fs, ref),
}
_PROCESS_NAMES = tuple(_PID_ENTRIES)
_THREAD_NAMES = tuple(n for n in _PID_ENTRIES if n != b"task")


class PidDir(ProcDir):
    """The directory of one process (``ref.tid`` None) or one thread."""

    def __init__(self, fs: ProcFilesystem, ref: ProcessRef) -> None:
        super().__init__(fs, ref)
        self.pfs = fs
        self.names = _PROCESS_NAMES if ref.tid is None else _THREAD_NAMES

    def listing(self) -> list[bytes]:
        return list(self.names)

    def exists(self, name: bytes) -> bool:
        return name in self.names

    def make(self, name: bytes) -> Inode:
        assert self.ref is not None
        return _PID_ENTRIES[name](self.pfs, self.ref)

    def stat(self) -> Stat:
        """The inode number is the process's own: a new process given a
        reused pid shows another (Linux makes a new proc inode for it)."""
        st = super().stat()
        if self.ref is not None and self.ref.tid is None:
            tg = self.ref.tg()
            ino = _TG_INOS.get(tg)
            if ino is None:
                ino = _TG_INOS[tg] = self.pfs.next_ino()
            st.ino = ino
        return st

    def open(self, flags: int) -> FileDescription:
        """An open directory names the process it was opened for (Linux's
        proc inode holds its struct pid): pidfd_send_signal on it is ESRCH
        once that process is gone, even if its pid went to a new one."""
        desc = super().open(flags)
        desc.proc_tg = self.ref.tg() if self.ref is not None else None  # type: ignore[attr-defined]
        return desc


_TG_INOS: weakref.WeakKeyDictionary[ThreadGroup, int] = weakref.WeakKeyDictionary()


def pid_dir(fs: ProcFilesystem, ref: ProcessRef) -> PidDir:
    """The directory of one process (``ref.tid`` None) or one thread."""
    return PidDir(fs, ref)


def _ns_dir(fs: ProcFilesystem, ref: ProcessRef) -> TableDir:
    """/proc/<pid>/ns: a magic link per namespace kind (sentry/procfs/nsfs.py)."""
    def maker(kind: bytes) -> Callable[[], Inode]:
        return lambda: ProcLink(
            fs, lambda: b"%s:[%d]" % (kind.split(b"_")[0],
                                      namespaces.inode_number(ref.tg(), kind)),
            lambda ctx: nsfs.ns_dentry(ref.tg(), kind), ref=ref)

    table = {kind: maker(kind) for kind in sorted(namespaces.KINDS)}
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
