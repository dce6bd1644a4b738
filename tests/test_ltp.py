"""The Linux Test Project's syscall tests, natively and under pyvisor
(tests/ltp/runner.py), as a slow suite: ``python3 -m pytest -m slow
tests/test_ltp.py`` given a static build of the LTP (from its own repository,
as its INSTALL describes; tests/ltp/build.py makes one) at PYVISOR_LTP_DIR
(default /var/tmp/pyvisor-ltp).

No registry ships LTP, so CI (which reaches registries only) cannot build it
and this module skips there, saying why. The bar is issue 14's: of the tests
that pass natively, at least 95% pass in the sandbox.
"""

from __future__ import annotations

import os

import pytest
from ltp import runner

pytestmark = pytest.mark.slow
TARGET = 0.95


def test_ltp_syscalls_pass_as_natively() -> None:
    root = runner.DEFAULT_LTP / "testcases" / "kernel" / "syscalls"
    if not root.is_dir():
        pytest.skip(f"no LTP build at {runner.DEFAULT_LTP} (python3 tests/ltp/build.py makes "
                    "one, or set PYVISOR_LTP_DIR to a static build of the LTP's repository); "
                    "no package registry ships LTP")
    if os.geteuid() != 0:
        pytest.skip("LTP's syscall tests and the sandbox need root")
    families = [f for f in runner.FAMILIES if (root / f).is_dir()]
    outcomes = runner.run(runner.DEFAULT_LTP, families, jobs=2)
    by = {(o.runner, o.key): o for o in outcomes}
    native_pass = [o.key for o in outcomes if o.runner == "native" and o.verdict == "pass"]
    lost = [k for k in native_pass if by[("pyvisor", k)].verdict != "pass"]
    print(runner.table(outcomes))
    assert native_pass, "no LTP test passed natively: the build is broken"
    assert len(lost) <= (1 - TARGET) * len(native_pass), \
        f"{len(lost)} of {len(native_pass)} natively passing tests fail in the sandbox: " \
        + ", ".join(lost[:40])
