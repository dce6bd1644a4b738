"""Run the Linux Test Project's syscall tests natively and under pyvisor, one
test per sandbox, and count verdicts per family.

Usage, given a static build of the LTP (built from its own repository as
its INSTALL describes, which tests/ltp/build.py does; PYVISOR_LTP_DIR or
--ltp names the tree):
    python3 tests/ltp/runner.py [--ltp DIR] [--jobs N] [--json OUT] [FAMILY ...]

A family is a directory of testcases/kernel/syscalls (``wait4``, ``fcntl``).
Without FAMILY, :data:`FAMILIES` (what the project's issues name). A test's
verdict comes from its own result lines, not only its exit status:

* ``pass``: at least one TPASS and no TFAIL or TBROK (LTP's summary block,
  ``passed N`` / ``failed N`` / ``broken N``, counts the same way);
* ``conf``: nothing but TCONF (the test does not apply here);
* ``fail``: anything else, a timeout included.

Native runs happen in new UTS, IPC and mount namespaces (``unshare``), so a
test that sets the hostname or mounts something leaves the host alone; the
families that change the host's clock, swap, modules or reboot are not in
the default list. The figure that matters per family: how many of the tests
that pass natively also pass in the sandbox. Tests that run once per
filesystem are told to test tmpfs only (LTP_SINGLE_FS_TYPE), in both runs;
in the sandbox, the block device LTP acquires first is the Sentry's ramdisk
(LTP_DEV=/dev/ram0), which tests format with the real mkfs.ext2 and mount
(sentry/vfs/ext2); loop devices are the Sentry's too, and the Sentry's sysfs
is mounted at /sys first so that their attributes are the sandbox's (under
``do`` /sys is otherwise the host's, read through the Gofer).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEFAULT_LTP = Path(os.environ.get("PYVISOR_LTP_DIR", "/var/tmp/pyvisor-ltp"))
TIMEOUT_S = 120.0
# After the kill, how long the test's output may take to reach end of file.
KILL_GRACE_S = 10.0
# Race tests run for a declared time (timerfd_settime02: 150 s, two variants
# of 75 s) unless their loop count ends them first, which natively on an idle
# machine it does; under load, or in the sandbox where each loop costs more
# syscalls' worth of time, the declared time is what they take, beyond
# TIMEOUT_S.  Half of it, in both runs, keeps them inside.
RUNTIME_MUL = "0.5"
# Tests that run once per filesystem run on tmpfs only, natively too: the
# sandbox mounts no disk filesystem (ext2, xfs...), so comparing those
# would measure the host's filesystems, not the sandbox.
FS_TYPE = "tmpfs"

# The families the issues name (processes, files, credentials, IPC, memory,
# signals, time, events, data movement, administration), minus those that
# change the host itself when run natively (clocks, swap, modules, reboot).
FAMILIES = (
    # processes and waiting
    "clone", "clone3", "exit", "exit_group", "fork", "vfork", "execve", "execveat", "execl",
    "execlp", "execv", "execvp", "wait", "wait4", "waitid", "waitpid", "getpid", "getppid",
    "gettid", "kill", "tkill", "tgkill", "pidfd_open", "pidfd_send_signal", "pidfd_getfd",
    "prctl", "personality", "set_robust_list", "get_robust_list", "set_tid_address",
    # scheduling and accounting
    "sched_getparam", "sched_setparam", "sched_getscheduler", "sched_setscheduler",
    "sched_get_priority_max", "sched_get_priority_min", "sched_rr_get_interval",
    "sched_getaffinity", "sched_setaffinity", "sched_getattr", "sched_setattr", "sched_yield",
    "getpriority", "setpriority", "nice", "ioprio", "getcpu", "getrusage", "times",
    "getrlimit", "setrlimit", "sysinfo", "uname", "getrandom", "membarrier",
    "syslog",
    # credentials
    "getuid", "geteuid", "getgid", "getegid", "setuid", "setgid", "setreuid", "setregid",
    "setresuid", "setresgid", "getresuid", "getresgid", "setfsuid", "setfsgid", "getgroups",
    "setgroups", "capget", "capset",
    # IPC and memory: SysV IPC is ipc/<call>/ in LTP trees before 2026-06 and
    # one family per call after (LTP commit "syscalls: Flatten the directory
    # structure"); whichever layout the tree has, the same tests run
    "ipc", "msgctl", "msgget", "msgrcv", "msgsnd", "semctl", "semget", "semop", "shmat",
    "shmctl", "shmdt", "shmget",
    "futex", "cma", "mmap", "munmap", "mprotect", "mremap", "msync", "mincore", "mlock",
    "munlock", "mlockall", "munlockall", "mlock2", "madvise", "brk", "memfd_create",
    # signals and time
    "signal", "sigaction", "rt_sigaction", "sigprocmask", "rt_sigprocmask", "sigpending",
    "sigsuspend", "rt_sigsuspend", "sigtimedwait", "rt_sigtimedwait",
    "sigwait", "sigwaitinfo", "rt_sigqueueinfo", "sigaltstack", "pause", "alarm",
    "getitimer", "setitimer", "timer_create", "timer_delete", "timer_gettime",
    "timer_settime", "timer_getoverrun", "clock_gettime", "clock_getres", "clock_nanosleep",
    "nanosleep", "gettimeofday", "time",
    # event descriptors
    "eventfd", "eventfd2", "timerfd", "signalfd", "signalfd4", "inotify", "epoll_create",
    "epoll_create1", "epoll_ctl", "epoll_wait", "epoll_pwait", "poll", "ppoll", "select",
    # files and data movement
    "open", "openat", "openat2", "creat", "close", "close_range", "read", "write", "readv",
    "writev", "pread", "pwrite", "preadv", "pwritev", "preadv2", "pwritev2", "lseek", "dup",
    "dup2", "dup3", "pipe", "pipe2", "fcntl", "flock", "stat", "fstat", "lstat", "fstatat",
    "statx", "access", "faccessat", "faccessat2", "chmod", "fchmod", "fchmodat", "chown",
    "fchown", "lchown", "fchownat", "link", "linkat", "unlink", "unlinkat", "rename",
    "renameat", "renameat2", "mkdir", "mkdirat", "rmdir", "mknod", "mknodat", "symlink",
    "symlinkat", "readlink", "readlinkat", "truncate", "ftruncate", "fallocate", "getcwd",
    "chdir", "fchdir", "umask", "utime", "utimes", "utimensat", "futimesat", "getdents",
    "sync", "fsync", "fdatasync", "syncfs", "sync_file_range", "splice", "tee", "vmsplice",
    "sendfile", "copy_file_range", "readahead", "fadvise", "setxattr", "getxattr",
    "listxattr", "removexattr", "fsetxattr", "fgetxattr", "flistxattr", "fremovexattr",
    "lgetxattr", "llistxattr", "lremovexattr", "statfs", "fstatfs", "ioctl",
    "name_to_handle_at",
    # sockets
    "socket", "socketpair", "bind", "listen", "accept", "accept4", "connect", "getsockname",
    "getpeername", "getsockopt", "setsockopt", "send", "sendto", "sendmsg", "sendmmsg",
    "recv", "recvfrom", "recvmsg", "recvmmsg",
    # administration inside the sandbox
    "mount", "umount", "umount2", "pivot_root", "chroot", "unshare", "setns", "sethostname",
    "setdomainname", "gethostname", "getdomainname", "ptrace",
)


def _why(out: str) -> str:
    """What explains a failure: the first TFAIL/TBROK lines, or the last
    lines when there are none (a crash, a timeout)."""
    lines = out.strip().splitlines()
    bad = [ln for ln in lines if re.search(r"\b(TFAIL|TBROK)\b", ln)]
    return "\n".join(bad[:4] if bad else lines[-6:])


@dataclass
class Outcome:
    """One test binary's verdict in one runner, and why."""

    test: str
    family: str
    runner: str
    verdict: str  # pass / conf / fail
    status: int
    seconds: float
    tail: str  # why a failing test failed: its first TFAIL/TBROK lines

    @property
    def key(self) -> str:
        return f"{self.family}/{self.test}"


def parse_verdict(output: str, status: int) -> str:
    """pass / conf / fail from LTP's own result lines (see the module docstring)."""
    counts = {k: len(re.findall(rf"\b{k}\b", output)) for k in ("TPASS", "TFAIL", "TBROK",
                                                                 "TCONF")}
    summary = dict(re.findall(r"^(passed|failed|broken|skipped)\s+(\d+)\s*$", output, re.M))
    passed = counts["TPASS"] + int(summary.get("passed", 0))
    bad = counts["TFAIL"] + counts["TBROK"] + int(summary.get("failed", 0)) \
        + int(summary.get("broken", 0))
    if bad or status not in (0, 32):
        return "fail"
    if passed:
        return "pass"
    return "conf" if counts["TCONF"] or status == 32 or int(summary.get("skipped", 0)) else "fail"


# Tests of the listed families that change the host itself when run natively
# (leapsec01 steps the host's clock to a leap second and back): never run.
HOST_CHANGING = frozenset({"leapsec01"})


def tests_of(ltp: Path, family: str) -> list[Path]:
    """The built test binaries of one family (executable ELF files), but
    those in :data:`HOST_CHANGING`."""
    d = ltp / "testcases" / "kernel" / "syscalls" / family
    if not d.is_dir():
        return []
    out = []
    for p in sorted(d.rglob("*")):  # ipc/ keeps its tests one level down
        if p.name in HOST_CHANGING:
            continue
        if p.is_file() and os.access(p, os.X_OK) and p.suffix == "":
            with p.open("rb") as f:
                if f.read(4) == b"\x7fELF":
                    out.append(p)
    return out


def _command(runner: str, test: Path) -> list[str]:
    if runner == "native":
        return ["unshare", "--uts", "--ipc", "--mount", "--", str(test)]
    # Under `do` the first process is the sandbox's init (pid 1); LTP's
    # library takes a parent pid of 1 for "my main process died", so a shell
    # stays pid 1 and runs the test as its child (not exec'd).
    # Filesystem tests insist on a block device even when told to test tmpfs
    # only: the sandbox's ramdisk (sentry/vfs/ramdisk.py) is the one they get.
    # The Sentry's sysfs goes on /sys: loop and RAM disk attributes are read there.
    return [sys.executable, str(REPO / "runsc.py"), "do", "--cwd", str(test.parent),
            "-e", "LTP_TIMEOUT_MUL=4", "-e", f"LTP_RUNTIME_MUL={RUNTIME_MUL}",
            "-e", f"LTP_SINGLE_FS_TYPE={FS_TYPE}",
            "-e", "LTP_DEV=/dev/ram0", "--", "/bin/sh", "-c",
            f"mount -t sysfs sysfs /sys 2>/dev/null; mknod /dev/ram0 b 1 0 2>/dev/null; "
            f"{test}; exit $?"]


def run_one(runner: str, family: str, test: Path) -> Outcome:
    with tempfile.TemporaryDirectory(prefix="ltp-") as tmp:
        os.chmod(tmp, 0o777)
        env = {**os.environ, "TMPDIR": tmp, "LTPROOT": str(test.parents[4]),
               "LTP_TIMEOUT_MUL": "4", "LTP_RUNTIME_MUL": RUNTIME_MUL,
               "LTP_SINGLE_FS_TYPE": FS_TYPE}
        start = time.monotonic()
        proc = subprocess.Popen(_command(runner, test), cwd=test.parent, env=env,
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, start_new_session=True)
        try:
            raw, _ = proc.communicate(timeout=TIMEOUT_S)
            out = raw.decode(errors="replace")
            status = proc.returncode
        except subprocess.TimeoutExpired:
            # The whole session: a native test's children outlive `unshare`
            # otherwise (a race test left running used 10 GB).
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            try:
                raw, _ = proc.communicate(timeout=KILL_GRACE_S)
            except subprocess.TimeoutExpired:
                # A process that left the session (setsid) still holds the
                # pipe: stop reading rather than wait for it (fork13 kept a
                # run waiting 283 s past the limit).
                raw = b"(output held open by a process outside the test's session)"
                proc.stdout.close()  # type: ignore[union-attr]
                proc.wait(KILL_GRACE_S)
            out = raw.decode(errors="replace") + f"\n(timed out after {TIMEOUT_S:.0f} s)"
            status = -9
        took = time.monotonic() - start
    verdict = parse_verdict(out, status)
    tail = _why(out) if verdict == "fail" else ""
    return Outcome(test.name, family, runner, verdict, status, round(took, 2), tail)


def run(ltp: Path, families: list[str], jobs: int) -> list[Outcome]:
    work = [(r, fam, t) for fam in families for t in tests_of(ltp, fam)
            for r in ("native", "pyvisor")]
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        return list(pool.map(lambda w: run_one(*w), work))


def table(outcomes: list[Outcome]) -> str:
    """Per family: tests, native passes, pyvisor passes among those, ratio."""
    by = {(o.runner, o.key): o for o in outcomes}
    fams: dict[str, list[str]] = {}
    for o in outcomes:
        fams.setdefault(o.family, [])
        if o.key not in fams[o.family]:
            fams[o.family].append(o.key)
    rows = ["| family | tests | native pass | pyvisor pass | of native's |",
            "|---|---|---|---|---|"]
    total = [0, 0, 0, 0]
    for fam, keys in sorted(fams.items()):
        nat = [k for k in keys if by[("native", k)].verdict == "pass"]
        box = [k for k in keys if by[("pyvisor", k)].verdict == "pass"]
        both = [k for k in nat if by[("pyvisor", k)].verdict == "pass"]
        rows.append(f"| {fam} | {len(keys)} | {len(nat)} | {len(box)} | {len(both)}/{len(nat)} |")
        for i, n in enumerate((len(keys), len(nat), len(box), len(both))):
            total[i] += n
    pct = 100 * total[3] / total[1] if total[1] else 0.0
    rows.append(f"| **all** | {total[0]} | {total[1]} | {total[2]} | "
                f"{total[3]}/{total[1]} ({pct:.1f}%) |")
    return "\n".join(rows)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ltp", type=Path, default=DEFAULT_LTP, help="the built LTP tree")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--json", type=Path, help="write every outcome here")
    ap.add_argument("families", nargs="*", help="default: the project's list")
    args = ap.parse_args()
    root = args.ltp / "testcases" / "kernel" / "syscalls"
    if not root.is_dir():
        print(f"runner: no LTP build at {args.ltp} (python3 tests/ltp/build.py builds the "
              "LTP statically there; give another tree with --ltp or PYVISOR_LTP_DIR)",
              file=sys.stderr)
        return 2
    families = args.families or [f for f in FAMILIES if (root / f).is_dir()]
    outcomes = run(args.ltp, families, args.jobs)
    if args.json:
        args.json.write_text(json.dumps([asdict(o) for o in outcomes], indent=1))
    print(table(outcomes))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
