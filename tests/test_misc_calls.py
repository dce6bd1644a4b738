"""Smaller calls against Linux: kcmp(2) for every kind of object (a thread
shares them all, a fork child none but its inherited files; glibc's
pthread_create gives the process a System V undo list), epoll_pwait2(2)'s
timeouts, rt_tgsigqueueinfo(2) and restart_syscall(2)."""

from __future__ import annotations

import pytest
from helpers import Programs, run_native, run_sandbox


@pytest.mark.sandbox
def test_kcmp_and_epoll_pwait2_match_linux(programs: Programs) -> None:
    prog = programs.path("kcmp_calls")
    nat = run_native([prog])
    box = run_sandbox([prog])
    assert nat.returncode == 0, nat.describe()
    for line in ("thread vm: same", "child vm: differs", "epoll target: same",
                 "unprivileged on root: EPERM", "pwait2 null timeout, ready: 1"):
        assert line in nat.out, nat.describe()
    assert box.out == nat.out, box.describe()
    assert (box.returncode, box.err) == (nat.returncode, nat.err), box.describe()


@pytest.mark.sandbox
def test_tgsigqueueinfo_and_restart_syscall_match_linux(programs: Programs) -> None:
    """rt_tgsigqueueinfo to the caller and to another thread (only the caller
    may pose as the kernel), its errors, and restart_syscall with nothing to
    restart."""
    prog = programs.path("tgsigqueue")
    nat = run_native([prog])
    box = run_sandbox([prog])
    assert nat.returncode == 0, nat.describe()
    assert "handled in thread: 1 value 10" in nat.out and "restart_syscall: EINTR" in nat.out
    assert box.out == nat.out, box.describe()
    assert (box.returncode, box.err) == (nat.returncode, nat.err), box.describe()


@pytest.mark.sandbox
def test_sigwait_rules_match_linux(programs: Programs) -> None:
    """sigwaitinfo blocks its set while it waits, EINTR (never a restart) for a
    handled signal outside it, blocked signals queued though ignored, and
    kill() of an unreaped zombie succeeding (each hung or failed before)."""
    prog = programs.path("sigwait_rules")
    nat = run_native([prog])
    box = run_sandbox([prog], timeout=60)
    assert nat.returncode == 0, nat.describe()
    assert "kill zombie: ok" in nat.out and "taken by sigtimedwait: 12" in nat.out
    assert box.out == nat.out, box.describe()
    assert (box.returncode, box.err) == (nat.returncode, nat.err), box.describe()


@pytest.mark.sandbox
def test_epoll_nesting_and_resethand_match_linux(programs: Programs) -> None:
    """epoll in epoll: the nesting limit and cycles are ELOOP; SA_RESETHAND
    resets the handler only (each differed before)."""
    prog = programs.path("epoll_nesting")
    nat = run_native([prog])
    box = run_sandbox([prog])
    assert nat.returncode == 0, nat.describe()
    assert "nest depth 6: ELOOP" in nat.out and "flags 0x90000004" in nat.out
    assert box.out == nat.out, box.describe()
    assert (box.returncode, box.err) == (nat.returncode, nat.err), box.describe()


@pytest.mark.sandbox
def test_refused_message_flags_match_linux(programs: Programs) -> None:
    """MSG_ERRQUEUE with nothing queued is EAGAIN; MSG_OOB on UDP and unix
    datagram sends is EOPNOTSUPP (the UDP and ERRQUEUE cases differed)."""
    prog = programs.path("sock_flags")
    nat = run_native([prog])
    box = run_sandbox([prog])
    assert nat.returncode == 0, nat.describe()
    assert "udp sendto MSG_OOB: EOPNOTSUPP" in nat.out
    assert box.out == nat.out, box.describe()
