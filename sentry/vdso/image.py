"""The vDSO image on disk and its two mappings in the Sentry's stub region.

The image is checked as the loaders that will read it expect (glibc's
setup_vdso treats it as already relocated and never writes it): an x86-64
ET_DYN with one PT_LOAD at address 0 whose file offsets are its addresses,
a PT_DYNAMIC, and no more bytes than its region.
"""

from __future__ import annotations

import ctypes
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
PATH = os.path.join(HERE, "vdso.so")

PROT_READ, PROT_WRITE, PROT_EXEC = 1, 2, 4
MAP_SHARED, MAP_PRIVATE, MAP_FIXED, MAP_ANONYMOUS = 0x01, 0x02, 0x10, 0x20
PT_LOAD, PT_DYNAMIC = 1, 2
ET_DYN, EM_X86_64 = 3, 62


class ImageError(Exception):
    """The built vDSO is not what the loader expects."""


def load(path: str = PATH) -> bytes:
    """The image's bytes, checked."""
    with open(path, "rb") as f:
        data = f.read()
    check(data)
    return data


def check(data: bytes) -> None:
    """Raise ImageError unless ``data`` can be mapped as it is."""
    if len(data) < 64 or data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise ImageError("not a 64-bit little-endian ELF")
    e_type, e_machine = struct.unpack_from("<HH", data, 16)
    e_phoff, = struct.unpack_from("<Q", data, 32)
    e_phentsize, e_phnum = struct.unpack_from("<HH", data, 54)
    if e_type != ET_DYN or e_machine != EM_X86_64:
        raise ImageError("not an x86-64 shared object")
    if e_phentsize != 56 or e_phoff + e_phnum * 56 > len(data):
        raise ImageError("bad program headers")
    loads = dynamic = 0
    for i in range(e_phnum):
        p_type, _flags, off, vaddr, _pa, filesz, memsz = struct.unpack_from(
            "<IIQQQQQ", data, e_phoff + i * 56)
        if p_type == PT_LOAD:
            loads += 1
            if off != 0 or vaddr != 0 or filesz != memsz or filesz > len(data):
                raise ImageError("the PT_LOAD must map the file at address 0 as it is")
        elif p_type == PT_DYNAMIC:
            dynamic += 1
    if loads != 1 or dynamic != 1:
        raise ImageError("want exactly one PT_LOAD and one PT_DYNAMIC")


def _libc() -> ctypes.CDLL:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                          ctypes.c_int, ctypes.c_long]
    libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    return libc


def _mmap(libc: ctypes.CDLL, addr: int, size: int, prot: int, flags: int, fd: int) -> int:
    got = libc.mmap(addr or None, size, prot, flags, fd, 0)
    if got in (None, ctypes.c_void_p(-1).value) or (addr and got != addr):
        raise OSError(ctypes.get_errno(), f"vdso: mmap at {addr:#x} failed")
    return got


def map_page(ro_addr: int, size: int) -> int:
    """Map a fresh memfd page read-only at ``ro_addr`` (inherited by stubs) and
    writable elsewhere (the Sentry's, gone in the zygote); returns the writable
    address.  The descriptor is closed before returning."""
    libc = _libc()
    fd = os.memfd_create("pyvisor-vvar", os.MFD_CLOEXEC)
    try:
        os.ftruncate(fd, size)
        rw = _mmap(libc, 0, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd)
        _mmap(libc, ro_addr, size, PROT_READ, MAP_SHARED | MAP_FIXED, fd)
    finally:
        os.close(fd)
    return rw


def map_image(addr: int, size: int, data: bytes) -> None:
    """A private copy of the image at ``addr``, read and execute only."""
    libc = _libc()
    _mmap(libc, addr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1)
    ctypes.memmove(addr, data, len(data))
    if libc.mprotect(addr, size, PROT_READ | PROT_EXEC) != 0:
        raise OSError(ctypes.get_errno(), "vdso: mprotect of the image failed")
