"""The text of /proc/<pid> files, in the formats Linux prints (proc(5)).

Facts kept here (from proc(5), fs/proc/array.c's formats, and gVisor):

* status: "Key:\\tvalue" lines in Linux's order; Vm* lines in "%8lu kB";
  signal sets as 16 hex digits (bit n-1 is signal n); capability sets as 16
  hex digits, root's being 000001ffffffffff (cap_last_cap 40).  A zombie
  has no address space: its Vm* lines are left out, as Linux does.
* stat: one line of 52 fields; the command is the raw comm in parentheses
  (a parser splits at the *last* ")").  Times are clock ticks (USER_HZ 100).
* maps: "%08lx-%08lx %c%c%c%c %08llx %02x:%02x %lu", padded with spaces to
  column 73 before a name; no padding when there is no name.
* A VMA here knows its memfd offset, not its file offset, device or inode,
  so those columns are 0 for every mapping (a hook for later: VmaInfo could
  carry them).
* Links (cwd, root) read as paths from the *reader's* root, as
  Linux's d_path does; a process with no filesystem context reads ENOENT.

Lock order: ``Kernel.lock`` is taken only for multi-field snapshots and never
while holding a procfs or VFS lock (opening a proc file holds neither).
"""

from __future__ import annotations

import errno
import threading
import time
import weakref
from typing import TYPE_CHECKING, Any, NamedTuple

from sentry.kernel import pidns, rlimits, seccomp
from sentry.kernel.creds import Credentials
from sentry.kernel.errors import SyscallError
from sentry.kernel.ptrace import traced_stopped, tracer_pid
from sentry.kernel.signals import SIG_DFL, SIG_IGN
from sentry.kernel.task import current_task
from sentry.procfs.hostinfo import HostInfo
from sentry.procfs.nodes import ProcessRef, gone
from sentry.vfs.mount import path_of
from sentry.vfs.resolve import resolve

if TYPE_CHECKING:
    from sentry.kernel.kernel import Kernel
    from sentry.kernel.task import Task
    from sentry.kernel.threadgroup import ThreadGroup
    from sentry.mm.vma import VmaInfo
    from sentry.vfs.dentry import Dentry
    from sentry.vfs.resolve import FsContext

PAGE = 4096
USER_HZ = 100
PROT_READ, PROT_WRITE, PROT_EXEC = 1, 2, 4
MAP_SHARED = 1
O_CLOEXEC = 0o2000000
MAPS_NAME_COLUMN = 73  # 25 + sizeof(void *) * 6 - 1, plus the separating space

LIMIT_ROWS = (
    ("Max cpu time", "seconds"), ("Max file size", "bytes"), ("Max data size", "bytes"),
    ("Max stack size", "bytes"), ("Max core file size", "bytes"),
    ("Max resident set", "bytes"), ("Max processes", "processes"),
    ("Max open files", "files"), ("Max locked memory", "bytes"),
    ("Max address space", "bytes"), ("Max file locks", "locks"),
    ("Max pending signals", "signals"), ("Max msgqueue size", "bytes"),
    ("Max nice priority", ""), ("Max realtime priority", ""),
    ("Max realtime timeout", "us"),
)


rlimit = rlimits.get  # the table lives in sentry/kernel/rlimits.py


# -- helpers -----------------------------------------------------------------

def fs_of(tg: ThreadGroup) -> FsContext:
    """The process's filesystem context (ENOENT for a process without one)."""
    ctx = tg.fs
    if ctx is None:
        raise gone()
    return ctx


def reader_root(tg: ThreadGroup) -> Dentry:
    """The root paths are shown from: the reading task's, else the target's."""
    t = current_task()
    if t is not None and t.tg.fs is not None:
        return t.tg.fs.root
    return fs_of(tg).root


def _vmas(tg: ThreadGroup) -> list[VmaInfo]:
    if tg.zombie or tg.mm is None:
        return []
    return list(tg.mm.vmas())


def _escape_comm(comm: bytes) -> bytes:
    return comm.replace(b"\\", b"\\\\").replace(b"\n", b"\\n")


def cmdline(tg: ThreadGroup) -> bytes:
    """argv, each argument NUL-terminated (empty for a zombie)."""
    if tg.zombie:
        return b""
    return b"".join(a + b"\0" for a in tg.argv)


def auxv(tg: ThreadGroup) -> bytes:
    """The auxiliary vector the image started with (Linux's saved_auxv):
    debuggers read AT_ENTRY and AT_PHDR here to relocate a PIE."""
    if tg.zombie:
        return b""
    return getattr(tg.mm, "saved_auxv", b"")


def comm(tg: ThreadGroup) -> bytes:
    return tg.comm + b"\n"


def set_comm(tg: ThreadGroup, data: bytes) -> None:
    """Writing /proc/<pid>/comm renames the process, like PR_SET_NAME."""
    name = data[:-1] if data.endswith(b"\n") else data
    tg.comm = name.split(b"\0", 1)[0][:15]


def cwd_target(tg: ThreadGroup) -> bytes:
    return path_of(fs_of(tg).cwd, reader_root(tg))


def root_target(tg: ThreadGroup) -> bytes:
    return path_of(fs_of(tg).root, reader_root(tg))


# The kernel keeps the exe as the path execve was given, not the file, so:
# a renamed or removed executable would no longer be found, and an exe of
# "/proc/self/exe" (busybox re-executing itself) would name itself, or the
# reader's own exe.  So the file found for a process is remembered with the
# path it was found by, and an exe path through /proc uses the file last found
# for the process or its ancestors (the exec itself resolved that path through
# exe_dentry, for the exec'ing process).  execve now keeps the file it ran
# itself (ThreadGroup.exe_file, Linux's mm->exe_file); this is for thread
# groups made without one (tests build some by hand).
_exe_seen: weakref.WeakKeyDictionary[Any, tuple[bytes, Dentry]] = weakref.WeakKeyDictionary()
_resolving = threading.local()


def _last_exe(tg: ThreadGroup) -> Dentry | None:
    g: ThreadGroup | None = tg
    while g is not None:
        seen = _exe_seen.get(g)
        if seen is not None:
            return seen[1]
        g = g.parent
    return None


def exe_dentry(tg: ThreadGroup) -> Dentry | None:
    """The executable's dentry (even renamed or removed, like Linux's exe_file)."""
    exe = tg.exe
    if tg.zombie or not exe or tg.fs is None:
        return None
    if tg.exe_file is not None:  # kept by execve (and fork) for the file it ran
        return tg.exe_file
    seen = _exe_seen.get(tg)
    if seen is not None and seen[0] == exe:
        return seen[1]
    busy: set[int] = _resolving.__dict__.setdefault("tgs", set())
    d = None
    if id(tg) in busy or exe.startswith(b"/proc/"):
        d = _last_exe(tg)  # the path leads back into procfs
        if d is None and id(tg) in busy:
            return None
    if d is None:
        busy.add(id(tg))
        try:
            d = resolve(tg.fs, exe, follow=True)
        except SyscallError:
            return None
        finally:
            busy.discard(id(tg))
    _exe_seen[tg] = (exe, d)
    return d


def exe_target(tg: ThreadGroup) -> bytes:
    """readlink of exe: the resolved path when the file is still there."""
    if tg.zombie or not tg.exe:
        raise gone()
    d = exe_dentry(tg)
    if d is None:
        return tg.exe
    return path_of(d, reader_root(tg))


# -- memory accounting ---------------------------------------------------------

class VmStats:
    """Sizes in bytes computed from the VMA list (resident = accessible)."""

    def __init__(self, tg: ThreadGroup) -> None:
        vmas = _vmas(tg)
        exe = tg.exe.decode(errors="replace") if tg.exe else None
        self.size = self.rss = self.shared = self.data = self.stack = 0
        self.exe = self.lib = self.anon = self.file = 0
        self.start_code = self.end_code = self.start_stack = 0
        for v in vmas:
            n = v.end - v.start
            self.size += n
            if v.prot & (PROT_READ | PROT_WRITE | PROT_EXEC):
                self.rss += n
                if v.flags & MAP_SHARED:
                    self.shared += n
                elif v.name.startswith("/"):
                    self.file += n
                else:
                    self.anon += n
            if v.name == "[stack]":
                self.stack += n
                self.start_stack = v.end
            elif v.prot & PROT_EXEC and v.name and not v.name.startswith("["):
                if exe is not None and v.name == exe:
                    self.exe += n
                    if not self.start_code:
                        self.start_code, self.end_code = v.start, v.end
                else:
                    self.lib += n
            elif v.prot & PROT_WRITE and not v.flags & MAP_SHARED:
                self.data += n
        self.locked = 0 if tg.zombie or tg.mm is None else tg.mm.locked_bytes()


# -- status, stat, statm -------------------------------------------------------

def task_state(tg: ThreadGroup, task: Task | None) -> tuple[str, str]:
    """(letter, word) of the thread's state as status and stat show it."""
    if tg.zombie or task is None:
        return "Z", "zombie"
    if traced_stopped(task):
        return "t", "tracing stop"
    if tg.stopped:
        return "T", "stopped"
    if task is current_task() or task.in_app:
        return "R", "running"
    # In a syscall: sleeping only while it waits (a parked read, or a serving
    # thread that gets no CPU), as Linux shows it; a program that polls for
    # 'S' to know a child blocked (LTP's TST_PROCESS_STATE_WAIT) must not see
    # it the moment the child enters the call.
    if not task.parked and task.cpu.running():
        return "R", "running"
    return "S", "sleeping"


def _sigmasks(tg: ThreadGroup, task: Task | None) -> tuple[int, int, int, int, int]:
    """(pending, shared pending, blocked, ignored, caught) signal sets."""
    ign = cgt = 0
    for sig, act in tg.sigactions.items():
        if act.handler == SIG_IGN:
            ign |= 1 << (sig - 1)
        elif act.handler != SIG_DFL:
            cgt |= 1 << (sig - 1)
    pnd = task.pending.mask if task is not None else 0
    blk = task.sigmask if task is not None else 0
    return pnd, tg.pending.mask, blk, ign, cgt


def _queued(tg: ThreadGroup, task: Task | None) -> int:
    n = sum(len(q) for q in tg.pending.queue.values())
    if task is not None:
        n += sum(len(q) for q in task.pending.queue.values())
    return n


class _Snapshot(NamedTuple):
    """What /proc/<pid>/status and stat read under the kernel lock at once."""

    tg: ThreadGroup
    task: Task | None
    nthreads: int
    ppid: int
    sigmasks: tuple[int, int, int, int, int]  # see _sigmasks
    queued: int


def _snapshot(kernel: Kernel, ref: ProcessRef) -> _Snapshot:
    with kernel.lock:
        tg = ref.tg()
        task = ref.task()
        return _Snapshot(tg, task, len(tg.live_tasks()),
                         tg.parent.tgid if tg.parent is not None else 0,
                         _sigmasks(tg, task), _queued(tg, task))


def _kb(n: int) -> str:
    return f"{n // 1024:8d} kB"


def _levels(ids: list[int]) -> str:
    """An NS* line's ids: one per pid namespace level, the outermost first."""
    return "\t".join(map(str, ids))


def status(kernel: Kernel, ref: ProcessRef, host: HostInfo) -> bytes:
    """/proc/<pid>/status."""
    tg, task, nthreads, ppid, (pnd, shd, blk, ign, cgt), queued = _snapshot(kernel, ref)
    letter, word = task_state(tg, task)
    c = task.creds if task is not None else None
    sc_state = task.seccomp if task is not None else None
    if c is None:  # a zombie: no credentials left to show
        c = Credentials(cap_permitted=0, cap_effective=0, cap_bounding=0)
    uids = (c.uid, c.euid, c.suid, c.fsuid)
    gids = (c.gid, c.egid, c.sgid, c.fsgid)
    groups = c.groups
    fds = [] if tg.zombie else tg.fds.fds()
    fdsize = max(64, -(-(max(fds, default=0) + 1) // 64) * 64)
    pid = ref.shown_pid()
    lines = [
        b"Name:\t" + _escape_comm(tg.comm),
        f"Umask:\t{tg.umask:04o}".encode(),
        f"State:\t{letter} ({word})".encode(),
    ]
    text = [
        f"Tgid:\t{tg.tgid}", "Ngid:\t0", f"Pid:\t{pid}", f"PPid:\t{ppid}",
        f"TracerPid:\t{tracer_pid(task) if task is not None else 0}",
        "Uid:\t" + "\t".join(map(str, uids)), "Gid:\t" + "\t".join(map(str, gids)),
        f"FDSize:\t{fdsize}", "Groups:\t" + " ".join(map(str, groups)) + " ",
        "NStgid:\t" + _levels(pidns.levels_of(tg)),
        "NSpid:\t" + _levels([pid] + (pidns.levels_of_task(task) if task is not None
                                      else pidns.levels_of(tg))[1:]),
        "NSpgid:\t" + _levels(pidns.group_levels(kernel, tg, tg.pgid)),
        "NSsid:\t" + _levels(pidns.group_levels(kernel, tg, tg.sid)),
    ]
    if not tg.zombie:
        vm = VmStats(tg)
        text += [
            f"VmPeak:\t{_kb(vm.size)}", f"VmSize:\t{_kb(vm.size)}", f"VmLck:\t{_kb(vm.locked)}",
            f"VmPin:\t{_kb(0)}", f"VmHWM:\t{_kb(vm.rss)}", f"VmRSS:\t{_kb(vm.rss)}",
            f"RssAnon:\t{_kb(vm.anon)}", f"RssFile:\t{_kb(vm.file)}",
            f"RssShmem:\t{_kb(vm.shared)}", f"VmData:\t{_kb(vm.data)}",
            f"VmStk:\t{_kb(vm.stack)}", f"VmExe:\t{_kb(vm.exe)}", f"VmLib:\t{_kb(vm.lib)}",
            f"VmPTE:\t{_kb(max(vm.rss // 512, 4096))}", f"VmSwap:\t{_kb(0)}",
            f"HugetlbPages:\t{_kb(0)}",
        ]
    text += [
        "CoreDumping:\t0", "THP_enabled:\t1", f"Threads:\t{nthreads}",
        f"SigQ:\t{queued}/{rlimit(tg, rlimits.RLIMIT_SIGPENDING)[0]}",
        f"SigPnd:\t{pnd:016x}", f"ShdPnd:\t{shd:016x}", f"SigBlk:\t{blk:016x}",
        f"SigIgn:\t{ign:016x}", f"SigCgt:\t{cgt:016x}",
        f"CapInh:\t{c.cap_inheritable:016x}", f"CapPrm:\t{c.cap_permitted:016x}",
        f"CapEff:\t{c.cap_effective:016x}", f"CapBnd:\t{c.cap_bounding:016x}",
        f"CapAmb:\t{c.cap_ambient:016x}",
        f"NoNewPrivs:\t{int(tg.prctl.get('no_new_privs', 0))}",
        f"Seccomp:\t{seccomp.mode_of(sc_state)}",
        f"Seccomp_filters:\t{seccomp.filter_count(sc_state)}",
        "Speculation_Store_Bypass:\tthread vulnerable",
        f"Cpus_allowed:\t{host.cpus_mask()}", f"Cpus_allowed_list:\t{host.cpus_list()}",
        "Mems_allowed:\t00000000,00000001", "Mems_allowed_list:\t0",
        "voluntary_ctxt_switches:\t0", "nonvoluntary_ctxt_switches:\t0",
    ]
    lines += [t.encode() for t in text]
    return b"\n".join(lines) + b"\n"


def _ticks(ns: int) -> int:
    return ns * USER_HZ // 1_000_000_000


def _priority_nice(task: Task | None) -> tuple[int, int]:
    """stat's priority and nice fields: 20 + nice for the fair policies,
    -1 - the real-time priority for FIFO and RR."""
    s = task.sched if task is not None else None
    if s is None:
        return 20, 0
    if s.priority:
        return -1 - s.priority, 0
    return 20 + s.nice, s.nice


def stat_line(kernel: Kernel, ref: ProcessRef) -> bytes:
    """/proc/<pid>/stat: the 52 fields of fs/proc/array.c's do_task_stat."""
    tg, task, nthreads, ppid, (pnd, shd, blk, ign, cgt), _ = _snapshot(kernel, ref)
    letter, _ = task_state(tg, task)
    vm = VmStats(tg)
    # The ThreadGroup has no start time yet: a sandbox process is shown as
    # started at boot unless the kernel provides ``start_monotonic_ns``.
    start_ns = getattr(tg, "start_monotonic_ns", kernel.boot_monotonic_ns)
    start = _ticks(max(0, start_ns - kernel.boot_monotonic_ns))
    brk = getattr(tg.mm, "brk_start", 0) if tg.mm is not None else 0
    fields: list[int | str] = [
        ref.shown_pid(), "", letter, ppid, tg.pgid, tg.sid,
        0, -1, 0x400000,  # tty_nr, tpgid, flags
        0, 0, 0, 0,  # minflt, cminflt, majflt, cmajflt
        _ticks(tg.cpu_ns()), _ticks(tg.stime_ns),
        _ticks(tg.child_utime_ns), _ticks(tg.child_stime_ns),
        *_priority_nice(task), nthreads, 0, start, vm.size, vm.rss // PAGE,
        rlimit(tg, rlimits.RLIMIT_RSS)[0],
        vm.start_code, vm.end_code, vm.start_stack, 0, 0,  # kstkesp, kstkeip
        (pnd | shd) & 0x7FFFFFFF, blk & 0x7FFFFFFF, ign & 0x7FFFFFFF, cgt & 0x7FFFFFFF,
        0, 0, 0, tg.exit_signal, 0, 0, 0,  # wchan nswap cnswap exit_signal cpu rtprio policy
        0, 0, 0,  # delayacct_blkio_ticks, guest_time, cguest_time
        0, 0, brk, 0, 0, 0, 0,  # start/end_data, start_brk, arg/env start/end
        tg.exit_status if tg.zombie else 0,
    ]
    head = str(fields[0]).encode() + b" (" + tg.comm + b") "
    return head + " ".join(str(f) for f in fields[2:]).encode() + b"\n"


def statm(tg: ThreadGroup) -> bytes:
    """/proc/<pid>/statm: size resident shared text lib data dt, in pages."""
    vm = VmStats(tg)
    vals = (vm.size, vm.rss, vm.shared + vm.file, vm.exe, 0, vm.data + vm.stack, 0)
    return " ".join(str(v // PAGE) for v in vals).encode() + b"\n"


# -- maps ----------------------------------------------------------------------

def maps(tg: ThreadGroup) -> bytes:
    """/proc/<pid>/maps."""
    vmas = _vmas(tg)
    heap = heap_range(tg)
    return b"".join(maps_line(v.start, v.end, v.prot, bool(v.flags & MAP_SHARED), v.name, heap)
                    for v in vmas)


def heap_range(tg: ThreadGroup) -> tuple[int, int]:
    """[brk start, page-rounded break): the VMA there is "[heap]"."""
    mm = tg.mm
    return (getattr(mm, "brk_start", 0),
            -(-getattr(mm, "current_brk", 0) // PAGE) * PAGE)


def maps_line(start: int, end: int, prot: int, shared: bool, name: str,
              heap: tuple[int, int]) -> bytes:
    """One line of /proc/<pid>/maps (and the head of each smaps entry)."""
    perms = ("r" if prot & PROT_READ else "-") + ("w" if prot & PROT_WRITE else "-") \
        + ("x" if prot & PROT_EXEC else "-") + ("s" if shared else "p")
    brk_lo, brk_hi = heap
    if not name and brk_lo and start < brk_hi and end > brk_lo:
        name = "[heap]"
    line = f"{start:08x}-{end:08x} {perms} {0:08x} 00:00 0"
    if name:
        line = line.ljust(MAPS_NAME_COLUMN - 1) + " " + name.replace("\n", "\\012")
    return line.encode(errors="surrogateescape") + b"\n"


# -- limits, mounts ------------------------------------------------------------

def limits(tg: ThreadGroup) -> bytes:
    """/proc/<pid>/limits, column widths as fs/proc/base.c's proc_pid_limits."""
    def val(v: int) -> str:
        return f"{'unlimited':<20} " if v == rlimits.RLIM_INFINITY else f"{v:<20} "

    out = [f"{'Limit':<25} {'Soft Limit':<20} {'Hard Limit':<20} {'Units':<10}\n"]
    for i, (name, unit) in enumerate(LIMIT_ROWS):
        soft, hard = rlimit(tg, i)
        out.append(f"{name:<25} " + val(soft) + val(hard) + (f"{unit:<10}" if unit else "")
                   + "\n")
    return "".join(out).encode()


# -- writable knobs ----------------------------------------------------------------

_oom_adj: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()


def oom_score_adj(tg: ThreadGroup) -> bytes:
    return f"{_oom_adj.get(tg, 0)}\n".encode()


def set_oom_score_adj(tg: ThreadGroup, data: bytes) -> None:
    """Store a value in [-1000, 1000] (EINVAL otherwise); nothing acts on it."""
    try:
        value = int(data.strip() or b"x")
    except ValueError:
        raise SyscallError(errno.EINVAL) from None
    if not -1000 <= value <= 1000:
        raise SyscallError(errno.EINVAL)
    _oom_adj[tg] = value


def uptime_seconds(kernel: Kernel) -> float:
    return max(0, time.monotonic_ns() - kernel.boot_monotonic_ns) / 1e9
