"""Escaping ``--root DIR``: the sandbox sees DIR as "/" and nothing else.

DIR is a small busybox tree holding symlinks that point out of it (absolute
ones to /etc/shadow, /root and /, relative ones with more ".." than DIR is
deep, a symlinked directory, an absolute host path) and marker files where
the host's secrets would be (DIR/etc/shadow says DIR-SHADOW-MARKER). The
reference for what the application must see is the same program run natively
under chroot(DIR): the kernel resolves every ".." and symlink inside the new
root there, and the sandbox must do the same. Every output is also searched
for the host's own /etc/shadow and /etc/passwd lines, which must never appear.

The sandbox creates /dev, /proc and /tmp mount points in its root; DIR holds
them already, so a listing of "/" is the same on both sides.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import Programs, Result, run_sandbox, shell_status

pytestmark = pytest.mark.sandbox

BB = "/bin/busybox"
MARKERS = {
    "etc/shadow": "DIR-SHADOW-MARKER\n",
    "etc/passwd": "DIR-PASSWD-MARKER\n",
    "etc/hostname": "DIR-HOSTNAME-MARKER\n",
    "root/marker": "DIR-ROOT-MARKER\n",
}
OUTSIDE_SECRET = "OUTSIDE-SECRET-MARKER"


def _host_secret_lines() -> list[str]:
    """Lines of the host's files that must never show up in the sandbox."""
    lines = []
    for path in ("/etc/shadow", "/etc/passwd"):
        try:
            text = Path(path).read_text(errors="replace")
        except OSError:
            continue
        lines += [line for line in text.splitlines() if len(line) > 8]
    return lines


def assert_nothing_from_host(res: Result) -> None:
    text = res.out + res.err
    assert OUTSIDE_SECRET not in text, "a file outside the root was read\n" + res.describe()
    leaked = [line for line in _host_secret_lines() if line in text]
    assert not leaked, f"host file content leaked: {leaked[:3]}\n{res.describe()}"


@pytest.fixture(scope="module")
def outside() -> Iterator[Path]:
    """A host directory outside the root, holding a secret."""
    path = Path(tempfile.mkdtemp(prefix="pyvisor-escape-outside-", dir="/tmp"))
    (path / "secret").write_text(OUTSIDE_SECRET + "\n")
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def rootdir(programs: Programs, outside: Path) -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="pyvisor-escape-root-", dir="/tmp"))
    try:
        for sub in ("bin", "etc", "root", "a/b", "links", "dev", "proc", "tmp"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        shutil.copy2(BB, root / "bin" / "busybox")
        shutil.copy2(programs.path("files_escape", "static"), root / "bin" / "files_escape")
        shutil.copy2(programs.path("files_escape", "static-pie"),
                     root / "bin" / "files_escape_pie")
        for rel, text in MARKERS.items():
            (root / rel).write_text(text)
        links = {
            "abs_shadow": "/etc/shadow",
            "abs_root": "/root",
            "abs_slash": "/",
            "rel_passwd": "../../../../etc/passwd",
            "rel_deep": "../../../../../../../../../../etc/shadow",
            "out_dir": "/etc",
            "out_dir_rel": "../../../../../../etc",
            "host_path": str(outside / "secret"),
            "dotdot_chain": "../links/../../..",
        }
        for name, target in links.items():
            (root / "links" / name).symlink_to(target)
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def run_chroot(root: Path, argv: list[str]) -> subprocess.CompletedProcess[bytes]:
    """The reference: ``argv`` natively under chroot(root)."""
    return subprocess.run(["chroot", str(root), *argv], capture_output=True, timeout=30,
                          start_new_session=True)


def check_like_chroot(root: Path, argv: list[str]) -> Result:
    nat = run_chroot(root, argv)
    box = run_sandbox(argv, extra_flags=["--root", str(root)])
    assert "Traceback" not in box.err, box.describe()
    assert_nothing_from_host(box)
    assert box.out == nat.stdout.decode(), (
        f"chroot stdout:\n{nat.stdout.decode()}\nsandbox:\n{box.describe()}")
    assert box.err == nat.stderr.decode(), (
        f"chroot stderr:\n{nat.stderr.decode()}\nsandbox:\n{box.describe()}")
    assert box.returncode == shell_status(nat.returncode), box.describe()
    return box


@pytest.fixture(scope="module", autouse=True)
def _need_chroot() -> None:
    if os.geteuid() != 0 or shutil.which("chroot") is None:
        pytest.skip("the chroot reference needs root and chroot(8)")


@pytest.mark.parametrize("binary", ["/bin/files_escape", "/bin/files_escape_pie"])
def test_escape_program(rootdir: Path, binary: str) -> None:
    """Raw openat with "..", dirfd-relative "..", every link, chdir("..")."""
    box = check_like_chroot(rootdir, [binary])
    assert "DIR-SHADOW-MARKER" in box.out, box.describe()


def test_busybox_cat_links(rootdir: Path) -> None:
    names = ["abs_shadow", "abs_root/marker", "rel_passwd", "rel_deep", "out_dir/shadow",
             "out_dir/hostname", "out_dir_rel/shadow", "host_path", "dotdot_chain/etc/shadow",
             "abs_slash/../../etc/passwd"]
    script = "; ".join(f"{BB} cat /links/{n}; echo status $?" for n in names)
    script += f"; {BB} cat /../../../etc/shadow /etc/../../etc/hostname; echo status $?"
    box = check_like_chroot(rootdir, [BB, "sh", "-c", script])
    assert box.out.count("DIR-SHADOW-MARKER") == 6, box.describe()


def test_busybox_readlink_and_ls(rootdir: Path) -> None:
    """readlink shows the stored targets; resolving them (-f, ls -L) stays inside."""
    script = (f"{BB} ls /; {BB} ls /links/abs_slash /links/out_dir /links/abs_root; "
              f"for l in abs_shadow rel_deep host_path dotdot_chain; do "
              f"{BB} readlink /links/$l; done; "
              f"for l in rel_deep dotdot_chain out_dir_rel host_path abs_root; do "
              f"{BB} readlink -f /links/$l; echo status $?; done; "
              f"{BB} stat -L -c '%n %F %s' /links/abs_shadow /links/out_dir/passwd; "
              f"{BB} find /links/abs_slash/etc /links/out_dir_rel -type f | {BB} sort")
    check_like_chroot(rootdir, [BB, "sh", "-c", script])


def test_cd_dotdot_stays_at_root(rootdir: Path) -> None:
    script = ("cd /a/b; for i in 1 2 3 4 5 6 7 8; do cd ..; done; pwd; "
              f"{BB} ls; {BB} cat etc/hostname; "
              "cd /links/out_dir && pwd && cd ../.. && pwd && pwd -P; "
              "cd /links/dotdot_chain && pwd -P && cd .. && pwd -P; "
              f"cd /; cd ..; pwd; {BB} ls ..")
    box = check_like_chroot(rootdir, [BB, "sh", "-c", script])
    assert box.out.splitlines()[0] == "/", box.describe()


def test_proc_root_links_stay_inside(rootdir: Path) -> None:
    """/proc/PID/root is the sandbox's root, never the host's, whatever /proc is.
    The reference is the same reads of "/" under chroot (whose /proc/1 is the
    host's init, so the links themselves cannot be the reference there); the
    sandbox's cwd is its root."""
    box = run_sandbox([BB, "sh", "-c",
                       f"{BB} cat /proc/1/root/etc/shadow /proc/self/root/etc/shadow "
                       f"/proc/self/cwd/../../etc/shadow; {BB} ls /proc/1/root/"],
                      extra_flags=["--root", str(rootdir)])
    ref = run_chroot(rootdir, [BB, "sh", "-c", f"{BB} cat /etc/shadow /etc/shadow "
                               f"/etc/shadow; {BB} ls /"])
    assert "Traceback" not in box.err, box.describe()
    assert_nothing_from_host(box)
    assert ref.returncode == 0 and ref.stdout.count(b"DIR-SHADOW-MARKER") == 3, ref
    assert (box.returncode, box.out) == (0, ref.stdout.decode()), box.describe()


def test_writes_stay_in_the_overlay(rootdir: Path) -> None:
    """Writes through the escaping links land in the overlay, not on the host."""
    before = sorted(p.name for p in rootdir.iterdir())
    shadow = (rootdir / "etc" / "shadow").read_text()
    box = run_sandbox([BB, "sh", "-c",
                       "echo overwritten > /links/abs_shadow; echo new > /links/out_dir/new; "
                       f"{BB} cat /etc/shadow /etc/new; {BB} rm -rf /links /a; {BB} ls /"],
                      extra_flags=["--root", str(rootdir)])
    assert box.returncode == 0, box.describe()
    assert box.out.startswith("overwritten\nnew\n"), box.describe()
    assert "links" not in box.out.split(), box.describe()
    assert sorted(p.name for p in rootdir.iterdir()) == before
    assert (rootdir / "etc" / "shadow").read_text() == shadow
    assert not (rootdir / "etc" / "new").exists()
    assert Path("/etc/shadow").read_text() != "overwritten\n"
