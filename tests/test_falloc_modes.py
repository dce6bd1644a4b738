"""fallocate(2)'s modes and errors on tmpfs against Linux (/dev/shm in both
runs): issue 14's fallocate02 and fallocate03."""

from __future__ import annotations

import pytest
from helpers import Programs, assert_same_as_native


@pytest.mark.sandbox
def test_fallocate_modes_match_linux(programs: Programs) -> None:
    assert_same_as_native(programs.path("falloc_modes"), markers=(
        "KEEP_SIZE past the end: ok", "size 8", "bytes 98 0 0 0 102 f",
        "PUNCH_HOLE alone: EOPNOTSUPP", "EFBIG: EFBIG", "pipe: ESPIPE"))
