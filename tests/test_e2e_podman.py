"""End to end: podman (no daemon) runs busybox containers with runsc.py as its
OCI runtime (`podman --runtime PATH`).

Everything podman stores goes to a temporary directory: --root, --runroot,
--tmpdir, vfs storage, cgroupfs, a file events backend, and empty
containers.conf / storage.conf through CONTAINERS_CONF and
CONTAINERS_STORAGE_CONF, so the host's own images and containers are never
touched.  The runtime's state root is this session's too: podman's cleanup
process runs ``delete --force`` *without* the ``--runtime-flag`` flags given
to ``podman run`` (seen with podman 4.3), so ``--root`` is given by a
wrapper podman runs as the runtime (:func:`_runtime_with_root`), which
every call goes through; nothing lands in the host's /var/run/pyvisor.

Why a launcher and not runsc.py itself: podman runs ``delete --force`` from
``podman container cleanup``, which conmon starts with an *empty*
environment, so runsc.py's ``#!/usr/bin/env python3`` picks /usr/bin/python3,
which need not have pyvisor's dependencies (see e2e.launcher).  runc runs as
a sanity check of the harness.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import e2e
import pytest

IMAGE = "localhost/pyvisor-e2e-busybox:1"


def _runtime_with_root(base: Path) -> Path:
    """The runtime podman runs: the launcher with ``--root base/state`` put
    first (a later --root would still win, as with click).  /bin/sh by
    absolute path: podman's cleanup runs it with an empty environment."""
    path = base / "pyvisor-podman"
    path.write_text(f'#!/bin/sh\nexec "{e2e.launcher(base)}" --root "{base}/state" "$@"\n')
    path.chmod(0o755)
    return path


@dataclass
class Podman:
    argv: list[str]
    env: dict[str, str]
    base: Path
    runtimes: dict[str, list[str]]  # name -> the flags that select it
    cids: list[str] = field(default_factory=list)  # containers run with pyvisor

    def __call__(self, *args: str, timeout: float = e2e.CMD_TIMEOUT
                 ) -> subprocess.CompletedProcess[str]:
        return e2e.run([*self.argv, *args], env=self.env, timeout=timeout)

    def run(self, runtime: str, *args: str) -> subprocess.CompletedProcess[str]:
        """podman run --rm; the container id is kept to check its state went away."""
        cidfile = self.base / f"cid-{len(list(self.base.glob('cid-*')))}"
        res = self("run", "--rm", "--network=none", "--cidfile", str(cidfile),
                   *self.runtimes[runtime], IMAGE, *args)
        if runtime == "pyvisor" and cidfile.exists():
            self.cids.append(cidfile.read_text().strip())
        return res


def _why(res: subprocess.CompletedProcess[str]) -> str:
    return f"exit {res.returncode}\nstdout: {res.stdout[-1500:]}\nstderr: {res.stderr[-1500:]}"


@pytest.fixture(scope="module")
def podman() -> Iterator[Podman]:
    e2e.require_root()
    exe = e2e.require_tool("podman")
    runc = e2e.require_tool("runc")
    e2e.require_busybox()
    base = e2e.short_tmpdir("pyv-pm-")
    try:
        (base / "containers.conf").write_text("")
        (base / "storage.conf").write_text(
            f'[storage]\ndriver = "vfs"\nrunroot = "{base}/runroot"\n'
            f'graphroot = "{base}/root"\n')
        env = e2e.tool_env({"CONTAINERS_CONF": str(base / "containers.conf"),
                            "CONTAINERS_STORAGE_CONF": str(base / "storage.conf"),
                            "TMPDIR": str(base / "tmp")})
        (base / "tmp").mkdir()
        argv = [exe, "--root", str(base / "root"), "--runroot", str(base / "runroot"),
                "--tmpdir", str(base / "tmp"), "--storage-driver", "vfs",
                "--cgroup-manager", "cgroupfs", "--events-backend", "file"]
        runtime = _runtime_with_root(base)
        # podman asks for rlimits at the host's maximum (nofile 1048576); runc sets
        # them on the host, which fails where root lacks CAP_SYS_RESOURCE, so
        # runc gets low limits (lowering needs no privilege).  pyvisor's rlimits
        # are the Sentry's own: it gets podman's defaults unchanged.
        p = Podman(argv, env, base, {
            "runc": ["--runtime", runc, "--ulimit", "nofile=1024:1024",
                     "--ulimit", "nproc=1024:1024"],
            "pyvisor": ["--runtime", str(runtime)],
        })
        res = p("info", "--format", "{{.Host.OCIRuntime.Name}}", timeout=60)
        if res.returncode != 0:
            e2e.unavailable(f"podman does not work here: {res.stderr}", _why(res))
        res = p("import", str(e2e.write_rootfs_tar(base / "rootfs.tar")), IMAGE)
        if res.returncode != 0:
            e2e.unavailable(f"podman import failed: {res.stderr}", _why(res))
        res = p.run("runc", "/bin/busybox", "echo", "sanity")
        if res.returncode != 0 or res.stdout != "sanity\n":
            e2e.unavailable(f"podman cannot run even runc containers here (harness problem, "
                            f"not pyvisor's): exit {res.returncode}: {res.stderr}", _why(res))
        yield p
    finally:
        subprocess.run([exe, "--root", str(base / "root"), "--runroot", str(base / "runroot"),
                        "--storage-driver", "vfs", "rm", "-af"], capture_output=True,
                       timeout=60, check=False, env=e2e.tool_env(), stdin=subprocess.DEVNULL)
        e2e.remove_tree(base)


@pytest.mark.parametrize("runtime", ["runc", "pyvisor"])
def test_echo(podman: Podman, runtime: str) -> None:
    res = podman.run(runtime, "/bin/busybox", "echo", "hi")
    assert (res.returncode, res.stdout) == (0, "hi\n"), _why(res)


@pytest.mark.parametrize("runtime", ["runc", "pyvisor"])
def test_exit_code(podman: Podman, runtime: str) -> None:
    res = podman.run(runtime, "/bin/busybox", "sh", "-c", "echo err >&2; exit 3")
    assert res.returncode == 3, _why(res)
    assert "err" in res.stderr


@pytest.mark.parametrize("runtime", ["runc", "pyvisor"])
def test_detach_exec_stop(podman: Podman, runtime: str) -> None:
    """podman run -d, podman exec (runtime exec --process), podman stop."""
    name = f"pyvisor-e2e-detached-{runtime}"
    try:
        res = podman("run", "-d", "--name", name, "--network=none",
                     *podman.runtimes[runtime], IMAGE, "/bin/busybox", "sleep", "120")
        assert res.returncode == 0, _why(res)
        res = podman("exec", name, "/bin/busybox", "echo", "from exec")
        assert (res.returncode, res.stdout) == (0, "from exec\n"), _why(res)
        res = podman("exec", name, "/bin/busybox", "sh", "-c", "exit 5")
        assert res.returncode == 5, _why(res)
        res = podman("stop", "-t", "2", name, timeout=60)
        assert res.returncode == 0, _why(res)
        res = podman("inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", name)
        status, code = res.stdout.split()
        assert status in ("exited", "stopped"), _why(res)
        assert int(code) in (137, 143), _why(res)  # SIGTERM, or SIGKILL after the grace time
    finally:
        podman("rm", "-f", name, timeout=60)


def test_nothing_left_behind(podman: Podman) -> None:
    """podman's cleanup (delete --force) reached the runtime: no state remains."""
    res = podman("ps", "-aq")
    assert res.stdout.strip() == "", _why(res)
    assert podman.cids, "no pyvisor container ran"
    state = podman.base / "state"
    assert state.is_dir(), "pyvisor containers ran, but not with this session's state root"
    left = [c for c in podman.cids if os.path.exists(state / c)]
    assert left == [] and os.listdir(state) == [], os.listdir(state)
