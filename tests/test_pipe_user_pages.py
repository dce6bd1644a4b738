"""pipe-user-pages-soft against Linux (issue 14's pipe15): an unprivileged
user's pipes past the soft limit shrink to two pages; root's do not."""

from __future__ import annotations

import pytest
from helpers import Programs, assert_same_as_native


@pytest.mark.sandbox
def test_pipe_user_pages_soft_matches_linux(programs: Programs) -> None:
    assert_same_as_native(programs.path("pipe_user_pages"), markers=(
        "soft limit 16384",
        "unprivileged: a pipe past the limit has 8192 bytes (after at least 1000: 1)",
        "growing it: EPERM", "root: 1100 pipes of 65536: 1"))
