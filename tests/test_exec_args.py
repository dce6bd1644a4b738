"""execve: the per-string limit and the permission it needs, as natively.

Linux refuses an argv or envp string longer than MAX_ARG_STRLEN (131072 bytes
counting its NUL) with E2BIG; the sandbox said ENAMETOOLONG, the errno of its
path reader.  tests/programs/exec_e2big.c re-executes itself with one string
just under, at and past the limit.
"""

from __future__ import annotations

import pytest
from helpers import Programs, assert_same_as_native, run_native, run_sandbox

EXPECTED = """\
  child argv[2]                          ran, 131071 bytes
argument of MAX_ARG_STRLEN bytes         -1 E2BIG
argument of 200000 bytes                 -1 E2BIG
  child env BIG=                         ran, 131067 bytes
env string of MAX_ARG_STRLEN bytes       -1 E2BIG
"""


@pytest.mark.parametrize("variant", ["static", "static-pie"])
def test_native_exec_e2big(programs: Programs, variant: str) -> None:
    res = run_native([programs.path("exec_e2big", variant)])
    assert res.returncode == 0, res.describe()
    assert res.out == EXPECTED


@pytest.mark.sandbox
@pytest.mark.parametrize("variant", ["static", "static-pie"])
def test_sandbox_exec_e2big(programs: Programs, variant: str) -> None:
    res = run_sandbox([programs.path("exec_e2big", variant)])
    assert "Traceback" not in res.err, res.describe()
    assert res.out == EXPECTED, res.describe()
    assert res.returncode == 0, res.describe()


def test_exec_needs_execute_not_read_permission(programs: Programs) -> None:
    """A mode 0711 program runs for another user (execve asks MAY_EXEC, not
    MAY_READ); 0744 and 0700 are EACCES (LTP mount03's set-user-ID child)."""
    assert_same_as_native(programs.path("exec_perm", "static"), in_tmpdir=True, markers=(
        "mode 711: status 0", "mode 744: exec EACCES", "mode 700: exec EACCES"))
