"""Fault injection for tests: ``PYVISOR_FAULT=<stage>`` makes the process that
reaches that named stage SIGKILL itself there; ``PYVISOR_FAULT=handler:NAME``
(or ``handler:NAME:efault``) makes the Sentry's handler of syscall NAME raise
a Python exception on every call.

Why: a sandbox can die at any point of its start-up (the OOM killer under a
small memory limit, a user's kill -9), and nothing of it may outlive it: no
process, no /dev/shm object, no state directory.  tests/test_startup_faults.py
kills the Sentry and the Gofer at each stage listed in :data:`STAGES` and looks
for what is left.  It lives in shm/, the bottom layer, so the Gofer can use it
without importing the Sentry's modules.

The handler form tests fault containment (sentry/kernel/contain.py): a
handler's bug must give the calling task an errno (EIO; EFAULT for the
``efault`` kind, which raises what decoding a short application buffer
raises) and leave the Sentry serving.

Unset (every real run), :func:`at` is one comparison with None and
:func:`wrap_handlers` returns at once, changing nothing.
"""

from __future__ import annotations

import os
import signal
import struct
from collections.abc import Callable, MutableSequence
from typing import Any

# Every stage a test may name, in start-up order; :func:`at` refuses others so
# a renamed stage cannot silently stop being tested.
STAGES = (
    "sentry-start",            # the Sentry, just forked from the sandbox host
    "sentry-preforked",        # the Gofer's process forked, waiting for its argv
    "sentry-channel",          # the Gofer channel's /dev/shm objects made
    "sentry-gofer-spawned",    # the Gofer has its argv (the channel's name)
    "sentry-gofer-connected",  # the Gofer answered (both ends open the channel)
    "sentry-rootfs",           # the mount tree built
    "sentry-memory-file",      # the application memory file made
    "sentry-platform",         # the zygote stub started
    "sentry-launched",         # the init loaded in its stub
    "sentry-confined",         # the Sentry's seccomp filter on
    "gofer-forked",            # the Gofer's process, just forked
    "gofer-argv",              # the Gofer has its argv
    "gofer-channel",           # the Gofer has opened the channel
    "gofer-root",              # the Gofer has opened the root and the mounts
    "gofer-confined",          # the Gofer confined (namespaces, seccomp)
)

_STAGE = os.environ.get("PYVISOR_FAULT") or None


def at(stage: str) -> None:
    """SIGKILL this process if ``stage`` is the one PYVISOR_FAULT names."""
    if _STAGE is not None and stage == _STAGE:
        if stage not in STAGES:
            raise ValueError(f"unknown fault stage {stage!r}")
        os.kill(os.getpid(), signal.SIGKILL)


HANDLER_PREFIX = "handler:"


class InjectedFault(RuntimeError):
    """What an injected handler fault raises (a stand-in for any Sentry bug)."""


def _raiser(name: str, kind: str) -> Callable[[Any, Any], int]:
    def handler(task: Any, args: Any) -> int:
        if kind == "efault":
            struct.unpack("<Q", b"")  # raises struct.error, as a short buffer does
        raise InjectedFault(f"injected fault in the {name} handler")
    return handler


def wrap_handlers(dispatch: MutableSequence[Any], name_of: Callable[[int], str]) -> None:
    """With ``PYVISOR_FAULT=handler:NAME[:efault]``, replace the handler of
    syscall NAME in ``dispatch`` (the table's list by number) by one that
    raises; otherwise do nothing."""
    if _STAGE is None or not _STAGE.startswith(HANDLER_PREFIX):
        return
    name, _, kind = _STAGE[len(HANDLER_PREFIX):].partition(":")
    if kind not in ("", "efault"):
        raise ValueError(f"unknown handler fault kind {kind!r}")
    hits = [nr for nr in range(len(dispatch)) if name_of(nr) == name]
    if not hits:
        raise ValueError(f"unknown syscall {name!r} in PYVISOR_FAULT")
    for nr in hits:
        dispatch[nr] = _raiser(name, kind)
