"""PID namespaces (sentry/kernel/pidns.py) against Linux: issue 14's clone11,
clone301/304, ioctl_ns01/05, ioctl_pidfd02-06 and unshare05 need them."""

from __future__ import annotations

import pytest
from helpers import Programs, assert_same_as_native


@pytest.mark.sandbox
def test_pid_namespaces_match_linux(programs: Programs) -> None:
    assert_same_as_native(programs.path("pid_ns"), markers=(
        "clone child: getpid 1 getppid 0",
        "clone child: NS_GET_PARENT of own ns: Operation not permitted",
        "parent: waitpid gives the clone's pid: 1, exit 7",
        "unsharer: ns/pid != ns/pid_for_children: 1",
        "unshare again: Invalid argument",
        "unsharer: child ns's parent is my ns: 1",
        "unsharer: grandchild: NSpid has 2 levels, innermost 1",
        "unsharer: after SIGTERM, grandchild: ShdPnd 0000000000000000",
        "unsharer: wait gives the fork's pid: 1, signal 9",
        "init died: the rest of its namespace is gone: 1",
        "no CAP_SYS_ADMIN: unshare(CLONE_NEWNET) Operation not permitted"))
