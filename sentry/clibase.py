"""What every runsc.py entry needs, without click: the debug log set-up, the
privilege check, one-line failures and a quick exit.

Why a module of its own: the runtime calls a container shim makes
(sentry/oci/shimcalls.py) run without click to start in a few milliseconds,
and the click CLI in runsc.py must behave the same; both import these.
Nothing here imports more than os and sys at module level.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # typing stays unimported at run time: the shim path is timed
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

CAP_SYS_ADMIN = 21


def fail(message: str, code: int = 1) -> None:
    """``runsc.py: MESSAGE`` on stderr, then exit ``code``: errors are one line."""
    sys.stderr.write(f"runsc.py: {message}\n")
    sys.stderr.flush()
    sys.exit(code)


def setup_logging(debug: bool, debug_log: str | None, strace: bool) -> None:
    """The ``pyvisor`` logger: debug records with --debug, strace lines with
    --strace, to ``debug_log`` or else stderr.  A ``debug_log`` given without
    either still gets warnings, and is opened now either way, so a path that
    cannot be written is an error at once (as runsc opens its debug log),
    not only once --debug is added.  With neither and no file: silent (a
    NullHandler, so a warning never reaches stderr unasked)."""
    import logging

    log = logging.getLogger("pyvisor")
    log.propagate = False
    if not (debug or strace or debug_log):
        log.addHandler(logging.NullHandler())
        return
    try:
        handler: logging.Handler = (
            logging.FileHandler(debug_log) if debug_log else logging.StreamHandler(sys.stderr)
        )
    except OSError as exc:
        fail(f"cannot open debug log {debug_log}: {exc.strerror}")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname).1s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.DEBUG if debug else logging.INFO if strace else logging.WARNING)


def check_debug_log(debug_log: str | None) -> None:
    """Fail now if ``debug_log`` cannot be opened for appending, without
    importing logging: for the short calls that set up no logger."""
    if not debug_log:
        return
    try:
        os.close(os.open(debug_log, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC,
                         0o644))
    except OSError as exc:
        fail(f"cannot open debug log {debug_log}: {exc.strerror}")


def effective_caps() -> int:
    """This process's effective capability set (CapEff of /proc/self/status)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("CapEff:"):
                    return int(line.split()[1], 16)
    except OSError:
        pass
    return 0


def check_privileges() -> None:
    """The sandbox needs root with CAP_SYS_ADMIN (namespaces, mounts for the Gofer)."""
    if os.geteuid() != 0 or not effective_caps() & (1 << CAP_SYS_ADMIN):
        fail("needs root with CAP_SYS_ADMIN: the sandbox creates namespaces and "
             "seccomp filters (run it as root, e.g. with sudo)")


def exit_now(code: object) -> None:
    """sys.exit(code)'s outcome without the interpreter's teardown (~12 ms of
    CPU: module and object finalization), for commands whose work is done and
    that started no thread and need no atexit handler."""
    if code is None:
        status = 0
    elif isinstance(code, int):
        status = code
    else:  # sys.exit("message"): printed, status 1
        print(code, file=sys.stderr)
        status = 1
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            status = status or 120  # what Python reports for a failed flush at exit
    if "logging" in sys.modules:
        sys.modules["logging"].shutdown()
    os._exit(status & 0xFF)


def profile_printer(fmt: str) -> Callable[[dict[str, Any]], None]:
    """What `do --profile` hands the sandbox: prints the profile to stderr
    at exit, as a table or as JSON (one object)."""

    import json  # now: the Sentry cannot import once it is confined

    from sentry.kernel.profile import format_table

    def show(snap: dict[str, Any]) -> None:
        text = json.dumps(snap, indent=1) + "\n" if fmt == "json" else format_table(snap)
        sys.stderr.write(text)
        sys.stderr.flush()

    return show
