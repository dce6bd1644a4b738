"""Administration inside the sandbox (issue 14): mount, umount2, pivot_root,
unshare/setns for mount, UTS and IPC namespaces, and the calls a sandbox
refuses.  Differential: natively the program runs under
`unshare --mount --uts --ipc --fork`, so the host's own tables are not changed."""

from __future__ import annotations

import shutil
import tempfile

import pytest
from helpers import Programs, run_native, run_sandbox

UNSHARE = shutil.which("unshare")


def _native_in_namespaces(argv: list[str]) -> object:
    if UNSHARE is None:
        pytest.skip("util-linux unshare not found: the native side cannot run in its own "
                    "namespaces (apt-get install util-linux)")
    res = run_native([UNSHARE, "--mount", "--uts", "--ipc", "--fork", *argv])
    if res.returncode != 0 and "unshare failed" in res.err:
        pytest.skip(f"this host refuses new namespaces to the tests: {res.err.strip()}")
    return res


def test_mount_admin_differential(programs: Programs) -> None:
    """tmpfs/bind/remount/umount (EBUSY, MNT_DETACH), proc/sysfs/mqueue/devpts,
    pivot_root, IPC and UTS namespaces with setns, and EPERM without
    CAP_SYS_ADMIN: every line as Linux prints it."""
    prog = str(programs.path("mount_admin", "static"))
    with tempfile.TemporaryDirectory(prefix="pyvisor-mnt-") as nat, \
            tempfile.TemporaryDirectory(prefix="pyvisor-mnt-") as box:
        native = _native_in_namespaces([prog, nat])
        sandboxed = run_sandbox([prog, box])
    assert native.returncode == 0, native.describe()  # type: ignore[attr-defined]
    assert "write on ro bind: EROFS" in native.out  # type: ignore[attr-defined]
    assert "umount busy: EBUSY" in native.out  # type: ignore[attr-defined]
    assert (sandboxed.out, sandboxed.returncode) == \
        (native.out, native.returncode), sandboxed.describe()  # type: ignore[attr-defined]


def test_clone_with_new_namespaces(programs: Programs) -> None:
    """clone(CLONE_NEWUTS | CLONE_NEWNS): the child's host name and mount stay
    its own; CLONE_NEWNS with CLONE_FS is EINVAL."""
    prog = str(programs.path("clone_newns", "static"))
    with tempfile.TemporaryDirectory(prefix="pyvisor-mnt-") as nat, \
            tempfile.TemporaryDirectory(prefix="pyvisor-mnt-") as box:
        native = _native_in_namespaces([prog, nat])
        sandboxed = run_sandbox([prog, box])
    assert "parent: child exit 3, host unchanged 1, mounted 0" in native.out, \
        native.describe()  # type: ignore[attr-defined]
    assert (sandboxed.out, sandboxed.returncode) == \
        (native.out, native.returncode), sandboxed.describe()  # type: ignore[attr-defined]


def test_util_linux_unshare_mount() -> None:
    """util-linux's `unshare --mount --fork mount -t tmpfs none /mnt`, a file
    written there, `mount` and mountinfo showing it, no ENOSYS in the debug
    log; the outer namespace does not see the mount."""
    if UNSHARE is None or shutil.which("mount") is None:
        pytest.skip("util-linux unshare/mount not found (apt-get install util-linux mount)")
    script = ("unshare --mount --fork sh -c 'mount -t tmpfs none /mnt && echo inside > /mnt/f "
              "&& cat /mnt/f && mount | grep \" /mnt \" && grep -c \" /mnt \" "
              "/proc/self/mountinfo'; echo outer $(grep -c ' /mnt ' /proc/self/mountinfo)")
    res = run_sandbox(["sh", "-c", script], extra_flags=["--debug"])
    assert res.returncode == 0, res.describe()
    assert res.out == ("inside\nnone on /mnt type tmpfs (rw,relatime)\n1\nouter 0\n"), \
        res.describe()
    assert "unsupported syscall" not in res.err, res.err


def test_module_and_reboot_calls_are_eperm(programs: Programs) -> None:
    """init_module, finit_module, delete_module, reboot and swapon are EPERM
    for root in the sandbox (natively on this host they may be ENOSYS, a
    kernel without modules, so this is not differential)."""
    res = run_sandbox([programs.path("mount_admin", "static"), "modules"])
    assert res.out == ("init_module: EPERM\nfinit_module: EPERM\ndelete_module: EPERM\n"
                       "reboot: EPERM\nswapon: EPERM\n"), res.describe()


def test_proc_ns_links_and_new_uts() -> None:
    """/proc/self/ns/* are links like Linux's ("uts:[4026531838]"), and a new
    UTS namespace has its own host name and a new number."""
    script = ("readlink /proc/self/ns/uts /proc/self/ns/pid_for_children; "
              "unshare --uts sh -c 'hostname inner; cat /proc/sys/kernel/hostname; "
              "readlink /proc/self/ns/uts'; "
              "hostname")
    if UNSHARE is None:
        pytest.skip("util-linux unshare not found (apt-get install util-linux)")
    res = run_sandbox(["sh", "-c", script], extra_flags=["--hostname", "outer"])
    lines = res.out.splitlines()
    assert lines[:2] == ["uts:[4026531838]", "pid:[4026531836]"], res.describe()
    assert lines[2] == "inner" and lines[3].startswith("uts:[") and lines[3] != lines[0], \
        res.describe()
    assert lines[4] == "outer", res.describe()


def test_atime_by_mount_mode(programs: Programs) -> None:
    """Reads move a tmpfs file's (and a listing its directory's) atime as the
    mount says: relatime, strictatime, noatime, nodiratime (LTP mount03)."""
    prog = str(programs.path("atime_modes", "static"))
    with tempfile.TemporaryDirectory(prefix="pyvisor-atime-") as nat, \
            tempfile.TemporaryDirectory(prefix="pyvisor-atime-") as box:
        native = _native_in_namespaces([prog, nat])
        sandboxed = run_sandbox([prog, box])
    assert native.returncode == 0, native.describe()  # type: ignore[attr-defined]
    assert "file moved 1, dir moved 0" in native.out  # type: ignore[attr-defined]
    assert "noatime      atime 100s ago, mtime 50s ago: file moved 0" in \
        native.out  # type: ignore[attr-defined]
    assert (sandboxed.out, sandboxed.returncode) == \
        (native.out, native.returncode), sandboxed.describe()  # type: ignore[attr-defined]
