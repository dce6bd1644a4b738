"""The OCI sandbox host in a user namespace of its own, and `start`'s network.

Why: the state's pid (this host) is what the runtime-tools validator and
tools see as the container's process, and for defense in depth everything
the host forks (the Sentry, the Gofer, the stubs) inherits its namespace:
from :func:`enter` on, no process of the sandbox holds a privilege that the
kernel checks against the initial user namespace (sentry/userns.py says
why the map is the identity).  runc's container process is in the user
namespace its config names; this one is, whatever the config lists (the
application is shown the config's maps by the Sentry, host.py
_show_id_maps).

The order, in :func:`sentry.oci.host.serve` (each step needs the one before
to have happened while the host still had the initial namespace's powers):

1. paths joined, new ipc/uts/mount/network namespaces, cgroups joined, the
   cgroup namespace, oom_score_adj (host.py);
2. when the host's /proc counts pids of another pid namespace (`create`
   made or joined one, owned by the initial user namespace, so the
   namespace's root may not mount its procfs later): a procfs of the
   host's pid namespace made now as a detached mount
   (userns.detached_procfs), which the Sentry attaches on its own /proc
   (sentry/confine.py); the host itself keeps the host's /proc (it reads
   its host pid and start time there);
3. with ``--network=sandbox`` the packet helper (:class:`PacketHelper`)
   forked, still privileged;
4. userns.enter.

Only when the config lists a ``user`` namespace (without a path: a path is
refused, sentry/oci/namespaces.py): otherwise the state's pid stays in the
runtime's user namespace, as runc's container process does (the validator's
linux_ns_itype checks that), and the Sentry enters one of its own as the
first thing it does (:func:`sentry_enter`), the same steps 2 and 4, before
it forks the Gofer; the host, still privileged, then opens `start`'s packet
socket itself.

Not entered with ``--network=host`` (binding ports below 1024 in the host's
network namespace needs CAP_NET_BIND_SERVICE in its owner, the initial user
namespace; runsc gives its sandbox no user namespace with host networking
either), nor with PYVISOR_SENTRY_USER_NS=0, and not when the kernel refuses
(one debug line): then everything goes on as before.

The packet helper: `start` opens an AF_PACKET socket on the namespace's
interface and takes the host side's addresses off it (CAP_NET_RAW and
CAP_NET_ADMIN over the network namespace, whose owner is the initial user
namespace: Docker made it, or the host did before entering).  A child forked
before the host enters keeps those powers and does exactly that, once, when
`start` asks: it sends back the interface's description and the socket
(SCM_RIGHTS) and exits.  It holds no other descriptor, takes one byte of
input, dies with the host (PR_SET_PDEATHSIG), and lives from `create` to
`start` (or the host's end).
"""

from __future__ import annotations

import array
import contextlib
import ctypes
import json
import logging
import os
import select
import signal
import socket
from typing import Any

from sentry import pidns, userns

log = logging.getLogger("pyvisor")

HELPER_TIMEOUT = 10.0
_MAX_REPLY = 1 << 16
_PR_SET_PDEATHSIG = 1


class PacketHelper:
    """A privileged child that opens `start`'s packet socket (module docstring)."""

    def __init__(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX,
                                         socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the helper child
            code = 1
            try:
                ours.close()
                code = _helper_main(theirs, parent)
            finally:
                os._exit(code)
        theirs.close()
        self.pid = pid
        self.sock = ours
        self.pidfd = os.pidfd_open(pid)

    def fileno(self) -> int:
        return self.sock.fileno()

    def fetch(self) -> tuple[dict[str, Any] | None, socket.socket | None]:
        """The interface's description and its packet socket (None, None:
        no interface; raises OSError when the helper could not open it)."""
        try:
            self.sock.settimeout(HELPER_TIMEOUT)
            self.sock.send(b"s")
            fds = array.array("i")
            data, anc, _, _ = self.sock.recvmsg(_MAX_REPLY, socket.CMSG_SPACE(fds.itemsize))
            for level, kind, payload in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    fds.frombytes(payload[:len(payload) - len(payload) % fds.itemsize])
        except TimeoutError:
            raise OSError("the packet helper did not answer") from None
        finally:
            self.close()
        packet = socket.socket(fileno=fds[0]) if fds else None
        for extra in fds[1:]:
            os.close(extra)
        try:
            reply = json.loads(data) if data else {"error": "the packet helper exited"}
        except ValueError:
            reply = {"error": "a bad reply from the packet helper"}
        if "error" in reply:
            if packet is not None:
                packet.close()
            raise OSError(str(reply["error"]))
        if reply.get("desc") is None or packet is None:
            if packet is not None:
                packet.close()
            return None, None
        return reply["desc"], packet

    def close(self) -> None:
        """Let the helper go (EOF ends it) and reap it, at most HELPER_TIMEOUT."""
        if self.pidfd < 0:
            return
        self.sock.close()
        if not select.select([self.pidfd], [], [], HELPER_TIMEOUT)[0]:
            with contextlib.suppress(OSError):
                signal.pidfd_send_signal(self.pidfd, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self.pid, 0)
        os.close(self.pidfd)
        self.pidfd = -1


def _helper_main(sock: socket.socket, parent: int) -> int:
    """The helper: every descriptor but ``sock`` closed, wait for `start`."""
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:
        return 1
    keep = sock.fileno()
    null = os.open(os.devnull, os.O_RDWR)  # not create's stdio: a shim waits for its EOF
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    if null > 2:
        os.close(null)
    os.closerange(3, keep)
    os.closerange(keep + 1, 1 << 20)
    if sock.recv(1) != b"s":
        return 0  # EOF: the host is gone, or never started the container
    from sentry.net.netstack import link

    fds: list[int] = []
    try:
        desc = link.describe()
        if desc is not None:
            packet = link.open_packet(desc["ifname"])
            fds.append(packet.fileno())
            link.strip_addresses(desc["ifname"])
            if "addr6" in desc:
                link.strip_addresses6(desc["ifname"], desc["addr6"], desc["prefix6"])
        reply: dict[str, Any] = {"desc": _jsonable(desc)}
    except OSError as exc:
        reply, fds = {"error": exc.strerror or str(exc)}, []
    anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds).tobytes())] if fds else []
    sock.sendmsg([json.dumps(reply).encode()], anc)
    return 0


def _jsonable(desc: dict[str, Any] | None) -> Any:
    """bytes fields (an IPv6 address) as {"hex": ...}, undone by _unjson."""
    if desc is None:
        return None
    return {k: {"hex": v.hex()} if isinstance(v, bytes) else v for k, v in desc.items()}


def _unjson(desc: dict[str, Any]) -> dict[str, Any]:
    return {k: bytes.fromhex(v["hex"]) if isinstance(v, dict) and "hex" in v else v
            for k, v in desc.items()}


class HostNamespace:
    """What :func:`enter` left for the Sentry's fork and for `start`."""

    def __init__(self) -> None:
        self.procfs: int | None = None  # the detached procfs mount, for the Sentry
        self.packet: PacketHelper | None = None

    def sentry_closes(self) -> list[int]:
        """Descriptors the Sentry must not keep (it keeps ``procfs``)."""
        return [self.packet.fileno()] if self.packet is not None else []

    def forked(self) -> None:
        """After the Sentry's fork: the procfs mount is the Sentry's only."""
        if self.procfs is not None:
            os.close(self.procfs)
            self.procfs = None
            userns.PROCFS_FD = None


def enter(network: str, *, packet: bool = True, what: str = "sandbox host") -> HostNamespace:
    """Steps 2-4 of the module docstring; raises UserNamespaceError when the
    namespace was made but its maps could not be written.  ``packet``: fork
    the packet helper for --network=sandbox (the host's `start` needs it;
    a Sentry entering on its own has a privileged host to do that)."""
    made = HostNamespace()
    if network == "host" or not userns.enabled() or userns.ENTERED:
        return made
    foreign = pidns.procfs_is_foreign()
    if foreign:
        made.procfs = userns.detached_procfs()
        if made.procfs is None:
            return made  # the Sentry could not get a /proc of its pid namespace
    if network == "sandbox" and packet:
        made.packet = PacketHelper()
    if not userns.enter(what=what):
        if made.procfs is not None:
            os.close(made.procfs)
            made.procfs = None
        if made.packet is not None:
            made.packet.close()
            made.packet = None
        return made
    userns.PROCFS_FD = made.procfs
    return made


def sentry_enter(network: str) -> None:
    """The OCI Sentry's own user namespace when its host has none (see the
    module docstring); the detached procfs stays in userns.PROCFS_FD for
    sentry/confine.py.  Raises UserNamespaceError as :func:`enter`."""
    enter(network, packet=False, what="sentry")


def network_for_start(b: Any, network: str,
                      helper: PacketHelper | None) -> tuple[dict[str, Any], list[socket.socket]]:
    """`start`'s message, and for --network=sandbox the packet socket on the
    namespace's interface with its addresses (sentry/net/netstack/link.py),
    then the Sentry's end of the relay to Docker's embedded DNS when the
    bundle's resolv.conf names it (netstack/dnsrelay.py).
    Opened now, not at create: the runtime's hooks moved the veth in meanwhile.
    No interface (docker --network=none): loopback only."""
    msg: dict[str, Any] = {"op": "start"}
    if network != "sandbox":
        return msg, []
    from sentry.net.netstack import dnsrelay, link

    try:
        if helper is not None:
            desc, packet = helper.fetch()
            desc = _unjson(desc) if desc is not None else None
        else:
            desc = link.describe()
            packet = link.open_packet(desc["ifname"]) if desc is not None else None
            if desc is not None:
                link.strip_addresses(desc["ifname"])
                if "addr6" in desc:
                    link.strip_addresses6(desc["ifname"], desc["addr6"], desc["prefix6"])
        if desc is None or packet is None:
            return msg, []
    except OSError as exc:
        log.warning("--network=sandbox: no packet socket (%s); loopback only", exc)
        return msg, []
    msg["net"] = desc
    relay = dnsrelay.host_relay(b.mounts)
    if relay is not None:
        desc["dns_relay"] = True
        return msg, [packet, relay]
    return msg, [packet]
