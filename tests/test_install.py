"""`runsc.py install` / `uninstall`: editing Docker's daemon.json the way
gVisor's `runsc install` does, without ever damaging the file.

The module is tested directly (fast, every edge) and the CLI through a
subprocess (exit codes, one-line errors, the path it registers)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import RUNSC

from sentry.oci.install import DEFAULT_RUNTIME, InstallError, install, uninstall


def _runsc(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(RUNSC), *args], capture_output=True, text=True,
                          timeout=60)


def _read(path: Path) -> object:
    return json.loads(path.read_text())


def test_default_name_does_not_clash_with_gvisor() -> None:
    assert DEFAULT_RUNTIME == "pyvisor"


def test_install_creates_file_and_directory(tmp_path: Path) -> None:
    conf = tmp_path / "etc" / "docker" / "daemon.json"
    install(str(conf), "pyvisor", "/opt/runsc.py", ["--debug", "--strace"])
    assert _read(conf) == {"runtimes": {"pyvisor": {"path": "/opt/runsc.py",
                                                    "runtimeArgs": ["--debug", "--strace"]}}}
    assert stat.S_IMODE(conf.stat().st_mode) == 0o644


def test_install_keeps_other_keys_and_runtimes(tmp_path: Path) -> None:
    conf = tmp_path / "daemon.json"
    before = {"storage-driver": "overlay2", "log-opts": {"max-size": "10m"},
              "runtimes": {"runsc": {"path": "/usr/bin/runsc", "runtimeArgs": ["--x"]}}}
    conf.write_text(json.dumps(before))
    conf.chmod(0o600)
    install(str(conf), "pyvisor", "/p/runsc.py", [])
    after = _read(conf)
    assert isinstance(after, dict)
    assert after["storage-driver"] == "overlay2"
    assert after["log-opts"] == {"max-size": "10m"}
    assert after["runtimes"]["runsc"] == before["runtimes"]["runsc"]  # type: ignore[index]
    assert after["runtimes"]["pyvisor"] == {"path": "/p/runsc.py", "runtimeArgs": []}
    assert stat.S_IMODE(conf.stat().st_mode) == 0o600  # an existing file keeps its mode
    assert [p.name for p in tmp_path.iterdir()] == ["daemon.json"]  # no temporary left


def test_install_replaces_own_entry(tmp_path: Path) -> None:
    conf = tmp_path / "daemon.json"
    install(str(conf), "pyvisor", "/old", ["--a"])
    install(str(conf), "pyvisor", "/new", ["--b"])
    assert _read(conf) == {"runtimes": {"pyvisor": {"path": "/new", "runtimeArgs": ["--b"]}}}


def test_empty_file_is_an_empty_config(tmp_path: Path) -> None:
    conf = tmp_path / "daemon.json"
    conf.write_text("\n")
    install(str(conf), "x", "/p", [])
    assert _read(conf) == {"runtimes": {"x": {"path": "/p", "runtimeArgs": []}}}


@pytest.mark.parametrize("content", ["{bad", "[1, 2]", '{"runtimes": []}', "\xff"])
def test_malformed_file_left_untouched(tmp_path: Path, content: str) -> None:
    conf = tmp_path / "daemon.json"
    conf.write_bytes(content.encode("latin-1"))
    with pytest.raises(InstallError, match="daemon.json"):
        install(str(conf), "pyvisor", "/p", [])
    with pytest.raises(InstallError):
        uninstall(str(conf), "pyvisor")
    assert conf.read_bytes() == content.encode("latin-1")
    assert [p.name for p in tmp_path.iterdir()] == ["daemon.json"]


def test_uninstall_removes_only_that_runtime(tmp_path: Path) -> None:
    conf = tmp_path / "daemon.json"
    conf.write_text(json.dumps({"debug": True, "runtimes": {
        "runsc": {"path": "/usr/bin/runsc"}, "pyvisor": {"path": "/p"}}}))
    uninstall(str(conf), "pyvisor")
    assert _read(conf) == {"debug": True, "runtimes": {"runsc": {"path": "/usr/bin/runsc"}}}


def test_uninstall_missing_runtime_or_file_is_an_error(tmp_path: Path) -> None:
    conf = tmp_path / "daemon.json"
    with pytest.raises(InstallError, match="no such file"):
        uninstall(str(conf), "pyvisor")
    assert not conf.exists()
    conf.write_text('{"runtimes": {"runsc": {"path": "/r"}}}')
    with pytest.raises(InstallError, match="'pyvisor' not found"):
        uninstall(str(conf), "pyvisor")
    assert _read(conf) == {"runtimes": {"runsc": {"path": "/r"}}}


def test_cli_install_uninstall(tmp_path: Path) -> None:
    conf = tmp_path / "docker" / "daemon.json"
    res = _runsc("install", "--config-file", str(conf), "--", "--debug-log=/tmp/l", "--strace")
    assert res.returncode == 0, res.stderr
    entry = _read(conf)["runtimes"]["pyvisor"]  # type: ignore[index]
    # the launcher written beside runsc.py (sentry/oci/launcher.py; test_shimcalls.py)
    assert entry["path"] == os.path.join(os.path.dirname(os.path.abspath(RUNSC)),
                                         "pyvisor-runtime")
    assert os.access(entry["path"], os.X_OK)  # Docker execs it directly
    ver = subprocess.run([entry["path"], "--version"], capture_output=True, text=True,
                         timeout=60, env={})  # as podman's cleanup runs it: no PATH at all
    assert ver.returncode == 0 and "runsc.py" in ver.stdout + ver.stderr, ver
    assert entry["runtimeArgs"] == ["--debug-log=/tmp/l", "--strace"]
    res = _runsc("install", "--runtime", "other", "--config-file", str(conf))
    assert res.returncode == 0, res.stderr
    res = _runsc("uninstall", "--config-file", str(conf))
    assert res.returncode == 0, res.stderr
    assert list(_read(conf)["runtimes"]) == ["other"]  # type: ignore[index]
    res = _runsc("uninstall", "--config-file", str(conf))
    assert res.returncode == 1
    assert res.stderr.count("\n") == 1 and "not found" in res.stderr


def test_cli_malformed_json_one_line_exit_1(tmp_path: Path) -> None:
    conf = tmp_path / "daemon.json"
    conf.write_text("{not json")
    res = _runsc("install", "--config-file", str(conf))
    assert res.returncode == 1
    assert res.stderr.count("\n") == 1 and "invalid JSON" in res.stderr
    assert "Traceback" not in res.stderr
    assert conf.read_text() == "{not json"


def test_cli_flags_need_the_separator(tmp_path: Path) -> None:
    """A runtime flag given without `--` is refused, not silently registered."""
    conf = tmp_path / "daemon.json"
    res = _runsc("install", "--config-file", str(conf), "--strace")
    assert res.returncode == 2
    assert not conf.exists()


def test_uninstall_leaves_no_empty_runtimes(tmp_path: Path) -> None:
    """What install added goes: an emptied "runtimes" is dropped, other keys stay."""
    conf = tmp_path / "daemon.json"
    conf.write_text(json.dumps({"storage-driver": "overlay2"}))
    install(str(conf), "pyvisor", "/p", [])
    assert uninstall(str(conf), "pyvisor") is False
    assert _read(conf) == {"storage-driver": "overlay2"}


def test_uninstall_removes_the_file_install_created(tmp_path: Path) -> None:
    """install on no file, then uninstall: no daemon.json of {"runtimes": {}}
    is left behind (to dockerd, no file and an empty one are the same)."""
    conf = tmp_path / "docker" / "daemon.json"
    install(str(conf), "pyvisor", "/p", [])
    assert uninstall(str(conf), "pyvisor") is True
    assert not conf.exists()
    assert list(conf.parent.iterdir()) == []


def test_cli_says_dockerd_must_reload(tmp_path: Path) -> None:
    conf = tmp_path / "daemon.json"
    res = _runsc("install", "--config-file", str(conf))
    assert res.returncode == 0, res.stderr
    assert "reload" in res.stderr and "kill -HUP $(pidof dockerd)" in res.stderr, res.stderr
    assert "systemctl reload docker" in res.stderr
    res = _runsc("uninstall", "--config-file", str(conf))
    assert res.returncode == 0, res.stderr
    assert "kill -HUP $(pidof dockerd)" in res.stderr, res.stderr
    assert "file removed" in res.stderr
    assert not conf.exists()


def test_deeply_nested_daemon_json_is_one_line(tmp_path: Path) -> None:
    conf = tmp_path / "daemon.json"
    text = '{"a": ' + "[" * 100000 + "]" * 100000 + "}"
    conf.write_text(text)
    res = _runsc("install", "--config-file", str(conf))
    assert res.returncode == 1
    assert res.stderr.count("\n") == 1 and "nested too deeply" in res.stderr, res.stderr
    assert conf.read_text() == text
