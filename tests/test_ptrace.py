"""ptrace within the sandbox, served by the Sentry (sentry/kernel/ptrace.py).

Differential: tests/programs/ptrace_tracer.c traces its own children (TRACEME
and SIGSTOP, PEEK/POKE, GETREGS/SETREGS changing a syscall's result,
PTRACE_SYSCALL counting, TRACEFORK and TRACEEXEC events, siginfo, single
steps, bad requests) and prints what it sees, natively and in the sandbox.
Then the real tools: the host's strace and gdb run inside the sandbox on a
program there, with no syscall left unimplemented in a --debug run.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from helpers import PROGRAMS_DIR, Programs, run_native, run_sandbox

STRACE = shutil.which("strace")
GDB = shutil.which("gdb")
UNSUPPORTED = "unsupported syscall"


@pytest.fixture(scope="module")
def build(programs: Programs, gcc: str, tmp_path_factory: pytest.TempPathFactory):
    """``build(name, variant)``: the conftest's static builds, or a dynamic one
    made here (conftest builds static variants only)."""
    out_dir = tmp_path_factory.mktemp("ptrace_dyn")

    def get(name: str, variant: str) -> Path:
        if variant != "dynamic":
            return programs.path(name, variant)
        out = out_dir / name
        if not out.exists():
            proc = subprocess.run([gcc, "-O1", "-g0", "-o", str(out),
                                   str(PROGRAMS_DIR / f"{name}.c")],
                                  capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                pytest.fail(f"compiling {name}.c (dynamic) failed:\n{proc.stderr}")
        return out
    return get


@pytest.mark.parametrize("variant", ["static", "dynamic"])
def test_tracer_program_matches_native(build, variant: str) -> None:
    prog = build("ptrace_tracer", variant)
    nat = run_native([prog, "all"])
    box = run_sandbox([prog, "all"])
    assert nat.returncode == 0, nat.describe()
    assert "Traceback" not in box.err, box.describe()
    assert box.out == nat.out, box.describe()
    assert box.returncode == 0, box.describe()


def test_host_processes_are_out_of_reach(build) -> None:
    """A host pid (this test's own) names nothing inside the sandbox: attach,
    seize and peek are ESRCH and /proc/PID/mem does not exist."""
    box = run_sandbox([build("ptrace_tracer", "static"), "attach_pid", str(os.getpid())])
    assert box.out == ("attach: -1 errno 3\nseize: -1 errno 3\npeek: -1 errno 3\n"
                       "open mem: -1 errno 2\n"), box.describe()


def test_hostile_requests_never_break_the_sentry(build) -> None:
    """Every request number with bad pointers and values at a stopped tracee:
    each call returns (an errno or a value) and the sandbox goes on."""
    box = run_sandbox([build("ptrace_tracer", "static"), "fuzz"])
    assert "Traceback" not in box.err and "Sentry" not in box.err, box.describe()
    assert box.out == "fuzz calls 4263\nend: killed sig=9\n", box.describe()
    assert box.returncode == 0, box.describe()


@pytest.mark.skipif(STRACE is None, reason="strace is not installed (apt-get install strace)")
def test_strace_follows_forks_inside_the_sandbox() -> None:
    box = run_sandbox([STRACE, "-f", "/bin/sh", "-c", "/bin/true; echo done"],
                      extra_flags=["--debug"])
    assert box.returncode == 0, box.describe()
    assert "Traceback" not in box.err, box.describe()
    assert UNSUPPORTED not in box.err, box.describe()
    assert box.out == "done\n", box.describe()
    err = box.err
    assert 'execve("/bin/sh"' in err, box.describe()
    assert 'execve("/bin/true"' in err, box.describe()  # the child, followed (-f)
    assert "exit_group(0)" in err and "+++ exited with 0 +++" in err, box.describe()
    assert "wait4(" in err, box.describe()


@pytest.mark.skipif(STRACE is None, reason="strace is not installed (apt-get install strace)")
def test_strace_true_with_no_enosys() -> None:
    box = run_sandbox([STRACE, "-f", "/bin/true"], extra_flags=["--debug"])
    assert box.returncode == 0, box.describe()
    assert UNSUPPORTED not in box.err, box.describe()
    assert 'execve("/bin/true", ["/bin/true"]' in box.err, box.describe()
    assert "+++ exited with 0 +++" in box.err, box.describe()


@pytest.mark.skipif(GDB is None, reason="gdb is not installed (apt-get install gdb)")
@pytest.mark.parametrize("variant", ["static", "dynamic"])
def test_gdb_backtrace_of_a_crash(build, variant: str) -> None:
    prog = build("ptrace_crasher", variant)
    argv = [GDB, "-nx", "-batch", "-ex", "run", "-ex", "bt", prog]
    nat = run_native(argv)
    box = run_sandbox(argv, extra_flags=["--debug"])
    assert "SIGSEGV" in nat.out, nat.describe()
    for line in ("system: 4\n", "fork child: 3\n"):  # gdb detached vfork and fork children
        assert line in nat.out and line in box.out, box.describe()
    assert UNSUPPORTED not in box.err, box.describe()
    assert "Program received signal SIGSEGV" in box.out, box.describe()

    def names(out: str) -> list[str]:
        return [w for ln in out.splitlines() if ln.startswith("#")
                for w in ln.split() if w in ("crash_here", "call_it", "main")]
    assert names(box.out) == names(nat.out) == ["crash_here", "call_it", "main"], box.describe()


@pytest.mark.skipif(GDB is None, reason="gdb is not installed (apt-get install gdb)")
def test_gdb_breakpoint_and_step(build) -> None:
    """int3 poked into the text (a private copy), the SIGTRAP, single steps,
    AVX registers (NT_X86_XSTATE)."""
    prog = build("ptrace_crasher", "static-pie")
    argv = [GDB, "-nx", "-batch", "-ex", "break call_it", "-ex", "run",
            "-ex", "p $ymm3.v4_double", "-ex", "stepi", "-ex", "next", "-ex", "info frame",
            "-ex", "continue", prog]
    nat = run_native(argv)
    box = run_sandbox(argv)
    def pick(out: str) -> list[str]:  # the events, without load addresses
        return [re.sub(r"0x[0-9a-f]+", "ADDR", ln) for ln in out.splitlines()
                if ln.startswith(("Breakpoint 1,", "Program received", "about", "system:",
                                  "fork child:", "$1 = "))]

    assert pick(box.out) == pick(nat.out), box.describe()
    assert len(pick(box.out)) == 6, box.describe()
