"""The pre-forked Gofer (gofer/prefork.py): forked early, it must end up the same
confined file server the exec'd one is, inherit nothing but its socket, and
leave nothing behind.

Each case runs a small "Sentry" script in its own interpreter: prefork() forks
the calling process, which must never be pytest itself (it has threads of its
own, and a fork of it would run the rest of the session twice).

Facts the tests rely on:

- The forked Gofer names itself ``gofer.server --sentry-pid PID ...`` in
  /proc/PID/cmdline (rewritten in place) and "gofer.server" in comm.
- A Gofer that runs from pre-fork is a ``prefork.ForkedProcess``; one that
  was exec'd is a ``subprocess.Popen``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gofer import confine as gconfine

REPO = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the Gofer confines itself: needs root")

# A "Sentry": opens a marker file (the Gofer must not inherit it), optionally
# starts a thread (prefork must refuse), preforks, starts a Gofer on ROOT,
# reads a file through it, reports what it sees as JSON, then waits for stdin.
SENTRY = r"""
import json, os, sys, threading
from pathlib import Path
from gofer import prefork
from gofer.spawn import start_gofer

root, thread = sys.argv[1], sys.argv[2] == "thread"
marker = open(os.path.join(root, "hello"), "rb")
if thread:
    threading.Thread(target=threading.Event().wait, daemon=True).start()
forked = prefork.prefork()
client, proc = start_gofer(root, readonly=True, confine=True)
fid, _ = client.walk(client.root, [b"hello"])
client.lopen(fid, os.O_RDONLY)
pid = proc.pid
fds = {fd: os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")}
status = dict(l.split(":", 1) for l in Path(f"/proc/{pid}/status").read_text().splitlines())
print(json.dumps({
    "forked": forked, "kind": type(proc._proc).__name__, "pid": pid,
    "data": client.read(fid, 0, 100).decode(),
    "cmdline": Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(),
    "comm": Path(f"/proc/{pid}/comm").read_text().strip(),
    "fds": fds, "marker": os.readlink(f"/proc/self/fd/{marker.fileno()}"),
    "status": {k: v.strip() for k, v in status.items()},
}), flush=True)
sys.stdin.read()
client.close()
print(proc.wait(5), flush=True)
"""


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "root"
    r.mkdir()
    (r / "hello").write_text("hello from the root\n")
    return r


def _start(root: Path, mode: str) -> tuple[subprocess.Popen[str], dict[str, object]]:
    sentry = subprocess.Popen([sys.executable, "-c", SENTRY, str(root), mode], cwd=REPO,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert sentry.stdout is not None
    line = sentry.stdout.readline()
    if not line:
        sentry.kill()
        sentry.wait()
        pytest.fail(f"the Sentry script failed (status {sentry.returncode})")
    return sentry, json.loads(line)


def _gone(pid: int, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return True
        if state == "Z":
            return True
        time.sleep(0.02)
    return False


def test_forked_gofer_serves_confined_and_inherits_nothing(root: Path) -> None:
    sentry, seen = _start(root, "plain")
    try:
        assert seen["forked"] is True
        assert seen["kind"] == "ForkedProcess"
        assert seen["data"] == "hello from the root\n"
        assert str(seen["cmdline"]).startswith(f"gofer.server --sentry-pid {sentry.pid} ")
        assert seen["comm"] == "gofer.server"
        status = seen["status"]
        assert isinstance(status, dict)
        assert status["Seccomp"] == "2" and status["NoNewPrivs"] == "1"
        keep = sum(1 << cap for cap in gconfine.KEEP_CAPS)
        assert int(status["CapEff"], 16) == keep
        # 0-2 are /dev/null (no debug log here); nothing of the parent's is
        # open: not its marker file, not its stdio pipes, not the request
        # socket.  One socket only: the donation socket it was handed with
        # its argv (gofer/donate.py).
        fds = seen["fds"]
        assert isinstance(fds, dict)
        assert [fds[str(fd)] for fd in (0, 1, 2)] == ["/dev/null"] * 3
        assert seen["marker"] not in fds.values()
        assert not [t for t in fds.values() if t.startswith("pipe:")], fds
        assert len([t for t in fds.values() if t.startswith("socket:")]) == 1, fds
    finally:
        out, _ = sentry.communicate("", timeout=30)
    assert out.strip() == "0"  # the Gofer exits 0 when the channel closes


def test_prefork_refused_with_threads_then_exec(root: Path) -> None:
    sentry, seen = _start(root, "thread")
    try:
        assert seen["forked"] is False
        assert seen["kind"] == "Popen"
        assert seen["data"] == "hello from the root\n"
        assert "gofer.server" in str(seen["cmdline"])
    finally:
        sentry.communicate("", timeout=30)


def test_forked_gofer_dies_with_its_sentry(root: Path) -> None:
    sentry, seen = _start(root, "plain")
    pid = int(str(seen["pid"]))
    os.kill(sentry.pid, signal.SIGKILL)
    sentry.communicate(timeout=30)
    assert _gone(pid), "the Gofer outlived its SIGKILLed Sentry"


def test_unused_prefork_exits_with_its_parent() -> None:
    code = ("import os, sys\nfrom gofer import prefork\n"
            "assert prefork.prefork()\nprint(prefork._pending.proc.pid, flush=True)\n")
    res = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                         text=True, timeout=60, check=True)
    assert _gone(int(res.stdout)), "a pre-forked Gofer nobody used outlived its parent"
