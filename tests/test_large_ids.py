"""Ids, sizes and times at the edges of their Linux types (issue 19).

A uid of 2^31 once killed the whole sandbox: chown read its id argument as a
signed int, stored -2^31, and the next stat could not pack it. Linux's uid_t
and gid_t are unsigned 32-bit: every id up to 2^32-2 is valid, (u32)-1 means
"leave unchanged" (chown) and is refused where it would be stored (setgroups:
EINVAL), and only the register's low 32 bits count.

Two kinds of test:

* properties (hypothesis), no sandbox: every field the Sentry packs for the
  application (struct stat, struct statx, siginfo, the wait status) takes the
  full range of the kernel type it comes from and reads back unchanged;
* differential runs of tests/programs/large_ids.c and of ``ls -ln`` (busybox
  and coreutils), natively and in the sandbox:
  - ids and sizes and times in the sandbox's /tmp (the Sentry's in-memory
    overlay) against a native tmpfs (/dev/shm), whose limits it follows
    (files up to 2^63-1 bytes, times over all of s64);
  - ids and times through the Gofer, on a bind mount of a host directory,
    against the same host filesystem natively (its limits then apply to both);
  - a host file older than 1970 stat'ed through the Gofer (9P carries times
    as u64 read as two's complement).

Not compared: lseek past a host filesystem's s_maxbytes on a bind mount (ext4:
16 TiB; the Sentry does not know the host's limit and allows up to 2^63-1).
"""

from __future__ import annotations

import os
import shutil
import struct
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import Programs, Result, run_native, run_sandbox, shell_status
from hypothesis import given, settings
from hypothesis import strategies as st

from sentry.kernel.signals import SIGCHLD, SigInfo
from sentry.kernel.task_exits import exit_status, signal_status
from sentry.vfs.file import Stat
from syscalls.abi import STAT, STATX_DEVS, STATX_HEAD, STATX_TS, pack_stat, pack_statx
from syscalls.process import child_siginfo

U16, U32, U64 = 2**16 - 1, 2**32 - 1, 2**64 - 1
S32 = (-(2**31), 2**31 - 1)
S64 = (-(2**63), 2**63 - 1)
PROPS = settings(max_examples=300, deadline=None)

# --- properties: the packers take the full range of the kernel's types ------------

# The kernel's struct kstat types: dev_t as the user sees it (u64), ino u64, umode_t,
# nlink unsigned int, kuid/kgid u32, loff_t size (never negative), blksize u32,
# blocks u64, and timespec64 (s64 seconds, nanoseconds below 10**9).
times_ns = st.builds(lambda s, n: s * 10**9 + n, st.integers(*S64), st.integers(0, 10**9 - 1))
stats = st.builds(
    Stat,
    dev=st.integers(0, U64), ino=st.integers(0, U64), mode=st.integers(0, U16),
    nlink=st.integers(0, U32), uid=st.integers(0, U32), gid=st.integers(0, U32),
    rdev=st.integers(0, U64), size=st.integers(0, S64[1]), blksize=st.integers(0, U32),
    blocks=st.integers(0, U64), atime_ns=times_ns, mtime_ns=times_ns, ctime_ns=times_ns,
)


def _makedev(major: int, minor: int) -> int:
    """glibc's makedev, which os.makedev cannot do for a minor of 2^31 or more."""
    return ((major & 0xFFF) << 8 | (major & ~0xFFF) << 32 | (minor & 0xFF)
            | (minor & ~0xFF) << 12)


def _ns(sec: int, nsec: int) -> int:
    assert 0 <= nsec < 10**9
    return sec * 10**9 + nsec


@PROPS
@given(s=stats)
def test_struct_stat_round_trips(s: Stat) -> None:
    raw = pack_stat(s)
    assert len(raw) == 144
    (dev, ino, nlink, mode, uid, gid, _pad, rdev, size, blksize, blocks,
     a, an, m, mn, c, cn) = STAT.unpack(raw)
    assert (dev, ino, nlink, mode, uid, gid, rdev, size, blksize, blocks) == (
        s.dev, s.ino, s.nlink, s.mode, s.uid, s.gid, s.rdev, s.size, s.blksize, s.blocks)
    assert (_ns(a, an), _ns(m, mn), _ns(c, cn)) == (s.atime_ns, s.mtime_ns, s.ctime_ns)


@PROPS
@given(s=stats)
def test_struct_statx_round_trips(s: Stat) -> None:
    raw = pack_statx(s)
    assert len(raw) == 256
    (mask, blksize, _attrs, nlink, uid, gid, mode, _spare, ino, size, blocks,
     _amask) = STATX_HEAD.unpack_from(raw)
    assert mask & 0x7FF == 0x7FF
    assert (blksize, nlink, uid, gid, mode, ino, size, blocks) == (
        s.blksize, s.nlink, s.uid, s.gid, s.mode, s.ino, s.size, s.blocks)
    off = STATX_HEAD.size
    got = []
    for _ in range(4):  # atime, btime, ctime, mtime
        sec, nsec, _res = STATX_TS.unpack_from(raw, off)
        got.append(_ns(sec, nsec))
        off += STATX_TS.size
    assert (got[0], got[2], got[3]) == (s.atime_ns, s.ctime_ns, s.mtime_ns)
    rmaj, rmin, dmaj, dmin = STATX_DEVS.unpack_from(raw, off)
    assert (_makedev(rmaj, rmin), _makedev(dmaj, dmin)) == (s.rdev, s.dev)


def _unpack_siginfo(raw: bytes) -> tuple[int, ...]:
    assert len(raw) == 128
    return struct.unpack_from("<iii4xiI", raw)  # signo, errno, code, (pad), pid, uid


@PROPS
@given(signo=st.integers(1, 64), code=st.integers(*S32), pid=st.integers(*S32),
       uid=st.integers(0, U32), value=st.integers(0, U64), status=st.integers(*S32))
def test_siginfo_round_trips(signo: int, code: int, pid: int, uid: int, value: int,
                             status: int) -> None:
    """kill/sigqueue's fields: si_pid (pid_t), si_uid (uid_t), si_value (a
    pointer-sized union) or, for SIGCHLD, si_status (int)."""
    info = SigInfo(signo, code=code, pid=pid, uid=uid, value=value, status=status)
    raw = info.pack()
    assert _unpack_siginfo(raw) == (signo, 0, code, pid, uid)
    if signo == SIGCHLD:
        assert struct.unpack_from("<i", raw, 24)[0] == status
    else:
        assert struct.unpack_from("<Q", raw, 24)[0] == value


@PROPS
@given(signo=st.integers(1, 64), code=st.integers(*S32), addr=st.integers(1, U64))
def test_fault_siginfo_round_trips(signo: int, code: int, addr: int) -> None:
    raw = SigInfo(signo, code=code, addr=addr).pack()
    assert struct.unpack_from("<iii4xQ", raw) == (signo, 0, code, addr)


@PROPS
@given(code=st.integers(0, U64), pid=st.integers(1, S32[1]), uid=st.integers(0, U32))
def test_exit_status_and_waitid_info(code: int, pid: int, uid: int) -> None:
    """exit_group's argument is an int in a u64 register: the status keeps its
    low byte, for wait4's int and for waitid's siginfo."""
    status = exit_status(code)
    (word,) = struct.unpack("<i", struct.pack("<i", status))
    assert os.WIFEXITED(word) and os.WEXITSTATUS(word) == code & 0xFF
    raw = child_siginfo(pid, uid, status).pack()
    assert _unpack_siginfo(raw) == (SIGCHLD, 0, 1, pid, uid)  # CLD_EXITED
    assert struct.unpack_from("<i", raw, 24)[0] == code & 0xFF


@PROPS
@given(signo=st.integers(1, 64), pid=st.integers(1, S32[1]), uid=st.integers(0, U32))
def test_signal_stop_continue_status_and_waitid_info(signo: int, pid: int, uid: int) -> None:
    killed = signal_status(signo)
    assert os.WIFSIGNALED(killed) and os.WTERMSIG(killed) == signo
    code, sig = _unpack_siginfo(child_siginfo(pid, uid, killed).pack())[2], signo
    assert code in (2, 3)  # CLD_KILLED, CLD_DUMPED
    stopped = (signo << 8) | 0x7F
    assert os.WIFSTOPPED(stopped) and os.WSTOPSIG(stopped) == sig
    raw = child_siginfo(pid, uid, stopped).pack()
    assert _unpack_siginfo(raw)[2] == 5 and struct.unpack_from("<i", raw, 24)[0] == signo
    raw = child_siginfo(pid, uid, 0xFFFF).pack()
    assert _unpack_siginfo(raw)[2:] == (6, pid, uid)


# --- differential runs ----------------------------------------------------------

def check_same(nat: Result, box: Result) -> None:
    assert "Traceback" not in box.err and "internal error" not in box.err, box.describe()
    assert box.out == nat.out, f"native:\n{nat.describe()}\nsandbox:\n{box.describe()}"
    assert box.returncode == shell_status(nat.returncode), (
        f"native:\n{nat.describe()}\nsandbox:\n{box.describe()}")


@pytest.fixture
def host_dir() -> Iterator[Path]:
    """A fresh directory under /tmp on the host's own filesystem."""
    path = Path(tempfile.mkdtemp(prefix="pyvisor-ids-", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def shm_dir() -> Iterator[Path]:
    """A fresh directory on the host's tmpfs: the limits of the sandbox's /tmp."""
    if not Path("/dev/shm").is_dir():
        pytest.skip("no /dev/shm tmpfs on this host to compare the in-memory /tmp with")
    path = Path(tempfile.mkdtemp(prefix="pyvisor-ids-", dir="/dev/shm"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


# Runs the program in a fresh directory, then lists it with both ls: the ids of
# every file and symlink, numerically (names in $9: symlink targets name the dir).
LS_SCRIPT = r"""
set -e
D=$(mktemp -d "$1/pyvisor-ids.XXXXXX")
"$2" "$3" "$D"
cd "$D"
echo "busybox ls -ln:"
/bin/busybox ls -ln | /bin/busybox awk '$1 != "total" {print $1, $2, $3, $4, $5, $9}'
echo "coreutils ls -ln:"
LC_ALL=C /bin/ls -ln | /bin/busybox awk '$1 != "total" {print $1, $2, $3, $4, $5, $9}'
cd /
rm -rf "$D"
"""


def _script(parent: str, prog: Path, mode: str) -> list[str]:
    return ["/bin/busybox", "sh", "-c", LS_SCRIPT, "sh", parent, str(prog), mode]


@pytest.mark.sandbox
@pytest.mark.parametrize("variant", ["static", "static-pie"])
def test_chown_large_ids_then_stat_statx_ls(programs: Programs, variant: str,
                                            host_dir: Path) -> None:
    """chown, fchown, lchown, fchownat (and raw syscalls with 64-bit registers)
    to 2^31, 2^32-2 and (u32)-1; setgroups with large ids and with -1."""
    prog = programs.path("large_ids", variant)
    nat = run_native(_script(str(host_dir), prog, "ids"))
    box = run_sandbox(_script("/tmp", prog, "ids"))
    check_same(nat, box)
    assert "uid=4294967294 gid=4294967294" in box.out
    assert "-rw-r--r-- 1 4294967294 2147483648 0 f-chown" in box.out  # by ls -ln
    assert "setgroups(5, -1) = -1 EINVAL" in box.out


@pytest.mark.sandbox
@pytest.mark.parametrize("mode", ["sizes", "times"])
def test_sizes_and_times_in_memory_like_tmpfs(programs: Programs, mode: str,
                                              shm_dir: Path) -> None:
    """Files of 2^62 and 2^63-1 bytes, writes and seeks at the end of loff_t;
    times before 1970, far ahead, at the s64 limits (nanoseconds dropped there,
    as Linux's timestamp_truncate does), bad nanoseconds."""
    prog = programs.path("large_ids")
    nat = run_native(_script(str(shm_dir), prog, mode))
    box = run_sandbox(_script("/tmp", prog, mode))
    check_same(nat, box)


@pytest.mark.sandbox
@pytest.mark.parametrize("mode", ["ids", "times"])
def test_ids_and_times_through_the_gofer(programs: Programs, mode: str, tmp_path: Path) -> None:
    """The same calls on a bind mount: Tsetattr carries the ids and the times
    (negative seconds too) to the host, Rgetattr brings them back."""
    prog = programs.path("large_ids")
    native_dir = Path(tempfile.mkdtemp(prefix="pyvisor-ids-n-", dir="/tmp"))
    bound = Path(tempfile.mkdtemp(prefix="pyvisor-ids-b-", dir="/tmp"))
    try:
        nat = run_native([prog, mode, native_dir])
        box = run_sandbox([prog, mode, bound], extra_flags=["-v", f"{bound}:{bound}"])
        check_same(nat, box)
    finally:
        shutil.rmtree(native_dir, ignore_errors=True)
        shutil.rmtree(bound, ignore_errors=True)


@pytest.mark.sandbox
def test_host_file_older_than_1970(programs: Programs, host_dir: Path) -> None:
    """A file in the image with a time before the epoch (stat through 9P)."""
    old = host_dir / "old"
    old.write_bytes(b"12345")
    os.utime(old, ns=(-315_619_200 * 10**9 + 5, -1 * 10**9 + 999_999_999))
    prog = programs.path("large_ids")
    nat = run_native([prog, "stat", old])
    box = run_sandbox([prog, "stat", old])
    check_same(nat, box)
    assert "mtime=-1.999999999" in box.out


@pytest.mark.sandbox
def test_timers_at_their_limits(programs: Programs) -> None:
    """setitimer/timer_settime with LLONG_MAX seconds saturate at KTIME_MAX and
    read back exactly (getitimer once killed the sandbox packing them, and the
    host timer thread died on a too-long wait); bad times are EINVAL."""
    prog = programs.path("timer_limits")
    nat = run_native([prog])
    box = run_sandbox([prog])
    check_same(nat, box)
    assert "interval=9223372036.854775807" in box.out


# preadv/pwritev (CPython's os.preadv/os.pwritev go through preadv2/pwritev2,
# glibc falls back to the older calls), offsets up to the end of loff_t, and
# posix_fadvise's errors.
VECTORED_SCRIPT = r"""
import os, sys
p = os.path.join(sys.argv[1], "pyvisor-vectored")
fd = os.open(p, os.O_RDWR | os.O_CREAT | os.O_TRUNC)
print(os.pwritev(fd, [b"abc", b"", b"defgh"], 2))
b1, b2 = bytearray(3), bytearray(10)
n = os.preadv(fd, [b1, b2], 0)
print(n, bytes(b1), bytes(b2[:n - 3]))
for off in (-1, (1 << 63) - 2, -2):
    try:
        print(os.pwritev(fd, [b"xyz"], off))
    except OSError as e:
        print("pwritev", off, e.errno)
    try:
        print(os.preadv(fd, [bytearray(4)], off))
    except OSError as e:
        print("preadv", off, e.errno)
os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_WILLNEED)
for f, advice in ((fd, 99), (-42, 3), (os.pipe()[0], 3)):
    try:
        os.posix_fadvise(f, 0, 0, advice)
    except OSError as e:
        print("fadvise", e.errno)
os.unlink(p)
"""


@pytest.mark.sandbox
def test_vectored_io_at_offsets(shm_dir: Path) -> None:
    python = shutil.which("python3", path="/usr/bin:/bin")
    if python is None:
        pytest.skip("no python3 in /usr/bin or /bin to run in the sandbox")
    nat = run_native([python, "-c", VECTORED_SCRIPT, shm_dir])
    box = run_sandbox([python, "-c", VECTORED_SCRIPT, "/tmp"])
    check_same(nat, box)


# chown drops set-user-ID (and set-group-ID with group execute) from anything
# but a directory, for root too, and even when both ids are -1.
SUID_SCRIPT = r"""
import os, sys
d = sys.argv[1]
for mode in (0o4755, 0o2755, 0o2745, 0o6711):
    p = os.path.join(d, "pyvisor-s%o" % mode)
    open(p, "w").close()
    os.chmod(p, mode)
    os.chown(p, -1, -1)
    a = os.stat(p).st_mode & 0o7777
    os.chmod(p, mode)
    os.chown(p, 2**31, 2**32 - 2)
    b = os.stat(p).st_mode & 0o7777
    print("%o -> %o %o" % (mode, a, b))
    os.unlink(p)
p = os.path.join(d, "pyvisor-dir")
os.mkdir(p)
os.chmod(p, 0o6755)
os.chown(p, 7, 7)
print("dir %o" % (os.stat(p).st_mode & 0o7777))
os.rmdir(p)
"""


@pytest.mark.sandbox
def test_chown_drops_setid_bits(shm_dir: Path) -> None:
    python = shutil.which("python3", path="/usr/bin:/bin")
    if python is None:
        pytest.skip("no python3 in /usr/bin or /bin to run in the sandbox")
    nat = run_native([python, "-c", SUID_SCRIPT, shm_dir])
    box = run_sandbox([python, "-c", SUID_SCRIPT, "/tmp"])
    check_same(nat, box)
    assert "4755 -> 755 755" in box.out


@pytest.mark.sandbox
def test_setid_family_with_large_ids(programs: Programs) -> None:
    """setres[ug]id, setre[ug]id, set[ug]id with 2^31, 2^32-2, (u32)-1 and 64-bit
    registers, privileged and not; getres[ug]id and /proc/self/status show them."""
    prog = programs.path("setid_large")
    nat = run_native([prog])
    box = run_sandbox([prog])
    check_same(nat, box)
    assert "Uid:\t2147483648\t4294967294\t0\t4294967294" in box.out


@pytest.mark.sandbox
def test_unprivileged_chown_rules(programs: Programs, host_dir: Path) -> None:
    """After setresuid to 2^31+1: the owner may keep its uid and move the group
    to its egid or a supplementary group; every other chown is EPERM."""
    prog = programs.path("setid_large")
    host_dir.chmod(0o755)  # the unprivileged part must reach its files
    nat = run_native(["/bin/sh", "-c", 'D=$(mktemp -d "$1/x.XXXXXX") && "$2" "$D"', "sh",
                      host_dir, prog])
    box = run_sandbox(["/bin/sh", "-c", 'D=$(mktemp -d "$1/x.XXXXXX") && "$2" "$D"', "sh",
                       "/tmp", prog])
    check_same(nat, box)
    assert "chown(mine, 2^31+3, -1) = -1 Operation not permitted" in box.out
