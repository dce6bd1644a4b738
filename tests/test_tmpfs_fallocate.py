"""fallocate(2) on a size-limited tmpfs reserves the pages (shmem_fallocate):
writes inside the range succeed on a full filesystem, st_blocks counts the
reservation, one that does not fit is ENOSPC (the LTP's fallocate05/06).
Natively the program runs in its own mount namespace."""

from __future__ import annotations

import shutil
import tempfile

import pytest
from helpers import Programs, run_native, run_sandbox

UNSHARE = shutil.which("unshare")


def test_tmpfs_fallocate_reserves(programs: Programs) -> None:
    if UNSHARE is None:
        pytest.skip("util-linux unshare missing: the native side needs its own mount namespace")
    prog = str(programs.path("tmpfs_fallocate", "static"))
    with tempfile.TemporaryDirectory(prefix="pyvisor-falloc-") as nat, \
            tempfile.TemporaryDirectory(prefix="pyvisor-falloc-") as box:
        native = run_native([UNSHARE, "--mount", "--propagation", "private", prog, nat])
        sandboxed = run_sandbox(["/bin/sh", "-c", f"exec {prog} {box}"])
    assert native.returncode == 0, native.describe()
    assert "wrote into reserved a: 32768" in native.out
    assert (sandboxed.out, sandboxed.returncode) == (native.out, native.returncode), \
        sandboxed.describe()
