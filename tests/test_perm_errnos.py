"""Errno order for an unprivileged caller and for descriptors a call cannot
use, against Linux: permission checks before capability checks (chroot),
the privileged-port check (bind), write permission on a unix socket file
(connect), O_PATH descriptors refused as EBADF, splice from a directory,
and getsockname's EFAULT."""

from __future__ import annotations

import pytest
from helpers import Programs, assert_same_as_native, run_sandbox


@pytest.mark.sandbox
def test_permission_errnos_match_linux(programs: Programs) -> None:
    prog = programs.path("perm_errnos")
    assert_same_as_native(prog, in_tmpdir=True, markers=(
        "getsockname NULL buffer: EFAULT", "accept O_PATH: EBADF",
        "splice directory to pipe: EINVAL", "bind mount onto a magic link to a symlink: ENOENT",
        "chroot without search permission: EACCES", "chroot as nobody: EPERM",
        "bind port 463 as nobody: EACCES", "connect without write permission: EACCES"))


@pytest.mark.sandbox
def test_unshare_files_past_nr_open_is_emfile(programs: Programs) -> None:
    """Sandbox only: natively it would lower the host's fs.nr_open. Linux's
    answer (dup_fd: EMFILE when the copy would need more than nr_open fds)
    is the expected output; it was "ok" before."""
    r = run_sandbox([programs.path("unshare_files_limit")])
    assert r.returncode == 0, r.describe()
    assert r.out == "unshare past nr_open: EMFILE\nunshare within nr_open: ok\n", r.describe()


@pytest.mark.sandbox
def test_mount_flags_in_statfs_and_nosymfollow_match_linux(programs: Programs) -> None:
    """statfs's f_flags were never written (always 0); nosymfollow was
    ignored; a remount dropped noatime. The program works in its own mount
    namespace, so the native run leaves the host's mounts alone."""
    prog = programs.path("mount_flags")
    assert_same_as_native(prog, in_tmpdir=True, markers=(
        "f_flags: 0x242e", "open through a nosymfollow link: ELOOP", "readlink: file",
        "f_flags after remount: 0x421"))
