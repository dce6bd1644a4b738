"""Socket addresses: the sockaddr bytes an application passes, decoded into
typed values, and back (sans-IO: no endpoint or task here).

Facts from Linux (net/unix/af_unix.c, net/ipv4/af_inet.c, net/ipv6/af_inet6.c):

* sockaddr_un: the length must exceed the 2-byte family and be at most 110;
  a first sun_path byte of NUL names the abstract namespace (the name is
  every byte up to the length, NULs included); otherwise the path stops at
  the first NUL. getsockname gives back family + path + NUL for a path name,
  family + name for an abstract one, and the family alone for an unbound
  socket.
* sockaddr_in needs 16 bytes (EINVAL below), sockaddr_in6 24 (the RFC 2133
  size; 28 with the scope id). A family other than the socket's is
  EAFNOSUPPORT, except that AF_UNSPEC with INADDR_ANY binds as AF_INET.
* Internally every inet address is 16 bytes, IPv4 ones v4-mapped
  (::ffff:a.b.c.d), so an AF_INET6 socket that is not V6ONLY meets IPv4
  peers without a second code path.
"""

from __future__ import annotations

import errno
import struct

from sentry.kernel.errors import SyscallError
from sentry.net.consts import AF_INET, AF_INET6, AF_UNIX, AF_UNSPEC
from shm.records import record

SOCKADDR_MAX = 128  # sizeof(struct sockaddr_storage)
UNIX_ADDR_MAX = 110  # sizeof(struct sockaddr_un)
SIN_LEN = 16
SIN6_LEN = 28
SIN6_LEN_RFC2133 = 24
_FAMILY = struct.Struct("<H")
_SIN = struct.Struct("<H2s4s8x")
_SIN6 = struct.Struct("<H2sI16sI")

V4_PREFIX = bytes(10) + b"\xff\xff"
ANY6 = bytes(16)
ANY4 = V4_PREFIX + bytes(4)
LOOP4 = V4_PREFIX + b"\x7f\x00\x00\x01"
LOOP6 = bytes(15) + b"\x01"


def family_of(raw: bytes) -> int:
    """The sa_family of a sockaddr (EINVAL when it is shorter than the family)."""
    if len(raw) < 2:
        raise SyscallError(errno.EINVAL)
    return _FAMILY.unpack_from(raw)[0]


@record(frozen=True, slots=True)
class UnixAddr:
    """An AF_UNIX name: b"" unnamed, b"\\0..." abstract, else a path."""

    name: bytes = b""

    @property
    def abstract(self) -> bool:
        return self.name[:1] == b"\0"

    def pack(self) -> bytes:
        if not self.name:
            return _FAMILY.pack(AF_UNIX)
        tail = b"" if self.abstract else b"\0"
        return _FAMILY.pack(AF_UNIX) + self.name + tail


UNNAMED = UnixAddr()


def parse_unix(raw: bytes) -> UnixAddr:
    """A sockaddr_un as bind/connect/sendto give it (unix_validate_addr)."""
    if len(raw) <= 2 or len(raw) > UNIX_ADDR_MAX or family_of(raw) != AF_UNIX:
        raise SyscallError(errno.EINVAL)
    path = raw[2:]
    if path[0] == 0:
        return UnixAddr(bytes(path))
    return UnixAddr(bytes(path.split(b"\0", 1)[0]))


@record(frozen=True, slots=True)
class InetAddr:
    """An IPv4 or IPv6 address and port; ``ip`` is always 16 bytes."""

    ip: bytes = ANY6
    port: int = 0

    @property
    def is_v4(self) -> bool:
        return self.ip[:12] == V4_PREFIX

    @property
    def is_any(self) -> bool:
        return self.ip in (ANY6, ANY4)

    def with_port(self, port: int) -> InetAddr:
        return InetAddr(self.ip, port)

    def pack(self, family: int) -> bytes:
        """As a sockaddr of the socket's family (a v4 address in a v6 socket is
        v4-mapped)."""
        port = self.port.to_bytes(2, "big")
        if family == AF_INET:
            return _SIN.pack(AF_INET, port, self.ip[12:])
        return _SIN6.pack(AF_INET6, port, 0, self.ip, 0)


def parse_inet(raw: bytes, family: int, *, bind: bool = False) -> InetAddr | None:
    """A sockaddr_in/sockaddr_in6 for a socket of ``family``; None for AF_UNSPEC
    where Linux gives it a meaning (connect: dissolve the association)."""
    fam = family_of(raw)
    if fam == AF_UNSPEC and not bind:
        return None
    if family == AF_INET:
        if len(raw) < SIN_LEN:
            raise SyscallError(errno.EINVAL)
        _, port, ip4 = _SIN.unpack_from(raw)
        if fam != AF_INET and not (fam == AF_UNSPEC and ip4 == bytes(4)):
            raise SyscallError(errno.EAFNOSUPPORT)
        return InetAddr(V4_PREFIX + ip4, int.from_bytes(port, "big"))
    if len(raw) < SIN6_LEN_RFC2133:
        raise SyscallError(errno.EINVAL)
    if fam != AF_INET6:
        raise SyscallError(errno.EAFNOSUPPORT)
    raw = raw[:SIN6_LEN].ljust(SIN6_LEN, b"\0")
    _, port, _flow, ip, _scope = _SIN6.unpack(raw)
    return InetAddr(ip, int.from_bytes(port, "big"))
