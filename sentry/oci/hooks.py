"""OCI hooks (runtime-spec config.md "POSIX-platform Hooks").

Each hook is a host program run with the container's state JSON on stdin,
``args`` as its whole argv (args[0] included, as execv takes it), exactly
``env`` as its environment, and ``timeout`` seconds to finish.  Which failures
matter is the spec's: a failing prestart / createRuntime / createContainer
hook aborts create; a failing poststart or poststop hook is logged and the
remaining hooks and the lifecycle go on.

startContainer hooks run *inside* the container in the spec (after start,
before the user program).  pyvisor cannot exec into a sandbox yet, so they are
logged as skipped rather than run on the host with the wrong view of the world.
"""

from __future__ import annotations

import json
import logging
import subprocess
from collections.abc import Sequence
from typing import Any

from sentry.oci.bundle import Hook

log = logging.getLogger("pyvisor")

DEFAULT_TIMEOUT = 60.0  # the spec gives no default; never wait forever


class HookError(Exception):
    """A hook that must succeed did not; one line naming the hook."""


def run_one(kind: str, index: int, hook: Hook, state: dict[str, Any]) -> None:
    """Run one hook; raise HookError on any failure."""
    name = f"{kind} hook #{index} ({hook.path})"
    argv = list(hook.args) or [hook.path]
    timeout = float(hook.timeout) if hook.timeout is not None else DEFAULT_TIMEOUT
    try:
        proc = subprocess.run(
            argv, executable=hook.path, input=json.dumps(state).encode(),
            env=dict(kv.split("=", 1) for kv in hook.env), capture_output=True,
            timeout=timeout, cwd=state.get("bundle") or "/", close_fds=True,
            start_new_session=True,
        )
    except subprocess.TimeoutExpired:
        raise HookError(f"{name}: timed out after {timeout:g} s") from None
    except OSError as exc:
        raise HookError(f"{name}: {exc.strerror or exc}") from None
    if proc.returncode != 0:
        tail = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        why = f": {tail[-1]}" if tail else ""
        status = (f"killed by signal {-proc.returncode}" if proc.returncode < 0
                  else f"exit status {proc.returncode}")
        raise HookError(f"{name}: {status}{why}")


def run_hooks(kind: str, hooks: Sequence[Hook], state: dict[str, Any], *,
              fatal: bool) -> None:
    """Run ``hooks`` in order.  ``fatal``: stop at the first failure and raise;
    otherwise log each failure as a warning and carry on."""
    for i, hook in enumerate(hooks):
        try:
            run_one(kind, i, hook, state)
        except HookError as exc:
            if fatal:
                raise
            log.warning("%s", exc)


def skip_in_container_hooks(hooks: Sequence[Hook]) -> None:
    if hooks:
        log.warning("%d startContainer hook(s) skipped: running hooks inside the sandbox "
                    "is not supported yet", len(hooks))


