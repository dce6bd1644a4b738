"""File calls' errors that LTP checks (issue 14), against Linux: empty and
NULL paths, utime's touch-versus-set permission rules, O_NOATIME for a
non-owner, O_PATH descriptors refused by fchmod/fchown/mmap/fgetxattr,
getdents of a removed directory, writing a running program (ETXTBSY),
TCGETA, RNDGETENTCNT, FICLONE's checks,
and close_range(CLOSE_RANGE_UNSHARE) in a CLONE_FILES child (whose exit
must not close the table it shared)."""

from __future__ import annotations

import pytest
from helpers import Programs, assert_same_as_native


@pytest.mark.sandbox
def test_file_errnos_match_linux(programs: Programs) -> None:
    assert_same_as_native(programs.path("file_errnos"), in_tmpdir=True, markers=(
        "chown empty path: ENOENT", "utimes NULL path: EFAULT",
        "open the running program for writing: ETXTBSY", "truncate the running program: ETXTBSY",
        "utime(read-only, NULL) not owner: EACCES", "open O_NOATIME not owner: EPERM",
        "mknod char device without CAP_MKNOD: EPERM", "mknod fifo without CAP_MKNOD: ok",
        "mmap O_PATH: EBADF", "getdents64 removed dir: ENOENT", "TCGETA: ok",
        "entropy count 256", "FICLONE from a directory: EISDIR",
        "fd open in the parent after CLOSE_RANGE_UNSHARE: ok",
        "stdout open after a CLONE_FILES child exited: ok"))
