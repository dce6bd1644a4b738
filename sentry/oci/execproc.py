"""``runsc.py exec``: run one more process in a running container, as runc does.

The process comes from ``--process FILE`` (an OCI process object, what
containerd's shim writes) or from the container's own ``process`` with ARGS
and the --cwd/--env/--user/... flags applied on top, runc's rules.  It runs
inside the container's Sentry as a new thread group (host.py, sentry_ops.py),
with this command's own stdin, stdout and stderr, passed to the sandbox host
as SCM_RIGHTS with the request.

Without --detach this command waits and exits with the process's status
(its code, or 128+N for signal N), forwarding the signals it gets to the
process.  With --detach it forks a *waiter* first, as gVisor's runsc does:
the waiter makes the request, writes its own pid to --pid-file once the
process runs, tells the foreground command (which then exits 0), lets go of
the caller's stdio and waits.  So the pid a shim reads from --pid-file is a
host process that lives exactly as long as the exec'd process and exits
with its status, and signals sent to it reach the process: containerd's
shim, a subreaper, reaps it to learn the exit status and kills it to signal
the exec.

Facts this relies on:

- The waiter is forked before this process has started any thread (click
  runs single-threaded), so the fork is a clean copy; it calls setsid so the
  caller's terminal or process group signals do not reach it by accident.
- The request carries the fds; once the reply says the process started, the
  sandbox holds its own copies, so the waiter may close its own.
- Errors are one line: a bad process names the field (from bundle.py), a
  program that is not there fails like a shell (127), and nothing is left
  behind (no pid file, no waiter, no process).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
from typing import Any

from sentry.oci import bundle, control
from sentry.oci.lifecycle import (
    OciError,
    open_console,
    open_container,
    read_report,
    write_pid_file,
    write_report,
)
from sentry.oci.state import CONFIG_COPY, Container, StateError
from sentry.tty import hostconsole
from shm.records import record

EXEC_TIMEOUT = 90.0  # the sandbox loads the program through the Gofer
MAX_JSON = 1 << 20  # a process or config file larger than this is not one
LOST_SANDBOX = 255  # the sandbox went away under a foreground exec
FORWARDED = (signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGTERM, signal.SIGUSR1,
             signal.SIGUSR2, signal.SIGWINCH, signal.SIGCONT)


@record(frozen=True)
class ExecOptions:
    """The exec command's flags (runc's names)."""

    args: tuple[str, ...] = ()
    process_file: str | None = None
    cwd: str | None = None
    env: tuple[str, ...] = ()
    user: str | None = None
    additional_gids: tuple[int, ...] = ()
    no_new_privs: bool = False
    tty: bool = False
    console_socket: str | None = None
    detach: bool = False
    pid_file: str | None = None
    ignore_paused: bool = False


def run(root: str, cid: str, opts: ExecOptions) -> int:
    """The exec command: 0 once a detached process runs, else its exit status."""
    c = open_container(root, cid)
    try:
        status = c.current()["status"]
    except StateError as exc:
        raise OciError(str(exc)) from None
    if status == "paused" and not opts.ignore_paused:
        raise OciError(f"cannot exec in a paused container {cid!r} "
                       "(use --ignore-paused to override)")
    if status not in ("running", "paused"):
        raise OciError(f"cannot exec in a container that is {status}: {cid!r} is not running")
    process = build_process(c, opts)
    stdio = exec_stdio(process, opts)
    if opts.detach:
        return _detached(c, process, stdio, opts.pid_file)
    with hostconsole.SavedTerminal(0):  # a --tty exec may bridge it in raw mode
        client, pid, token = _start(c, process, stdio)
        if opts.pid_file:
            try:
                write_pid_file(opts.pid_file, os.getpid())  # this command lives as long
            except OSError as exc:
                _abandon(c, client, pid)
                raise OciError(f"--pid-file {opts.pid_file}: {exc.strerror}") from None
        return _wait(c, client, pid, token)


# -- the process object ------------------------------------------------------------

def build_process(c: Container, opts: ExecOptions) -> dict[str, Any]:
    """The checked process object to send (runc's getProcess)."""
    if opts.process_file:
        where = opts.process_file
        try:
            with open(opts.process_file, "rb") as f:
                raw = json.loads(f.read(MAX_JSON))
        except OSError as exc:
            raise OciError(f"--process {where}: {exc.strerror}") from None
        except ValueError as exc:
            raise OciError(f"--process {where}: invalid JSON: {exc}") from None
        except RecursionError:  # Python's decoder recurses once per nesting level
            raise OciError(f"--process {where}: invalid JSON: nested too deeply") from None
    else:
        where = f"{CONFIG_COPY} of {c.id}"
        if not opts.args:
            raise OciError("exec: a command is required (ARGS, or --process FILE)")
        raw = _saved_process(c)
        raw["args"] = list(opts.args)
        raw["terminal"] = opts.tty
        if opts.cwd:
            raw["cwd"] = opts.cwd
        raw["env"] = [*(raw.get("env") or []), *opts.env]
        user = dict(raw.get("user") or {})
        if opts.user:
            user.update(_parse_user(opts.user))
        if opts.additional_gids:
            user["additionalGids"] = [*(user.get("additionalGids") or []),
                                      *opts.additional_gids]
        raw["user"] = user
        if opts.no_new_privs:
            raw["noNewPrivileges"] = True
    try:
        p = bundle.parse_process(raw)
        bundle.rlimit_numbers(p)
    except bundle.BundleError as exc:
        raise OciError(str(exc).replace(f"{bundle.CONFIG_NAME}: ", f"{where}: ", 1)) from None
    return {
        "args": list(p.args), "env": list(p.env), "cwd": p.cwd, "terminal": p.terminal,
        "user": {"uid": p.user.uid, "gid": p.user.gid,
                 "additionalGids": list(p.user.additional_gids)},
        "rlimits": [{"type": r.type, "soft": r.soft, "hard": r.hard} for r in p.rlimits],
        "noNewPrivileges": p.no_new_privileges,
    }


def _saved_process(c: Container) -> dict[str, Any]:
    """The container's own process object (config.json as it was at create)."""
    try:
        with open(os.path.join(c.dir, CONFIG_COPY), "rb") as f:
            p = json.loads(f.read(MAX_JSON)).get("process")
    except (OSError, ValueError, AttributeError):
        return {}
    return dict(p) if isinstance(p, dict) else {}


def _parse_user(text: str) -> dict[str, int]:
    """--user uid[:gid], numbers only (as runc)."""
    uid, sep, gid = text.partition(":")
    try:
        out = {"uid": int(uid)}
        if sep:
            out["gid"] = int(gid)
    except ValueError:
        raise OciError(f"--user {text!r}: expected uid[:gid] (numbers)") from None
    return out


def exec_stdio(process: dict[str, Any], opts: ExecOptions) -> list[int]:
    """The host fds that become the process's 0, 1 and 2: this command's own.

    The one place a terminal plugs in: with --tty, a host terminal the Sentry
    bridges to a pty of the container (sentry/tty/console.py): a new host
    pty whose master goes to --console-socket (runc's protocol), or in the
    foreground this command's own terminal.
    """
    if opts.tty or process.get("terminal"):
        process["terminal"] = True
        if opts.console_socket:
            replica = open_console(opts.console_socket)
            return [replica, replica, replica]
        if opts.detach:
            raise OciError("exec --tty: needs --console-socket when detached")
        if not os.isatty(0):
            raise OciError("exec --tty: stdin is not a terminal (use --console-socket)")
        return [0, 0, 0]
    if opts.console_socket:
        raise OciError("--console-socket: only with --tty")
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:  # a closed stdio fd: the process gets /dev/null there
            null = os.open(os.devnull, os.O_RDWR)
            if null != fd:
                os.dup2(null, fd)
                os.close(null)
    return [0, 1, 2]


# -- talking to the sandbox ----------------------------------------------------------

def _start(c: Container, process: dict[str, Any],
           stdio: list[int]) -> tuple[control.Client, int, int]:
    """Start the process; (connection for exec-wait, its pid, its exec token)."""
    try:
        client = control.Client(c.socket_path)
    except control.ControlError as exc:
        raise OciError(str(exc)) from None
    try:
        reply = client.call({"op": "exec", "process": process}, EXEC_TIMEOUT, stdio)
    except control.ControlError as exc:
        client.close()
        raise OciError(f"exec failed: {exc}", exc.status or 1) from None
    return client, int(reply.get("pid", 0)), int(reply.get("exec", 0))


def _abandon(c: Container, client: control.Client, pid: int) -> None:
    """Undo a started process (its caller could not finish setting up)."""
    with contextlib.suppress(control.ControlError):
        control.request(c.socket_path, {"op": "kill", "signal": signal.SIGKILL, "pid": pid})
    client.close()


def _wait(c: Container, client: control.Client, pid: int, token: int) -> int:
    """Wait for the process's exit status, forwarding our signals to it."""
    def forward(signum: int, _frame: object) -> None:
        def send() -> None:
            with contextlib.suppress(control.ControlError):
                control.request(c.socket_path, {"op": "kill", "signal": signum, "pid": pid})
        threading.Thread(target=send, daemon=True).start()

    old = {s: signal.signal(s, forward) for s in FORWARDED}
    try:
        reply = client.call({"op": "exec-wait", "exec": token}, timeout=None)
    except control.ControlError as exc:
        raise OciError(f"exec: lost the sandbox: {exc}", LOST_SANDBOX) from None
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        client.close()
    code = reply.get("exitStatus")
    return code if isinstance(code, int) else LOST_SANDBOX


def _detached(c: Container, process: dict[str, Any], stdio: list[int],
              pid_file: str | None) -> int:
    """Fork the waiter; return 0 once it reports the process running."""
    r, w = os.pipe()
    child = os.fork()
    if child == 0:
        code = LOST_SANDBOX
        try:
            os.close(r)
            os.setsid()
            code = _waiter(c, process, stdio, pid_file, w)
        finally:
            os._exit(code)
    os.close(w)
    try:
        msg = _read_report(r, child, EXEC_TIMEOUT + 10.0)
    finally:
        os.close(r)
    if not msg.get("ok"):
        with contextlib.suppress(ChildProcessError):
            os.waitpid(child, 0)  # it exits right after reporting the error
        raise OciError(str(msg.get("error") or "exec failed"), int(msg.get("code") or 1))
    return 0


def _waiter(c: Container, process: dict[str, Any], stdio: list[int], pid_file: str | None,
            w: int) -> int:
    """The detached exec's host process: start, report, wait, exit with the status."""
    try:
        client, pid, token = _start(c, process, stdio)
    except OciError as exc:
        write_report(w, {"ok": False, "error": str(exc), "code": exc.code})
        return exc.code
    if pid_file:
        try:
            write_pid_file(pid_file, os.getpid())
        except OSError as exc:
            _abandon(c, client, pid)
            write_report(w, {"ok": False, "error": f"--pid-file {pid_file}: {exc.strerror}"})
            return 1
    write_report(w, {"ok": True, "pid": pid})
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):  # the caller's pipes or terminal: the process has its own
        os.dup2(null, fd)
    os.close(null)
    try:
        return _wait(c, client, pid, token)
    except OciError as exc:
        return exc.code


def _read_report(fd: int, child: int, timeout: float) -> dict[str, Any]:
    """The waiter's report; its death first is an error, never a hang."""
    try:
        msg = read_report(fd, timeout)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signal.SIGKILL)
        return {"ok": False, "error": f"exec: no answer within {timeout:g} s"}
    return msg if msg is not None else {"ok": False, "error": "exec: the waiter process died"}
