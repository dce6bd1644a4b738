"""The Sentry's side of a pod's later containers ("members", docs/pods.md).

A member arrives as ``add-member`` on the pod sandbox's host channel
(sentry_ops.py) with five descriptors: its own channel (the member's host
process, sentry/oci/pod_host.py, is at the other end), the socket its init's
exit status goes to, and the init's stdin, stdout and stderr.  Everything else
about the member then comes on its own channel, one frame at a time, and is
answered with the frame's ``seq`` as on the sandbox's channel:

- ``tree`` (its root, index -1, or a bind source, index N; one or two
  descriptors): passed on to the Gofer (gofer/late.py) as aname
  ``pod<K>:`` (the root) or ``pod<K>:m<N>``;
- ``setup``: its process and mounts; builds its mount namespace over those
  trees (rootfs.build_member), with /proc, /dev and the rest of its own;
- ``start``, ``kill``, ``ps``, ``exec``: as for a container of its own, but
  limited to the member's processes.

A member's processes are the thread groups whose mount namespace is the
member's (``tg.fs.ns``): its init and exec'd processes start there, and fork
keeps it.  They share the pod's kernel: its pid space (so one process list,
as Kubernetes' shareProcessNamespace), its network stack and loopback, its
SysV IPC and POSIX message queues, its hostname.

When the member's init exits, its status goes out, and every other process
of the member is killed, as a pid namespace's end kills its processes.  When
the member's host closes the channel (it exited, or was SIGKILLed) the
member is torn down: its processes killed, its filesystems' fids clunked and
its trees dropped from the Gofer, so its rootfs holds no descriptor of ours
and containerd can unmount it.

Everything here runs after the Sentry confined itself: no open, no socket;
descriptors arrive by SCM_RIGHTS and leave by sendmsg on sockets made before
(the Gofer's tree socket: gofer/spawn.py spawn_gofer(late=True)).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
import socket
import threading
from typing import TYPE_CHECKING, Any

from sentry import rootfs
from sentry.kernel.errors import SyscallError
from sentry.kernel.signals import SigInfo
from sentry.mountspec import MountError
from sentry.oci import bundle, pod
from sentry.oci.control import FrameError, close_fds, read_frame, send_frame, valid_signal
from sentry.tty.console import ConsoleBridge  # now: the confined Sentry opens no files
from sentry.vfs.resolve import FsContext

if TYPE_CHECKING:
    from sentry.kernel.kernel import Kernel
    from sentry.kernel.threadgroup import ThreadGroup
    from sentry.sandbox import Booted

log = logging.getLogger("pyvisor")

SIGKILL = 9
REAP_WAIT = 5.0  # how long teardown waits for killed processes to die
_numbers = itertools.count(1)
_members: set[Member] = set()  # live members: the sandbox container's ps leaves them out


def is_member_process(tg: ThreadGroup) -> bool:
    """Whether ``tg`` belongs to one of the pod's later containers."""
    ns = getattr(tg.fs, "ns", None)
    return ns is not None and any(m.ns is ns for m in list(_members))


class Member:
    """One later container of the pod, inside the pod's Sentry."""

    def __init__(self, booted: Booted, chan: socket.socket, status: socket.socket,
                 stdio: list[int]) -> None:
        self.booted = booted
        self.kernel: Kernel = booted.kernel
        self.chan = chan
        self.status: socket.socket | None = status
        self.stdio: list[int] | None = stdio
        self.prefix = f"pod{next(_numbers)}:"
        self.trees: list[str] = []
        self.made: list[Any] = []
        self.ns: Any = None
        self.ctx: FsContext | None = None
        self.process: Any = None  # the raw OCI process object
        self.init: ThreadGroup | None = None
        self.console: ConsoleBridge | None = None  # process.terminal's bridge

    # -- which processes are ours ---------------------------------------------

    def groups(self) -> list[ThreadGroup]:
        """The member's live thread groups (caller holds kernel.lock)."""
        ns = self.ns
        return [tg for tg in self.kernel.thread_groups.values()
                if not tg.zombie and ns is not None and getattr(tg.fs, "ns", None) is ns]

    def _signal_all(self, sig: int) -> None:
        with self.kernel.lock:
            for tg in self.groups():
                self.kernel.send_group(tg, SigInfo(sig), external=True)

    # -- requests -------------------------------------------------------------

    def dispatch(self, msg: dict[str, Any], fds: list[int]) -> dict[str, Any]:
        op = msg.get("op")
        if op == "tree":
            taken = list(fds)
            fds.clear()
            return self._tree(msg, taken)
        if op == "setup":
            return self._setup(msg)
        if op == "start":
            return self._start()
        if op == "teardown":
            self.teardown()
            return {"ok": True}
        if op == "kill":
            return self._kill(valid_signal(msg.get("signal")), bool(msg.get("all")),
                              msg.get("pid"))
        if op == "ps":
            with self.kernel.lock:
                procs = [{"pid": tg.tgid, "ppid": tg.parent.tgid if tg.parent else 0,
                          "cmd": b" ".join(tg.argv).decode("utf-8", "replace")}
                         for tg in self.groups()]
            return {"ok": True, "processes": sorted(procs, key=lambda p: p["pid"])}
        if op in ("pause", "resume"):
            if self.ns is None:
                return {"ok": False, "error": "container is not set up"}
            (self.kernel.freeze if op == "pause" else self.kernel.thaw)(self.ns)
            return {"ok": True}
        if op == "stats":
            return self._stats()
        if op == "exec":
            if self.ctx is None or self.init is None:
                return {"ok": False, "error": "container is not running"}
            from sentry.oci import sentry_ops
            from sentry.sandbox import Booted

            taken = list(fds)
            fds.clear()
            return sentry_ops.exec_in(Booted(self.kernel, self.ctx), msg.get("process"), taken)
        return {"ok": False, "error": f"unknown op {op!r}"}

    def _stats(self) -> dict[str, Any]:
        """The member's share of the pod's usage (`events --stats`): its
        processes' application CPU time, the Sentry's time on their syscalls,
        the private memory of their address spaces (each arena once; shared
        objects are the pod's), and their live tasks."""
        from sentry.kernel.cputime import group_sys_ns

        with self.kernel.lock:
            groups = self.groups()
            tasks = sum(len(tg.live_tasks()) for tg in groups)
        arenas = {id(a): a for tg in groups
                  if (a := getattr(tg.mm, "arena", None)) is not None}
        return {"ok": True, "user": sum(tg.cpu_ns() for tg in groups),
                "kernel": sum(group_sys_ns(tg) for tg in groups),
                "memory": sum(a.host_bytes() for a in arenas.values()), "tasks": tasks}

    def _tree(self, msg: dict[str, Any], fds: list[int]) -> dict[str, Any]:
        late = getattr(self.booted.root.client, "late", None) if self.booted.root else None
        index, writable = msg.get("index"), msg.get("writable")
        try:
            if late is None:
                raise ValueError("the sandbox is not a pod's (no tree socket)")
            if (isinstance(index, bool) or not isinstance(index, int) or index < -1
                    or not isinstance(writable, bool) or not 1 <= len(fds) <= 2):
                raise ValueError("bad tree")
            name = self.prefix if index == -1 else f"{self.prefix}m{index}"
            socket.send_fds(late, [json.dumps({"name": name, "writable": writable}).encode()],
                            fds)
            self.trees.append(name)
            return {"ok": True}
        except (ValueError, OSError) as exc:
            return {"ok": False, "error": f"pod: {exc}"}
        finally:
            close_fds(fds)  # the Gofer has its own copies

    def _setup(self, msg: dict[str, Any]) -> dict[str, Any]:
        if self.ns is not None or self.prefix not in self.trees:
            return {"ok": False, "error": "pod: setup before the root, or twice"}
        try:
            p = bundle.parse_process(msg.get("process"))
            mounts = [pod.mount_from_wire(m) for m in msg.get("mounts") or []]
            devices = [tuple(d) for d in msg.get("devices") or []]
            client = self.booted.root.client
            ns, self.made = rootfs.build_member(
                client, self.kernel, self.booted.root.lower, prefix=self.prefix,
                root_dir=str(msg.get("root") or ""), mounts=mounts,
                root_readonly=bool(msg.get("root_readonly")), devices=devices,
                linux_paths=(list(msg.get("masked") or []),
                             list(msg.get("readonly_paths") or [])))
        except bundle.BundleError as exc:
            return {"ok": False, "error": str(exc).removeprefix(f"{bundle.CONFIG_NAME}: ")}
        except (ValueError, TypeError, MountError) as exc:
            return {"ok": False, "error": f"pod: {exc}"}
        except SyscallError as exc:
            return {"ok": False, "error": f"pod: cannot build the root: {os.strerror(exc.errno)}"}
        self.ns, self.ctx = ns, FsContext.for_namespace(ns)
        self.process = p
        _members.add(self)
        return {"ok": True}

    def _start(self) -> dict[str, Any]:
        from sentry.oci import sentry_ops
        from sentry.sandbox import Booted, LaunchError

        if self.ctx is None or self.stdio is None or self.process is None:
            return {"ok": False, "error": "cannot start: not set up, or started already"}
        stdio, self.stdio = self.stdio, None
        spec = sentry_ops.process_spec(self.process, stdio)
        if self.process.terminal:
            # The member's console (its host passed the host terminal as all
            # three stdio fds): bridged to a pty of the pod's own, as for an
            # `exec --tty` (sentry/tty/console.py).
            close_fds(stdio[1:])
            try:
                self.console = ConsoleBridge(stdio[0], kernel=self.kernel,
                                             uid=self.process.user.uid, owned=True)
            except (OSError, RuntimeError) as exc:
                close_fds(stdio[:1])
                return {"ok": False, "error": f"process.terminal: {exc}"}
            spec.stdio, spec.console = None, self.console
        try:
            task = Booted(self.kernel, self.ctx).exec(spec)  # owns stdio from here
        except LaunchError as exc:
            self._close_console(0)
            return {"ok": False, "error": exc.runc_message(), "status": exc.status}
        if self.console is not None:
            self.console.start()
        self.init = task.tg
        threading.Thread(target=self._watch_init, daemon=True,
                         name=f"pod-member-{task.pid}").start()
        return {"ok": True, "pid": task.pid}

    def _kill(self, sig: int, all_: bool, pid: Any) -> dict[str, Any]:
        with self.kernel.lock:
            mine = self.groups()
            if pid is not None:
                groups = [tg for tg in mine if tg.tgid == pid]
                if not groups:
                    return {"ok": False, "error": f"no process {pid!r} in the container"}
            elif all_:
                groups = mine
            else:
                groups = [self.init] if self.init is not None and not self.init.zombie else []
            for tg in groups:
                self.kernel.send_group(tg, SigInfo(sig), external=True)
        return {"ok": True}

    # -- the end --------------------------------------------------------------

    def _watch_init(self) -> None:
        """The init's exit status to the member's host; then its other
        processes die, as with the end of a pid namespace."""
        from sentry.sandbox import wait_status_to_exit_code

        tg = self.init
        assert tg is not None
        with self.kernel.lock:
            while not tg.zombie:
                self.kernel.child_exit.wait(1.0)
            code = wait_status_to_exit_code(tg.exit_status)
        self._signal_all(SIGKILL)
        self._close_console()  # its last output first, as for a container's own
        status, self.status = self.status, None
        if status is None:
            return
        try:
            status.settimeout(5.0)
            send_frame(status, {"exitStatus": code})
        except OSError:
            pass
        finally:
            status.close()

    def _close_console(self, drain_s: float = 2.0) -> None:
        console, self.console = self.console, None
        if console is not None:
            console.close(drain_s=drain_s)

    def teardown(self) -> None:
        """The member has ended (its host asks, or is gone): kill what is
        left, let go of its trees.  Idempotent."""
        if self.ns is not None and self.ns in self.kernel.frozen_namespaces:
            self.kernel.thaw(self.ns)  # a paused member's end: nothing stays held
        self._signal_all(SIGKILL)
        with self.kernel.lock:
            waited = 0.0
            while self.groups() and waited < REAP_WAIT:
                self.kernel.child_exit.wait(0.1)
                waited += 0.1
        close_fds(self.stdio or [])
        self._close_console(0)
        if self.status is not None:
            self.status.close()
        for fs in self.made:
            with contextlib.suppress(SyscallError):
                fs.close()
        self.made = []
        root = self.booted.root
        late = getattr(root.client, "late", None) if root is not None else None
        if late is not None and self.trees:
            try:
                for name in self.trees:
                    socket.send_fds(late, [json.dumps({"drop": name}).encode()], [])
                # The Gofer reads its tree socket at a Tattach: one, at once.
                root.client.clunk(root.client.attach(""))
            except (OSError, SyscallError) as exc:
                log.warning("pod: cannot drop a member's trees: %s", exc)
        self.trees = []
        _members.discard(self)


def add_member(booted: Booted, fds: list[int]) -> dict[str, Any]:
    """``add-member``: take the member's channel, status socket and stdio
    (``fds``, ours now) and serve its channel on a thread of its own."""
    if booted.root is None or getattr(booted.root.client, "late", None) is None:
        close_fds(fds)
        return {"ok": False, "error": "the sandbox is not a pod's: it takes no other container"}
    if len(fds) != 5:
        close_fds(fds)
        return {"ok": False, "error": "add-member needs a channel, a status socket and stdio"}
    try:
        chan = socket.socket(fileno=fds[0])
        status = socket.socket(fileno=fds[1])
    except OSError as exc:
        close_fds(fds)
        return {"ok": False, "error": f"add-member: {exc.strerror}"}
    m = Member(booted, chan, status, fds[2:])
    threading.Thread(target=_serve, args=(m,), daemon=True, name="pod-member").start()
    return {"ok": True}


def _serve(m: Member) -> None:
    try:
        while True:
            fds: list[int] = []
            try:
                msg = read_frame(m.chan, None, fds)
            except (FrameError, OSError):
                close_fds(fds)
                return
            if msg is None:
                close_fds(fds)
                return
            try:
                reply = m.dispatch(msg, fds)
            except (ValueError, TypeError) as exc:
                reply = {"ok": False, "error": str(exc)}
            except Exception as exc:  # noqa: BLE001 - a failed command must not end the pod
                log.exception("pod member op %r failed", msg.get("op"))
                reply = {"ok": False, "error": f"internal error: {exc!r}"}
            finally:
                close_fds(fds)
            reply["seq"] = msg.get("seq")
            try:
                send_frame(m.chan, reply)
            except OSError:
                return
    finally:
        m.teardown()
        m.chan.close()
