"""sysfs and cgroup mounts: small fixed read-only trees, as gVisor's are.

gVisor's sysfs (pkg/sentry/fsimpl/sys) is not a view of host devices: it is a
few directories and the CPU files that runtimes and language runtimes read to
size themselves (glibc's get_nprocs_conf reads /sys/devices/system/cpu/possible
and /online; Go, the JVM and nproc do too), plus /sys/fs/cgroup as an empty
mount point for a cgroup filesystem.  This module builds the same shape from a
tmpfs that is made read-only once populated (the VFS then answers every write
with EROFS).  As in gVisor: the CPU files say "0-N" for the N+1 CPUs this
process may run on, and each cpuK has topology masks that put every CPU in
one socket as a core of its own (consistent with /proc/cpuinfo).

A cgroup mount is an empty read-only directory: there is no cgroup controller
in the Sentry, and an empty tree makes tools fall back to "no limits" instead
of reading the host's.
"""

from __future__ import annotations

from sentry import placement
from sentry.vfs.inode import S_IFREG
from sentry.vfs.sysblock import block_dir
from sentry.vfs.tmpfs import TmpDir, TmpFs

SYSFS_MAGIC = 0x62656572
CGROUP2_SUPER_MAGIC = 0x63677270
_TOP_DIRS = (b"block", b"bus", b"class", b"dev", b"devices", b"firmware", b"fs", b"kernel",
             b"module", b"power")


_KSM_FILES = ((b"run", b"0\n"), (b"pages_shared", b"0\n"), (b"pages_sharing", b"0\n"),
              (b"pages_unshared", b"0\n"), (b"pages_volatile", b"0\n"),
              (b"full_scans", b"0\n"), (b"pages_to_scan", b"100\n"),
              (b"sleep_millisecs", b"20\n"), (b"merge_across_nodes", b"1\n"),
              (b"max_page_sharing", b"256\n"), (b"use_zero_pages", b"0\n"))


def _cpu_count() -> int:
    return len(placement.sandbox_cpus())


def _dir(parent: TmpDir, path: bytes) -> TmpDir:
    d = parent
    for name in path.split(b"/"):
        child = d.entries.get(name)
        d = child if isinstance(child, TmpDir) else d.mkdir(name, 0o755, 0, 0)  # type: ignore[assignment]
    return d


def _full_mask(n: int) -> bytes:
    """Linux's hex cpumask (comma every 32 bits) with CPUs 0..n-1 set."""
    return _mask((1 << n) - 1, n)


def _mask(bits: int, n: int) -> bytes:
    words = []
    rem = n % 32
    if rem:
        words.append(b"%0*x" % ((rem + 3) // 4, bits >> (n - rem)))
    for shift in range(n - rem - 32, -32, -32):
        words.append(b"%08x" % ((bits >> shift) & 0xFFFF_FFFF))
    return b",".join(words)


def _file(parent: TmpDir, name: bytes, data: bytes) -> None:
    f = parent.create(name, S_IFREG | 0o444, 0, 0)
    f.write_at(0, data)


class SysFs(TmpFs):
    """A read-only sysfs with gVisor's layout."""

    name = "sysfs"
    magic = SYSFS_MAGIC

    def __init__(self, *, ncpus: int | None = None) -> None:
        super().__init__(mode=0o555, source="sysfs")
        n = ncpus or _cpu_count()
        cpus = b"0-%d\n" % (n - 1)
        root = self.root
        for name in _TOP_DIRS:
            if name == b"block":  # the Sentry's block devices (sentry/vfs/sysblock.py)
                root._add(name, block_dir(self))
            else:
                root.mkdir(name, 0o755, 0, 0)
        _dir(root, b"class/power_supply")
        _dir(root, b"dev/block")
        _dir(root, b"dev/char")
        _dir(root, b"fs/cgroup")
        # KSM as Debian's kernels show it, the merger stopped: madvise's
        # MADV_MERGEABLE succeeds and merges nothing, and programs (LTP's
        # madvise02) read this directory to know that the advice is known.
        ksm = _dir(root, b"kernel/mm/ksm")
        for name, data in _KSM_FILES:
            _file(ksm, name, data)
        cpu = _dir(root, b"devices/system/cpu")
        for name in (b"online", b"possible", b"present"):
            _file(cpu, name, cpus)
        full = _full_mask(n) + b"\n"
        for i in range(n):
            one = _mask(1 << i, n) + b"\n"
            topo = _dir(cpu, b"cpu%d/topology" % i)
            for name, data in ((b"core_cpus", one), (b"core_siblings", full),
                               (b"package_cpus", full), (b"thread_siblings", one)):
                _file(topo, name, data)
        self.readonly = True


class CgroupFs(TmpFs):
    """An empty read-only cgroup mount (``cgroup`` or ``cgroup2`` in /proc/mounts)."""

    magic = CGROUP2_SUPER_MAGIC

    def __init__(self, kind: str = "cgroup") -> None:
        super().__init__(mode=0o555, source=kind, readonly=True)
        self.name = kind
