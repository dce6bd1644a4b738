"""The OCI runtime commands (runsc.py create/start/state/kill/delete/run/...).

Each test gets its own ``--root`` state directory and its own bundle: a rootfs
holding the host's static busybox and a few applet symlinks, with a config.json
that ``runsc.py spec`` wrote and the test edited.

Facts the tests rely on:

- ``create`` leaves the sandbox host running with create's stdio, so its
  stdout must not be a pipe the test reads to EOF (that would wait for the
  container to exit): create's output goes to a file.
- The sandbox host and the Sentry it forks carry ``sandbox-serve ... ID`` on
  their command lines, so a unique container id finds every process a test
  started (helpers.assert_no_process_left); stubs and the Gofer die with the
  Sentry through PDEATHSIG.
- The Gofer channel's /dev/shm names start with "pyvisor-<host pid>-": the
  sandbox host's, the container's pid (shm/layout.py).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgpack
import pytest
from helpers import RUNSC, assert_no_process_left, processes_mentioning

from sentry.oci import bundle, control, control_server, lifecycle, state

pytestmark = [pytest.mark.root, pytest.mark.sandbox]
TIMEOUT = 30.0
APPLETS = ("sh", "echo", "true", "sleep", "cat")


def _need_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("the sandbox needs root (namespaces, seccomp)")


@pytest.fixture
def state_root(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def cid() -> str:
    return f"oci-test-{uuid.uuid4().hex[:12]}"


def runsc(root: Path, *args: str, timeout: float = TIMEOUT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(RUNSC), "--root", str(root), *args],
                          stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=timeout, start_new_session=True)


def runsc_bg(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """For create and run --detach: the sandbox host keeps their stdio, so it goes
    to files (a pipe would not see EOF until the container exits)."""
    with (tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err):
        proc = subprocess.run([sys.executable, str(RUNSC), "--root", str(root), *args],
                              stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                              timeout=TIMEOUT, start_new_session=True)
        out.seek(0)
        err.seek(0)
        return subprocess.CompletedProcess(proc.args, proc.returncode, out.read(), err.read())


@pytest.fixture
def make_bundle(tmp_path: Path, busybox: Path) -> Callable[..., Path]:
    """``make_bundle(args, **process_overrides)``: a fresh bundle directory."""
    _need_root()
    counter = iter(range(1000))

    def make(args: list[str] | None, edit: Callable[[dict[str, Any]], None] | None = None,
             **process: Any) -> Path:
        b = tmp_path / f"bundle{next(counter)}"
        (b / "rootfs" / "bin").mkdir(parents=True)
        (b / "rootfs/bin/busybox").write_bytes(busybox.read_bytes())
        os.chmod(b / "rootfs/bin/busybox", 0o755)
        for name in APPLETS:
            (b / "rootfs/bin" / name).symlink_to("busybox")
        res = runsc(tmp_path / "unused-root", "spec", "--bundle", str(b))
        assert res.returncode == 0, res.stderr
        cfg = json.loads((b / "config.json").read_text())
        if args is None:
            del cfg["process"]["args"]
        else:
            cfg["process"]["args"] = args
        cfg["process"].update(process)
        if edit is not None:
            edit(cfg)
        (b / "config.json").write_text(json.dumps(cfg))
        return b

    return make


def _host_pids(cid: str) -> list[int]:
    return [pid for pid, cmd in processes_mentioning(cid) if "sandbox-serve" in cmd]


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_bytes()
            except OSError:
                continue
            if int(stat[stat.rfind(b")") + 2:].split()[1]) == pid:
                out.append(int(entry.name))
    return out


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return False
    return stat[stat.rfind(b")") + 2:][:1] != b"Z"


def _wait_for(pred: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.05)
    return pred()


def _state(root: Path, cid: str) -> dict[str, Any]:
    res = runsc(root, "state", cid)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


@pytest.fixture
def created(state_root: Path, cid: str, make_bundle: Callable[..., Path],
            tmp_path: Path) -> Iterator[tuple[Path, str, int]]:
    """A created (not started) `sleep 30` container; forcibly deleted afterwards."""
    b = make_bundle(["sleep", "30"])
    pid_file = tmp_path / "pid"
    res = runsc_bg(state_root, "create", "--bundle", str(b), "--pid-file", str(pid_file), cid)
    assert res.returncode == 0, res.stderr
    yield state_root, cid, int(pid_file.read_text())
    runsc(state_root, "delete", "--force", cid)
    assert_no_process_left(cid)


# -- whole-container behaviour -------------------------------------------------


def test_run_prints_and_exits_zero(state_root: Path, cid: str,
                                   make_bundle: Callable[..., Path]) -> None:
    b = make_bundle(["echo", "hi"])
    res = runsc(state_root, "run", "--bundle", str(b), cid)
    assert (res.returncode, res.stdout, res.stderr) == (0, "hi\n", "")
    assert not (state_root / cid).exists(), "run (not detached) deletes the container"
    assert_no_process_left(cid)


@pytest.mark.parametrize("script,code", [("exit 3", 3), ("sh -c 'kill -9 $$'; exit $?", 137),
                                         ("true", 0)])
def test_run_exit_status(state_root: Path, cid: str, make_bundle: Callable[..., Path],
                         script: str, code: int) -> None:
    b = make_bundle(["sh", "-c", script])
    res = runsc(state_root, "run", "--bundle", str(b), cid)
    assert res.returncode == code, res.stderr


def test_run_env_cwd_hostname(state_root: Path, cid: str,
                              make_bundle: Callable[..., Path]) -> None:
    def edit(cfg: dict[str, Any]) -> None:
        cfg["hostname"] = "box1"

    b = make_bundle(["sh", "-c", 'echo "$FOO $(pwd) $(busybox hostname)"'], edit,
                    env=["PATH=/bin", "FOO=bar"], cwd="/bin")
    res = runsc(state_root, "run", "--bundle", str(b), cid)
    assert (res.returncode, res.stdout) == (0, "bar /bin box1\n"), res.stderr


def test_lifecycle_create_start_kill_wait_delete(
        created: tuple[Path, str, int]) -> None:
    root, cid, pid = created
    st = _state(root, cid)
    assert st["status"] == "created"
    assert st["pid"] == pid and os.path.exists(f"/proc/{pid}")
    assert st["id"] == cid and st["ociVersion"].startswith("1.")
    assert _host_pids(cid), "the sandbox host is alive"
    listed = json.loads(runsc(root, "list", "--format", "json").stdout)
    assert [(c["id"], c["status"], c["pid"]) for c in listed] == [(cid, "created", pid)]

    res = runsc(root, "start", cid)
    assert res.returncode == 0, res.stderr
    assert _state(root, cid)["status"] == "running"
    again = runsc(root, "start", cid)
    assert again.returncode == 1 and "running" in again.stderr

    # `sleep` as the container's init has no SIGTERM handler: Linux (and runc,
    # gVisor) drop the signal; SIGKILL from outside the container still kills.
    # The kernel drops it as it is sent (Kernel._init_ignores), before `kill`
    # returns; the exit status then says which signal ended the init: 137,
    # not 143 (test_init_signals_as_runc_runs_them checks the drop against runc).
    res = runsc(root, "kill", cid, "TERM")
    assert res.returncode == 0, res.stderr
    assert _state(root, cid)["status"] == "running"
    assert runsc(root, "kill", cid, "KILL").returncode == 0
    res = runsc(root, "wait", cid)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout) == {"id": cid, "exitStatus": 128 + signal.SIGKILL}
    assert _wait_for(lambda: _state(root, cid)["status"] == "stopped")
    assert_no_process_left(cid)

    res = runsc(root, "delete", cid)
    assert res.returncode == 0, res.stderr
    assert not (root / cid).exists()
    assert runsc(root, "state", cid).returncode == 1


def test_delete_running_needs_force(created: tuple[Path, str, int]) -> None:
    root, cid, pid = created
    assert runsc(root, "start", cid).returncode == 0
    res = runsc(root, "delete", cid)
    assert res.returncode == 1
    assert "not stopped" in res.stderr and len(res.stderr.splitlines()) == 1
    assert _state(root, cid)["status"] == "running"
    res = runsc(root, "delete", "--force", cid)
    assert res.returncode == 0, res.stderr
    assert not (root / cid).exists()
    assert_no_process_left(cid)
    assert runsc(root, "delete", "--force", cid).returncode == 0, "missing + force is fine"


def test_delete_created_container_without_force(created: tuple[Path, str, int]) -> None:
    root, cid, _ = created
    res = runsc(root, "delete", cid)  # runc deletes a created container without --force
    assert res.returncode == 0, res.stderr
    assert not (root / cid).exists()
    assert_no_process_left(cid)


def test_kill_signal_numbers_and_names(created: tuple[Path, str, int]) -> None:
    root, cid, _ = created
    assert runsc(root, "start", cid).returncode == 0
    bad = runsc(root, "kill", cid, "NOSUCHSIG")
    assert bad.returncode == 1 and "invalid signal" in bad.stderr
    assert runsc(root, "kill", cid, "9").returncode == 0
    res = runsc(root, "wait", cid)
    assert json.loads(res.stdout)["exitStatus"] == 137
    res = runsc(root, "kill", cid, "TERM")
    assert res.returncode == 1 and "not running" in res.stderr


def test_sigkill_of_sandbox_host_cleans_up(created: tuple[Path, str, int]) -> None:
    root, cid, pid = created
    assert runsc(root, "start", cid).returncode == 0
    sentry = _children(pid)
    assert sentry, "the Sentry is the host's child"
    os.kill(pid, signal.SIGKILL)
    assert _wait_for(lambda: _state(root, cid)["status"] == "stopped")
    assert_no_process_left(cid, grace=5.0)
    res = runsc(root, "delete", cid)
    assert res.returncode == 0, res.stderr
    assert not (root / cid).exists(), "no state dir, no socket left"
    left = [n for n in os.listdir("/dev/shm")
            if any(n.startswith((f"pyvisor-{s}-", f"sem.pyvisor-{s}-")) for s in [pid, *sentry])]
    assert left == []


def test_sigkill_of_the_sentry_stops_the_container(created: tuple[Path, str, int]) -> None:
    """The Sentry dies, not the host: the host sees it, the state says stopped
    (exit 137), and delete leaves no process, state dir or /dev/shm name."""
    root, cid, pid = created
    assert runsc(root, "start", cid).returncode == 0
    sentry = _children(pid)
    assert sentry, "the Sentry is the host's child"
    os.kill(sentry[0], signal.SIGKILL)
    assert _wait_for(lambda: _state(root, cid)["status"] == "stopped")
    assert _wait_for(lambda: not _alive(pid)), "the host exits with its Sentry"
    res = runsc(root, "delete", cid)
    assert res.returncode == 0, res.stderr
    assert_no_process_left(cid, grace=5.0)
    assert not (root / cid).exists(), "no state dir, no socket left"
    left = [n for n in os.listdir("/dev/shm")
            if any(n.startswith((f"pyvisor-{s}-", f"sem.pyvisor-{s}-")) for s in [pid, *sentry])]
    assert left == []


def test_host_forwards_signals_to_the_container(state_root: Path, cid: str,
                                                make_bundle: Callable[..., Path],
                                                tmp_path: Path) -> None:
    b = make_bundle(["sh", "-c", 'trap "exit 4" TERM; while :; do sleep 0.05; done'])
    pid_file = tmp_path / "pid"
    res = runsc_bg(state_root, "create", "--bundle", str(b), "--pid-file", str(pid_file), cid)
    assert res.returncode == 0, res.stderr
    try:
        assert runsc(state_root, "start", cid).returncode == 0
        assert _wait_for(lambda: "sleep 0.05" in runsc(state_root, "ps", cid).stdout)
        # what a shim does with the pid from --pid-file; the init's handler runs
        os.kill(int(pid_file.read_text()), signal.SIGTERM)
        res = runsc(state_root, "wait", cid)
        assert json.loads(res.stdout)["exitStatus"] == 4
    finally:
        runsc(state_root, "delete", "--force", cid)
    assert_no_process_left(cid)


def test_init_ignores_its_own_unhandled_signals(state_root: Path, cid: str,
                                                make_bundle: Callable[..., Path]) -> None:
    """As runc runs it (checked by hand: `survived`, status 0): a container's
    init cannot be killed from inside, not even by SIGKILL; a child can."""
    b = make_bundle(["sh", "-c", "kill -TERM $$; kill -9 $$; kill -9 1; echo survived"])
    res = runsc(state_root, "run", "--bundle", str(b), cid)
    assert (res.returncode, res.stdout) == (0, "survived\n"), res.stderr


@pytest.mark.parametrize("script", [
    "kill -TERM $$; kill -9 $$; kill -9 1; echo survived",
    "sh -c 'kill -9 $$'; echo child $?",
    "trap 'echo trapped' TERM; kill -TERM $$; echo after",
    "kill -STOP $$; echo not stopped",
])
def test_init_signals_as_runc_runs_them(state_root: Path, busybox: Path, tmp_path: Path,
                                        script: str) -> None:
    """Differential against runc on runc's own default bundle: what signals do
    to a container's init (Kernel._init_ignores)."""
    _need_root()
    runc = shutil.which("runc")
    if runc is None:
        pytest.skip("runc is not installed (apt-get install -y runc)")
    b = tmp_path / "bundle"
    (b / "rootfs" / "bin").mkdir(parents=True)
    shutil.copy(busybox, b / "rootfs/bin/busybox")
    (b / "rootfs/bin/sh").symlink_to("busybox")
    subprocess.run([runc, "spec", "--bundle", str(b)], check=True, timeout=30)
    cfg = json.loads((b / "config.json").read_text())
    cfg["process"].update(args=["sh", "-c", script], terminal=False)
    (b / "config.json").write_text(json.dumps(cfg))
    name = f"runc-diff-{uuid.uuid4().hex[:8]}"
    native = subprocess.run([runc, "--root", str(tmp_path / "runc-root"), "run", "--bundle",
                             str(b), name], stdin=subprocess.DEVNULL, capture_output=True,
                            text=True, timeout=TIMEOUT)
    ours = runsc(state_root, "run", "--bundle", str(b), name)
    assert (ours.returncode, ours.stdout) == (native.returncode, native.stdout), (
        native.stderr, ours.stderr)
    assert native.stdout, "the script printed something under runc"


def test_kill_reaches_the_init_signal_handler(state_root: Path, cid: str,
                                              make_bundle: Callable[..., Path]) -> None:
    script = 'trap "echo got TERM; exit 4" TERM; while :; do sleep 0.05; done'
    b = make_bundle(["sh", "-c", script])
    res = runsc_bg(state_root, "run", "--detach", "--bundle", str(b), cid)
    assert res.returncode == 0, res.stderr
    # A `sleep` child means the shell is past `trap` and inside the loop.
    assert _wait_for(lambda: "sleep 0.05" in runsc(state_root, "ps", cid).stdout)
    assert runsc(state_root, "kill", cid, "SIGTERM").returncode == 0
    assert json.loads(runsc(state_root, "wait", cid).stdout)["exitStatus"] == 4
    assert runsc(state_root, "delete", cid).returncode == 0
    assert_no_process_left(cid)


def test_ps_lists_the_init(created: tuple[Path, str, int]) -> None:
    root, cid, pid = created
    assert runsc(root, "start", cid).returncode == 0
    table = runsc(root, "ps", cid).stdout  # the sandbox's view
    assert "sleep 30" in table
    # json: the host pids that make up the container, as runc gives (docker
    # top looks them up in the host's ps): the sandbox host and all below it.
    res = runsc(root, "ps", "--format", "json", cid)
    assert res.returncode == 0, res.stderr
    pids = json.loads(res.stdout)
    assert pid in pids and 1 not in pids
    sentry = _children(pid)
    assert sentry and set(sentry) <= set(pids)
    assert set(_children(sentry[0])) <= set(pids)
    assert len(pids) >= 4, "host, Sentry, Gofer, the init's stub"


def test_duplicate_id_rejected(created: tuple[Path, str, int],
                               make_bundle: Callable[..., Path]) -> None:
    root, cid, pid = created
    res = runsc_bg(root, "create", "--bundle", str(make_bundle(["true"])), cid)
    assert res.returncode == 1 and "already exists" in res.stderr
    assert _state(root, cid)["pid"] == pid, "the first container is untouched"


def test_run_detach_then_wait(state_root: Path, cid: str,
                              make_bundle: Callable[..., Path], tmp_path: Path) -> None:
    b = make_bundle(["sh", "-c", "sleep 0.2; exit 5"])
    res = runsc_bg(state_root, "run", "--detach", "--bundle", str(b), cid)
    assert res.returncode == 0, res.stderr
    res = runsc(state_root, "wait", cid)
    assert json.loads(res.stdout)["exitStatus"] == 5
    assert _wait_for(lambda: _state(state_root, cid)["status"] == "stopped")
    assert runsc(state_root, "delete", cid).returncode == 0
    assert_no_process_left(cid)


def test_hooks_get_state_on_stdin(state_root: Path, cid: str,
                                  make_bundle: Callable[..., Path], tmp_path: Path) -> None:
    log = tmp_path / "hooks.log"

    def hook(kind: str) -> dict[str, Any]:
        return {"path": "/bin/sh", "args": ["sh", "-c", f'read s; echo "{kind} $s" >> {log}']}

    def edit(cfg: dict[str, Any]) -> None:
        cfg["hooks"] = {k: [hook(k)] for k in ("prestart", "createRuntime", "poststart",
                                               "poststop")}

    b = make_bundle(["true"], edit)
    res = runsc(state_root, "run", "--bundle", str(b), cid)
    assert res.returncode == 0, res.stderr
    lines = log.read_text().splitlines()
    kinds = [line.split(" ", 1)[0] for line in lines]
    assert kinds == ["prestart", "createRuntime", "poststart", "poststop"]
    states = [json.loads(line.split(" ", 1)[1]) for line in lines]
    assert all(s["id"] == cid and s["bundle"] == str(b) for s in states)
    assert [s["status"] for s in states] == ["creating", "creating", "running", "stopped"]


def test_failing_prestart_hook_aborts_create(state_root: Path, cid: str,
                                             make_bundle: Callable[..., Path],
                                             tmp_path: Path) -> None:
    poststop = tmp_path / "poststop.log"

    def edit(cfg: dict[str, Any]) -> None:
        cfg["hooks"] = {"prestart": [{"path": "/bin/sh", "args": ["sh", "-c", "exit 7"]}],
                        "poststop": [{"path": "/bin/sh",
                                      "args": ["sh", "-c", f"cat > {poststop}"]}]}

    res = runsc_bg(state_root, "create", "--bundle", str(make_bundle(["true"], edit)), cid)
    assert res.returncode == 1 and "prestart hook #0" in res.stderr and "7" in res.stderr
    assert not (state_root / cid).exists()
    assert_no_process_left(cid)
    # the spec: a failed prestart hook stops the container and runs poststop
    assert json.loads(poststop.read_text())["status"] == "stopped"


# -- invalid input: one line, nothing left behind ------------------------------


def _drop_root(cfg: dict[str, Any]) -> None:
    cfg["root"]["path"] = "no-such-rootfs"


@pytest.mark.parametrize("kind,field", [
    ("missing-args", "process.args"),
    ("empty-args", "process.args"),
    ("relative-cwd", "process.cwd"),
    ("missing-root", "root.path"),
    ("bad-json", "invalid JSON"),
    ("bad-env", "process.env[0]"),
    ("bad-uid", "process.user.uid"),
    ("relative-mount", "mounts[0].destination"),
])
def test_invalid_bundle(state_root: Path, cid: str, make_bundle: Callable[..., Path],
                        kind: str, field: str) -> None:
    if kind == "missing-args":
        b = make_bundle(None)
    elif kind == "empty-args":
        b = make_bundle([])
    elif kind == "relative-cwd":
        b = make_bundle(["true"], cwd="tmp")
    elif kind == "missing-root":
        b = make_bundle(["true"], _drop_root)
    elif kind == "bad-env":
        b = make_bundle(["true"], env=["NOEQUALS"])
    elif kind == "bad-uid":
        b = make_bundle(["true"], user={"uid": -1, "gid": 0})
    elif kind == "relative-mount":
        b = make_bundle(["true"], lambda c: c.update(mounts=[{"destination": "proc"}]))
    else:
        b = make_bundle(["true"])
        (b / "config.json").write_text("{not json")
    for cmd in ("create", "run"):
        res = runsc_bg(state_root, cmd, "--bundle", str(b), cid)
        assert res.returncode == 1
        assert len(res.stderr.splitlines()) == 1, res.stderr
        assert field in res.stderr
        assert "Traceback" not in res.stderr
        assert not (state_root / cid).exists()
    assert_no_process_left(cid, grace=0.5)


def test_launch_error_at_create(state_root: Path, cid: str,
                                make_bundle: Callable[..., Path]) -> None:
    res = runsc_bg(state_root, "create", "--bundle", str(make_bundle(["no-such-program"])), cid)
    assert res.returncode == 1
    # runc's words: Docker's CLI maps "executable file not found" to status 127
    assert 'exec: "no-such-program": executable file not found in $PATH' in res.stderr
    assert len(res.stderr.splitlines()) == 1
    assert not (state_root / cid).exists()
    assert_no_process_left(cid)


@pytest.mark.parametrize("bad", ["../x", "a/b", "-x", ".hidden", ""])
def test_invalid_container_id(state_root: Path, make_bundle: Callable[..., Path],
                              bad: str) -> None:
    res = runsc_bg(state_root, "create", "--bundle", str(make_bundle(["true"])), "--", bad)
    assert res.returncode in (1, 2) and "Traceback" not in res.stderr
    assert not state_root.exists() or os.listdir(state_root) == []


def test_errors_go_to_json_log(state_root: Path, cid: str, tmp_path: Path) -> None:
    log = tmp_path / "log.json"
    res = subprocess.run([sys.executable, str(RUNSC), "--root", str(state_root), "--log",
                          str(log), "--log-format", "json", "state", cid],
                         capture_output=True, text=True, timeout=TIMEOUT)
    assert res.returncode == 1
    entry = json.loads(log.read_text().splitlines()[-1])
    assert entry["level"] == "error" and cid in entry["msg"]


# -- the control socket ----------------------------------------------------------


def _raw_exchange(path: str, data: bytes) -> list[dict[str, Any]]:
    """Send raw bytes, read every reply frame until the server closes or goes quiet."""
    replies = []
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(5)
        s.connect(path)
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        while True:
            try:
                reply = control.read_frame(s, 5)
            except (control.FrameError, OSError):
                break
            if reply is None:
                break
            replies.append(reply)
    return replies


def test_malformed_control_frames_do_not_hurt(created: tuple[Path, str, int]) -> None:
    root, cid, _ = created
    sock = str(root / cid / state.SOCKET_NAME)
    assert runsc(root, "start", cid).returncode == 0
    oversized = _raw_exchange(sock, struct.pack(">I", control.MAX_FRAME + 1) + b"x" * 64)
    assert len(oversized) == 1 and not oversized[0]["ok"] and "exceeds" in oversized[0]["error"]
    garbage = b"\xc1\xff\x00garbage"  # 0xc1 is never valid msgpack
    bad = _raw_exchange(sock, struct.pack(">I", len(garbage)) + garbage
                        + control.encode({"op": "state"}))
    assert not bad[0]["ok"] and "malformed" in bad[0]["error"]
    assert bad[1]["ok"] and bad[1]["state"]["status"] == "running", "stream stays usable"
    not_map = msgpack.packb([1, 2, 3])
    assert not _raw_exchange(sock, struct.pack(">I", len(not_map)) + not_map)[0]["ok"]
    assert not _raw_exchange(sock, control.encode({"op": "reboot"}))[0]["ok"]
    assert not _raw_exchange(sock, control.encode({"op": "kill", "signal": 999}))[0]["ok"]
    _raw_exchange(sock, os.urandom(4096))
    _raw_exchange(sock, b"\x00\x00")  # truncated header, then EOF
    assert _state(root, cid)["status"] == "running"
    assert control.request(sock, {"op": "state"})["state"]["id"] == cid


# -- units (no sandbox) -------------------------------------------------------------


def test_control_server_unit(tmp_path: Path) -> None:
    calls: list[dict[str, Any]] = []

    def handler(req: dict[str, Any]) -> dict[str, Any]:
        calls.append(req)
        if req["op"] == "boom":
            raise RuntimeError("handler bug")
        return {"ok": True, "echo": req.get("x")}

    long_dir = tmp_path / ("d" * 100)  # past sun_path: reached through /proc/self/fd
    long_dir.mkdir()
    path = str(long_dir / "c.sock")
    server = control_server.ControlServer(path, handler)
    server.start()
    try:
        assert control.request(path, {"op": "echo", "x": 5})["echo"] == 5
        with pytest.raises(control.ControlError, match="handler bug"):
            control.request(path, {"op": "boom"})
        with pytest.raises(control.ControlError, match="no op"):
            control.request(path, {"x": 1})
        assert control.request(path, {"op": "echo", "x": "y" * 1000})["echo"] == "y" * 1000
        assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    finally:
        server.close()
    assert not os.path.exists(path)
    with pytest.raises(control.ControlError, match="not running"):
        control.request(path, {"op": "echo"})


def test_encode_rejects_oversized_frame() -> None:
    with pytest.raises(control.FrameError):
        control.encode({"blob": b"x" * (control.MAX_FRAME + 1)})


@pytest.mark.parametrize("text,number", [
    ("TERM", 15), ("SIGTERM", 15), ("sigkill", 9), ("9", 9), ("HUP", 1),
    ("RTMIN", signal.SIGRTMIN), ("RTMIN+2", signal.SIGRTMIN + 2),
    ("SIGRTMAX-1", signal.SIGRTMAX - 1),
])
def test_parse_signal(text: str, number: int) -> None:
    assert lifecycle.parse_signal(text) == number


@pytest.mark.parametrize("text", ["0", "65", "BOGUS", "RTMAX+1", ""])
def test_parse_signal_rejects(text: str) -> None:
    with pytest.raises(lifecycle.OciError):
        lifecycle.parse_signal(text)


def _valid_config() -> dict[str, Any]:
    return bundle.default_spec(["sh"])


@pytest.mark.parametrize("mutate,field", [
    (lambda c: c.pop("ociVersion"), "ociVersion"),
    (lambda c: c.update(ociVersion="2.0.0"), "ociVersion"),
    (lambda c: c.pop("process"), "process"),
    (lambda c: c["process"].update(args="sh"), "process.args"),
    (lambda c: c["process"].update(args=["sh", 3]), "process.args[1]"),
    (lambda c: c["process"].update(terminal="yes"), "process.terminal"),
    (lambda c: c["process"]["user"].update(additionalGids=[1, "x"]),
     "process.user.additionalGids[1]"),
    (lambda c: c["process"].update(rlimits=[{"type": "RLIMIT_NOFILE", "soft": 9, "hard": 1}]),
     "process.rlimits[0]"),
    (lambda c: c["process"]["capabilities"].update(bounding=["SYS_ADMIN"]),
     "process.capabilities.bounding[0]"),
    (lambda c: c.pop("root"), "root"),
    (lambda c: c.update(mounts=[{"type": "tmpfs"}]), "mounts[0].destination"),
    (lambda c: c.update(annotations={"a": 1}), "annotations.a"),
    (lambda c: c.update(hooks={"prestart": [{"path": "rel"}]}), "hooks.prestart[0].path"),
    (lambda c: c.update(hooks={"poststop": [{"path": "/x", "timeout": 0}]}),
     "hooks.poststop[0].timeout"),
])
def test_bundle_validation(tmp_path: Path, mutate: Callable[[dict[str, Any]], Any],
                           field: str) -> None:
    (tmp_path / "rootfs").mkdir()
    cfg = _valid_config()
    mutate(cfg)
    with pytest.raises(bundle.BundleError) as info:
        bundle.parse(cfg, str(tmp_path))
    msg = str(info.value)
    assert msg.startswith(f"config.json: {field}") and "\n" not in msg


def test_bundle_parse_keeps_fields(tmp_path: Path) -> None:
    (tmp_path / "rootfs").mkdir()
    cfg = _valid_config()
    cfg["process"]["env"] = ["A=1", "B=x=y", "A=2"]
    cfg["process"]["user"] = {"uid": 5, "gid": 6, "additionalGids": [7]}
    cfg["annotations"] = {"k": "v"}
    cfg["hooks"] = {"poststart": [{"path": "/bin/true", "args": ["true"], "timeout": 3}]}
    b = bundle.parse(cfg, str(tmp_path))
    assert b.root_path == str(tmp_path / "rootfs") and b.root_readonly
    assert b.process.env_dict() == {"A": "2", "B": "x=y"}
    assert b.process.user == bundle.User(5, 6, (7,))
    assert [m.destination for m in b.mounts] == ["/proc", "/dev", "/dev/shm", "/sys"]
    assert b.hooks["poststart"][0].timeout == 3 and b.annotations == {"k": "v"}
    abs_root = dict(cfg, root={"path": str(tmp_path / "rootfs")})
    assert bundle.parse(abs_root, "/elsewhere").root_path == str(tmp_path / "rootfs")


def test_state_ids_and_lock(tmp_path: Path) -> None:
    sr = state.StateRoot(str(tmp_path / "s"))
    for bad in ("", "../x", "a/b", ".x", "-x", "a b"):
        with pytest.raises(state.StateError):
            sr.new_container(bad)
    c = sr.new_container("ok_1.a-b")
    assert oct(os.stat(sr.path).st_mode & 0o777) == "0o700"
    with pytest.raises(state.StateError, match="already exists"):
        sr.new_container("ok_1.a-b")
    with c.locked():
        c.write({"status": "created", "pid": 0})
    assert c.current()["status"] == "stopped", "no live host: stopped"
    assert sr.ids() == ["ok_1.a-b"]
    c.remove()
    with pytest.raises(state.NotFound):
        with c.locked():
            pass


def test_spec_and_features(tmp_path: Path) -> None:
    res = runsc(tmp_path / "s", "spec", "--bundle", str(tmp_path))
    assert res.returncode == 0
    cfg = json.loads((tmp_path / "config.json").read_text())
    assert cfg["process"]["args"] == ["sh"] and cfg["root"]["path"] == "rootfs"
    again = runsc(tmp_path / "s", "spec", "--bundle", str(tmp_path))
    assert again.returncode == 1 and "exists" in again.stderr
    feats = json.loads(runsc(tmp_path / "s", "features").stdout)
    assert feats["ociVersionMax"].startswith("1.") and "poststop" in feats["hooks"]
    assert json.loads(runsc(tmp_path / "s", "list", "--format", "json").stdout) == []
