"""What real container tooling hands the runtime, checked without the tools:
config.json as Docker/podman/containerd write it, runc's global flags that
go-runc and podman pass, and the network namespace that Docker's prestart hook
(libnetwork-setkey) configures through the state's pid.

The end-to-end tests (test_e2e_*.py) drive the real tools; these pin down the
individual facts so a regression shows up even where the tools are absent."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from helpers import RUNSC

from sentry.oci import bundle

# The shape of Docker 20.10's config.json (trimmed lists), with every section
# that the runtime must accept even though it does not act on it.
DOCKER_LIKE: dict[str, Any] = {
    "ociVersion": "1.0.2-dev",
    "process": {
        "user": {"uid": 0, "gid": 0, "additionalGids": [0], "umask": 18},
        "args": ["/bin/busybox", "echo", "hi"],
        "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "HOSTNAME=0123456789ab"],
        "cwd": "/",
        "capabilities": {k: ["CAP_CHOWN", "CAP_KILL", "CAP_AUDIT_WRITE"]
                         for k in ("bounding", "effective", "permitted")},
        "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1048576, "soft": 1048576},
                    {"type": "RLIMIT_NPROC", "hard": 4194304, "soft": 4194304}],
        "apparmorProfile": "docker-default",
        "oomScoreAdj": 0,
        "consoleSize": {"height": 24, "width": 80},
    },
    "root": {"path": "rootfs"},
    "hostname": "0123456789ab",
    "mounts": [
        {"destination": "/proc", "type": "proc", "source": "proc",
         "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620",
                     "gid=5"]},
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
         "options": ["ro", "nosuid", "noexec", "nodev"]},
        {"destination": "/etc/hosts", "type": "bind", "source": "/var/lib/x/hosts",
         "options": ["rbind", "rprivate"]},
        {"destination": "/dev/shm", "type": "bind", "source": "/var/lib/x/shm",
         "options": ["rbind", "rprivate"], "uidMappings": [], "gidMappings": []},
    ],
    "hooks": {"prestart": [{"path": "/proc/1/exe",
                            "args": ["libnetwork-setkey", "-exec-root=/run/docker", "id",
                                     "ctrl"]}]},
    "linux": {
        "sysctl": {"net.ipv4.ping_group_range": "0 2147483647"},
        "resources": {"devices": [{"allow": False, "access": "rwm"}],
                      "memory": {"disableOOMKiller": False}, "cpu": {"shares": 0},
                      "blockIO": {"weight": 0}, "pids": {"limit": 0}},
        "cgroupsPath": "/docker/0123456789ab",
        "namespaces": [{"type": "mount"}, {"type": "network"}, {"type": "uts"},
                       {"type": "pid"}, {"type": "ipc"}],
        "seccomp": {"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64"],
                    "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]},
        "maskedPaths": ["/proc/kcore"],
        "readonlyPaths": ["/proc/bus"],
        "devices": [{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229}],
        "uidMappings": [], "gidMappings": [],
        "mountLabel": "", "rootfsPropagation": "rprivate",
    },
    "annotations": {"io.kubernetes.cri.container-type": "container"},
}


def _parse(spec: dict[str, Any], tmp_path: Path) -> bundle.Bundle:
    (tmp_path / "rootfs").mkdir(exist_ok=True)
    return bundle.parse(spec, str(tmp_path))


def test_docker_like_config_is_accepted(tmp_path: Path) -> None:
    b = _parse(DOCKER_LIKE, tmp_path)
    assert b.process.args == ("/bin/busybox", "echo", "hi")
    assert b.namespaces == {"mount": None, "network": None, "uts": None, "pid": None,
                            "ipc": None}
    assert [m.type for m in b.mounts] == ["proc", "devpts", "cgroup", "bind", "bind"]
    assert b.hooks["prestart"][0].args[0] == "libnetwork-setkey"


def test_namespace_path_is_kept(tmp_path: Path) -> None:
    spec = copy.deepcopy(DOCKER_LIKE)
    spec["linux"]["namespaces"] = [{"type": "network", "path": "/run/netns/x"},
                                   {"type": "pid", "path": ""}]
    assert _parse(spec, tmp_path).namespaces == {"network": "/run/netns/x", "pid": None}


@pytest.mark.parametrize("namespaces, message", [
    ({"type": "network"}, "linux.namespaces: must be a list"),
    ([{"type": "netwrok"}], "linux.namespaces[0].type: unknown namespace type 'netwrok'"),
    ([{"type": "pid"}, {"type": "pid"}], "linux.namespaces[1].type: namespace 'pid' given"),
    ([{"type": "network", "path": "run/netns/x"}], "linux.namespaces[0].path: must be an"),
    ([{"path": "/x"}], "linux.namespaces[0].type: is required"),
])
def test_bad_namespaces_name_the_field(tmp_path: Path, namespaces: Any, message: str) -> None:
    spec = copy.deepcopy(DOCKER_LIKE)
    spec["linux"]["namespaces"] = namespaces
    with pytest.raises(bundle.BundleError, match=message.replace("[", r"\[").replace("]", r"\]")):
        _parse(spec, tmp_path)


def _runsc(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(RUNSC), *args], capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL)


def test_runc_global_flags_are_accepted(tmp_path: Path) -> None:
    """go-runc passes --systemd-cgroup, --criu and --rootless=BOOL on systemd hosts;
    podman passes --systemd-cgroup with its default cgroup manager."""
    root = tmp_path / "state"
    res = _runsc("--root", str(root), "--systemd-cgroup", "--rootless=false", "--criu",
                 "/usr/sbin/criu", "--log-format", "json", "delete", "--force", "nothing")
    assert res.returncode == 0, res.stderr
    res = _runsc("--root", str(root), "--rootless=maybe", "list")
    assert res.returncode == 2


def test_version_like_runc() -> None:
    res = _runsc("--version")
    assert res.returncode == 0
    assert res.stdout.splitlines()[0].startswith("runsc.py version ")
    assert "spec: 1." in res.stdout


@pytest.mark.root
@pytest.mark.sandbox
@pytest.mark.parametrize("new_netns", [True, False])
def test_state_pid_network_namespace(tmp_path: Path, busybox: Path, new_netns: bool) -> None:
    """A prestart hook (as Docker's libnetwork-setkey) that looks at
    /proc/PID/ns/net of the state's pid must not find the host's namespace
    when the spec asks for a new one (and does find it when the spec lists no
    network namespace: the container shares the caller's, as with runc)."""
    if os.geteuid() != 0:
        pytest.skip("the sandbox needs root (namespaces, seccomp)")
    b = tmp_path / "bundle"
    (b / "rootfs" / "bin").mkdir(parents=True)
    (b / "rootfs/bin/busybox").write_bytes(busybox.read_bytes())
    os.chmod(b / "rootfs/bin/busybox", 0o755)
    seen = tmp_path / "hook-saw"
    hook = tmp_path / "hook.py"
    hook.write_text(
        "import json, os, sys\n"
        "pid = json.load(sys.stdin)['pid']\n"
        f"open({str(seen)!r}, 'w').write(os.readlink(f'/proc/{{pid}}/ns/net'))\n")
    spec = copy.deepcopy(DOCKER_LIKE)
    spec["process"]["args"] = ["/bin/busybox", "true"]
    spec["mounts"] = []
    spec["hooks"] = {"prestart": [{"path": sys.executable, "args": ["python3", str(hook)]}]}
    if not new_netns:
        spec["linux"]["namespaces"] = [{"type": "pid"}, {"type": "mount"}]
    (b / "config.json").write_text(json.dumps(spec))
    root = tmp_path / "state"
    cid = f"netns-{uuid.uuid4().hex[:8]}"
    with open(tmp_path / "out", "w") as out:
        res = subprocess.run([sys.executable, str(RUNSC), "--root", str(root), "run",
                              "--bundle", str(b), cid], stdin=subprocess.DEVNULL, stdout=out,
                             stderr=subprocess.PIPE, text=True, timeout=60,
                             start_new_session=True)
    assert res.returncode == 0, res.stderr
    host_ns = os.readlink("/proc/self/ns/net")
    assert seen.read_text().startswith("net:[")
    assert (seen.read_text() != host_ns) == new_netns
    assert not (root / cid).exists()
