"""The text of proc files, in Linux's formats (proc(5))."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sentry.vfs.mount import format_mounts, path_of

if TYPE_CHECKING:
    from sentry.kernel.kernel import Kernel
    from sentry.kernel.threadgroup import ThreadGroup
    from sentry.vfs.dentry import Dentry
    from sentry.vfs.resolve import FsContext

PAGE = 4096
CLK_TCK = 100
FILESYSTEMS = ("nodev\tsysfs\nnodev\ttmpfs\nnodev\tproc\nnodev\tdevtmpfs\nnodev\tdevpts\n"
               "nodev\toverlay\nnodev\t9p\n")
RLIMIT_NAMES = (
    ("Max cpu time", "seconds"), ("Max file size", "bytes"), ("Max data size", "bytes"),
    ("Max stack size", "bytes"), ("Max core file size", "bytes"),
    ("Max resident set", "bytes"), ("Max processes", "processes"),
    ("Max open files", "files"), ("Max locked memory", "bytes"),
    ("Max address space", "bytes"), ("Max file locks", "locks"),
    ("Max pending signals", "signals"), ("Max msgqueue size", "bytes"),
    ("Max nice priority", ""), ("Max realtime priority", ""),
    ("Max realtime timeout", "us"),
)


@dataclass(frozen=True)
class HostFacts:
    """What /proc tells about the machine, read from the host once at boot."""

    cpuinfo: bytes
    mem_total_kb: int
    ncpus: int

    @classmethod
    def read(cls) -> HostFacts:
        cpus = sorted(os.sched_getaffinity(0))
        try:
            with open("/proc/cpuinfo", "rb") as f:
                blocks = [b for b in f.read().split(b"\n\n") if b.strip()]
        except OSError:
            blocks = []
        keep = []
        for i, _cpu in enumerate(cpus):
            if i < len(blocks):
                lines = blocks[i].split(b"\n")
                lines = [b"processor\t: %d" % i if ln.startswith(b"processor") else ln
                         for ln in lines]
                keep.append(b"\n".join(lines))
        total = 0
        try:
            with open("/proc/meminfo", "rb") as f:
                for line in f:
                    if line.startswith(b"MemTotal:"):
                        total = int(line.split()[1])
        except OSError:
            pass
        return cls(b"\n\n".join(keep) + b"\n\n" if keep else b"", total, len(cpus))


def meminfo(host: HostFacts) -> bytes:
    total = host.mem_total_kb
    free = total * 3 // 4
    rows = [("MemTotal", total), ("MemFree", free), ("MemAvailable", free),
            ("Buffers", 0), ("Cached", total // 16), ("SwapCached", 0), ("Active", total // 8),
            ("Inactive", total // 16), ("SwapTotal", 0), ("SwapFree", 0), ("Dirty", 0),
            ("Writeback", 0), ("AnonPages", total // 8), ("Mapped", total // 32),
            ("Shmem", 0), ("Slab", 0), ("CommitLimit", total), ("Committed_AS", total // 8),
            ("VmallocTotal", 34359738367), ("HugePages_Total", 0), ("HugePages_Free", 0),
            ("Hugepagesize", 2048)]
    out = []
    for name, kb in rows:
        unit = "" if name.startswith("HugePages_") else " kB"
        out.append(f"{name + ':':<16}{kb:>8}{unit}")
    return ("\n".join(out) + "\n").encode()


def _uptime_s(k: Kernel) -> float:
    return (time.monotonic_ns() - k.boot_monotonic_ns) / 1e9


def uptime(k: Kernel) -> bytes:
    up = _uptime_s(k)
    return f"{up:.2f} {up * 0.9:.2f}\n".encode()


def loadavg(k: Kernel) -> bytes:
    with k.lock:
        n = len(k.tasks)
        last = max(k.tasks, default=0)
    return f"0.00 0.00 0.00 1/{n} {last}\n".encode()


def version(k: Kernel) -> bytes:
    u = k.uts
    return f"{u.sysname} version {u.release} (pyvisor@pyvisor) {u.version}\n".encode()


def system_stat(k: Kernel, host: HostFacts) -> bytes:
    up_ticks = int(_uptime_s(k) * CLK_TCK)
    lines = [f"cpu  {up_ticks // 10} 0 {up_ticks // 20} {up_ticks * host.ncpus} 0 0 0 0 0 0"]
    for i in range(host.ncpus):
        lines.append(f"cpu{i} {up_ticks // 10} 0 {up_ticks // 20} {up_ticks} 0 0 0 0 0 0")
    boot = int(time.time() - _uptime_s(k))
    with k.lock:
        running = len(k.tasks)
    lines += ["intr 0", "ctxt 0", f"btime {boot}", f"processes {running}",
              f"procs_running {running}", "procs_blocked 0", "softirq 0"]
    return ("\n".join(lines) + "\n").encode()


def sys_tree(k: Kernel) -> dict[str, Any]:
    u = k.uts
    return {
        "kernel": {
            "hostname": u.nodename + "\n", "domainname": u.domainname + "\n",
            "osrelease": u.release + "\n", "ostype": u.sysname + "\n",
            "version": u.version + "\n", "pid_max": "4194304\n", "ngroups_max": "65536\n",
            "cap_last_cap": "40\n", "threads-max": "127546\n", "shmmax": "18446744073692774399\n",
            "random": {"boot_id": "5b7e0f0e-6e2b-4c84-9c4e-6c0ffee00001\n",
                       "uuid": "5b7e0f0e-6e2b-4c84-9c4e-6c0ffee00002\n"},
            "yama": {"ptrace_scope": "1\n"},
        },
        "vm": {"overcommit_memory": "0\n", "max_map_count": "65530\n", "mmap_min_addr": "65536\n"},
        "fs": {"file-max": "9223372036854775807\n", "nr_open": "1048576\n",
               "pipe-max-size": "1048576\n"},
        "net": {"core": {"somaxconn": "4096\n"}},
    }


def cmdline(tg: ThreadGroup) -> bytes:
    return b"".join(a + b"\0" for a in tg.argv)


def _state(tg: ThreadGroup) -> tuple[str, str]:
    if tg.zombie:
        return "Z", "zombie"
    if tg.stopped:
        return "T", "stopped"
    return "S", "sleeping"


def _vm_kb(tg: ThreadGroup) -> tuple[int, int]:
    try:
        vmas = tg.mm.vmas()
    except Exception:  # noqa: BLE001 - an address space torn down mid-read
        return 0, 0
    size = sum(v.end - v.start for v in vmas) // 1024
    return size, min(size, 4096)


def status(tg: ThreadGroup, tid: int | None) -> bytes:
    tasks = tg.live_tasks()
    task = next((t for t in tasks if t.tid == tid), tasks[0] if tasks else None)
    creds = task.creds if task is not None else None
    uid = gid = 0
    if creds is not None:
        uid, gid = creds.uid, creds.gid
    st, word = _state(tg)
    size, rss = _vm_kb(tg)
    ppid = tg.parent.tgid if tg.parent is not None else 0
    blocked = task.sigmask if task is not None else 0
    pending = task.pending.mask if task is not None else 0
    ignored = sum(1 << (s - 1) for s, a in tg.sigactions.items() if a.handler == 1)
    caught = sum(1 << (s - 1) for s, a in tg.sigactions.items() if a.handler > 1)
    caps = "000001ffffffffff" if uid == 0 else "0000000000000000"
    lines = [
        f"Name:\t{tg.comm.decode(errors='replace')}", f"Umask:\t{tg.umask:04o}",
        f"State:\t{st} ({word})", f"Tgid:\t{tg.tgid}", "Ngid:\t0",
        f"Pid:\t{tid if tid is not None else tg.tgid}", f"PPid:\t{ppid}", "TracerPid:\t0",
        f"Uid:\t{uid}\t{uid}\t{uid}\t{uid}", f"Gid:\t{gid}\t{gid}\t{gid}\t{gid}",
        f"FDSize:\t{max(64, len(tg.fds.fds()))}", "Groups:\t",
        f"VmPeak:\t{size:>8} kB", f"VmSize:\t{size:>8} kB", f"VmRSS:\t{rss:>8} kB",
        f"Threads:\t{len(tasks)}", "SigQ:\t0/127546",
        f"SigPnd:\t{pending:016x}", f"ShdPnd:\t{tg.pending.mask:016x}",
        f"SigBlk:\t{blocked:016x}", f"SigIgn:\t{ignored:016x}", f"SigCgt:\t{caught:016x}",
        f"CapInh:\t{'0' * 16}", f"CapPrm:\t{caps}", f"CapEff:\t{caps}", f"CapBnd:\t{caps}",
        f"CapAmb:\t{'0' * 16}", f"NoNewPrivs:\t{tg.prctl.get('no_new_privs', 0)}",
        "Seccomp:\t0", "Seccomp_filters:\t0", "Cpus_allowed_list:\t0-"
        f"{max(len(os.sched_getaffinity(0)) - 1, 0)}",
        "voluntary_ctxt_switches:\t0", "nonvoluntary_ctxt_switches:\t0",
    ]
    return ("\n".join(lines) + "\n").encode()


def pid_stat(k: Kernel, tg: ThreadGroup, tid: int | None) -> bytes:
    st, _ = _state(tg)
    ppid = tg.parent.tgid if tg.parent is not None else 0
    size, rss = _vm_kb(tg)
    start = 0
    comm = tg.comm.decode(errors="replace")
    utime = tg.utime_ns * CLK_TCK // 10**9
    stime = tg.stime_ns * CLK_TCK // 10**9
    fields = [
        str(tid if tid is not None else tg.tgid), f"({comm})", st, str(ppid), str(tg.pgid),
        str(tg.sid), "0", "-1", "4194560", "0", "0", "0", "0", str(utime), str(stime),
        str(tg.child_utime_ns * CLK_TCK // 10**9), str(tg.child_stime_ns * CLK_TCK // 10**9),
        "20", "0", str(len(tg.live_tasks())), "0", str(start), str(size * 1024),
        str(rss // 4), "18446744073709551615",
    ] + ["0"] * 27
    return (" ".join(fields) + "\n").encode()


def statm(tg: ThreadGroup) -> bytes:
    size, rss = _vm_kb(tg)
    return f"{size // 4} {rss // 4} 0 0 0 0 0\n".encode()


def maps(tg: ThreadGroup) -> bytes:
    try:
        vmas = tg.mm.vmas()
    except Exception:  # noqa: BLE001 - an address space torn down mid-read
        return b""
    brk_start = getattr(tg.mm, "brk_start", 0)
    out = []
    for v in vmas:
        perms = ("r" if v.prot & 1 else "-") + ("w" if v.prot & 2 else "-") + (
            "x" if v.prot & 4 else "-") + ("s" if v.flags & 1 else "p")
        name = v.name
        if not name and brk_start and v.start >= brk_start and v.start < brk_start + (1 << 40):
            name = "[heap]" if v.start == brk_start else ""
        line = f"{v.start:08x}-{v.end:08x} {perms} 00000000 00:00 0"
        out.append(f"{line:<73}{name}".rstrip() if name else line)
    return ("\n".join(out) + "\n").encode() if out else b""


def path_in(ctx: FsContext, d: Dentry) -> bytes:
    return path_of(d, ctx.root)


def mounts(ctx: FsContext) -> bytes:
    if ctx.ns is None:
        return b""
    return format_mounts(ctx.ns.mounts(ctx.root))


def limits(tg: ThreadGroup) -> bytes:
    from syscalls.process import DEFAULT_RLIMITS  # the defaults live with getrlimit

    def fmt(v: int) -> str:
        return "unlimited" if v >= (1 << 63) else str(v)

    lines = [f"{'Limit':<26}{'Soft Limit':<21}{'Hard Limit':<21}Units"]
    for i, (name, unit) in enumerate(RLIMIT_NAMES):
        soft, hard = tg.rlimits.get(i, DEFAULT_RLIMITS[i])
        lines.append(f"{name:<26}{fmt(soft):<21}{fmt(hard):<21}{unit}".rstrip())
    return ("\n".join(lines) + "\n").encode()


def fd_target(tg: ThreadGroup, desc: Any) -> bytes:
    from sentry.vfs import vfs

    if tg.fs is not None and getattr(desc, "dentry", None) is not None:
        return vfs.fd_path(tg.fs, desc)
    name = getattr(desc, "link_name", None)
    if name is not None:
        return name()
    return b"anon_inode:[" + type(desc).__name__.lower().encode() + b"]"
