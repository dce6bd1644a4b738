"""Who the benchmarks compare: native, pyvisor, and gVisor on two platforms.

- ``runsc``: Debian bookworm's gVisor (2022, ``apt-get install runsc``) on the
  ptrace platform: the bar of earlier rounds.
- ``systrap``: Debian trixie's gVisor (2024) on the systrap platform, gVisor's
  current default and this project's bar. Bookworm does not ship it, so
  ``bench/get_runsc_2024.sh`` fetches trixie's .deb through apt (a temporary
  source list, the system's own left alone) and extracts its static binary to
  /opt/runsc-2024; ``PYVISOR_RUNSC_2024`` names another path.

Debian's 2024 build panics in its Sentry on some heavier runs (a Go runtime
mismatch in that build, not ours): a case where it panics is skipped with that
reason instead of failing (see :func:`is_gvisor_panic`).

Plain module, not a conftest: the suites import ``RUNNERS`` from here (bench/
is on sys.path when pytest collects it).
"""

from __future__ import annotations

import os
import shutil

RUNNERS = ("native", "pyvisor", "runsc", "systrap")
GVISOR = ("runsc", "systrap")
RUNSC_FLAGS = ("--platform=ptrace", "--network=none")
SYSTRAP_FLAGS = ("--platform=systrap", "--network=none")
RUNSC_2024_DEFAULT = "/opt/runsc-2024/usr/bin/runsc"


def gvisor_cli(runner: str) -> list[str] | str:
    """``runner``'s runsc with its flags (global flags, before a command), or
    the reason it cannot run here."""
    if os.geteuid() != 0:
        return "runsc needs root"
    if runner == "runsc":
        exe = shutil.which("runsc")
        if exe is None:
            return "gVisor 2022 (ptrace) is not installed (apt-get install -y runsc)"
        return [exe, *RUNSC_FLAGS]
    exe = os.environ.get("PYVISOR_RUNSC_2024", RUNSC_2024_DEFAULT)
    if not os.access(exe, os.X_OK):
        return f"gVisor 2024 (systrap) is not at {exe} (bench/get_runsc_2024.sh fetches it)"
    return [exe, *SYSTRAP_FLAGS]


def is_gvisor_panic(stderr: str) -> bool:
    """Whether a failed gVisor run died in its own Go runtime (Debian's 2024
    build), rather than the workload failing."""
    return "panic:" in stderr or "fatal error:" in stderr or "SIGSEGV" in stderr
