"""File handles against Linux: name_to_handle_at/open_by_handle_at (issue
14's name_to_handle_at01-03; before, both were EOPNOTSUPP)."""

from __future__ import annotations

import pytest
from helpers import Programs, assert_same_as_native


@pytest.mark.sandbox
def test_file_handles_match_linux(programs: Programs) -> None:
    assert_same_as_native(programs.path("fhandles"), in_tmpdir=True, markers=(
        "size 0: EOVERFLOW", "needed size given: 1", "size 129: EINVAL",
        "open_by_handle_at O_RDWR: ok", "same inode: 1", "open it: ok",
        "open_by_handle_at without CAP_DAC_READ_SEARCH: EPERM"))
