"""procfs: unit tests over a fake process table, then the sandbox's own /proc.

The unit tests build real kernel objects (Kernel, ThreadGroup, Task,
Credentials) around a fake address space, mount procfs on a tmpfs root and
read it through the VFS, checking the formats Linux prints (proc(5)).  The
sandbox tests (marked ``sandbox``) run busybox under runsc.py and compare with
what Linux itself prints where the values can agree.
"""

from __future__ import annotations

import errno
import os
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from helpers import run_native, run_sandbox

from sentry.kernel import task as task_mod
from sentry.kernel.errors import SyscallError
from sentry.kernel.kernel import DEFAULT_RELEASE, Kernel, Utsname
from sentry.kernel.signals import SigAction
from sentry.kernel.task import Credentials, Task
from sentry.kernel.threadgroup import ThreadGroup
from sentry.mm.vma import VmaInfo
from sentry.procfs import ProcFilesystem, mount_procfs
from sentry.procfs.hostinfo import HostInfo, format_cpu_list, host_info, select_cpuinfo
from sentry.procfs.piddir import FdLink
from sentry.vfs import vfs
from sentry.vfs.fdtable import FdTable
from sentry.vfs.file import O_RDONLY, O_RDWR, O_WRONLY, FileDescription
from sentry.vfs.mount import Mount, MountNamespace
from sentry.vfs.pipe import make_pipe
from sentry.vfs.resolve import FsContext, resolve
from sentry.vfs.tmpfs import TmpFs

O_DIRECTORY = 0o200000
O_CLOEXEC = 0o2000000
PROT_R, PROT_W, PROT_X = 1, 2, 4
MAP_PRIVATE, MAP_SHARED = 2, 1
MAPS_RE = re.compile(r"^([0-9a-f]{8,})-([0-9a-f]{8,}) ([r-][w-][x-][ps]) ([0-9a-f]{8,}) "
                     r"([0-9a-f]{2}):([0-9a-f]{2}) (\d+)(?: {2,}(\S.*))?$")
HOST = HostInfo((0, 1), b"processor\t: 0\n\nprocessor\t: 1\n\n", 2_000_000)


@dataclass
class FakeMM:
    """The address space surface procfs reads: vmas(), locked_bytes() and the brk range."""

    areas: list[VmaInfo] = field(default_factory=list)
    brk_start: int = 0
    current_brk: int = 0

    def vmas(self) -> list[VmaInfo]:
        return list(self.areas)

    def locked_bytes(self) -> int:
        return 0


def program_mm() -> FakeMM:
    return FakeMM([
        VmaInfo(0x400000, 0x401000, PROT_R, MAP_PRIVATE, 0, "/bin/prog"),
        VmaInfo(0x401000, 0x403000, PROT_R | PROT_X, MAP_PRIVATE, 0x1000, "/bin/prog"),
        VmaInfo(0x403000, 0x404000, PROT_R | PROT_W, MAP_PRIVATE, 0x3000, "/bin/prog"),
        VmaInfo(0x405000, 0x407000, PROT_R | PROT_W, MAP_PRIVATE, 0x4000, ""),
        VmaInfo(0x7F0000000000, 0x7F0000001000, PROT_R | PROT_W, MAP_SHARED, 0x6000, ""),
        VmaInfo(0x7FFFF0000000, 0x7FFFF0021000, PROT_R | PROT_W, MAP_PRIVATE, 0x7000,
                "[stack]"),
    ], brk_start=0x405000, current_brk=0x406800)


class World:
    """A kernel with processes, a tmpfs root and procfs at /proc."""

    def __init__(self) -> None:
        self.kernel = Kernel(dispatch=[], syscall_name=str, uts=Utsname(nodename="box"))
        self.ns = MountNamespace(TmpFs(mode=0o755))
        self.ctx = FsContext.for_namespace(self.ns)
        for d in (b"/proc", b"/bin", b"/tmp"):
            vfs.mkdir(self.ctx, None, d, 0o755)
        f = vfs.open(self.ctx, None, b"/bin/prog", O_RDWR | 0o100, 0o755)
        f.write(b"\x7fELF program")
        self.mount: Mount = mount_procfs(self.ns, resolve(self.ctx, b"/proc"), self.kernel,
                                         host=HOST)
        self.procfs = self.mount.fs
        assert isinstance(self.procfs, ProcFilesystem)

    def spawn(self, parent: ThreadGroup | None = None, argv: list[bytes] | None = None,
              comm: bytes = b"prog") -> Task:
        pid = self.kernel.alloc_pid()
        tg = ThreadGroup(tgid=pid, parent=parent, pgid=pid, sid=1, mm=program_mm(),
                         fds=FdTable(), fs=self.ctx.fork(), exe=b"/bin/prog",
                         argv=argv if argv is not None else [b"/bin/prog", b"-x", b"a b"],
                         comm=comm)
        t = Task(self.kernel, tg, None, pid, Credentials())  # type: ignore[arg-type]
        self.kernel.register(tg, t)
        return t

    def thread(self, leader: Task) -> Task:
        tid = self.kernel.alloc_pid()
        t = Task(self.kernel, leader.tg, None, tid, leader.creds)  # type: ignore[arg-type]
        self.kernel.register(leader.tg, t)
        return t

    def vanish(self, t: Task) -> None:
        """The process exits and is reaped."""
        t.exited = True
        self.kernel.task_exited(t)
        self.kernel.reap(t.tg)

    # Reading through the VFS, as the syscall layer does.
    def read(self, path: str) -> bytes:
        f = vfs.open(self.ctx, None, path.encode(), O_RDONLY)
        out = b""
        while chunk := f.read(7):  # small reads: the snapshot must stay consistent
            out += chunk
        return out

    def text(self, path: str) -> str:
        return self.read(path).decode()

    def ls(self, path: str) -> list[str]:
        d = vfs.open(self.ctx, None, path.encode(), O_RDONLY | O_DIRECTORY)
        return [e.name.decode() for e in d.readdir(10_000)][2:]

    def readlink(self, path: str) -> bytes:
        return vfs.readlink(self.ctx, None, path.encode())


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    w = World()
    init = w.spawn(argv=[b"/sbin/init"], comm=b"init")
    me = w.spawn(parent=init.tg)
    monkeypatch.setattr(task_mod._current, "task", me, raising=False)
    w.init, w.me = init, me  # type: ignore[attr-defined]
    yield w


def errno_of(fn, *a) -> int:  # type: ignore[no-untyped-def]
    with pytest.raises(SyscallError) as ei:
        fn(*a)
    return ei.value.errno


def status_of(text: str) -> dict[str, str]:
    return dict(line.split(":\t", 1) for line in text.splitlines())


# -- the root ------------------------------------------------------------------------

def test_root_lists_pids_self_and_system_files(world: World) -> None:
    names = world.ls("/proc")
    assert {"1", "2", "self", "thread-self", "cpuinfo", "meminfo", "mounts", "stat",
            "uptime", "loadavg", "version", "filesystems", "sys"} <= set(names)
    assert names.index("cpuinfo") < names.index("1")  # system entries first, as Linux
    assert world.procfs.statfs().type == 0x9FA0


def test_self_is_the_current_task(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    assert world.readlink("/proc/self") == b"2"
    assert status_of(world.text("/proc/self/status"))["Pid"] == "2"
    monkeypatch.setattr(task_mod._current, "task", world.init, raising=False)
    assert status_of(world.text("/proc/self/status"))["Pid"] == "1"
    t = world.thread(world.me)
    monkeypatch.setattr(task_mod._current, "task", t, raising=False)
    assert world.readlink("/proc/thread-self") == f"2/task/{t.tid}".encode()
    st = status_of(world.text("/proc/thread-self/status"))
    assert (st["Pid"], st["Tgid"], st["Threads"]) == (str(t.tid), "2", "2")
    monkeypatch.setattr(task_mod._current, "task", None, raising=False)
    assert errno_of(world.readlink, "/proc/self") == errno.ENOENT


def test_mounts_link_and_mountinfo(world: World) -> None:
    assert world.readlink("/proc/mounts") == b"self/mounts"
    mounts = world.text("/proc/mounts")
    assert "proc /proc proc rw,nosuid,nodev,noexec,relatime 0 0\n" in mounts
    info = world.text("/proc/self/mountinfo").splitlines()
    assert len(info) == 2
    rows = [ln.split() for ln in info]
    assert rows[1][1] == rows[0][0] and rows[1][4] == "/proc"
    assert rows[1][rows[1].index("-") + 1] == "proc"
    assert re.fullmatch(r"\d+:\d+", rows[1][2])


# -- per-process files -------------------------------------------------------------------

def test_status_fields(world: World) -> None:
    me = world.me
    me.sigmask = 1 << (10 - 1)  # SIGUSR1 blocked
    me.tg.sigactions[13] = SigAction(handler=1)  # SIGPIPE ignored
    me.tg.sigactions[15] = SigAction(handler=0x401000)  # SIGTERM caught
    st = status_of(world.text("/proc/2/status"))
    assert st["Name"] == "prog" and st["Umask"] == "0022"
    assert st["State"] == "R (running)"  # the reader itself
    assert (st["Tgid"], st["Pid"], st["PPid"], st["TracerPid"]) == ("2", "2", "1", "0")
    assert st["Uid"] == "0\t0\t0\t0" and st["Gid"] == "0\t0\t0\t0"
    assert st["SigBlk"] == "0000000000000200"
    assert st["SigIgn"] == "0000000000001000"
    assert st["SigCgt"] == "0000000000004000"
    assert st["CapEff"] == st["CapBnd"] == "000001ffffffffff"
    assert st["Threads"] == "1" and st["Seccomp"] == "0"
    assert st["Cpus_allowed_list"] == "0-1"
    size = sum(v.end - v.start for v in program_mm().areas) // 1024
    assert st["VmSize"] == f"{size:8d} kB"
    assert st["VmStk"] == f"{0x21000 // 1024:8d} kB"
    assert status_of(world.text("/proc/1/status"))["State"] == "S (sleeping)"


def test_stat_line(world: World) -> None:
    world.me.tg.comm = b"a) b"  # a comm with ") " must still parse from the last ")"
    line = world.text("/proc/2/stat")
    assert line.endswith("\n")
    head, _, rest = line.rstrip("\n").rpartition(") ")
    pid, comm = head.split(" (", 1)
    fields = [pid, comm, *rest.split(" ")]
    assert len(fields) == 52
    assert (fields[0], fields[1], fields[2], fields[3], fields[4], fields[5]) == \
        ("2", "a) b", "R", "1", "2", "1")
    assert int(fields[19]) == 1  # num_threads
    assert int(fields[22]) == sum(v.end - v.start for v in program_mm().areas)  # vsize
    assert int(fields[37]) == 17  # exit_signal
    assert int(fields[46]) == 0x405000  # start_brk
    statm = [int(x) for x in world.text("/proc/2/statm").split()]
    assert len(statm) == 7 and statm[0] == int(fields[22]) // 4096


def test_cmdline_comm_environ(world: World) -> None:
    assert world.read("/proc/2/cmdline") == b"/bin/prog\0-x\0a b\0"
    assert world.read("/proc/2/comm") == b"prog\n"
    assert world.read("/proc/2/environ") == b""
    f = vfs.open(world.ctx, None, b"/proc/2/comm", O_WRONLY)
    assert f.write(b"renamed\n") == 8
    assert world.me.tg.comm == b"renamed"


def test_maps_lines_parse_like_linux(world: World) -> None:
    text = world.text("/proc/2/maps")
    lines = text.splitlines()
    assert len(lines) == len(program_mm().areas)
    parsed = [MAPS_RE.match(ln) for ln in lines]
    assert all(parsed), lines
    names = [m.group(8) for m in parsed if m]
    assert names == ["/bin/prog", "/bin/prog", "/bin/prog", "[heap]", None, "[stack]"]
    assert [m.group(3) for m in parsed if m] == ["r--p", "r-xp", "rw-p", "rw-p", "rw-s", "rw-p"]
    named = lines[0]
    assert named.index("/bin/prog") == 73  # Linux pads the name to column 73
    assert lines[4].endswith(" 0")  # no name: no padding


def test_limits_and_id_maps(world: World) -> None:
    world.me.tg.rlimits[7] = (256, 512)
    lines = world.text("/proc/2/limits").splitlines()
    assert lines[0].split() == ["Limit", "Soft", "Limit", "Hard", "Limit", "Units"]
    assert len(lines) == 17
    nofile = next(ln for ln in lines if ln.startswith("Max open files"))
    assert nofile.split()[3:6] == ["256", "512", "files"]
    stack = next(ln for ln in lines if ln.startswith("Max stack size"))
    assert stack[26:46].rstrip() == "8388608" and stack[47:67].rstrip() == "unlimited"
    assert world.text("/proc/2/uid_map").split() == ["0", "0", "4294967295"]


def test_oom_score_adj_is_writable(world: World) -> None:
    assert world.text("/proc/2/oom_score_adj") == "0\n"
    f = vfs.open(world.ctx, None, b"/proc/2/oom_score_adj", O_WRONLY)
    f.write(b"-500\n")
    assert world.text("/proc/2/oom_score_adj") == "-500\n"
    assert world.text("/proc/1/oom_score_adj") == "0\n"
    assert errno_of(f.write, b"2000") == errno.EINVAL
    assert errno_of(f.write, b"lots") == errno.EINVAL


def test_links_exe_cwd_root(world: World) -> None:
    vfs.chdir(world.me.tg.fs, None, b"/tmp")
    assert world.readlink("/proc/2/exe") == b"/bin/prog"
    assert world.readlink("/proc/2/cwd") == b"/tmp"
    assert world.readlink("/proc/2/root") == b"/"
    assert resolve(world.ctx, b"/proc/2/exe").inode is resolve(world.ctx, b"/bin/prog").inode
    assert resolve(world.ctx, b"/proc/2/cwd").inode is resolve(world.ctx, b"/tmp").inode
    # An exe path that leads back to /proc/self/exe (busybox re-executing itself).
    world.me.tg.exe = b"/proc/self/exe"
    assert world.readlink("/proc/2/exe") == b"/bin/prog"
    vfs.symlink(world.ctx, b"prog", None, b"/bin/other")
    world.init.tg.exe = b"/bin/other"
    assert world.readlink("/proc/1/exe") == b"/bin/prog"  # the resolved path
    vfs.rename(world.ctx, None, b"/bin/prog", None, b"/bin/init")
    child = world.spawn(parent=world.init.tg)
    child.tg.exe = b"/proc/self/exe"  # inherited by fork: still the parent's file,
    assert world.readlink(f"/proc/{child.tid}/exe") == b"/bin/init"  # not the reader's
    assert world.readlink("/proc/1/exe") == b"/bin/init"


def test_fd_links_and_fdinfo(world: World) -> None:
    fds = world.me.tg.fds
    f = vfs.open(world.ctx, None, b"/bin/prog", O_RDONLY)
    f.read(4)
    r, w = make_pipe()
    assert fds.install(f) == 0
    assert fds.install(r, cloexec=True) == 1
    fds.install(w)

    class Eventfd(FileDescription):
        pass

    fds.install(Eventfd(O_RDWR))
    assert world.ls("/proc/2/fd") == ["0", "1", "2", "3"]
    assert world.readlink("/proc/2/fd/0") == b"/bin/prog"
    assert re.fullmatch(rb"pipe:\[\d+\]", world.readlink("/proc/2/fd/1"))
    assert world.readlink("/proc/2/fd/1") == world.readlink("/proc/2/fd/2")
    assert world.readlink("/proc/2/fd/3") == b"anon_inode:[eventfd]"
    modes = [vfs.stat(world.ctx, None, f"/proc/2/fd/{i}".encode(), follow=False).mode & 0o777
             for i in range(4)]
    assert modes == [0o500, 0o500, 0o300, 0o700]  # lr-x, lr-x, l-wx, lrwx as on Linux
    # Following the link opens the very file, even after a rename.
    vfs.rename(world.ctx, None, b"/bin/prog", None, b"/bin/moved")
    g = vfs.open(world.ctx, None, b"/proc/2/fd/0", O_RDONLY)
    assert g.read(100) == b"\x7fELF program"
    assert world.readlink("/proc/2/fd/0") == b"/bin/moved"
    info = world.text("/proc/2/fdinfo/0").splitlines()
    assert info[0] == "pos:\t4" and info[1] == "flags:\t00"
    assert world.text("/proc/2/fdinfo/1").splitlines()[1] == "flags:\t02000000"
    # fd/N of a pipe reopens the pipe (the reopen hook the VFS is to call).
    def link(n: int) -> FdLink:
        inode = resolve(world.ctx, b"/proc/2/fd/%d" % n, follow=False).inode
        assert isinstance(inode, FdLink)
        return inode

    w2 = link(1).reopen(O_WRONLY)
    assert w2 is not None and w2.write(b"via proc") == 8
    assert r.read(100) == b"via proc"
    assert link(0).reopen(O_RDONLY) is None  # a file: the VFS opens its dentry
    assert errno_of(link(3).reopen, O_RDONLY) == errno.ENXIO
    fds.close(3)
    assert errno_of(world.readlink, "/proc/2/fd/3") == errno.ENOENT
    assert errno_of(world.readlink, "/proc/2/fd/9") == errno.ENOENT
    assert world.ls("/proc/2/fd") == ["0", "1", "2"]


def test_task_directory(world: World) -> None:
    t = world.thread(world.me)
    assert world.ls("/proc/2/task") == ["2", str(t.tid)]
    assert status_of(world.text(f"/proc/2/task/{t.tid}/status"))["Pid"] == str(t.tid)
    assert "task" not in world.ls(f"/proc/2/task/{t.tid}")
    assert str(t.tid) not in world.ls("/proc")  # threads are not listed...
    assert status_of(world.text(f"/proc/{t.tid}/status"))["Tgid"] == "2"  # ...but resolve


# -- processes that go away ---------------------------------------------------------------

def test_vanished_process_is_enoent(world: World) -> None:
    child = world.spawn(parent=world.me.tg)
    pid = str(child.tid)
    held = vfs.open(world.ctx, None, f"/proc/{pid}/status".encode(), O_RDONLY)
    fd_dir = vfs.open(world.ctx, None, f"/proc/{pid}/fd".encode(), O_RDONLY | O_DIRECTORY)
    resolve(world.ctx, f"/proc/{pid}/maps".encode())  # a cached dentry
    world.vanish(child)
    assert errno_of(world.read, f"/proc/{pid}/status") == errno.ENOENT
    assert errno_of(world.read, f"/proc/{pid}/maps") == errno.ENOENT
    assert errno_of(vfs.stat, world.ctx, None, f"/proc/{pid}".encode()) == errno.ENOENT
    assert errno_of(world.readlink, f"/proc/{pid}/exe") == errno.ENOENT
    assert errno_of(fd_dir.getdents64, 4096) == errno.ENOENT
    assert errno_of(world.ls, f"/proc/{pid}") == errno.ENOENT
    assert pid not in world.ls("/proc")
    # What was opened before the exit still reads its snapshot.
    assert "Pid:\t" + pid in held.read(10_000).decode()
    assert held.stat().mode & 0o170000 == 0o100000


def test_dead_pid_dentries_are_pruned_and_pids_reused(world: World) -> None:
    child = world.spawn(parent=world.me.tg)
    pid = child.tid
    resolve(world.ctx, f"/proc/{pid}/status".encode())
    assert str(pid).encode() in world.mount.root.children
    world.vanish(child)
    world.ls("/proc")
    assert str(pid).encode() not in world.mount.root.children
    # A cached dentry of a reused pid shows the new process.
    other = world.spawn(parent=world.me.tg)
    resolve(world.ctx, f"/proc/{other.tid}/status".encode())
    world.vanish(other)
    world.kernel._next_pid = other.tid
    again = world.spawn(parent=world.me.tg, comm=b"second")
    assert again.tid == other.tid
    assert status_of(world.text(f"/proc/{again.tid}/status"))["Name"] == "second"


def test_walk_while_processes_come_and_go(world: World) -> None:
    """A reader walking /proc while processes exit sees files or ENOENT, nothing else."""
    stop = threading.Event()
    errors: list[BaseException] = []

    def churn() -> None:
        try:
            while not stop.is_set():
                t = world.spawn(parent=world.me.tg)
                t.tg.fds.install(make_pipe()[0])
                world.vanish(t)
        except BaseException as e:  # noqa: BLE001 - reported by the main thread
            errors.append(e)

    th = threading.Thread(target=churn)
    th.start()
    seen = 0
    try:
        for _ in range(200):
            for name in world.ls("/proc"):
                if not name.isdigit():
                    continue
                for leaf in ("status", "stat", "maps", "fd", "fd/0", "exe", "task"):
                    path = f"/proc/{name}/{leaf}"
                    try:
                        if leaf in ("fd", "task"):
                            world.ls(path)
                        elif leaf in ("fd/0", "exe"):
                            world.readlink(path)
                        else:
                            world.read(path)
                        seen += 1
                    except SyscallError as e:
                        assert e.errno == errno.ENOENT, (path, e)
    finally:
        stop.set()
        th.join()
    assert not errors and seen


def test_zombie(world: World) -> None:
    child = world.spawn(parent=world.me.tg)
    child.exited = True
    world.kernel.task_exited(child)  # a zombie until its parent waits
    st = status_of(world.text(f"/proc/{child.tid}/status"))
    assert st["State"] == "Z (zombie)" and "VmSize" not in st and st["Threads"] == "0"
    assert world.read(f"/proc/{child.tid}/cmdline") == b""
    assert world.ls(f"/proc/{child.tid}/fd") == []
    assert world.text(f"/proc/{child.tid}/stat").split()[2] == "Z"


# -- system-wide files ------------------------------------------------------------------------

def test_cpuinfo_counts_the_cpus_we_may_use() -> None:
    cpus = tuple(sorted(os.sched_getaffinity(0)))
    info = host_info()
    assert info.cpus == cpus
    assert info.cpuinfo.count(b"processor\t:") == len(cpus)
    host = b"".join(b"processor\t: %d\nmodel name\t: X\n\n" % i for i in range(8))
    picked = select_cpuinfo(host, (2, 5))
    assert re.findall(rb"processor\t: (\d+)", picked) == [b"2", b"5"]
    assert select_cpuinfo(b"", (0, 1)).count(b"processor") == 2
    assert format_cpu_list((0, 1, 2, 5, 7, 8)) == "0-2,5,7-8"


def test_system_files(world: World) -> None:
    assert world.text("/proc/cpuinfo").count("processor") == 2
    mem = world.text("/proc/meminfo")
    assert re.search(r"^MemTotal: +2000000 kB$", mem, re.M)
    free = int(re.search(r"^MemFree: +(\d+) kB$", mem, re.M).group(1))  # type: ignore[union-attr]
    assert 0 < free < 2_000_000
    up, idle = (float(x) for x in world.text("/proc/uptime").split())
    assert 0 <= up < 60 and idle >= 0
    assert re.fullmatch(r"0\.00 0\.00 0\.00 \d+/\d+ \d+\n", world.text("/proc/loadavg"))
    assert world.text("/proc/version").startswith(f"Linux version {DEFAULT_RELEASE} #1 SMP")
    stat = world.text("/proc/stat").splitlines()
    assert stat[0].startswith("cpu  ") and len(stat[0].split()) == 11
    assert [ln.split()[0] for ln in stat[1:3]] == ["cpu0", "cpu1"]
    assert any(re.fullmatch(r"btime \d+", ln) for ln in stat)
    assert "procs_running 1" in stat
    fs = world.text("/proc/filesystems").splitlines()
    assert {"nodev\tproc", "nodev\ttmpfs", "nodev\toverlay", "nodev\t9p"} <= set(fs)


def test_sys_tunables(world: World) -> None:
    assert world.text("/proc/sys/kernel/hostname") == "box\n"
    assert world.text("/proc/sys/kernel/osrelease") == f"{DEFAULT_RELEASE}\n"
    assert world.text("/proc/sys/kernel/ostype") == "Linux\n"
    assert world.text("/proc/sys/kernel/cap_last_cap") == "40\n"
    boot_id = world.text("/proc/sys/kernel/random/boot_id")
    assert boot_id == world.text("/proc/sys/kernel/random/boot_id")
    assert world.text("/proc/sys/kernel/random/uuid") != world.text("/proc/sys/kernel/random/uuid")
    assert world.text("/proc/sys/vm/overcommit_memory") == "0\n"
    assert int(world.text("/proc/sys/fs/nr_open")) == 1048576
    assert int(world.text("/proc/sys/net/core/somaxconn")) > 0
    assert world.ls("/proc/sys") == ["fs", "kernel", "net", "vm"]


def test_read_only_where_linux_is(world: World) -> None:
    assert errno_of(vfs.open, world.ctx, None, b"/proc/cpuinfo", O_WRONLY) == errno.EACCES
    assert errno_of(vfs.open, world.ctx, None, b"/proc/2/status", O_RDWR) == errno.EACCES
    assert errno_of(vfs.chmod, world.ctx, None, b"/proc/2/status", 0o777) == errno.EPERM
    assert errno_of(vfs.unlink, world.ctx, None, b"/proc/cpuinfo") == errno.EPERM
    assert errno_of(vfs.mkdir, world.ctx, None, b"/proc/new", 0o755) == errno.EPERM
    assert errno_of(world.read, "/proc/nope") == errno.ENOENT
    assert errno_of(world.read, "/proc/0002/status") == errno.ENOENT


# -- inside the sandbox --------------------------------------------------------------------------

BB = "/bin/busybox"


def sh(script: str) -> str:
    res = run_sandbox([BB, "sh", "-c", script])
    assert res.returncode == 0, res.describe()
    assert "Traceback" not in res.err
    return res.out


@pytest.mark.sandbox
def test_sandbox_root_lists_pids_and_self() -> None:
    names = sh("ls /proc").split()
    assert {"1", "self", "cpuinfo", "meminfo", "mounts", "filesystems"} <= set(names)


@pytest.mark.sandbox
def test_sandbox_self_is_the_caller() -> None:
    # `cat` is a child of sh (pid 1): its own status, not init's.
    out = sh("cat /proc/self/status; :")
    pid = re.search(r"^Pid:\t(\d+)$", out, re.M)
    assert pid is not None and pid.group(1) != "1"
    assert re.search(rf"^Tgid:\t{pid.group(1)}$", out, re.M)
    assert re.search(r"^PPid:\t1$", out, re.M)
    assert re.search(r"^Name:\tcat$", out, re.M)


@pytest.mark.sandbox
def test_sandbox_exe_cmdline_and_fds() -> None:
    script = "readlink /proc/$$/exe; tr '\\0' ' ' < /proc/$$/cmdline; echo; ls /proc/$$/fd"
    lines = sh(script).splitlines()
    native = run_native([BB, "sh", "-c", "readlink /proc/$$/exe"]).out.strip()
    assert lines[0] == native  # the resolved path (/bin may be a symlink)
    assert lines[1].startswith(f"{BB} sh -c ")
    assert {"0", "1", "2"} <= set(lines[2:])


@pytest.mark.sandbox
def test_sandbox_stat_and_maps() -> None:
    fields = sh("cat /proc/1/stat; :").split()
    assert fields[0] == "1" and fields[1] == "(busybox)" and fields[3] == "0"
    assert len(fields) == 52
    lines = sh("cat /proc/self/maps").splitlines()
    assert lines and all(MAPS_RE.match(ln) for ln in lines), lines
    assert any(ln.endswith("[stack]") for ln in lines)


@pytest.mark.sandbox
def test_sandbox_mounts_cpus_hostname() -> None:
    out = sh("cat /proc/mounts; grep -c ^processor /proc/cpuinfo; nproc;"
             " cat /proc/sys/kernel/hostname")
    assert re.search(r"^proc /proc proc ", out, re.M)
    assert re.search(r"^devtmpfs /dev devtmpfs ", out, re.M)
    tail = out.splitlines()[-3:]
    assert int(tail[0]) == len(os.sched_getaffinity(0))
    assert tail[1] == run_native(["nproc"]).out.strip()
    assert tail[2] == "pyvisor"
    res = run_sandbox([BB, "cat", "/proc/99999/status"])
    assert res.returncode == 1 and "No such file" in res.err
