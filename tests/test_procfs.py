"""procfs seen from inside the sandbox: the sandbox's own processes, in Linux's
formats (compared with what Linux prints where the values can agree)."""

from __future__ import annotations

import os
import re

import pytest
from helpers import run_native, run_sandbox

BB = "/bin/busybox"
pytestmark = pytest.mark.sandbox


def sh(script: str) -> str:
    res = run_sandbox([BB, "sh", "-c", script])
    assert res.returncode == 0, res.describe()
    assert "Traceback" not in res.err
    return res.out


def test_root_lists_pids_and_self() -> None:
    names = sh("ls /proc").split()
    assert {"1", "self", "cpuinfo", "meminfo", "mounts", "filesystems"} <= set(names)


def test_self_is_the_caller() -> None:
    # `cat` is a child of sh (pid 1): its own status, not init's.
    out = sh("cat /proc/self/status; :")
    pid = re.search(r"^Pid:\t(\d+)$", out, re.M)
    assert pid is not None and pid.group(1) != "1"
    assert re.search(rf"^Tgid:\t{pid.group(1)}$", out, re.M)
    assert re.search(r"^PPid:\t1$", out, re.M)
    assert re.search(r"^Name:\tcat$", out, re.M)


def test_exe_cmdline_and_fds() -> None:
    out = sh("readlink /proc/1/exe; tr '\\0' ' ' < /proc/1/cmdline; echo; ls /proc/1/fd")
    lines = out.splitlines()
    assert lines[0] == BB
    assert lines[1].startswith(f"{BB} sh -c ")
    assert {"0", "1", "2"} <= set(lines[2:])


def test_stat_line_shape() -> None:
    fields = sh("cat /proc/1/stat; :").split()
    assert fields[0] == "1" and fields[1] == "(busybox)" and fields[3] == "0"
    assert len(fields) == 52


def test_maps_format() -> None:
    lines = sh("cat /proc/self/maps").splitlines()
    pattern = re.compile(r"^[0-9a-f]{8,}-[0-9a-f]{8,} [r-][w-][x-][ps] [0-9a-f]{8} "
                         r"\d\d:\d\d \d+")
    assert lines and all(pattern.match(ln) for ln in lines), lines
    assert any(ln.endswith("[stack]") for ln in lines)


def test_mounts_and_filesystems() -> None:
    out = sh("cat /proc/mounts")
    assert re.search(r"^proc /proc proc ", out, re.M)
    assert re.search(r"^devtmpfs /dev devtmpfs ", out, re.M)
    assert "\tproc" in sh("cat /proc/filesystems")


def test_cpuinfo_matches_the_cpus_we_may_use() -> None:
    n = sh("grep -c ^processor /proc/cpuinfo").strip()
    assert int(n) == len(os.sched_getaffinity(0))
    native = run_native(["nproc"]).out.strip()
    assert sh("nproc").strip() == native


def test_hostname_and_missing_pid() -> None:
    assert sh("cat /proc/sys/kernel/hostname").strip() == "pyvisor"
    res = run_sandbox([BB, "cat", "/proc/99999/status"])
    assert res.returncode == 1 and "No such file" in res.err
