"""open(O_TMPFILE) and linkat of its file (issue 14), differential: the
file has no name and no link, takes one name through AT_EMPTY_PATH or
/proc/self/fd unless opened O_EXCL, and the flag checks give Linux's errnos.
In the sandbox both on the root's overlay (/tmp) and on a tmpfs (/dev/shm)."""

from __future__ import annotations

import os
import tempfile

import pytest
from helpers import Programs, run_native, run_sandbox


@pytest.mark.parametrize("where", ["/tmp", "/dev/shm"])
def test_o_tmpfile(programs: Programs, where: str) -> None:
    prog = programs.path("tmpfile_calls", "static")
    host_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
    with tempfile.TemporaryDirectory(prefix="pyvisor-tmpf-", dir=host_dir) as nat:
        native = run_native([prog, nat])
    assert native.returncode == 0, native.describe()
    if "open O_TMPFILE: ok" not in native.out:
        pytest.skip(f"the host's {host_dir or '/tmp'} does not support O_TMPFILE")
    sandboxed = run_sandbox([prog, where])
    assert (sandboxed.out, sandboxed.returncode) == (native.out, 0), sandboxed.describe()
