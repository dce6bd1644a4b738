"""seccomp filters that the application installs on itself, run by the
Sentry: install-time checks, each action (ERRNO, TRAP with its siginfo and
RAX, TRACE without a tracer, LOG, KILL_THREAD, KILL_PROCESS), argument and
ALU filters, stacking precedence, TSYNC, inheritance by fork and execve,
strict mode and /proc/self/status, all against Linux."""

from __future__ import annotations

import pytest
from helpers import Programs, assert_same_as_native


@pytest.mark.sandbox
@pytest.mark.parametrize("variant", ["static", "static-pie"])
def test_seccomp_filters_match_linux(programs: Programs, variant: str) -> None:
    prog = programs.path("seccomp_filter", variant)
    assert_same_as_native(prog, markers=(
        "uname after stacking: EIO", "thread uname: EIO", "open O_CREAT: EACCES",
        "trap: result 4242 code 1", "after exec uname: EIO", "child killed by signal 31",
        "strict: write allowed"))
