"""fcntl's owner, signal, lease and pipe-size commands, positional I/O on a
pipe (ESPIPE before EBADF), fsync of files Linux has no fsync for, and
waitpid(INT_MIN) (ESRCH, one of issue 14's named bugs), against Linux."""

from __future__ import annotations

import pytest
from helpers import Programs, assert_same_as_native


@pytest.mark.sandbox
def test_fcntl_more_matches_linux(programs: Programs) -> None:
    prog = programs.path("fcntl_more")
    assert_same_as_native(prog, in_tmpdir=True, markers=(
        "waitpid INT_MIN: ESRCH", "write lease with others open: EAGAIN",
        "pwritev2 on a pipe's read end: ESPIPE", "fsync /dev/null: EINVAL",
        "F_SETPIPE_SZ 2^31+1: EINVAL"))
