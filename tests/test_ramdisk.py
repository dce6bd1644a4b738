"""The sandbox's ramdisk (/dev/ram0 once root makes the node): a sparse
block device the host never sees, with the block ioctls tools ask for; a
filesystem mounts from it only once made on it (tests/test_ext2.py)."""

from __future__ import annotations

import tempfile

import pytest
from helpers import Programs, run_native_on_loop, run_sandbox

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


# How the sandbox gets the device the program runs on: its RAM disk, or a
# loop device over a file of the same 2 MiB as the native side's.
SANDBOX_DEVICE = {
    "ramdisk": "mknod /dev/ram0 b 1 0 && exec {prog} /dev/ram0 {mnt}",
    "loop": "truncate -s 2M {mnt}.img && d=$(losetup -f --show {mnt}.img) && "
            "{{ {prog} $d {mnt}; s=$?; losetup -d $d; exit $s; }}",
}


@pytest.mark.sandbox
@pytest.mark.parametrize("device", sorted(SANDBOX_DEVICE))
def test_read_only_flag_and_read_ahead_same_as_linux(programs: Programs, device: str) -> None:
    """BLKROSET/BLKROGET and BLKRASET/BLKRAGET are the device's, seen from
    any descriptor; a read-only device refuses writes (EPERM) and read-write
    mounts (EACCES), mounts read-only, and is writable again once cleared;
    the setters need CAP_SYS_ADMIN (EACCES).  Natively on a loop device (the
    block layer answers these alike for every disk); in the sandbox on the
    RAM disk and on a loop device.  LTP's ioctl04 and ioctl06 failed on these
    (ENOTTY on the RAM disk)."""
    prog = str(programs.path("blk_readonly", "static"))
    with tempfile.TemporaryDirectory(prefix="pyvisor-blk-") as nat, \
            tempfile.TemporaryDirectory(prefix="pyvisor-blk-") as box:
        native = run_native_on_loop(prog, nat)
        script = SANDBOX_DEVICE[device].format(prog=prog, mnt=box)
        sandboxed = run_sandbox(["/bin/sh", "-c", script])
    assert native.returncode == 0, native.describe()
    assert "mount ro on ro               0" in native.out, native.describe()
    assert (sandboxed.out, sandboxed.returncode) == \
        (native.out, native.returncode), sandboxed.describe()
