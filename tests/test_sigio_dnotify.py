"""Signal-driven I/O against Linux: O_ASYNC on a pipe and dnotify's
F_NOTIFY signal the descriptor's owner (issue 14's fcntl31, fcntl38/39)."""

from __future__ import annotations

import pytest
from helpers import Programs, assert_same_as_native


@pytest.mark.sandbox
def test_sigio_and_dnotify_match_linux(programs: Programs) -> None:
    assert_same_as_native(programs.path("sigio_dnotify"), in_tmpdir=True, markers=(
        "O_ASYNC read end, F_SETSIG: signal ok, si_fd matches 1, si_code 1, si_band 41",
        "plain SIGIO: ok", "O_ASYNC cleared: none (EAGAIN)",
        "create after DN_CREATE: signal ok", "second create (one shot): none (EAGAIN)",
        "chmod of the directory itself: signal ok", "rename within the directory: signal ok",
        "rename out of the directory (DN_RENAME only): none (EAGAIN)",
        "F_NOTIFY on a file: ENOTDIR"))
