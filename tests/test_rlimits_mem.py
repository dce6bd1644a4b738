"""Memory and process resource limits against Linux's: RLIMIT_MEMLOCK (mlock,
mlock2, mlockall and MCL_FUTURE's mmap), RLIMIT_AS (mmap, mremap, MAP_FIXED
replacing), RLIMIT_DATA (private writable mappings, brk, the zero-soft-limit
exception) and RLIMIT_NPROC at fork, as an unprivileged uid, plus root's
exemptions and VmLck in /proc/PID/status."""

from __future__ import annotations

import pytest
from helpers import Programs, run_native, run_sandbox


@pytest.mark.sandbox
@pytest.mark.parametrize("variant", ["static", "static-pie"])
def test_memory_limits_match_linux(programs: Programs, variant: str) -> None:
    prog = programs.path("rlimit_mem", variant)
    nat = run_native([prog])
    box = run_sandbox([prog])
    assert nat.returncode == 0, nat.describe()
    for line in ("mlock 3 pages over a 2-page limit: ENOMEM", "mmap 32 pages locked: EAGAIN",
                 "mmap 64 MiB past RLIMIT_AS: ENOMEM", "sbrk 32 MiB past RLIMIT_DATA: ENOMEM",
                 "fork at RLIMIT_NPROC 1: EAGAIN", "VmLck 8 kB", "child: 0"):
        assert line in nat.out, nat.describe()
    assert box.out == nat.out, box.describe()
    assert (box.returncode, box.err) == (nat.returncode, nat.err), box.describe()
