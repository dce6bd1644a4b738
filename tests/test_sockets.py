"""Sockets, differentially: the sock_*.c programs natively and in the
sandbox (AF_UNIX stream/dgram/seqpacket, SCM_RIGHTS/SCM_CREDENTIALS,
loopback TCP and UDP over IPv4 and IPv6, poll/select/epoll, 1000
connections, malformed arguments); stdout and the exit status must match.

The programs print only what is the same on every Linux host: results,
errno names, lengths and flags, never ports, addresses of the host or pids.
Before the socket layer, every sandbox run here failed: socket() and
socketpair() were ENOSYS.
"""

from __future__ import annotations

import pytest
from helpers import Programs, Result, run_native, run_sandbox

VARIANTS = ("static", "static-pie")
PROGRAMS = ("sock_tcp", "sock_udp", "sock_unix", "sock_scm", "sock_errors", "sock_poll")

# A line each program must print natively: a broken program fails here on
# its own, before any comparison.
NATIVE_MARKS = {
    "sock_tcp": "v6 echoed hello\n",
    "sock_udp": "recv big MSG_TRUNC                       8000 ok\n",
    "sock_unix": "connect abstract                         0 ok\n",
    "sock_scm": "write passed socket                      8 ok\n",
    "sock_errors": "listen backlog -1                        0 ok\n",
    "sock_poll": "accepted 1000 bytes 1000 client status 0\n",
}


def _same(nat: Result, box: Result) -> None:
    assert "Traceback" not in box.err, box.describe()
    assert box.out == nat.out, box.describe() + "\n--- native ---\n" + nat.out
    assert box.returncode == nat.returncode, box.describe()


@pytest.mark.parametrize("name", PROGRAMS)
def test_native_programs(programs: Programs, name: str) -> None:
    res = run_native([programs.path(name)])
    assert res.returncode == 0, res.describe()
    assert NATIVE_MARKS[name] in res.out, res.describe()


@pytest.mark.sandbox
@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("name", PROGRAMS)
def test_sandbox_matches_native(programs: Programs, name: str, variant: str) -> None:
    exe = programs.path(name, variant)
    _same(run_native([exe]), run_sandbox([exe], timeout=120))


def _epollet_level_triggered() -> bool:
    from syscalls import poll

    return any(e.name == "epoll_wait" and "EPOLLET treated as LT" in e.note
               for e in poll.ENTRIES)


@pytest.mark.sandbox
def test_sandbox_epoll_edge_triggered_sockets(programs: Programs) -> None:
    if _epollet_level_triggered():
        pytest.skip("syscalls/poll.py treats EPOLLET as level-triggered (not this layer's part)")
    exe = programs.path("sock_poll")
    nat = run_native([exe, "et"])
    assert "et no new edge                           0 ok\n" in nat.out, nat.describe()
    _same(nat, run_sandbox([exe, "et"]))
