"""clone3(2), CLONE_PIDFD and waitid(P_PIDFD) (issue 14), differential: the
struct's size rules (EINVAL, E2BIG for a non-zero tail, EFAULT), flag
checks, set_tid's errors, CLONE_CLEAR_SIGHAND, and glibc 2.36's own users of
clone3 (posix_spawn, pthread_create), static and dynamic."""

from __future__ import annotations

import pytest
from helpers import Programs, run_native, run_sandbox


@pytest.mark.parametrize("variant", ["static", "static-pie"])
def test_clone3_calls(programs: Programs, variant: str) -> None:
    prog = programs.path("clone3_calls", variant)
    native = run_native([prog])
    assert native.returncode == 0, native.describe()
    assert "clone3 pidfd: fd>2 1, waitid 0, same pid 1, code 1 status 5" in native.out
    sandboxed = run_sandbox([prog])
    assert (sandboxed.out, sandboxed.err, sandboxed.returncode) == \
        (native.out, native.err, native.returncode), sandboxed.describe()
