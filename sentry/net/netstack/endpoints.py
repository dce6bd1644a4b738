"""Which endpoint class a new AF_INET/AF_INET6 socket gets: the loopback
ones, or (once a network is attached) the ones that can also reach it.
One lookup at socket(2); every later call goes through the endpoint."""

from __future__ import annotations

from typing import Any

from sentry.net.netstack import stack


def tcp_class(loopback: Any) -> Any:
    if not stack.active():
        return loopback
    from sentry.net.netstack.tcp import SandboxTcpEndpoint

    return SandboxTcpEndpoint


def udp_class(loopback: Any) -> Any:
    if not stack.active():
        return loopback
    from sentry.net.netstack.udp import SandboxUdpEndpoint

    return SandboxUdpEndpoint
