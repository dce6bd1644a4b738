"""File permission checks inside the sandbox (sentry/kernel/dac.py), as a
non-root container user meets them: the same script over the same root
directory, natively (`chroot --userspec`) and as an OCI container whose
process.user is that uid, must print the same lines."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from test_oci import cid, make_bundle, runsc, state_root  # noqa: F401 - fixtures

UID = GID = 1000
SCRIPT = """
b=/bin/busybox
$b touch /d/x 2>&1; echo "touch in root's dir: $?"
$b touch /tmp/x && echo "touch in /tmp: ok"
$b cat /secret 2>&1; echo "read 0600 root file: $?"
$b cat /mine && echo "read own file: ok"
echo more >> /mine && echo "append own file: ok"
echo no >> /d/f 2>&1; echo "append root's 0644 file: $?"
$b chmod 600 /tmp/x && echo "chmod own: ok"
$b chmod 777 /d 2>&1; echo "chmod root's dir: $?"
$b mv /d/f /tmp/f 2>&1; echo "rename out of root's dir: $?"
$b ls /private 2>&1; echo "list 0700 root dir: $?"
$b mkdir /tmp/sub && $b rmdir /tmp/sub && echo "mkdir+rmdir in /tmp: ok"
$b rm -f /d/f 2>&1; echo "unlink in root's dir: $?"
$b rm -f /tmp/roots 2>&1; echo "unlink root's file in sticky /tmp: $?"
$b mv /tmp/roots /tmp/r2 2>&1; echo "rename root's file in sticky /tmp: $?"
$b touch /tmp/m2 && $b mv /tmp/m2 /tmp/m3 && $b rm /tmp/m3 && echo "own files in /tmp: ok"
"""


def _populate(root: Path) -> None:
    for d, mode in (("d", 0o755), ("tmp", 0o1777), ("private", 0o700)):
        (root / d).mkdir(exist_ok=True)
        os.chmod(root / d, mode)
    for f, mode, owner, body in (("d/f", 0o644, 0, "f\n"), ("secret", 0o600, 0, "s\n"),
                                 ("mine", 0o644, UID, "m\n"), ("tmp/roots", 0o666, 0, "r\n")):
        (root / f).write_text(body)
        os.chmod(root / f, mode)
        os.chown(root / f, owner, owner)


def _native(root: Path) -> str:
    chroot = shutil.which("chroot")
    if chroot is None:
        pytest.skip("coreutils chroot is missing")
    res = subprocess.run([chroot, f"--userspec={UID}:{GID}", str(root), "/bin/busybox", "sh",
                          "-c", SCRIPT], capture_output=True, text=True, timeout=60)
    return res.stdout + res.stderr


def test_non_root_user_meets_mode_bits(state_root: Path, cid: str,  # noqa: F811
                                       make_bundle: Callable[..., Path],  # noqa: F811
                                       tmp_path: Path) -> None:
    def edit(cfg: dict[str, Any]) -> None:
        cfg["root"]["readonly"] = False
        cfg["process"]["user"] = {"uid": UID, "gid": GID}

    b = make_bundle(["/bin/busybox", "sh", "-c", SCRIPT], edit)
    native_root = tmp_path / "native"
    shutil.copytree(b / "rootfs", native_root, symlinks=True)  # copies drop owners:
    _populate(b / "rootfs")  # so both trees are populated the same way afterwards
    _populate(native_root)
    want = _native(native_root)
    assert "Permission denied" in want and "read own file: ok" in want, want
    res = runsc(state_root, "run", "--bundle", str(b), cid)
    assert res.stdout + res.stderr == want
    assert (b / "rootfs/d/f").read_text() == "f\n", "the host's root is never written"


def test_root_passes_mode_bits(state_root: Path, cid: str,  # noqa: F811
                               make_bundle: Callable[..., Path]) -> None:  # noqa: F811
    def edit(cfg: dict[str, Any]) -> None:
        cfg["root"]["readonly"] = False

    b = make_bundle(["/bin/busybox", "sh", "-c",
                     "/bin/busybox cat /secret; /bin/busybox touch /private/x && echo ok"], edit)
    _populate(b / "rootfs")
    res = runsc(state_root, "run", "--bundle", str(b), cid)
    assert (res.returncode, res.stdout) == (0, "s\nok\n"), res.stderr
