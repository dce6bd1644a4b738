"""Advisory file locks among the sandbox's processes, against Linux's."""

from __future__ import annotations

import tempfile

import pytest
from helpers import Programs, run_native, run_sandbox


@pytest.mark.sandbox
def test_fcntl_and_flock_locks(programs: Programs) -> None:
    prog = programs.path("files_locks")
    with tempfile.TemporaryDirectory(prefix="pyvisor-locks-") as nat_dir, \
            tempfile.TemporaryDirectory(prefix="pyvisor-locks-") as box_dir:
        nat = run_native([prog, nat_dir])
        box = run_sandbox([prog, box_dir])
    assert nat.returncode == 0, nat.describe()
    assert "child wrlck 2: EAGAIN" in nat.out and "flock ex 2: EAGAIN" in nat.out
    assert box.out == nat.out, box.describe()
    assert box.returncode == 0


@pytest.mark.sandbox
def test_getlk_answers(programs: Programs) -> None:
    """F_GETLK leaves the caller's struct alone but for l_type when nothing
    conflicts (it wrote SEEK_SET, its own start and pid 0), and names the
    conflicting lock's owner."""
    prog = programs.path("fcntl_getlk")
    with tempfile.TemporaryDirectory(prefix="pyvisor-getlk-") as nat_dir, \
            tempfile.TemporaryDirectory(prefix="pyvisor-getlk-") as box_dir:
        nat = run_native([prog, f"{nat_dir}/f"])
        box = run_sandbox([prog, f"{box_dir}/f"])
    assert nat.returncode == 0, nat.describe()
    assert "whence 1 start 1 len 2 pid given" in nat.out and "pid child" in nat.out
    assert (box.out, box.err, box.returncode) == (nat.out, nat.err, nat.returncode), \
        box.describe()
