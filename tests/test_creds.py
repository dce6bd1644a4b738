"""Credentials and capabilities (sentry/kernel/creds.py, syscalls/creds.py):
differential against Linux, run as root like the suite.

The C program tests/programs/creds_ids.c walks the set*id transitions and
their capability side effects, capget/capset, prctl's capability options,
the fs ids, signal permission and execve's transitions (set-user-ID file,
ambient set, no_new_privs) and prints each result with its errno; the same
output is wanted natively and under ``runsc.py do``. Before this module
existed every one of those calls was ENOSYS in the sandbox.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import PROGRAMS_DIR, Programs, run_native, run_sandbox

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="set*id and capset need root")


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A scratch directory every test uid can search: the program, and the
    files it makes, must be reachable by uids 1000 and 2000 (pytest's own
    temporary tree is root's 0700)."""
    d = Path(tempfile.mkdtemp(prefix="pyvisor-creds-", dir="/tmp"))
    d.chmod(0o755)
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.mark.parametrize("variant", ["static", "static-pie", "dynamic"])
def test_credentials_program(programs: Programs, gcc: str, open_dir: Path,
                             variant: str) -> None:
    prog = open_dir / "creds_ids"
    if variant == "dynamic":  # the shared fixture builds static variants only
        subprocess.run([gcc, "-O1", "-Wall", "-o", str(prog),
                        str(PROGRAMS_DIR / "creds_ids.c")], check=True)
    else:
        shutil.copy(programs.path("creds_ids", variant), prog)
    for name in ("native", "sandbox"):
        (open_dir / name).mkdir(mode=0o755)
    native = run_native([prog, open_dir / "native"])
    sandboxed = run_sandbox([prog, open_dir / "sandbox"])
    assert native.returncode == 0, native.describe()
    assert "exec: uid 2000 1000 1000" in native.out  # the set-user-ID exec ran
    assert sandboxed.out == native.out, sandboxed.describe()
    assert sandboxed.returncode == native.returncode


DROP_PRIVILEGES = """
import os
def status():
    keep = ("Uid", "Gid", "Groups", "Cap")
    return [l for l in open("/proc/self/status").read().splitlines() if l.startswith(keep)]
print(os.getresuid(), os.getresgid(), status())
os.setgroups([65534, 100])
os.setresgid(65534, 65534, 65534)
os.setresuid(65534, 65534, 0)
print(os.getresuid(), status())
try:
    open("/etc/shadow").read()
except OSError as e:
    print("shadow", e.errno)
os.setresuid(0, 0, 0)
print(os.getresuid(), status())
print(len(open("/etc/shadow").read()) > 0)
os.setuid(65534)
try:
    os.setuid(0)
except OSError as e:
    print("back to root", e.errno)
"""


def test_python_drops_and_regains_privileges() -> None:
    """A daemon's pattern: drop to nobody keeping a saved root, come back,
    then drop for good; /proc/self/status tells the truth at each step."""
    native = run_native(["python3", "-c", DROP_PRIVILEGES])
    sandboxed = run_sandbox(["python3", "-c", DROP_PRIVILEGES])
    assert native.returncode == 0, native.describe()
    assert "shadow 13" in native.out
    assert (sandboxed.out, sandboxed.returncode) == (native.out, native.returncode), \
        sandboxed.describe()


def test_syscalls_table_lists_credential_calls() -> None:
    """`help syscalls` lists none of issue 13's credential calls as ENOSYS."""
    from syscalls.linux64 import build_table

    table = build_table()
    names = ["setuid", "setgid", "setreuid", "setregid", "setresuid", "setresgid",
             "getresuid", "getresgid", "setfsuid", "setfsgid", "capget", "capset",
             "setgroups", "getgroups"]
    support = {e.name: e.support for e in table}
    assert {n: support.get(n) for n in names} == dict.fromkeys(names, "supported")


def test_syscalls_table_serves_issue_13_calls() -> None:
    """None of issue 13's shared-memory and IPC calls is left unsupported
    (which by the project's rule is ENOSYS)."""
    from syscalls.linux64 import build_table

    names = ["msync", "mincore", "mlock", "munlock", "mlock2", "mlockall", "munlockall",
             "madvise", "memfd_create", "process_vm_readv", "process_vm_writev", "futex",
             "mremap", "shmget", "shmat", "shmdt", "shmctl", "semget", "semop", "semtimedop",
             "semctl", "msgget", "msgsnd", "msgrcv", "msgctl", "mq_open", "mq_unlink",
             "mq_timedsend", "mq_timedreceive", "mq_notify", "mq_getsetattr"]
    support = {e.name: e.support for e in build_table()}
    unserved = {n: support.get(n) for n in names if support.get(n) not in ("supported",
                                                                          "partial")}
    assert unserved == {}


def test_su_to_nobody() -> None:
    """util-linux's su (set-user-ID root, PAM, setgroups/setuid, an audit
    netlink socket it does without) runs a command as nobody, as natively."""
    import shutil

    if shutil.which("su") is None:
        pytest.skip("su not installed (util-linux/login)")
    argv = ["su", "nobody", "-s", "/bin/sh", "-c", "id"]
    native = run_native(argv)
    assert native.returncode == 0 and "uid=65534" in native.out, native.describe()
    sandboxed = run_sandbox(argv)
    assert (sandboxed.out, sandboxed.returncode) == (native.out, native.returncode), \
        sandboxed.describe()
