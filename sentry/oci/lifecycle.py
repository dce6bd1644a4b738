"""OCI operations as runc's CLI offers them: create, start, state, kill, delete,
run, wait (exec is in execproc.py; list, ps, pause, resume, events and
features, which look at a container without changing its life, in
inspection.py).
``runsc.py`` maps its commands onto these functions and turns :class:`OciError`
into one line on stderr and its exit code.

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
import signal
import time
from collections.abc import Callable, Sequence

from sentry.oci.control_errors import ControlError
from sentry.oci.state import (
    CONFIG_COPY,
    LIVE,
    Container,
    NotFound,
    StateError,
    StateRoot,
    host_alive,
    validate_id,
)

TYPE_CHECKING = False  # typing unimported at run time: see sentry/oci/shimcalls.py
if TYPE_CHECKING:
    from typing import Any, Protocol

    from sentry.oci import bundle, cgroups

    class HostProcess(Protocol):
        """The sandbox host as `create` holds it: a Popen, or what spawn_host forked."""

        pid: int
        returncode: int | None

        def poll(self) -> int | None: ...
        def wait(self, timeout: float | None = None) -> int: ...
        def kill(self) -> None: ...

    SpawnHost = Callable[[list[str], tuple[int, ...]], HostProcess]
    """Start ``sandbox-serve`` from its argv, passing it these fds, in a new session."""

READY_TIMEOUT = 90.0
STOP_TIMEOUT = 10.0
UNKNOWN_EXIT = 255  # the host died without recording a status (e.g. SIGKILLed)


class OciError(Exception):
    """A one-line reason an OCI command failed, and the exit code to fail with."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


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


def request(path: str, msg: dict[str, Any], timeout: float | None = 10.0) -> dict[str, Any]:
    """control.request, imported on first use: `delete` of a stopped or
    missing container (two of the four calls of a `docker run`) sends none."""
    from sentry.oci import control

    return control.request(path, msg, timeout)


def _saved_hooks(c: Container, *kinds: str) -> dict[str, tuple[bundle.Hook, ...]]:
    """The hooks of these ``kinds`` in the config saved at create; {} when it
    has none of them, without importing the bundle parser or hooks.py
    (subprocess, logging): start and delete, two of the four runtime calls of
    every `docker run`, stay quick (Docker's configs carry a prestart hook,
    which neither of them runs)."""
    try:
        with open(os.path.join(c.dir, CONFIG_COPY), "rb") as f:
            raw = json.loads(f.read()).get("hooks")
    except (OSError, ValueError, AttributeError):
        return {}
    if not isinstance(raw, dict) or not any(raw.get(k) for k in kinds):
        return {}
    from sentry.oci import bundle

    try:
        parsed = bundle.parse_hooks(raw)
    except bundle.BundleError:
        return {}
    return {k: v for k, v in parsed.items() if k in kinds and v}


def _hook_state(c: Container, status: str | None = None) -> dict[str, Any]:
    """The state a hook is given: the container's true one, with ``status``
    for the transition under way (start's "running" may not be written yet),
    unless the process is gone already: then "stopped" (pid 0), never a
    "running" container without a pid."""
    st = c.public()
    if status is not None and st.get("status") != "stopped":
        st["status"] = status
    return st


def write_pid_file(path: str, pid: int) -> None:
    """Atomically, as runc does: a reader never sees an empty file."""
    path = os.path.abspath(path)
    tmp = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.{os.getpid()}")
    with open(tmp, "w") as f:
        f.write(str(pid))
    os.rename(tmp, path)


def _exec_host(argv: list[str], pass_fds: tuple[int, ...]) -> HostProcess:
    import subprocess

    return subprocess.Popen(argv, pass_fds=pass_fds, start_new_session=True)


def read_report(fd: int, timeout: float) -> dict[str, Any] | None:
    """One JSON object on a line from a child's report pipe (the sandbox host's
    readiness, an exec waiter's start): None when the writer died first (EOF
    or garbage); TimeoutError when nothing came within ``timeout``."""
    import select

    deadline = time.monotonic() + timeout
    buf = b""
    while not buf.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        r, _, _ = select.select([fd], [], [], min(left, 1.0))
        if not r:
            continue
        chunk = os.read(fd, 1)  # a byte at a time: the next report stays in the pipe
        if not chunk:
            break
        buf += chunk
    try:
        msg = json.loads(buf)
    except ValueError:
        return None
    return msg if isinstance(msg, dict) else None


def write_report(fd: int, msg: dict[str, Any], last: bool = True) -> None:
    """One JSON object on a line to the reader of :func:`read_report`; the
    last report closes the pipe.  Errors are ignored: a reader that is gone
    needs no report."""
    with contextlib.suppress(OSError):
        os.write(fd, json.dumps(msg).encode() + b"\n")
    if last:
        with contextlib.suppress(OSError):
            os.close(fd)


def _await_ready(proc: HostProcess, fd: int, timeout: float) -> dict[str, Any]:
    """The host's ready report (EOF means it died first)."""
    try:
        msg = read_report(fd, timeout)
    except TimeoutError:
        return {"ok": False, "error": f"the sandbox was not ready within {timeout:g} s"}
    if msg is None:
        code = proc.wait(timeout=10)
        return {"ok": False, "error": f"the sandbox host exited with status {code}"}
    return msg


def _early_hook_state(b: bundle.Bundle, cid: str, pid: int,
                      status: str = "creating") -> dict[str, Any]:
    """The OCI state the create-time hooks get, as runc gives it (status
    "creating": state.json is written once the sandbox is ready)."""
    return {"ociVersion": b.oci_version, "id": cid, "status": status, "pid": pid,
            "bundle": b.path, "annotations": b.annotations}


def _create_hooks(b: bundle.Bundle, proc: HostProcess, state: dict[str, Any]) -> None:
    """prestart, createRuntime, createContainer; a failure stops the host and
    fails `create` (whose failure path runs poststop)."""
    from sentry.oci import hooks

    try:
        for kind in ("prestart", "createRuntime", "createContainer"):
            hooks.run_hooks(kind, b.hooks.get(kind, ()), state, fatal=True)
    except hooks.HookError as exc:
        _stop_host(proc)
        raise OciError(str(exc)) from None


def _stop_host(proc: HostProcess) -> None:
    """SIGKILL the sandbox host and reap it, first removing the /dev/shm
    names of a Gofer channel its Sentry was still opening: as init of the
    container's pid namespace, the host takes the Sentry and the Gofer with
    it at once, so neither gets to remove them (gofer/lifeline.py).  The
    names carry the host's pid (shm/layout.py); removed while it is a
    zombie, so no other process has that pid."""
    import subprocess

    if proc.poll() is None:
        proc.kill()
        _until_exited(proc.pid, STOP_TIMEOUT)
    from shm.segment import unlink_created_by  # posix_ipc: only on this failure path

    unlink_created_by(proc.pid)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=STOP_TIMEOUT)


def _until_exited(pid: int, timeout: float) -> None:
    """Wait until child ``pid`` has exited, without reaping it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT | os.WNOHANG) is not None:
                return
        except ChildProcessError:
            return
        time.sleep(0.01)


def open_console(socket_path: str) -> int:
    """A host pty for process.terminal: its master goes to ``socket_path``
    (runc's protocol, sentry/tty/hostconsole.py); returns the replica."""
    from sentry.tty import hostconsole

    try:
        return hostconsole.open_console(socket_path)
    except hostconsole.ConsoleError as exc:
        raise OciError(str(exc)) from None
    except OSError as exc:
        raise OciError(f"--console-socket {socket_path}: {exc.strerror or exc}") from None


def create(root: str, cid: str, bundle_dir: str, *, host_argv: Sequence[str],
           pid_file: str | None = None, console_socket: str | None = None,
           detach: bool = True, spawn_host: SpawnHost | None = None,
           restore_image: str | None = None) -> HostProcess:
    """Create container ``cid``; returns the sandbox host process (status created).

    ``host_argv`` is the command line that runs ``sandbox-serve`` (runsc.py and
    its global flags); the container id and bundle are appended.  ``spawn_host``
    starts it (default: exec, in a new session); runsc.py forks itself instead.
    """
    from sentry.oci import cgroups

    early = cgroups.EarlyJoin.start(bundle_dir)  # on a thread, while we validate
    try:
        return _create(root, cid, bundle_dir, host_argv=host_argv, pid_file=pid_file,
                       console_socket=console_socket, detach=detach, spawn_host=spawn_host,
                       early=early, restore_image=restore_image)
    except BaseException:
        if early is not None:
            early.abandon()
        raise


def _create(root: str, cid: str, bundle_dir: str, *, host_argv: Sequence[str],
            pid_file: str | None, console_socket: str | None, detach: bool,
            spawn_host: SpawnHost | None, early: cgroups.EarlyJoin | None,
            restore_image: str | None = None) -> HostProcess:
    from sentry.oci import bundle, cgroups, hooks, namespaces

    try:
        validate_id(cid)
        b = bundle.load(bundle_dir)
        bundle.rlimit_numbers(b.process)  # names checked before anything exists
        from sentry import mountspec  # mounts too (types, options, bind sources)

        mountspec.from_oci(b.mounts, b.path)
        namespaces.check_paths(b.namespaces)  # each path of its own type
    except (StateError, bundle.BundleError, namespaces.NamespaceError) as exc:
        raise OciError(str(exc)) from None
    if b.process.terminal and detach and not console_socket:
        raise OciError("process.terminal: needs --console-socket when detached")
    if console_socket and not b.process.terminal:
        raise OciError("--console-socket: only for process.terminal")
    if b.process.terminal and not console_socket and not os.isatty(0):
        raise OciError("process.terminal: stdin is not a terminal (use --console-socket)")
    try:
        c = StateRoot(root).new_container(cid)
    except (OSError, StateError) as exc:
        raise OciError(str(exc)) from None
    proc: HostProcess | None = None
    try:
        with c.locked():
            with open(os.path.join(c.dir, CONFIG_COPY), "w") as f:
                json.dump(b.raw, f)
            # A terminal: the Sentry bridges this host terminal fd to the
            # container's pty (sentry/tty): a new host pty whose master went to
            # the console socket, or (foreground run) our own terminal, fd 0.
            console = -1
            if b.process.terminal:
                console = open_console(console_socket) if console_socket else 0
            extra = ["--console-fd", str(console)] if console >= 0 else []
            if restore_image is not None:  # sentry/oci/checkpoint_ops.py
                extra += ["--restore-image", os.path.abspath(restore_image)]
            if early is not None:  # the host inherits the cgroups and does not join
                early.wait()
                cgroups.record(c.dir, early.made)
            r, w = os.pipe()
            try:
                # Born in the container's pid namespace, as runc's container
                # process: its pid 1 (sentry/oci/namespaces.py).
                with namespaces.host_born_in_pid_namespace(b.namespaces):
                    proc = (spawn_host or _exec_host)(
                        [*host_argv, "sandbox-serve", "--bundle", b.path, "--ready-fd",
                         str(w), *extra, cid],
                        (w, console) if console > 2 else (w,))
            except namespaces.NamespaceError as exc:
                raise OciError(str(exc)) from None
            finally:
                if early is not None:
                    early.leave()
                os.close(w)
                if console > 2:
                    os.close(console)
            hooks_ran = False
            try:
                msg = _await_ready(proc, r, READY_TIMEOUT)
                if msg.get("stage") == "namespaces":
                    # The host is in the container's namespaces and boots the
                    # Sentry meanwhile: the create-time hooks (Docker's
                    # prestart configures the network namespace of the pid
                    # given) run now, in parallel with that boot.
                    hooks_ran = True
                    _create_hooks(b, proc, _early_hook_state(b, cid, int(msg["pid"])))
                    msg = _await_ready(proc, r, READY_TIMEOUT)
                if not msg.get("ok"):
                    raise OciError(str(msg.get("error") or "the sandbox failed to start"))
            except OciError:
                if hooks_ran:  # a hook or the sandbox failed after the hooks ran
                    hooks.run_hooks("poststop", b.hooks.get("poststop", ()),
                                    _early_hook_state(b, cid, 0, "stopped"), fatal=False)
                raise
            finally:
                os.close(r)
            if pid_file:
                write_pid_file(pid_file, proc.pid)
        return proc
    except BaseException as exc:
        if proc is not None:
            _stop_host(proc)
        c.remove()
        if isinstance(exc, OSError):
            raise OciError(f"create: {exc}") from None
        raise


def open_container(root: str, cid: str) -> Container:
    """The container ``cid`` under ``root``; OciError if there is none."""
    try:
        return StateRoot(root).container(cid)
    except StateError as exc:
        raise OciError(str(exc)) from None


def start(root: str, cid: str) -> None:
    c = open_container(root, cid)
    try:
        with c.locked():
            st = c.current()
            if st["status"] != "created":
                raise OciError(f"cannot start a container that is {st['status']}")
            request(c.socket_path, {"op": "start"})
            saved = _saved_hooks(c, "startContainer", "poststart")
            if saved:
                from sentry.oci import hooks

                hooks.skip_in_container_hooks(saved.get("startContainer", ()))
                hooks.run_hooks("poststart", saved.get("poststart", ()),
                                _hook_state(c, "running"), fatal=False)
    except (StateError, ControlError) as exc:
        raise OciError(str(exc)) from None


def state(root: str, cid: str) -> dict[str, Any]:
    c = open_container(root, cid)
    try:
        return c.public()
    except StateError as exc:
        raise OciError(str(exc)) from None


def kill(root: str, cid: str, sig: int, all_: bool = False) -> None:
    c = open_container(root, cid)
    try:
        st = c.current()
        if st["status"] not in LIVE:
            # runc's words: containerd's shim takes "container not running"
            # after a kill as "already exited" (a stop's SIGKILL that came late).
            raise OciError(f"cannot kill {cid!r}: container not running")
        request(c.socket_path, {"op": "kill", "signal": sig, "all": all_})
    except (StateError, ControlError) as exc:
        raise OciError(str(exc)) from None


def _ensure_stopped(c: Container, st: dict[str, Any]) -> None:
    """SIGKILL the container and wait until its host process is gone."""
    pid, start_time = int(st.get("pid") or 0), st.get("hostStartTime")
    if not host_alive(pid, start_time):
        return
    with contextlib.suppress(ControlError):
        request(c.socket_path, {"op": "kill", "signal": signal.SIGKILL, "all": True},
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
            if status in ("running", "paused") and not force:
                raise OciError(f"cannot delete container {cid!r} that is not stopped: {status}")
            if status == "creating" and not force:
                raise OciError(f"container {cid!r} is being created (use --force)")
            _ensure_stopped(c, st)
            saved = _saved_hooks(c, "poststop")
            final = c.public()
            final["status"] = "stopped"
            c.remove()
    except NotFound:
        if force:
            return
        raise OciError(f"container {cid!r} does not exist") from None
    except (StateError, OSError) as exc:
        raise OciError(f"delete {cid}: {exc}") from None
    if saved.get("poststop"):
        from sentry.oci import hooks

        hooks.run_hooks("poststop", saved["poststop"], final, fatal=False)


def wait(root: str, cid: str) -> int:
    """Block until the container's init exits; its exit code (shell-style)."""
    c = open_container(root, cid)
    try:
        st = c.current()
        if st["status"] in LIVE:
            with contextlib.suppress(ControlError):
                reply = request(c.socket_path, {"op": "wait"}, timeout=None)
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


def run(root: str, cid: str, bundle_dir: str, *, host_argv: Sequence[str],
        pid_file: str | None = None, console_socket: str | None = None,
        detach: bool = False, spawn_host: SpawnHost | None = None,
        restore_image: str | None = None) -> int:
    """create + start; unless ``detach``, wait, delete and return the exit code.
    With ``restore_image``, the processes come from that checkpoint.

    In the foreground, signals sent to this process are forwarded to the
    container (as runc run does), and the container is deleted when it exits.
    """
    from sentry.tty import hostconsole

    saved = hostconsole.SavedTerminal(0).__enter__()  # before the Sentry may make it raw
    try:
        return _run(root, cid, bundle_dir, host_argv=host_argv, pid_file=pid_file,
                    console_socket=console_socket, detach=detach, spawn_host=spawn_host,
                    restore_image=restore_image)
    finally:
        if not detach:
            saved.__exit__()


def _run(root: str, cid: str, bundle_dir: str, *, host_argv: Sequence[str],
         pid_file: str | None, console_socket: str | None, detach: bool,
         spawn_host: SpawnHost | None, restore_image: str | None = None) -> int:
    proc = create(root, cid, bundle_dir, host_argv=host_argv, pid_file=pid_file,
                  console_socket=console_socket, detach=detach, spawn_host=spawn_host,
                  restore_image=restore_image)
    try:
        start(root, cid)
    except OciError:
        with contextlib.suppress(OciError):
            delete(root, cid, force=True)
        raise
    if detach:
        return 0

    import threading

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
