"""prctl(2) against Linux (syscalls/prctl.py): the timer slack and its
inheritance and /proc file, PR_SET/GET_TIMING, PR_GET/SET_TSC, THP-disable,
no_new_privs' argument checks, and orphans adopted by a child subreaper."""

from __future__ import annotations

import pytest
from helpers import Programs, assert_same_as_native


@pytest.mark.sandbox
def test_prctl_options_and_subreaper_match_linux(programs: Programs) -> None:
    assert_same_as_native(programs.path("prctl_more"), markers=(
        "proc slack = 70000 errno 0", "child default slack = 70000 errno 0",
        "reset to initial 1", "set timing timestamp = -1 errno 22", "tsc 1",
        "thp get = 1 errno 0", "nnp set arg3 = -1 errno 22",
        "adopted grandchild reaped 1 exit 7", "sigchld twice 1"))
