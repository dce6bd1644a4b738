"""Shared machinery for the end-to-end tests that drive real container tooling
(Docker, podman, containerd) at runsc.py: a busybox image built from nothing
but /bin/busybox, and daemons started in throw-away directories.

Facts that shape this module:

- No registry is reachable, so every image is built here: a root filesystem
  holding a static /bin/busybox and its applet links, as a plain tar (`docker
  import`, `podman import`) or as an OCI image layout tar (`ctr import`),
  assembled by hand (oci-layout, index.json, manifest, config, one layer) so
  the containerd test does not depend on Docker.
- A daemon is started with every path it writes to (data root, exec root,
  socket, pid file) under one temporary directory, so the host's own daemons
  and images are never touched, and the directory is removed at the end.  Its
  unix sockets live under that directory too, and sun_path holds 108 bytes:
  the directory is a short one directly under /tmp, not pytest's deep tmp_path.
- Every subprocess has a timeout, and a daemon that does not answer within
  START_TIMEOUT is killed: never a hang.  A tool that is not installed skips
  its module with the reason.  A tool that is installed but whose daemon,
  image import or runc sanity run fails (:func:`unavailable`) skips on a
  developer's machine and FAILS under ``CI=true``: CI installs every tool, so
  there a skip would hide a broken harness or machine behind a green run.
  The reason is one line; the daemon's log tail goes to stderr.
- Tools run the runtime with environments of their own: podman's cleanup
  process gets an *empty* environment, so ``#!/usr/bin/env python3`` finds
  /usr/bin/python3, which may not be the interpreter pyvisor is installed in.
  :func:`launcher` writes the launcher ``runsc.py install`` registers, which
  names this very interpreter, into the session's own directory (never the
  checkout); daemons are also started with this interpreter's directory
  first on PATH.
- ``PYVISOR_E2E_DOCKERD_CONFIG`` names a JSON object merged into the
  daemon.json the Docker module writes: to try a daemon setting, or to see
  that a dockerd that will not start fails the module under ``CI=true``.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

import pytest
from helpers import runsc_in

REPO = Path(__file__).resolve().parent.parent
RUNSC = REPO / "runsc.py"
BUSYBOX = Path("/bin/busybox")
APPLETS = ("sh", "echo", "true", "false", "sleep", "cat", "ls", "tty", "env", "id", "test",
           "[", "stty")
START_TIMEOUT = 60.0  # seconds for a daemon to answer
CMD_TIMEOUT = 120.0  # seconds for one client command (a container run included)
LOG_TAIL = 2000  # characters of a daemon's log quoted in a skip or failure


def which(name: str,
          prefer: Sequence[str] = ("/usr/bin", "/usr/sbin", "/bin", "/sbin")) -> str | None:
    """``name`` on PATH, preferring the distribution's directories.

    Why: the lead's machine has a newer docker client in /usr/local/bin that
    comes first on PATH; the one that matches the packaged daemon is in /usr/bin.
    """
    for d in prefer:
        p = os.path.join(d, name)
        if os.access(p, os.X_OK):
            return p
    return shutil.which(name)


def tool_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for tools and daemons: this interpreter's bin dir first on
    PATH, so that runsc.py's ``#!/usr/bin/env python3`` finds the Python that
    has pyvisor's dependencies."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([os.path.dirname(sys.executable),
                                   env.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")])
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if extra:
        env.update(extra)
    return env


def short_tmpdir(prefix: str) -> Path:
    """A fresh directory directly under /tmp (socket paths must stay short)."""
    return Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))


def launcher(directory: Path) -> Path:
    """The launcher ``runsc.py install`` registers (sentry/oci/launcher.py),
    written here: it names this interpreter, so it runs whatever PATH is."""
    from sentry.oci import launcher as oci_launcher

    path = directory / oci_launcher.NAME
    path.write_text(oci_launcher.render(str(RUNSC)))
    path.chmod(0o755)
    return path


def in_ci() -> bool:
    """True under CI (``CI=true``, as CI services set it)."""
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def unavailable(reason: str, detail: str = "") -> NoReturn:
    """An installed tool that cannot be set up here (its daemon does not start,
    an image import or a runc sanity run fails): a skip with ``reason`` on a
    developer's machine, a failure under CI=true.  ``reason`` is made one
    line; ``detail`` (a log tail) goes to stderr, shown with the report."""
    line = " ".join(reason.split())
    if detail:
        print(detail, file=sys.stderr)
    if in_ci():
        pytest.fail(f"CI=true: {line}", pytrace=False)
    pytest.skip(line)


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1][-300:] if lines else "(empty)"


# -- the image -------------------------------------------------------------------


def require_busybox() -> Path:
    """/bin/busybox, which must be static: it is the whole image."""
    if not BUSYBOX.is_file():
        pytest.skip("/bin/busybox missing: apt-get install -y busybox-static")
    with open(BUSYBOX, "rb") as f:
        head = f.read(1 << 16)
    if b".interp" in head or b"ld-linux" in head:
        pytest.skip("/bin/busybox is dynamically linked: apt-get install -y busybox-static")
    return BUSYBOX


def _add(tar: tarfile.TarFile, name: str, *, kind: bytes = tarfile.DIRTYPE, mode: int = 0o755,
         data: bytes = b"", link: str = "") -> None:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.mtime = kind, mode, 0
    info.uid = info.gid = 0
    if kind == tarfile.SYMTYPE:
        info.linkname = link
        tar.addfile(info)
    elif kind == tarfile.REGTYPE:
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    else:
        tar.addfile(info)


def rootfs_tar_bytes() -> bytes:
    """A root filesystem tar: /bin/busybox, its applet links and empty standard
    directories (Docker bind-mounts /etc/hosts etc. onto files it creates)."""
    busybox = require_busybox().read_bytes()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for d in ("bin", "dev", "etc", "proc", "sys", "tmp", "root"):
            _add(tar, d, mode=0o1777 if d == "tmp" else 0o755)
        _add(tar, "bin/busybox", kind=tarfile.REGTYPE, data=busybox)
        for a in APPLETS:
            _add(tar, f"bin/{a}", kind=tarfile.SYMTYPE, link="busybox")
        _add(tar, "etc/passwd", kind=tarfile.REGTYPE, mode=0o644,
             data=b"root:x:0:0:root:/root:/bin/sh\n")
        _add(tar, "etc/group", kind=tarfile.REGTYPE, mode=0o644, data=b"root:x:0:\n")
    return buf.getvalue()


def write_rootfs_tar(path: Path) -> Path:
    path.write_bytes(rootfs_tar_bytes())
    return path


def write_oci_archive(path: Path, ref: str, cmd: Sequence[str] = ("/bin/sh",)) -> Path:
    """An OCI image layout tar (image-spec 1.0) that ``ctr import`` accepts:
    oci-layout, index.json naming ``ref``, and blobs for one manifest, one
    config (its Cmd ``cmd``) and one gzipped layer."""
    layer = rootfs_tar_bytes()
    layer_gz = gzip.compress(layer, mtime=0)
    blobs: dict[str, bytes] = {}

    def blob(data: bytes) -> dict[str, object]:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        blobs[digest] = data
        return {"digest": digest, "size": len(data)}

    config = json.dumps({
        "architecture": "amd64", "os": "linux",
        "config": {"Env": ["PATH=/bin"], "Cmd": list(cmd)},
        "rootfs": {"type": "layers",
                   "diff_ids": ["sha256:" + hashlib.sha256(layer).hexdigest()]},
        "history": [{"created_by": "pyvisor tests/e2e.py"}],
    }).encode()
    manifest = json.dumps({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **blob(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    **blob(layer_gz)}],
    }).encode()
    index = json.dumps({
        "schemaVersion": 2,
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                       **blob(manifest),
                       "platform": {"architecture": "amd64", "os": "linux"},
                       "annotations": {"org.opencontainers.image.ref.name": ref,
                                       "io.containerd.image.name": ref}}],
    }).encode()
    with tarfile.open(path, "w") as tar:
        _add(tar, "blobs")
        _add(tar, "blobs/sha256")
        for digest, data in blobs.items():
            _add(tar, "blobs/sha256/" + digest.split(":", 1)[1], kind=tarfile.REGTYPE,
                 mode=0o644, data=data)
        _add(tar, "oci-layout", kind=tarfile.REGTYPE, mode=0o644,
             data=b'{"imageLayoutVersion": "1.0.0"}')
        _add(tar, "index.json", kind=tarfile.REGTYPE, mode=0o644, data=index)
    return path


# -- running things ----------------------------------------------------------------


def run(argv: Sequence[str], *, env: dict[str, str] | None = None,
        timeout: float = CMD_TIMEOUT, input: bytes | None = None,
        ) -> subprocess.CompletedProcess[str]:
    """Run a client command; a timeout fails the test with what it printed."""
    try:
        return subprocess.run(list(argv), env=env, input=input.decode() if input else None,
                              stdin=None if input else subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        out = (exc.stdout or b"") + (exc.stderr or b"")
        text = out.decode(errors="replace") if isinstance(out, bytes) else str(out)
        pytest.fail(f"{' '.join(argv)}: no answer within {timeout:g} s: {text[-LOG_TAIL:]}")


def log_tail(path: Path, chars: int = LOG_TAIL) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return "(no log)"


def _mounts_under(root: Path) -> list[str]:
    out = []
    with contextlib.suppress(OSError), open("/proc/self/mountinfo") as f:
        for line in f:
            mnt = line.split()[4].replace("\\040", " ")
            if mnt == str(root) or mnt.startswith(str(root) + "/"):
                out.append(mnt)
    return out


def kill_leftovers(root: Path) -> list[int]:
    """SIGKILL every process whose command line names ``root``: shims, sandbox
    hosts and Gofers that this session's daemon started and that outlived it
    (a containerd shim survives its daemon by design; a container whose
    create never returned keeps its shim).  ``root`` is unique to the session,
    so nothing else matches."""
    killed = []
    needle = str(root).encode()
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as f:
                if needle not in f.read():
                    continue
            os.kill(int(name), signal.SIGKILL)
            killed.append(int(name))
        except (OSError, ProcessLookupError):
            continue
    return killed


def remove_tree(root: Path) -> None:
    """rm -rf, after killing what is left of the session's processes and lazily
    unmounting anything left mounted below it (overlay layers, shm, netns
    files): rmtree must never cross into a mount."""
    kill_leftovers(root)
    for mnt in sorted(_mounts_under(root), key=len, reverse=True):
        subprocess.run(["umount", "-l", mnt], capture_output=True, timeout=30, check=False)
    if _mounts_under(root):
        return  # leave it rather than delete through a mount point
    shutil.rmtree(root, ignore_errors=True)


@dataclass
class Daemon:
    """A daemon process started by a test session, with its log in a file."""

    name: str
    argv: list[str]
    log: Path
    env: dict[str, str]
    proc: subprocess.Popen[bytes] | None = None
    stopped: bool = field(default=False)

    def start(self) -> None:
        with open(self.log, "ab") as logf:
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=logf,
                                         stderr=subprocess.STDOUT, env=self.env,
                                         start_new_session=True)

    def why(self, res: subprocess.CompletedProcess[str]) -> str:
        """What to print when a check fails: the command's output and this daemon's log."""
        return (f"exit {res.returncode}\nstdout: {res.stdout[-1000:]}\n"
                f"stderr: {res.stderr[-1000:]}\n{self.name} log ends:\n"
                f"{log_tail(self.log, 1500)}")

    def wait_ready(self, probe: Sequence[str], timeout: float = START_TIMEOUT) -> None:
        """Poll ``probe`` until it succeeds; :func:`unavailable` (after stopping)
    if it never does."""
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.stop()
                tail = log_tail(self.log)
                unavailable(f"{self.name} exited with status {self.proc.returncode} at "
                            f"start-up: {_last_line(tail)}", f"{self.name} log ends:\n{tail}")
            try:
                res = subprocess.run(list(probe), env=self.env, capture_output=True, text=True,
                                     timeout=10, stdin=subprocess.DEVNULL)
            except subprocess.TimeoutExpired:
                last = "probe timed out"
            else:
                if res.returncode == 0:
                    return
                last = (res.stderr or res.stdout).strip()[-300:]
            time.sleep(0.2)
        self.stop()
        tail = log_tail(self.log)
        unavailable(f"{self.name} did not come up within {timeout:g} s: {_last_line(last)}",
                    f"{self.name} log ends:\n{tail}")

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM (a daemon's orderly shutdown), SIGKILL to the group if it lingers."""
        if self.stopped or self.proc is None:
            return
        self.stopped = True
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)


def start_dockerd(base: Path, dockerd: str, client: str,
                  more_runtimes: Callable[[Path], None] | None = None,
                  *, userland_proxy: bool = False) -> tuple[Daemon, dict[str, str]]:
    """dockerd in throw-away directories under ``base`` with runtime "pyvisor"
    registered by `runsc.py install --config-file` (and what ``more_runtimes``
    adds to that daemon.json, then PYVISOR_E2E_DOCKERD_CONFIG's object), once
    it answers; returns it and the environment that points a docker client at
    it.  ``userland_proxy``: `-p` served by docker-proxy (with iptables off,
    the only way a published port reaches the container).  A daemon that
    never answers is stopped and the module skipped, or failed under CI
    (Daemon.wait_ready).  The launcher `install` writes lands in ``base``,
    beside the runsc.py linked there, not in the checkout."""
    conf = base / "daemon.json"
    res = run([sys.executable, str(runsc_in(base)), "install", "--config-file", str(conf)])
    assert res.returncode == 0, f"runsc.py install failed: {res.stderr}"
    if more_runtimes is not None:
        more_runtimes(conf)
    override = os.environ.get("PYVISOR_E2E_DOCKERD_CONFIG")
    if override:
        cfg = json.loads(conf.read_text())
        cfg.update(json.loads(Path(override).read_text()))
        conf.write_text(json.dumps(cfg, indent=4))
    sock = base / "docker.sock"
    env = tool_env({"DOCKER_HOST": f"unix://{sock}", "DOCKER_CONFIG": str(base / "client")})
    daemon = Daemon(
        "dockerd",
        [dockerd, "--data-root", str(base / "data"), "--exec-root", str(base / "exec"),
         "-H", f"unix://{sock}", "--pidfile", str(base / "docker.pid"),
         "--config-file", str(conf), "--iptables=false", "--ip-masq=false",
         "--bridge=none", f"--userland-proxy={'true' if userland_proxy else 'false'}"],
        base / "dockerd.log", env)
    daemon.start()
    try:
        daemon.wait_ready([client, "version"])
    except BaseException:
        daemon.stop()
        raise
    return daemon, env


def require_tool(name: str) -> str:
    path = which(name)
    if path is None:
        pytest.skip(f"{name} is not installed (apt-get install -y docker.io containerd "
                    "podman runc)")
    return path


def require_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root: the daemons and the runtime create namespaces")


class PingServer:
    """A host TCP server for one connection from a container: it reads a line,
    keeps it in ``got`` and answers ``pong:`` + the line. Its thread keeps an
    OSError to itself (the test's asserts on ``got`` say what went wrong; an
    exception would surface as a thread warning on some later test)."""

    def __init__(self, host: str) -> None:
        v6 = ":" in host
        self.sock = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET)
        # IP_FREEBIND (15): a bridge's fresh IPv6 address may still be tentative (DAD).
        self.sock.setsockopt(socket.SOL_IP, 15, 1)
        self.sock.bind((host, 0))
        self.sock.listen()
        self.port = self.sock.getsockname()[1]
        self.got: list[bytes] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        with contextlib.suppress(OSError):
            conn, _ = self.sock.accept()
            with conn:
                data = b""
                while not data.endswith(b"\n"):
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                self.got.append(data)
                conn.sendall(b"pong:" + data)

    def close(self) -> None:
        self.sock.close()
