"""System V semaphores and message queues (sentry/kernel/ipc/,
syscalls/ipc.py) and POSIX message queues (sentry/vfs/mqueue.py,
syscalls/mqueue.py), differential against Linux.

tests/programs/sysv_ipc.c prints every result with its errno; ``ipcs`` and
``ipcmk`` (util-linux) read /proc/sysvipc and /proc/sys/kernel. Natively the
script runs in a fresh IPC namespace (``unshare --ipc``), as the sandbox has
one of its own, so both start from no objects and give the same ids.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from helpers import PROGRAMS_DIR, Programs, run_native, run_sandbox

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="one scenario drops to uid 1000")


def _build(programs: Programs, gcc: str, tmp_path: Path, name: str, variant: str) -> Path:
    if variant == "dynamic":  # the shared fixture builds static variants only
        prog = tmp_path / name
        subprocess.run([gcc, "-O1", "-Wall", "-o", str(prog), str(PROGRAMS_DIR / f"{name}.c")],
                       check=True)
        return prog
    return programs.path(name, variant)


@pytest.mark.parametrize("variant", ["static", "dynamic"])
def test_semaphores_and_queues(programs: Programs, gcc: str, tmp_path: Path,
                               variant: str) -> None:
    prog = _build(programs, gcc, tmp_path, "sysv_ipc", variant)
    native = run_native([prog])
    sandboxed = run_sandbox([prog])
    assert native.returncode == 0, native.describe()
    assert "receiver exit 42" in native.out and "value after undo: 0" in native.out
    assert (sandboxed.out, sandboxed.returncode) == (native.out, native.returncode), \
        sandboxed.describe()


@pytest.mark.parametrize("variant", ["static", "dynamic"])
def test_posix_message_queues(programs: Programs, gcc: str, tmp_path: Path,
                              variant: str) -> None:
    prog = _build(programs, gcc, tmp_path, "posix_mq", variant)
    native = run_native([prog])
    sandboxed = run_sandbox([prog])
    assert native.returncode == 0, native.describe()
    assert "signal 10 code -3 value 77" in native.out and "got late prio 0" in native.out
    assert (sandboxed.out, sandboxed.returncode) == (native.out, native.returncode), \
        sandboxed.describe()


IPCS_SCRIPT = """
ipcmk -S 3 > /dev/null
ipcmk -Q > /dev/null
ipcmk -S 1 -p 0640 > /dev/null
ipcs | sed -E 's/^0x[0-9a-f]+/KEY/'
ipcs -l
ipcs -s -i 0 | grep -v -E 'time|^$'
ipcrm -s 1 && ipcrm -q 0 && ipcs -s -q | sed -E 's/^0x[0-9a-f]+/KEY/'
"""


def test_ipcs_and_ipcrm() -> None:
    for tool in ("ipcs", "ipcmk", "ipcrm", "unshare"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} not installed (util-linux)")
    native = run_native(["unshare", "--ipc", "sh", "-c", IPCS_SCRIPT])
    sandboxed = run_sandbox(["sh", "-c", IPCS_SCRIPT])
    assert native.returncode == 0, native.describe()
    assert "Semaphore Arrays" in native.out
    assert (sandboxed.out, sandboxed.err, sandboxed.returncode) == \
        (native.out, native.err, native.returncode), sandboxed.describe()


@pytest.mark.parametrize("variant", ["static", "dynamic"])
def test_shared_memory_segments(programs: Programs, gcc: str, tmp_path: Path,
                                variant: str) -> None:
    """shmget/shmat/shmdt/shmctl (ENOSYS before): pages shared across fork,
    nattch, the address rules, IPC_RMID with attachments left."""
    prog = _build(programs, gcc, tmp_path, "sysv_shm", variant)
    native = run_native([prog])
    sandboxed = run_sandbox([prog])
    assert native.returncode == 0, native.describe()
    assert "parent sees [from child], nattch after child exit 1" in native.out
    assert (sandboxed.out, sandboxed.returncode) == (native.out, native.returncode), \
        sandboxed.describe()


def test_ipc_tunables_same_as_linux(programs: Programs) -> None:
    """/proc/sys/kernel's msgmni, shmmni, shmmax and *_next_id are the IPC
    namespace's and take effect (ENOSPC, EINVAL, chosen ids), with Linux's
    modes, ranges and refusals (LTP's msgget03/04/05 and shmget03/05/06 failed
    on these: the files were read-only or missing, shmmni was not enforced)."""
    if shutil.which("unshare") is None:
        pytest.skip("unshare not installed (util-linux): the native run needs its own "
                    "IPC namespace so that the host's tunables stay as they are")
    prog = programs.path("ipc_sysctl", "static")
    native = run_native(["unshare", "--ipc", prog])
    sandboxed = run_sandbox([prog])
    assert native.returncode == 0, native.describe()
    assert "msgget id 12345" in native.out, native.describe()
    assert (sandboxed.out, sandboxed.returncode) == (native.out, native.returncode), \
        sandboxed.describe()


@pytest.mark.sandbox
def test_shm_hugetlb_as_the_config_says(programs: Programs) -> None:
    """A SHM_HUGETLB segment is EINVAL, as on a Linux without huge pages, which
    is what the sandbox's /proc/config.gz says (LTP's shmget02 checks the
    pair).  Sandbox only: natively the answer depends on the host's huge
    pages."""
    prog = programs.path("ipc_sysctl", "static")
    res = run_sandbox(["/bin/sh", "-c",
                       f"zcat /proc/config.gz | grep -c '^# CONFIG_HUGETLBFS is not set'; "
                       f"{prog} hugetlb"])
    assert res.returncode == 0, res.describe()
    assert res.out.split("\n")[0] == "1", res.describe()
    assert "shmget SHM_HUGETLB" in res.out and "Invalid argument" in res.out, res.describe()
