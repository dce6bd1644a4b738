"""Memory and process resource limits against Linux's: RLIMIT_MEMLOCK (mlock,
mlock2, mlockall and MCL_FUTURE's mmap), RLIMIT_AS (mmap, mremap, MAP_FIXED
replacing), RLIMIT_DATA (private writable mappings, brk, the zero-soft-limit
exception) and RLIMIT_NPROC at fork, as an unprivileged uid, plus root's
exemptions and VmLck in /proc/PID/status."""

from __future__ import annotations

import pytest
from helpers import Programs, assert_same_as_native


@pytest.mark.sandbox
@pytest.mark.parametrize("variant", ["static", "static-pie"])
def test_memory_limits_match_linux(programs: Programs, variant: str) -> None:
    prog = programs.path("rlimit_mem", variant)
    assert_same_as_native(prog, markers=(
        "mlock 3 pages over a 2-page limit: ENOMEM", "mmap 32 pages locked: EAGAIN",
        "mmap 64 MiB past RLIMIT_AS: ENOMEM", "sbrk 32 MiB past RLIMIT_DATA: ENOMEM",
        "fork at RLIMIT_NPROC 1: EAGAIN", "VmLck 8 kB", "child: 0"))
