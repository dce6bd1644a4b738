"""Fault containment (issue 16 section 4): a Python exception in a syscall
handler gives the calling task an errno and leaves the Sentry serving.

The fault is injected with ``PYVISOR_FAULT=handler:NAME[:efault]``
(shm/faults.py): the handler of syscall NAME raises on every call.  The
probe (tests/programs/fault_probe.c) calls sysinfo(2) from its main thread, a
second thread and a forked child, then writes a file and uses a pipe: all of
it must keep working, and the log must hold the traceback once.

Facts the tests rely on:

- The test helpers strip PYVISOR_* from the environment they pass, so these
  tests build the command themselves (helpers.sandbox_command).
- libc's sysinfo() is not called by the static probe's start-up, so nothing
  but the probe's own calls meets the injected fault.
"""

from __future__ import annotations

import errno
import os
import struct
import subprocess
from pathlib import Path

import pytest
from helpers import Programs, _base_env, run_native, sandbox_command

from sentry.kernel import contain

pytestmark = pytest.mark.sandbox

TIMEOUT = 60


def _run_with_fault(argv: list[str], fault: str | None, log: Path) -> subprocess.CompletedProcess:
    env = _base_env()
    if fault is not None:
        env["PYVISOR_FAULT"] = fault
    cmd = sandbox_command(argv, ["--debug-log", str(log)])
    return subprocess.run(cmd, capture_output=True, env=env, timeout=TIMEOUT,
                          stdin=subprocess.DEVNULL, start_new_session=True)


def _expected(result: str) -> bytes:
    lines = [f"main: sysinfo {result}"] * 3 + [f"thread: sysinfo {result}",
                                               f"child: sysinfo {result}",
                                               "child exit 3", "file still-here, pipe ok"]
    return ("\n".join(lines) + "\n").encode()


@pytest.mark.parametrize(("kind", "result"), [("", "-1 EIO"), (":efault", "-1 EFAULT")])
def test_handler_exception_gives_errno(programs: Programs, tmp_path: Path, kind: str,
                                       result: str) -> None:
    """Five failing calls from three tasks: each gets the errno, the process
    and the sandbox go on, one traceback in the debug log."""
    log = tmp_path / "debug.log"
    probe = str(programs.path("fault_probe"))
    res = _run_with_fault([probe], f"handler:sysinfo{kind}", log)
    detail = f"rc {res.returncode}\n{res.stdout!r}\n{res.stderr!r}"
    assert res.returncode == 0, detail
    assert res.stdout == _expected(result), detail
    assert b"Traceback" not in res.stderr, detail
    text = log.read_text()
    assert text.count("Traceback") == 1, text
    assert "Sentry bug in syscall sysinfo" in text and "shm/faults.py" in text, text


def test_unset_fault_is_inert(programs: Programs, tmp_path: Path) -> None:
    """Without PYVISOR_FAULT the probe runs as natively (every call succeeds)."""
    probe = programs.path("fault_probe")
    native = run_native([probe])
    assert native.stdout == _expected("0 OK"), native.describe()
    res = _run_with_fault([str(probe)], None, tmp_path / "debug.log")
    assert (res.returncode, res.stdout) == (0, native.stdout), res.stderr


def test_unknown_syscall_in_fault_is_refused(tmp_path: Path) -> None:
    """A misspelt syscall name must not silently test nothing."""
    res = _run_with_fault(["/bin/true"], "handler:no_such_call", tmp_path / "debug.log")
    assert res.returncode != 0
    assert b"no_such_call" in res.stderr


def test_errno_classes() -> None:
    """Buffer-decoding failures read as EFAULT, exhaustion as ENOMEM, the rest EIO."""
    try:
        struct.unpack("<Q", b"\0")
    except struct.error as exc:
        assert contain.errno_for(exc) == errno.EFAULT
    assert contain.errno_for(IndexError("x")) == errno.EFAULT
    assert contain.errno_for(OverflowError("x")) == errno.EFAULT
    assert contain.errno_for(MemoryError()) == errno.ENOMEM
    assert contain.errno_for(KeyError(1)) == errno.EIO
    assert contain.errno_for(AttributeError("x")) == errno.EIO
    assert os.strerror(errno.EIO)
