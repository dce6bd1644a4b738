"""ioctl_ns(2) on namespace files (NS_GET_NSTYPE, NS_GET_USERNS,
NS_GET_PARENT, NS_GET_OWNER_UID), against Linux: issue 14's ioctl_ns tests."""

from __future__ import annotations

import pytest
from helpers import Programs, assert_same_as_native


@pytest.mark.sandbox
def test_ns_ioctls_match_linux(programs: Programs) -> None:
    assert_same_as_native(programs.path("ns_ioctls"), markers=(
        "uts type is CLONE_NEWUTS: 1", "uts NS_GET_PARENT: EINVAL",
        "first user NS_GET_USERNS: EPERM", "uts's owner is my user ns: 1, cloexec 1",
        "child: new uts's owner is the new user ns: 1",
        "child: new user NS_GET_PARENT (outside): EPERM", "its owner uid 0",
        "child's user ns parent is mine: 1"))
