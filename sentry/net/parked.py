"""Parked stream reads: a blocked read(2)/recv(2) on a stream socket that the
writer finishes, as pipes do (sentry/kernel/parking.py has the protocol).

Why: a 1-byte round trip between two processes otherwise costs two more
Sentry thread switches and a Python return path per hand-off. A plain read
(no flags that need the full path: peek, waitall, truncation, credentials,
a timeout) with nothing queued parks; the writer that queues bytes copies
them into the reader's memory and answers its stub. A write carrying
descriptors, EOF, a reset or a signal hands parked reads back: the task's
own thread redoes the read the ordinary way.

Lock order: as pipes, the reader's address-space lock is taken under the
endpoint's condition (copy_out), never the other way round.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

from sentry.kernel import parking
from sentry.kernel.errors import SyscallError
from sentry.net import consts as c
from sentry.net.endpoint import drop_rights, notify
from sentry.vfs.file import check_interrupt
from shm.records import record

if TYPE_CHECKING:
    from sentry.net.stream import StreamEndpoint


@record(slots=True, eq=False)  # identity: the endpoint withdraws this very waiter
class ParkedRead:
    task: Any
    addr: int
    count: int


def read_into(ep: StreamEndpoint, task: Any, addr: int, count: int, nonblock: bool) -> int:
    """read(2) of up to ``count`` bytes into ``task``'s memory; may park."""
    while True:
        with ep.cond:
            plain = not (ep.rq or ep.err or ep.shut & c.RCV_SHUTDOWN or not ep.connected
                         or nonblock or ep.rcvtimeo or ep.seqpacket or ep.listening
                         or ep.opt(c.SO_PASSCRED))
            if plain:
                check_interrupt()
                r = ParkedRead(task, addr, count)
                parking.park(task)
                ep.parked.append(r)
        if not plain:
            got = ep.recv(count, 0, nonblock)
            drop_rights(got.rights)
            if got.data:
                task.mm.copy_out(addr, got.data)
            return got.size
        parking.wait(task, lambda r=r: _withdraw(ep, r))


def _withdraw(ep: StreamEndpoint, r: ParkedRead) -> None:
    with ep.cond:
        if r in ep.parked:
            ep.parked.remove(r)


def serve(ep: StreamEndpoint) -> None:
    """Finish parked reads from the queue, or hand them back (cond held)."""
    parked: deque[ParkedRead] = ep.parked
    while parked:
        if not ep.rq or ep.rq[0].rights or ep.err:
            if ep.rq or ep.err or ep.shut & c.RCV_SHUTDOWN or ep.closed:
                while parked:
                    parking.hand_back(parked.popleft().task)
            return
        r = parked.popleft()
        if not parking.claim(r.task):
            continue
        parts, n = [], 0
        for seg in ep.rq:
            if seg.rights or n >= r.count:
                break
            take = min(len(seg.data) - seg.off, r.count - n)
            parts.append(seg.data[seg.off:seg.off + take])
            n += take
        try:
            done = parking.finish_read(r.task, r.addr, b"".join(parts))
        except SyscallError:
            done = False
        if not done:
            continue
        while n:
            seg = ep.rq[0]
            take = min(len(seg.data) - seg.off, n)
            seg.off += take
            n -= take
            ep.rq_bytes -= take
            if seg.off == len(seg.data):
                ep.rq.popleft()
                ep.uncharge_segment(len(seg.data))
        notify(ep.cond)
