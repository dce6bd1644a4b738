"""The interface ioctls (netdevice(7)) on any socket, answered from the
Sentry's interface table: SIOCGIFCONF, SIOCGIFNAME, SIOCGIFINDEX,
SIOCGIFFLAGS, SIOCGIFADDR and friends, SIOCGIFMTU, SIOCGIFHWADDR,
SIOCGIFTXQLEN. busybox's ifconfig and ip, and iproute2's queue length,
read these.

Facts from Linux (net/core/dev_ioctl.c, net/ipv4/devinet.c):

* struct ifreq is 40 bytes: a 16-byte name (its last byte forced to NUL)
  and a 24-byte union. A name no interface has is ENODEV; an IPv4 query on
  an interface with no IPv4 address is EADDRNOTAVAIL.
* SIOCGIFFLAGS gives the low 16 bits of the flags (IFF_LOWER_UP does not
  fit); SIOCGIFHWADDR a sockaddr whose family is the hardware type.
* SIOCGIFCONF lists one ifreq (name and sockaddr_in) per IPv4 address;
  with a NULL buffer it gives only the length needed.
* The setting ioctls need CAP_NET_ADMIN (EPERM without); the sandbox's
  table is fixed at boot, so with it they are EOPNOTSUPP here.
"""

from __future__ import annotations

import errno
import struct
from typing import Any

from sentry.kernel.errors import SyscallError
from sentry.net.consts import AF_INET
from sentry.net.netconfig import IfAddr, Interface, NetConfig

IFNAMSIZ = 16
IFREQ_SIZE = 40
IFCONF = struct.Struct("<i4xQ")
SIN = struct.Struct("<HH4s8x")
I32 = struct.Struct("<i")

SIOCGIFNAME, SIOCGIFCONF, SIOCGIFFLAGS, SIOCGIFADDR = 0x8910, 0x8912, 0x8913, 0x8915
SIOCGIFDSTADDR, SIOCGIFBRDADDR, SIOCGIFNETMASK, SIOCGIFMETRIC = 0x8917, 0x8919, 0x891B, 0x891D
SIOCGIFMTU, SIOCGIFHWADDR, SIOCGIFINDEX, SIOCGIFTXQLEN = 0x8921, 0x8927, 0x8933, 0x8942
SIOCGIFMAP = 0x8970
SIOCETHTOOL = 0x8946
# Setting calls (SIOCSIF*, SIOCADDRT/SIOCDELRT, SIOCSIFTXQLEN, SIOCSIFMAP...).
_SETTERS = frozenset({0x890B, 0x890C, 0x8914, 0x8916, 0x8918, 0x891A, 0x891C, 0x891E,
                      0x8920, 0x8922, 0x8924, 0x8936, 0x8943, 0x8971})
FIRST, LAST = 0x8910, 0x89FF  # the range dev_ioctl serves


def handles(cmd: int) -> bool:
    """Whether ``cmd`` is an interface ioctl this module answers."""
    return FIRST <= cmd <= LAST or cmd in _SETTERS


def _sin(addr: bytes | None) -> bytes:
    return SIN.pack(AF_INET, 0, addr or bytes(4))


def _mask(prefixlen: int) -> bytes:
    return (((1 << 32) - 1) ^ ((1 << (32 - prefixlen)) - 1)).to_bytes(4, "big")


def _find(cfg: NetConfig, name: bytes) -> Interface:
    name = name[:IFNAMSIZ - 1].split(b"\0", 1)[0]
    iface = cfg.by_name(name.decode("latin-1"))
    if iface is None:
        raise SyscallError(errno.ENODEV)
    return iface


def _v4(iface: Interface) -> IfAddr:
    a = next((a for a in iface.addrs if a.family == AF_INET), None)
    if a is None:
        raise SyscallError(errno.EADDRNOTAVAIL)
    return a


def _ifconf(cfg: NetConfig, mm: Any, arg: int) -> int:
    room, buf = IFCONF.unpack(mm.copy_in(arg, IFCONF.size))
    entries = [iface.name.encode().ljust(IFNAMSIZ, b"\0") + _sin(a.addr).ljust(24, b"\0")
               for iface, a in cfg.addresses(AF_INET)]
    if not buf:
        mm.copy_out(arg, I32.pack(len(entries) * IFREQ_SIZE))
        return 0
    fit = [e for e in entries[:max(room, 0) // IFREQ_SIZE]]
    if fit:
        mm.copy_out(buf, b"".join(fit))
    mm.copy_out(arg, I32.pack(len(fit) * IFREQ_SIZE))
    return 0


def ioctl(cfg: NetConfig, cmd: int, arg: int, mm: Any, admin: bool) -> int:
    """One interface ioctl on a socket; ``admin``: the caller has CAP_NET_ADMIN."""
    if cmd in _SETTERS:
        raise SyscallError(errno.EOPNOTSUPP if admin else errno.EPERM)
    if cmd == SIOCGIFCONF:
        return _ifconf(cfg, mm, arg)
    req = mm.copy_in(arg, IFREQ_SIZE)
    name = req[:IFNAMSIZ]
    if cmd == SIOCGIFNAME:
        index = I32.unpack_from(req, IFNAMSIZ)[0]
        iface = cfg.interface(index)
        if iface is None:
            raise SyscallError(errno.ENODEV)
        mm.copy_out(arg, iface.name.encode().ljust(IFNAMSIZ, b"\0"))
        return 0
    iface = _find(cfg, name)
    if cmd == SIOCGIFFLAGS:
        out = struct.pack("<H", iface.flags & 0xFFFF)
    elif cmd in (SIOCGIFADDR, SIOCGIFDSTADDR):
        out = _sin(_v4(iface).addr)
    elif cmd == SIOCGIFBRDADDR:
        out = _sin(_v4(iface).broadcast)
    elif cmd == SIOCGIFNETMASK:
        out = _sin(_mask(_v4(iface).prefixlen))
    elif cmd == SIOCGIFMETRIC:
        out = I32.pack(0)
    elif cmd == SIOCGIFMTU:
        out = I32.pack(iface.mtu)
    elif cmd == SIOCGIFHWADDR:
        out = struct.pack("<H", iface.arptype) + iface.hwaddr.ljust(14, b"\0")
    elif cmd == SIOCGIFINDEX:
        out = I32.pack(iface.index)
    elif cmd == SIOCGIFTXQLEN:
        out = I32.pack(iface.txqlen)
    elif cmd == SIOCGIFMAP:
        out = bytes(24)
    else:
        raise SyscallError(errno.EOPNOTSUPP if cmd == SIOCETHTOOL else errno.ENOTTY)
    mm.copy_out(arg + IFNAMSIZ, out)
    return 0
