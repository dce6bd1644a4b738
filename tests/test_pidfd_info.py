"""ioctl(PIDFD_GET_INFO) against Linux (issue 14's ioctl_pidfd01)."""

from __future__ import annotations

import pytest
from helpers import Programs, assert_same_as_native


@pytest.mark.sandbox
def test_pidfd_get_info_matches_linux(programs: Programs) -> None:
    assert_same_as_native(programs.path("pidfd_info"), markers=(
        "mask pid|creds 1, pid 1, ppid 1, euid 0", "reaped, no EXIT asked: ESRCH",
        "reaped, EXIT asked: 0, has EXIT 1, exit_code 0x700", "on a pipe: ENOTTY"))
