"""Memory calls against Linux where the LTP found differences: mmap's errno
order for file mappings, MAP_LOCKED/MAP_POPULATE and mlock making pages
present (mincore), locked pages refusing MS_INVALIDATE and MADV_DONTNEED,
madvise advice valid only on private anonymous memory, and mremap moving
a big shared file mapping (several VMAs here, one in Linux)."""

from __future__ import annotations

import pytest
from helpers import Programs, assert_same_as_native


@pytest.mark.sandbox
def test_locked_populated_and_advice_match_linux(programs: Programs) -> None:
    prog = programs.path("mm_locked_advice")
    assert_same_as_native(prog, in_tmpdir=True, markers=(
        "mmap write-only fd, length 0: EINVAL", "mmap write-only fd, no type: EINVAL",
        "mprotect write of read-only /dev/zero: EACCES",
        "MAP_LOCKED: VmLck +16 kB, resident 4", "msync MS_INVALIDATE locked: EBUSY",
        "MAP_POPULATE: resident 3", "ONFAULT: resident 1", "mlock: resident 4",
        "madvise REMOVE locked shared: EINVAL", "madvise WIPEONFORK private file: EINVAL",
        "mremap big shared file mapping: ok", "file byte at page 1500: 1"))


@pytest.mark.sandbox
def test_memfd_reopen_and_punch_hole_match_linux(programs: Programs) -> None:
    """A memfd reopened through /proc/self/fd was ENXIO; PUNCH_HOLE was EOPNOTSUPP."""
    prog = programs.path("memfd_reopen")
    assert_same_as_native(prog, markers=(
        "reopen read-only: ok", "same file: x", "punch hole: ok", "after punch: x00x size 12288",
        "reopen O_TRUNC shrink-sealed: EPERM", "punch hole write-sealed: EPERM"))


@pytest.mark.sandbox
def test_ksm_as_a_fresh_sysfs_shows_it(programs: Programs) -> None:
    """/sys/kernel/mm/ksm exists, the merger stopped, and MADV_MERGEABLE is
    accepted: a program that reads the directory to know whether the advice
    is valid (LTP's madvise02) sees what madvise does."""
    assert_same_as_native(programs.path("ksm_probe"), markers=(
        "ksm dir: 1", "run: 0", "mergeable: 0", "unmergeable: 0"))
