"""Moving PyTCP's packets without its 1 ms clock and thread hand-offs.

As shipped, PyTCP is a latency machine, not a throughput one (measured on a
veth: 0.9 MB/s sending, 0.5 MB/s receiving, with the CPU mostly idle):

* a session sends at most ONE segment per timer tick (its FSM's timer event
  calls ``_transmit_data`` once a millisecond): 1460 bytes/ms at best;
* it acknowledges data only from its delayed-ACK timer, 100 ms after its last
  transmission: a Linux sender fills the 64 KiB window and then waits;
* every frame crosses two thread hand-offs (our RX thread -> its RX ring ->
  its packet handler thread; the session -> its TX ring -> its TX thread),
  each a semaphore and a GIL switch.

What this module changes, from outside PyTCP (no fork; the pin is exact):

* ``transmit``: a frame goes out in the thread that made it (assembled and
  written at once, under a lock), not through the TX ring's thread;
* ``receive_loop``: our RX thread runs PyTCP's Ethernet handler itself, and
  reads on without blocking while frames are queued; when the socket is
  drained (or a quarter of the receive window is unacknowledged) it
  acknowledges what the batch delivered, as Linux's quick ACKs do, instead
  of waiting for the 100 ms timer;
* ``push``: a session sends every segment its window allows whenever the
  application queues data or an ACK opens the window, not one per tick.
  The timer still runs retransmissions and the delayed ACK.
"""

from __future__ import annotations

import threading
from typing import Any

from sentry.net.netstack.link import frame_reader

ACK_EVERY = 16384  # unacknowledged bytes that force an ACK within a batch

_TX_LOCK = threading.Lock()
_PENDING: set[Any] = set()  # sessions that received data since their last ACK


def install_transmit(fd: int, mtu: int) -> None:
    """Route PyTCP's outbound frames straight to ``fd``, each behind its
    virtio_net_hdr (gso.py: a large TCP segment goes out as one GSO frame)."""
    import os

    from pytcp.lib import stack

    from sentry.net.netstack import gso

    gso.install(mtu)
    buf = bytearray(gso.VNET_LEN + 14 + 65535)
    view = memoryview(buf)
    room = len(buf) - gso.VNET_LEN

    def enqueue(packet_tx: Any) -> None:
        size = len(packet_tx)
        if size > room:
            return  # PyTCP's TX ring drops what it cannot send too
        with _TX_LOCK:
            frame = view[gso.VNET_LEN:gso.VNET_LEN + size]
            packet_tx.assemble(frame)
            view[:gso.VNET_LEN] = gso.header(frame)
            try:
                os.write(fd, view[:gso.VNET_LEN + size])
            except OSError:
                pass  # as the ring: a frame the link refused is a lost frame

    stack.tx_ring.enqueue = enqueue


def receive_loop(fd: int) -> None:
    """Read frames and hand each to PyTCP's Ethernet handler, in this thread;
    acknowledge each batch's data when the socket has no more queued."""
    from pytcp.lib import stack
    from pytcp.lib.packet import PacketRx

    handler = stack.packet_handler
    read = frame_reader(fd)
    while True:
        try:
            frame = read(False)
        except BlockingIOError:
            _flush_acks()
            try:
                frame = read(True)
            except OSError:
                return
        except OSError:
            return
        handler._phrx_ether(PacketRx(frame))


def _flush_acks() -> None:
    while _PENDING:
        _ack(_PENDING.pop())


def _ack(sess: Any) -> None:
    from pytcp.protocols.tcp.session import FsmState

    with sess._lock_fsm:
        if sess._rcv_nxt > sess._rcv_una and sess._state in (
                FsmState.ESTABLISHED, FsmState.FIN_WAIT_1, FsmState.FIN_WAIT_2,
                FsmState.CLOSE_WAIT):
            sess._transmit_packet(flag_ack=True)


def push(sess: Any, nagle: bool = False) -> None:
    """Send every segment the window allows now (PyTCP sends one per call).
    ``nagle`` (the application's send, TCP_NODELAY off): while sent data is
    unacknowledged, less than a segment waits for the ACK, which sends it
    joined with what follows (RFC 896, as Linux does by default): busybox nc
    writes 1 KiB at a time, and a segment per write cost ~250 us of Python
    each (0.5 MB/s through Docker's bridge)."""
    from pytcp.protocols.tcp.session import FsmState

    with sess._lock_fsm:
        if nagle and sess._snd_nxt != sess._snd_una and \
                len(sess._tx_buffer) - sess._tx_buffer_nxt < getattr(sess, "_wire_mss", 1460):
            return
        while sess._state in (FsmState.ESTABLISHED, FsmState.CLOSE_WAIT):
            before = sess._snd_nxt
            sess._transmit_data()
            if sess._snd_nxt == before:
                return


def patch_session() -> None:
    """Wrap TcpSession's ACK processing (class-wide, once): data received
    marks the session for the batch's ACK (at once past ACK_EVERY), and an
    ACK that moved the window sends what it now allows."""
    from pytcp.protocols.tcp.session import TcpSession

    if getattr(TcpSession, "_pyvisor_pump", False):
        return
    orig = TcpSession._process_ack_packet

    def process_ack(self: Any, packet_rx_md: Any) -> None:
        una = self._snd_una
        orig(self, packet_rx_md)
        if packet_rx_md.data:
            if self._rcv_nxt - self._rcv_una >= ACK_EVERY:
                _PENDING.discard(self)
                _ack(self)
            else:
                _PENDING.add(self)
        if self._snd_una != una and self._tx_buffer:
            push(self)

    TcpSession._process_ack_packet = process_ack
    TcpSession._pyvisor_pump = True

