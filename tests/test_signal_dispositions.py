"""Ignored signals across exec, differential: Linux keeps SIG_IGN through
execve (signal(7)), so `nohup prog` runs prog with SIGHUP ignored and a
background job's programs start with SIGINT and SIGQUIT ignored.
`runsc.py do` is an exec of a host command and must pass them on; an OCI
container starts as runc starts it (runc resets every disposition).

Each run here starts from an exact disposition set made in the child before
exec (every catchable standard signal at default, then the chosen ones
ignored), so the result does not depend on how the test run itself was
started.  SIGPIPE and SIGXFSZ stay at default: Python ignores them itself,
so `runsc.py do` cannot tell whether its caller did (sandbox.inherited_ignores).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from helpers import RUNSC, sandbox_command

TIMEOUT = 60.0
CASES = {
    "none": (),
    "nohup": (signal.SIGHUP,),
    "background": (signal.SIGINT, signal.SIGQUIT),
    "hup-int": (signal.SIGHUP, signal.SIGINT),
}


def _dispositions(ignored: Sequence[int]) -> Callable[[], None]:
    """A preexec_fn: every catchable standard signal at default, then ``ignored``
    ignored, which the exec'd program inherits."""

    def apply() -> None:
        for sig in range(1, 32):
            if sig not in (signal.SIGKILL, signal.SIGSTOP):
                signal.signal(sig, signal.SIG_DFL)
        for sig in ignored:
            signal.signal(sig, signal.SIG_IGN)

    return apply


def _run(cmd: Sequence[str | os.PathLike[str]],
         ignored: Sequence[int]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([os.fspath(c) for c in cmd], stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=TIMEOUT,
                          preexec_fn=_dispositions(ignored), start_new_session=True)


def _mask(signals: Sequence[int]) -> str:
    return f"{sum(1 << (s - 1) for s in signals):016x}"


@pytest.mark.sandbox
@pytest.mark.parametrize("case", list(CASES))
def test_do_passes_on_ignored_signals(busybox: Path, case: str) -> None:
    """/proc/self/status's SigIgn and SigCgt as the program sees them."""
    ignored = CASES[case]
    argv = [busybox, "grep", "-E", "^Sig(Ign|Cgt)", "/proc/self/status"]
    nat = _run(argv, ignored)
    assert nat.returncode == 0 and f"SigIgn:\t{_mask(ignored)}" in nat.stdout, nat
    box = _run(sandbox_command(argv), ignored)
    assert (box.returncode, box.stdout) == (nat.returncode, nat.stdout), box.stderr


@pytest.mark.sandbox
@pytest.mark.parametrize("case", list(CASES))
def test_do_ignored_signals_act(busybox: Path, case: str) -> None:
    """What the dispositions do: a shell sends itself SIGHUP, then SIGINT, and
    survives only what it inherited ignored (a non-interactive shell cannot
    undo a signal ignored on entry)."""
    argv = [busybox, "sh", "-c", "kill -HUP $$; echo after-hup; kill -INT $$; echo after-int"]
    nat = _run(argv, CASES[case])
    box = _run(sandbox_command(argv), CASES[case])
    assert nat.returncode in (0, -signal.SIGHUP, -signal.SIGINT), nat
    status = 128 - nat.returncode if nat.returncode < 0 else nat.returncode
    assert (box.returncode, box.stdout) == (status, nat.stdout), box.stderr


@pytest.mark.sandbox
@pytest.mark.parametrize("case", ["nohup", "hup-int"])
def test_oci_container_starts_as_runc_starts_it(busybox: Path, tmp_path: Path,
                                                case: str) -> None:
    """runc resets dispositions for the container's process (SigIgn 0 under
    an ignored SIGHUP and SIGINT, checked on this machine); so does runsc."""
    if os.geteuid() != 0:
        pytest.skip("containers need root (namespaces, seccomp)")
    runc = shutil.which("runc")
    if runc is None:
        pytest.skip("runc is not installed (apt-get install -y runc)")
    b = tmp_path / "bundle"
    (b / "rootfs" / "bin").mkdir(parents=True)
    shutil.copy(busybox, b / "rootfs/bin/busybox")
    subprocess.run([runc, "spec", "--bundle", str(b)], check=True, timeout=30)
    cfg = json.loads((b / "config.json").read_text())
    cfg["process"].update(args=["/bin/busybox", "grep", "-E", "^Sig(Ign|Cgt)",
                                "/proc/self/status"], terminal=False)
    (b / "config.json").write_text(json.dumps(cfg))
    name = f"sigdisp-{uuid.uuid4().hex[:8]}"
    ignored = CASES[case]
    ref = _run([runc, "--root", tmp_path / "runc-root", "run", "--bundle", b, name], ignored)
    assert ref.returncode == 0 and "SigIgn" in ref.stdout, ref
    ours = _run([sys.executable, RUNSC, "--root", tmp_path / "state", "run", "--bundle", b,
                 name], ignored)
    assert (ours.returncode, ours.stdout) == (ref.returncode, ref.stdout), ours.stderr
