"""The container's host cgroups (sentry/oci/cgroups.py): the sandbox host and
everything below it sit in ``linux.cgroupsPath`` with ``linux.resources``
applied, as runc places a container, and delete removes the directories."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from test_oci import (  # noqa: F401 - fixtures, used by name
    _children,
    cid,
    make_bundle,
    runsc,
    runsc_bg,
    state_root,
)

from sentry.oci.cgroups import _hierarchies, host_pids_max

MEMORY_LIMIT = 256 << 20
PIDS_LIMIT = 77


def _memory_and_pids_dirs(rel: str) -> tuple[Path, Path, str, str]:
    """(memory dir, pids dir, memory file, pids file) for v1, else v2."""
    h = _hierarchies()
    if "memory" in h and "pids" in h:
        return (Path(h["memory"], rel), Path(h["pids"], rel), "memory.limit_in_bytes",
                "pids.max")
    if "" in h:
        return Path(h[""], rel), Path(h[""], rel), "memory.max", "pids.max"
    pytest.skip("no memory/pids cgroup hierarchy mounted here")


def _test_dirs(name: str, systemd: bool = False) -> tuple[str, Path, Path, str, str]:
    """(cgroupsPath, memory dir, pids dir, memory file, pids file) for a test
    container; skips where the cgroup hierarchies are not writable.  With
    ``systemd``, the path is the systemd driver's slice:prefix:name, which
    lands where systemd would put the scope (a parent slice per dash)."""
    if systemd:
        rel = f"pyvisor.slice/pyvisor-test.slice/docker-{name}.scope"
        path = f"pyvisor-test.slice:docker:{name}"
    else:
        rel = f"pyvisor-test/{name}"
        path = f"/{rel}"
    mem_dir, pids_dir, mem_file, pids_file = _memory_and_pids_dirs(rel)
    root = mem_dir.parents[len(Path(rel).parts) - 1]
    if not os.access(root, os.W_OK):
        pytest.skip(f"{root} is not writable here")
    return path, mem_dir, pids_dir, mem_file, pids_file


def _procs(directory: Path) -> set[int]:
    return {int(x) for x in (directory / "cgroup.procs").read_text().split()}


@pytest.mark.parametrize("systemd", [False, True], ids=["cgroupfs", "systemd"])
def test_sandbox_runs_in_the_bundles_cgroup(state_root: Path, cid: str,  # noqa: F811
                                            make_bundle: Callable[..., Path],  # noqa: F811
                                            tmp_path: Path, systemd: bool) -> None:
    path, mem_dir, pids_dir, mem_file, pids_file = _test_dirs(cid, systemd)

    def edit(cfg: dict[str, Any]) -> None:
        cfg.setdefault("linux", {})["cgroupsPath"] = path
        cfg["linux"]["resources"] = {"memory": {"limit": MEMORY_LIMIT},
                                     "pids": {"limit": PIDS_LIMIT}}

    b = make_bundle(["sleep", "30"], edit=edit)
    pid_file = tmp_path / "pid"
    res = runsc_bg(state_root, "create", "--bundle", str(b), "--pid-file", str(pid_file), cid)
    assert res.returncode == 0, res.stderr
    try:
        host = int(pid_file.read_text())
        assert runsc(state_root, "start", cid).returncode == 0
        assert int((mem_dir / mem_file).read_text()) == MEMORY_LIMIT
        assert int((pids_dir / pids_file).read_text()) == host_pids_max(PIDS_LIMIT)
        sentry = _children(host)
        assert sentry, "the Sentry is the host's child"
        inside = _procs(mem_dir)
        assert host in inside and sentry[0] in inside, "the host and the Sentry"
        assert set(_children(sentry[0])) <= inside, "the Gofer and the stubs too"
        assert inside == set(_procs(pids_dir)), "the same processes in every hierarchy"
        # `create` joined on its own and left (cgroups.EarlyJoin); the memory
        # the Sentry took at start-up is charged inside (it is ~20 MB or more)
        usage = "memory.usage_in_bytes" if mem_file.endswith("bytes") else "memory.current"
        assert int((mem_dir / usage).read_text()) > 8 << 20
    finally:
        assert runsc(state_root, "kill", cid, "KILL").returncode == 0
        runsc(state_root, "delete", "--force", cid)
    assert not mem_dir.exists() and not pids_dir.exists(), "delete removes the cgroups"
    for d in {mem_dir.parent, pids_dir.parent}:  # the "pyvisor-test" parents (slices)
        with contextlib.suppress(OSError):
            d.rmdir()
            if systemd:
                d.parent.rmdir()


def test_failed_create_leaves_no_cgroup(state_root: Path, cid: str,  # noqa: F811
                                        make_bundle: Callable[..., Path]) -> None:  # noqa: F811
    """`create` joins the cgroups while it validates (cgroups.EarlyJoin): a bundle
    that then fails validation leaves no directory, and `create` itself gone."""
    path, mem_dir, pids_dir, _, _ = _test_dirs(cid)

    def edit(cfg: dict[str, Any]) -> None:
        cfg.setdefault("linux", {})["cgroupsPath"] = path
        cfg["mounts"].append({"destination": "/x", "type": "nosuchfs", "source": "none"})

    b = make_bundle(["true"], edit=edit)
    res = runsc_bg(state_root, "create", "--bundle", str(b), cid)
    assert res.returncode == 1 and "mounts[" in res.stderr, res.stderr
    assert not mem_dir.exists() and not pids_dir.exists()
    for d in {mem_dir.parent, pids_dir.parent}:
        with contextlib.suppress(OSError):
            d.rmdir()


def test_unusable_paths_make_no_cgroup() -> None:
    from sentry.oci.cgroups import _clean_path

    assert _clean_path("/docker/abc") == "/docker/abc"  # from each hierarchy's root
    assert _clean_path("docker/abc") == "docker/abc"  # below the caller's own cgroup
    for bad in ("", "/", "../escape", "/a/../../b", "a:b", "a:b:c:d"):
        assert _clean_path(bad) is None, bad


def test_systemd_paths_land_where_systemd_puts_the_unit() -> None:
    """The systemd driver's slice:prefix:name, as runc's systemd driver
    expands it (libcontainer's ExpandSlice and scope naming)."""
    from sentry.oci.cgroups import _clean_path

    assert _clean_path("system.slice:docker:abc") == "/system.slice/docker-abc.scope"
    assert _clean_path(":docker:abc") == "/system.slice/docker-abc.scope"  # the default slice
    assert _clean_path("a-b-c.slice:runc:x") == "/a.slice/a-b.slice/a-b-c.slice/runc-x.scope"
    assert _clean_path("-.slice::x") == "/x.scope"  # the root slice, no prefix
    assert _clean_path("a.slice::a-b.slice") == "/a.slice/a-b.slice"  # a sub-slice
    for bad in ("a.slice::b.slice",  # a slice not under its parent
                "notaslice:docker:abc", "a--b.slice:p:x", "-a.slice:p:x", "a-.slice:p:x",
                "system.slice:docker:", "system.slice:do/cker:x", "system.slice:docker:../x"):
        assert _clean_path(bad) is None, bad
