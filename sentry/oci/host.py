"""The sandbox host: the process a container *is*, as seen from the host.

``runsc.py sandbox-serve ID`` runs :func:`serve`.  It forks the Sentry (the
process that boots the kernel and runs the container's init) and then stays
as its parent for the container's whole life:

    create --spawns--> sandbox host (pid in state.json / --pid-file)
                         |  control.sock: start, state, kill, ps, wait,
                         |    exec, exec-wait, pause, resume, stats
                         |  socketpair (same msgpack frames; the Sentry's
                         v    side is sentry_ops.py)
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
- kill: before start, a signal for the container is sent to the Sentry
  process itself: its default action ends the whole sandbox, which is what
  most signals do to an init that has not run yet.  Once started, the signal
  goes to the init's thread group inside the kernel (``send_group``), so an
  application's own handlers see it.
- exec: the CLI's stdio arrives with its request (SCM_RIGHTS) and goes on to
  the Sentry with a fresh socketpair end; the Sentry writes the process's
  exit status there.  The host keeps the other end for ``exec-wait`` and
  closes its copies of everything else at once, so the exec's stdout reaches
  EOF when the process (not the host) lets go of it.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import itertools
import logging
import os
import signal
import socket
import sys
import threading
import time
from typing import Any

from sentry import memlimit, userns
from sentry.oci import bundle, cgroups, host_userns, namespaces, netns, pod
from sentry.oci.control import (
    FrameError,
    close_fds,
    read_frame,
    send_frame,
    take_fds,
    valid_signal,
)
from sentry.oci.control_server import ControlServer
from sentry.oci.lifecycle import write_report
from sentry.oci.process_extras import (
    apply_host_oom_score_adj,
    bundle_devices,
    id_map,
    linux_paths,
    oom_score_adj,
)
from sentry.oci.state import (
    Container,
    now_rfc3339,
    process_start_time,
)
from shm import faults, layout

log = logging.getLogger("pyvisor")

READY_TIMEOUT = 60.0
CHANNEL_TIMEOUT = 10.0
CHECKPOINT_TIMEOUT = 120.0  # quiescing (up to 10 s) and writing every page
EXEC_TIMEOUT = 60.0  # loading a program goes through the Gofer: slow on a busy machine
EXIT_NOT_STARTED = 128 + signal.SIGKILL  # host gone before start: as if SIGKILLed
FORWARDED = (signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2,
             signal.SIGTERM, signal.SIGALRM, signal.SIGCONT, signal.SIGWINCH)
_PR_SET_PDEATHSIG = 1


# -- the Sentry side ---------------------------------------------------------

def _show_id_maps(b: bundle.Bundle) -> None:
    """/proc/PID/uid_map and gid_map show the config's user namespace mappings."""
    from sentry.procfs import piddir

    for key, name in (("uidMappings", b"uid_map"), ("gidMappings", b"gid_map")):
        text = id_map(b.raw.get("linux"), key)
        if text is not None:
            piddir.ID_MAPS[name] = text


def _sentry_main(chan: socket.socket, b: bundle.Bundle, strace: bool,
                 console_fd: int | None = None, kernel_release: str | None = None,
                 overlay: str = "none", restore: str | None = None) -> int:
    """Boot the sandbox for ``b``; the init waits in before_start for `start`."""
    try:  # its own user namespace if the host has none (host_userns.py)
        host_userns.sentry_enter(NETWORK)
    except userns.UserNamespaceError as exc:
        with contextlib.suppress(OSError):
            send_frame(chan, {"ready": False, "error": str(exc), "status": 1})
        return 1
    from gofer import prefork
    # What both the Gofer and the Sentry import, imported once before the
    # fork: the Gofer shares these pages instead of making its own copy
    # (~3 MB charged to the container's memory limit otherwise).
    prefork.import_shared()
    # The Gofer's fork point, before the kernel is imported: single-threaded
    # (forked from the host before its threads), no memory file yet; it
    # confines itself while we boot (gofer/prefork.py).
    prefork.prefork()
    faults.at("sentry-preforked")
    from sentry import sandbox
    from sentry.kernel.task import SentryBug
    from sentry.oci import sentry_ops
    from sentry.systrap.stubs import StubDied, StubError

    _show_id_maps(b)
    booted: list[sandbox.Booted] = []

    started: dict[str, Any] = {}
    fds: list[int] = []

    def before_confine() -> None:
        """Wait for `start` (its frame brings the packet descriptor), and
        import PyTCP only now, only when the namespace has an interface for
        it: a loopback-only sandbox never pays its ~3-4 MB."""
        send_frame(chan, {"ready": True, "kernel": bool(booted)})
        msg = read_frame(chan, None, fds)
        if msg is None or msg.get("op") != "start":
            os._exit(EXIT_NOT_STARTED)
        started.update(msg)
        if NETWORK == "sandbox" and fds and isinstance(msg.get("net"), dict):
            from sentry.net.netstack import stack as netstack

            netstack.prepare()  # imports, before the Sentry's filter goes on

    def before_start() -> None:
        send_frame(chan, {"started": True})  # confined: start's answer (Host.start)
        msg = started
        if NETWORK == "host" and booted:
            # The runtime's hooks configured the namespace after boot: copy
            # its interfaces again (host mode's filter allows the netlink socket).
            from sentry.net import hostinet_config

            hostinet_config.refresh(booted[0].kernel)
        if NETWORK == "sandbox" and fds and isinstance(msg.get("net"), dict) and booted:
            # The one packet descriptor into the host network (sentry/net/netstack).
            from sentry.net.netstack import stack as netstack

            fd = fds.pop(0)
            try:
                netstack.attach(fd, msg["net"], booted[0].kernel.netconfig, fds)
            except (ValueError, KeyError, TypeError, OSError) as exc:  # a bad description
                log.warning("--network=sandbox: cannot attach (%s); loopback only", exc)
                os.close(fd)
        for fd in fds:
            os.close(fd)
        if booted:
            threading.Thread(target=sentry_ops.serve, args=(chan, booted[0]),
                             daemon=True, name="oci-sentry-cmds").start()

    from sentry import mountspec

    p = b.process
    try:
        init = sentry_ops.process_spec(p, None)
        mounts = mountspec.from_oci(b.mounts, b.path)
        saved = _read_image(restore)
    except (bundle.BundleError, ValueError) as exc:
        with contextlib.suppress(OSError):
            send_frame(chan, {"ready": False, "error": str(exc), "status": 1})
        return 1
    opts = sandbox.SandboxOptions(
        root=b.root_path, strace=strace, hostname=b.hostname or "pyvisor",
        cwd=p.cwd, before_start=before_start, before_confine=before_confine,
        on_kernel=booted.append,
        warn=lambda msg: log.warning("%s", msg),
        user=(init.uid, init.gid, init.groups), rlimits=init.rlimits,
        no_new_privs=init.no_new_privs, caps=init.caps, protect_init=True,
        # process.terminal: this host terminal fd becomes the init's terminal
        # through the Sentry's own pty (sentry/tty/console.py).
        console_fd=console_fd, console_owned=console_fd is not None and console_fd > 2,
        mounts=mounts, root_readonly=b.root_readonly,
        root_overlay=overlay == "root:memory",  # else written through, as runc (rootfs.py)
        devices=bundle_devices(b.raw.get("linux")), oom_score_adj=oom_score_adj(b.raw),
        masked_paths=linux_paths(b.raw.get("linux"), "maskedPaths"),
        readonly_paths=linux_paths(b.raw.get("linux"), "readonlyPaths"),
        pids_limit=cgroups.pids_limit(b.raw.get("linux")),
        # The Sentry's filter is the mode's (sentry/confine_filters.py).
        network=NETWORK if NETWORK in ("sandbox", "host") else "none", restore=saved,
        pod=pod.is_pod_sandbox(b.annotations),  # its Gofer takes members' trees
        **({"kernel_release": kernel_release} if kernel_release else {}),
    )
    try:
        return sandbox.run(init.argv, init.env, opts)
    except sandbox.LaunchError as exc:
        with contextlib.suppress(OSError):
            send_frame(chan, {"ready": False, "error": exc.runc_message(), "status": exc.status})
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


def _read_image(directory: str | None) -> dict[str, Any] | None:
    """The checkpoint image to restore (read before the Sentry confines
    itself); ValueError with the image's one-line error."""
    if directory is None:
        return None
    from sentry.checkpoint import image

    try:
        return image.read(directory)
    except image.ImageError as exc:
        raise ValueError(str(exc)) from None


def _fork_sentry(b: bundle.Bundle, strace: bool, keep_out: list[int],
                 console_fd: int | None = None,
                 kernel_release: str | None = None, overlay: str = "none",
                 restore: str | None = None) -> tuple[int, socket.socket]:
    host_side, sentry_side = socket.socketpair(socket.AF_UNIX,
                                               socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    host_pid = os.getpid()
    # Every object so far is shared with the Sentry after the fork: frozen, the
    # cyclic GC of neither process walks them, which would write each one's
    # header and so copy (and charge to the container again) every page.
    gc.freeze()
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
            faults.at("sentry-start")
            _one_malloc_arena()
            code = _sentry_main(sentry_side, b, strace, console_fd, kernel_release, overlay,
                                restore)
        finally:
            with contextlib.suppress(Exception):
                sys.stdout.flush()
                sys.stderr.flush()
            os._exit(code)
    sentry_side.close()
    return pid, host_side


# -- the host side -------------------------------------------------------------

class Host:
    """The host process's view of its container; handlers run on control threads.

    Status: created -> running <-> paused -> stopped.  ``lock`` serialises
    status changes and the round trips on the Sentry channel (one request
    in flight; replies are matched by ``seq``).
    """

    def __init__(self, c: Container, b: bundle.Bundle, sentry_pid: int,
                 chan: socket.socket, kernel_ops: bool) -> None:
        self.c = c
        self.b = b
        self.sentry_pid = sentry_pid
        self.chan = chan
        self.kernel_ops = kernel_ops
        # --network=sandbox in a user namespace: opens start's packet socket
        self.packet: host_userns.PacketHelper | None = None
        self.lock = threading.Lock()  # status transitions and channel round trips
        self.status = "created"
        self.exit_code: int | None = None
        self.exited = threading.Event()
        self._seq = 0
        # exec token -> the socket the Sentry writes that process's exit status to
        self._execs: dict[int, socket.socket] = {}
        self._exec_tokens = itertools.count(1)
        self._execs_lock = threading.Lock()

    def state(self) -> dict[str, Any]:
        st = self.c.read() or {}
        st["status"] = self.status
        return {k: v for k, v in st.items() if k != "hostStartTime"}

    def _channel(self, msg: dict[str, Any], fds: list[int] | None = None,
                 timeout: float = CHANNEL_TIMEOUT) -> dict[str, Any]:
        """One request/response with the Sentry; caller holds self.lock."""
        self._seq += 1
        seq = self._seq
        deadline = time.monotonic() + timeout
        try:
            send_frame(self.chan, {**msg, "seq": seq}, fds or ())
            while True:
                reply = read_frame(self.chan, max(0.0, deadline - time.monotonic()))
                if reply is None or reply.get("seq") == seq:
                    break
                # else: the late answer to a request we gave up on
        except (OSError, FrameError, TimeoutError) as exc:
            return {"ok": False, "error": f"the Sentry did not answer: {exc}"}
        return reply if reply is not None else {"ok": False, "error": "container is stopped"}

    def _live(self) -> bool:
        """Running or paused with the kernel reachable (caller holds self.lock)."""
        return self.status in ("running", "paused") and self.kernel_ops

    def start(self) -> dict[str, Any]:
        with self.lock:
            if self.status != "created":
                return {"ok": False, "error": f"cannot start a container that is {self.status}"}
            msg, handed = host_userns.network_for_start(self.b, NETWORK, self.packet)
            self.packet = None  # done with, whatever it answered
            try:
                send_frame(self.chan, msg, [s.fileno() for s in handed])
            except OSError:
                return {"ok": False, "error": "cannot start: the sandbox exited"}
            finally:
                for s in handed:
                    s.close()  # the Sentry's now; this process keeps none
            # The Sentry confines itself once start arrives (before_confine):
            # start succeeds when it says it did, about to run the init.
            try:
                reply = read_frame(self.chan, READY_TIMEOUT)
            except (FrameError, OSError, TimeoutError):
                reply = None
            if not isinstance(reply, dict) or not reply.get("started"):
                return {"ok": False, "error": "cannot start: the sandbox exited during start-up"}
            self.status = "running"
            self.c.update(status="running", started=now_rfc3339())
        return {"ok": True}

    def kill(self, sig: int, all_: bool, pid: int | None = None) -> dict[str, Any]:
        with self.lock:
            if self.status == "stopped":
                return {"ok": False, "error": "container is not running"}
            if self._live():
                msg: dict[str, Any] = {"op": "kill", "signal": sig, "all": all_}
                if pid is not None:
                    msg["pid"] = pid
                return self._channel(msg)
            if pid is not None:
                return {"ok": False, "error": "container is not running"}
            try:
                os.kill(self.sentry_pid, sig)
            except ProcessLookupError:
                return {"ok": False, "error": "container is not running"}
        return {"ok": True}

    def ps(self) -> dict[str, Any]:
        with self.lock:
            if self.status == "stopped":
                return {"ok": True, "processes": []}
            if self._live():
                return self._channel({"op": "ps"})
        return {"ok": True, "processes": [
            {"pid": 1, "ppid": 0, "cmd": " ".join(self.b.process.args)}]}

    def freeze(self, pause: bool) -> dict[str, Any]:
        """pause (running -> paused) or resume (paused -> running)."""
        want, new = ("running", "paused") if pause else ("paused", "running")
        with self.lock:
            if self.status != want or not self.kernel_ops:
                return {"ok": False, "error": f"container is {self.status}, not {want}"}
            reply = self._channel({"op": "pause" if pause else "resume"})
            if reply.get("ok"):
                self.status = new
                self.c.update(status=new)
        return reply

    def checkpoint(self, req: dict[str, Any]) -> dict[str, Any]:
        """Have the Sentry write its image to the fd that came with ``req``;
        without ``leave_running`` the container is then killed, as runc's
        checkpoint leaves it (sentry/checkpoint/save.py)."""
        fds = take_fds(req)
        try:
            if len(fds) != 1:
                return {"ok": False, "error": "checkpoint needs the image file"}
            leave = bool(req.get("leave_running"))
            with self.lock:
                if not self._live():  # running, or paused (containerd pauses first)
                    return {"ok": False, "error": f"container is {self.status}, not running"}
                reply = self._channel({"op": "checkpoint", "leave_running": leave}, fds,
                                      CHECKPOINT_TIMEOUT)
                if reply.get("ok") and not leave:
                    self._channel({"op": "kill", "signal": signal.SIGKILL, "all": True})
            return reply
        finally:
            close_fds(fds)

    def stats(self) -> dict[str, Any]:
        return self.forward({"op": "stats"})

    def forward(self, msg: dict[str, Any]) -> dict[str, Any]:
        """A request only the running Sentry can answer (stats, debug)."""
        with self.lock:
            if not self._live():
                return {"ok": False, "error": f"container is {self.status}, not running"}
            return self._channel(msg)

    def exec(self, req: dict[str, Any]) -> dict[str, Any]:
        """Start ``req["process"]`` in the container with the stdio that came
        with the request; reply with its pid and a token for exec-wait."""
        stdio = take_fds(req)
        try:
            if len(stdio) != 3:
                return {"ok": False, "error": "exec needs the process's stdin, stdout, stderr"}
            if not isinstance(req.get("process"), dict):
                return {"ok": False, "error": "exec: process must be an object"}
            mine, theirs = socket.socketpair(socket.AF_UNIX,
                                             socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
            try:
                with self.lock:
                    if not self._live():
                        return {"ok": False, "error": f"container is {self.status}, "
                                                      "not running"}
                    reply = self._channel({"op": "exec", "process": req["process"]},
                                          [*stdio, theirs.fileno()], EXEC_TIMEOUT)
            finally:
                theirs.close()
            if not reply.get("ok"):
                mine.close()
                return reply
            with self._execs_lock:
                token = next(self._exec_tokens)
                self._execs[token] = mine
            return {"ok": True, "pid": reply.get("pid"), "exec": token}
        finally:
            close_fds(stdio)  # the Sentry has its own copies now

    def exec_wait(self, token: Any) -> dict[str, Any]:
        """Block until the exec'd process ``token`` exits; its exit status.
        The Sentry's death (EOF) ends the wait: the process died with it."""
        with self._execs_lock:
            sock = self._execs.pop(token, None) if isinstance(token, int) else None
        if sock is None:
            return {"ok": False, "error": f"no exec {token!r} to wait for"}
        try:
            msg = read_frame(sock, None)
        except (OSError, FrameError):
            msg = None
        finally:
            sock.close()
        code = (msg or {}).get("exitStatus")
        return {"ok": True, "exitStatus": code if isinstance(code, int)
                else 128 + signal.SIGKILL}

    def handle(self, req: dict[str, Any]) -> dict[str, Any]:
        op = req.get("op")
        if op == "state":
            return {"ok": True, "state": self.state()}
        if op == "start":
            return self.start()
        if op == "kill":
            pid = req.get("pid")
            try:
                sig = valid_signal(req.get("signal", signal.SIGTERM))
                if pid is not None and (isinstance(pid, bool) or not isinstance(pid, int)):
                    raise ValueError(f"bad pid {pid!r}")
            except ValueError as exc:
                return {"ok": False, "error": str(exc)}
            return self.kill(sig, bool(req.get("all", False)), pid)
        if op == "ps":
            return self.ps()
        if op == "wait":
            self.exited.wait()
            return {"ok": True, "exitStatus": self.exit_code}
        if op == "exec":
            return self.exec(req)
        if op == "exec-wait":
            return self.exec_wait(req.get("exec"))
        if op in ("pause", "resume"):
            return self.freeze(op == "pause")
        if op == "stats":
            return self.stats()
        if op == "checkpoint":
            return self.checkpoint(req)
        if op == "join":  # a pod's later container (sentry/oci/pod_host.py)
            from sentry.oci import pod_host

            return pod_host.join(self, req)
        if op in ("stacks", "profile-start", "profile-read"):
            return self.forward({"op": op, "seconds": req.get("seconds")})
        return {"ok": False, "error": f"unknown op {op!r}"}

    def finished(self, code: int) -> None:
        with self.lock:
            self.status = "stopped"
            self.exit_code = code
            self.c.update(status="stopped", exitStatus=code, finished=now_rfc3339())
        self.exited.set()


def _one_malloc_arena() -> None:
    """One malloc arena for all of the Sentry's threads (M_ARENA_MAX=1): glibc
    gives each thread that mallocs an arena of its own, up to 8 per CPU, and
    each keeps its free pages; with one thread per task that is megabytes a
    container's memory limit pays for.  The GIL serialises the Sentry's
    allocations anyway, so one arena costs no contention."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).mallopt(-8, 1)  # M_ARENA_MAX


def _trim_heap() -> None:
    """Give the heap's free pages back to the host (malloc_trim): what parsing
    and forking left is charged to the container's memory limit otherwise."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).malloc_trim(0)


def _wait_code(pid: int) -> int:
    """Wait for the Sentry and reap it, first removing any Gofer channel
    names it left in /dev/shm: a Sentry killed at start-up (the OOM killer
    under a small memory limit) before both ends had opened the channel, with
    its Gofer killed too, leaves them for nobody else.  The names carry this
    process's host pid (shm/layout.py creator tags, set before the fork),
    which no other live process has."""
    from shm.layout import creator_tag
    from shm.segment import unlink_created_by  # posix_ipc: only now

    with contextlib.suppress(ChildProcessError):
        os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
    unlink_created_by(creator_tag())
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


def _detach_stdio() -> None:
    """With a console socket the container's stdio is its terminal: let go of
    create's stdin/stdout/stderr, which a shim reads to EOF (go-runc gives a
    terminal create no stdio of its own and waits for EOF on its output), as
    runc's create lets go of them.  Logging goes to --log."""
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)


NETWORK = "none"  # serve's --network, read by the Sentry and by Host.start


def serve_created(c: Container, b: bundle.Bundle, host: Host, ready_fd: int) -> ControlServer:
    """The container is created: its state written (this process is its
    pid), its control socket served, the signals a shim sends forwarded to
    the sandbox, and ``create`` told it may return.  Shared by a sandbox's
    host and a pod member's (pod_host.py)."""
    server = ControlServer(c.socket_path, host.handle)
    pid = layout.host_view_pid()  # pid 1 of the container's pid namespace: os.getpid() says 1
    c.write({
        "ociVersion": b.oci_version, "id": c.id, "status": "created", "pid": pid,
        "bundle": b.path, "rootfs": b.root_path, "created": now_rfc3339(), "owner": "",
        "annotations": b.annotations, "hostStartTime": process_start_time(pid),
    })
    server.start()

    def forward(signum: int, _frame: object) -> None:
        threading.Thread(target=host.kill, args=(signum, False), daemon=True).start()

    for s in FORWARDED:
        signal.signal(s, forward)
    write_report(ready_fd, {"ok": True, "pid": pid})
    return server


def serve(c: Container, bundle_dir: str, ready_fd: int, strace: bool, *,
          console_fd: int | None = None, kernel_release: str | None = None,
          overlay: str = "none", network: str = "none", restore: str | None = None) -> int:
    """The sandbox host's whole life; returns the container's exit code."""
    global NETWORK
    NETWORK = network
    if console_fd is not None and console_fd > 2:
        _detach_stdio()
    try:
        raw = bundle.read_config(os.path.join(c.dir, "config.json"))
        b = bundle.parse(raw, bundle_dir)
    except bundle.BundleError as exc:
        write_report(ready_fd, {"ok": False, "error": str(exc)})
        return 1
    sandbox_id = pod.sandbox_to_join(b.annotations, c.id)
    if sandbox_id is not None:  # into that pod's Sentry: no namespaces, no boot
        from sentry.oci import pod_host

        return pod_host.serve_member(c, b, ready_fd, sandbox_id, console_fd)
    if NETWORK == "sandbox" and "network" not in b.namespaces:
        # No namespace of its own: the interface would be the host's (never
        # take it over); loopback only, as runsc without a network namespace.
        NETWORK = "none"
    try:  # before any fork or thread: the namespace tools see at /proc/PID/ns/net
        namespaces.join(b.namespaces)  # the paths given (sentry/oci/namespaces.py)
        namespaces.unshare(b.namespaces)  # and new ones for the types without a path
        netns.enter_network_namespace(b.namespaces)
    except (netns.NamespaceError, namespaces.NamespaceError) as exc:
        write_report(ready_fd, {"ok": False, "error": str(exc)})
        return 1
    # `create` runs the create-time hooks (e.g. Docker's, which configures
    # this network namespace) while the Sentry boots (lifecycle._create_hooks).
    write_report(ready_fd, {"stage": "namespaces", "pid": layout.host_view_pid()}, last=False)
    # Before the fork: the Sentry, Gofer and stubs inherit the cgroups (which
    # `create` usually joined already, and this process inherited).
    if not cgroups.recorded(c.dir):
        cgroups.join(b.raw.get("linux"), c.dir, os.getpid())
    # The memory limit is read now, while /proc/self/cgroup still names the
    # container's cgroup: inside a new cgroup namespace it reads "/", which
    # the host's hierarchy takes for its root (unlimited), and the Sentry
    # (forked below, inheriting the value) would size its caches and buffer
    # account for the whole machine.
    memlimit.limit()
    try:
        namespaces.unshare_cgroup(b.namespaces)
    except namespaces.NamespaceError as exc:
        write_report(ready_fd, {"ok": False, "error": str(exc)})
        return 1
    apply_host_oom_score_adj(b.raw)
    # The channel names of the Sentry and its Gofer carry this process's host
    # pid, not the Sentry's pid in the container's namespace (shm/layout.py).
    layout.set_creator_tag()
    try:  # the last step with the initial user namespace's powers (host_userns.py)
        own = (host_userns.enter(NETWORK) if "user" in b.namespaces
               else host_userns.HostNamespace())
    except userns.UserNamespaceError as exc:
        write_report(ready_fd, {"ok": False, "error": str(exc)})
        return 1
    sentry_pid, chan = _fork_sentry(b, strace, [ready_fd, *own.sentry_closes()], console_fd,
                                   kernel_release, overlay, restore)
    own.forked()
    _trim_heap()
    if console_fd is not None and console_fd > 2:
        os.close(console_fd)  # the Sentry's now: its end of the container's terminal
    try:
        msg = read_frame(chan, READY_TIMEOUT)
    except (FrameError, OSError, TimeoutError) as exc:
        msg = {"ready": False, "error": f"the sandbox did not come up: {exc}"}
    if msg is None or not msg.get("ready"):
        error = (msg or {}).get("error") or "the sandbox exited during start-up"
        with contextlib.suppress(OSError):
            os.kill(sentry_pid, signal.SIGKILL)
        code = _wait_code(sentry_pid)
        if own.packet is not None:
            own.packet.close()
        write_report(ready_fd, {"ok": False, "error": str(error),
                           "status": (msg or {}).get("status", code)})
        return code
    host = Host(c, b, sentry_pid, chan, bool(msg.get("kernel")))
    host.packet = own.packet
    server = serve_created(c, b, host, ready_fd)
    code = _wait_code(sentry_pid)
    for s in FORWARDED:
        signal.signal(s, signal.SIG_DFL)
    host.finished(code)
    if host.packet is not None:  # never started
        host.packet.close()
    server.close()
    chan.close()
    return code
