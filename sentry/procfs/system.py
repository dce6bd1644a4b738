"""System-wide /proc files (cpuinfo, meminfo, stat, uptime, ...) and /proc/sys.

Facts kept here (proc(5); gVisor's fsimpl/proc for what a sandbox reports):

* The identity is the sandbox's, never the host's: version, hostname and
  osrelease come from ``Kernel.uts``, as uname(2) reports them; hostname
  and domainname (and /proc/sysvipc) are the reading task's namespace's.
* CPU times in /proc/stat are derived from the sandbox's own accounting and
  never go backwards (top and ps compute rates from differences); idle time
  is what is left of uptime x CPUs.
* meminfo's MemTotal is the host's; the used part is what the sandbox's
  address spaces map, so MemFree and MemAvailable move plausibly.
* /proc/sys holds the handful of tunables programs read at start-up; most
  are read-only here (mode 0444: open for writing is EACCES); those root may
  change say where they apply, the IPC namespace's in ipc_sysctl.py.
"""

from __future__ import annotations

import errno
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from sentry.kernel import namespaces, pidns, timens
from sentry.kernel.creds import CAP_CHECKPOINT_RESTORE, CAP_SYS_ADMIN
from sentry.kernel.errors import SyscallError
from sentry.kernel.sysctl import NR_OPEN_MAX, NR_OPEN_MIN, PID_MAX_LIMIT, PID_MAX_MIN, parse_int
from sentry.kernel.task import current_task
from sentry.procfs import kconfig, sysvipc
from sentry.procfs.ipc_sysctl import ipc_sysctls, reader_ipc
from sentry.procfs.net import net_dir
from sentry.procfs.nodes import Gen, ProcFile, ProcLink, TableDir, const, random_uuid
from sentry.procfs.process import USER_HZ, VmStats, uptime_seconds
from sentry.vfs.inode import Inode

if TYPE_CHECKING:
    from sentry.kernel.kernel import Kernel, Utsname
    from sentry.kernel.threadgroup import ThreadGroup
    from sentry.procfs.fs import ProcFilesystem
    from sentry.procfs.hostinfo import HostInfo

FILESYSTEMS = b"".join(b"nodev\t%s\n" % n for n in (
    b"proc", b"tmpfs", b"devtmpfs", b"devpts", b"overlay", b"9p", b"sysfs"))


def _live_groups(kernel: Kernel) -> list[ThreadGroup]:
    with kernel.lock:
        return [g for g in kernel.thread_groups.values() if not g.reaped]


def _running(kernel: Kernel) -> int:
    """Tasks in application code, plus the reader itself (always at least 1)."""
    with kernel.lock:
        return 1 + sum(1 for t in kernel.tasks.values() if t.in_app)


def memory_kb(kernel: Kernel, total: int) -> tuple[int, int, int, int, int, int]:
    """(used, cached, free, anon, file, shared) in kB: what the sandbox's mappings
    use of ``total``.  Shared by /proc/meminfo and sysinfo(2) so they agree."""
    seen: set[int] = set()
    anon = file = shared = 0
    for g in _live_groups(kernel):
        if g.zombie or g.mm is None or id(g.mm) in seen:
            continue
        seen.add(id(g.mm))
        vm = VmStats(g)
        anon, file, shared = anon + vm.anon, file + vm.file, shared + vm.shared
    used = min((anon + file + shared) // 1024, total * 9 // 10)
    cached = min(file // 1024 + total // 32, total - used)
    free = max(0, total - used - cached)
    return used, cached, free, anon, file, shared


def meminfo(kernel: Kernel, host: HostInfo) -> bytes:
    """/proc/meminfo: host MemTotal, the rest from the sandbox's mappings."""
    total = host.mem_total_kb
    used, cached, free, anon, file, shared = memory_kb(kernel, total)
    rows = [
        ("MemTotal", total), ("MemFree", free), ("MemAvailable", free + cached),
        ("Buffers", 0), ("Cached", cached), ("SwapCached", 0),
        ("Active", (anon + file) // 1024), ("Inactive", cached // 2),
        ("Active(anon)", anon // 1024), ("Inactive(anon)", 0),
        ("Active(file)", file // 1024), ("Inactive(file)", cached // 2),
        ("Unevictable", 0), ("Mlocked", 0), ("SwapTotal", 0), ("SwapFree", 0),
        ("Dirty", 0), ("Writeback", 0), ("AnonPages", anon // 1024),
        ("Mapped", file // 1024), ("Shmem", shared // 1024), ("Slab", 0),
        ("SReclaimable", 0), ("SUnreclaim", 0), ("KernelStack", 0), ("PageTables", 0),
        ("CommitLimit", total // 2), ("Committed_AS", used), ("VmallocTotal", 34359738367),
        ("VmallocUsed", 0), ("VmallocChunk", 0), ("AnonHugePages", 0),
        ("HugePages_Total", None), ("HugePages_Free", None), ("HugePages_Rsvd", None),
        ("HugePages_Surp", None), ("Hugepagesize", 2048), ("DirectMap4k", total),
    ]
    out = []
    for name, kb in rows:
        if kb is None:  # a count, not a size
            out.append(f"{name + ':':<16}{0:>8}\n")
        else:
            out.append(f"{name + ':':<16}{kb:>8} kB\n")
    return "".join(out).encode()


class CpuClock:
    """/proc/stat and /proc/uptime CPU times: never decreasing, per CPU."""

    def __init__(self, kernel: Kernel, host: HostInfo) -> None:
        self.kernel = kernel
        self.host = host
        self._lock = threading.Lock()
        self._user = 0
        self._system = 0

    def sample(self) -> tuple[int, int, int, int]:
        """(uptime ticks, user ticks, system ticks, idle ticks) over all CPUs."""
        up = int(uptime_seconds(self.kernel) * USER_HZ)
        user = system = 0
        for g in _live_groups(self.kernel):
            user += g.utime_ns + g.child_utime_ns
            system += g.stime_ns + g.child_stime_ns
        n = self.host.ncpus
        with self._lock:
            self._user = max(self._user, min(user * USER_HZ // 10**9, up * n))
            self._system = max(self._system, min(system * USER_HZ // 10**9,
                                                 up * n - self._user))
            user, system = self._user, self._system
        return up, user, system, max(0, up * n - user - system)

    def stat(self, btime: int) -> bytes:
        """/proc/stat."""
        up, user, system, idle = self.sample()
        cpus = self.host.cpus
        n = len(cpus)
        lines = [f"cpu  {user} 0 {system} {idle} 0 0 0 0 0 0"]
        for i, c in enumerate(cpus):
            u = user // n + (1 if i < user % n else 0)
            s = system // n + (1 if i < system % n else 0)
            lines.append(f"cpu{c} {u} 0 {s} {max(0, up - u - s)} 0 0 0 0 0 0")
        k = self.kernel
        with k.lock:
            last = max([*k.tasks, *k.thread_groups], default=0)
        lines += ["intr 0", "ctxt 0", f"btime {btime}", f"processes {last}",
                  f"procs_running {_running(k)}", "procs_blocked 0",
                  "softirq 0 0 0 0 0 0 0 0 0 0 0"]
        return ("\n".join(lines) + "\n").encode()

    def uptime(self) -> bytes:
        """/proc/uptime: seconds up, and idle seconds summed over CPUs."""
        up_ns = int(uptime_seconds(self.kernel) * 1e9)
        task = current_task()
        if task is not None:  # the reader's time namespace's boot-time offset
            up_ns += timens.offset(task.tg, timens.CLOCK_BOOTTIME)
        _, _, _, idle = self.sample()
        return f"{up_ns // 10**9}.{up_ns % 10**9 // 10**7:02d} {idle / USER_HZ:.2f}\n".encode()


def loadavg(kernel: Kernel) -> bytes:
    """/proc/loadavg: no load history is kept, so the averages are 0."""
    with kernel.lock:
        n = len(kernel.tasks)
        last = max([*kernel.tasks, *kernel.thread_groups], default=0)
    return f"0.00 0.00 0.00 {_running(kernel)}/{max(n, 1)} {last}\n".encode()


def version(kernel: Kernel) -> bytes:
    """/proc/version, consistent with uname(2) (gVisor's format)."""
    u = kernel.uts
    return f"{u.sysname} version {u.release} {u.version}\n".encode()


def _reader_uts(k: Kernel) -> Utsname:
    """The reading task's UTS names (its namespace's), else the sandbox's."""
    t = current_task()
    return namespaces.uts_of(t) if t is not None else k.uts


def sys_dir(fs: ProcFilesystem) -> TableDir:
    """/proc/sys: the tunables programs read."""
    k = fs.kernel

    def f(gen: Gen | str) -> Callable[[], Inode]:
        g = const(gen + "\n") if isinstance(gen, str) else gen
        return lambda: ProcFile(fs, g)

    def d(table: dict[bytes, Callable[[], Inode]]) -> Callable[[], Inode]:
        return lambda: TableDir(fs, table)

    sc = k.sysctl

    def rw(read: Callable[[], object], write: Callable[[bytes], None]) -> Callable[[], Inode]:
        """A tunable root may change (sentry/kernel/sysctl.py says which)."""
        def gen() -> bytes:
            value = read()
            return (value if isinstance(value, bytes) else str(value).encode()) + b"\n"
        return lambda: ProcFile(fs, gen, mode=0o644, writer=write)

    def uts_write(field: str) -> Callable[[bytes], None]:
        """Writing hostname/domainname is sethostname/setdomainname for the
        writer's UTS namespace (the file's mode already asked for root)."""
        def write(data: bytes) -> None:
            value = data.split(b"\n", 1)[0]
            t = current_task()
            if len(value) > 64 or t is None:
                raise SyscallError(errno.EINVAL)
            namespaces.set_uts(t, **{field: value.decode("utf-8", "surrogateescape")})
        return write

    kernel = {
        b"cap_last_cap": f("40"),
        b"core_pattern": rw(lambda: sc.core_pattern,
                            lambda b: sc.set_text("core_pattern", b)),
        b"domainname": rw(lambda: _reader_uts(k).domainname, uts_write("domainname")),
        b"hostname": rw(lambda: _reader_uts(k).nodename, uts_write("nodename")),
        b"ngroups_max": f("65536"),
        b"ns_last_pid": rw(lambda: _last_pid(k), lambda b: _set_last_pid(k, b)),
        b"osrelease": f(lambda: (k.uts.release + "\n").encode()),
        b"ostype": f(lambda: (k.uts.sysname + "\n").encode()),
        b"overflowgid": f("65534"),
        b"overflowuid": f("65534"),
        b"pid_max": rw(lambda: sc.pid_max,
                       lambda b: sc.set_int("pid_max", b, PID_MAX_MIN, PID_MAX_LIMIT)),
        b"printk": rw(lambda: sc.printk, lambda b: sc.set_text("printk", b)),
        b"random": d({
            b"boot_id": f(fs.boot_id),
            b"entropy_avail": f("256"),
            b"poolsize": f("256"),
            b"uuid": f(lambda: (random_uuid() + "\n").encode()),
        }),
        **ipc_sysctls(fs),
        b"tainted": f("0"),
        b"threads-max": f("257318"),
        b"version": f(lambda: (k.uts.version + "\n").encode()),
        b"yama": d({b"ptrace_scope": f("0")}),
    }
    table = {
        b"fs": d({b"file-max": f("9223372036854775807"),
                  b"lease-break-time": rw(lambda: sc.lease_break_time,
                                         lambda b: sc.set_int("lease_break_time", b, 0,
                                                              (1 << 31) - 1)),
                  b"nr_open": rw(lambda: sc.nr_open,
                                 lambda b: sc.set_int("nr_open", b, NR_OPEN_MIN, NR_OPEN_MAX)),
                  b"pipe-max-size": rw(lambda: sc.pipe_max_size,
                                       lambda b: sc.set_int("pipe_max_size", b, 4096, 1 << 31)),
                  b"pipe-user-pages-hard": rw(
                      lambda: sc.pipe_user_pages_hard,
                      lambda b: sc.set_int("pipe_user_pages_hard", b, 0, (1 << 63) - 1)),
                  b"pipe-user-pages-soft": rw(
                      lambda: sc.pipe_user_pages_soft,
                      lambda b: sc.set_int("pipe_user_pages_soft", b, 0, (1 << 63) - 1)),
                  # inotify's queue limit is syscalls/inotify.py's MAX_QUEUED; the
                  # watch count is Linux's default, not enforced.
                  b"inotify": d({b"max_queued_events": f("16384"),
                                 b"max_user_instances": rw(
                                     lambda: sc.inotify_max_user_instances,
                                     lambda b: sc.set_int("inotify_max_user_instances", b, 0,
                                                          (1 << 31) - 1)),
                                 b"max_user_watches": f("8192")})}),
        b"kernel": d(kernel),
        b"net": d({b"core": d({b"somaxconn": f("4096")})}),
        b"vm": d({b"drop_caches": lambda: ProcFile(fs, const(b""), mode=0o200, writer=lambda b:
                                                   sc.set_int("drop_caches", b, 1, 4)),
                  b"max_map_count": rw(lambda: sc.max_map_count, sc.set_max_map_count),
                  b"mmap_min_addr": f("65536"),
                  b"overcommit_memory": f("0"), b"overcommit_ratio": f("50")}),
    }
    return TableDir(fs, table)


def _last_pid(k: Kernel) -> int:
    t = current_task()
    return pidns.last_pid(k, pidns.viewer(t) if t is not None else None)


def _set_last_pid(k: Kernel, data: bytes) -> None:
    """ns_last_pid of the writer's pid namespace: CAP_SYS_ADMIN or
    CAP_CHECKPOINT_RESTORE (EPERM), a value in [0, pid_max] (EINVAL)."""
    t = current_task()
    if t is None or not (t.creds.capable(CAP_SYS_ADMIN) or t.creds.capable(CAP_CHECKPOINT_RESTORE)):
        raise SyscallError(errno.EPERM)
    pidns.set_last_pid(k, pidns.viewer(t), parse_int(data, 0, k.sysctl.pid_max))


def system_table(fs: ProcFilesystem) -> dict[bytes, Callable[[], Inode]]:
    """The non-pid entries of /proc's root but self and thread-self."""
    k = fs.kernel
    clock = CpuClock(k, fs.host)
    btime = int(time.time() - uptime_seconds(k))

    def f(gen: Gen) -> Callable[[], Inode]:
        return lambda: ProcFile(fs, gen)

    return {
        b"config.gz": f(kconfig.gzipped),
        b"cpuinfo": f(const(fs.host.cpuinfo)),
        b"filesystems": f(const(FILESYSTEMS)),
        b"loadavg": f(lambda: loadavg(k)),
        b"meminfo": f(lambda: meminfo(k, fs.host)),
        b"mounts": lambda: ProcLink(fs, const(b"self/mounts")),
        b"net": lambda: net_dir(fs),
        b"stat": f(lambda: clock.stat(btime)),
        b"sys": lambda: sys_dir(fs),
        b"sysvipc": lambda: TableDir(fs, {
            b"msg": f(lambda: sysvipc.msg(reader_ipc(k))),
            b"sem": f(lambda: sysvipc.sem(reader_ipc(k))),
            b"shm": f(lambda: sysvipc.shm(reader_ipc(k), k)),
        }),
        b"uptime": f(clock.uptime),
        b"version": f(lambda: version(k)),
    }
