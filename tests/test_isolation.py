"""Isolation between processes of one sandbox: an unprivileged process cannot
read a secret that a root process of the same sandbox holds
(tests/programs/isolation_probe.c; see docs/security.md)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import RUNSC, Programs, host_children, run_native, run_sandbox, sentry_pid
from sentry.systrap._stub import lib

STUB_SYSCALL_INSN = lib.STUB_CODE_ADDR + lib.stub_syscall_ip_offset() - 2


def _lines(out: str) -> dict[str, str]:
    return dict(line.split(": ", 1) for line in out.splitlines() if ": " in line)


@pytest.mark.sandbox
def test_proc_mem_and_process_vm_readv_refused(programs: Programs) -> None:
    prog = programs.path("isolation_probe")
    native = _lines(run_native([prog]).out)
    res = run_sandbox([prog])
    assert res.returncode == 0, res.describe()
    got = _lines(res.out)
    for how in ("procmem", "process_vm_readv"):
        assert native[how].startswith("refused"), native  # the host's own rule
        assert got[how].startswith("refused"), res.describe()
    assert "child exit 0" in res.out, res.describe()


@pytest.mark.sandbox
def test_stub_mmap_cannot_reach_another_process(programs: Programs) -> None:
    """The unprivileged child maps, from its stub's trusted syscall
    instruction, every memory file its stub holds (its own arena and the
    shared object it last received, docs/security.md): the root parent's
    private page is in neither."""
    prog = programs.path("isolation_probe")
    res = run_sandbox([prog, hex(STUB_SYSCALL_INSN), "256"])
    assert res.returncode == 0, res.describe()
    got = _lines(res.out)
    assert got["stub_mmap"] == "no secret", res.describe()
    assert "child exit 0" in res.out, res.describe()


@pytest.mark.sandbox
def test_stub_cannot_map_the_common_arena_number(programs: Programs) -> None:
    """fd 4, where every stub once held the sandbox's common arena (a channel
    between processes the Sentry does not see): an mmap of it from the
    stub's trusted instruction is refused by the stub's filter, which kills
    the process (SIGSYS), so it never maps anything there.  Before the
    common arena was dropped this printed "fd4: mapped"."""
    res = run_sandbox([programs.path("isolation_probe"), hex(STUB_SYSCALL_INSN), "0", "fd4"])
    assert res.returncode == 0, res.describe()
    assert "fd4: mapped" not in res.out, res.describe()
    assert "fd4:" not in res.out, res.describe()  # killed before it could say
    assert "child exit 0" not in res.out, res.describe()


def _runs_stub_code(pid: int) -> bool:
    """The zygote and the stubs have the stub code mapped at its fixed address."""
    try:
        with open(f"/proc/{pid}/maps") as f:
            return any(int(line.split("-", 1)[0], 16) == lib.STUB_CODE_ADDR for line in f)
    except OSError:
        return False


def _stub_fds(pid: int) -> dict[int, dict[int, str]]:
    """Each host child of ``pid`` that runs the stub code (the zygote, the
    stubs; not the Gofer): its descriptors and what they name."""
    out: dict[int, dict[int, str]] = {}
    for kid in host_children(pid):
        fds: dict[int, str] = {}
        if not _runs_stub_code(kid):
            continue
        try:
            for fd in os.listdir(f"/proc/{kid}/fd"):
                try:
                    fds[int(fd)] = os.readlink(f"/proc/{kid}/fd/{fd}")
                except OSError:
                    continue
        except OSError:
            continue  # gone meanwhile
        out[kid] = fds
    return out


@pytest.mark.sandbox
def test_no_stub_holds_the_common_arena(programs: Programs) -> None:
    """With a child process alive, no host process the Sentry started (the
    zygote, both stubs) holds the common arena's file (memfd
    "pyvisor-memory") or anything at fd 4; each stub holds its own arena at
    fd 3.  Before, the zygote and every stub held the common arena at fd 4."""
    seen: dict[int, dict[int, str]] = {}

    def look(sentry: int) -> None:
        seen.update(_stub_fds(sentry))

    _churn(programs.path("fork_churn"), 1, at_child_up=look)
    stubs = [fds for fds in seen.values() if "pyvisor-mm" in fds.get(3, "")]
    assert len(stubs) >= 2 and len(seen) == len(stubs) + 1, seen  # two stubs, the zygote
    for kid, fds in seen.items():
        assert 4 not in fds, (kid, fds)
        assert not any("pyvisor-memory" in t for t in fds.values()), (kid, fds)


def _fd_kinds(pid: int) -> dict[str, int]:
    """The Sentry's descriptors by kind: address-space arenas, shared objects'
    files, everything else."""
    kinds = {"arena": 0, "object": 0, "pidfd": 0, "other": 0}
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue  # closed meanwhile (listdir's own descriptor)
        kind = ("arena" if "pyvisor-mm" in target else
                "object" if "pyvisor-shared" in target else
                "pidfd" if "pidfd" in target else "other")
        kinds[kind] += 1
    return kinds


def _churn(prog: Path, forks: int,
           at_child_up: Callable[[int], None] | None = None) -> dict[str, dict[str, int]]:
    """The Sentry's descriptors by kind at fork_churn's three steps
    (``at_child_up`` is called with the Sentry's pid while the child lives)."""
    counts = {}
    with subprocess.Popen([sys.executable, str(RUNSC), "do", "--", str(prog), str(forks)],
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) as proc:
        assert proc.stdin is not None and proc.stdout is not None
        try:
            for step in ("ready", "child up", "done"):
                line = proc.stdout.readline().strip()
                assert line == step, (line, proc.poll())
                counts[step] = _fd_kinds(sentry_pid(proc.pid))
                if step == "child up" and at_child_up is not None:
                    at_child_up(sentry_pid(proc.pid))
                proc.stdin.write("x")
                proc.stdin.flush()
            assert proc.wait(timeout=60) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
    return counts


@pytest.mark.sandbox
def test_memory_files_do_not_outlive_their_processes(programs: Programs) -> None:
    """Each address space's arena is a file the Sentry holds while a process
    uses it (with the socket to the child's stub: one more arena and one more
    other descriptor with a child alive), and closes when the process is
    gone: after 1,000 forks and exits the Sentry holds as many arenas and
    other descriptors as before them.  Shared objects are made when a fork
    finds read-only private pages the parent has not shared yet (its text;
    syscall patching's table and patched pages add a few as new call sites
    are first reached): as many after 1,000 forks as after 100, never one
    per fork."""
    prog = programs.path("fork_churn")
    counts = _churn(prog, 1000)
    ready, up, done = counts["ready"], counts["child up"], counts["done"]
    assert up["arena"] == ready["arena"] + 1, counts  # the child's arena
    assert up["other"] == ready["other"] + 1, counts  # its stub's socket
    assert up["pidfd"] == ready["pidfd"] + 1, counts  # its stub's pidfd
    assert all(done[k] == ready[k] for k in ("arena", "pidfd", "other")), counts
    assert done["object"] == _churn(prog, 100)["done"]["object"], counts


@pytest.mark.sandbox
def test_shared_memory_of_another_process_is_out_of_reach(programs: Programs) -> None:
    """A root process's secret in shared anonymous memory it made after the
    fork is a file of its own, which the unprivileged child's stub never
    received: no memory file it can map holds it."""
    prog = programs.path("isolation_probe")
    res = run_sandbox([prog, hex(STUB_SYSCALL_INSN), "256", "shared"])
    assert res.returncode == 0, res.describe()
    got = _lines(res.out)
    assert got["stub_mmap"] == "no secret", res.describe()
    assert "child exit 0" in res.out, res.describe()


@pytest.mark.sandbox
@pytest.mark.parametrize("mode", ["tmpfs", "memfd", "sysv"])
def test_tmpfs_pages_of_another_process_are_out_of_reach(programs: Programs, mode: str) -> None:
    """A root process's secret in the pages tmpfs keeps in the memory file (a
    root-only /dev/shm file, a memfd or a SysV segment it made after the fork,
    mapped shared) is in a file of its own, which the unprivileged child's
    stub never received: no memory file it can map holds it."""
    prog = programs.path("isolation_probe")
    res = run_sandbox([prog, hex(STUB_SYSCALL_INSN), "256", mode])
    assert res.returncode == 0, res.describe()
    got = _lines(res.out)
    assert got["stub_mmap"] == "no secret", res.describe()
    assert "child exit 0" in res.out, res.describe()


@pytest.mark.sandbox
def test_cached_program_text_cannot_be_mapped_writable(programs: Programs) -> None:
    """A program's cached text is a sealed file (F_SEAL_FUTURE_WRITE) that its
    stub receives to map it: from the stub's trusted instruction the
    application maps it read-only, never writable."""
    res = run_sandbox([programs.path("object_seal_probe"), hex(STUB_SYSCALL_INSN)])
    assert res.returncode == 0, res.describe()
    assert _lines(res.out) == {"map read/write": "refused (EPERM)", "map read-only": "allowed",
                               "mprotect to write": "refused (EACCES)"}, res.describe()
