"""Docker's embedded DNS (127.0.0.11) for --network=sandbox.

On a user-defined Docker network the container's resolv.conf says
``nameserver 127.0.0.11``. dockerd's resolver is a socket on 127.0.0.11 at
a random port inside the container's network namespace, reached through
iptables DNAT rules (port 53 -> that port) in the same namespace. In
sandbox mode 127.0.0.0/8 is the Sentry's own loopback, so a query never
reaches the namespace's kernel. runsc does not solve this (its FAQ sends
users to --network=host or IPs; its --reproduce-nat copies the NAT table
into netstack, where the redirected address still is netstack's loopback).

Our answer keeps the wall (the Sentry opens no host socket, holds no
inet socket):

* The sandbox host (unconfined, in the namespace) sees 127.0.0.11 in the
  bundle's resolv.conf at `start` and makes an AF_UNIX SOCK_SEQPACKET pair.
  It keeps one end and relays each message it reads there as one UDP
  query from a socket connected to 127.0.0.11:53 (the namespace's own
  iptables rules take it to dockerd), and each answer back (``HostRelay``).
  It sends nowhere else.
* The Sentry gets the other end with the packet descriptor. A UDP
  datagram an application sends to 127.0.0.11:53 goes there instead of the
  loopback table (udp.py), its DNS ID replaced by a relay-unique one; the
  answer, its ID restored, arrives on the sending socket from
  127.0.0.11:53 (``Relay``).

Only UDP: a truncated answer's retry over TCP is not relayed.
"""

from __future__ import annotations

import os
import socket
import threading
from collections import OrderedDict
from typing import Any

DNS_IP = "127.0.0.11"
DNS_PORT = 53
MAX_MSG = 65535
MAX_PENDING = 1024  # outstanding queries remembered (the oldest is forgotten)


def wants_relay(resolv_conf: str) -> bool:
    """Whether resolv.conf's text names Docker's embedded resolver."""
    for line in resolv_conf.splitlines():
        words = line.split()
        if len(words) >= 2 and words[0] == "nameserver" and words[1] == DNS_IP:
            return True
    return False


class HostRelay:
    """The sandbox host's half: messages from the Sentry's end of the pair
    become UDP queries to 127.0.0.11:53 in this namespace; answers go back."""

    def __init__(self) -> None:
        self.sentry_end, self.mine = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.connect((DNS_IP, DNS_PORT))
        threading.Thread(target=self._queries, daemon=True, name="dns-relay-q").start()
        threading.Thread(target=self._answers, daemon=True, name="dns-relay-a").start()

    def _queries(self) -> None:
        while True:
            try:
                msg = self.mine.recv(MAX_MSG)
            except OSError:
                msg = b""
            if not msg:  # the Sentry is gone
                self.udp.close()
                self.mine.close()
                return
            try:
                self.udp.send(msg)
            except OSError:
                pass  # refused or unreachable: the application's resolver retries

    def _answers(self) -> None:
        while True:
            try:
                msg = self.udp.recv(MAX_MSG)
            except ConnectionRefusedError:
                continue  # an ICMP error for an earlier query
            except OSError:
                return
            try:
                self.mine.send(msg)
            except OSError:
                return


def host_relay(mounts: Any) -> socket.socket | None:
    """The sandbox host's side at `start`: when the bundle's /etc/resolv.conf
    mount names 127.0.0.11, start a HostRelay and return the Sentry's end of
    its pair (None otherwise, or when this namespace cannot make the relay)."""
    for m in mounts:
        if m.destination != "/etc/resolv.conf" or not m.source:
            continue
        try:
            with open(m.source) as f:
                if not wants_relay(f.read(65536)):
                    return None
            return HostRelay().sentry_end
        except OSError:
            return None
    return None


class Relay:
    """The Sentry's half: queries out with relay-unique IDs, answers back to
    the endpoint that asked."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.lock = threading.Lock()
        self.pending: OrderedDict[int, tuple[Any, bytes]] = OrderedDict()
        self.next_id = 0
        threading.Thread(target=self._answers, daemon=True, name="dns-relay").start()

    def send(self, endpoint: Any, query: bytes) -> None:
        """Relay ``query`` for ``endpoint`` (a datagram too short to be DNS
        is dropped, as a resolver would)."""
        if len(query) < 12:
            return
        with self.lock:
            for _ in range(1 << 16):
                self.next_id = (self.next_id + 1) & 0xFFFF
                if self.next_id not in self.pending:
                    break
            rid = self.next_id
            self.pending[rid] = (endpoint, query[:2])
            while len(self.pending) > MAX_PENDING:
                self.pending.popitem(last=False)
        try:
            os.write(self.fd, rid.to_bytes(2, "big") + query[2:])
        except OSError:
            with self.lock:
                self.pending.pop(rid, None)

    def _answers(self) -> None:
        while True:
            try:
                msg = os.read(self.fd, MAX_MSG)
            except OSError:
                return
            if not msg:
                return
            if len(msg) < 12:
                continue
            with self.lock:
                got = self.pending.pop(int.from_bytes(msg[:2], "big"), None)
            if got is not None:
                endpoint, qid = got
                endpoint.relay_answer(qid + msg[2:])


_RELAY: list[Relay] = []


def attach(fd: int) -> None:
    """Use ``fd`` (the Sentry's end of the host's pair) for 127.0.0.11."""
    _RELAY[:] = [Relay(fd)]


def relay() -> Relay | None:
    return _RELAY[0] if _RELAY else None


def serves(ip16: bytes, port: int) -> bool:
    """Whether a datagram to (``ip16``, ``port``) goes to the relay."""
    return bool(_RELAY) and port == DNS_PORT and ip16 == _DNS_IP16


_DNS_IP16 = bytes(10) + b"\xff\xff" + socket.inet_aton(DNS_IP)
