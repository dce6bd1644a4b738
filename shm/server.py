"""The serving end of the channel (the Gofer's side).

Single-threaded by design: the server waits on the work semaphore, scans the
slots (starting after the last one served, so no slot starves), hands each
request to the handler and posts that slot's semaphore. The client is
untrusted input here too: its lengths are checked before use and a bad frame
gets a BAD_FRAME answer, never an exception out of serve().
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable

import posix_ipc

from shm import layout
from shm.errors import ChannelClosed, PeerDiedError
from shm.peer import PeerWatch
from shm.segment import Segment, unlink_names

log = logging.getLogger("pyvisor.shm")

SLICE = 0.05  # seconds between liveness checks while waiting

# handler(request, response_buffer) -> the response bytes, or the number of
# bytes it wrote at the start of response_buffer (the zero-copy path). Both
# views are valid only during the call.
Handler = Callable[[memoryview, memoryview], "bytes | bytearray | memoryview | int"]


class ServerChannel:
    """Opens a channel created by a ClientChannel in another process."""

    def __init__(self, name: str, *, peer_pid: int | None = None) -> None:
        """Open channel `name`; watch `peer_pid` (default: the creator's pid
        from the header, which is wrong across pid namespaces: pass it then)."""
        self._seg = Segment.open(name)
        self.name = name
        self.nslots = self._seg.geometry.nslots
        self.msize = self._seg.geometry.msize
        pid = peer_pid if peer_pid is not None else self._seg.get(layout.OFF_CLIENT_PID)
        self._peer = PeerWatch(pid)
        self._next = 0
        self._seg.put(layout.OFF_SERVER_PID, os.getpid())

    def unlink(self) -> None:
        """Remove the channel's names from /dev/shm (idempotent): once this end
        has them open, nobody needs them, and a name left behind would outlive
        a creator that dies before its own unlink."""
        unlink_names(self._seg.names)

    def client_closed(self) -> bool:
        """True once the client has closed the channel in an orderly way."""
        return bool(self._seg.get(layout.OFF_CLIENT_CLOSED))

    def poll(self, handler: Handler, timeout: float) -> int:
        """Wait up to `timeout` for work and serve every ready slot.

        Returns how many requests were answered (0 on timeout or a wake-up
        whose requests an earlier scan already served).
        """
        try:
            self._seg.work.acquire(timeout)
        except (posix_ipc.BusyError, posix_ipc.SignalError):
            return 0
        served = 0
        n = self.nslots
        for k in range(n):
            slot = (self._next + k) % n
            if self._seg.state(slot) == layout.REQUEST:
                self._seg.set_state(slot, layout.BUSY)
                self._serve_slot(slot, handler)
                self._next = (slot + 1) % n
                served += 1
        return served

    def serve(self, handler: Handler, *, stop: threading.Event | None = None) -> None:
        """Serve until the client closes (return) or dies (PeerDiedError).

        On client death the server unlinks the channel's names, since the
        creator cannot any more. Setting `stop` ends the loop too, telling the
        client the server is gone.
        """
        while True:
            if stop is not None and stop.is_set():
                self.shutdown()
                return
            if self.client_closed():
                return
            if self.poll(handler, SLICE) == 0 and not self._peer.alive():
                unlink_names(self._seg.names)
                raise PeerDiedError(f"client process {self._peer.pid} died")

    def _serve_slot(self, slot: int, handler: Handler) -> None:
        seg = self._seg
        base = seg.slot_offsets[slot]
        seq, n = layout.REQ_HEADER.unpack_from(seg.mm, base + layout.S_SEQ)
        if n > self.msize:
            log.warning("shm %s slot %d: request length %d > msize", self.name, slot, n)
            self._complete(slot, seq, 0, layout.ST_BAD_FRAME)
            return
        request = seg.requests[slot][:n]
        response = seg.responses[slot][:]
        try:
            length, status = self._place(slot, handler(request, response))
        except Exception:
            log.exception("shm %s slot %d: handler failed", self.name, slot)
            length, status = 0, layout.ST_SERVER_ERROR
        finally:
            for view in (request, response):
                try:
                    view.release()
                except BufferError:
                    pass  # the handler kept a slice; it stays valid
        self._complete(slot, seq, length, status)

    def _place(self, slot: int, result: bytes | bytearray | memoryview | int) -> tuple[int, int]:
        """Put the handler's result in the response buffer: (length, status)."""
        if isinstance(result, int) and not isinstance(result, bool):
            if not 0 <= result <= self.msize:
                log.error("shm %s slot %d: handler returned length %d", self.name, slot, result)
                return 0, layout.ST_SERVER_ERROR
            return result, layout.ST_OK
        data = memoryview(result)
        if data.format != "B" or data.ndim != 1:
            data = data.cast("B")
        size = data.nbytes
        if size > self.msize:
            return 0, layout.ST_TOO_LARGE
        self._seg.responses[slot][:size] = data
        return size, layout.ST_OK

    def _complete(self, slot: int, seq: int, length: int, status: int) -> None:
        seg = self._seg
        layout.RESP_HEADER.pack_into(
            seg.mm, seg.slot_offsets[slot] + layout.S_RESP_SEQ, seq, length, status
        )
        seg.set_state(slot, layout.RESPONSE)
        seg.slot_sems[slot].release()

    def shutdown(self) -> None:
        """Tell the client this server is gone and wake its waiters, so
        pending requests fail with ChannelClosed instead of timing out."""
        if self._seg.closed:
            raise ChannelClosed("server channel already closed")
        self._seg.put(layout.OFF_SERVER_CLOSED, 1)
        for sem in self._seg.slot_sems:
            sem.release()

    def close(self) -> None:
        """Close this process's handles (the creator owns the names).
        Idempotent; call it after serve() has returned."""
        self._seg.close()
        self._peer.close()

    def __enter__(self) -> ServerChannel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
