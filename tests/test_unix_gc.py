"""Garbage collection of AF_UNIX sockets held only by SCM_RIGHTS messages in
flight (sentry/net/unix_gc.py, Linux's unix_gc).

In the sandbox: a socket passed to itself and then closed, and 10,000
cycles (a holds b, b holds a, plus a pipe's write end) closed, leave
/proc/net/sockstat's count of allocated sockets where it started, and the
pipe's reader sees EOF (its writer in flight was freed); a cycle still
reachable from an open socket is kept and usable. In-process: the same
cycles leave no SocketFile object behind.

Not differential: Linux runs its collector on a workqueue, so natively when
the count drops after a close is not deterministic; the sandbox collects
synchronously. Before the collector, every line here printed False (the
count grew by two sockets a cycle, the pipe never reached EOF).
"""

from __future__ import annotations

import gc
import sys

import pytest
from helpers import run_sandbox

from sentry.net import consts as c
from sentry.net import unix_gc
from sentry.net.socketfile import SocketFile
from sentry.net.unix import socketpair
from sentry.vfs.fdtable import FdTable

PROGRAM = r'''
import array, os, socket, sys

def used():
    with open("/proc/net/sockstat") as f:
        return int(f.readline().split()[2])

def trigger():
    # Releasing any unix socket runs the collector (as Linux's unix_release_sock).
    socket.socket(socket.AF_UNIX).close()

R = socket.SCM_RIGHTS

def fds(*f):
    return array.array("i", f)
n = int(sys.argv[1])
base = used()
# 1. An fd passed to itself (through its pair), then closed.
a, b = socket.socketpair()
b.sendmsg([b"x"], [(socket.SOL_SOCKET, R, fds(a.fileno()))])
a.close(); b.close(); trigger()
print("self-passed freed:", used() == base)
# 2. n cycles: a holds b, b holds a, with a pipe's write end in flight too.
r, w = os.pipe()
os.set_blocking(r, False)
for i in range(n):
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM if i % 2 else socket.SOCK_STREAM)
    a.sendmsg([b"x"], [(socket.SOL_SOCKET, R, fds(a.fileno(), w))])
    b.sendmsg([b"y"], [(socket.SOL_SOCKET, R, fds(b.fileno()))])
    a.close(); b.close()
os.close(w)
trigger()
print("cycles freed:", used() == base, used() - base)
print("pipe writer freed (EOF):", os.read(r, 1) == b"")
# 3. A cycle still reachable from an open socket is not freed.
keep, other = socket.socketpair()
x, y = socket.socketpair()
y.sendmsg([b"x"], [(socket.SOL_SOCKET, R, fds(y.fileno()))])   # x's queue holds y
x.sendmsg([b"y"], [(socket.SOL_SOCKET, R, fds(x.fileno()))])   # y's queue holds x
other.sendmsg([b"z"], [(socket.SOL_SOCKET, R, fds(x.fileno()))])  # keep's queue holds x
x.close(); y.close(); trigger()
print("reachable kept:", used() == base + 4)
msg, anc, _, _ = keep.recvmsg(1, socket.CMSG_SPACE(4))
x2 = socket.socket(fileno=int.from_bytes(anc[0][2][:4], "little"))
msg, anc, _, _ = x2.recvmsg(1, socket.CMSG_SPACE(4))   # y, from x's own queue
y2 = socket.socket(fileno=int.from_bytes(anc[0][2][:4], "little"))
y2.send(b"still alive")
print("reachable usable:", x2.recv(100))
'''

EXPECTED = """self-passed freed: True
cycles freed: True 0
pipe writer freed (EOF): True
reachable kept: True
reachable usable: b'still alive'
"""


@pytest.mark.sandbox
def test_cycles_in_flight_are_freed_in_the_sandbox() -> None:
    """10,000 closed cycles (stream and datagram) and a self-passed socket
    are freed; a reachable cycle is not."""
    res = run_sandbox([sys.executable, "-c", PROGRAM, "10000"])
    assert (res.out, res.err, res.returncode) == (EXPECTED, "", 0), res.describe()


def test_cycles_leave_no_objects_behind() -> None:
    """In-process: the collector releases the cycles (SocketFile.live back
    to where it was) and Python keeps no SocketFile of theirs."""
    table = FdTable(64)

    def send(frm: SocketFile, what: SocketFile) -> None:
        what.refs += 1  # a reference in flight, as parse_control takes it
        frm.endpoint.send(b"x", 0, True, None, None, [what], (0, 0, 0))
        unix_gc.sent_rights()

    gc.collect()
    base = SocketFile.live
    before = sum(isinstance(o, SocketFile) for o in gc.get_objects())
    for i in range(3000):
        a, b = socketpair(c.SOCK_DGRAM if i % 2 else c.SOCK_STREAM, (0, 0, 0))
        fa, fb = SocketFile(a), SocketFile(b)
        fds = table.install(fa), table.install(fb)
        send(fa, fa)
        send(fb, fb)
        for fd in fds:
            table.close(fd)
    del a, b, fa, fb  # the last cycle's names
    unix_gc.collect()
    gc.collect()
    assert SocketFile.live == base
    assert sum(isinstance(o, SocketFile) for o in gc.get_objects()) == before
    assert not unix_gc._carriers
