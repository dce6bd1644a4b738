"""OCI runtime features on a running container: exec, pause/resume, events,
process.user / rlimits / noNewPrivileges, kill --all.

Bundles and helpers come from test_oci.py (a rootfs with the host's static
busybox).  A container here is started with ``run --detach`` and its init's
stdout goes to a file the test can read while the container runs.

Facts the tests rely on:

- A detached exec leaves a *waiter* process whose pid is in --pid-file and
  which exits with the exec'd process's status; its parent (the exec command)
  exits at once, so only a subreaper can reap it and see that status, as
  containerd's shim does.  ``SUBREAPER`` plays that part in a child process
  (never in pytest itself, which would collect other tests' orphans).
- Every process the runtime starts for a container (sandbox host, Sentry, exec
  commands and waiters) has the container id on its command line, so
  assert_no_process_left(cid) checks them all.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import PROGRAMS_DIR, RUNSC, assert_no_process_left
from test_oci import (  # noqa: F401 - fixtures, used by name
    TIMEOUT,
    _state,
    _wait_for,
    cid,
    make_bundle,
    runsc,
    runsc_bg,
    state_root,
)

from sentry.oci import control, control_server
from sentry.oci.state import process_start_time

pytestmark = [pytest.mark.root, pytest.mark.sandbox]

Start = Callable[..., tuple[Path, str, Path]]


def runsc_exec(root: Path, *args: str, stdin: str | None = None,
               timeout: float = TIMEOUT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(RUNSC), "--root", str(root), "exec", *args],
                          input=stdin if stdin is not None else "", capture_output=True,
                          text=True, timeout=timeout, start_new_session=True)


@pytest.fixture
def start(state_root: Path, cid: str, make_bundle: Callable[..., Path],  # noqa: F811
          tmp_path: Path) -> Iterator[Start]:
    """``start(args, edit=None, files=None, **process)`` runs a detached container
    whose init's stdout and stderr go to a file; ``files`` maps rootfs paths to
    host files copied there first.  Returns (root, id, output file)."""
    started: list[str] = []

    def run(args: list[str] | None = None, edit: Callable[[dict[str, Any]], None] | None = None,
            files: dict[str, Path] | None = None, **process: Any) -> tuple[Path, str, Path]:
        def writable(cfg: dict[str, Any]) -> None:
            cfg["root"]["readonly"] = False  # tests leave marks in /tmp
            if edit is not None:
                edit(cfg)

        b = make_bundle(args or ["sleep", "100"], writable, **process)
        for dest, src in (files or {}).items():
            shutil.copy(src, b / "rootfs" / dest)
        out = tmp_path / f"init-{len(started)}.out"
        with open(out, "w") as f:
            res = subprocess.run([sys.executable, str(RUNSC), "--root", str(state_root), "run",
                                  "--detach", "--bundle", str(b), cid],
                                 stdin=subprocess.DEVNULL, stdout=f, stderr=f, timeout=TIMEOUT,
                                 start_new_session=True)
        assert res.returncode == 0, out.read_text()
        started.append(cid)
        return state_root, cid, out

    yield run
    for c in started:
        runsc(state_root, "delete", "--force", c)
        assert_no_process_left(c, grace=5.0)


def _one_line_error(res: subprocess.CompletedProcess[str]) -> str:
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert "Traceback" not in res.stderr
    return res.stderr


# -- exec ----------------------------------------------------------------------


def test_exec_prints_and_exits_zero(start: Start) -> None:
    root, name, _ = start()
    res = runsc_exec(root, name, "/bin/busybox", "echo", "hi")
    assert (res.returncode, res.stdout, res.stderr) == (0, "hi\n", "")


@pytest.mark.parametrize("script,code", [("exit 7", 7), ("kill -9 $$", 137), ("true", 0)])
def test_exec_exit_status(start: Start, script: str, code: int) -> None:
    root, name, _ = start()
    res = runsc_exec(root, name, "sh", "-c", script)
    assert res.returncode == code, res.stderr


def test_exec_stdin_stdout_stderr(start: Start) -> None:
    root, name, _ = start()
    res = runsc_exec(root, name, "sh", "-c", "read x; echo got $x; echo err >&2",
                     stdin="hello\n")
    assert (res.returncode, res.stdout, res.stderr) == (0, "got hello\n", "err\n")


def test_exec_process_is_its_own_session(start: Start) -> None:
    """gVisor's exec: no parent in the container, its own session and group."""
    root, name, _ = start()
    res = runsc_exec(root, name, "sh", "-c",
                     "echo $PPID; cut -d' ' -f5,6 /proc/self/stat; echo $$")
    ppid, pgid_sid, pid = res.stdout.split("\n")[:3]
    assert res.returncode == 0, res.stderr
    assert ppid == "0" and pgid_sid == f"{pid} {pid}" and pid != "1", res.stdout


def test_exec_flags_env_cwd_user(start: Start) -> None:
    root, name, _ = start(env=["PATH=/bin", "A=1"])
    res = runsc_exec(root, "--cwd", "/tmp", "-e", "B=2", "--user", "7:8", "-g", "9",
                     name, "sh", "-c", 'echo "$A $B $(pwd) $(busybox id)"')
    assert (res.returncode, res.stdout) == (0, "1 2 /tmp uid=7 gid=8 groups=9\n"), res.stderr


def test_exec_process_json(start: Start, tmp_path: Path) -> None:
    root, name, _ = start()
    spec = {"args": ["sh", "-c", "echo $X; exit 3"], "env": ["X=from-json"], "cwd": "/"}
    (tmp_path / "p.json").write_text(json.dumps(spec))
    res = runsc_exec(root, "--process", str(tmp_path / "p.json"), name)
    assert (res.returncode, res.stdout) == (3, "from-json\n"), res.stderr


@pytest.mark.parametrize("content,field", [
    ('{"args": "sh"}', "process.args"),
    ('{"args": ["sh"], "cwd": "tmp"}', "process.cwd"),
    ('{"args": ["sh"], "user": {"uid": -1}}', "process.user.uid"),
    ('{"args": ["sh"], "rlimits": [{"type": "RLIMIT_NOPE", "soft": 1, "hard": 1}]}',
     "process.rlimits[0].type"),
    ("{not json", "invalid JSON"),
])
def test_exec_bad_process_json(start: Start, tmp_path: Path, content: str, field: str) -> None:
    root, name, _ = start()
    (tmp_path / "p.json").write_text(content)
    res = runsc_exec(root, "--process", str(tmp_path / "p.json"), name)
    assert res.returncode == 1
    assert field in _one_line_error(res)


def test_exec_missing_program(start: Start) -> None:
    root, name, _ = start()
    res = runsc_exec(root, name, "no-such-program")
    assert res.returncode == 127
    assert 'exec: "no-such-program": executable file not found' in _one_line_error(res)
    assert runsc_exec(root, name, "true").returncode == 0, "the container is unharmed"


def test_exec_tty_without_a_terminal_fails_cleanly(start: Start) -> None:
    root, name, _ = start()
    res = runsc_exec(root, "--tty", name, "sh")
    assert res.returncode == 1 and "tty" in _one_line_error(res)


def test_exec_into_created_or_stopped_container_fails(
        state_root: Path, cid: str, make_bundle: Callable[..., Path],  # noqa: F811
        tmp_path: Path) -> None:
    b = make_bundle(["sh", "-c", "exit 0"])
    with open(tmp_path / "out", "w") as f:
        res = subprocess.run([sys.executable, str(RUNSC), "--root", str(state_root), "create",
                              "--bundle", str(b), cid], stdin=subprocess.DEVNULL, stdout=f,
                             stderr=f, timeout=TIMEOUT, start_new_session=True)
    assert res.returncode == 0
    try:
        created = runsc_exec(state_root, cid, "true")
        assert created.returncode == 1 and "created" in _one_line_error(created)
        assert runsc(state_root, "start", cid).returncode == 0
        assert _wait_for(lambda: _state(state_root, cid)["status"] == "stopped", 20)
        stopped = runsc_exec(state_root, cid, "true")
        assert stopped.returncode == 1 and "stopped" in _one_line_error(stopped)
    finally:
        runsc(state_root, "delete", "--force", cid)
    assert_no_process_left(cid)
    missing = runsc_exec(state_root, cid, "true")
    assert missing.returncode == 1 and "does not exist" in _one_line_error(missing)


def test_exec_shows_in_ps(start: Start, tmp_path: Path) -> None:
    root, name, _ = start()
    with open(tmp_path / "exec.out", "w") as f:
        res = subprocess.run([sys.executable, str(RUNSC), "--root", str(root), "exec",
                              "--detach", name, "/bin/busybox", "sleep", "77"],
                             stdin=subprocess.DEVNULL, stdout=f, stderr=f, timeout=TIMEOUT,
                             start_new_session=True)
    assert res.returncode == 0
    rows = [line.split(None, 2) for line in runsc(root, "ps", name).stdout.splitlines()[1:]]
    assert ["0", "/bin/busybox sleep 77"] in [r[1:] for r in rows], rows
    assert [r[0] for r in rows] == ["1", "2"]


SUBREAPER = r"""
import ctypes, os, subprocess, sys
ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
argv, pid_file, out = sys.argv[1:-2], sys.argv[-2], sys.argv[-1]
with open(out, "w") as f:
    rc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=f, stderr=f).returncode
print("exec", rc, flush=True)
if rc == 0:
    pid = int(open(pid_file).read())
    _, status = os.waitpid(pid, 0)  # the waiter is ours now, as it is a shim's
    print("waiter", os.waitstatus_to_exitcode(status), flush=True)
"""


def test_exec_detach_pid_file_is_the_process_lifetime(start: Start, tmp_path: Path) -> None:
    root, name, _ = start()
    pid_file = tmp_path / "exec.pid"
    argv = [sys.executable, str(RUNSC), "--root", str(root), "exec", "--detach", "--pid-file",
            str(pid_file), name, "sh", "-c",
            "echo started; while [ ! -e /tmp/go ]; do sleep 0.05; done; exit 5"]
    shim = subprocess.Popen([sys.executable, "-c", SUBREAPER, *argv, str(pid_file),
                             str(tmp_path / "exec.out")], stdout=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        assert _wait_for(pid_file.exists, TIMEOUT), "the pid file is written"
        pid = int(pid_file.read_text())
        assert _wait_for(lambda: "started" in (tmp_path / "exec.out").read_text(), TIMEOUT)
        # Alive now, and (below) it reports the process's own exit status 5,
        # which it can only have if it lived until the process ended.
        assert process_start_time(pid) is not None, "the waiter lives while the process does"
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
        assert name.encode() in cmd and b"exec" in cmd
        assert runsc_exec(root, name, "/bin/busybox", "touch", "/tmp/go").returncode == 0
        out, _ = shim.communicate(timeout=TIMEOUT)
    finally:
        if shim.poll() is None:
            shim.kill()
            shim.wait(5)
    assert out.split("\n")[:2] == ["exec 0", "waiter 5"], out


def test_signals_to_the_waiter_reach_the_process(start: Start, tmp_path: Path) -> None:
    """A shim signals an exec through the pid in --pid-file (the waiter)."""
    root, name, _ = start()
    pid_file = tmp_path / "exec.pid"
    res = runsc_bg(root, "exec", "--detach", "--pid-file", str(pid_file), name,
                   "/bin/busybox", "sleep", "99")
    assert res.returncode == 0, res.stderr
    pid = int(pid_file.read_text())
    assert "sleep 99" in runsc(root, "ps", name).stdout
    os.kill(pid, signal.SIGTERM)
    assert _wait_for(lambda: "sleep 99" not in runsc(root, "ps", name).stdout, TIMEOUT)
    assert _wait_for(lambda: process_start_time(pid) is None, TIMEOUT), "the waiter ended"


def test_exec_detach_error_leaves_nothing(start: Start, tmp_path: Path) -> None:
    root, name, _ = start()
    pid_file = tmp_path / "exec.pid"
    res = runsc_exec(root, "--detach", "--pid-file", str(pid_file), name, "nope")
    assert res.returncode == 127 and "executable file not found" in _one_line_error(res)
    assert not pid_file.exists()
    assert len(runsc(root, "ps", name).stdout.splitlines()) == 2, "a header and the init"


@contextlib.contextmanager
def _exec_sleep_100(root: Path, name: str) -> Iterator[subprocess.Popen[bytes]]:
    """A foreground `exec ... sleep 100`, running once this yields it (the
    container's ps lists it); its status is the test's.  Killed if still there."""
    exec_cmd = subprocess.Popen([sys.executable, str(RUNSC), "--root", str(root), "exec", name,
                                 "/bin/busybox", "sleep", "100"], stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
    try:
        assert _wait_for(lambda: "sleep 100" in runsc(root, "ps", name).stdout, TIMEOUT)
        yield exec_cmd
    finally:
        if exec_cmd.poll() is None:
            exec_cmd.kill()
            exec_cmd.wait(5)


def test_exec_killed_with_the_container(start: Start, tmp_path: Path) -> None:
    root, name, _ = start(["sh", "-c", "while [ ! -e /tmp/end ]; do sleep 0.05; done"])
    with _exec_sleep_100(root, name) as exec_cmd:
        assert runsc_exec(root, name, "/bin/busybox", "touch", "/tmp/end").returncode == 0
        assert exec_cmd.wait(TIMEOUT) == 128 + signal.SIGKILL
    assert json.loads(runsc(root, "wait", name).stdout)["exitStatus"] == 0


# -- pause / resume ------------------------------------------------------------------

COUNTER = "i=0; while :; do i=$((i+1)); echo $i; sleep 0.02; done"


def _lines(path: Path) -> int:
    return path.read_text().count("\n")


def test_pause_freezes_and_resume_continues(start: Start) -> None:
    root, name, out = start(["sh", "-c", COUNTER])
    assert _wait_for(lambda: _lines(out) >= 3, TIMEOUT), "the counter runs"
    res = runsc(root, "pause", name)
    assert res.returncode == 0, res.stderr
    assert _state(root, name)["status"] == "paused"
    # The kernel holds each task before it next runs application code, so a
    # write in flight at the pause may still land: one line at most.  That
    # nothing more runs can only be seen over a window: 1 s is 50 periods of
    # the counter, and a loaded machine only makes the window stricter.
    frozen = _lines(out)
    time.sleep(1.0)
    assert _lines(out) <= frozen + 1, "nothing runs while paused"
    frozen = _lines(out)
    again = runsc(root, "pause", name)
    assert again.returncode == 1 and "paused" in _one_line_error(again)
    refused = runsc_exec(root, name, "true")
    assert refused.returncode == 1 and "paused" in _one_line_error(refused)
    res = runsc(root, "resume", name)
    assert res.returncode == 0, res.stderr
    assert _state(root, name)["status"] == "running"
    assert _wait_for(lambda: _lines(out) > frozen + 2, TIMEOUT), "the counter goes on"
    assert runsc(root, "resume", name).returncode == 1, "not paused any more"


def test_kill_and_delete_a_paused_container(start: Start) -> None:
    root, name, out = start(["sh", "-c", COUNTER])
    assert _wait_for(lambda: _lines(out) >= 1, TIMEOUT)
    assert runsc(root, "pause", name).returncode == 0
    res = runsc(root, "delete", name)
    assert res.returncode == 1 and "paused" in _one_line_error(res)
    assert runsc(root, "kill", name, "9").returncode == 0
    res = runsc(root, "wait", name)
    assert json.loads(res.stdout)["exitStatus"] == 137
    assert _wait_for(lambda: _state(root, name)["status"] == "stopped")


def test_delete_force_on_paused(start: Start) -> None:
    root, name, _ = start()
    assert runsc(root, "pause", name).returncode == 0
    res = runsc(root, "delete", "--force", name)
    assert res.returncode == 0, res.stderr
    assert not (root / name).exists()
    assert_no_process_left(name)


def test_pause_needs_a_running_container(state_root: Path, cid: str) -> None:  # noqa: F811
    res = runsc(state_root, "pause", cid)
    assert res.returncode == 1 and "does not exist" in _one_line_error(res)


# -- events ------------------------------------------------------------------------------


def test_events_stats_once(start: Start) -> None:
    root, name, _ = start()
    res = runsc(root, "events", "--stats", name)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert len(lines) == 1
    ev = json.loads(lines[0])
    assert ev["type"] == "stats" and ev["id"] == name
    data = ev["data"]
    assert data["pids"]["current"] >= 1
    assert data["memory"]["usage"]["usage"] > 0
    cpu = data["cpu"]["usage"]
    assert cpu["total"] == cpu["user"] + cpu["kernel"] and cpu["total"] > 0


def test_events_pids_count_exec_processes(start: Start) -> None:
    root, name, _ = start()
    before = json.loads(runsc(root, "events", "--stats", name).stdout)["data"]["pids"]["current"]
    res = runsc_bg(root, "exec", "--detach", name, "/bin/busybox", "sleep", "100")
    assert res.returncode == 0, res.stderr
    now = json.loads(runsc(root, "events", "--stats", name).stdout)["data"]["pids"]["current"]
    assert now == before + 1


def test_events_stream_ends_with_the_container(start: Start) -> None:
    root, name, _ = start()
    proc = subprocess.Popen([sys.executable, str(RUNSC), "--root", str(root), "events",
                             "--interval", "200ms", name], stdout=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        first = proc.stdout.readline() if proc.stdout else ""
        assert json.loads(first)["type"] == "stats"
        assert runsc(root, "kill", name, "KILL").returncode == 0
        out, _ = proc.communicate(timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    assert proc.returncode == 0
    assert all(json.loads(line)["id"] == name for line in out.splitlines())


@pytest.mark.parametrize("interval", ["5", "fast", "-1s"])
def test_events_bad_interval(start: Start, interval: str) -> None:
    root, name, _ = start()
    res = runsc(root, "events", "--interval", interval, name)
    assert res.returncode == 1 and "duration" in _one_line_error(res)


# -- process.user, rlimits, noNewPrivileges ---------------------------------------------------


@pytest.fixture(scope="module")
def identity_program(gcc: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/programs/oci_identity.c, static (the rootfs has no libc)."""
    out = tmp_path_factory.mktemp("identity") / "oci_identity"
    res = subprocess.run([gcc, "-static", "-O1", "-Wall", "-Wextra", "-o", str(out),
                          str(PROGRAMS_DIR / "oci_identity.c")], capture_output=True,
                         text=True, timeout=120)
    if res.returncode != 0:
        pytest.skip(f"gcc cannot build a static program here: {res.stderr.strip()[-200:]}")
    return out


def test_process_user_rlimits_nnp(start: Start, identity_program: Path) -> None:
    user = {"uid": 1000, "gid": 1000, "additionalGids": [20, 5]}
    limits = [{"type": "RLIMIT_NOFILE", "soft": 123, "hard": 456}]
    root, name, out = start(["sh", "-c", "/bin/oci_identity; exec sleep 100"],
                           files={"bin/oci_identity": identity_program},
                           user=user, rlimits=limits, noNewPrivileges=True)
    want = "uid=1000 gid=1000 euid=1000 egid=1000\ngroups(2)=5,20\nnofile=123/456\n" \
           "no_new_privs=1\n"
    assert _wait_for(lambda: out.read_text() == want, TIMEOUT), out.read_text()
    res = runsc_exec(root, name, "/bin/oci_identity")
    assert (res.returncode, res.stdout) == (0, want), res.stderr
    res = runsc_exec(root, name, "sh", "-c", "busybox id; ulimit -n; ulimit -Hn; "
                     "grep -E '^(Uid|Gid|Groups|NoNewPrivs)' /proc/self/status")
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines() == [
        "uid=1000 gid=1000 groups=5,20", "123", "456", "Uid:\t1000\t1000\t1000\t1000",
        # Linux ends the Groups line with a space (task_state's seq_putc).
        "Gid:\t1000\t1000\t1000\t1000", "Groups:\t5 20 ", "NoNewPrivs:\t1"]


def test_unset_nofile_is_the_runtimes_own(state_root: Path, cid: str,  # noqa: F811
                                          make_bundle: Callable[..., Path]) -> None:  # noqa: F811
    """No process.rlimits: NOFILE (and FSIZE) are the runtime's own, as a runc
    container inherits them and gVisor copies them, not Linux's 1024/4096."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = [str(min(soft, 1 << 20)), str(min(hard, 1 << 20))]
    if want == ["1024", "4096"]:
        pytest.skip("this host's NOFILE is Linux's default: the test could not tell")
    b = make_bundle(["sh", "-c", "ulimit -n; ulimit -Hn"], rlimits=[])  # spec's template sets one
    res = runsc(state_root, "run", "--bundle", str(b), cid)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == want


def test_unknown_rlimit_fails_create(state_root: Path, cid: str,  # noqa: F811
                                     make_bundle: Callable[..., Path]) -> None:  # noqa: F811
    b = make_bundle(["true"], rlimits=[{"type": "RLIMIT_BOGUS", "soft": 1, "hard": 1}])
    res = runsc(state_root, "run", "--bundle", str(b), cid)
    assert res.returncode == 1 and "process.rlimits[0].type" in _one_line_error(res)
    assert not (state_root / cid).exists()
    assert_no_process_left(cid)


# -- kill --all ------------------------------------------------------------------------------


@pytest.mark.parametrize("sig", ["SIGTERM", "TERM", "15"])
def test_kill_all_reaches_exec_processes(start: Start, sig: str, tmp_path: Path) -> None:
    root, name, _ = start(["sh", "-c", "trap 'exit 9' TERM; while :; do sleep 0.05; done"])
    with _exec_sleep_100(root, name) as exec_cmd:
        assert runsc(root, "kill", "--all", name, sig).returncode == 0
        assert exec_cmd.wait(TIMEOUT) == 128 + signal.SIGTERM
    assert json.loads(runsc(root, "wait", name).stdout)["exitStatus"] == 9


# -- units (no sandbox) -------------------------------------------------------------


def test_control_passes_fds_and_leaks_none(tmp_path: Path) -> None:
    """SCM_RIGHTS ride on a request: the handler gets them as req["fds"], a
    client cannot forge that key, and fds the handler leaves are closed."""
    taken: list[int] = []

    def handler(req: dict[str, Any]) -> dict[str, Any]:
        if req["op"] == "take":
            taken.extend(control.take_fds(req))
        return {"ok": True, "fds": len(req.get("fds") or [])}

    path = str(tmp_path / "c.sock")
    server = control_server.ControlServer(path, handler)
    server.start()
    client = control.Client(path)
    r, w = os.pipe()
    r2, w2 = os.pipe()
    try:
        assert client.call({"op": "take"}, fds=[w])["fds"] == 0
        assert len(taken) == 1 and taken[0] != w
        os.write(taken[0], b"x")
        assert os.read(r, 1) == b"x", "the handler got our pipe"
        assert client.call({"op": "leave", "fds": [0, 1, 2]})["fds"] == 0, "forged key dropped"
        assert client.call({"op": "leave"}, fds=[w2])["fds"] == 1
        os.close(w2)
        ready, _, _ = select.select([r2], [], [], 5.0)
        assert ready and os.read(r2, 1) == b"", "the server closed the fd nobody took"
    finally:
        client.close()
        server.close()
        for fd in (r, w, r2, *taken):
            os.close(fd)


def test_confined_sentry_keeps_what_exec_needs() -> None:
    """exec's fds reach the confined Sentry over a socket it already has."""
    from sentry.confine_filters import FCNTL_CMDS, sentry_allowlist

    assert {"recvmsg", "sendmsg", "recvfrom", "sendto", "close"} <= set(sentry_allowlist())
    assert 0x406 in FCNTL_CMDS  # F_DUPFD_CLOEXEC
