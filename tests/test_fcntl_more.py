"""fcntl's owner, signal, lease and pipe-size commands, positional I/O on a
pipe (ESPIPE before EBADF), fsync of files Linux has no fsync for, and
waitpid(INT_MIN) (ESRCH, one of issue 14's named bugs), against Linux."""

from __future__ import annotations

import tempfile

import pytest
from helpers import Programs, run_native, run_sandbox


@pytest.mark.sandbox
def test_fcntl_more_matches_linux(programs: Programs) -> None:
    prog = programs.path("fcntl_more")
    with tempfile.TemporaryDirectory(prefix="pyvisor-fcntl-") as nat_dir, \
            tempfile.TemporaryDirectory(prefix="pyvisor-fcntl-") as box_dir:
        nat = run_native([prog, nat_dir])
        box = run_sandbox([prog, box_dir])
    assert nat.returncode == 0, nat.describe()
    for line in ("waitpid INT_MIN: ESRCH", "write lease with others open: EAGAIN",
                 "pwritev2 on a pipe's read end: ESPIPE", "fsync /dev/null: EINVAL",
                 "F_SETPIPE_SZ 2^31+1: EINVAL"):
        assert line in nat.out, nat.describe()
    assert box.out == nat.out, box.describe()
    assert (box.returncode, box.err) == (nat.returncode, nat.err), box.describe()
