"""The Gofer dies under a running sandbox: the application sees the failure
(file operations fail with EIO), the sandbox ends once the application does,
the CLI says what happened in one line, and nothing is left behind.

Facts the test relies on:

- The Gofer is a child of the ``runsc.py do`` process, with "gofer.server"
  and "--sentry-pid <runsc pid>" on its command line; stubs are children too
  (their command line is empty, so they are found through
  /proc/PID/task/*/children, not by name).
- A pid can be reused once its process is gone: a process counts as "left"
  only if a process with the same pid and the same start time still runs and
  is not a zombie.
- The shared-memory channel is named /pyvisor-<runsc pid>-<hex> (semaphores:
  sem.pyvisor-...); nothing of it may stay in /dev/shm.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import Programs, processes_mentioning, sandbox_command

pytestmark = pytest.mark.sandbox

BB = "/bin/busybox"
START_TIMEOUT = 20.0
END_TIMEOUT = 10.0


def _proc_identity(pid: int) -> tuple[str, str] | None:
    """(start time, state) of a live process, None when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()
    return fields[19], fields[0]  # starttime (field 22), state (field 3)


def _descendants(pid: int) -> dict[int, str]:
    """Every live descendant of ``pid``: pid -> start time."""
    found: dict[int, str] = {}
    todo = [pid]
    while todo:
        parent = todo.pop()
        try:  # a process that exits while we walk is simply not a descendant any more
            tasks = list(Path(f"/proc/{parent}/task").iterdir())
        except OSError:
            continue
        for task in tasks:
            try:
                children = (task / "children").read_text().split()
            except OSError:
                continue
            for child in map(int, children):
                ident = _proc_identity(child)
                if ident is not None and child not in found:
                    found[child] = ident[0]
                    todo.append(child)
    return found


def _still_alive(pids: dict[int, str]) -> list[int]:
    alive = []
    for pid, start in pids.items():
        ident = _proc_identity(pid)
        if ident is not None and ident[0] == start and ident[1] != "Z":
            alive.append(pid)
    return alive


def _shm_left(runsc_pid: int) -> list[str]:
    return [name for name in os.listdir("/dev/shm")
            if name.startswith((f"pyvisor-{runsc_pid}-", f"sem.pyvisor-{runsc_pid}-"))]


def _read_until(fd: int, marker: bytes, timeout: float) -> bytes:
    data = b""
    deadline = time.monotonic() + timeout
    while marker not in data:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            break
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        data += chunk
    return data


def _find_gofer(runsc_pid: int, timeout: float) -> int | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for pid in _descendants(runsc_pid):
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if b"gofer.server" in cmdline:
                return pid
        time.sleep(0.05)
    return None


@dataclass
class Outcome:
    status: int
    out: bytes
    err: bytes
    runsc_pid: int
    family: dict[int, str]  # the sandbox's processes (runsc.py included): pid -> start time

    def describe(self) -> str:
        return (f"status {self.status}\n--- stdout ---\n{self.out.decode('utf-8', 'replace')}"
                f"--- stderr ---\n{self.err.decode('utf-8', 'replace')}")


def _kill_gofer_under(argv: list[str]) -> Outcome:
    """Start ``argv`` in a sandbox, wait for it to print "started", SIGKILL its
    Gofer and wait for the sandbox to end."""
    with subprocess.Popen(sandbox_command(argv), stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          start_new_session=True) as proc:
        try:
            return _kill_gofer_of(proc)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.communicate()


def _kill_gofer_of(proc: subprocess.Popen[bytes]) -> Outcome:
    """Wait for "started", SIGKILL the Gofer, wait for the end."""
    assert proc.stdout is not None
    head = _read_until(proc.stdout.fileno(), b"started\n", START_TIMEOUT)
    assert b"started\n" in head, f"the application never started: {head!r}"
    gofer = _find_gofer(proc.pid, 5.0)
    assert gofer is not None, "no child of runsc.py runs gofer.server"
    family = _descendants(proc.pid)
    runsc = _proc_identity(proc.pid)
    assert runsc is not None, "runsc.py ended before its Gofer was killed"
    family[proc.pid] = runsc[0]
    os.kill(gofer, signal.SIGKILL)
    try:
        out, err = proc.communicate(timeout=END_TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the sandbox did not end within {END_TIMEOUT:.0f} s of the Gofer's "
                    f"death; so far: {head!r}")
    return Outcome(proc.returncode, head + out, err, proc.pid, family)


def _check_cli_and_leftovers(res: Outcome) -> list[str]:
    """No Traceback, nothing left, one line about the Gofer; returns stderr's lines."""
    text = res.err.decode("utf-8", "replace")
    assert "Traceback" not in text, res.describe()
    deadline = time.monotonic() + 2.0
    while _still_alive(res.family) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = _still_alive(res.family)
    assert not left, f"processes left behind: {left} of {sorted(res.family)}"
    assert not processes_mentioning(f"--sentry-pid {res.runsc_pid} ")
    shm = _shm_left(res.runsc_pid)
    assert not shm, f"/dev/shm objects left: {shm}"
    cli_lines = [line for line in text.splitlines() if "gofer" in line.lower()]
    assert len(cli_lines) == 1, "expected one line about the Gofer on stderr\n" + res.describe()
    return text.splitlines()


def test_gofer_killed_under_busybox_loop() -> None:
    script = ("echo started; while true; do "
              f"{BB} cat /etc/hostname > /dev/null || {{ echo EIO-seen; exit 7; }}; done")
    res = _kill_gofer_under([BB, "sh", "-c", script])
    assert res.status == 7, res.describe()
    assert res.out.endswith(b"EIO-seen\n"), res.describe()
    _check_cli_and_leftovers(res)


def test_gofer_killed_under_c_loop(programs: Programs) -> None:
    """A program that only opens, reads and looks names up: the first failure is EIO."""
    res = _kill_gofer_under([programs.path("files_gofer_loop"), "/etc/hostname"])
    assert res.status == 7, res.describe()
    last = res.out.decode().splitlines()[-1]
    assert last in ("open failed: EIO", "read failed: EIO", "lookup failed: EIO"), (
        res.describe())
    lines = _check_cli_and_leftovers(res)
    assert len(lines) == 1, "the CLI's one line is all stderr should hold\n" + res.describe()


def test_gofer_killed_no_read_from_stale_cache(programs: Programs) -> None:
    """A file opened and read before the Gofer died is in the Sentry's page
    cache; its next read must still fail with EIO, as an uncached one does,
    rather than serve bytes no live server vouches for."""
    res = _kill_gofer_under([programs.path("gofer_cached_read"), "/etc/hostname"])
    assert res.status == 7, res.describe()
    assert res.out.decode().splitlines()[-1] == "pread failed: EIO", res.describe()
    _check_cli_and_leftovers(res)
