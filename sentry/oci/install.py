"""Register (or remove) this runtime in Docker's daemon.json, as gVisor's
``runsc install`` / ``runsc uninstall`` do.

The entry written is ``"runtimes": {NAME: {"path": RUNTIME, "runtimeArgs":
[FLAGS...]}}`` (RUNTIME: see :func:`runtime_path`); every other key and
every other runtime is kept as it was.
The default NAME is ``pyvisor``, not gVisor's ``runsc``, so installing this
runtime never replaces an installed gVisor (both can be registered side by
side, and ``docker run --runtime=pyvisor`` says which one runs).

Why the care with the file: daemon.json is the Docker daemon's whole
configuration, and a daemon refuses to start on a file it cannot parse.  So a
file we cannot parse is left untouched (one-line error), and the new content
replaces the old with rename(2) in the same directory: a daemon (re)reading
it sees the old file or the new one, never half of one.  gVisor writes it in
place with indentation of four spaces; we keep the indentation and the
file mode (0644 for a new file, the old mode otherwise).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Sequence
from typing import Any

DEFAULT_CONFIG = "/etc/docker/daemon.json"
DEFAULT_RUNTIME = "pyvisor"


class InstallError(Exception):
    """A one-line reason daemon.json was not changed."""


def _load(path: str) -> dict[str, Any]:
    """The decoded config; a missing or empty file is an empty config (as gVisor)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise InstallError(f"cannot read {path}: {exc.strerror}") from None
    if not data.strip():
        return {}
    try:
        config = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InstallError(f"{path}: invalid JSON ({exc}); file left unchanged") from None
    except RecursionError:  # Python's decoder recurses once per nesting level
        raise InstallError(f"{path}: invalid JSON (nested too deeply); file left unchanged") \
            from None
    if not isinstance(config, dict):
        raise InstallError(f"{path}: not a JSON object; file left unchanged")
    runtimes = config.get("runtimes")
    if runtimes is not None and not isinstance(runtimes, dict):
        raise InstallError(f"{path}: \"runtimes\" is not an object; file left unchanged")
    return config


def _write(path: str, config: dict[str, Any]) -> None:
    """Replace ``path`` atomically (temporary file in the same directory + rename)."""
    directory = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(directory, mode=0o755, exist_ok=True)
        try:
            mode = os.stat(path).st_mode & 0o7777
        except FileNotFoundError:
            mode = 0o644
        fd, tmp = tempfile.mkstemp(prefix=".daemon.json.", dir=directory)
    except OSError as exc:
        raise InstallError(f"cannot write {path}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(config, f, indent=4)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.rename(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise InstallError(f"cannot write {path}: {exc.strerror}") from None


LAUNCHER = "pyvisor-runsc"  # pyproject.toml's console script


def runtime_path(script: str) -> str:
    """The executable to register for ``script`` (this runsc.py) when the
    launcher beside it cannot be written (sentry/oci/launcher.py, the usual
    entry): pip's launcher beside the running interpreter when it runs this
    very file.

    Why not runsc.py itself: its ``#!/usr/bin/env python3`` depends on the
    caller's PATH.  podman's cleanup process runs the runtime with an empty
    environment (so /usr/bin/python3, which may lack pyvisor's dependencies),
    and under pyenv the lookup goes through a shell shim that costs ~100 ms on
    each of the four calls a `docker run` makes.  The launcher names the
    interpreter.  It is used only if it imports this same file (another
    clone's editable install would point elsewhere).
    """
    import importlib.util
    import sys

    launcher = os.path.join(os.path.dirname(sys.executable), LAUNCHER)
    if not os.access(launcher, os.X_OK):
        return script
    try:
        spec = importlib.util.find_spec("runsc")
    except (ImportError, ValueError):
        return script
    origin = spec.origin if spec is not None else None
    if origin is None or os.path.realpath(origin) != os.path.realpath(script):
        return script
    return launcher


def install(config_file: str, runtime: str, path: str, runtime_args: Sequence[str]) -> None:
    """Add (or replace) runtime ``runtime`` = ``path`` with ``runtime_args``."""
    if not runtime:
        raise InstallError("--runtime: the name must not be empty")
    config = _load(config_file)
    runtimes = config.setdefault("runtimes", {})
    runtimes[runtime] = {"path": path, "runtimeArgs": list(runtime_args)}
    _write(config_file, config)


def uninstall(config_file: str, runtime: str) -> bool:
    """Remove runtime ``runtime``; every other key and runtime stays.  Missing ->
    InstallError.  Returns True when the file itself was removed.

    What ``install`` added goes with it: a ``runtimes`` object left empty is
    dropped, and a file left with nothing at all (``{}``, as when ``install``
    created it) is removed rather than left as ``{"runtimes": {}}``.  To
    dockerd a missing daemon.json and an empty one are the same
    configuration, so nothing a user set can be lost this way."""
    if not os.path.exists(config_file):
        raise InstallError(f"{config_file}: no such file (runtime {runtime!r} not installed)")
    config = _load(config_file)
    runtimes = config.get("runtimes") or {}
    if runtime not in runtimes:
        raise InstallError(f"runtime {runtime!r} not found in {config_file}")
    del runtimes[runtime]
    if not runtimes:
        config.pop("runtimes", None)
    if not config:
        try:
            os.unlink(config_file)
        except OSError as exc:
            raise InstallError(f"cannot remove {config_file}: {exc.strerror}") from None
        return True
    _write(config_file, config)
    return False
