"""openat2(2) against Linux: the open_how checks (sizes, flags, modes,
RESOLVE_CACHED) and every RESOLVE_* restriction (BENEATH, IN_ROOT,
NO_SYMLINKS, NO_MAGICLINKS, NO_XDEV), with the opened file's contents
printed so the test sees which file each call reached."""

from __future__ import annotations

import pytest
from helpers import Programs, assert_same_as_native


@pytest.mark.sandbox
@pytest.mark.parametrize("variant", ["static", "static-pie"])
def test_openat2_matches_linux(programs: Programs, variant: str) -> None:
    prog = programs.path("openat2_calls", variant)
    assert_same_as_native(prog, in_tmpdir=True, markers=(
        "beneath link_up: EXDEV", "in_root link_abs: ok inside", "no_symlinks link_rel: ELOOP",
        "no_magiclinks magic link: ELOOP", "no_xdev /proc/self/status: EXDEV"))
