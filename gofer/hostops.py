"""The few host file operations Python's `os` module cannot do on an O_PATH fd.

The Gofer holds every file as an ``O_PATH`` descriptor and must change its
attributes without reopening it by name (a reopen by name races with renames
and could open a different file). Linux offers exactly that through
``AT_EMPTY_PATH`` with an empty path: the *at call then acts on the descriptor
itself. `os.chown`, `os.utime` and `os.link` do not expose that flag, so the
calls go through ctypes here, in one place, each turning -1 into OSError.

Facts about this kernel API:

* ``fchownat(fd, "", uid, gid, AT_EMPTY_PATH)`` and
  ``utimensat(fd, "", times, AT_EMPTY_PATH)`` accept O_PATH descriptors,
  including one that names a symlink (they then act on the link itself).
* ``fchmodat2`` (Linux 6.6, syscall 452 on every architecture that uses the
  generic table and on x86-64) is the first chmod that takes AT_EMPTY_PATH;
  ``fchmod`` on an O_PATH descriptor fails with EBADF.
* ``linkat(fd, "", dirfd, name, AT_EMPTY_PATH)`` links the very inode the
  descriptor names; it needs CAP_DAC_READ_SEARCH, which the Gofer keeps.
* ``readlinkat(fd, "")`` reads an O_PATH symlink descriptor (plain os.readlink
  with ``dir_fd`` does this already).
"""

from __future__ import annotations

import ctypes
import os

AT_EMPTY_PATH = 0x1000
UTIME_NOW = (1 << 30) - 1
UTIME_OMIT = (1 << 30) - 2
_SYS_FCHMODAT2 = 452

_libc = ctypes.CDLL(None, use_errno=True)


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


_libc.fchownat.argtypes = [
    ctypes.c_int,
    ctypes.c_char_p,
    ctypes.c_uint,
    ctypes.c_uint,
    ctypes.c_int,
]
_libc.utimensat.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.POINTER(_Timespec), ctypes.c_int]
_libc.linkat.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
_libc.syscall.restype = ctypes.c_long


def _check(ret: int) -> None:
    if ret == -1:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def fchmod_path(fd: int, mode: int) -> None:
    """chmod the file an O_PATH descriptor names (fchmodat2 + AT_EMPTY_PATH)."""
    _check(
        _libc.syscall(
            ctypes.c_long(_SYS_FCHMODAT2),
            ctypes.c_int(fd),
            ctypes.c_char_p(b""),
            ctypes.c_uint(mode),
            ctypes.c_int(AT_EMPTY_PATH),
        )
    )


def fchown_path(fd: int, uid: int, gid: int) -> None:
    """chown an O_PATH descriptor; -1 leaves that id unchanged (as chown(2))."""
    _check(_libc.fchownat(fd, b"", uid & 0xFFFF_FFFF, gid & 0xFFFF_FFFF, AT_EMPTY_PATH))


def futimens_path(fd: int, atime: tuple[int, int], mtime: tuple[int, int]) -> None:
    """Set times of an O_PATH descriptor; each is (sec, nsec), nsec may be UTIME_NOW/OMIT."""
    times = (_Timespec * 2)(_Timespec(*atime), _Timespec(*mtime))
    _check(_libc.utimensat(fd, b"", times, AT_EMPTY_PATH))


def link_path(fd: int, dir_fd: int, name: str) -> None:
    """Hard-link the inode behind ``fd`` as ``name`` in ``dir_fd``."""
    _check(_libc.linkat(fd, b"", dir_fd, os.fsencode(name), AT_EMPTY_PATH))
