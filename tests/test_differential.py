"""Differential tests: each program runs natively and under ``runsc.py do``;
stdout, stderr and the exit status must match.

The native side is also checked against fixed expectations (``test_native_*``),
so a broken test program is caught on its own; ``test_sandbox_*`` need the
sandbox (marker ``sandbox``). The programs print only values that are the same
on every Linux host: booleans, lengths and errno names, never addresses, pids
or times. Where the sandbox legitimately differs from the host (pid 1, uname
strings) the test says so and checks the sandbox's answer explicitly.
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import Programs, Result, assert_no_process_left, run_native, run_sandbox, shell_status

VARIANTS = ("static", "static-pie")


@dataclass(frozen=True)
class Case:
    """One program run. ``stdout``/``stderr``: the exact native output, or None
    when only the differential comparison applies."""

    id: str
    program: str
    args: tuple[str, ...] = ()
    stdin: bytes | None = None
    env: tuple[tuple[str, str], ...] = ()
    returncode: int = 0
    stdout: str | None = None
    stderr: str | None = ""
    variants: tuple[str, ...] = VARIANTS


MMAP_PATTERNS = """\
private mmap ok aligned 1 zero 1
private rw 1
shared mmap ok zero 1
shared rw 1
odd length usable 1
fixed at 1 zero 1 neighbours kept 1
fixed_noreplace busy EEXIST
munmap middle ok
neighbours 1 1
fixed_noreplace hole ok at 1 zero 1
fixed_noreplace neighbour EEXIST
busy hint ok moved 1
munmap unaligned EINVAL
munmap zero length EINVAL
munmap twice ok ok
mmap zero length EINVAL
mmap no share type EINVAL
mmap fixed unaligned EINVAL
mmap bad fd EBADF
mmap huge ENOMEM
mprotect ro ok keeps 1
mprotect rw ok write 1
mprotect unaligned EINVAL
mprotect bad prot EINVAL
mprotect over hole ENOMEM
munmap over hole ok
prot_none then rw ok 1
mremap grow in place blocked ENOMEM
mremap grow ok keeps 1 tail zero 1
mremap blocker kept EEXIST
mremap shrink ok same 1 keeps 1
mremap fixed ok at 1 keeps 1
mremap source freed ok
mremap fixed without maymove EINVAL
mremap unaligned EINVAL
mremap bad flags EINVAL
madvise private ok zero 1
madvise shared ok keeps 1
madvise unaligned EINVAL
madvise bad advice EINVAL
madvise normal ok
many mappings 1
"""


BRK_GROWTH = """\
brk0 nonzero 1
brk0 stable 1
grow 256 steps 1
brk0 after growth 1
readback 1
grow 16 MiB 1
fresh memory zero 1
shrink returns new break 1
brk0 after shrink 1
regrow 1
regrown page zero 1
kept below break 1
too low unchanged 1
huge unchanged 1
kernel address unchanged 1
restore 1
sbrk0 is brk0 1
sbrk grow returns old break 1
sbrk grow usable 1
sbrk0 moved 1
sbrk shrink 1
sbrk0 back 1
libc brk huge -1 ENOMEM
libc brk back 1
"""


CLOCKS = """\
monotonic non-decreasing 1
boottime ok >= monotonic 1
realtime plausible 1
time() close 1
raw time close 1
gettimeofday close 1 usec range 1
time stores result 1
getres monotonic ok 0.000000001
getres realtime ok 0.000000001
getres null ok
gettime bad clock EINVAL
getres bad clock EINVAL
gettime bad pointer EFAULT
nanosleep nsec 1e9 EINVAL
nanosleep negative EINVAL
nanosleep bad pointer EFAULT
nanosleep 10ms ok slept enough 1
nanosleep zero ok
sched_yield ok
"""


GETRANDOM = """\
getrandom 64 64 ok
getrandom 64 again 64 ok
two draws differ 1
not all zero 1
getrandom nonblock 16 16 ok
getrandom 65536 65536 ok
getrandom 1 1 ok
getrandom 0 0 ok
getrandom bad flags -1 EINVAL
getrandom bad pointer -1 EFAULT
libc getrandom 32 32 ok
"""


ERRNO_CASES = """\
write bad fd 99                    -1 EBADF
write fd -1                        -1 EBADF
read bad fd 99                     -1 EBADF
write bad buffer                   -1 EFAULT
write to stdin                     -1 EBADF
read from stdout                   -1 EBADF
write zero bytes bad buffer        0 ok
stdout accmode                     1
fcntl F_GETFD stdout               0 ok
fcntl bad fd                       -1 EBADF
fcntl bad cmd                      -1 EINVAL
ioctl FIONBIO on                   0 ok
O_NONBLOCK set                     1
ioctl FIONBIO off                  0 ok
O_NONBLOCK clear                   1
ioctl FIONBIO bad pointer          -1 EFAULT
ioctl TCGETS on pipe               -1 ENOTTY
ioctl TIOCGWINSZ on pipe           -1 ENOTTY
ioctl bad fd                       -1 EBADF
mmap zero length                   -1 EINVAL
munmap unaligned                   -1 EINVAL
mprotect unaligned                 -1 EINVAL
rt_sigaction SIGKILL               -1 EINVAL
rt_sigaction SIGSTOP               -1 EINVAL
rt_sigaction signal 0              -1 EINVAL
rt_sigaction signal 65             -1 EINVAL
rt_sigaction sigsetsize 4          -1 EINVAL
rt_sigaction SIGUSR1 ign           0 ok
rt_sigaction SIGUSR1 read back     0 ok
SIGUSR1 handler is SIG_IGN         1
rt_sigaction bad pointer           -1 EFAULT
rt_sigprocmask bad how             -1 EINVAL
rt_sigprocmask sigsetsize 4        -1 EINVAL
rt_sigprocmask block               0 ok
rt_sigprocmask read                0 ok
SIGUSR2 blocked                    1
SIGKILL/SIGSTOP never blocked      1
sigaltstack too small              -1 ENOMEM
sigaltstack bad flags              -1 EINVAL
sigaltstack query                  0 ok
sigaltstack disabled               1
prlimit64 bad resource             -1 EINVAL
getrlimit bad resource             -1 EINVAL
prlimit64 RLIMIT_STACK             0 ok
stack soft <= hard                 1
prlimit64 soft > hard              -1 EINVAL
getrlimit bad pointer              -1 EFAULT
sched_getaffinity size 1           -1 EINVAL
sched_getaffinity size ok          1
futex wait wrong value             -1 EAGAIN
futex wait timeout                 -1 ETIMEDOUT
futex wake nobody                  0 ok
futex private wake                 0 ok
futex unaligned                    -1 EINVAL
futex bad op                       -1 ENOSYS
futex bad timeout                  -1 EINVAL
futex bad address                  -1 EFAULT
poll stdout+bad                    2 out 1 nval 1
poll negative fd                   0 ok
negative fd revents                0
poll nothing 10ms                  0 ok
poll huge nfds                     -1 EINVAL
poll bad pointer                   -1 EFAULT
uname bad pointer                  -1 EFAULT
getrandom bad flags                -1 EINVAL
clock_gettime bad clock            -1 EINVAL
arch_prctl bad code                -1 EINVAL
set_robust_list bad len            -1 EINVAL
"""

ARGS = ("one", "two words", "", "ünïcode ✓", "--", "-e", "x=y")
ARGS_ENV = """\
argc 8
argv[0] basename args_env.{variant}
argv[1] len 3 [one]
argv[2] len 9 [two words]
argv[3] len 0 []
argv[4] len 13 [ünïcode ✓]
argv[5] len 2 [--]
argv[6] len 2 [-e]
argv[7] len 3 [x=y]
argv null-terminated 1
envp after argv 1
PYVISOR_TEST a value with spaces = and ünïcode
"""

READV_INPUT = "".join(f"line {i:04d} " + "xyz" * (i % 7) + "\n" for i in range(120)).encode()
LETTERS = ".".join(chr(ord("A") + i % 26) for i in range(64))
WRITEV = f"""\
alpha beta gamma
writev returned 17 ok
{LETTERS}
writev 64 returned 128 ok
writev count 0 0 ok
writev count -1 -1 EINVAL
writev count IOV_MAX+1 -1 EINVAL
writev bad fd -1 EBADF
writev bad base -1 EFAULT
writev bad iov pointer -1 EFAULT
writev to stdin -1 EBADF
write zero 0 ok
readv end 0 ok
readv bytes {len(READV_INPUT)}
readv got some calls 1
readv data [{READV_INPUT.decode()}]
readv count -1 -1 EINVAL
readv from stdout -1 EBADF
"""

GROUPS = """\
setgroups ok
after set: 3: 10 20 30
count 3
too small EINVAL
negative EINVAL
nnp before 0
set nnp ok
child: 3: 10 20 30
child nnp 1
clear ok
after clear: 0:
"""

CASES = [
    Case("hello", "hello", stdout="hello, world\n"),
    Case("exit_code-0", "exit_code", ("0",), stdout="exiting with 0\n"),
    Case(
        "exit_code-3",
        "exit_code",
        ("3",),
        returncode=3,
        stdout="exiting with 3\n",
        variants=("static",),
    ),
    Case(
        "exit_code-255",
        "exit_code",
        ("255",),
        returncode=255,
        stdout="exiting with 255\n",
        variants=("static",),
    ),
    Case(
        "exit_code-256",
        "exit_code",
        ("256",),
        returncode=0,
        stdout="exiting with 256\n",
        variants=("static",),
    ),
    Case(
        "exit_code-42",
        "exit_code",
        ("42",),
        returncode=42,
        stdout="exiting with 42\n",
        variants=("static-pie",),
    ),
    Case(
        "args_env",
        "args_env",
        ARGS,
        env=(("PYVISOR_TEST", "a value with spaces = and ünïcode"),),
        stdout=ARGS_ENV,
    ),
    Case(
        "args_env-unset",
        "args_env",
        variants=("static",),
        stdout="argc 1\nargv[0] basename args_env.static\nargv null-terminated 1\n"
        "envp after argv 1\nPYVISOR_TEST (unset)\n",
    ),
    Case("arith", "arith", stdout=None),
    Case("malloc_heavy", "malloc_heavy", stdout="ops 3000\ncorrupt 0\nchecksum c7adf4301483bdc0\n"),
    Case("mmap_patterns", "mmap_patterns", stdout=MMAP_PATTERNS),
    Case("brk_growth", "brk_growth", stdout=BRK_GROWTH),
    Case("writev", "writev", stdin=READV_INPUT, stdout=WRITEV),
    Case(
        "writev-empty-stdin",
        "writev",
        stdin=b"",
        variants=("static",),
        stdout=WRITEV.replace(f"readv bytes {len(READV_INPUT)}", "readv bytes 0")
        .replace("readv got some calls 1", "readv got some calls 0")
        .replace(f"readv data [{READV_INPUT.decode()}]", "readv data []"),
    ),
    Case("clocks", "clocks", stdout=CLOCKS),
    Case("getrandom", "getrandom", stdout=GETRANDOM),
    Case("groups", "groups", stdout=GROUPS),
    # stdin is a pipe (read-only) so that "write to stdin" is EBADF everywhere.
    Case(
        "errno_cases",
        "errno_cases",
        stdin=b"",
        stdout=ERRNO_CASES,
        stderr="errno_cases: stderr works\n",
    ),
]

PARAMS = [
    pytest.param(case, variant, id=f"{case.id}-{variant}")
    for case in CASES
    for variant in case.variants
]


def _run_case(runner, programs: Programs, case: Case, variant: str) -> Result:
    exe = programs.path(case.program, variant)
    return runner([exe, *case.args], stdin=case.stdin, env=dict(case.env))


@pytest.mark.parametrize(("case", "variant"), PARAMS)
def test_native(programs: Programs, case: Case, variant: str) -> None:
    res = _run_case(run_native, programs, case, variant)
    assert res.returncode == case.returncode, res.describe()
    if case.stdout is not None:
        assert res.out == case.stdout.replace("{variant}", variant)
    if case.stderr is not None:
        assert res.err == case.stderr


@pytest.mark.sandbox
@pytest.mark.parametrize(("case", "variant"), PARAMS)
def test_sandbox_matches_native(programs: Programs, case: Case, variant: str) -> None:
    nat = _run_case(run_native, programs, case, variant)
    box = _run_case(run_sandbox, programs, case, variant)
    assert "Traceback" not in box.err, box.describe()
    assert box.out == nat.out, box.describe()
    assert box.err == nat.err, box.describe()
    assert box.returncode == nat.returncode, box.describe()


def test_native_arith_sanity(programs: Programs) -> None:
    out = run_native([programs.path("arith")]).out
    assert "div -2 mod -1\n" in out
    assert "wrap 1\n" in out
    assert "sqrt 1.414213562373\n" in out
    assert "div0 inf -inf nan 1\n" in out


# --- killed by a signal ---------------------------------------------------


@pytest.mark.parametrize("variant", VARIANTS)
def test_native_segv(programs: Programs, variant: str) -> None:
    res = run_native([programs.path("segv", variant)])
    assert res.returncode == -signal.SIGSEGV, res.describe()
    assert res.out == "before\n"


@pytest.mark.sandbox
@pytest.mark.parametrize("variant", VARIANTS)
def test_sandbox_segv(programs: Programs, variant: str) -> None:
    exe = programs.path("segv", variant)
    nat = run_native([exe])
    box = run_sandbox([exe])
    assert box.returncode == shell_status(nat.returncode) == 128 + signal.SIGSEGV, box.describe()
    assert box.out == nat.out == "before\n", box.describe()
    assert "Traceback" not in box.err, box.describe()
    assert_no_process_left(str(exe))


# --- identity syscalls: the sandbox is pid 1 -------------------------------


def _raw_syscalls_expected(pid: int, ppid: int) -> str:
    return (
        f"getpid {pid}\ngetppid {ppid}\ngettid is pid 1\nlibc getpid agrees 1\n"
        f"getuid {os.getuid()}\ngeteuid {os.geteuid()}\n"
        f"getgid {os.getgid()}\ngetegid {os.getegid()}\n"
        "syscall 1000 -1 ENOSYS\n"
    )


@pytest.mark.parametrize("variant", VARIANTS)
def test_native_raw_syscalls(programs: Programs, variant: str) -> None:
    res = run_native([programs.path("raw_syscalls", variant)])
    assert res.returncode == 0, res.describe()
    assert res.out == _raw_syscalls_expected(res.pid, os.getpid())


@pytest.mark.sandbox
@pytest.mark.parametrize("variant", VARIANTS)
def test_sandbox_raw_syscalls(programs: Programs, variant: str) -> None:
    res = run_sandbox([programs.path("raw_syscalls", variant)])
    assert res.returncode == 0, res.describe()
    assert res.out == _raw_syscalls_expected(1, 0), res.describe()


# --- uname: the sandbox reports its own kernel, compare the shape ----------

UNAME_COMPARED = ("uname", "sysname", "machine", "shape")


def _uname_lines(res: Result) -> list[str]:
    return [line for line in res.out.splitlines() if line.split(" ", 1)[0] in UNAME_COMPARED]


@pytest.mark.parametrize("variant", VARIANTS)
def test_native_uname(programs: Programs, variant: str) -> None:
    res = run_native([programs.path("uname", variant)])
    assert res.returncode == 0, res.describe()
    assert _uname_lines(res) == [
        "uname 0",
        "sysname Linux",
        "machine x86_64",
        "shape release 1",
        "shape terminated 1",
        "shape nodename nonempty 1",
        "shape bad pointer -1 EFAULT",
    ]
    assert len(res.out.splitlines()) == 11


@pytest.mark.sandbox
@pytest.mark.parametrize("variant", VARIANTS)
def test_sandbox_uname(programs: Programs, variant: str) -> None:
    exe = programs.path("uname", variant)
    nat = run_native([exe])
    box = run_sandbox([exe])
    assert box.returncode == 0, box.describe()
    assert _uname_lines(box) == _uname_lines(nat), box.describe()
    assert [line.split(" ", 1)[0] for line in box.out.splitlines()] == [
        line.split(" ", 1)[0] for line in nat.out.splitlines()
    ], box.describe()


# --- runsc flags must not disturb the program's stdio ----------------------


@pytest.mark.sandbox
def test_sandbox_strace_keeps_stdout(programs: Programs) -> None:
    exe = programs.path("hello")
    res = run_sandbox([exe], extra_flags=["--strace"])
    assert res.returncode == 0, res.describe()
    assert res.out == "hello, world\n", res.describe()
    assert "Traceback" not in res.err, res.describe()


@pytest.mark.sandbox
def test_sandbox_debug_log(programs: Programs, tmp_path: Path) -> None:
    exe = programs.path("exit_code")
    log = tmp_path / "debug.log"
    res = run_sandbox([exe, "7"], extra_flags=["--debug", "--debug-log", str(log)])
    assert res.returncode == 7, res.describe()
    assert res.out == "exiting with 7\n", res.describe()
    assert log.is_file() and log.stat().st_size > 0, "debug log not written"


# --- busybox (static) --------------------------------------------------------

BUSYBOX_CASES = [
    pytest.param(("echo", "hello"), "hello\n", "", 0, id="echo"),
    pytest.param(("true",), "", "", 0, id="true"),
    pytest.param(("false",), "", "", 1, id="false"),
    pytest.param(("expr", "6", "*", "7"), "42\n", "", 0, id="expr"),
    pytest.param(("expr", "1", "/", "0"), "", "expr: division by zero\n", 2, id="expr-div0"),
    pytest.param(("seq", "1", "5"), "1\n2\n3\n4\n5\n", "", 0, id="seq"),
    pytest.param(
        ("printf", r"%s-%d|%x|%o|%5.2f|\n", "abc", "42", "255", "8", "3.14159"),
        "abc-42|ff|10| 3.14|\n",
        "",
        0,
        id="printf",
    ),
]


@pytest.mark.parametrize(("args", "stdout", "stderr", "status"), BUSYBOX_CASES)
def test_native_busybox(busybox: Path, args, stdout: str, stderr: str, status: int) -> None:
    res = run_native([busybox, *args])
    assert (res.returncode, res.out, res.err) == (status, stdout, stderr)


@pytest.mark.sandbox
@pytest.mark.parametrize(("args", "stdout", "stderr", "status"), BUSYBOX_CASES)
def test_sandbox_busybox(busybox: Path, args, stdout: str, stderr: str, status: int) -> None:
    res = run_sandbox([busybox, *args])
    assert (res.returncode, res.out, res.err) == (status, stdout, stderr), res.describe()


def test_native_busybox_uname(busybox: Path) -> None:
    res = run_native([busybox, "uname", "-a"])
    assert res.returncode == 0, res.describe()
    assert res.out.startswith("Linux ") and res.out.count("\n") == 1


@pytest.mark.sandbox
def test_sandbox_busybox_uname(busybox: Path) -> None:
    res = run_sandbox([busybox, "uname", "-a"])
    assert res.returncode == 0, res.describe()
    assert res.out.startswith("Linux "), res.describe()
    assert res.out.count("\n") == 1 and len(res.out.split()) >= 4, res.describe()
    assert res.err == "", res.describe()
