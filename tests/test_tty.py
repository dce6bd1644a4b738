"""Terminals: pty pairs and job control (differential C program, Python's
pty module), the console bridge of `runsc.py do` driven through a host pty,
and the OCI console socket.  The line discipline's unit tests are in
test_tty_ldisc.py.

Facts the tests rely on:

- helpers.run_native/run_sandbox start the program in a new session with
  stdin from /dev/null, so it has no controlling terminal (/dev/tty: ENXIO)
  and `do` does not bridge a terminal.
- A host pty made with os.openpty/pty.fork is a real terminal for `do`:
  stdin and stdout are ttys, so the sandbox gets its own pty, the host one is
  put in raw mode and must come back as it was.
- On Linux a pty master's TCGETS reports the replica's settings, so the test
  can check the host terminal was restored from the master side.
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import select
import signal
import subprocess
import sys
import termios
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from console_support import ConsoleListener, read_until
from helpers import RUNSC, Programs, assert_no_process_left, run_native, run_sandbox, shell_status

from sentry.tty import termios as t

TIMEOUT = 30.0


# -- pty programs: native and sandboxed ---------------------------------------------

@pytest.mark.sandbox
@pytest.mark.parametrize("variant", ["static", "static-pie"])
def test_pty_program(programs: Programs, variant: str) -> None:
    path = programs.path("pty_basic", variant)
    nat = run_native([path])
    assert nat.returncode == 0 and "signaled 1 by INT" in nat.out, nat.describe()
    box = run_sandbox([path])
    assert "Traceback" not in box.err, box.describe()
    assert box.out == nat.out, box.describe()
    assert box.returncode == shell_status(nat.returncode), box.describe()


PY_PTY = r"""
import os, pty, select, sys
m, s = os.openpty()
print("ttyname", os.ttyname(s).startswith("/dev/pts/"), os.isatty(m), os.isatty(s))
os.write(m, b"typed\n")
print("read", os.read(s, 100))
os.close(m); os.close(s)
pid, fd = pty.fork()
if pid == 0:
    os.execv("/bin/busybox", ["sh", "-c",
             "case $(tty) in /dev/pts/*) echo on-pts;; *) echo no-tty;; esac; read x; echo got:$x"])
out = b""
os.write(fd, b"line\n")
while True:
    r, _, _ = select.select([fd], [], [], 10)
    if not r:
        break
    try:
        chunk = os.read(fd, 1024)
    except OSError:
        break
    if not chunk:
        break
    out += chunk
_, status = os.waitpid(pid, 0)
print(sorted(out.replace(b"\r", b"").split(b"\n")), os.waitstatus_to_exitcode(status))
"""


@pytest.mark.sandbox
def test_python_pty_module() -> None:
    argv = [sys.executable, "-c", PY_PTY]
    nat = run_native(argv)
    assert nat.returncode == 0 and "on-pts" in nat.out, nat.describe()
    box = run_sandbox(argv)
    assert box.out == nat.out, box.describe()
    assert box.returncode == 0, box.describe()


PY_EPOLL = r"""
import os, select, time
m, s = os.openpty()
ep = select.epoll()
ep.register(m, select.EPOLLIN)
ep.register(s, select.EPOLLIN)
print("idle", ep.poll(0.2))
os.write(m, b"abc\n")
time.sleep(0.3)  # Linux echoes from a workqueue: let both ends settle first
print("typed", sorted(set(ep.poll(5))))
os.read(s, 10); os.read(m, 10)
os.write(s, b"x")
print("output", ep.poll(5))
os.read(m, 10)
os.close(s)
print("hangup", ep.poll(5))
"""


@pytest.mark.sandbox
def test_epoll_on_a_pty() -> None:
    argv = [sys.executable, "-c", PY_EPOLL]
    nat = run_native(argv)
    assert nat.returncode == 0 and "hangup" in nat.out, nat.describe()
    box = run_sandbox(argv)
    assert box.out == nat.out, box.describe()
    assert (box.returncode, box.err) == (nat.returncode, nat.err), box.describe()


# -- runsc.py do from a terminal -------------------------------------------------------

class HostPty:
    """A child process on a host pty; reads with deadlines, never hangs."""

    def __init__(self, argv: list[str], winsize: t.WinSize | None = None) -> None:
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            try:
                # A terminal starts its session with every signal at default,
                # whatever the test run inherited (a background job ignores
                # SIGINT and SIGQUIT, and SIG_IGN survives execve).
                for sig in range(1, 32):
                    if sig not in (signal.SIGKILL, signal.SIGSTOP):
                        signal.signal(sig, signal.SIG_DFL)
                if winsize is not None:  # before the program starts: no race
                    fcntl.ioctl(0, termios.TIOCSWINSZ, winsize.pack())
                # busybox believes $LINES/$COLUMNS (pytest may set them) over the tty
                env = {k: v for k, v in os.environ.items() if k not in ("LINES", "COLUMNS")}
                os.execve(argv[0], argv, env)
            finally:
                os._exit(127)
        self.buf = b""

    def expect(self, needle: bytes, timeout: float = TIMEOUT) -> bytes:
        deadline = time.monotonic() + timeout
        while needle not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {needle!r} within {timeout} s; got {self.buf!r}")
            r, _, _ = select.select([self.fd], [], [], min(left, 0.5))
            if r:
                try:
                    chunk = os.read(self.fd, 4096)
                except OSError:
                    chunk = b""
                if not chunk:
                    raise AssertionError(f"EOF before {needle!r}; got {self.buf!r}")
                self.buf += chunk
        before, _, self.buf = self.buf.partition(needle)
        return before

    def send(self, data: bytes) -> None:
        os.write(self.fd, data)

    def wait(self, timeout: float = TIMEOUT) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                return os.waitstatus_to_exitcode(status)
            time.sleep(0.05)
        os.kill(self.pid, 9)
        os.waitpid(self.pid, 0)
        raise AssertionError("the process did not exit")

    def close(self) -> None:
        try:
            os.kill(self.pid, 9)
            os.waitpid(self.pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        os.close(self.fd)


def _tty_then_exit(p: HostPty, word: str, code: int, pts: bytes) -> None:
    """The shell on ``p`` names its terminal (``pts``) and exits ``code``; the
    host terminal is as it was before.  ``word`` is echoed split by quotes, so
    the echoed command line does not match it."""
    before = termios.tcgetattr(p.fd)
    half = len(word) // 2
    p.send(f"tty; echo {word[:half]}''{word[half:]}\n".encode())
    out = p.expect(word.encode() + b"\r\n")
    assert pts in out, out
    p.send(f"exit {code}\n".encode())
    assert p.wait() == code
    assert termios.tcgetattr(p.fd) == before, "the terminal was not restored"


@pytest.mark.sandbox
def test_do_from_a_terminal_ctrl_c_reaches_the_job() -> None:
    tag = f"pty-{uuid.uuid4().hex[:8]}"
    p = HostPty([sys.executable, str(RUNSC), "do", "-e", f"TAG={tag}", "--",
                 "/bin/busybox", "sh"])
    try:
        before = termios.tcgetattr(p.fd)
        p.send(b"PS1='$ '; tty; echo re''ady\n")
        out = p.expect(b"ready\r\n")  # the echoed command line says re''ady
        assert b"/dev/pts/0\r\n" in out, out
        # The job says when it runs: from then on it is the foreground group
        # and the terminal is cooked (ISIG), so ^C is its SIGINT.
        p.send(b"/bin/busybox sh -c 'echo sle''eping; exec /bin/busybox sleep 100'\n")
        p.expect(b"sleeping")
        p.send(b"\x03")
        p.expect(b"^C")
        p.send(b"echo st''atus=$?\n")
        p.expect(b"status=130", timeout=20)
        p.send(b"echo al''ive; exit 3\n")
        p.expect(b"alive")
        assert p.wait() == 3
        after = termios.tcgetattr(p.fd)
        assert after == before, "the host terminal was not restored"
    finally:
        p.close()
    assert_no_process_left(tag)


@pytest.mark.sandbox
def test_do_terminal_is_a_pty_with_job_control() -> None:
    p = HostPty([sys.executable, str(RUNSC), "do", "--", "/bin/busybox", "sh", "-c",
                 "tty; /bin/busybox stty size; echo done"], t.WinSize(rows=33, cols=101))
    try:
        out = p.expect(b"done")
        assert b"/dev/pts/0" in out, out
        assert b"33 101" in out, out
        assert p.wait() == 0
    finally:
        p.close()


# -- OCI: process.terminal and --console-socket ---------------------------------------

def _need_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("the sandbox needs root (namespaces, seccomp)")


def _runsc(root: Path, *args: str, timeout: float = TIMEOUT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(RUNSC), "--root", str(root), *args],
                          stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=timeout, start_new_session=True)


def _runsc_files(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """create: the sandbox host keeps its stdio; files, not pipes."""
    import tempfile

    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.run([sys.executable, str(RUNSC), "--root", str(root), *args],
                              stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                              timeout=TIMEOUT * 2, start_new_session=True)
        out.seek(0)
        err.seek(0)
        return subprocess.CompletedProcess(proc.args, proc.returncode, out.read(), err.read())


@pytest.fixture
def bundle_dir(tmp_path: Path) -> Callable[..., Path]:
    _need_root()
    bb = Path("/bin/busybox")
    if not bb.is_file():
        pytest.skip("/bin/busybox not found")

    def make(**process: Any) -> Path:
        b = tmp_path / "bundle"
        (b / "rootfs" / "bin").mkdir(parents=True)
        (b / "rootfs/bin/busybox").write_bytes(bb.read_bytes())
        os.chmod(b / "rootfs/bin/busybox", 0o755)
        for name in ("sh", "echo", "sleep", "tty"):
            (b / "rootfs/bin" / name).symlink_to("busybox")
        res = _runsc(tmp_path / "unused", "spec", "--bundle", str(b))
        assert res.returncode == 0, res.stderr
        cfg = json.loads((b / "config.json").read_text())
        cfg["process"].update(process)
        (b / "config.json").write_text(json.dumps(cfg))
        return b

    return make


@pytest.mark.root
@pytest.mark.sandbox
def test_console_socket(tmp_path: Path, bundle_dir: Callable[..., Path]) -> None:
    b = bundle_dir(args=["sh"], terminal=True)
    cid = f"tty-test-{uuid.uuid4().hex[:10]}"
    root = tmp_path / "state"
    listener = ConsoleListener(str(tmp_path / "console.sock"))
    try:
        res = _runsc_files(root, "create", "--bundle", str(b), "--console-socket",
                           str(tmp_path / "console.sock"), cid)
        assert res.returncode == 0, res.stderr
        master = listener.master()
        assert listener.name == b"/dev/ptmx"
        assert os.isatty(master)
        res = _runsc(root, "start", cid)
        assert res.returncode == 0, res.stderr
        os.write(master, b"tty; echo h''i\n")
        out = read_until(master, b"hi\r\n")
        assert b"/dev/pts/0" in out, out
        os.write(master, b"exit 3\n")
        res = _runsc(root, "wait", cid)
        assert res.returncode == 0, res.stderr
        assert json.loads(res.stdout)["exitStatus"] == 3, res.stdout
    finally:
        _runsc(root, "delete", "--force", cid)
        listener.close()
    assert_no_process_left(cid)


@pytest.mark.root
@pytest.mark.sandbox
def test_terminal_without_console_socket_detached(tmp_path: Path,
                                                  bundle_dir: Callable[..., Path]) -> None:
    b = bundle_dir(args=["sh"], terminal=True)
    cid = f"tty-test-{uuid.uuid4().hex[:10]}"
    res = _runsc_files(tmp_path / "state", "create", "--bundle", str(b), cid)
    assert res.returncode != 0
    assert "console-socket" in res.stderr, res.stderr
    assert "Traceback" not in res.stderr
    assert_no_process_left(cid)


@pytest.mark.root
@pytest.mark.sandbox
def test_exec_tty_console_socket(tmp_path: Path, bundle_dir: Callable[..., Path]) -> None:
    b = bundle_dir(args=["sleep", "100"])
    cid = f"tty-test-{uuid.uuid4().hex[:10]}"
    root = tmp_path / "state"
    sock = str(tmp_path / "exec.sock")
    listener = ConsoleListener(sock)
    try:
        res = _runsc_files(root, "run", "--detach", "--bundle", str(b), cid)
        assert res.returncode == 0, res.stderr
        proc = subprocess.Popen(
            [sys.executable, str(RUNSC), "--root", str(root), "exec", "--tty",
             "--console-socket", sock, cid, "sh"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            start_new_session=True)
        try:
            master = listener.master()
            os.write(master, b"tty; echo e''xec-hi; exit 4\n")
            out = read_until(master, b"exec-hi\r\n")
            assert b"/dev/pts/" in out, out
            assert proc.wait(TIMEOUT) == 4, proc.stderr.read() if proc.stderr else ""
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(5)
            if proc.stderr is not None:
                proc.stderr.close()
    finally:
        _runsc(root, "delete", "--force", cid)
        listener.close()
    assert_no_process_left(cid)


@pytest.mark.root
@pytest.mark.sandbox
def test_run_in_the_foreground_uses_our_terminal(tmp_path: Path,
                                                 bundle_dir: Callable[..., Path]) -> None:
    b = bundle_dir(args=["sh"], terminal=True)
    cid = f"tty-test-{uuid.uuid4().hex[:10]}"
    root = tmp_path / "state"
    p = HostPty([sys.executable, str(RUNSC), "--root", str(root), "run", "--bundle", str(b),
                 cid])
    try:
        _tty_then_exit(p, "run-hi", 5, b"/dev/pts/0")
    finally:
        p.close()
        _runsc(root, "delete", "--force", cid)
    assert_no_process_left(cid)


@pytest.mark.root
@pytest.mark.sandbox
def test_exec_tty_in_the_foreground_uses_our_terminal(
        tmp_path: Path, bundle_dir: Callable[..., Path]) -> None:
    b = bundle_dir(args=["sleep", "100"])
    cid = f"tty-test-{uuid.uuid4().hex[:10]}"
    root = tmp_path / "state"
    res = _runsc_files(root, "run", "--detach", "--bundle", str(b), cid)
    assert res.returncode == 0, res.stderr
    p = HostPty([sys.executable, str(RUNSC), "--root", str(root), "exec", "-t", cid, "sh"])
    try:
        _tty_then_exit(p, "exec-fg", 6, b"/dev/pts/")
    finally:
        p.close()
        _runsc(root, "delete", "--force", cid)
    assert_no_process_left(cid)


@pytest.mark.sandbox
def test_sigterm_restores_the_host_terminal() -> None:
    p = HostPty([sys.executable, str(RUNSC), "do", "--", "/bin/busybox", "sh"])
    try:
        before = termios.tcgetattr(p.fd)
        p.send(b"echo u''p\n")
        p.expect(b"up\r\n")
        assert termios.tcgetattr(p.fd) != before  # raw while the sandbox runs
        os.kill(p.pid, 15)
        assert p.wait() == 128 + 15
        assert termios.tcgetattr(p.fd) == before, "the terminal was not restored"
    finally:
        p.close()


@pytest.mark.sandbox
def test_do_follows_the_host_window_size() -> None:
    script = ("trap '/bin/busybox stty size; exit 0' WINCH; echo re''ady; "
              "/bin/busybox sleep 100 & wait")
    p = HostPty([sys.executable, str(RUNSC), "do", "--", "/bin/busybox", "sh", "-c", script],
                t.WinSize(rows=20, cols=60))
    try:
        p.expect(b"ready\r\n")
        fcntl.ioctl(p.fd, termios.TIOCSWINSZ, t.WinSize(rows=41, cols=132).pack())
        p.expect(b"41 132\r\n")  # the bridge saw the change: SIGWINCH, new size
        assert p.wait() == 0
    finally:
        p.close()
