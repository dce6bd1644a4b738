"""openat2(2) against Linux: the open_how checks (sizes, flags, modes,
RESOLVE_CACHED) and every RESOLVE_* restriction (BENEATH, IN_ROOT,
NO_SYMLINKS, NO_MAGICLINKS, NO_XDEV), with the opened file's contents
printed so the test sees which file each call reached."""

from __future__ import annotations

import tempfile

import pytest
from helpers import Programs, run_native, run_sandbox


@pytest.mark.sandbox
@pytest.mark.parametrize("variant", ["static", "static-pie"])
def test_openat2_matches_linux(programs: Programs, variant: str) -> None:
    prog = programs.path("openat2_calls", variant)
    with tempfile.TemporaryDirectory(prefix="pyvisor-openat2-") as nat_dir, \
            tempfile.TemporaryDirectory(prefix="pyvisor-openat2-") as box_dir:
        nat = run_native([prog, nat_dir])
        box = run_sandbox([prog, box_dir])
    assert nat.returncode == 0, nat.describe()
    for line in ("beneath link_up: EXDEV", "in_root link_abs: ok inside",
                 "no_symlinks link_rel: ELOOP", "no_magiclinks magic link: ELOOP",
                 "no_xdev /proc/self/status: EXDEV"):
        assert line in nat.out, nat.describe()
    assert box.out == nat.out, box.describe()
    assert (box.returncode, box.err) == (nat.returncode, nat.err), box.describe()
