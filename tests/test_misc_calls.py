"""Smaller calls against Linux: kcmp(2) for every kind of object (a thread
shares them all, a fork child none but its inherited files; glibc's
pthread_create gives the process a System V undo list), epoll_pwait2(2)'s
timeouts, rt_tgsigqueueinfo(2) and restart_syscall(2)."""

from __future__ import annotations

import pytest
from helpers import Programs, assert_same_as_native


@pytest.mark.sandbox
def test_kcmp_and_epoll_pwait2_match_linux(programs: Programs) -> None:
    prog = programs.path("kcmp_calls")
    assert_same_as_native(prog, markers=(
        "thread vm: same", "child vm: differs", "epoll target: same",
        "unprivileged on root: EPERM", "pwait2 null timeout, ready: 1"))


@pytest.mark.sandbox
def test_tgsigqueueinfo_and_restart_syscall_match_linux(programs: Programs) -> None:
    """rt_tgsigqueueinfo to the caller and to another thread (only the caller
    may pose as the kernel), its errors, and restart_syscall with nothing to
    restart."""
    prog = programs.path("tgsigqueue")
    assert_same_as_native(prog, markers=(
        "handled in thread: 1 value 10", "restart_syscall: EINTR"))


@pytest.mark.sandbox
def test_sigwait_rules_match_linux(programs: Programs) -> None:
    """sigwaitinfo blocks its set while it waits, EINTR (never a restart) for a
    handled signal outside it, blocked signals queued though ignored, and
    kill() of an unreaped zombie succeeding (each hung or failed before)."""
    prog = programs.path("sigwait_rules")
    assert_same_as_native(prog, timeout=60, markers=(
        "kill zombie: ok", "taken by sigtimedwait: 12"))


@pytest.mark.sandbox
def test_epoll_nesting_and_resethand_match_linux(programs: Programs) -> None:
    """epoll in epoll: the nesting limit and cycles are ELOOP; SA_RESETHAND
    resets the handler only (each differed before)."""
    prog = programs.path("epoll_nesting")
    assert_same_as_native(prog, markers=(
        "nest depth 6: ELOOP", "flags 0x90000004"))


@pytest.mark.sandbox
def test_refused_message_flags_match_linux(programs: Programs) -> None:
    """MSG_ERRQUEUE with nothing queued is EAGAIN; MSG_OOB on UDP and unix
    datagram sends is EOPNOTSUPP (the UDP and ERRQUEUE cases differed)."""
    prog = programs.path("sock_flags")
    assert_same_as_native(prog, markers=(
        "udp sendto MSG_OOB: EOPNOTSUPP",))
