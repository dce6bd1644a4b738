"""Extended attributes kept by the sandbox's tmpfs and overlay, against Linux's
ext4 on the host: the same answers for every call, flag, limit and namespace
rule, for root and for an unprivileged user."""

from __future__ import annotations

import os
import sys
import tempfile

import pytest
from helpers import Programs, assert_same_as_native, run_sandbox


@pytest.mark.sandbox
@pytest.mark.parametrize("variant", ["static", "static-pie"])
def test_xattr_calls_match_linux(programs: Programs, variant: str) -> None:
    prog = programs.path("xattr_calls", variant)
    assert_same_as_native(prog, in_tmpdir=True,
                          markers=("list: security.pyvisor trusted.t user.a user.empty user.kilo",
                                   "nobody get trusted: ENODATA"))


@pytest.mark.sandbox
def test_xattr_on_an_image_file_stays_in_the_sandbox() -> None:
    """Setting an attribute on a file of the image copies it up: the sandbox
    reads it back (and its data is intact), the host file gets nothing."""
    with tempfile.TemporaryDirectory(prefix="pyvisor-xattr-") as d:
        path = os.path.join(d, "image-file")
        with open(path, "w") as f:
            f.write("image data\n")
        code = (
            "import os, sys\n"
            f"p = {path!r}\n"
            "os.setxattr(p, 'user.note', b'kept')\n"
            "print(os.getxattr(p, 'user.note').decode(), sorted(os.listxattr(p)),"
            " open(p).read().strip())\n"
            "os.removexattr(p, 'user.note')\n"
            "print(os.listxattr(p))\n"
        )
        box = run_sandbox([sys.executable, "-c", code])
        assert box.returncode == 0, box.describe()
        assert box.out == "kept ['user.note'] image data\n[]\n", box.describe()
        assert os.listxattr(path) == []
