"""The OCI container's pid namespace as config.json asks for it, seen from the
host as the runtime-tools validator and runc's users see it: the state's pid
(the sandbox host, what a shim waits on) is pid 1 of a new pid namespace, or
a process of the one a path names, and the Sentry, Gofer, zygote and stubs
are in it too (sentry/oci/namespaces.py).  Pids handed to the host (the pid
file, state.json, a hook's state) are host pids all the same, and a
Sentry's channel names in the host's /dev/shm carry its host pid, not its
pid in the namespace (2 in every container)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import host_children
from test_oci import (  # noqa: F401 - fixtures, used by name
    cid,
    make_bundle,
    runsc,
    runsc_bg,
    state_root,
)

pytestmark = [pytest.mark.root, pytest.mark.sandbox]


def _pid_ns(pid: int | str) -> str:
    return os.readlink(f"/proc/{pid}/ns/pid")


def _status(pid: int) -> dict[str, str]:
    with open(f"/proc/{pid}/status") as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)


def _nspid(pid: int) -> list[int]:
    """A process's pid at each level, the host's first (NSpid)."""
    return [int(p) for p in _status(pid)["NSpid"].split()]


def _descendants(pid: int) -> list[int]:
    found, frontier = [], [pid]
    while frontier:
        kids = [k for p in frontier for k in host_children(p)]
        found += kids
        frontier = kids
    return found


def _gofer(pids: list[int]) -> int | None:
    for p in pids:
        try:
            if b"gofer.server" in Path(f"/proc/{p}/cmdline").read_bytes():
                return p
        except OSError:
            continue
    return None


def _sandbox_up(host: int, timeout: float = 30.0) -> tuple[int, list[int]]:
    """(the Sentry, every process below it) once the Gofer, the zygote and
    the init's stub are there."""
    deadline = time.monotonic() + timeout
    while True:
        kids = host_children(host)
        below = _descendants(kids[0]) if len(kids) == 1 else []
        if len(below) >= 3 and _gofer(below) is not None:
            return kids[0], below
        assert time.monotonic() < deadline, f"no sandbox below host {host}: {kids} {below}"
        time.sleep(0.1)


def _create(root: Path, cid: str, bundle: Path, tmp_path: Path) -> int:  # noqa: F811
    pid_file = tmp_path / "pid"
    res = runsc_bg(root, "create", "--bundle", str(bundle), "--pid-file", str(pid_file), cid)
    assert res.returncode == 0, res.stderr
    return int(pid_file.read_text())


def test_container_is_pid_1_of_a_new_pid_namespace(state_root: Path, cid: str,  # noqa: F811
                                                   make_bundle: Callable[..., Path],  # noqa: F811
                                                   tmp_path: Path) -> None:
    hook_log = tmp_path / "hook-state"

    def edit(cfg: dict[str, Any]) -> None:
        assert {"type": "pid"} in cfg["linux"]["namespaces"]  # runsc.py spec's default
        cfg["hooks"] = {"createRuntime": [{"path": "/bin/sh",
                                           "args": ["sh", "-c", f"cat > {hook_log}"]}]}

    host = _create(state_root, cid, make_bundle(["sleep", "30"], edit=edit), tmp_path)
    try:
        state = json.loads(runsc(state_root, "state", cid).stdout)
        assert state["pid"] == host
        assert json.loads(hook_log.read_text())["pid"] == host, "a hook gets the host pid"
        ns = _pid_ns(host)
        assert ns != _pid_ns("self"), "the container's process is in the host's pid namespace"
        assert _nspid(host) == [host, 1], "it is the namespace's init, as runc's is"
        assert runsc(state_root, "start", cid).returncode == 0
        sentry, below = _sandbox_up(host)
        assert len(_nspid(sentry)) == 2
        for p in [sentry, *below]:
            assert _pid_ns(p) == ns, f"{p} ({Path(f'/proc/{p}/cmdline').read_bytes()[:60]!r})"
        # The Sentry reads its own namespace's /proc (sentry/confine.py): it
        # pinned the Gofer by its pid there, not some host process.
        if len(os.sched_getaffinity(host)) > 1:
            gofer = _gofer(below)
            assert gofer is not None
            assert len(os.sched_getaffinity(gofer)) == 1, "the Gofer was not pinned"
    finally:
        runsc(state_root, "delete", "--force", cid)


@pytest.fixture
def pid_ns_holder() -> Iterator[str]:
    """The path of a new pid namespace that a `sleep` holds (as init)."""
    with subprocess.Popen(["unshare", "--pid", "--kill-child", "sleep", "60"]) as proc:
        path = f"/proc/{proc.pid}/ns/pid_for_children"
        deadline = time.monotonic() + 10
        while os.readlink(path) == _pid_ns("self"):  # until unshare has unshared
            assert time.monotonic() < deadline, "unshare made no pid namespace"
            time.sleep(0.02)
        yield path
        proc.kill()


def test_pid_namespace_path_is_joined(state_root: Path, cid: str,  # noqa: F811
                                      make_bundle: Callable[..., Path],  # noqa: F811
                                      pid_ns_holder: str, tmp_path: Path) -> None:
    wanted = os.readlink(pid_ns_holder)

    def edit(cfg: dict[str, Any]) -> None:
        ns = [n for n in cfg["linux"]["namespaces"] if n["type"] != "pid"]
        cfg["linux"]["namespaces"] = [*ns, {"type": "pid", "path": pid_ns_holder}]

    host = _create(state_root, cid, make_bundle(["sleep", "30"], edit=edit), tmp_path)
    try:
        assert _pid_ns(host) == wanted
        assert len(_nspid(host)) == 2 and _nspid(host)[1] != 1, "not init: `sleep` is"
        assert runsc(state_root, "start", cid).returncode == 0
        sentry, below = _sandbox_up(host)
        assert {_pid_ns(p) for p in [sentry, *below]} == {wanted}
    finally:
        runsc(state_root, "delete", "--force", cid)


def test_without_a_pid_namespace_the_host_one_is_kept(state_root: Path, cid: str,  # noqa: F811
                                                      make_bundle: Callable[..., Path],  # noqa: F811,E501
                                                      tmp_path: Path) -> None:
    """No ``pid`` entry (docker --pid=host): the caller's pid namespace."""
    def edit(cfg: dict[str, Any]) -> None:
        cfg["linux"]["namespaces"] = [n for n in cfg["linux"]["namespaces"]
                                      if n["type"] != "pid"]

    host = _create(state_root, cid, make_bundle(["sleep", "30"], edit=edit), tmp_path)
    try:
        assert _pid_ns(host) == _pid_ns("self")
        assert len(_nspid(host)) == 1
    finally:
        runsc(state_root, "delete", "--force", cid)


def test_a_sandbox_leaves_other_sandboxes_channel_names(state_root: Path, cid: str,  # noqa: F811
                                                        make_bundle: Callable[..., Path],  # noqa: F811,E501
                                                        ) -> None:
    """When a Sentry ends, its host removes the /dev/shm names it may have
    left: by its host pid.  By its pid in its namespace (2, as every OCI
    Sentry's) it would remove those of another sandbox still booting."""
    tag = os.urandom(6).hex()
    decoys = [Path(f"/dev/shm/pyvisor-2-{tag}"), Path(f"/dev/shm/sem.pyvisor-2-{tag}.work")]
    for d in decoys:
        d.write_bytes(b"")
    try:
        res = runsc(state_root, "run", "--bundle", str(make_bundle(["true"])), cid)
        assert res.returncode == 0, res.stderr
        assert [d.exists() for d in decoys] == [True, True]
    finally:
        for d in decoys:
            d.unlink(missing_ok=True)


TAG_CHILD = r"""
import ctypes, os, sys
sys.path.insert(0, sys.argv[1])
from shm import layout
if ctypes.CDLL(None, use_errno=True).unshare(0x20000000) != 0:
    sys.exit(3)
pid = os.fork()
if pid == 0:
    layout.set_creator_tag()
    print(os.getpid(), layout.creator_tag(), layout.tag_of_name(
        f"/{layout.NAME_PREFIX}{layout.creator_tag()}-00ff"), flush=True)
    os._exit(0)
os.waitpid(pid, 0)
print(pid)
"""


def test_channel_tag_is_the_host_pid() -> None:
    """A process in a pid namespace of its own tags its channel names with
    the pid the host knows it by (the fork's answer to its parent)."""
    from helpers import REPO_ROOT

    res = subprocess.run([sys.executable, "-c", TAG_CHILD, str(REPO_ROOT)],
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 0, res.stderr
    inner, outer = res.stdout.splitlines()
    host = outer.strip()
    assert inner.split() == ["1", host, host]
