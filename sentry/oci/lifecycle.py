"""OCI operations as runc's CLI offers them: create, start, state, kill, delete,
run, wait, list, ps.  ``runsc.py`` maps its commands onto these functions and
turns :class:`OciError` into one line on stderr.

Ordering rules that keep "nothing left behind" true:

- ``create`` validates the bundle before it makes anything; after the state
  directory exists, any failure kills the sandbox host it spawned and removes
  the directory before the error is raised.
- ``create`` holds the container's lock until the sandbox is ready and the
  create-time hooks have run, so a concurrent ``start`` / ``delete`` on the
  same id waits for a finished container instead of racing a half-built one.
- ``delete`` first makes sure the sandbox host is gone (SIGKILL through the
  control socket, then to the verified host pid), then removes the directory,
  then runs poststop hooks, as the spec orders them.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import select
import signal
import subprocess
import threading
import time
from collections.abc import Sequence
from typing import Any

from sentry.oci import bundle, control, hooks
from sentry.oci.state import (
    CONFIG_COPY,
    Container,
    NotFound,
    StateError,
    StateRoot,
    host_alive,
    validate_id,
)

READY_TIMEOUT = 90.0
STOP_TIMEOUT = 10.0
UNKNOWN_EXIT = 255  # the host died without recording a status (e.g. SIGKILLed)


class OciError(Exception):
    """A one-line reason an OCI command failed."""


def parse_signal(value: str) -> int:
    """``TERM``, ``SIGTERM``, ``sigterm`` or ``15`` -> 15 (runc's forms)."""
    v = value.strip()
    if v.isdigit():
        n = int(v)
        if 1 <= n <= 64:
            return n
        raise OciError(f"invalid signal {value!r}")
    name = v.upper().removeprefix("SIG")
    with contextlib.suppress(KeyError):
        return int(signal.Signals["SIG" + name])
    m = re.fullmatch(r"RT(MIN|MAX)([+-]\d+)?", name)
    if m:
        n = (signal.SIGRTMIN if m[1] == "MIN" else signal.SIGRTMAX) + int(m[2] or 0)
        if signal.SIGRTMIN <= n <= signal.SIGRTMAX:
            return int(n)
    raise OciError(f"invalid signal {value!r}")


def _saved_hooks(c: Container) -> dict[str, tuple[bundle.Hook, ...]]:
    try:
        with open(os.path.join(c.dir, CONFIG_COPY), "rb") as f:
            return bundle.parse_hooks(json.loads(f.read()).get("hooks"))
    except (OSError, ValueError, bundle.BundleError):
        return {}


def _hook_state(c: Container, status: str | None = None) -> dict[str, Any]:
    st = c.public()
    if status is not None:
        st["status"] = status
    return st


def _write_pid_file(path: str, pid: int) -> None:
    """Atomically, as runc does: a reader never sees an empty file."""
    path = os.path.abspath(path)
    tmp = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.{os.getpid()}")
    with open(tmp, "w") as f:
        f.write(str(pid))
    os.rename(tmp, path)


def _await_ready(proc: subprocess.Popen[bytes], fd: int, timeout: float) -> dict[str, Any]:
    """The host's one JSON line on the ready pipe (EOF means it died first)."""
    deadline = time.monotonic() + timeout
    buf = b""
    while b"\n" not in buf:
        left = deadline - time.monotonic()
        if left <= 0:
            return {"ok": False, "error": f"the sandbox was not ready within {timeout:g} s"}
        r, _, _ = select.select([fd], [], [], min(left, 1.0))
        if not r:
            continue
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        buf += chunk
    try:
        msg = json.loads(buf.split(b"\n", 1)[0])
    except ValueError:
        code = proc.wait(timeout=10)
        return {"ok": False, "error": f"the sandbox host exited with status {code}"}
    return msg if isinstance(msg, dict) else {"ok": False, "error": "bad ready message"}


def _stop_host(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=STOP_TIMEOUT)


def create(root: str, cid: str, bundle_dir: str, *, host_argv: Sequence[str],
           pid_file: str | None = None, console_socket: str | None = None,
           detach: bool = True) -> subprocess.Popen[bytes]:
    """Create container ``cid``; returns the sandbox host process (status created).

    ``host_argv`` is the command line that runs ``sandbox-serve`` (runsc.py and
    its global flags); the container id and bundle are appended.
    """
    try:
        validate_id(cid)
        b = bundle.load(bundle_dir)
    except (StateError, bundle.BundleError) as exc:
        raise OciError(str(exc)) from None
    if b.process.terminal:
        raise OciError("process.terminal: terminals are not supported yet"
                       if console_socket or not detach else
                       "process.terminal: needs --console-socket when detached")
    if console_socket:
        raise OciError("--console-socket: only for process.terminal (not supported yet)")
    try:
        c = StateRoot(root).new_container(cid)
    except (OSError, StateError) as exc:
        raise OciError(str(exc)) from None
    proc: subprocess.Popen[bytes] | None = None
    try:
        with c.locked():
            with open(os.path.join(c.dir, CONFIG_COPY), "w") as f:
                json.dump(b.raw, f)
            r, w = os.pipe()
            try:
                proc = subprocess.Popen(
                    [*host_argv, "sandbox-serve", "--bundle", b.path, "--ready-fd", str(w), cid],
                    pass_fds=(w,), start_new_session=True)
            finally:
                os.close(w)
            try:
                msg = _await_ready(proc, r, READY_TIMEOUT)
            finally:
                os.close(r)
            if not msg.get("ok"):
                raise OciError(str(msg.get("error") or "the sandbox failed to start"))
            state = _hook_state(c, "created")
            try:
                hooks.run_hooks("prestart", b.hooks.get("prestart", ()), state, fatal=True)
                hooks.run_hooks("createRuntime", b.hooks.get("createRuntime", ()), state,
                                fatal=True)
                hooks.run_hooks("createContainer", b.hooks.get("createContainer", ()), state,
                                fatal=True)
            except hooks.HookError as exc:
                _stop_host(proc)
                hooks.run_hooks("poststop", b.hooks.get("poststop", ()),
                                _hook_state(c, "stopped"), fatal=False)
                raise OciError(str(exc)) from None
            if pid_file:
                _write_pid_file(pid_file, proc.pid)
        return proc
    except BaseException as exc:
        if proc is not None:
            _stop_host(proc)
        c.remove()
        if isinstance(exc, OSError):
            raise OciError(f"create: {exc}") from None
        raise


def _open(root: str, cid: str) -> Container:
    try:
        return StateRoot(root).container(cid)
    except StateError as exc:
        raise OciError(str(exc)) from None


def start(root: str, cid: str) -> None:
    c = _open(root, cid)
    try:
        with c.locked():
            st = c.current()
            if st["status"] != "created":
                raise OciError(f"cannot start a container that is {st['status']}")
            control.request(c.socket_path, {"op": "start"})
            saved = _saved_hooks(c)
            hooks.skip_in_container_hooks(saved.get("startContainer", ()))
            hooks.run_hooks("poststart", saved.get("poststart", ()), _hook_state(c, "running"),
                            fatal=False)
    except (StateError, control.ControlError) as exc:
        raise OciError(str(exc)) from None


def state(root: str, cid: str) -> dict[str, Any]:
    c = _open(root, cid)
    try:
        return c.public()
    except StateError as exc:
        raise OciError(str(exc)) from None


def kill(root: str, cid: str, sig: int, all_: bool = False) -> None:
    c = _open(root, cid)
    try:
        st = c.current()
        if st["status"] not in ("created", "running"):
            raise OciError(f"container {cid!r} is not running")
        control.request(c.socket_path, {"op": "kill", "signal": sig, "all": all_})
    except (StateError, control.ControlError) as exc:
        raise OciError(str(exc)) from None


def _ensure_stopped(c: Container, st: dict[str, Any]) -> None:
    """SIGKILL the container and wait until its host process is gone."""
    pid, start_time = int(st.get("pid") or 0), st.get("hostStartTime")
    if not host_alive(pid, start_time):
        return
    with contextlib.suppress(control.ControlError):
        control.request(c.socket_path, {"op": "kill", "signal": signal.SIGKILL, "all": True},
                        timeout=5.0)
    deadline = time.monotonic() + STOP_TIMEOUT
    escalate = time.monotonic() + 3.0
    while host_alive(pid, start_time):
        now = time.monotonic()
        if now > deadline:
            raise OciError(f"container {c.id!r}: sandbox process {pid} did not exit")
        if now > escalate:
            escalate = deadline  # once: the pid was just verified by its start time
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.02)


def delete(root: str, cid: str, force: bool = False) -> None:
    try:
        c = StateRoot(root).container(cid)
    except NotFound as exc:
        if force:
            return  # runc: deleting a missing container with --force succeeds
        raise OciError(str(exc)) from None
    except StateError as exc:
        raise OciError(str(exc)) from None
    try:
        with c.locked():
            st = c.current()
            status = st["status"]
            if status == "running" and not force:
                raise OciError(f"cannot delete container {cid!r} that is not stopped: running")
            if status == "creating" and not force:
                raise OciError(f"container {cid!r} is being created (use --force)")
            _ensure_stopped(c, st)
            saved = _saved_hooks(c)
            final = c.public()
            final["status"] = "stopped"
            c.remove()
    except NotFound:
        if force:
            return
        raise OciError(f"container {cid!r} does not exist") from None
    except (StateError, OSError) as exc:
        raise OciError(f"delete {cid}: {exc}") from None
    hooks.run_hooks("poststop", saved.get("poststop", ()), final, fatal=False)


def wait(root: str, cid: str) -> int:
    """Block until the container's init exits; its exit code (shell-style)."""
    c = _open(root, cid)
    try:
        st = c.current()
        if st["status"] in ("created", "running"):
            with contextlib.suppress(control.ControlError):
                reply = control.request(c.socket_path, {"op": "wait"}, timeout=None)
                code = reply.get("exitStatus")
                if isinstance(code, int):
                    return code
            deadline = time.monotonic() + STOP_TIMEOUT
            while c.current()["status"] != "stopped" and time.monotonic() < deadline:
                time.sleep(0.02)
        code = c.current().get("exitStatus")
    except StateError as exc:
        raise OciError(str(exc)) from None
    return code if isinstance(code, int) else UNKNOWN_EXIT


def list_containers(root: str) -> list[dict[str, Any]]:
    sr = StateRoot(root)
    out = []
    for cid in sr.ids():
        with contextlib.suppress(StateError):
            out.append(Container(sr, cid).public())
    return out


def ps(root: str, cid: str) -> list[dict[str, Any]]:
    c = _open(root, cid)
    try:
        if c.current()["status"] == "stopped":
            return []
        reply = control.request(c.socket_path, {"op": "ps"})
    except (StateError, control.ControlError) as exc:
        raise OciError(str(exc)) from None
    procs = reply.get("processes")
    return procs if isinstance(procs, list) else []


def run(root: str, cid: str, bundle_dir: str, *, host_argv: Sequence[str],
        pid_file: str | None = None, console_socket: str | None = None,
        detach: bool = False) -> int:
    """create + start; unless ``detach``, wait, delete and return the exit code.

    In the foreground, signals sent to this process are forwarded to the
    container (as runc run does), and the container is deleted when it exits.
    """
    proc = create(root, cid, bundle_dir, host_argv=host_argv, pid_file=pid_file,
                  console_socket=console_socket, detach=detach)
    try:
        start(root, cid)
    except OciError:
        with contextlib.suppress(OciError):
            delete(root, cid, force=True)
        raise
    if detach:
        return 0

    def forward(signum: int, _frame: object) -> None:
        def send() -> None:
            with contextlib.suppress(OciError):
                kill(root, cid, signum)
        threading.Thread(target=send, daemon=True).start()

    old = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM,
                                                   signal.SIGHUP, signal.SIGQUIT,
                                                   signal.SIGUSR1, signal.SIGUSR2)}
    try:
        code = proc.wait()
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    with contextlib.suppress(OciError):
        delete(root, cid, force=True)
    return code if code >= 0 else 128 - code


def features() -> dict[str, Any]:
    """What ``features`` prints (runtime-spec features.md shape)."""
    return {
        "ociVersionMin": "1.0.0",
        "ociVersionMax": bundle.OCI_VERSION,
        "hooks": list(bundle.HOOK_KINDS),
        "mountOptions": [],
        "linux": {
            "namespaces": ["mount", "pid", "uts", "ipc", "network"],
            "capabilities": [],
            "cgroup": {"v1": False, "v2": False, "systemd": False, "systemdUser": False},
            "seccomp": {"enabled": False},
            "apparmor": {"enabled": False},
            "selinux": {"enabled": False},
        },
        "annotations": {
            "org.opencontainers.runc.checkpoint.enabled": "false",
            "dev.pyvisor.sandbox": "sentry (systrap)",
        },
        "pyvisor": {"unsupported": [
            "exec", "terminal", "mounts", "process.user", "rlimits", "capabilities",
            "startContainer hooks"]},
    }
