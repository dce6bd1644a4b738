"""OCI fidelity to the spec (issue 17 sections 1 and 3), each checked the way
the runtime-tools validator and runc see it: the container's mount table in
the config's order and types, linux.namespaces paths joined (with their type
checked), every linux.resources field written to the host cgroup files (a
relative cgroupsPath below the caller's cgroup), hooks given the true state,
and runc's single-dash long flags."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import RUNSC
from test_oci import (  # noqa: F401 - fixtures, used by name
    cid,
    make_bundle,
    runsc,
    runsc_bg,
    state_root,
)

from sentry.oci import cgroup_files, lifecycle
from sentry.oci.cgroups import _current, _hierarchies
from sentry.oci.state import StateRoot

# runc's default mounts (runc spec), in its order, plus a bind.
RUNC_MOUNTS = [
    {"destination": "/proc", "type": "proc", "source": "proc"},
    {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
     "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
    {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
     "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
    {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
     "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
    {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
     "options": ["nosuid", "noexec", "nodev"]},
    {"destination": "/sys", "type": "sysfs", "source": "sysfs",
     "options": ["nosuid", "noexec", "nodev", "ro"]},
]


def _run(root: Path, bundle: Path, name: str) -> subprocess.CompletedProcess[str]:
    return runsc(root, "run", "--bundle", str(bundle), name)


def test_mount_table_follows_the_config(state_root: Path, cid: str,  # noqa: F811
                                        make_bundle: Callable[..., Path],  # noqa: F811
                                        tmp_path: Path) -> None:
    src = tmp_path / "shared-data"
    src.mkdir()

    def edit(cfg: dict[str, Any]) -> None:
        cfg["mounts"] = [*RUNC_MOUNTS, {"destination": "/data", "type": "bind",
                                        "source": str(src), "options": ["rbind", "ro"]}]

    b = make_bundle(["sh", "-c", "cat /proc/self/mountinfo; echo; busybox readlink /dev/ptmx"],
                    edit=edit)
    res = _run(state_root, b, cid)
    assert res.returncode == 0, res.stderr
    table, link = res.stdout.rsplit("\n\n", 1)
    rows = [line.split(" - ")[0].split() + line.split(" - ")[1].split()
            for line in table.splitlines()]
    # (mount point, type) after the root, in the config's order
    got = [(r[4], r[-3]) for r in rows[1:]]
    want = [(m["destination"], m["type"]) for m in RUNC_MOUNTS] + [("/data", "9p")]
    assert got == want
    data = next(r for r in rows if r[4] == "/data")
    assert data[3] == str(src), "a bind's mountinfo root is its source's path"
    assert link.strip() == "pts/ptmx", "/dev/ptmx links to the devpts next to it"


def test_default_mounts_without_a_config(state_root: Path, cid: str,  # noqa: F811
                                         make_bundle: Callable[..., Path]) -> None:  # noqa: F811
    """A config without /dev or /proc mounts still gets the Sentry's devtmpfs
    (with its ptmx node and /dev/shm) and procfs."""
    def edit(cfg: dict[str, Any]) -> None:
        cfg["mounts"] = []

    b = make_bundle(["sh", "-c", "cut -d' ' -f5,8 /proc/self/mountinfo; "
                     "busybox stat -c %F /dev/ptmx"], edit=edit)
    res = _run(state_root, b, cid)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert {"/dev devtmpfs", "/dev/shm tmpfs", "/dev/pts devpts", "/proc proc"} <= set(lines)
    assert lines[-1] == "character special file"


@pytest.fixture
def uts_holder() -> Iterator[int]:
    """A process in a new UTS namespace whose hostname is "joined-uts"."""
    with subprocess.Popen(["unshare", "--uts", "sh", "-c",
                           "hostname joined-uts && echo up && exec sleep 60"],
                          stdout=subprocess.PIPE, text=True) as proc:
        assert proc.stdout is not None and proc.stdout.readline() == "up\n"
        yield proc.pid
        proc.kill()


def test_namespace_path_is_joined(state_root: Path, cid: str,  # noqa: F811
                                  make_bundle: Callable[..., Path],  # noqa: F811
                                  uts_holder: int, tmp_path: Path) -> None:
    path = f"/proc/{uts_holder}/ns/uts"

    def edit(cfg: dict[str, Any]) -> None:
        ns = [n for n in cfg["linux"]["namespaces"] if n["type"] != "uts"]
        cfg["linux"]["namespaces"] = [*ns, {"type": "uts", "path": path}]

    b = make_bundle(["sleep", "30"], edit=edit)
    pid_file = tmp_path / "pid"
    res = runsc_bg(state_root, "create", "--bundle", str(b), "--pid-file", str(pid_file), cid)
    assert res.returncode == 0, res.stderr
    try:
        host = int(pid_file.read_text())
        assert os.readlink(f"/proc/{host}/ns/uts") == os.readlink(path)
    finally:
        runsc(state_root, "delete", "--force", cid)


def test_namespace_path_of_the_wrong_type_is_refused(state_root: Path, cid: str,  # noqa: F811
                                                     make_bundle: Callable[..., Path],  # noqa: F811
                                                     ) -> None:
    def edit(cfg: dict[str, Any]) -> None:
        ns = [n for n in cfg["linux"]["namespaces"] if n["type"] != "uts"]
        cfg["linux"]["namespaces"] = [*ns, {"type": "uts", "path": "/proc/self/ns/ipc"}]

    res = _run(state_root, make_bundle(["true"], edit=edit), cid)
    assert res.returncode != 0
    assert res.stderr.strip().splitlines() == [
        "runsc.py: linux.namespaces[type=uts].path: /proc/self/ns/ipc is a ipc namespace, "
        "not uts"]
    assert not (state_root / cid).exists(), "nothing is left behind"


def test_every_resource_field_becomes_its_cgroup_file() -> None:
    files = cgroup_files.files({
        "memory": {"limit": 64 << 20, "reservation": 32 << 20, "swap": 128 << 20,
                   "swappiness": 10, "disableOOMKiller": True},
        "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0", "mems": "0"},
        "devices": [{"allow": False, "access": "rwm"},
                    {"allow": True, "type": "c", "major": 10, "minor": 229, "access": "rw"}],
        "blockIO": {"weight": 300, "throttleReadBpsDevice": [{"major": 8, "minor": 0,
                                                              "rate": 1000}]},
    }, None)
    assert files["memory"] == [
        ("memory.limit_in_bytes", str(64 << 20)), ("memory.soft_limit_in_bytes", str(32 << 20)),
        ("memory.memsw.limit_in_bytes", str(128 << 20)), ("memory.swappiness", "10"),
        ("memory.oom_control", "1")]
    assert files["cpu"] == [("cpu.shares", "512"), ("cpu.cfs_period_us", "100000"),
                            ("cpu.cfs_quota_us", "50000")]
    assert files["cpuset"] == [("cpuset.cpus", "0"), ("cpuset.mems", "0")]
    assert files["devices"][:2] == [("devices.deny", "a"), ("devices.allow", "c 10:229 rw")]
    assert ("devices.allow", "c 1:3 rwm") in files["devices"], "the sandbox's own /dev/null"
    assert files["blkio"] == [("blkio.weight", "300"),
                              ("blkio.throttle.read_bps_device", "8:0 1000")]
    assert ("memory.swap.max", str(64 << 20)) in files[""]


def test_relative_cgroups_path_is_below_the_callers_cgroup(
        state_root: Path, cid: str, make_bundle: Callable[..., Path],  # noqa: F811
        tmp_path: Path) -> None:
    h = _hierarchies()
    if "memory" not in h:
        pytest.skip("no v1 memory hierarchy here")
    own = Path(_current(h)[h["memory"]])
    if not os.access(own, os.W_OK):
        pytest.skip(f"{own} is not writable here")
    reservation = 48 << 20

    def edit(cfg: dict[str, Any]) -> None:
        cfg["linux"]["cgroupsPath"] = f"pyvisor-rel-{cid}"
        cfg["linux"]["resources"] = {"memory": {"limit": 256 << 20,
                                                "reservation": reservation}}

    b = make_bundle(["sleep", "30"], edit=edit)
    res = runsc_bg(state_root, "create", "--bundle", str(b), cid)
    assert res.returncode == 0, res.stderr
    try:
        directory = own / f"pyvisor-rel-{cid}"
        assert int((directory / "memory.soft_limit_in_bytes").read_text()) == reservation
    finally:
        runsc(state_root, "delete", "--force", cid)
    assert not directory.exists(), "delete removes it"


def test_hook_state_of_an_exited_container_is_stopped(tmp_path: Path) -> None:
    """A poststart hook run after the process exited sees "stopped", pid 0,
    not a "running" container without a pid."""
    c = StateRoot(str(tmp_path)).new_container("gone")
    dead = subprocess.Popen(["true"])
    dead.wait()
    c.write({"ociVersion": "1.1.0", "id": "gone", "status": "created", "pid": dead.pid,
             "bundle": "/b", "hostStartTime": 1})
    st = lifecycle._hook_state(c, "running")
    assert (st["status"], st["pid"]) == ("stopped", 0)


@pytest.mark.parametrize("argv", [["delete", "-force", "no-such-container"],
                                  ["delete", "--force", "no-such-container"]])
def test_single_dash_long_flags(argv: list[str], tmp_path: Path) -> None:
    """runc and runsc take Go-style ``-force`` as ``--force`` (click would read
    ``-f -o -r -c -e``)."""
    res = subprocess.run([sys.executable, str(RUNSC), "-root", str(tmp_path), *argv],
                         capture_output=True, text=True, timeout=30)
    assert (res.returncode, res.stderr) == (0, "")


def test_single_dash_long_flags_through_click(tmp_path: Path) -> None:
    """The forms the fast path does not parse go through click: ``list
    -format json`` and ``kill -all``."""
    res = subprocess.run([sys.executable, str(RUNSC), "-root", str(tmp_path), "list",
                          "-format", "json"], capture_output=True, text=True, timeout=30)
    assert (res.returncode, json.loads(res.stdout)) == (0, []), res.stderr
    res = subprocess.run([sys.executable, str(RUNSC), "--root", str(tmp_path), "exec",
                          "no-such", "ls", "-all"], capture_output=True, text=True, timeout=30)
    assert "No such option" not in res.stderr, "exec's program arguments are left alone"


def test_linux_devices_and_oom_score_adj(state_root: Path, cid: str,  # noqa: F811
                                         make_bundle: Callable[..., Path]) -> None:  # noqa: F811
    """linux.devices become nodes in /dev (type, numbers, mode, owner), and
    process.oomScoreAdj is the init's /proc/self/oom_score_adj, as with runc."""
    def edit(cfg: dict[str, Any]) -> None:
        cfg["process"]["oomScoreAdj"] = 300
        cfg["linux"]["devices"] = [
            {"path": "/dev/test1", "type": "c", "major": 10, "minor": 229, "fileMode": 0o640,
             "uid": 1, "gid": 2},
            {"path": "/dev/sub/fifo", "type": "p"}]

    b = make_bundle(["sh", "-c", "busybox stat -c '%A %u %g %t %T' /dev/test1 /dev/sub/fifo;"
                     " cat /proc/self/oom_score_adj"], edit=edit)
    res = _run(state_root, b, cid)
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines() == ["crw-r----- 1 2 a e5", "prw-rw-rw- 0 0 0 0", "300"]


def test_masked_and_readonly_paths(state_root: Path, cid: str,  # noqa: F811
                                   make_bundle: Callable[..., Path]) -> None:  # noqa: F811
    """linux.maskedPaths: a directory shows empty, a file reads empty;
    linux.readonlyPaths: writes below are EROFS; a missing path is skipped."""
    def edit(cfg: dict[str, Any]) -> None:
        cfg["root"]["readonly"] = False
        cfg["linux"]["maskedPaths"] = ["/secret", "/secret-file", "/no/such/path"]
        cfg["linux"]["readonlyPaths"] = ["/ro"]

    b = make_bundle(["sh", "-c", "busybox ls /secret; cat /secret-file; echo x > /ro/new; "
                     "echo x > /rw-file && echo done"], edit=edit)
    (b / "rootfs/secret").mkdir()
    (b / "rootfs/secret/inside").write_text("hidden\n")
    (b / "rootfs/secret-file").write_text("hidden\n")
    (b / "rootfs/ro").mkdir()
    res = _run(state_root, b, cid)
    assert (res.returncode, res.stdout) == (0, "done\n"), res.stderr
    assert "can't create /ro/new: Read-only file system" in res.stderr
    assert not (b / "rootfs/ro/new").exists()
    assert (b / "rootfs/secret/inside").read_text() == "hidden\n"


def test_namespaces_without_path_are_new(state_root: Path, cid: str,  # noqa: F811
                                         make_bundle: Callable[..., Path],  # noqa: F811
                                         tmp_path: Path) -> None:
    """The types listed without a path are new namespaces of the container's
    process (the OCI state's pid: the sandbox host), as runc makes them."""
    kinds = {"ipc": "ipc", "uts": "uts", "mount": "mnt", "cgroup": "cgroup",
             "network": "net"}

    def edit(cfg: dict[str, Any]) -> None:
        cfg["linux"]["namespaces"] = [{"type": k} for k in (*kinds, "pid")]

    b = make_bundle(["sleep", "30"], edit=edit)
    pid_file = tmp_path / "pid"
    res = runsc_bg(state_root, "create", "--bundle", str(b), "--pid-file", str(pid_file), cid)
    assert res.returncode == 0, res.stderr
    try:
        host = int(pid_file.read_text())
        same = [n for n in kinds.values()
                if os.readlink(f"/proc/{host}/ns/{n}") == os.readlink(f"/proc/self/ns/{n}")]
        assert same == []
    finally:
        runsc(state_root, "delete", "--force", cid)


def test_user_namespace_mappings_are_shown(state_root: Path, cid: str,  # noqa: F811
                                           make_bundle: Callable[..., Path]) -> None:  # noqa: F811
    """linux.uidMappings/gidMappings are what /proc/self/uid_map and gid_map
    show the application, in the kernel's format, as in runc's container."""
    def edit(cfg: dict[str, Any]) -> None:
        cfg["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 1000, "size": 2000}]
        cfg["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 1000, "size": 3000}]

    b = make_bundle(["cat", "/proc/self/uid_map", "/proc/self/gid_map"], edit=edit)
    res = _run(state_root, b, cid)
    assert res.returncode == 0, res.stderr
    assert res.stdout == ("         0       1000       2000\n"
                          "         0       1000       3000\n")
