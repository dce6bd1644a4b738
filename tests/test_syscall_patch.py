"""Syscall patching (sentry/systrap/patch.py, stub_patch.inc).

A `mov $nr,%eax; syscall` site that trapped is rewritten into a jump to the
stub's trampoline.  tests/programs/syscall_patch.c runs such a site in a page
of its own: differentially (the same output natively) through an mprotect,
its own rewrite of the code, a fork and an exec; in `check` mode, only in the
sandbox, it also says that the site *was* patched at each of those steps, so
the differential run exercised the trampoline and not only SIGSYS.  The
trampoline must give the application nothing the stub's filter does not:
its own syscall instruction is an ordinary trapped one, and a direct jump
into it is answered by the Sentry.
"""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from helpers import RUNSC, TIMEOUT, Programs, assert_same_as_native, run_native, run_sandbox
from sentry.systrap._stub import ffi, lib
from test_stub_code import IP, PROG, _run_filter

from sentry.systrap import bpf, patch

pytestmark = pytest.mark.skipif(not patch.HAVE_FSGSBASE,
                                reason="no FSGSBASE instructions: patching is off here")
MARKERS = ["first: 50", "after mprotect: 50", "after rewrite to getpid: 50",
           "after rewrite to write: 50", "child: 50", "parent after fork: 50", "after exec"]


def _sandbox_env(value: str) -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("PYVISOR_")}
    env["PYVISOR_PATCH"] = value
    return env


@pytest.mark.parametrize("variant", ["static", "static-pie"])
def test_patched_site_keeps_trapping_like_native(programs: Programs, variant: str) -> None:
    assert_same_as_native(programs.path("syscall_patch", variant), markers=MARKERS)


def test_site_is_patched_at_every_step(programs: Programs) -> None:
    """Each step of the differential run above ran a patched site: after the
    mprotect, after each rewrite (patched again), in the fork child (the
    patch inherited) and the parent, and in the exec'd image."""
    box = run_sandbox([programs.path("syscall_patch"), "check"])
    assert box.returncode == 0, box.describe()
    lines = re.findall(r"^patched (.*): (\d)$", box.out, re.M)
    assert [w for w, _ in lines] == ["first", "mprotect", "getpid", "write", "in child before",
                                     "parent", "first"], box.describe()
    assert all(v == "1" for _, v in lines), box.describe()
    for m in MARKERS:
        assert m in box.out, box.describe()


def test_switch_turns_patching_off(programs: Programs) -> None:
    prog = str(programs.path("syscall_patch"))
    for value, want in (("0", "patched 0\ntable 0\n"), ("1", "patched 1\ntable 1\n")):
        cmd = [sys.executable, str(RUNSC), "do", "--", prog, "probe"]
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT,
                             env=_sandbox_env(value))
        assert (res.returncode, res.stdout) == (0, want), (value, res.stdout, res.stderr)


def test_app_seccomp_filter_sees_patched_calls(programs: Programs) -> None:
    """A site patched before the application installs its own seccomp filter:
    the filter still decides every later call through it (ERRNO 42), as
    natively; and in the sandbox the site had been patched."""
    prog = programs.path("syscall_patch")
    nat = run_native([prog, "seccomp"])
    box = run_sandbox([prog, "seccomp"])
    assert nat.out == "before filter 1, denied after 50\n", nat.describe()
    assert (box.returncode, box.out) == (nat.returncode, nat.out), box.describe()
    assert "site patched 1\n" in box.err, box.describe()


def test_table_taken_over_restores_sites(programs: Programs) -> None:
    """The application maps its own memory over the patch table: every
    patched site is first given back its own bytes, and still works."""
    box = run_sandbox([programs.path("syscall_patch"), "unmap"])
    assert box.returncode == 0, box.describe()
    assert box.out == "after unmap\npatched before 1, restored 1, calls 50\n", box.describe()


def test_trampoline_is_answered_by_the_sentry(programs: Programs) -> None:
    """A jump into the trampoline with a syscall number, and a jump onto its
    own syscall instruction, are both served by the Sentry (the sandbox's pid,
    the same as libc's getpid there), never by the host."""
    delta = lib.stub_patch_resync_addr() - lib.stub_patch_entry_addr()
    box = run_sandbox([programs.path("syscall_patch"), "escape", str(delta)])
    assert box.returncode == 0, box.describe()
    m = re.search(r"trampoline getpid (\d+) libc getpid (\d+)\n", box.out)
    assert m and m.group(1) == m.group(2), box.describe()
    m2 = re.search(r"resync getpid (\d+) then SIGILL\n", box.out)
    assert m2 and m2.group(1) == m.group(2), box.describe()


def test_trampoline_adds_no_trusted_syscall() -> None:
    """Every `0f 05` in the stub's code (at any offset, so a jump into the
    middle of an instruction too) other than stub_syscall6's own traps for
    every syscall number: the filter still trusts one instruction, the one it
    trusted before the trampoline existed, and the trampoline reaches the
    host only through it."""
    code = bytes(ffi.buffer(ffi.cast("char *", lib.stub_code_start()), lib.stub_code_size()))
    ips = [lib.STUB_CODE_ADDR + m.start() + 2 for m in re.finditer(b"\x0f\x05", code)]
    entry = lib.stub_patch_entry_addr()
    resync = lib.stub_patch_resync_addr()
    assert IP in ips and resync + 2 in ips and lib.STUB_CODE_ADDR <= entry < resync
    for ip in ips:
        if ip == IP:
            continue
        for nr in range(0, 460):
            assert _run_filter(PROG, nr, ip) == bpf.SECCOMP_RET_TRAP, (hex(ip), nr)


def test_site_code_layout() -> None:
    """The per-site code and the patched bytes (what patch.py writes)."""
    assert patch.patched_bytes(3)[5:] == b"\x0f\x05"  # a mid-sequence thread still traps
    code = patch.site_code(39, 0x401007)
    assert len(code) == patch.SITE_CODE
    assert code[:5] == b"\xb8\x27\x00\x00\x00"
    assert code[5:15] == b"\x48\xb9" + (0x401007).to_bytes(8, "little")
    assert code[15:22] == b"\xff\x24\x25" + patch.BASE.to_bytes(4, "little")
