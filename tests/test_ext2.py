"""ext2 in the Sentry (sentry/vfs/ext2): the real mkfs.ext2 run inside the
sandbox on its RAM disk, then mount, file operations, statfs, ENOSPC,
remount read-only and a second mount, compared line for line with Linux
(natively the same program runs on a loop device over a file, in its own
mount namespace).  And a fuzz test: a corrupted image is a clean errno at
mount or at use, never an exception or a hang."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from helpers import Programs, run_native_on_loop, run_sandbox
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

MKFS = shutil.which("mkfs.ext2")


def test_ext2_on_ramdisk_same_as_linux(programs: Programs) -> None:
    """mkfs.ext2 + mount + direct/indirect blocks, truncate, links, fast and
    slow symlinks, device nodes, rename, a growing directory, ENOSPC, EBUSY,
    EROFS after a read-only remount, and a remount that reads it all back."""
    prog = str(programs.path("ext2_disk", "static"))
    with tempfile.TemporaryDirectory(prefix="pyvisor-ext2-") as nat, \
            tempfile.TemporaryDirectory(prefix="pyvisor-ext2-") as box:
        native = run_native_on_loop(prog, nat)
        sandboxed = run_sandbox(["/bin/sh", "-c",
                                 f"mknod /dev/ram0 b 1 0 && exec {prog} /dev/ram0 {box}"])
    assert native.returncode == 0, native.describe()
    assert "mount ext2                   0" in native.out
    assert "fill stopped: No space left on device" in native.out
    assert (sandboxed.out, sandboxed.returncode) == \
        (native.out, native.returncode), sandboxed.describe()


class _Disk:
    """A byte image as a block device."""

    def __init__(self, data: bytes) -> None:
        self.data = bytearray(data)

    def pread(self, count: int, offset: int) -> bytes:
        return bytes(self.data[offset:offset + count])

    def pwrite(self, data: bytes, offset: int) -> int:
        self.data[offset:offset + len(data)] = data
        return len(data)


_IMAGE: list[bytes] = []


def _image() -> bytes:
    """A small populated ext2 image, made once with the host's mkfs.ext2."""
    if not _IMAGE:
        if MKFS is None:
            pytest.skip("mkfs.ext2 missing (apt-get install e2fsprogs)")
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp, "root")
            (root / "dir").mkdir(parents=True)
            (root / "dir" / "file").write_bytes(b"x" * 20000)
            os.symlink("dir/file", root / "link")
            img = Path(tmp, "img")
            subprocess.run([MKFS, "-q", "-F", "-b", "1024", "-N", "32", "-d", str(root),
                            str(img), "256"], check=True, capture_output=True)
            _IMAGE.append(img.read_bytes())
    return _IMAGE[0]


def _walk(fs: object) -> None:
    """Read everything reachable, then write a little: only errnos may come out."""
    from sentry.vfs.ext2.dirops import Ext2Node

    todo = [fs.root]  # type: ignore[attr-defined]
    seen = 0
    while todo and seen < 64:
        node = todo.pop()
        seen += 1
        assert isinstance(node, Ext2Node)
        node.stat()
        if node.is_dir():
            for name, _ino, _dt in node.iterdir():
                todo.append(node.lookup(name))
        elif node.is_symlink():
            node.readlink()
        elif node.is_reg():
            node.read_at(0, 65536)
    fs.root.create(b"new", 0o644, 0, 0).write_at(0, b"y" * 5000)  # type: ignore[attr-defined]


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(st.tuples(st.integers(0, 256 * 1024 - 1), st.integers(0, 255)),
                min_size=1, max_size=24),
       st.sampled_from(["super", "meta", "any"]))
def test_corrupt_image_gives_clean_errors(pokes: list[tuple[int, int]], where: str) -> None:
    """Bytes poked into the superblock, the group table and inode table, or
    anywhere: the mount fails with EINVAL or works, and walking the tree
    gives errnos (EUCLEAN, EIO, ENOSPC...), never another exception."""
    from sentry.kernel.errors import SyscallError
    from sentry.vfs.ext2.fs import Ext2Fs

    data = bytearray(_image())
    span = {"super": (1024, 1024), "meta": (1024, 16 * 1024), "any": (0, len(data))}[where]
    for off, val in pokes:
        data[span[0] + off % span[1]] = val
    disk = _Disk(bytes(data))
    try:
        fs = Ext2Fs(disk, len(data))
    except SyscallError as exc:
        assert exc.errno in (errno.EINVAL, errno.EUCLEAN, errno.EIO), exc
        return
    try:
        _walk(fs)
    except SyscallError:
        pass


def test_pristine_image_walks() -> None:
    """The fuzz test's baseline: the unpoked image mounts and reads back."""
    from sentry.vfs.ext2.fs import Ext2Fs

    data = _image()
    fs = Ext2Fs(_Disk(data), len(data))
    names = sorted(n for n, _i, _d in fs.root.iterdir())
    assert names == [b"dir", b"link", b"lost+found"]
    assert fs.root.lookup(b"link").readlink() == b"dir/file"
    assert fs.root.lookup(b"dir").lookup(b"file").read_at(0, 30000) == b"x" * 20000
    _walk(fs)
