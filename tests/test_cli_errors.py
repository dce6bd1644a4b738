"""``runsc.py do`` with a program that cannot run: a one-line error on stderr
(never a Python traceback), a shell's exit status (127 not found, 126 found but
not executable), and no process left behind.

The native tests check the premise: the host's execve refuses each file with
the errno a shell turns into that status (ENOENT -> 127; EACCES, ENOEXEC -> 126).
"""

from __future__ import annotations

import errno
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import RUNSC, Programs, assert_no_process_left, run_sandbox

EM_AARCH64 = 183
E_MACHINE_OFFSET = 18


def _missing(tmp: Path, programs: Programs) -> Path:
    return tmp / "no-such-program"


def _directory(tmp: Path, programs: Programs) -> Path:
    d = tmp / "a-directory"
    d.mkdir()
    return d


def _text_without_shebang(tmp: Path, programs: Programs) -> Path:
    p = tmp / "plain-text"
    p.write_text("echo this is not a script\n")
    p.chmod(0o755)
    return p


def _truncated_elf(tmp: Path, programs: Programs) -> Path:
    p = tmp / "truncated-elf"
    p.write_bytes(programs.path("hello").read_bytes()[:100])
    p.chmod(0o755)
    return p


def _other_arch_elf(tmp: Path, programs: Programs) -> Path:
    p = tmp / "aarch64-elf"
    data = bytearray(programs.path("hello").read_bytes())
    data[E_MACHINE_OFFSET : E_MACHINE_OFFSET + 2] = EM_AARCH64.to_bytes(2, "little")
    p.write_bytes(bytes(data))
    p.chmod(0o755)
    return p


def _empty(tmp: Path, programs: Programs) -> Path:
    p = tmp / "empty-file"
    p.write_bytes(b"")
    p.chmod(0o755)
    return p


def _not_executable(tmp: Path, programs: Programs) -> Path:
    p = tmp / "no-exec-bit"
    shutil.copyfile(programs.path("hello"), p)
    p.chmod(0o644)
    return p


Maker = Callable[[Path, Programs], Path]

# (maker, errno from the host's execve, status runsc do must exit with)
CASES = [
    pytest.param(_missing, errno.ENOENT, 127, id="missing"),
    pytest.param(_directory, errno.EACCES, 126, id="directory"),
    pytest.param(_text_without_shebang, errno.ENOEXEC, 126, id="text-no-shebang"),
    pytest.param(_truncated_elf, errno.ENOEXEC, 126, id="truncated-elf"),
    pytest.param(_other_arch_elf, errno.ENOEXEC, 126, id="aarch64-elf"),
    pytest.param(_empty, errno.ENOEXEC, 126, id="empty"),
    pytest.param(_not_executable, errno.EACCES, 126, id="no-exec-bit"),
]


@pytest.mark.parametrize(("make", "host_errno", "status"), CASES)
def test_native_exec_refuses(
    make: Maker, host_errno: int, status: int, programs: Programs, tmp_path: Path
) -> None:
    prog = make(tmp_path, programs)
    with pytest.raises(OSError) as info:
        subprocess.run([str(prog)], stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
    assert info.value.errno == host_errno


def _assert_one_line_error(err: str, prog: Path) -> None:
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, f"expected a one-line error on stderr, got:\n{err}"
    assert prog.name in lines[0], f"the error should name the program: {lines[0]!r}"


@pytest.mark.sandbox
@pytest.mark.parametrize(("make", "host_errno", "status"), CASES)
def test_sandbox_bad_program(
    make: Maker, host_errno: int, status: int, programs: Programs, tmp_path: Path
) -> None:
    prog = make(tmp_path, programs)
    res = run_sandbox([prog])
    assert res.returncode == status, res.describe()
    assert res.stdout == b"", res.describe()
    _assert_one_line_error(res.err, prog)
    assert_no_process_left(str(prog))


@pytest.mark.sandbox
def test_sandbox_missing_bare_name(tmp_path: Path) -> None:
    """A name without a slash that is on no PATH directory: 127, as a shell says."""
    name = "pyvisor-no-such-command-7f3a"
    res = run_sandbox([name])
    assert res.returncode == 127, res.describe()
    _assert_one_line_error(res.err, Path(name))
    assert_no_process_left(name)


@pytest.mark.sandbox
def test_sandbox_arguments_after_bad_program(programs: Programs, tmp_path: Path) -> None:
    """Arguments do not change the verdict on an unrunnable file."""
    prog = _empty(tmp_path, programs)
    res = run_sandbox([prog, "arg1", "--flag"])
    assert res.returncode == 126, res.describe()
    _assert_one_line_error(res.err, prog)
    assert_no_process_left(str(prog))


@pytest.mark.sandbox
def test_sandbox_good_program_leaves_nothing(programs: Programs, tmp_path: Path) -> None:
    """The control case: a program that runs exits cleanly and leaves nothing."""
    prog = tmp_path / "hello-copy"
    shutil.copyfile(programs.path("hello"), prog)
    prog.chmod(0o755)
    res = run_sandbox([prog])
    assert (res.returncode, res.out) == (0, "hello, world\n"), res.describe()
    assert_no_process_left(str(prog))


# --- bad command lines: refused before a sandbox starts ---------------------


def _runsc_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(RUNSC), *args], stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=60, start_new_session=True)


def _assert_refused(res: subprocess.CompletedProcess[str], *words: str) -> None:
    assert res.returncode == 1, (res.returncode, res.stdout, res.stderr)
    assert res.stdout == "", res.stdout
    assert "Traceback" not in res.stderr, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("runsc.py: "), res.stderr
    for word in words:
        assert word in lines[0], lines[0]


BAD_DO_LINES = [
    # docker run -e =v: "invalid environment variable: =v"
    pytest.param(["do", "-e", "=v"], ("-e =v", "name is empty"), id="env-empty-name"),
    pytest.param(["do", "-e", "novalue"], ("-e novalue", "K=V"), id="env-no-equals"),
    # runc (so docker -v X:/proc): "cannot be mounted because it is not of type proc"
    pytest.param(["do", "-v", "{tmp}:/proc"], ("/proc", "not of type proc"), id="volume-on-proc"),
    pytest.param(["do", "-v", "{tmp}:/proc/../proc:ro"], ("not of type proc",),
                 id="volume-on-proc-dotdot"),
    pytest.param(["do", "-v", "{tmp}:/proc/sys"], ("/proc/sys", "inside /proc"),
                 id="volume-inside-proc"),
    pytest.param(["do", "--debug-log", "{tmp}/no-dir/log"], ("debug log", "no-dir"),
                 id="debug-log-unwritable"),
    pytest.param(["--debug-log", "{tmp}/no-dir/log", "do"], ("debug log", "no-dir"),
                 id="global-debug-log-unwritable"),
    pytest.param(["do", "--debug-log", "{tmp}"], ("debug log",), id="debug-log-is-a-directory"),
    # The global --root is the OCI state directory; do's own --root is the rootfs.
    pytest.param(["--root", "{tmp}", "do"], ("--root", "state directory", "do --root"),
                 id="global-root-with-do"),
]


@pytest.mark.parametrize(("args", "words"), BAD_DO_LINES)
def test_do_refuses_bad_command_line(args: list[str], words: tuple[str, ...],
                                     tmp_path: Path) -> None:
    argv = [a.replace("{tmp}", str(tmp_path)) for a in args]
    res = _runsc_cli(*argv, "--", "/bin/true")
    _assert_refused(res, *(w.replace("{tmp}", str(tmp_path)) for w in words))
    assert list(tmp_path.iterdir()) == [], "nothing may be created"


@pytest.mark.sandbox
def test_do_debug_log_without_debug_is_created(tmp_path: Path) -> None:
    """--debug-log alone opens the file (and the command runs), as runsc does."""
    log = tmp_path / "debug.log"
    res = _runsc_cli("do", "--debug-log", str(log), "--", "/bin/true")
    assert res.returncode == 0, res.stderr
    assert log.is_file()


@pytest.mark.sandbox
def test_do_volume_on_an_lxcfs_proc_file(tmp_path: Path) -> None:
    """The files below /proc that runc lets a bind cover (lxcfs's) still work."""
    fake = tmp_path / "cpuinfo"
    fake.write_text("fake cpuinfo\n")
    res = _runsc_cli("do", "-v", f"{fake}:/proc/cpuinfo:ro", "--", "/bin/busybox", "cat",
                     "/proc/cpuinfo")
    assert (res.returncode, res.stdout) == (0, "fake cpuinfo\n"), res.stderr


def test_oci_short_call_refuses_unwritable_debug_log(tmp_path: Path) -> None:
    """The click-free calls a shim makes check --debug-log too."""
    res = _runsc_cli("--root", str(tmp_path / "state"), "--debug-log",
                     str(tmp_path / "no-dir" / "log"), "state", "no-such-container")
    _assert_refused(res, "debug log")
