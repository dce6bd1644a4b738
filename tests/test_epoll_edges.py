"""epoll's edges, fairness and EPOLLEXCLUSIVE against Linux (the LTP's
epoll_wait06, 14 and 16): a pipe's write end has an edge only when a read
makes it writable again; ready files beyond maxevents are reported in turn;
an exclusive edge wakes one sleeping waiter. And vmsplice into a pipe
returning the count that fits (the LTP's vmsplice01)."""

from __future__ import annotations

import pytest
from helpers import Programs, assert_same_as_native


@pytest.mark.sandbox
def test_epoll_edges_fairness_and_exclusive_wakeups_match_linux(programs: Programs) -> None:
    prog = programs.path("epoll_fair_exclusive")
    assert_same_as_native(prog, markers=(
        "full: 1 (fd 0)", "half read: 0", "all read: 1 (fd 1)",
        "round robin: 4 4 4 4 4 4 4 4 4 4 4 4 4", "exclusive, not asleep: 1 1",
        "exclusive woke in rounds: 3"))


@pytest.mark.sandbox
def test_vmsplice_returns_what_fits_match_linux(programs: Programs) -> None:
    """vmsplice of 128 KiB into a 64 KiB pipe by its own reader hung (it
    waited for room for everything); Linux returns the count that fit."""
    prog = programs.path("vmsplice_short")
    assert_same_as_native(prog, markers=(
        "moved 131072 bytes in more than one call, intact: 1",), timeout=60)
