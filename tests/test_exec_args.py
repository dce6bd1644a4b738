"""execve's per-string limit: the same answers natively and in the sandbox.

Linux refuses an argv or envp string longer than MAX_ARG_STRLEN (131072 bytes
counting its NUL) with E2BIG; the sandbox said ENAMETOOLONG, the errno of its
path reader.  tests/programs/exec_e2big.c re-executes itself with one string
just under, at and past the limit.
"""

from __future__ import annotations

import pytest
from helpers import Programs, run_native, run_sandbox

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
