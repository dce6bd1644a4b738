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
import sys
from types import ModuleType

SONAMES = {"c": "libc.so.6", "seccomp": "libseccomp.so.2"}


def _find_library(name: str) -> str | None:
    soname = SONAMES.get(name)
    if soname is not None:
        try:
            ctypes.CDLL(soname)
        except OSError:
            pass
        else:
            return soname
    import importlib

    real = importlib.import_module("ctypes.util")
    return real.find_library(name) if real.find_library is not _find_library else None


def pyseccomp() -> ModuleType:
    """The pyseccomp module (imported on the first call)."""
    module = sys.modules.get("pyseccomp")
    if module is not None:
        return module
    if "ctypes.util" in sys.modules:
        search = ctypes.util.find_library
        ctypes.util.find_library = _find_library
        try:
            import pyseccomp as module
        finally:
            ctypes.util.find_library = search
        return module
    # pyseccomp's `import ctypes.util` would bring subprocess, shutil,
    # tempfile, random, bz2 and lzma (~1.4 MB in the Sentry and in the Gofer,
    # charged to a container's memory limit) for two lookups the table
    # answers: it gets a stand-in module while it imports, then the real one
    # is importable again.
    stand_in = ModuleType("ctypes.util")
    stand_in.find_library = _find_library  # type: ignore[attr-defined]
    sys.modules["ctypes.util"] = stand_in
    ctypes.util = stand_in  # type: ignore[attr-defined]
    try:
        import pyseccomp as module
    finally:
        del sys.modules["ctypes.util"]
        del ctypes.util
    return module
