"""The sandbox's cgroup v2 hierarchy (sentry/vfs/cgroupfs.py): the LTP's
tst_cgroup mounts cgroup2 and needs its core files, groups and
CLONE_INTO_CGROUP (clone303).

Sandbox only, against the output Linux gave for the same program (run by
hand as root under `unshare --mount`, identical): natively it makes groups
in the host's own hierarchy and moves the test process through them, which
a test suite must not do to its host."""

from __future__ import annotations

import tempfile

import pytest
from helpers import Programs, run_sandbox

LINUX = """mount: ok
root has cgroup.procs: 1
root has cgroup.controllers: 1
root has cgroup.subtree_control: 1
root has cgroup.threads: 1
root has cgroup.stat: 1
mkdir a: ok
mkdir a/b: ok
a has cgroup.type: 1
enable memory: No such file or directory
enable bogus: Invalid argument
move to a: ok
a holds me alone: 1
fork stays in a: 1 (2 procs)
CLONE_INTO_CGROUP child in a/b: 1 (1 procs)
rmdir busy a: Device or resource busy
rmdir busy a/b: Device or resource busy
kill a/b: ok
its child killed: 1
rmdir a/b: ok
back to the root: ok
rmdir a: ok
umount: ok
"""


@pytest.mark.sandbox
def test_cgroup2_hierarchy_as_linux(programs: Programs) -> None:
    with tempfile.TemporaryDirectory(prefix="pyvisor-cg-") as d:
        res = run_sandbox([programs.path("cgroup2"), d])
    assert res.returncode == 0, res.describe()
    assert res.out == LINUX, res.describe()
