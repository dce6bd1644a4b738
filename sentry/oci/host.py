"""The sandbox host: the process a container *is*, as seen from the host.

``runsc.py sandbox-serve ID`` runs :func:`serve`.  It forks the Sentry (the
process that boots the kernel and runs the container's init) and then stays
as its parent for the container's whole life:

    create --spawns--> sandbox host (pid in state.json / --pid-file)
                         |  control.sock: start, state, kill, ps, wait
                         |  socketpair (same msgpack frames)
                         v
                       Sentry process -> Gofer, stubs

Why two processes and not the Sentry serving the socket itself: the Sentry
confines itself with seccomp before the init runs (sentry/confine.py), and that
filter denies socket/bind/listen/accept, so it could not take a client after
start-up.  The host process takes no untrusted input but control frames, runs
no application code and keeps the container's exit status; the socketpair to
the Sentry is made before the fork, and recv/send on it stay allowed.

Facts this relies on:

- The Sentry gets PR_SET_PDEATHSIG=SIGKILL right after fork (and checks its
  parent afterwards, closing the race), so a SIGKILLed host takes the whole
  sandbox with it: the Sentry's stubs and Gofer die with the Sentry the same
  way, and the Gofer channel's /dev/shm names are unlinked once both ends are
  open (gofer/client.py), so nothing is left behind.
- The host forks before it starts any thread, so the child is a clean
  single-threaded copy.
- Signals sent to the host process (a shim's or a user's ``kill PID``) are
  forwarded to the container like ``runsc.py kill``, as runc's container pid
  is the init itself.
- kill: before start, and until the Sentry offers a kernel hook
  (``SandboxOptions.on_kernel``), a signal for the container is sent to the
  Sentry process itself: its default action ends the whole sandbox, which is
  what most signals do to an init that has no handler.  With the hook, the
  signal goes to the init's thread group inside the kernel (``send_group``),
  so an application's own handlers see it.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import json
import logging
import os
import signal
import socket
import sys
import threading
from typing import Any

from sentry.oci import bundle
from sentry.oci.control import (
    ControlServer,
    FrameError,
    read_frame,
    send_frame,
)
from sentry.oci.state import Container, now_rfc3339, process_start_time

log = logging.getLogger("pyvisor")

READY_TIMEOUT = 60.0
CHANNEL_TIMEOUT = 10.0
EXIT_NOT_STARTED = 128 + signal.SIGKILL  # host gone before start: as if SIGKILLed
FORWARDED = (signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2,
             signal.SIGTERM, signal.SIGALRM, signal.SIGCONT, signal.SIGWINCH)
_PR_SET_PDEATHSIG = 1


def valid_signal(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 64:
        raise ValueError(f"bad signal {value!r}")
    return value


# -- the Sentry side ---------------------------------------------------------

def _sentry_commands(chan: socket.socket, kernel: Any) -> None:
    """Serve the host's kill/ps requests inside the Sentry (kernel hook path)."""
    from sentry.kernel.signals import SigInfo

    while True:
        try:
            msg = read_frame(chan, None)
        except (FrameError, OSError):
            return
        if msg is None:
            return
        op = msg.get("op")
        reply: dict[str, Any]
        try:
            if op == "kill":
                sig = valid_signal(msg.get("signal"))
                with kernel.lock:
                    groups = (list(kernel.thread_groups.values()) if msg.get("all")
                              else [kernel.init] if kernel.init is not None else [])
                    for tg in groups:
                        kernel.send_group(tg, SigInfo(sig))
                reply = {"ok": True}
            elif op == "ps":
                with kernel.lock:
                    procs = [{"pid": tg.tgid, "ppid": tg.parent.tgid if tg.parent else 0,
                              "cmd": b" ".join(tg.argv).decode("utf-8", "replace")}
                             for tg in kernel.thread_groups.values() if not tg.zombie]
                reply = {"ok": True, "processes": sorted(procs, key=lambda p: p["pid"])}
            else:
                reply = {"ok": False, "error": f"unknown op {op!r}"}
        except (ValueError, TypeError) as exc:
            reply = {"ok": False, "error": str(exc)}
        try:
            send_frame(chan, reply)
        except OSError:
            return


def _sentry_main(chan: socket.socket, b: bundle.Bundle, strace: bool) -> int:
    """Boot the sandbox for ``b``; the init waits in before_start for `start`."""
    from sentry import sandbox
    from sentry.kernel.task import SentryBug
    from sentry.systrap.stubs import StubDied, StubError

    kernel_box: list[Any] = []

    def before_start() -> None:
        send_frame(chan, {"ready": True, "kernel": bool(kernel_box)})
        msg = read_frame(chan, None)
        if msg is None or msg.get("op") != "start":
            os._exit(EXIT_NOT_STARTED)
        if kernel_box:
            threading.Thread(target=_sentry_commands, args=(chan, kernel_box[0]),
                             daemon=True, name="oci-sentry-cmds").start()

    opts = sandbox.SandboxOptions(
        root=b.root_path, strace=strace, hostname=b.hostname or "pyvisor",
        cwd=b.process.cwd, before_start=before_start,
        warn=lambda msg: log.warning("%s", msg),
    )
    if "on_kernel" in {f.name for f in dataclasses.fields(opts)}:
        opts.on_kernel = kernel_box.append  # type: ignore[attr-defined]
    try:
        return sandbox.run(list(b.process.args), b.process.env_dict(), opts)
    except sandbox.LaunchError as exc:
        with contextlib.suppress(OSError):
            send_frame(chan, {"ready": False, "error": str(exc), "status": exc.status})
        return exc.status
    except (StubError, StubDied, SentryBug) as exc:
        message = f"sandbox failure: {exc}"
    except KeyboardInterrupt:
        return 128 + signal.SIGINT
    except Exception as exc:  # noqa: BLE001 - reported, never a traceback on app stderr
        log.debug("internal error", exc_info=True)
        message = f"internal error: {exc!r}"
    with contextlib.suppress(OSError):
        send_frame(chan, {"ready": False, "error": message, "status": 125})
    log.error("%s", message)
    return 125


def _fork_sentry(b: bundle.Bundle, strace: bool, keep_out: list[int]) -> tuple[int, socket.socket]:
    host_side, sentry_side = socket.socketpair(socket.AF_UNIX,
                                               socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    host_pid = os.getpid()
    pid = os.fork()
    if pid == 0:  # the Sentry
        code = 125
        try:
            host_side.close()
            for fd in keep_out:
                with contextlib.suppress(OSError):
                    os.close(fd)
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
            if os.getppid() != host_pid:
                os._exit(EXIT_NOT_STARTED)
            code = _sentry_main(sentry_side, b, strace)
        finally:
            with contextlib.suppress(Exception):
                sys.stdout.flush()
                sys.stderr.flush()
            os._exit(code)
    sentry_side.close()
    return pid, host_side


# -- the host side -------------------------------------------------------------

class Host:
    """The host process's view of its container; handlers run on control threads."""

    def __init__(self, c: Container, b: bundle.Bundle, sentry_pid: int,
                 chan: socket.socket, kernel_ops: bool) -> None:
        self.c = c
        self.b = b
        self.sentry_pid = sentry_pid
        self.chan = chan
        self.kernel_ops = kernel_ops
        self.lock = threading.Lock()  # status transitions and channel round trips
        self.status = "created"
        self.exit_code: int | None = None
        self.exited = threading.Event()

    def state(self) -> dict[str, Any]:
        st = self.c.read() or {}
        st["status"] = self.status
        return {k: v for k, v in st.items() if k != "hostStartTime"}

    def _channel(self, msg: dict[str, Any]) -> dict[str, Any]:
        """One request/response with the Sentry; caller holds self.lock."""
        try:
            send_frame(self.chan, msg)
            reply = read_frame(self.chan, CHANNEL_TIMEOUT)
        except (OSError, FrameError, TimeoutError) as exc:
            return {"ok": False, "error": f"the Sentry did not answer: {exc}"}
        return reply if reply is not None else {"ok": False, "error": "container is stopped"}

    def start(self) -> dict[str, Any]:
        with self.lock:
            if self.status != "created":
                return {"ok": False, "error": f"cannot start a container that is {self.status}"}
            try:
                send_frame(self.chan, {"op": "start"})
            except OSError:
                return {"ok": False, "error": "cannot start: the sandbox exited"}
            self.status = "running"
            self.c.update(status="running", started=now_rfc3339())
        return {"ok": True}

    def kill(self, sig: int, all_: bool) -> dict[str, Any]:
        with self.lock:
            if self.status == "stopped":
                return {"ok": False, "error": "container is not running"}
            if self.status == "running" and self.kernel_ops:
                return self._channel({"op": "kill", "signal": sig, "all": all_})
            try:
                os.kill(self.sentry_pid, sig)
            except ProcessLookupError:
                return {"ok": False, "error": "container is not running"}
        return {"ok": True}

    def ps(self) -> dict[str, Any]:
        with self.lock:
            if self.status == "stopped":
                return {"ok": True, "processes": []}
            if self.status == "running" and self.kernel_ops:
                return self._channel({"op": "ps"})
        return {"ok": True, "processes": [
            {"pid": 1, "ppid": 0, "cmd": " ".join(self.b.process.args)}]}

    def handle(self, req: dict[str, Any]) -> dict[str, Any]:
        op = req.get("op")
        if op == "state":
            return {"ok": True, "state": self.state()}
        if op == "start":
            return self.start()
        if op == "kill":
            try:
                sig = valid_signal(req.get("signal", signal.SIGTERM))
            except ValueError as exc:
                return {"ok": False, "error": str(exc)}
            return self.kill(sig, bool(req.get("all", False)))
        if op == "ps":
            return self.ps()
        if op == "wait":
            self.exited.wait()
            return {"ok": True, "exitStatus": self.exit_code}
        return {"ok": False, "error": f"unknown op {op!r}"}

    def finished(self, code: int) -> None:
        with self.lock:
            self.status = "stopped"
            self.exit_code = code
            self.c.update(status="stopped", exitStatus=code, finished=now_rfc3339())
        self.exited.set()


def _report(fd: int, msg: dict[str, Any]) -> None:
    with contextlib.suppress(OSError):
        os.write(fd, json.dumps(msg).encode() + b"\n")
        os.close(fd)


def _wait_code(pid: int) -> int:
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


def serve(c: Container, bundle_dir: str, ready_fd: int, strace: bool) -> int:
    """The sandbox host's whole life; returns the container's exit code."""
    try:
        raw = bundle.read_config(os.path.join(c.dir, "config.json"))
        b = bundle.parse(raw, bundle_dir)
    except bundle.BundleError as exc:
        _report(ready_fd, {"ok": False, "error": str(exc)})
        return 1
    sentry_pid, chan = _fork_sentry(b, strace, [ready_fd])
    try:
        msg = read_frame(chan, READY_TIMEOUT)
    except (FrameError, OSError, TimeoutError) as exc:
        msg = {"ready": False, "error": f"the sandbox did not come up: {exc}"}
    if msg is None or not msg.get("ready"):
        error = (msg or {}).get("error") or "the sandbox exited during start-up"
        with contextlib.suppress(OSError):
            os.kill(sentry_pid, signal.SIGKILL)
        code = _wait_code(sentry_pid)
        _report(ready_fd, {"ok": False, "error": str(error),
                           "status": (msg or {}).get("status", code)})
        return code
    host = Host(c, b, sentry_pid, chan, bool(msg.get("kernel")))
    server = ControlServer(c.socket_path, host.handle)
    c.write({
        "ociVersion": b.oci_version, "id": c.id, "status": "created", "pid": os.getpid(),
        "bundle": b.path, "rootfs": b.root_path, "created": now_rfc3339(), "owner": "",
        "annotations": b.annotations, "hostStartTime": process_start_time(os.getpid()),
    })
    server.start()

    def forward(signum: int, _frame: object) -> None:
        threading.Thread(target=host.kill, args=(signum, False), daemon=True).start()

    for s in FORWARDED:
        signal.signal(s, forward)
    _report(ready_fd, {"ok": True, "pid": os.getpid()})
    code = _wait_code(sentry_pid)
    for s in FORWARDED:
        signal.signal(s, signal.SIG_DFL)
    host.finished(code)
    server.close()
    chan.close()
    return code
