"""The socket layer in-process (no sandbox): address codecs fuzzed with
hypothesis (bad input is an errno, never another exception), the port
table's overlap rules, and blocking across threads."""

from __future__ import annotations

import errno
import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sentry.kernel.errors import SyscallError
from sentry.net import consts as c
from sentry.net.addr import ANY4, ANY6, LOOP4, LOOP6, UnixAddr, parse_inet, parse_unix
from sentry.net.inet import TcpEndpoint, UdpEndpoint
from sentry.net.ports import overlap
from sentry.net.unix import socketpair


@given(st.binary(max_size=140))
def test_parse_unix_never_raises_other_errors(raw: bytes) -> None:
    try:
        addr = parse_unix(raw)
    except SyscallError as exc:
        assert exc.errno == errno.EINVAL
        return
    assert isinstance(addr, UnixAddr) and addr.name
    assert addr.pack()[:2] == c.AF_UNIX.to_bytes(2, "little")


@given(st.binary(max_size=140), st.sampled_from([c.AF_INET, c.AF_INET6]), st.booleans())
def test_parse_inet_never_raises_other_errors(raw: bytes, family: int, bind: bool) -> None:
    try:
        addr = parse_inet(raw, family, bind=bind)
    except SyscallError as exc:
        assert exc.errno in (errno.EINVAL, errno.EAFNOSUPPORT)
        return
    if addr is not None:
        assert len(addr.ip) == 16 and 0 <= addr.port < 65536
        assert len(addr.pack(family)) == (16 if family == c.AF_INET else 28)


def test_unix_names_round_trip() -> None:
    path = b"\x01\x00" + b"/tmp/x\0junk"
    assert parse_unix(path) == UnixAddr(b"/tmp/x")
    assert UnixAddr(b"/tmp/x").pack() == b"\x01\x00/tmp/x\0"
    abstract = b"\x01\x00\0name\0"
    assert parse_unix(abstract).name == b"\0name\0"
    assert UnixAddr(b"\0name\0").pack() == abstract


def test_overlap_rules() -> None:
    assert overlap(ANY4, False, LOOP4, False)
    assert overlap(ANY6, False, LOOP4, False)  # dual-stack "::" covers IPv4
    assert not overlap(ANY6, True, LOOP4, False)  # unless V6ONLY
    assert not overlap(LOOP6, False, LOOP4, False)
    assert overlap(ANY6, True, LOOP6, False)


def _in_thread(fn):  # type: ignore[no-untyped-def]
    out: list[object] = []

    def run() -> None:
        try:
            out.append(fn())
        except SyscallError as exc:
            out.append(exc.errno)

    th = threading.Thread(target=run, daemon=True)
    th.start()
    return th, out


@pytest.mark.parametrize("stype", [c.SOCK_STREAM, c.SOCK_SEQPACKET, c.SOCK_DGRAM])
def test_blocking_recv_woken_by_send(stype: int) -> None:
    a, b = socketpair(stype, (1, 0, 0))
    th, out = _in_thread(lambda: b.recv(100, 0, False).data)
    assert a.send(b"hi", 0, False, None, None, None, (1, 0, 0)) == 2
    th.join(10)
    assert out == [b"hi"]
    a.release()
    if stype != c.SOCK_DGRAM:
        assert b.recv(100, 0, False).data == b""  # EOF once the peer is gone


def test_tcp_blocking_accept_and_connect() -> None:
    lst = TcpEndpoint(c.AF_INET)
    lst.bind(c.AF_INET.to_bytes(2, "little") + bytes(2) + bytes([127, 0, 0, 1]) + bytes(8), None)
    lst.listen(-1, (1, 0, 0))
    assert lst.backlog == c.SOMAXCONN
    th, out = _in_thread(lambda: lst.accept(False))
    cli = TcpEndpoint(c.AF_INET)
    cli.connect(lst.name(), None, False, (1, 0, 0))
    th.join(10)
    srv = out[0]
    assert isinstance(srv, TcpEndpoint) and srv.peer_name() == cli.name()
    cli.release()
    srv.release()
    lst.release()
    again = TcpEndpoint(c.AF_INET)
    with pytest.raises(SyscallError) as ei:
        again.connect(lst.name(), None, False, (1, 0, 0))
    assert ei.value.errno == errno.ECONNREFUSED


def test_udp_unreachable_and_unbound_ports() -> None:
    u = UdpEndpoint(c.AF_INET6)
    dest = c.AF_INET6.to_bytes(2, "little") + (9).to_bytes(2, "big") + bytes(4) \
        + bytes(15) + b"\x02" + bytes(4)
    with pytest.raises(SyscallError) as ei:
        u.send(b"x", 0, True, dest, None, None, (1, 0, 0))
    assert ei.value.errno == errno.ENETUNREACH
