"""The few host facts /proc repeats: CPUs and total memory, read once.

The Sentry opens no host file after start-up (DESIGN.md, trust boundary 3),
so /proc/cpuinfo and /proc/meminfo of the host are read at most once per
Sentry process, when the first ProcFilesystem is built at boot.  A procfs
made later (mount -t proc inside the sandbox) reuses that snapshot; if the
host files could not be read at all, plausible text is synthesized instead.

The CPUs shown are the ones the Sentry may run on (sched_getaffinity), with
their host numbers, so /proc/cpuinfo, /proc/stat and Cpus_allowed_list agree
with what sched_getaffinity(2) tells the application.
"""

from __future__ import annotations

import functools

from sentry import placement
from shm.records import record

FALLBACK_MEM_KB = 4 << 20  # 4 GiB when the host's meminfo is unreadable


@record(frozen=True, slots=True)
class HostInfo:
    """What the sandbox's /proc says about the machine."""

    cpus: tuple[int, ...]  # host CPU numbers the sandbox may use, ascending
    cpuinfo: bytes  # the /proc/cpuinfo text for exactly those CPUs
    mem_total_kb: int

    @property
    def ncpus(self) -> int:
        return len(self.cpus)

    def cpus_list(self) -> str:
        """The CPUs as Linux's list format ("0-3,6"), for Cpus_allowed_list."""
        return format_cpu_list(self.cpus)

    def cpus_mask(self) -> str:
        """The CPUs as Linux's comma-grouped hex mask, for Cpus_allowed."""
        mask = sum(1 << c for c in self.cpus)
        words = max(1, (max(self.cpus, default=0) // 32) + 1)
        return ",".join(f"{(mask >> (32 * i)) & 0xFFFFFFFF:08x}"
                        for i in reversed(range(words)))


def format_cpu_list(cpus: tuple[int, ...]) -> str:
    """Runs of consecutive numbers as "a-b", joined by commas."""
    out: list[str] = []
    i = 0
    while i < len(cpus):
        j = i
        while j + 1 < len(cpus) and cpus[j + 1] == cpus[j] + 1:
            j += 1
        out.append(str(cpus[i]) if i == j else f"{cpus[i]}-{cpus[j]}")
        i = j + 1
    return ",".join(out)


def select_cpuinfo(text: bytes, cpus: tuple[int, ...]) -> bytes:
    """The host cpuinfo blocks of ``cpus`` (matched by their "processor" line).

    A CPU with no block (an unexpected format, or no host text) gets a
    synthesized one, so the number of "processor" lines always equals the
    number of CPUs the sandbox may use.
    """
    blocks: dict[int, bytes] = {}
    for block in text.split(b"\n\n"):
        block = block.strip(b"\n")
        for line in block.split(b"\n"):
            key, _, value = line.partition(b":")
            if key.strip() == b"processor":
                try:
                    blocks[int(value.strip())] = block
                except ValueError:
                    pass
                break
    out = [blocks.get(c) or _synthetic_cpu(c) for c in cpus]
    return b"".join(b + b"\n\n" for b in out)


def _synthetic_cpu(n: int) -> bytes:
    return (f"processor\t: {n}\nvendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: 0\n"
            f"model name\t: pyvisor virtual CPU\nstepping\t: 0\ncpu MHz\t\t: 2000.000\n"
            f"cache size\t: 4096 KB\nfpu\t\t: yes\nflags\t\t: fpu sse sse2\n"
            f"bogomips\t: 4000.00\n").encode().rstrip(b"\n")


def parse_mem_total(text: bytes) -> int:
    """MemTotal in kB from meminfo text (FALLBACK_MEM_KB if absent)."""
    for line in text.splitlines():
        if line.startswith(b"MemTotal:"):
            try:
                return int(line.split()[1])
            except (IndexError, ValueError):
                break
    return FALLBACK_MEM_KB


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return b""


@functools.cache
def host_info() -> HostInfo:
    """The host snapshot: read on the first call (at boot), cached for good."""
    cpus = tuple(sorted(placement.sandbox_cpus())) or (0,)
    return HostInfo(cpus, select_cpuinfo(_read("/proc/cpuinfo"), cpus),
                    parse_mem_total(_read("/proc/meminfo")))
