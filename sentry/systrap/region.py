"""The stub region in the Sentry's own address space, reserved before boot maps
anything large (sentry/systrap/processes.py, start-up order 1): the zygote is
forked from the Sentry and maps the stub code at fixed addresses there, and
its control block lives there (shared anonymous memory, reachable through
no file)."""

from __future__ import annotations

import ctypes
import os

from sentry.systrap._stub import lib

_MAP_FIXED_NOREPLACE = 0x100000


class RegionError(Exception):
    """The stub region's addresses are taken in the Sentry."""


def _libc_mmap() -> ctypes._CFuncPtr:  # type: ignore[name-defined]
    libc = ctypes.CDLL(None, use_errno=True)
    fn = libc.mmap
    fn.restype = ctypes.c_void_p
    fn.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int,
                   ctypes.c_long]
    return fn


_reserved = False


def reserve_stub_region() -> None:
    """Keep the Sentry's own allocations out of the stub region's addresses, and
    map the zygote's control block there (shared anonymous memory: inherited by
    the zygote, reachable through no file)."""
    global _reserved
    if _reserved:
        return
    mmap_fn = _libc_mmap()
    start, size = lib.STUB_REGION_START, lib.STUB_REGION_END - lib.STUB_REGION_START
    flags = 0x22 | _MAP_FIXED_NOREPLACE | 0x4000  # PRIVATE|ANONYMOUS|NORESERVE
    got = mmap_fn(start, size, 0, flags, -1, 0)
    if got != start:
        err = ctypes.get_errno()
        raise RegionError(f"cannot reserve the stub region at {start:#x}: {os.strerror(err)}")
    ctrl = mmap_fn(lib.STUB_CTRL_ADDR, lib.STUB_CTRL_SIZE, 3, 0x21 | 0x10, -1, 0)
    if ctrl != lib.STUB_CTRL_ADDR:  # SHARED|ANONYMOUS|FIXED, read/write
        raise RegionError(f"cannot map the stub control block: {os.strerror(ctypes.get_errno())}")
    _reserved = True
    from sentry import vdso  # maps into the region just reserved; before any zygote

    vdso.install()
