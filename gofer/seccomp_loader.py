"""pyseccomp, imported without the two ``ldconfig -p`` runs its import costs.

Why: pyseccomp finds libc and libseccomp with ``ctypes.util.find_library``,
which on Linux runs ``ldconfig -p`` (and may try gcc) in a subprocess: ~5-10
ms each on this project's machines.  Both the Sentry and the Gofer import it
while a container starts, so those runs sat on the path of every `create`.
The two libraries have fixed ABI names (``libc.so.6``, ``libseccomp.so.2``);
while pyseccomp imports, ``find_library`` answers those names from a table if
dlopen accepts them.  Any other name, or one dlopen refuses, takes the
normal search.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from types import ModuleType

SONAMES = {"c": "libc.so.6", "seccomp": "libseccomp.so.2"}


def _find_library(name: str, _search: object = ctypes.util.find_library) -> str | None:
    soname = SONAMES.get(name)
    if soname is not None:
        try:
            ctypes.CDLL(soname)
        except OSError:
            pass
        else:
            return soname
    return _search(name)  # type: ignore[operator]


def pyseccomp() -> ModuleType:
    """The pyseccomp module (imported on the first call)."""
    module = sys.modules.get("pyseccomp")
    if module is not None:
        return module
    search = ctypes.util.find_library
    ctypes.util.find_library = _find_library
    try:
        import pyseccomp as module
    finally:
        ctypes.util.find_library = search
    return module
