"""The overlay over a GoferFs talking to a real, confined, read-only Gofer process.

The fake-client tests (test_vfs_overlay.py) pin the semantics; this one checks
that the real client and server agree with what goferfs expects (inode numbers
from qid paths, readdir cookies, reads larger than msize, symlinks) and that
writes through the overlay never reach the host.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from gofer.spawn import start_gofer
from sentry.vfs import vfs
from sentry.vfs.description import DirectoryDescription
from sentry.vfs.file import O_APPEND, O_RDONLY, O_WRONLY
from sentry.vfs.goferfs import GoferFs
from sentry.vfs.mount import MountNamespace
from sentry.vfs.overlay import OverlayFs
from sentry.vfs.resolve import FsContext

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="confining the Gofer needs root"),
]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "root"
    (r / "etc").mkdir(parents=True)
    (r / "etc" / "motd").write_bytes(b"hello\n")
    (r / "big").write_bytes(os.urandom(300_000))
    (r / "link").symlink_to("etc/motd")
    for i in range(40):
        (r / "etc" / f"n{i:02d}").write_bytes(b"")
    return r


@pytest.fixture
def ctx(root: Path) -> Iterator[FsContext]:
    client, proc = start_gofer(str(root), readonly=True, confine=True)
    fs = GoferFs(client, client.root)
    try:
        yield FsContext.for_namespace(MountNamespace(OverlayFs(fs), source="overlay"))
    finally:
        fs.close()
        client.close()
        proc.kill()
        proc.wait(5)


def test_overlay_over_real_gofer(ctx: FsContext, root: Path) -> None:
    big = (root / "big").read_bytes()
    assert vfs.open(ctx, None, b"/big", O_RDONLY).read(1 << 20) == big
    assert vfs.open(ctx, None, b"/link", O_RDONLY).read(100) == b"hello\n"
    st = vfs.stat(ctx, None, b"/etc/motd")
    assert st.ino == os.stat(root / "etc" / "motd").st_ino and st.size == 6
    d = vfs.open(ctx, None, b"/etc", O_RDONLY)
    assert isinstance(d, DirectoryDescription)
    names = sorted(e.name for e in d.readdir(1000))
    assert names == sorted([b".", b".."] + os.listdir(bytes(root / "etc")))
    vfs.open(ctx, None, b"/etc/motd", O_WRONLY | O_APPEND).write(b"world\n")
    vfs.unlink(ctx, None, b"/etc/n00")
    assert vfs.open(ctx, None, b"/etc/motd", O_RDONLY).read(100) == b"hello\nworld\n"
    assert (root / "etc" / "motd").read_bytes() == b"hello\n"
    assert (root / "etc" / "n00").exists()
