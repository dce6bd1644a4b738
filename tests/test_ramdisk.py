"""The sandbox's ramdisk (/dev/ram0 once root makes the node): a sparse
block device the host never sees, with the block ioctls tools ask for; a
filesystem mounts from it only once made on it (tests/test_ext2.py)."""

from __future__ import annotations

import pytest
from helpers import run_sandbox

SCRIPT = r"""
mknod /dev/ram0 b 1 0 || exit 1
stat -c '%F %t:%T' /dev/ram0
printf 'block bytes' | dd of=/dev/ram0 bs=512 seek=2048 conv=notrunc 2>/dev/null
dd if=/dev/ram0 bs=512 skip=2048 count=1 2>/dev/null | head -c 11; echo
dd if=/dev/ram0 bs=512 count=1 2>/dev/null | od -An -tx1 | head -1
blockdev --getsize64 /dev/ram0
blockdev --getss /dev/ram0
blockdev --getsz /dev/ram0
blockdev --flushbufs /dev/ram0 && echo flushed
mkdir -p /mnt/r && mount -t ext2 /dev/ram0 /mnt/r 2>/dev/null; echo "mount: $?"
"""


@pytest.mark.sandbox
def test_ramdisk_holds_bytes_and_answers_block_ioctls() -> None:
    res = run_sandbox(["/bin/sh", "-c", SCRIPT])
    assert res.returncode == 0, res.describe()
    lines = res.out.splitlines()
    assert lines[0] == "block special file 1:0", res.describe()
    assert lines[1] == "block bytes"
    assert lines[2].split() == ["00"] * 16
    assert lines[3:7] == ["1073741824", "512", "2097152", "flushed"], res.describe()
    assert lines[7] != "mount: 0", res.describe()
