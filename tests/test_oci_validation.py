"""The OCI runtime-tools validation suite (opencontainers/runtime-tools,
``validation/``, with ``runtimetest`` run inside each container), counted per
file for runc and for pyvisor on this machine: issue 17's bar is at least as
many files fully passing as runc, and no file where pyvisor fails an assert
that runc passes, save the deliberate differences named below.

Slow (minutes per runtime): ``python3 -m pytest -m slow tests/test_oci_validation.py``
after building the suite's ``runtimetest`` and validation executables in a
checkout at /var/tmp/runtime-tools (or PYVISOR_OCI_VALIDATION_DIR) as that
project's README says.  No package registry ships it, so CI cannot build it
and this module skips there, saying why.  ``python3
tests/oci_validation/runner.py --runtime runc|pyvisor --failures`` prints the
per-file table.
"""

from __future__ import annotations

import os
import shutil

import pytest
from oci_validation import runner

pytestmark = pytest.mark.slow

# Asserts pyvisor fails on purpose, with the reason:
DELIBERATE = frozenset({
    # The host cgroup's pids.max bounds the sandbox's own threads, not the
    # container's tasks (the Sentry counts those against the limit itself), so
    # it is set to a budget above the limit (sentry/oci/cgroup_files.py).
    "pids limit is set correctly",
})


def test_validation_suite_as_runc_passes_it() -> None:
    if not runner.files(runner.DEFAULT_SUITE):
        pytest.skip(f"no runtime-tools validation build at {runner.DEFAULT_SUITE} (build it "
                    "as its README says; set PYVISOR_OCI_VALIDATION_DIR for another place); "
                    "no package registry ships it")
    if os.geteuid() != 0:
        pytest.skip("the validation suite and the sandbox need root")
    if shutil.which("runc") is None:
        pytest.skip("runc is not installed: nothing to compare against")
    runc = runner.run(runner.DEFAULT_SUITE, "runc")
    ours = runner.run(runner.DEFAULT_SUITE, "pyvisor")
    print("runc:\n" + runner.summary(runc) + "\npyvisor:\n" + runner.summary(ours))
    assert sum(r.passing for r in runc) > 0, "runc passes nothing: the build is broken"
    assert sum(r.passing for r in ours) >= sum(r.passing for r in runc)
    assert runner.lost(runc, ours, DELIBERATE) == {}
