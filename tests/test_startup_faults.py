"""A sandbox that dies during start-up leaves nothing behind: the Sentry or the
Gofer SIGKILLed at each named stage of start-up (PYVISOR_FAULT, shm/faults.py),
and a memory limit too small to boot.  Each time `runsc.py run` says what
happened in one line, and no process, /dev/shm object or state directory of
that sandbox is left.

Tracking by the sandbox's own identity: other sandboxes (other tests, other
users of the machine) run in parallel and have /dev/shm objects of their own,
so each run gets a /dev/shm of its own, a tmpfs in a mount namespace made for
it (``unshare -m``), and whatever is in it afterwards is this sandbox's leak.
Its processes are the ones whose command line names its container id or its
bundle (the Gofer's names the bundle's rootfs; stubs carry the Sentry's).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from helpers import RUNSC, processes_mentioning
from test_oci import (  # noqa: F401 - fixtures, used by name
    cid,
    make_bundle,
    state_root,
)

from shm.faults import STAGES

pytestmark = [pytest.mark.root, pytest.mark.sandbox]
TIMEOUT = 60.0
RECOVERED = "gofer-forked"  # the one stage a sandbox survives (see below)

# Runs inside the new mount namespace: a private /dev/shm, the command, then
# (once the sandbox's processes are gone) what is left in that /dev/shm.
_INSIDE = r"""
import json, os, subprocess, sys, time
marks, argv = json.loads(sys.argv[1])
subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256m,mode=1777", "pyvisor-test",
                "/dev/shm"], check=True)
res = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                     timeout=60)

def mine():
    out = []
    for e in os.listdir("/proc"):
        if e.isdigit() and int(e) != os.getpid():
            try:
                cmd = open(f"/proc/{e}/cmdline", "rb").read().decode(errors="replace")
                state = open(f"/proc/{e}/stat").read().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
            if state != "Z" and any(m in cmd for m in marks):
                out.append(cmd.replace("\0", " "))
    return out

deadline = time.monotonic() + 10
while mine() and time.monotonic() < deadline:
    time.sleep(0.05)
print(json.dumps({"rc": res.returncode, "stdout": res.stdout, "stderr": res.stderr,
                  "processes": mine(), "shm": sorted(os.listdir("/dev/shm"))}))
"""


def _unshare() -> str:
    path = shutil.which("unshare")
    if path is None:
        pytest.skip("unshare (util-linux) is needed to give the sandbox a /dev/shm of its own")
    return path


def _run_isolated(state_root: Path, cid: str, bundle: Path,  # noqa: F811
                  env: dict[str, str] | None = None) -> dict[str, Any]:
    argv = [sys.executable, str(RUNSC), "--root", str(state_root), "run", "--bundle",
            str(bundle), cid]
    payload = json.dumps([[cid, str(bundle)], argv])
    proc = subprocess.run([_unshare(), "--mount", "--propagation", "private", sys.executable,
                           "-c", _INSIDE, payload], capture_output=True, text=True,
                          timeout=TIMEOUT + 30, env=env, start_new_session=True)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def _assert_clean_failure(out: dict[str, Any], state_root: Path, cid: str) -> None:  # noqa: F811
    assert out["rc"] != 0, out
    lines = out["stderr"].splitlines()
    assert len(lines) == 1 and lines[0].startswith("runsc.py: "), out["stderr"]
    assert out["processes"] == [], "processes outlived the sandbox"
    assert out["shm"] == [], "/dev/shm objects outlived the sandbox"
    assert not (state_root / cid).exists(), "the state directory outlived the sandbox"
    assert not processes_mentioning(cid)


@pytest.mark.parametrize("stage", STAGES)
def test_killed_at_a_startup_stage(state_root: Path, cid: str,  # noqa: F811
                                   make_bundle: Callable[..., Path],  # noqa: F811
                                   stage: str) -> None:
    b = make_bundle(["echo", "hello"])
    env = {**_base_env(), "PYVISOR_FAULT": stage}
    out = _run_isolated(state_root, cid, b, env)
    if stage == RECOVERED:
        # The Sentry execs a Gofer of its own when the pre-forked one is gone.
        assert (out["rc"], out["stdout"], out["stderr"]) == (0, "hello\n", ""), out
        assert out["processes"] == [] and out["shm"] == []
        return
    assert "hello" not in out["stdout"]
    _assert_clean_failure(out, state_root, cid)


def test_no_fault_runs(state_root: Path, cid: str,  # noqa: F811
                       make_bundle: Callable[..., Path]) -> None:  # noqa: F811
    """The harness itself: the same run without a fault prints and leaves
    nothing either (so the checks above can see a leak: they would fail on
    a channel that was never unlinked)."""
    b = make_bundle(["echo", "hello"])
    out = _run_isolated(state_root, cid, b, _base_env())
    assert (out["rc"], out["stdout"], out["stderr"]) == (0, "hello\n", ""), out
    assert out["processes"] == [] and out["shm"] == []


def test_memory_limit_too_small_to_boot(state_root: Path, cid: str,  # noqa: F811
                                        make_bundle: Callable[..., Path],  # noqa: F811
                                        ) -> None:  # noqa: F811
    """A memory limit the sandbox cannot boot in (the OOM killer takes the
    Sentry, the Gofer or the sandbox host, at whatever point it is)."""
    from sentry.oci.cgroups import _hierarchies

    h = _hierarchies()
    if "memory" not in h and "" not in h:
        pytest.skip("no memory cgroup hierarchy mounted here")
    rel = f"pyvisor-test-{cid}"

    def edit(cfg: dict[str, Any]) -> None:
        cfg.setdefault("linux", {})["cgroupsPath"] = f"/{rel}"
        cfg["linux"]["resources"] = {"memory": {"limit": 4 << 20}}

    b = make_bundle(["echo", "never"], edit=edit)
    out = _run_isolated(state_root, cid, b, _base_env())
    for mnt in h.values():
        assert not Path(mnt, rel).exists(), "the cgroup outlived the sandbox"
    _assert_clean_failure(out, state_root, cid)


def _base_env() -> dict[str, str]:
    import os

    env = dict(os.environ)
    env.pop("PYVISOR_FAULT", None)
    return env
