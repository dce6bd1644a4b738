"""Inode flags on tmpfs against Linux (/dev/shm in both runs): chattr's
FS_IOC_[GS]ETFLAGS, statx's attributes, and EPERM for changing an
append-only or immutable file (issue 14's statx04, statx08, unlink09);
and statx's STATX_ATTR_MOUNT_ROOT (statx12)."""

from __future__ import annotations

import pytest
from helpers import Programs, assert_same_as_native


@pytest.mark.sandbox
def test_inode_flags_match_linux(programs: Programs) -> None:
    assert_same_as_native(programs.path("inode_flags"), markers=(
        "flags 60", "statx attributes 60 mask has append/immutable/nodump: 1",
        "open O_WRONLY append-only: EPERM", "unlink append-only: EPERM",
        "open O_RDWR immutable: EPERM", "set compressed: EOPNOTSUPP",
        "unlink after clearing: ok", "/dev/shm mount root 1 (known 1)", "by fd: mount root 1",
        "a directory in it: mount root 0 (known 1)"))


@pytest.mark.sandbox
def test_inode_flags_on_the_root_overlay(programs: Programs) -> None:
    """chattr +i/+a on a file of the sandbox's root (the overlay keeps the
    flags on the upper copy, as overlayfs does); natively a host directory."""
    assert_same_as_native(programs.path("overlay_iflags"), in_tmpdir=True, markers=(
        "immutable|append 10", "unlink immutable: EPERM", "open O_WRONLY append-only: EPERM",
        "unlink after clearing: ok", "setxattr immutable: EPERM",
        "copy_file_range into immutable: EPERM"))
