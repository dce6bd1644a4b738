"""pyvisor's vDSO: clock_gettime, gettimeofday and time without a trap.

``install()`` runs once per Sentry process, right after the stub region is
reserved and before the zygote is forked: it maps the time page (timepage.py)
read-only at STUB_VVAR_ADDR and the image (vdso.c, linked by vdso.lds, built
at install by _build.py) at STUB_VDSO_ADDR, both inside the stub region, so
every stub process inherits them and no application can unmap, remap or
re-protect them (the stub filter allows none of that there).  ``base()`` is
what the loader puts in AT_SYSINFO_EHDR: 0 when there is no vDSO.

``PYVISOR_VDSO=0`` leaves the vDSO out (no AT_SYSINFO_EHDR, as a kernel
without one); ``PYVISOR_VDSO=syscall`` maps it with the time page disabled, so
every call takes the trapping syscall (the path used when the TSC is unusable).
"""

from __future__ import annotations

import ctypes
import logging
import os

from sentry.kernel import timens
from sentry.vdso import image
from sentry.vdso.timepage import TimePage, tsc_usable

log = logging.getLogger(__name__)

_base = 0
_page: TimePage | None = None


def base() -> int:
    """The vDSO's address for AT_SYSINFO_EHDR, or 0 when none is mapped."""
    return _base


def install() -> None:
    """Map the time page and the image into the (reserved) stub region; start
    the time keeper.  Idempotent; without a built image it logs and does nothing."""
    global _base, _page
    if _base or os.environ.get("PYVISOR_VDSO", "1") == "0":
        return
    from sentry.systrap._stub import lib as stub  # the region's addresses

    try:
        from sentry.vdso._vvar import ffi, lib
        data = image.load()
    except (ImportError, OSError, image.ImageError) as exc:
        log.warning("vdso: not available (%s); run `pip install -e .` "
                    "or `python3 sentry/vdso/_build.py`", exc)
        return
    if len(data) > stub.STUB_VDSO_SIZE:
        log.warning("vdso: image of %d bytes larger than its region", len(data))
        return
    rw = image.map_page(stub.STUB_VVAR_ADDR, int(lib.VVAR_SIZE))
    image.map_image(stub.STUB_VDSO_ADDR, stub.STUB_VDSO_SIZE, data)
    usable = os.environ.get("PYVISOR_VDSO") != "syscall" and tsc_usable()
    page = TimePage(ffi, lib, rw, usable)
    ctypes.memset(rw, 0, 16)  # seq 0, disabled: the syscall until the first update
    page.start()
    _page = page
    timens.on_offsets_active = page.set_slow_mono
    _base = stub.STUB_VDSO_ADDR
    log.debug("vdso: mapped at %#x, time page %s", _base, "on" if usable else "off (syscall)")
