"""`--kernel-release` (issue 14): what uname reports, for `do` and, as a
global flag, the OCI commands."""

from __future__ import annotations

from helpers import run_sandbox

from sentry.kernel.kernel import DEFAULT_RELEASE


def test_kernel_release_flag() -> None:
    """`do --kernel-release` (and the global flag, which the OCI commands
    take) is what uname reports; a release uname could not hold is refused."""
    res = run_sandbox(["uname", "-r"], extra_flags=["--kernel-release", "5.15.0-91-test"])
    assert res.out == "5.15.0-91-test\n", res.describe()
    assert run_sandbox(["uname", "-r"]).out == DEFAULT_RELEASE + "\n"
    bad = run_sandbox(["uname", "-r"], extra_flags=["--kernel-release", "x" * 65])
    assert bad.returncode == 1 and "longer than 64" in bad.err, bad.describe()
