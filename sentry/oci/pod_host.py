"""The host side of a pod's later containers ("members", docs/pods.md).

`create` of a container whose annotations put it in a running pod sandbox
(sentry/oci/pod.py) spawns a host process as for any container: its pid is
the container's pid for the shim (containerd's runc shim reaps it to learn
the exit status, so it must be a process of its own), it serves the member's
control.sock, and it keeps the member's state.  But it boots no Sentry:

    member host --join (on the sandbox's control.sock; fds: a channel end,
      |            a status socket end, its stdin/stdout/stderr)--> pod host
      |                                        --add-member--> pod's Sentry
      |  its own channel to the pod's Sentry (sentry/oci/pod_sentry.py):
      |    tree (root, binds: descriptors for the Gofer), setup, start,
      |    kill, ps, exec, teardown
      '- the status socket: the init's exit status (EOF: the pod died)

The member's root and bind sources are opened here (this process is not
confined) and travel by SCM_RIGHTS to the pod's Gofer (gofer/late.py).  At
the end the member host asks for a teardown and waits for it, so the Gofer
has let go of the rootfs before the shim unmounts it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
from typing import Any

from sentry.oci import bundle, pod
from sentry.oci.control import (
    Client,
    ControlError,
    FrameError,
    close_fds,
    read_frame,
    take_fds,
)
from sentry.oci.host import FORWARDED, Host, serve_created
from sentry.oci.lifecycle import write_report
from sentry.oci.process_extras import bundle_devices, linux_paths
from sentry.oci.state import Container, StateError, now_rfc3339

log = logging.getLogger("pyvisor")

JOIN_TIMEOUT = 30.0
SETUP_TIMEOUT = 60.0  # the member's mounts go through the Gofer: slow on a busy machine


def join(host: Host, req: dict[str, Any]) -> dict[str, Any]:
    """The pod sandbox's host: hand a member's channel, status socket and
    stdio (which came with ``req``) to the Sentry."""
    fds = take_fds(req)
    try:
        if len(fds) != 5:
            return {"ok": False, "error": "join needs a channel, a status socket and stdio"}
        with host.lock:
            if not host._live():
                return {"ok": False, "error": f"pod sandbox is {host.status}, not running"}
            return host._channel({"op": "add-member"}, fds, JOIN_TIMEOUT)
    finally:
        close_fds(fds)


class MemberHost(Host):
    """A member's host: the Host's control handlers over the member's channel."""

    def __init__(self, c: Container, b: bundle.Bundle, chan: socket.socket,
                 status: socket.socket) -> None:
        super().__init__(c, b, 0, chan, kernel_ops=True)
        self.status_sock = status
        self.aborted: int | None = None

    def start(self) -> dict[str, Any]:
        with self.lock:
            if self.status != "created":
                return {"ok": False, "error": f"cannot start a container that is {self.status}"}
            reply = self._channel({"op": "start"}, timeout=SETUP_TIMEOUT)
            if reply.get("ok"):
                self.status = "running"
                self.c.update(status="running", started=now_rfc3339())
        return reply

    def kill(self, sig: int, all_: bool, pid: int | None = None) -> dict[str, Any]:
        with self.lock:
            if self.status == "created":
                # Its init never ran: the container ends, as a signalled
                # init would (the status wait returns with this code).
                self.aborted = 128 + sig
                with contextlib.suppress(OSError):
                    self.status_sock.shutdown(socket.SHUT_RDWR)
                return {"ok": True}
        return super().kill(sig, all_, pid)

    def setup(self, b: bundle.Bundle) -> str | None:
        """Send the member's trees and config; an error message, or None."""
        from sentry import mountspec

        try:
            mounts = mountspec.from_oci(b.mounts, b.path)
            trees = pod.open_trees(b.root_path, mounts)
        except (bundle.BundleError, OSError) as exc:
            return f"pod member: {exc}"
        try:
            with self.lock:
                for t in trees:
                    reply = self._channel({"op": "tree", "index": t.index,
                                           "writable": t.writable}, t.fds)
                    if not reply.get("ok"):
                        return str(reply.get("error"))
                linux = b.raw.get("linux")
                reply = self._channel({
                    "op": "setup", "root": b.root_path, "process": b.raw.get("process"),
                    "mounts": [pod.mount_to_wire(m) for m in mounts],
                    "root_readonly": b.root_readonly,
                    "devices": [list(d) for d in bundle_devices(linux)],
                    "masked": linux_paths(linux, "maskedPaths"),
                    "readonly_paths": linux_paths(linux, "readonlyPaths"),
                }, timeout=SETUP_TIMEOUT)
        finally:
            pod.close_trees(trees)
        return None if reply.get("ok") else str(reply.get("error"))

    def wait_exit(self) -> int:
        """Block until the member's init exits; its exit code."""
        try:
            msg = read_frame(self.status_sock, None)
        except (OSError, FrameError):
            msg = None
        code = (msg or {}).get("exitStatus")
        if isinstance(code, int):
            return code
        return self.aborted if self.aborted is not None else 128 + signal.SIGKILL

    def teardown(self) -> None:
        """Ask the Sentry to let go of the member's trees, and wait for it."""
        with self.lock:
            self._channel({"op": "teardown"}, timeout=SETUP_TIMEOUT)


def _fail(ready_fd: int, message: str) -> int:
    write_report(ready_fd, {"ok": False, "error": message})
    return 1


def serve_member(c: Container, b: bundle.Bundle, ready_fd: int, sandbox_id: str,
                 console_fd: int | None = None) -> int:
    """A pod member's host process, for its whole life; its exit code.
    With process.terminal, ``console_fd`` (a host terminal: the replica of
    --console-socket's pty, or the caller's own) is the init's stdio, which
    the pod's Sentry bridges to a pty of its own (pod_sentry.Member)."""
    if b.process.terminal and console_fd is None:
        return _fail(ready_fd, "pod member: process.terminal needs a console")
    stdio = [console_fd] * 3 if b.process.terminal and console_fd is not None else [0, 1, 2]
    try:
        sandbox = c.root.container(sandbox_id)
        status = sandbox.current().get("status")
    except StateError as exc:
        return _fail(ready_fd, f"pod sandbox {sandbox_id!r}: {exc}")
    if status != "running":
        return _fail(ready_fd, f"pod sandbox {sandbox_id!r} is {status}, not running")
    chan, chan_theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    st, st_theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        client = Client(sandbox.socket_path)
        try:
            client.call({"op": "join", "id": c.id}, JOIN_TIMEOUT,
                        fds=[chan_theirs.fileno(), st_theirs.fileno(), *stdio])
        finally:
            client.close()
    except ControlError as exc:
        return _fail(ready_fd, f"pod sandbox {sandbox_id!r}: {exc}")
    finally:
        chan_theirs.close()
        st_theirs.close()
        if console_fd is not None and console_fd > 2:
            os.close(console_fd)  # the Sentry has its copy
    host = MemberHost(c, b, chan, st)
    error = host.setup(b)
    if error is not None:
        chan.close()
        return _fail(ready_fd, error)
    # The shim's stdio is the init's now (the Sentry has its own copies).
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)
    server = serve_created(c, b, host, ready_fd)
    code = host.wait_exit()
    for s in FORWARDED:
        signal.signal(s, signal.SIG_DFL)
    host.teardown()
    host.finished(code)
    server.close()
    chan.close()
    st.close()
    return code
