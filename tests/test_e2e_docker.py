"""End to end: a real dockerd, configured by `runsc.py install`, runs busybox
containers with runtime pyvisor.

One dockerd per session, in its own temporary data root, exec root, socket and
pid file (see tests/e2e.py); it is stopped and its directory removed at the
end.  Each check runs with runc as well as with pyvisor: a runc failure is a
harness or machine problem, a pyvisor-only failure is ours.  The fixture first
checks runc end to end; if even that (or the daemon, or the image import)
fails, the module skips with the reason, or fails under CI=true
(e2e.unavailable).
"""

from __future__ import annotations

import contextlib
import json
import os
import pty
import select
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import e2e
import pytest

IMAGE = "pyvisor-e2e-busybox:1"
RUNTIMES = ("runc", "pyvisor")


@dataclass
class Docker:
    client: str
    env: dict[str, str]
    daemon: e2e.Daemon
    base: Path

    def __call__(self, *args: str, timeout: float = e2e.CMD_TIMEOUT,
                 input: bytes | None = None) -> subprocess.CompletedProcess[str]:
        return e2e.run([self.client, *args], env=self.env, timeout=timeout, input=input)

    def why(self, res: subprocess.CompletedProcess[str]) -> str:
        return self.daemon.why(res)


@pytest.fixture(scope="module")
def docker() -> Iterator[Docker]:
    """dockerd with runtime "pyvisor" from `runsc.py install`, and a busybox image."""
    e2e.require_root()
    dockerd = e2e.require_tool("dockerd")
    client = e2e.require_tool("docker")
    e2e.require_tool("containerd")
    e2e.require_busybox()
    base = e2e.short_tmpdir("pyv-dk-")
    daemon: e2e.Daemon | None = None
    try:
        daemon, env = e2e.start_dockerd(base, dockerd, client)
        d = Docker(client, env, daemon, base)
        info = d("info", "--format", "{{json .Runtimes}}")
        if "pyvisor" not in info.stdout:
            pytest.fail(f"dockerd did not load runtime pyvisor from {base / 'daemon.json'}: "
                        f"{d.why(info)}")
        tar = e2e.write_rootfs_tar(base / "rootfs.tar")
        res = d("import", str(tar), IMAGE)
        if res.returncode != 0:
            e2e.unavailable(f"docker import failed here: {res.stderr}", d.why(res))
        res = d("run", "--rm", "--runtime=runc", "--network=none", IMAGE,
                "/bin/busybox", "echo", "sanity")
        if res.returncode != 0 or res.stdout != "sanity\n":
            e2e.unavailable(f"docker cannot run even runc containers here (harness problem, "
                            f"not pyvisor's): exit {res.returncode}: {res.stderr}", d.why(res))
        yield d
    finally:
        if daemon is not None:
            daemon.stop()
        e2e.remove_tree(base)


def _run(d: Docker, runtime: str, *args: str) -> subprocess.CompletedProcess[str]:
    return d("run", "--rm", f"--runtime={runtime}", "--network=none", IMAGE, *args)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_echo(docker: Docker, runtime: str) -> None:
    res = _run(docker, runtime, "/bin/busybox", "echo", "hi")
    assert (res.returncode, res.stdout) == (0, "hi\n"), docker.why(res)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_exit_code_and_stderr(docker: Docker, runtime: str) -> None:
    res = _run(docker, runtime, "/bin/busybox", "sh", "-c", "echo out; echo err >&2; exit 3")
    assert res.returncode == 3, docker.why(res)
    assert res.stdout == "out\n"
    assert res.stderr == "err\n"


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_program_errors_give_dockers_codes(docker: Docker, runtime: str) -> None:
    """Docker's CLI reads the runtime's words: a missing program is 127, one
    that cannot be executed 126, as with runc."""
    assert _run(docker, runtime, "/no/such/program").returncode == 127
    assert _run(docker, runtime, "no-such-program").returncode == 127
    assert _run(docker, runtime, "/etc").returncode == 126


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_memory_limit_bounds_the_container(docker: Docker, runtime: str) -> None:
    """`docker run -m`: the pid Docker knows (for pyvisor the sandbox host, the
    parent of the Sentry, Gofer and stubs) is in a memory cgroup of that limit."""
    cid = f"pyvisor-e2e-memory-{runtime}"
    try:
        res = docker("run", "-d", "--name", cid, "-m", "64m", f"--runtime={runtime}",
                     "--network=none", IMAGE, "/bin/busybox", "sleep", "120")
        assert res.returncode == 0, docker.why(res)
        pid = int(docker("inspect", "--format", "{{.State.Pid}}", cid).stdout)
        lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
        memory = [ln.split(":", 2)[2] for ln in lines if ln.split(":")[1] in ("memory", "")]
        limits = []
        for rel in memory:
            for name in ("memory/" + rel.lstrip("/") + "/memory.limit_in_bytes",
                         "unified/" + rel.lstrip("/") + "/memory.max",
                         rel.lstrip("/") + "/memory.max"):
                with contextlib.suppress(OSError):
                    limits.append(Path("/sys/fs/cgroup", name).read_text().strip())
        assert str(64 << 20) in limits, (lines, limits)
    finally:
        docker("rm", "-f", cid, timeout=60)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_stdin_is_passed(docker: Docker, runtime: str) -> None:
    res = docker("run", "--rm", "-i", f"--runtime={runtime}", "--network=none", IMAGE,
                 "/bin/busybox", "cat", input=b"through the FIFO\n")
    assert (res.returncode, res.stdout) == (0, "through the FIFO\n"), docker.why(res)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_detach_exec_stop(docker: Docker, runtime: str) -> None:
    cid = f"pyvisor-e2e-detached-{runtime}"  # named: removed even if `run -d` fails
    try:
        res = docker("run", "-d", "--name", cid, f"--runtime={runtime}", "--network=none",
                     IMAGE, "/bin/busybox", "sleep", "120")
        assert res.returncode == 0, docker.why(res)
        st = docker("inspect", "--format", "{{json .State}}", cid)
        state = json.loads(st.stdout)
        assert state["Running"] and state["Pid"] > 0, docker.why(st)
        res = docker("exec", cid, "/bin/busybox", "echo", "from exec")
        assert (res.returncode, res.stdout) == (0, "from exec\n"), docker.why(res)
        res = docker("exec", cid, "/bin/busybox", "sh", "-c", "exit 5")
        assert res.returncode == 5, docker.why(res)
        # docker top: the runtime's `ps --format json` gives host pids that Docker
        # looks up in the host's ps; never the host's own pid 1.
        res = docker("top", cid, "-o", "pid,args")
        assert res.returncode == 0, docker.why(res)
        rows = [line.split(None, 1) for line in res.stdout.splitlines()[1:]]
        assert rows and all(r[0] != "1" for r in rows), res.stdout
        assert any("sleep 120" in r[1] or "sandbox-serve" in r[1] for r in rows), res.stdout
        res = docker("stop", "-t", "2", cid, timeout=60)
        assert res.returncode == 0, docker.why(res)
        st = docker("inspect", "--format", "{{json .State}}", cid)
        state = json.loads(st.stdout)
        assert not state["Running"], docker.why(st)
        # `sleep` as pid 1 has no SIGTERM handler, so Linux drops the SIGTERM and
        # the SIGKILL after the grace time ends it: 137, with runc as with us.
        # (A stop that waited for the sleep to end would give 0: no timing needed.)
        assert state["ExitCode"] == 137, state
    finally:
        docker("rm", "-f", cid, timeout=60)


def _pty_session(argv: list[str], env: dict[str, str], script: bytes,
                 timeout: float = 30.0) -> tuple[int, str]:
    """Run ``argv`` on a fresh host pty, type ``script``, return (status, output)."""
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env,
                                start_new_session=True)
    finally:
        os.close(slave)
    out = b""
    deadline = time.monotonic() + timeout
    sent = False
    try:
        while time.monotonic() < deadline:
            r, _, _ = select.select([master], [], [], 0.2)
            if r:
                try:
                    chunk = os.read(master, 4096)
                except OSError:  # EIO: every slave end is closed
                    break
                if not chunk:
                    break
                out += chunk
            if not sent and (b"# " in out or time.monotonic() > deadline - timeout + 5):
                os.write(master, script)  # after the prompt (or 5 s), typed as a user would
                sent = True
            if proc.poll() is not None and not r:
                break
        else:
            proc.kill()
            pytest.fail(f"{' '.join(argv)}: no exit within {timeout:g} s; output: {out!r}")
        return proc.wait(timeout=30), out.decode(errors="replace")
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_interactive_terminal(docker: Docker, runtime: str) -> None:
    """`docker run -it` on a real terminal: an interactive shell that sees a tty."""
    argv = [docker.client, "run", "--rm", "-i", "-t", f"--runtime={runtime}",
            "--network=none", IMAGE, "/bin/busybox", "sh"]
    script = (b"[ -t 0 ] && [ -t 1 ] && echo TTY-$((6*7))\n"
              b"tty\n"
              b"exit 7\n")
    code, out = _pty_session(argv, docker.env, script)
    assert "TTY-42" in out, out
    assert "/dev/pts/" in out or "/dev/console" in out, out
    assert code == 7, out


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_terminal_without_stdin(docker: Docker, runtime: str) -> None:
    """`docker run -t` (no -i): the container's stdout is a terminal."""
    res = docker("run", "--rm", "-t", f"--runtime={runtime}", "--network=none", IMAGE,
                 "/bin/busybox", "sh", "-c", "[ -t 1 ] && echo tty-out; echo hi", timeout=30)
    assert res.returncode == 0, docker.why(res)
    assert res.stdout.splitlines() == ["tty-out", "hi"], docker.why(res)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_exec_interactive_terminal(docker: Docker, runtime: str) -> None:
    """`docker exec -it` into a running container: runtime exec --console-socket --tty."""
    cid = f"pyvisor-e2e-exec-tty-{runtime}"
    try:
        res = docker("run", "-d", "--name", cid, f"--runtime={runtime}", "--network=none",
                     IMAGE, "/bin/busybox", "sleep", "120")
        assert res.returncode == 0, docker.why(res)
        code, out = _pty_session([docker.client, "exec", "-i", "-t", cid, "/bin/busybox", "sh"],
                                 docker.env, b"[ -t 0 ] && echo EXEC-TTY-$((6*7))\nexit 4\n")
        assert "EXEC-TTY-42" in out, out
        assert code == 4, out
    finally:
        docker("rm", "-f", cid, timeout=60)


def _written_container(d: Docker, runtime: str, name: str) -> None:
    """A stopped container that wrote /made (and changed /etc) in its root filesystem."""
    res = d("run", f"--name={name}", f"--runtime={runtime}", "--network=none", IMAGE,
            "/bin/busybox", "sh", "-c", "echo kept > /made && /bin/busybox mkdir /etc/new")
    assert res.returncode == 0, d.why(res)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_commit_keeps_what_the_container_wrote(docker: Docker, runtime: str) -> None:
    """The root filesystem is written through to the bundle's rootfs (as with
    runc), so `docker commit` makes an image holding the container's file."""
    name, image = f"pyv-commit-{runtime}", f"pyvisor-e2e-committed-{runtime}:1"
    try:
        _written_container(docker, runtime, name)
        res = docker("commit", name, image)
        assert res.returncode == 0, docker.why(res)
        res = docker("run", "--rm", "--runtime=runc", "--network=none", image,
                     "/bin/busybox", "cat", "/made")
        assert (res.returncode, res.stdout) == (0, "kept\n"), docker.why(res)
    finally:
        docker("rm", "-f", name)
        docker("rmi", "-f", image)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_diff_shows_what_the_container_wrote(docker: Docker, runtime: str) -> None:
    name = f"pyv-diff-{runtime}"
    try:
        _written_container(docker, runtime, name)
        res = docker("diff", name)
        assert res.returncode == 0, docker.why(res)
        changes = set(res.stdout.splitlines())
        assert {"A /made", "C /etc", "A /etc/new"} <= changes, res.stdout
    finally:
        docker("rm", "-f", name)


def test_nothing_left_behind(docker: Docker) -> None:
    """After the runs above, no pyvisor container state and no sandbox process
    remain.  `docker run --rm` and `docker rm -f` return once the container is
    removed (the runtime's delete included), so nothing is waited for but the
    host processes' exit, which a killed process reaches asynchronously."""
    res = docker("ps", "-aq")
    assert (res.returncode, res.stdout.strip()) == (0, ""), docker.why(res)
    # Docker 20.10 gives every runc-style runtime --root EXEC_ROOT/runtime-runc/moby;
    # the runs above made it, so a missing directory is a wrong path, not a pass.
    state_root = docker.base / "exec" / "runtime-runc" / "moby"
    assert state_root.is_dir(), sorted(p.name for p in (docker.base / "exec").iterdir())
    assert os.listdir(state_root) == []
    deadline = time.monotonic() + 10  # SIGKILLed processes exit within milliseconds
    while True:
        leftovers = [p for p in os.listdir("/proc") if p.isdigit()
                     and str(docker.base) in _cmdline(p) and "sandbox-serve" in _cmdline(p)]
        if not leftovers or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert leftovers == []


def _cmdline(pid: str) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""
