"""/proc/config.gz describes the Sentry, and stays true to the syscall table:
each option that stands for a family of calls is set exactly when those
calls are served."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys

import pytest
from helpers import RUNSC, run_sandbox

# An option and a call that exists exactly when the option is set.
OPTION_CALLS = {
    "AIO": "io_setup", "EVENTFD": "eventfd2", "SIGNALFD": "signalfd4",
    "TIMERFD": "timerfd_create", "INOTIFY_USER": "inotify_init1", "SECCOMP_FILTER": "seccomp",
    "FHANDLE": "name_to_handle_at", "USERFAULTFD": "userfaultfd", "IO_URING": "io_uring_setup",
    "BPF_SYSCALL": "bpf", "PERF_EVENTS": "perf_event_open", "KEYS": "keyctl",
    "FANOTIFY": "fanotify_init", "CHECKPOINT_RESTORE": "kcmp",
    "CROSS_MEMORY_ATTACH": "process_vm_readv", "POSIX_MQUEUE": "mq_open", "SYSVIPC": "semget",
    "MEMBARRIER": "membarrier", "RSEQ": "rseq", "ADVISE_SYSCALLS": "madvise",
}


def _table() -> dict[str, str]:
    res = subprocess.run([sys.executable, str(RUNSC), "help", "syscalls", "--format", "json"],
                         capture_output=True, text=True, timeout=60, check=True)
    return {r["name"]: r["support"] for r in json.loads(res.stdout)}


@pytest.mark.sandbox
def test_config_gz_matches_the_syscall_table() -> None:
    res = run_sandbox(["/bin/sh", "-c", "zcat /proc/config.gz"])
    assert res.returncode == 0, res.describe()
    options: dict[str, bool] = {}
    for line in res.out.splitlines():
        if line.startswith("CONFIG_") and line.endswith("=y"):
            options[line[7:-2]] = True
        elif line.startswith("# CONFIG_") and line.endswith(" is not set"):
            options[line[9:-11]] = False
    table = _table()
    for option, call in OPTION_CALLS.items():
        assert option in options, f"CONFIG_{option} is neither set nor unset"
        served = table[call] != "unsupported"
        assert options[option] == served, (option, call, table[call])
    assert options["PID_NS"] is True and options["TIME_NS"] is True
    assert options["NET_NS"] is False and options["UTS_NS"] is True


def test_config_gz_is_gzip_of_the_text() -> None:
    from sentry.procfs import kconfig

    assert gzip.decompress(kconfig.gzipped()) == kconfig.text()
    assert kconfig.gzipped() == kconfig.gzipped()  # same bytes on every read
