"""Bad bundles refused cleanly: ``linux.resources`` fields of the wrong type,
JSON nested too deeply for Python's decoder, mounts over /proc.

runc decodes config.json into typed Go structs, so a string where an integer
belongs ("limit": "64m") fails create; a runtime that skips what does not
match starts the container with no limit at all.  Each case here must be one
line naming the field, exit 1, and nothing left behind.  (The rest of the
bundle's validation is in tests/test_oci.py.)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from helpers import RUNSC, assert_no_process_left

from sentry.oci import bundle

Mutate = Callable[[dict[str, Any]], Any]


def _resources(**fields: Any) -> Mutate:
    return lambda c: c.setdefault("linux", {}).update(resources=fields)


BAD_RESOURCES = [
    pytest.param(_resources(memory={"limit": "64m"}), "linux.resources.memory.limit",
                 id="memory-limit-string"),
    pytest.param(_resources(pids={"limit": "x"}), "linux.resources.pids.limit",
                 id="pids-limit-string"),
    pytest.param(_resources(pids={"limit": 1.5}), "linux.resources.pids.limit",
                 id="pids-limit-float"),
    pytest.param(_resources(memory={"limit": True}), "linux.resources.memory.limit",
                 id="memory-limit-bool"),
    pytest.param(_resources(memory={"limit": 1 << 63}), "linux.resources.memory.limit",
                 id="memory-limit-over-int64"),
    pytest.param(_resources(memory={"swappiness": -1}), "linux.resources.memory.swappiness",
                 id="swappiness-negative"),
    pytest.param(_resources(memory={"disableOOMKiller": "yes"}),
                 "linux.resources.memory.disableOOMKiller", id="oom-killer-string"),
    pytest.param(_resources(memory="64m"), "linux.resources.memory", id="memory-not-object"),
    pytest.param(_resources(cpu={"shares": -2}), "linux.resources.cpu.shares",
                 id="cpu-shares-negative"),
    pytest.param(_resources(cpu={"quota": "50000"}), "linux.resources.cpu.quota",
                 id="cpu-quota-string"),
    pytest.param(_resources(cpu={"cpus": 1}), "linux.resources.cpu.cpus", id="cpu-cpus-int"),
    pytest.param(_resources(blockIO={"weight": 70000}), "linux.resources.blockIO.weight",
                 id="blkio-weight-over-uint16"),
    pytest.param(_resources(blockIO={"throttleReadBpsDevice": [{"major": 8, "rate": "1m"}]}),
                 "linux.resources.blockIO.throttleReadBpsDevice[0].rate", id="throttle-rate"),
    pytest.param(_resources(devices=[{"allow": "true"}]), "linux.resources.devices[0].allow",
                 id="device-allow-string"),
    pytest.param(_resources(devices={"allow": True}), "linux.resources.devices",
                 id="devices-not-list"),
    pytest.param(_resources(hugepageLimits=[{"pageSize": "2MB", "limit": -1}]),
                 "linux.resources.hugepageLimits[0].limit", id="hugepage-limit-negative"),
    pytest.param(_resources(network={"classID": "x"}), "linux.resources.network.classID",
                 id="net-classid-string"),
    pytest.param(_resources(unified={"memory.max": 5}), "linux.resources.unified.memory.max",
                 id="unified-value-int"),
    pytest.param(lambda c: c.setdefault("linux", {}).update(resources=[]), "linux.resources",
                 id="resources-not-object"),
]


def _parse(tmp_path: Path, mutate: Mutate) -> bundle.Bundle:
    (tmp_path / "rootfs").mkdir(exist_ok=True)
    cfg = bundle.default_spec(["sh"])
    mutate(cfg)
    return bundle.parse(cfg, str(tmp_path))


@pytest.mark.parametrize(("mutate", "field"), BAD_RESOURCES)
def test_resources_of_the_wrong_type_refused(tmp_path: Path, mutate: Mutate,
                                             field: str) -> None:
    with pytest.raises(bundle.BundleError) as info:
        _parse(tmp_path, mutate)
    msg = str(info.value)
    assert msg.startswith(f"config.json: {field}: "), msg
    assert "\n" not in msg


def test_resources_docker_sends_are_accepted(tmp_path: Path) -> None:
    """What docker run -m 64m --pids-limit 20 --cpus 1.5 writes, nulls included."""
    b = _parse(tmp_path, _resources(
        devices=[{"allow": False, "access": "rwm"},
                 {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"}],
        memory={"limit": 67108864, "swap": 134217728, "reservation": None,
                "disableOOMKiller": False},
        cpu={"shares": 0, "quota": 150000, "period": 100000, "cpus": "", "mems": ""},
        pids={"limit": 20}, blockIO={"weight": None}, hugepageLimits=None,
        unified={"memory.high": "max"}, future={"anything": "x"}))
    assert b.raw["linux"]["resources"]["pids"]["limit"] == 20


def test_deeply_nested_json_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text('{"a": ' + "[" * 100000 + "]" * 100000 + "}")
    with pytest.raises(bundle.BundleError) as info:
        bundle.read_config(str(path))
    assert str(info.value) == "config.json: invalid JSON: nested too deeply"


def _bind_proc(dest: str) -> Mutate:
    return lambda c: c["mounts"].append({"destination": dest, "type": "bind",
                                         "source": "/tmp", "options": ["rbind"]})


@pytest.mark.parametrize(("dest", "words"), [
    ("/proc", "/proc cannot be mounted because it is not of type proc"),
    ("/proc/", "/proc cannot be mounted because it is not of type proc"),
    ("/proc/sys", "/proc/sys cannot be mounted because it is inside /proc"),
    ("/proc/self/fd", "inside /proc"),
])
def test_bind_over_proc_refused(tmp_path: Path, dest: str, words: str) -> None:
    """runc's rule: only proc covers /proc, and below it only lxcfs's files."""
    from sentry import mountspec

    b = _parse(tmp_path, _bind_proc(dest))
    with pytest.raises(bundle.BundleError) as info:
        mountspec.from_oci(b.mounts, b.path)
    assert str(info.value) == f"config.json: mounts[4].destination: {words}" or \
        words in str(info.value)


def test_proc_mount_and_lxcfs_binds_accepted(tmp_path: Path) -> None:
    from sentry import mountspec

    b = _parse(tmp_path, _bind_proc("/proc/meminfo"))
    specs = mountspec.from_oci(b.mounts, b.path)
    assert [m.destination for m in specs if m.destination.startswith("/proc")] == [
        "/proc", "/proc/meminfo"]


# -- through `create`: one line, exit 1, nothing left --------------------------


def _write_bundle(root: Path, busybox: Path, mutate: Mutate | None, text: str | None) -> Path:
    b = root / "bundle"
    (b / "rootfs" / "bin").mkdir(parents=True)
    (b / "rootfs/bin/busybox").write_bytes(busybox.read_bytes())
    os.chmod(b / "rootfs/bin/busybox", 0o755)
    cfg = bundle.default_spec(["/bin/busybox", "true"])
    if mutate is not None:
        mutate(cfg)
    (b / "config.json").write_text(text if text is not None else json.dumps(cfg))
    return b


CREATE_CASES = [
    pytest.param(_resources(memory={"limit": "64m"}), None, "linux.resources.memory.limit",
                 id="memory-limit-string"),
    pytest.param(_resources(pids={"limit": "x"}), None, "linux.resources.pids.limit",
                 id="pids-limit-string"),
    pytest.param(None, '{"ociVersion": ' + "[" * 50000 + "]" * 50000 + "}",
                 "nested too deeply", id="deep-json"),
    pytest.param(_bind_proc("/proc"), None, "not of type proc", id="bind-over-proc"),
    pytest.param(_bind_proc("/proc/sys"), None, "inside /proc", id="bind-inside-proc"),
]


@pytest.mark.root
@pytest.mark.parametrize(("mutate", "text", "field"), CREATE_CASES)
def test_create_refuses_bad_bundle(tmp_path: Path, busybox: Path, mutate: Mutate | None,
                                   text: str | None, field: str) -> None:
    if os.geteuid() != 0:
        pytest.skip("create needs root (namespaces, seccomp)")
    b = _write_bundle(tmp_path, busybox, mutate, text)
    cid = f"oci-bundle-{uuid.uuid4().hex[:12]}"
    state = tmp_path / "state"
    # create's sandbox host keeps create's stdio: files, not pipes (a pipe would
    # not reach EOF while a wrongly created container lives).
    with tempfile.TemporaryFile("w+") as err:
        res = subprocess.run([sys.executable, str(RUNSC), "--root", str(state), "create",
                              "--bundle", str(b), cid], stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=err, timeout=60,
                             start_new_session=True)
        err.seek(0)
        stderr = err.read()
    if res.returncode == 0:  # wrongly accepted: do not leave it running
        subprocess.run([sys.executable, str(RUNSC), "--root", str(state), "delete", "--force",
                        cid], capture_output=True, timeout=60)
    assert res.returncode == 1, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and field in lines[0], stderr
    assert "Traceback" not in stderr
    assert not (state / cid).exists()
    assert_no_process_left(cid, grace=0.5)
