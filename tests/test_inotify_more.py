"""inotify's fdinfo lines, IN_EXCL_UNLINK and max_user_instances (issue 14's
inotify06 and inotify12)."""

from __future__ import annotations

import tempfile

import pytest
from helpers import Programs, assert_same_as_native, run_sandbox


@pytest.mark.sandbox
def test_fdinfo_and_excl_unlink_match_linux(programs: Programs) -> None:
    assert_same_as_native(programs.path("inotify_more"), in_tmpdir=True, markers=(
        "fdinfo mask 4000002", "IN_MODIFY events after unlink, plain watch: 1",
        "IN_MODIFY events after unlink, IN_EXCL_UNLINK: 0"))


@pytest.mark.sandbox
def test_max_user_instances_is_enforced(programs: Programs) -> None:
    # Sandbox only: natively the write would change the host's limit. Linux
    # refuses the instance past the limit with EMFILE (inotify(7)).
    with tempfile.TemporaryDirectory(prefix="pyvisor-inotify-") as tmp:
        res = run_sandbox([programs.path("inotify_more"), tmp, "4"])
    assert res.returncode == 0, res.describe()
    assert "instance 5: EMFILE\nafter closing one: ok\n" in res.out, res.describe()
