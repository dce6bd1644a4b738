"""The Sentry's side of the host <-> Sentry channel (see host.py): kill, ps,
exec, pause, resume and stats, acted out inside the running kernel.

One thread serves the channel, one request at a time; every reply carries
the request's ``seq``, so the host can drop a reply that comes after it
stopped waiting.  Each exec'd process gets a small thread that waits for it
to exit and writes its status to the socket the host sent with the request.

Facts this relies on:

- This code runs after the Sentry confined itself (sentry/confine.py): no
  open, socket or socketpair any more, but recvmsg/sendmsg/close on sockets
  it already has are allowed, so an exec's stdio and status socket arrive as
  SCM_RIGHTS on the existing channel.  Everything here is imported before
  the filter goes on (an import opens files).
- An exec'd process is a new thread group with no parent, as gVisor's exec
  makes it: getppid() is 0, it leads its own session and process group, and
  nothing in the container reaps it; the kernel drops it when it exits
  (``Kernel._zombify``), which wakes ``child_exit``.
- If the Sentry dies first, the host reads EOF on the status socket: the
  process died with the sandbox (reported as SIGKILL).
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from typing import TYPE_CHECKING, Any

from sentry.checkpoint import save as checkpoint_save
from sentry.kernel.signals import SigInfo
from sentry.oci import bundle, debug_ops, pod_sentry
from sentry.oci.control import FrameError, close_fds, read_frame, send_frame, valid_signal
from sentry.tty.console import ConsoleBridge  # now: the confined Sentry opens no files

if TYPE_CHECKING:
    from sentry.kernel.kernel import Kernel
    from sentry.kernel.threadgroup import ThreadGroup
    from sentry.sandbox import Booted, ProcessSpec

log = logging.getLogger("pyvisor")

EXIT_WATCH_SLICE = 1.0  # re-check a watched process this often (wakes come sooner)


def serve(chan: socket.socket, booted: Booted) -> None:
    """Answer the host's requests until the channel closes."""
    while True:
        fds: list[int] = []
        try:
            msg = read_frame(chan, None, fds)
        except (FrameError, OSError):
            close_fds(fds)
            return
        if msg is None:
            close_fds(fds)
            return
        try:
            reply = _dispatch(booted, msg, fds)
        except Exception as exc:  # noqa: BLE001 - a failed command must not end the sandbox
            log.exception("control op %r failed in the Sentry", msg.get("op"))
            reply = {"ok": False, "error": f"internal error: {exc!r}"}
        finally:
            close_fds(fds)  # whatever the command did not take
        reply["seq"] = msg.get("seq")
        try:
            send_frame(chan, reply)
        except OSError:
            return


def _dispatch(booted: Booted, msg: dict[str, Any], fds: list[int]) -> dict[str, Any]:
    kernel = booted.kernel
    op = msg.get("op")
    try:
        if op == "kill":
            return _kill(kernel, valid_signal(msg.get("signal")), bool(msg.get("all")),
                         msg.get("pid"))
        if op == "ps":
            with kernel.lock:
                # A pod's sandbox container lists its own processes, not its
                # members' (each has its own ps: sentry/oci/pod_sentry.py).
                procs = [{"pid": tg.tgid, "ppid": tg.parent.tgid if tg.parent else 0,
                          "cmd": b" ".join(tg.argv).decode("utf-8", "replace")}
                         for tg in kernel.thread_groups.values()
                         if not tg.zombie and not pod_sentry.is_member_process(tg)]
            return {"ok": True, "processes": sorted(procs, key=lambda p: p["pid"])}
        if op == "exec":
            taken = list(fds)
            fds.clear()
            return _exec(booted, msg.get("process"), taken)
        if op == "add-member":  # a pod's later container (sentry/oci/pod_sentry.py)
            taken = list(fds)
            fds.clear()
            return pod_sentry.add_member(booted, taken)
        if op == "pause":
            kernel.freeze()
            return {"ok": True}
        if op == "resume":
            kernel.thaw()
            return {"ok": True}
        if op == "checkpoint":
            if len(fds) != 1:
                return {"ok": False, "error": "checkpoint needs the image's file descriptor"}
            fd = fds.pop()
            return checkpoint_save.checkpoint(kernel, booted.ctx, fd,
                                              bool(msg.get("leave_running")))
        if op in DEBUG_OPS:
            return _debug(kernel, op, msg)
        if op == "stats":
            u = kernel.usage()
            return {"ok": True, "user": u.user_ns, "kernel": u.kernel_ns,
                    "memory": u.memory_bytes, "tasks": u.tasks}
    except (ValueError, TypeError) as exc:
        return {"ok": False, "error": str(exc)}
    return {"ok": False, "error": f"unknown op {op!r}"}


DEBUG_OPS = ("stacks", "profile-start", "profile-read")


def _debug(kernel: Kernel, op: str, msg: dict[str, Any]) -> dict[str, Any]:
    """`runsc.py debug`: sentry/oci/debug_ops.py."""
    if op == "stacks":
        return debug_ops.stacks(kernel)
    if op == "profile-start":
        return debug_ops.PROFILING.start(kernel, msg.get("seconds"))
    return debug_ops.PROFILING.read()


def _kill(kernel: Kernel, sig: int, all_: bool, pid: Any) -> dict[str, Any]:
    """A signal for the init, every process (--all), or one exec'd process."""
    with kernel.lock:
        if pid is not None:
            tg = kernel.thread_groups.get(pid) if isinstance(pid, int) else None
            if tg is None or tg.zombie:
                return {"ok": False, "error": f"no process {pid!r} in the container"}
            groups = [tg]
        elif all_:
            groups = list(kernel.thread_groups.values())
        else:
            groups = [kernel.init] if kernel.init is not None else []
        for tg in groups:
            kernel.send_group(tg, SigInfo(sig), external=True)  # from the host
    return {"ok": True}


def process_spec(p: bundle.Process, stdio: list[int] | None) -> ProcessSpec:
    """The sandbox's view of an OCI process object (user, limits, stdio)."""
    from sentry.kernel.creds import from_names
    from sentry.sandbox import ProcessSpec

    caps = {kind: from_names(names) for kind, names in p.capabilities.items()} or None
    return ProcessSpec(argv=list(p.args), env=p.env_dict(), cwd=p.cwd, uid=p.user.uid,
                       gid=p.user.gid, groups=p.user.additional_gids,
                       rlimits=bundle.container_rlimits(p), no_new_privs=p.no_new_privileges,
                       caps=caps, stdio=stdio)


def _exec(booted: Booted, process: Any, fds: list[int]) -> dict[str, Any]:
    """Start an exec'd process; ``fds`` (ours now) are stdin, stdout, stderr and
    the socket its exit status goes to."""
    from sentry.sandbox import LaunchError

    if len(fds) != 4:
        close_fds(fds)
        return {"ok": False, "error": "exec needs stdin, stdout, stderr and a status socket"}
    stdio, status_fd = fds[:3], fds[3]
    try:
        status = socket.socket(fileno=status_fd)
    except OSError as exc:
        close_fds(fds)
        return {"ok": False, "error": f"exec: bad status socket: {exc.strerror}"}
    try:
        p = bundle.parse_process(process)
        spec = process_spec(p, stdio)
    except bundle.BundleError as exc:
        close_fds(stdio)
        status.close()
        return {"ok": False, "error": str(exc).removeprefix(f"{bundle.CONFIG_NAME}: ")}
    console = None
    if p.terminal:
        # exec --tty: stdio is one host terminal (three fds of it), bridged to
        # a pty of the container's own (sentry/tty/console.py).
        close_fds(stdio[1:])
        try:
            console = ConsoleBridge(stdio[0], kernel=booted.kernel, uid=p.user.uid, owned=True)
        except (OSError, RuntimeError) as exc:
            close_fds(stdio[:1])
            status.close()
            return {"ok": False, "error": f"exec --tty: {exc}"}
        spec.stdio, spec.console = None, console
    try:
        task = booted.exec(spec)  # owns stdio from here, closes it on failure
    except LaunchError as exc:
        status.close()
        if console is not None:
            console.close(drain_s=0)
        return {"ok": False, "error": exc.runc_message(), "status": exc.status}
    except BaseException:
        status.close()
        if console is not None:
            console.close(drain_s=0)
        raise
    if console is not None:
        console.start()
    threading.Thread(target=_report_exit, args=(booted.kernel, task.tg, status, console),
                     daemon=True, name=f"oci-exec-{task.pid}").start()
    return {"ok": True, "pid": task.pid}


exec_in = _exec  # a pod member's exec, in its own root (pod_sentry.py)


def _report_exit(kernel: Kernel, tg: ThreadGroup, status: socket.socket,
                 console: Any = None) -> None:
    """Wait for an exec'd process to end; its shell-style status goes to the host
    (after its terminal's last output, if it has one)."""
    from sentry.sandbox import wait_status_to_exit_code

    with kernel.lock:
        while not tg.zombie:
            kernel.child_exit.wait(EXIT_WATCH_SLICE)
        code = wait_status_to_exit_code(tg.exit_status)
    if console is not None:
        console.close()
    try:
        status.settimeout(5.0)
        send_frame(status, {"exitStatus": code})
    except OSError:
        pass  # the host stopped listening: nobody waits for this process
    finally:
        with contextlib.suppress(OSError):
            status.close()
