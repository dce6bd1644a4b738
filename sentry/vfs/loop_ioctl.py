"""The ioctls of an open /dev/loopN: the loop calls and the block calls.

Orders and errnos as Linux's loop_set_status/loop_configure/lo_ioctl: an
unbound device is ENXIO for everything but LOOP_SET_FD and LOOP_CONFIGURE;
a bound one is EBUSY for those two; LOOP_CHANGE_FD only on a read-only
device and only to a file of the same size (EINVAL); block sizes are powers
of two from 512 to the page size (EINVAL).
"""

from __future__ import annotations

import errno
import struct
from typing import Any

from sentry.kernel.errors import SyscallError
from sentry.vfs import loop as L
from sentry.vfs.blkdev import readahead_ioctl, require_admin
from sentry.vfs.file import O_ACCMODE, O_RDONLY


def _status_out(dev: L.LoopDevice, old: bool) -> bytes:
    assert dev.backing is not None
    st = dev.backing.stat()
    if old:
        if dev.offset > 0x7FFFFFFF:
            raise SyscallError(errno.EOVERFLOW)
        return L.INFO.pack(dev.index, st.dev, st.ino, 0, dev.offset, 0, 0, dev.flags,
                           dev.file_name, b"", 0, 0, b"")
    return L.INFO64.pack(st.dev, st.ino, 0, dev.offset, dev.sizelimit, dev.index, 0, 0,
                         dev.flags, dev.file_name, dev.crypt_name, b"", 0, 0)


def _name(raw: bytes) -> bytes:
    return raw[:63].split(b"\0", 1)[0]


def _set_status(dev: L.LoopDevice, raw: bytes, old: bool) -> None:
    if old:
        (_n, _d, _i, _r, offset, _et, _ks, flags, name, _key, _i0, _i1, _res) = \
            L.INFO.unpack(raw)
        sizelimit, crypt = dev.sizelimit, dev.crypt_name
        offset &= 0xFFFFFFFF
    else:
        (_d, _i, _r, offset, sizelimit, _n, _et, _ks, flags, name, crypt, _key, _i0,
         _i1) = L.INFO64.unpack(raw)
    dev.offset, dev.sizelimit = offset, sizelimit
    dev.file_name, dev.crypt_name = _name(name), _name(crypt)
    dev.flags &= ~L.SET_STATUS_CLEARABLE
    dev.flags |= flags & L.SET_STATUS_SETTABLE
    dev.recompute()


def _block_size(size: int) -> int:
    if size == 0:
        return L.SECTOR
    if size < L.SECTOR or size > L.PAGE or size & (size - 1):
        raise SyscallError(errno.EINVAL)
    return size


def _configure(f: L.LoopFile, dev: L.LoopDevice, t: Any, arg: int) -> None:
    raw = t.mm.copy_in(arg, L.CONFIG_SIZE)
    fd, bsize = L.CONFIG_HEAD.unpack_from(raw)
    info = raw[L.CONFIG_HEAD.size:L.CONFIG_HEAD.size + L.INFO64.size]
    flags = L.INFO64.unpack(info)[8]
    desc = t.fds.get(fd if fd < 1 << 31 else -1)
    if not dev.free:
        raise SyscallError(errno.EBUSY)
    if flags & ~L.CONFIGURE_SETTABLE:
        raise SyscallError(errno.EINVAL)
    size = _block_size(bsize)
    dev.bind(desc, flags & (L.LO_FLAGS_READ_ONLY | L.LO_FLAGS_DIRECT_IO), _writable(f))
    try:
        _set_status(dev, info, old=False)
        dev.flags |= flags & L.CONFIGURE_SETTABLE
        dev.block_size = size
    except SyscallError:
        dev.unbind()
        raise


def _writable(f: L.LoopFile) -> bool:
    return f.flags & O_ACCMODE != O_RDONLY


def _int(t: Any, arg: int, value: int, fmt: str = "<i") -> int:
    t.mm.copy_out(arg, struct.pack(fmt, value))
    return 0


def loop_ioctl(f: L.LoopFile, cmd: int, arg: int, t: Any) -> int:
    dev = f.dev
    with dev.lock:
        if cmd == L.LOOP_SET_FD:
            desc = t.fds.get(arg if arg < 1 << 31 else -1)
            dev.bind(desc, 0, _writable(f))
            return 0
        if cmd == L.LOOP_CONFIGURE:
            _configure(f, dev, t, arg)
            return 0
        if cmd in (L.LOOP_CTL_GET_FREE, L.LOOP_CTL_ADD, L.LOOP_CTL_REMOVE):
            raise SyscallError(errno.ENOTTY)
        if cmd in _BLOCK:
            return _BLOCK[cmd](f, dev, t, arg)
        if readahead_ioctl(dev, cmd, arg, t):
            return 0
        if cmd not in _LOOP_CMDS:
            raise SyscallError(errno.ENOTTY)
        if not dev.bound:
            raise SyscallError(errno.ENXIO)
        if cmd == L.LOOP_CLR_FD:
            if dev.opens > 1:  # others hold it: it goes at the last close
                dev.flags |= L.LO_FLAGS_AUTOCLEAR
            else:  # ours is the last open: it goes when we close
                dev.rundown = True
            return 0
        if cmd in (L.LOOP_GET_STATUS, L.LOOP_GET_STATUS64):
            old = cmd == L.LOOP_GET_STATUS
            t.mm.copy_out(arg, _status_out(dev, old))
            return 0
        if cmd in (L.LOOP_SET_STATUS, L.LOOP_SET_STATUS64):
            old = cmd == L.LOOP_SET_STATUS
            _set_status(dev, t.mm.copy_in(arg, (L.INFO if old else L.INFO64).size), old)
            return 0
        if cmd == L.LOOP_CHANGE_FD:
            desc = t.fds.get(arg if arg < 1 << 31 else -1)
            if not dev.flags & L.LO_FLAGS_READ_ONLY:
                raise SyscallError(errno.EINVAL)
            if desc.stat().mode & 0o170000 not in (0o100000, 0o060000):
                raise SyscallError(errno.EINVAL)
            if desc.stat().size != dev.backing_size():
                raise SyscallError(errno.EINVAL)
            flags, offset, limit, name = dev.flags, dev.offset, dev.sizelimit, dev.file_name
            old_desc = dev.backing
            desc.refs += 1
            dev.backing = desc
            dev.flags, dev.offset, dev.sizelimit, dev.file_name = flags, offset, limit, name
            if old_desc is not None:
                old_desc.refs -= 1
                if old_desc.refs == 0:
                    old_desc.release()
            dev.recompute()
            return 0
        if cmd == L.LOOP_SET_CAPACITY:
            dev.recompute()
            return 0
        if cmd == L.LOOP_SET_DIRECT_IO:
            if arg:
                dev.flags |= L.LO_FLAGS_DIRECT_IO
            else:
                dev.flags &= ~L.LO_FLAGS_DIRECT_IO
            return 0
        if cmd == L.LOOP_SET_BLOCK_SIZE:
            dev.block_size = _block_size(arg if arg < 1 << 32 else 1)
            return 0
    raise SyscallError(errno.ENOTTY)


_LOOP_CMDS = (L.LOOP_CLR_FD, L.LOOP_GET_STATUS, L.LOOP_GET_STATUS64, L.LOOP_SET_STATUS,
              L.LOOP_SET_STATUS64, L.LOOP_CHANGE_FD, L.LOOP_SET_CAPACITY,
              L.LOOP_SET_DIRECT_IO, L.LOOP_SET_BLOCK_SIZE)


def _roset(f: L.LoopFile, dev: L.LoopDevice, t: Any, arg: int) -> int:
    require_admin(t)
    dev.ro_set = bool(struct.unpack("<i", t.mm.copy_in(arg, 4))[0])
    return 0


_BLOCK = {
    L.BLKGETSIZE64: lambda f, d, t, a: _int(t, a, d.size, "<Q"),
    L.BLKGETSIZE: lambda f, d, t, a: _int(t, a, d.size // L.SECTOR, "<Q"),
    L.BLKSSZGET: lambda f, d, t, a: _int(t, a, d.block_size),
    L.BLKPBSZGET: lambda f, d, t, a: _int(t, a, d.block_size, "<I"),
    L.BLKIOMIN: lambda f, d, t, a: _int(t, a, d.block_size, "<I"),
    L.BLKIOOPT: lambda f, d, t, a: _int(t, a, 0, "<I"),
    L.BLKBSZGET: lambda f, d, t, a: _int(t, a, L.PAGE),
    L.BLKROGET: lambda f, d, t, a: _int(t, a, int(d.readonly())),
    L.BLKROSET: _roset,
    L.BLKFLSBUF: lambda f, d, t, a: 0,
}
