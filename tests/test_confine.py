"""The Sentry confines itself after start-up: no host file, program or socket
can be opened by it any more (defense in depth behind the stub's filter)."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from helpers import REPO_ROOT, RUNSC

CHILD = r"""
import errno, os, socket, sys
sys.path.insert(0, sys.argv[1])
from sentry.confine import confine_sentry
confine_sentry()
results = []
for name, fn in [
    ("open", lambda: open("/etc/hostname", "rb")),
    ("openat", lambda: os.open("hostname", os.O_RDONLY, dir_fd=os.open("/", os.O_PATH))),
    ("execve", lambda: os.execv("/bin/true", ["/bin/true"])),
    ("socket", lambda: socket.socket()),
]:
    try:
        fn()
        results.append(f"{name} allowed")
    except OSError as exc:
        results.append(f"{name} {errno.errorcode.get(exc.errno)}")
print(" ".join(results))
"""


def test_confined_sentry_cannot_reach_the_host() -> None:
    res = subprocess.run([sys.executable, "-c", CHILD, str(REPO_ROOT)], capture_output=True,
                         text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["open", "EPERM", "openat", "EPERM", "execve", "EPERM",
                                  "socket", "EPERM"], res.stdout


@pytest.mark.sandbox
def test_running_sentry_has_its_filter() -> None:
    proc = subprocess.Popen([sys.executable, str(RUNSC), "do", "--", "/bin/busybox", "sleep", "5"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 15
        status = ""
        while time.monotonic() < deadline:
            with open(f"/proc/{proc.pid}/status") as f:
                status = f.read()
            if "Seccomp:\t2" in status:
                break
            time.sleep(0.2)
        assert "Seccomp:\t2" in status
    finally:
        proc.kill()
        proc.wait()
