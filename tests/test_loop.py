"""Loop devices in the Sentry (sentry/vfs/loop.py): /dev/loop-control and
/dev/loopN over a sandbox file, compared line for line with Linux's loop
driver (natively the program binds one of the host's free loop devices to
its own temporary file and frees it again)."""

from __future__ import annotations

import os
import tempfile

import pytest
from helpers import Programs, run_native, run_sandbox


def test_loop_device_same_as_linux(programs: Programs) -> None:
    """GET_FREE/ADD/REMOVE, SET_FD (EINVAL, EBADF, EBUSY), status get/set
    (settable and clearable flags, offset, sizelimit, name), I/O through the
    device into the file, ENOSPC past the end, block sizes, SET_CAPACITY,
    CHANGE_FD's EINVALs, CLR_FD's rundown until the last close, CONFIGURE
    read-only (EPERM on write, BLKROGET)."""
    if not os.path.exists("/dev/loop-control"):
        pytest.skip("this host has no loop driver (/dev/loop-control): nothing to compare with")
    prog = str(programs.path("loop_dev", "static"))
    with tempfile.TemporaryDirectory(prefix="pyvisor-loop-") as nat, \
            tempfile.TemporaryDirectory(prefix="pyvisor-loop-") as box:
        native = run_native([prog, nat])
        sandboxed = run_sandbox([prog, box])
    assert native.returncode == 0, native.describe()
    assert "file sees DEVDATA" in native.out
    assert "write ro                       -1 Operation not permitted" in native.out
    assert (sandboxed.out, sandboxed.returncode) == (native.out, native.returncode), \
        sandboxed.describe()
