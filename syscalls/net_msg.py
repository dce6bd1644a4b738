"""msghdr, mmsghdr and control messages (cmsg(3)) for syscalls/net.py.

Facts from Linux (net/socket.c, net/core/scm.c) this keeps:

* msg_namelen above sizeof(sockaddr_storage) is EINVAL, msg_iovlen above
  UIO_MAXIOV EMSGSIZE, msg_controllen above INT_MAX ENOBUFS.
* Each cmsghdr must be at least 16 bytes long and fit in what is left of
  the control buffer (CMSG_OK), else EINVAL; levels other than SOL_SOCKET
  are skipped; SOL_SOCKET types other than SCM_RIGHTS/SCM_CREDENTIALS are
  EINVAL; an inet socket ignores those two (and SO_MARK, SO_TIMESTAMPING,
  SCM_TXTIME).
* SCM_RIGHTS carries at most 253 descriptors (SCM_MAX_FD), each of which
  must be open (EBADF); SCM_CREDENTIALS' length must be exactly
  CMSG_LEN(sizeof(struct ucred)).
* On receipt, credentials come first, then as many descriptors as the
  buffer holds; the rest are closed and MSG_CTRUNC is set. A cmsg that
  does not fit is cut to the buffer with MSG_CTRUNC.
"""

from __future__ import annotations

import errno
import struct
from typing import TYPE_CHECKING

from sentry.kernel.errors import SyscallError
from sentry.net import consts as c
from sentry.net.addr import SOCKADDR_MAX
from sentry.net.endpoint import Received, drop_rights
from sentry.vfs.file import FileDescription
from syscalls.abi import IOVEC, MAX_RW_COUNT

if TYPE_CHECKING:
    from sentry.kernel.task import Task

MSGHDR = struct.Struct("<QI4xQQQQi4x")  # name, namelen, iov, iovlen, control, controllen, flags
MMSGHDR_SIZE = MSGHDR.size + 8  # + msg_len and padding
CMSGHDR = struct.Struct("<QiI")  # cmsg_len, cmsg_level, cmsg_type
UCRED = struct.Struct("<iII")
UIO_MAXIOV = 1024
SCM_MAX_FD = 253
INT_MAX = 0x7FFFFFFF
# SOL_SOCKET cmsgs an inet socket takes (__sock_cmsg_send); SCM_RIGHTS and
# SCM_CREDENTIALS are accepted and ignored there.
_INET_SOL_SOCKET = frozenset({c.SCM_RIGHTS, c.SCM_CREDENTIALS, 36, 37, 61, 65})


def cmsg_align(n: int) -> int:
    return (n + 7) & ~7


class MsgHdr:
    """One decoded struct msghdr (the application's pointers, unchecked)."""

    __slots__ = ("name", "namelen", "iovs", "control", "controllen", "flags")

    def __init__(self, t: Task, addr: int) -> None:
        (self.name, self.namelen, iov, iovlen, self.control, self.controllen,
         self.flags) = MSGHDR.unpack(t.mm.copy_in(addr, MSGHDR.size))
        if iovlen > UIO_MAXIOV:
            raise SyscallError(errno.EMSGSIZE)
        raw = t.mm.copy_in(iov, IOVEC.size * iovlen) if iovlen else b""
        self.iovs = [IOVEC.unpack_from(raw, i * IOVEC.size) for i in range(iovlen)]
        if any(n > (1 << 63) - 1 for _, n in self.iovs):
            raise SyscallError(errno.EINVAL)

    def total(self) -> int:
        return min(sum(n for _, n in self.iovs), MAX_RW_COUNT)

    def gather(self, t: Task) -> bytes:
        parts, left = [], MAX_RW_COUNT
        for base, n in self.iovs:
            n = min(n, left)
            if n:
                parts.append(t.mm.copy_in(base, n))
                left -= n
        return b"".join(parts)

    def scatter(self, t: Task, data: bytes) -> None:
        off = 0
        for base, n in self.iovs:
            if off >= len(data):
                break
            chunk = data[off:off + n]
            if chunk:
                t.mm.copy_out(base, chunk)
            off += len(chunk)

    def dest(self, t: Task) -> bytes | None:
        """The destination sockaddr (None: none given)."""
        if self.namelen > SOCKADDR_MAX:
            raise SyscallError(errno.EINVAL)
        if not self.name or not self.namelen:
            return None
        return t.mm.copy_in(self.name, self.namelen)


def parse_control(t: Task, msg: MsgHdr, unix: bool,
                  ) -> tuple[list[FileDescription] | None, tuple[int, int, int] | None]:
    """SCM_RIGHTS (descriptions with a reference taken) and SCM_CREDENTIALS."""
    if msg.controllen > INT_MAX:
        raise SyscallError(errno.ENOBUFS)
    if msg.controllen < CMSGHDR.size:
        return None, None
    raw = t.mm.copy_in(msg.control, msg.controllen)
    rights: list[FileDescription] = []
    creds = None
    off = 0
    try:
        while off + CMSGHDR.size <= len(raw):
            length, level, kind = CMSGHDR.unpack_from(raw, off)
            if length < CMSGHDR.size or length > len(raw) - off:
                raise SyscallError(errno.EINVAL)
            body = raw[off + CMSGHDR.size:off + length]
            off += cmsg_align(length)
            if level != c.SOL_SOCKET:
                continue
            if not unix:
                if kind not in _INET_SOL_SOCKET:
                    raise SyscallError(errno.EINVAL)
                continue
            if kind not in (c.SCM_RIGHTS, c.SCM_CREDENTIALS):
                raise SyscallError(errno.EINVAL)
            if kind == c.SCM_CREDENTIALS:
                if len(body) != UCRED.size:
                    raise SyscallError(errno.EINVAL)
                pid, uid, gid = UCRED.unpack(body)
                if uid == 0xFFFFFFFF or gid == 0xFFFFFFFF:
                    raise SyscallError(errno.EINVAL)
                creds = (pid, uid, gid)
                continue
            fds = struct.unpack(f"<{len(body) // 4}i", body[:len(body) // 4 * 4])
            if len(rights) + len(fds) > SCM_MAX_FD:
                raise SyscallError(errno.EINVAL)
            for fd in fds:
                desc = t.fds.get(fd)
                desc.refs += 1
                rights.append(desc)
    except SyscallError:
        drop_rights(rights)
        raise
    return rights or None, creds


def build_control(t: Task, msg: MsgHdr, got: Received, passcred: bool,
                  cloexec: bool) -> tuple[bytes, int]:
    """The control bytes for ``got`` in a buffer of msg.controllen, and the
    msg_flags they add. Received descriptions are installed (or dropped)."""
    room = msg.controllen if msg.control else 0
    out = bytearray()
    flags = 0

    def put(kind: int, body: bytes) -> None:
        nonlocal flags
        left = room - len(out)
        if left < CMSGHDR.size:
            flags |= c.MSG_CTRUNC
            return
        length = CMSGHDR.size + len(body)
        if left < length:
            flags |= c.MSG_CTRUNC
            length = left
        out.extend(CMSGHDR.pack(length, c.SOL_SOCKET, kind) + body[:length - CMSGHDR.size])
        out.extend(bytes(min(cmsg_align(length), left) - length))

    if passcred:
        put(c.SCM_CREDENTIALS, UCRED.pack(*(got.creds or (0, 65534, 65534))))
    rights = got.rights or []
    if rights:
        fit = max(0, (room - len(out) - CMSGHDR.size) // 4)
        fds: list[int] = []
        for desc in rights[:fit]:
            try:
                fds.append(t.fds.install(desc, cloexec=cloexec))
            except SyscallError:
                break
        if len(fds) < len(rights):
            flags |= c.MSG_CTRUNC
        drop_rights(rights)
        if fds:
            put(c.SCM_RIGHTS, struct.pack(f"<{len(fds)}i", *fds))
    return bytes(out), flags
