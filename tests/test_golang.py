"""Go programs, differential: what Go's runtime and toolchain need from the kernel.

Go's runtime starts threads with clone, parks them on futexes, waits for
files in an edge-triggered epoll netpoller, preempts goroutines with SIGURG
sent by tgkill, and its os/exec waits for each child with waitid(WNOWAIT)
then wait4 while other children exit around it (``go build`` runs its
compilers that way).  The programs in tests/programs/go/ are built natively
with ``go build`` (static, CGO_ENABLED=0) and run natively and in the sandbox;
``go build`` itself also runs in the sandbox.  C programs pin down the
kernel faults Go met: a wait that spun holding the kernel lock
(wait_selective.c), epoll accepting files it cannot wait on (epoll_kinds.c),
EPOLLET treated as level-triggered (epoll_edge.c), and an edge lost when a
signal came with it (epoll_signal_edge.c).  Needs Debian's
``golang-go``; skipped without it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from helpers import PROGRAMS_DIR, Programs, run_native, run_sandbox, shell_status

GO_DIR = PROGRAMS_DIR / "go"
GO_PROGRAMS = sorted(p.stem for p in GO_DIR.glob("*.go"))
BUILD_TIMEOUT = 110.0  # go build in the sandbox: 5-15 s; under faulthandler_timeout (120 s)

# A hello-world module, as a user would build it.
MODULE_FILES = {
    "go.mod": "module example.com/hello\n\ngo 1.19\n",
    "main.go": ('package main\n\nimport "fmt"\n\n'
                'func main() { fmt.Println("built in the sandbox") }\n'),
}


def _go_env(home: Path) -> dict[str, str]:
    """An offline, self-contained Go environment under ``home`` (no network,
    no user cache), with GOMAXPROCS left to the runtime."""
    return {
        "HOME": str(home), "GOCACHE": str(home / "cache"), "GOPATH": str(home / "gopath"),
        "GOFLAGS": "-mod=mod", "GOPROXY": "off", "GOTOOLCHAIN": "local", "CGO_ENABLED": "0",
        "PATH": "/usr/local/bin:/usr/bin:/bin",
    }


@pytest.fixture(scope="session")
def go() -> str:
    path = shutil.which("go")
    if path is None:
        pytest.skip("go not found: Go programs cannot be built (apt-get install golang-go)")
    return path


@pytest.fixture(scope="session")
def go_programs(go: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every tests/programs/go/*.go built natively once, as a static binary."""
    build = tmp_path_factory.mktemp("go")
    env = {k: v for k, v in os.environ.items() if k != "GOMAXPROCS"}
    env.update(_go_env(build / "home"))
    built = {}
    for name in GO_PROGRAMS:
        out = build / name
        proc = subprocess.run([go, "build", "-o", str(out), str(GO_DIR / f"{name}.go")],
                              env=env, capture_output=True, text=True, timeout=300)
        if proc.returncode != 0:
            pytest.fail(f"go build {name}.go failed:\n{proc.stderr}")
        built[name] = out
    return built


def _sandbox_env() -> dict[str, str]:
    return {"PATH": "/usr/bin:/bin"}


@pytest.mark.sandbox
@pytest.mark.parametrize("name", GO_PROGRAMS)
def test_go_program(go_programs: dict[str, Path], name: str) -> None:
    """hello, goroutines (1000 of them over channels, timers, a mutex),
    preempt (tight loops only SIGURG can stop; GC stops the world over them),
    execs (children started and awaited from four goroutines at once)."""
    argv = [go_programs[name], "/bin/sh"]
    nat = run_native(argv)
    box = run_sandbox(argv, env=_sandbox_env())
    assert nat.returncode == 0, nat.describe()
    assert "Traceback" not in box.err, box.describe()
    assert box.out == nat.out, box.describe()
    assert box.returncode == shell_status(nat.returncode), box.describe()


@pytest.mark.sandbox
@pytest.mark.parametrize("prog", ["wait_selective", "epoll_kinds", "epoll_edge",
                                  "epoll_signal_edge"])
def test_runtime_kernel_fault(programs: Programs, prog: str) -> None:
    """The kernel faults Go's runtime met, as small C programs: a wait that
    spun holding the kernel lock (go build hung), epoll accepting files it
    cannot wait on, EPOLLET reported level-triggered (the netpoller spun), and
    an edge lost to a signal that arrived with it (go build waited forever on
    a finished compiler's pipe)."""
    path = programs.path(prog)
    nat = run_native([path])
    box = run_sandbox([path])
    assert nat.returncode == 0, nat.describe()
    assert box.out == nat.out, box.describe()
    assert box.returncode == shell_status(nat.returncode), box.describe()


@pytest.mark.sandbox
def test_go_build_in_sandbox(go: str, tmp_path: Path) -> None:
    """``go build`` of a small module inside the sandbox, GOMAXPROCS unset:
    the go command runs compile and link concurrently and waits for them."""
    module = tmp_path / "mod"
    module.mkdir()
    for name, text in MODULE_FILES.items():
        (module / name).write_text(text)
    out = tmp_path / "hello-built"
    env = _go_env(tmp_path / "home")
    box = run_sandbox([os.path.realpath(go), "build", "-o", str(out), "."],
                      extra_flags=["--cwd", str(module), "-v", f"{tmp_path}:{tmp_path}"],
                      env=env, timeout=BUILD_TIMEOUT)
    assert "Traceback" not in box.err, box.describe()
    assert box.returncode == 0, box.describe()
    data = out.read_bytes()
    assert data.strip(b"\0"), f"the Go linker's output (written through a MAP_SHARED " \
        f"mapping) is {len(data)} zero bytes"
    ran = run_native([out])
    assert ran.out == "built in the sandbox\n", ran.describe()
    box_ran = run_sandbox([out])
    assert box_ran.out == ran.out, box_ran.describe()
