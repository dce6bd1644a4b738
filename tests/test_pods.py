"""Pods: containers that containerd's CRI puts in one pod run in one Sentry.

The bundles carry the annotations containerd's CRI plugin writes
(``io.kubernetes.cri.container-type`` = sandbox / container and
``io.kubernetes.cri.sandbox-id``), and the tests drive ``runsc.py`` the way
the runc shim does (create, start, exec, kill, state, delete).  What "one
Sentry" must mean, each checked from inside the containers:

- one kernel: one process list (ps in one container shows the others' inits);
- one network stack: a server one container binds on 127.0.0.1 is reached
  from the other over 127.0.0.1;
- one IPC namespace: a SysV shared memory segment one makes, the other reads;
- but a root each: a file in one container's rootfs is not in the other's,
  and a container's writes land in its own bundle's rootfs.

Without pods each container would boot its own sandbox, and every one of
those checks fails.  Ports are unusual (other e2e tests run in parallel).

Facts the tests rely on: every host process of a container carries its id on
its command line (``runsc.py sandbox-serve ID``); the ids here share one
random suffix, so helpers.assert_no_process_left finds anything a test left.
busybox httpd without -f binds, then forks into the background and its parent
exits, so `exec httpd` returning means the port is bound (no polling).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import RUNSC, assert_no_process_left, host_children

pytestmark = [pytest.mark.root, pytest.mark.sandbox]
TIMEOUT = 60.0
APPLETS = ("sh", "echo", "cat", "sleep", "ps", "httpd", "wget", "ls")
PORT = 38617
TYPE = "io.kubernetes.cri.container-type"
SANDBOX = "io.kubernetes.cri.sandbox-id"


def runsc(root: Path, *args: str, timeout: float = TIMEOUT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(RUNSC), "--root", str(root), "--network", "none",
                           *args], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=timeout, start_new_session=True)


def runsc_bg(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """create: the host keeps create's stdio (the init's), so files, not pipes."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.run([sys.executable, str(RUNSC), "--root", str(root), "--network",
                               "none", *args], stdin=subprocess.DEVNULL, stdout=out,
                              stderr=err, timeout=TIMEOUT, start_new_session=True)
        out.seek(0)
        err.seek(0)
        return subprocess.CompletedProcess(proc.args, proc.returncode, out.read(), err.read())


class Pod:
    """A pod sandbox and its member containers under one state root."""

    def __init__(self, base: Path, busybox: Path, sysv: Path | None = None) -> None:
        self.base = base
        self.root = base / "state"
        self.busybox = busybox
        self.sysv = sysv
        self.tag = uuid.uuid4().hex[:10]
        self.sid = f"pod-{self.tag}"
        self.ids: list[str] = []

    def bundle(self, name: str, args: list[str], kind: str, sandbox: str | None = None,
               files: dict[str, str] | None = None) -> Path:
        b = self.base / f"bundle-{name}"
        (b / "rootfs" / "bin").mkdir(parents=True)
        shutil.copy(self.busybox, b / "rootfs/bin/busybox")
        for applet in APPLETS:
            (b / "rootfs/bin" / applet).symlink_to("busybox")
        if self.sysv is not None:
            shutil.copy(self.sysv, b / "rootfs/bin/pod_sysv")
        for path, text in (files or {}).items():
            (b / "rootfs" / path).parent.mkdir(parents=True, exist_ok=True)
            (b / "rootfs" / path).write_text(text)
        res = runsc(self.base / "unused", "spec", "--bundle", str(b))
        assert res.returncode == 0, res.stderr
        cfg = json.loads((b / "config.json").read_text())
        cfg["process"]["args"] = args
        cfg["process"]["terminal"] = False
        cfg["root"]["readonly"] = False  # as containerd's CRI writes it by default
        cfg["annotations"] = {TYPE: kind, SANDBOX: sandbox or self.sid}
        (b / "config.json").write_text(json.dumps(cfg))
        return b

    def run(self, cid: str, b: Path, start: bool = True) -> None:
        self.ids.append(cid)
        res = runsc_bg(self.root, "create", "--bundle", str(b), cid)
        assert res.returncode == 0, res.stderr
        if start:
            res = runsc(self.root, "start", cid)
            assert res.returncode == 0, res.stderr

    def member(self, name: str, args: list[str], files: dict[str, str] | None = None,
               start: bool = True) -> str:
        cid = f"{name}-{self.tag}"
        self.run(cid, self.bundle(name, args, "container", files=files), start)
        return cid

    def start_sandbox(self) -> None:
        self.run(self.sid, self.bundle("sandbox", ["sleep", "100000"], "sandbox"))

    def exec(self, cid: str, *argv: str) -> subprocess.CompletedProcess[str]:
        return runsc(self.root, "exec", cid, *argv)

    def state(self, cid: str) -> dict[str, Any]:
        res = runsc(self.root, "state", cid)
        assert res.returncode == 0, res.stderr
        return json.loads(res.stdout)

    def gofer_fds(self) -> list[str]:
        """Where the pod's Gofer's descriptors lead.  The Gofer is the
        Sentry's child that runs gofer.server (its --sentry-pid is the
        Sentry's pid in the pod's pid namespace, not the host's)."""
        host = int(self.state(self.sid)["pid"])
        sentries = host_children(host)
        out = []
        for sentry in sentries:
            for pid in host_children(sentry):
                try:
                    if b"gofer.server" not in Path(f"/proc/{pid}/cmdline").read_bytes():
                        continue
                except OSError:
                    continue
                for fd in os.listdir(f"/proc/{pid}/fd"):
                    try:
                        out.append(os.readlink(f"/proc/{pid}/fd/{fd}"))
                    except OSError:
                        pass
        return out

    def close(self) -> None:
        for cid in reversed(self.ids):
            runsc(self.root, "delete", "--force", cid)
        assert_no_process_left(self.tag, grace=10.0)
        left = [n for n in os.listdir("/dev/shm") if self.tag in n]
        assert not left, left


def _need_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("the sandbox needs root (namespaces, seccomp)")


@pytest.fixture(scope="module")
def sysv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("gcc not found: tests/programs/pod_sysv.c cannot be built")
    out = tmp_path_factory.mktemp("pod") / "pod_sysv"
    src = Path(__file__).parent / "programs" / "pod_sysv.c"
    res = subprocess.run([gcc, "-static", "-O1", "-o", str(out), str(src)],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    return out


@pytest.fixture(scope="module")
def pod(tmp_path_factory: pytest.TempPathFactory, busybox: Path, sysv: Path) -> Iterator[Any]:
    """A running pod: the sandbox (pause-like sleep) and members a and b."""
    _need_root()
    p = Pod(tmp_path_factory.mktemp("pod"), busybox, sysv)
    try:
        p.start_sandbox()
        a = p.member("a", ["sleep", "100001"], {"marker": "in-a\n", "www/hello": "from-a\n"})
        b = p.member("b", ["sleep", "100002"], {"marker": "in-b\n"})
        yield p, a, b
    finally:
        p.close()


def test_members_share_one_process_list(pod: Any) -> None:
    p, a, b = pod
    res = p.exec(b, "ps")
    assert res.returncode == 0, res.stderr
    assert "sleep 100001" in res.stdout and "sleep 100000" in res.stdout, res.stdout
    # runsc.py ps of a member lists the member's own processes only.
    res = runsc(p.root, "ps", a)
    assert res.returncode == 0, res.stderr
    assert "sleep 100001" in res.stdout, res.stdout
    assert "sleep 100002" not in res.stdout and "sleep 100000" not in res.stdout, res.stdout
    # ... and of the pod's sandbox container, its own (as runsc's ps of a pause container).
    res = runsc(p.root, "ps", p.sid)
    assert res.returncode == 0, res.stderr
    assert "sleep 100000" in res.stdout and "sleep 10000" + "1" not in res.stdout, res.stdout


def test_members_share_loopback(pod: Any) -> None:
    p, a, b = pod
    res = p.exec(a, "httpd", "-p", f"127.0.0.1:{PORT}", "-h", "/www")
    assert res.returncode == 0, res.stderr
    res = p.exec(b, "wget", "-qO-", f"http://127.0.0.1:{PORT}/hello")
    assert (res.returncode, res.stdout) == (0, "from-a\n"), res.stderr


def test_members_share_sysv_ipc(pod: Any) -> None:
    p, a, b = pod
    res = p.exec(a, "pod_sysv", "put", "4711", "shared-by-a")
    assert res.returncode == 0, res.stdout + res.stderr
    res = p.exec(b, "pod_sysv", "get", "4711")
    assert (res.returncode, res.stdout) == (0, "shared-by-a\n"), res.stderr


def test_members_have_their_own_roots(pod: Any) -> None:
    p, a, b = pod
    assert p.exec(a, "cat", "/marker").stdout == "in-a\n"
    assert p.exec(b, "cat", "/marker").stdout == "in-b\n"
    assert p.exec(b, "cat", "/www/hello").returncode != 0  # a's file, not in b's root
    res = p.exec(b, "sh", "-c", "echo written-by-b > /from-b")
    assert res.returncode == 0, res.stderr
    # Written through to b's own bundle rootfs (as runc), never a's or the sandbox's.
    assert (p.base / "bundle-b/rootfs/from-b").read_text() == "written-by-b\n"
    assert not (p.base / "bundle-a/rootfs/from-b").exists()
    assert not (p.base / "bundle-sandbox/rootfs/from-b").exists()
    res = p.exec(a, "ls", "/proc/self/root/")
    assert "www" in res.stdout and "from-b" not in res.stdout, res.stdout


def _wait(p: Pod, cid: str) -> int:
    res = runsc(p.root, "wait", cid)
    assert res.returncode == 0, res.stderr
    return int(json.loads(res.stdout)["exitStatus"])


def test_member_lifecycle_on_its_own(tmp_path: Path, busybox: Path) -> None:
    """A member's exit status, kill and delete leave the pod and the other
    members running; a deleted member's rootfs is let go by the Gofer."""
    _need_root()
    p = Pod(tmp_path, busybox)
    try:
        p.start_sandbox()
        keep = p.member("keep", ["sleep", "100003"])
        quick = p.member("quick", ["sh", "-c", "exit 7"])
        assert _wait(p, quick) == 7
        assert p.state(quick)["status"] == "stopped"
        victim = p.member("victim", ["sleep", "100004"])
        victim_root = str(p.base / "bundle-victim/rootfs")
        assert any(f.startswith(victim_root) for f in p.gofer_fds())
        assert runsc(p.root, "kill", victim, "KILL").returncode == 0
        assert _wait(p, victim) == 137
        assert runsc(p.root, "delete", victim).returncode == 0
        # The Gofer holds nothing under the deleted member's rootfs any more.
        assert not [f for f in p.gofer_fds() if f.startswith(victim_root)]
        assert p.state(keep)["status"] == "running"
        assert p.exec(keep, "echo", "still").stdout == "still\n"
    finally:
        p.close()


def test_pod_ends_with_its_sandbox(tmp_path: Path, busybox: Path) -> None:
    _need_root()
    p = Pod(tmp_path, busybox)
    try:
        p.start_sandbox()
        m = p.member("m", ["sleep", "100005"])
        assert runsc(p.root, "kill", p.sid, "KILL").returncode == 0
        assert _wait(p, m) == 137
        assert p.state(m)["status"] == "stopped"
    finally:
        p.close()


def test_joining_what_is_no_pod_fails_clearly(tmp_path: Path, busybox: Path) -> None:
    _need_root()
    p = Pod(tmp_path, busybox)
    try:
        b = p.bundle("orphan", ["true"], "container", sandbox=f"missing-{p.tag}")
        res = runsc_bg(p.root, "create", "--bundle", str(b), f"orphan-{p.tag}")
        assert res.returncode != 0 and "does not exist" in res.stderr, res.stderr
        assert "Traceback" not in res.stderr
        # A plain container (no pod annotation) takes no member.
        plain = p.bundle("plain", ["sleep", "100006"], "container", sandbox=f"plain-{p.tag}")
        cfg = json.loads((plain / "config.json").read_text())
        cfg["annotations"] = {}
        (plain / "config.json").write_text(json.dumps(cfg))
        p.run(f"plain-{p.tag}", plain)
        b = p.bundle("stray", ["true"], "container", sandbox=f"plain-{p.tag}")
        res = runsc_bg(p.root, "create", "--bundle", str(b), f"stray-{p.tag}")
        assert res.returncode != 0 and "not a pod" in res.stderr, res.stderr
        assert "Traceback" not in res.stderr
    finally:
        p.close()


def _churn(tmp_path: Path, busybox: Path, members: int, rounds: int) -> None:
    """A pod with ``members`` containers, started and deleted ``rounds`` times."""
    p = Pod(tmp_path, busybox)
    try:
        p.start_sandbox()
        bundles = [p.bundle(f"c{i}", ["sleep", "100007"], "container") for i in range(members)]
        for r in range(rounds):
            ids = [f"c{i}-r{r}-{p.tag}" for i in range(members)]
            for cid, b in zip(ids, bundles, strict=True):
                p.run(cid, b)
            res = p.exec(ids[0], "ps")
            assert res.stdout.count("sleep 100007") == members, res.stdout
            for cid in ids:
                assert runsc(p.root, "delete", "--force", cid).returncode == 0
                p.ids.remove(cid)
            assert not [f for f in p.gofer_fds() if "/bundle-c" in f]
        mounts = Path("/proc/self/mountinfo").read_text()
        assert p.tag not in mounts and str(p.base) not in mounts
    finally:
        p.close()


def test_pod_churn_fast_slice(tmp_path: Path, busybox: Path) -> None:
    _need_root()
    _churn(tmp_path, busybox, members=2, rounds=1)


@pytest.mark.slow
def test_pod_churn_at_scale(tmp_path: Path, busybox: Path) -> None:
    """5 containers in a pod, started and deleted 20 times: nothing left over."""
    _need_root()
    _churn(tmp_path, busybox, members=5, rounds=20)


def test_member_with_a_terminal(tmp_path: Path, busybox: Path) -> None:
    """A member whose process.terminal is set (`kubectl run -it`, crictl with
    tty): its init gets a pty of the pod's Sentry bridged to the replica of
    --console-socket's pty, as a container of its own does."""
    from console_support import ConsoleListener, read_until

    _need_root()
    p = Pod(tmp_path, busybox)
    listener = ConsoleListener(str(tmp_path / "console.sock"))
    try:
        p.start_sandbox()
        cid = f"tty-{p.tag}"
        b = p.bundle("tty", ["sh", "-c", "echo member-tty; read x; echo got-$x; exit 3"],
                     "container")
        cfg = json.loads((b / "config.json").read_text())
        cfg["process"]["terminal"] = True
        (b / "config.json").write_text(json.dumps(cfg))
        p.ids.append(cid)
        res = runsc_bg(p.root, "create", "--bundle", str(b), "--console-socket",
                       str(tmp_path / "console.sock"), cid)
        assert res.returncode == 0, res.stderr
        master = listener.master()
        res = runsc(p.root, "start", cid)
        assert res.returncode == 0, res.stderr
        read_until(master, b"member-tty\r\n")
        os.write(master, b"hello\n")
        read_until(master, b"got-hello\r\n")
        assert _wait(p, cid) == 3
        assert p.state(p.sid)["status"] == "running"
    finally:
        listener.close()
        p.close()


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _grows(path: Path, within: float = 20.0) -> bool:
    start, deadline = _size(path), time.monotonic() + within
    while time.monotonic() < deadline:
        if _size(path) > start:
            return True
        time.sleep(0.1)
    return False


def test_member_pause_resume_and_stats(tmp_path: Path, busybox: Path) -> None:
    """pause holds one member's processes only (the pod's other containers go
    on), resume lets them go on; `events --stats` of a member counts its own
    processes (its tasks, not the pod's)."""
    _need_root()
    p = Pod(tmp_path, busybox)
    loop = "while true; do echo x >> /ticks; sleep 0.05; done"
    try:
        p.start_sandbox()
        a, b = p.member("a", ["sh", "-c", loop]), p.member("b", ["sh", "-c", loop])
        ticks_a = tmp_path / "bundle-a" / "rootfs" / "ticks"
        ticks_b = tmp_path / "bundle-b" / "rootfs" / "ticks"
        assert _grows(ticks_a) and _grows(ticks_b)
        res = runsc(p.root, "pause", a)
        assert res.returncode == 0, res.stderr
        assert p.state(a)["status"] == "paused"
        time.sleep(0.5)  # a write already in the Sentry lands
        held = _size(ticks_a)
        assert _grows(ticks_b, 2.0)
        time.sleep(0.5)
        assert _size(ticks_a) == held, "a paused member's process ran"
        res = runsc(p.root, "events", "--stats", b)
        assert res.returncode == 0, res.stderr
        data = json.loads(res.stdout)["data"]
        # sh and at most a sleep: not the pod's other processes
        assert 1 <= data["pids"]["current"] <= 2, data
        assert data["cpu"]["usage"]["total"] > 0, data
        res = runsc(p.root, "resume", a)
        assert res.returncode == 0, res.stderr
        assert p.state(a)["status"] == "running"
        assert _grows(ticks_a)
    finally:
        p.close()
