"""Scheduling calls on a thread's id: the same answers natively and in the sandbox.

glibc's ``pthread_getattr_np`` calls ``sched_getaffinity`` on the calling
thread's tid; the JVM aborts at start (``pthread_getattr_np failed with error
= 3``) when that gives ESRCH.  tests/programs/sched_threads.c asks every
sched_* query (and prlimit, getcpu) of pid 0, of the process and of a second thread,
and prints errno names and booleans only.
"""

from __future__ import annotations

import pytest
from helpers import Programs, run_native, run_sandbox

EXPECTED = """\
self(0) getaffinity                  ok
self(0) affinity has a cpu           1
self(0) setaffinity same             ok
self(0) getscheduler                 ok
self(0) policy is SCHED_OTHER        1
self(0) getparam                     ok
self(0) priority 0                   1
self(0) prlimit NOFILE               ok
pid getaffinity                      ok
pid affinity has a cpu               1
pid setaffinity same                 ok
pid getscheduler                     ok
pid policy is SCHED_OTHER            1
pid getparam                         ok
pid priority 0                       1
pid prlimit NOFILE                   ok
pthread_getattr_np in thread         ok
thread stack size > 0                1
attr affinity                        ok 1
thread tid differs from pid          1
thread getaffinity                   ok
thread affinity has a cpu            1
thread setaffinity same              ok
thread getscheduler                  ok
thread policy is SCHED_OTHER         1
thread getparam                      ok
thread priority 0                    1
thread prlimit NOFILE                ok
pthread_getaffinity_np               ok 1
getaffinity of a dead tid            ESRCH
getscheduler of a dead tid           ESRCH
getparam of a dead tid               ESRCH
getaffinity pid -1                   ESRCH
getscheduler pid -1                  EINVAL
getparam NULL                        EINVAL
setaffinity empty mask               EINVAL
setaffinity one cpu                  ok
reads back one cpu                   1
new thread inherits it               1
getcpu pinned                        ok
getcpu is the pinned cpu, node 0     1 1
getcpu NULLs                         ok
setaffinity all again                ok
reads back all                       1
priority max OTHER                   0
priority min OTHER                   0
priority max FIFO                    99
priority min FIFO                    1
priority max bad policy              EINVAL
setscheduler OTHER 0                 ok
setscheduler OTHER 5                 EINVAL
setparam 0                           ok
"""


@pytest.mark.parametrize("variant", ["static", "static-pie"])
def test_native_sched_threads(programs: Programs, variant: str) -> None:
    res = run_native([programs.path("sched_threads", variant)])
    assert res.returncode == 0, res.describe()
    assert res.out == EXPECTED


@pytest.mark.sandbox
@pytest.mark.parametrize("variant", ["static", "static-pie"])
def test_sandbox_sched_threads(programs: Programs, variant: str) -> None:
    res = run_sandbox([programs.path("sched_threads", variant)])
    assert "Traceback" not in res.err, res.describe()
    assert res.out == EXPECTED, res.describe()
    assert res.returncode == 0, res.describe()
