"""Shared-memory request/response channel between the Sentry and the Gofer.

The client (Sentry) creates the channel and names it; the server (Gofer, in
another process) opens it by name. A fixed number of slots, each with its own
request buffer, response buffer and response semaphore, lets several Sentry
threads have a request outstanding at once. One "work" semaphore wakes the
server; it scans for slots in state REQUEST, serves them and posts each slot's
own semaphore. See shm/layout.py for the bytes.

Facts about this kernel API (and glibc's), and what they made us do:

- POSIX named semaphores are glibc files: sem_open("/x") creates
  /dev/shm/sem.x and mmaps a futex word from it. Like shm_open("/x")
  (/dev/shm/x, a tmpfs file), the name outlives every process until someone
  unlinks it. So the creator unlinks on close(), from an atexit finalizer, and
  the server unlinks when it sees the creator die (a SIGKILLed creator runs no
  cleanup at all).
- atexit handlers and finalizers are inherited by fork(); a forked child that
  exits normally would unlink its parent's channel. Cleanup runs only in the
  process that created the names.
- unlink while mapped is harmless: live mappings and open semaphores keep
  working, only the name goes (same as files). Each side maps once at open.
- sem_timedwait takes an absolute CLOCK_REALTIME deadline (posix_ipc does not
  expose sem_clockwait), so a wall-clock step stretches or cuts a wait. Waits
  are therefore short slices against a time.monotonic() deadline.
- A semaphore is not a file descriptor: it cannot be polled together with a
  pidfd, and it has no notion of an owner, so a peer that dies owing a post
  leaves the waiter asleep. Hence: wait in slices of SLICE seconds and check
  the peer's pidfd between slices (shm/peer.py explains why not kill(pid, 0)).
- sem_wait returns EINTR when a signal handler runs (posix_ipc raises
  SignalError): treated as a spurious wake-up, never as an error.
- sem_close under a thread that still waits on the semaphore unmaps the futex
  word beneath it (undefined behaviour, in practice a crash or a lost wake-up),
  so close() first wakes every waiter and waits for them to leave.
- mmap.close() raises BufferError while any memoryview of it is alive; the
  segment keeps its views few and releases them before closing.
- sem_post/sem_wait are atomic read-modify-writes, hence full barriers: bytes
  written before a post are visible after the matching wait. Both sides still
  write the slot's state word last, because the server may scan a slot woken by
  a different slot's post.
- The shm pages are allocated on first touch: 8 slots x 2 MiB of buffers cost
  only what is written.
- The Gofer must open the channel before it pivots into the container root:
  glibc resolves these names under the /dev/shm it can see.

Trust: the peer is another process and may be compromised. Every length, state,
sequence number and header field read from the segment is checked; a bad one
raises ProtocolError. The client keeps its own copy of the geometry and never
re-reads it.
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager

import posix_ipc

from shm import layout
from shm.errors import (
    ChannelClosed,
    ChannelError,
    ChannelTimeout,
    FrameTooLarge,
    PeerDiedError,
    ProtocolError,
    RemoteError,
)
from shm.layout import DEFAULT_MSIZE, DEFAULT_SLOTS, Geometry, Names
from shm.peer import PeerWatch
from shm.segment import Segment, unlink_names
from shm.server import SLICE, Handler, ServerChannel

__all__ = [
    "ChannelClosed",
    "ChannelError",
    "ChannelTimeout",
    "ClientChannel",
    "FrameTooLarge",
    "Handler",
    "PeerDiedError",
    "ProtocolError",
    "RemoteError",
    "ServerChannel",
    "SLICE",
]

DEFAULT_TIMEOUT = 30.0
CLOSE_WAIT = 2.0  # how long close() waits for requests in flight to give up


def _cleanup(names: Names, creator: int) -> None:
    if os.getpid() == creator:
        unlink_names(names)


class ClientChannel:
    """The creating end: sends requests, one thread per outstanding request.

    Thread-safe. Slots are handed out from a process-local free list (never
    from shared state the server could forge). A slot whose request timed out
    is quarantined until the server answers it, so a late answer can never
    land in a reused slot.
    """

    def __init__(
        self,
        *,
        nslots: int = DEFAULT_SLOTS,
        msize: int = DEFAULT_MSIZE,
        timeout: float = DEFAULT_TIMEOUT,
        peer_pid: int | None = None,
        name: str | None = None,
    ) -> None:
        try:
            geometry = Geometry(nslots, msize)
        except ProtocolError as e:
            raise ValueError(str(e)) from None
        self.timeout = timeout
        self._seg = self._create(geometry, name)
        self.name = self._seg.names.shm
        self.nslots, self.msize = nslots, msize
        self._finalizer = weakref.finalize(self, _cleanup, self._seg.names, os.getpid())
        self._cond = threading.Condition()
        self._free = list(range(nslots - 1, -1, -1))
        self._quarantine: set[int] = set()
        self._inflight = 0
        self._seq = 0
        self._closed = False
        self._peer: PeerWatch | None = None
        self._dead = False
        if peer_pid is not None:
            self.set_peer(peer_pid)

    @staticmethod
    def _create(geometry: Geometry, name: str | None) -> Segment:
        for _ in range(8):
            # os.urandom, not the secrets module: its import (hashlib, hmac) costs
            # ~5 ms on every sandbox start for the same 6 random bytes.
            prefix = name or f"/{layout.NAME_PREFIX}{layout.creator_tag()}-{os.urandom(6).hex()}"
            try:
                return Segment.create(prefix, geometry)
            except posix_ipc.ExistentialError as e:
                if name is not None:
                    raise ChannelError(f"channel {name!r} already exists") from e
            except (posix_ipc.Error, OSError) as e:
                raise ChannelError(f"cannot create channel: {e}") from e
        raise ChannelError("no unused channel name after 8 tries")

    # -- peer -------------------------------------------------------------

    def set_peer(self, pid: int) -> None:
        """Name the server process whose death fails pending requests.

        Call it as soon as the spawner knows the pid. Without it the client
        falls back to the pid the server wrote into the header when it opened
        the channel (and before that, only timeouts apply).
        """
        with self._cond:
            if self._peer is not None:
                self._peer.close()
            self._peer = PeerWatch(pid)

    def _check(self) -> None:
        """Raise if the channel cannot carry requests any more."""
        if self._closed:
            raise ChannelClosed("channel closed")
        if self._seg.get(layout.OFF_SERVER_CLOSED):  # orderly, even if it then exited
            raise ChannelClosed("server closed the channel")
        if self._dead:
            raise PeerDiedError("server process died")
        if self._peer is None:
            pid = self._seg.get(layout.OFF_SERVER_PID)
            if 0 < pid < 1 << 22:  # above pid_max: a forged header, ignore
                self._peer = PeerWatch(pid)
        if self._peer is not None and not self._peer.alive():
            self._dead = True
            raise PeerDiedError(f"server process {self._peer.pid} died")

    def peer_alive(self) -> bool:
        """Whether the channel can still carry requests (the server alive and
        not closed), without sending one: one poll of the peer's pidfd.  For
        callers that answer from a cache and must not outlive the server."""
        try:
            self._check()
        except ChannelError:
            return False
        return True

    # -- requests ---------------------------------------------------------

    def send_request(
        self, payload: bytes | bytearray | memoryview, *, timeout: float | None = None
    ) -> bytes:
        """Send one request frame and return the response frame.

        One copy in (into the slot) and one copy out (the slot is reused as
        soon as this returns); use exchange() to read the response in place.
        Not written over exchange(): a generator context manager costs more
        than the rest of this method's Python, on every Gofer request."""
        slot, rlen = self._send(payload, timeout)
        try:
            return bytes(self._seg.responses[slot][:rlen])
        finally:
            self._put_slot(slot, True)

    @contextmanager
    def exchange(
        self, payload: bytes | bytearray | memoryview, *, timeout: float | None = None
    ) -> Iterator[memoryview]:
        """Send a request; yield the response as a view into shared memory.

        The view is valid only inside the with block: on exit the slot goes
        back to the free list and the view is released.
        """
        slot, rlen = self._send(payload, timeout)
        try:
            view = self._seg.responses[slot][:rlen]
            try:
                yield view
            finally:
                try:
                    view.release()
                except BufferError:
                    pass  # the caller exported it; its copy is stale from here on
        finally:
            self._put_slot(slot, True)

    def _send(self, payload: bytes | bytearray | memoryview,
              timeout: float | None) -> tuple[int, int]:
        """Put ``payload`` in a slot, wake the server, wait for the answer and
        check its header: (slot, response length). The caller puts the slot
        back (`_put_slot`) once it has read the answer; if this raises, the
        slot (if one was taken) has been put back or quarantined already."""
        data = memoryview(payload)
        if data.format != "B" or data.ndim != 1:
            data = data.cast("B")
        n = data.nbytes
        if n > self.msize:
            raise FrameTooLarge(f"request of {n} bytes exceeds msize {self.msize}")
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        slot = -1
        answered = False
        try:
            slot, seq = self._take_slot(deadline)
            seg = self._seg
            seg.requests[slot][:n] = data
            base = seg.slot_offsets[slot]
            layout.REQ_HEADER.pack_into(seg.mm, base + layout.S_SEQ, seq, n)
            seg.set_state(slot, layout.REQUEST)  # last: the server may be scanning
            seg.work.release()
            self._await(slot, deadline)
            answered = True
            rseq, rlen, status = layout.RESP_HEADER.unpack_from(seg.mm, base + layout.S_RESP_SEQ)
            _check_response(rseq, seq, rlen, status, self.msize)
        except BaseException:
            self._put_slot(slot, answered)
            raise
        return slot, rlen

    def _take_slot(self, deadline: float) -> tuple[int, int]:
        """A free slot and a fresh sequence number for it. Counts the request
        in flight first (`_put_slot` uncounts it, whatever happens here):
        one lock and one check of the channel, not one for each."""
        with self._cond:
            self._inflight += 1
            while True:
                self._check()
                if not self._free and self._quarantine:
                    self._reclaim()
                if self._free:
                    self._seq = (self._seq + 1) & 0xFFFFFFFF
                    return self._free.pop(), self._seq
                left = deadline - time.monotonic()
                if left <= 0:
                    raise ChannelTimeout("no free slot before the deadline")
                self._cond.wait(min(SLICE, left))

    def _reclaim(self) -> None:
        """Free quarantined slots the server has answered since (lock held)."""
        seg = self._seg
        for slot in list(self._quarantine):
            if seg.state(slot) != layout.RESPONSE:
                continue
            try:
                seg.slot_sems[slot].acquire(0)  # the answer's post; may be a hair late
            except (posix_ipc.BusyError, posix_ipc.SignalError):
                continue
            self._quarantine.discard(slot)
            self._free.append(slot)

    def _put_slot(self, slot: int, answered: bool) -> None:
        with self._cond:
            self._inflight -= 1
            if slot >= 0:
                if answered:
                    self._seg.set_state(slot, layout.FREE)
                    self._free.append(slot)
                else:
                    self._quarantine.add(slot)
            self._cond.notify_all()

    def _await(self, slot: int, deadline: float) -> None:
        """Wait for the slot's answer in slices, checking the peer between."""
        sem = self._seg.slot_sems[slot]
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ChannelTimeout("no response before the deadline")
            try:
                sem.acquire(min(SLICE, left))
            except posix_ipc.BusyError:
                if self._seg.state(slot) == layout.RESPONSE:
                    # Answered as the slice ran out: the server posts right after
                    # writing RESPONSE, and before any shutdown marks the channel
                    # closed, so the post is there; take it rather than report
                    # the closing that came after the answer.
                    continue
                with self._cond:
                    self._check()
                continue
            except posix_ipc.SignalError:
                continue
            if self._closed:
                raise ChannelClosed("channel closed while waiting")
            state = self._seg.state(slot)
            if state == layout.RESPONSE:
                return
            if state not in (layout.REQUEST, layout.BUSY):
                raise ProtocolError(f"slot {slot} woke in impossible state {state}")
            with self._cond:  # a stray post: a closing server or a confused one
                self._check()

    # -- teardown ---------------------------------------------------------

    def close(self) -> None:
        """Wake the server and every waiter, release handles, unlink names.

        Idempotent. Pending requests fail with ChannelClosed.
        """
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._cond.notify_all()
        seg = self._seg
        seg.put(layout.OFF_CLIENT_CLOSED, 1)
        seg.work.release()
        for sem in seg.slot_sems:
            sem.release()
        end = time.monotonic() + CLOSE_WAIT
        with self._cond:
            while self._inflight and time.monotonic() < end:
                self._cond.wait(SLICE)
            stuck = self._inflight
        if not stuck:
            seg.close()
        if self._peer is not None:
            self._peer.close()
        self.unlink()

    def unlink(self) -> None:
        """Remove the channel's names from /dev/shm. Idempotent; the mapping
        and semaphores already open on both sides keep working."""
        self._finalizer()

    def __enter__(self) -> ClientChannel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _check_response(rseq: int, seq: int, rlen: int, status: int, msize: int) -> None:
    if rseq != seq:
        raise ProtocolError(f"response carries sequence {rseq}, expected {seq}")
    if status == layout.ST_BAD_FRAME:
        raise ProtocolError("server rejected the request frame")
    if status == layout.ST_TOO_LARGE:
        raise FrameTooLarge("server's response exceeds msize")
    if status == layout.ST_SERVER_ERROR:
        raise RemoteError("server handler failed")
    if status != layout.ST_OK:
        raise ProtocolError(f"unknown response status {status}")
    if rlen > msize:
        raise ProtocolError(f"response length {rlen} exceeds msize {msize}")
