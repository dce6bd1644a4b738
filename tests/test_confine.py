"""The Sentry, the Gofer and the stubs as the host sees them once a sandbox is booted:
their namespaces (/proc/PID/ns, compared with the host's), capability sets,
no_new_privs and seccomp mode (/proc/PID/status) and root (/proc/PID/root);
and a Sentry that calls open(2) after boot is killed."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import REPO_ROOT, RUNSC, host_children, sentry_pid
from test_oci import (  # noqa: F401 - fixtures, used by name
    cid,
    make_bundle,
    runsc,
    runsc_bg,
    state_root,
)

CHILD = r"""
import os, sys
sys.path.insert(0, sys.argv[1])
from sentry.confine import confine_sentry
confine_sentry()
print("confined", flush=True)
open("/etc/hostname", "rb")
print("open allowed", flush=True)
"""

# Namespaces the Sentry leaves (pid: `runsc.py do`'s Sentry is init of its
# own, sentry/pidns.py; user: identity-mapped, sentry/userns.py).
SENTRY_NEW_NS = ("ipc", "uts", "cgroup", "net", "mnt", "pid", "user")
IDENTITY_MAP = ["0", "0", "4294967295"]


def test_sentry_that_opens_a_file_after_boot_is_killed() -> None:
    res = subprocess.run([sys.executable, "-c", CHILD, str(REPO_ROOT)], capture_output=True,
                         text=True, timeout=60)
    assert res.stdout == "confined\n", res.stderr
    assert res.returncode == -signal.SIGSYS, (res.returncode, res.stderr)


def _status(pid: int) -> dict[str, str]:
    with open(f"/proc/{pid}/status") as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)


def _ns(pid: int | str) -> dict[str, str]:
    return {n: os.readlink(f"/proc/{pid}/ns/{n}") for n in ("ipc", "uts", "cgroup", "net", "mnt",
                                                             "user", "pid")}


def _id_maps(pid: int) -> list[list[str]]:
    """/proc/PID/uid_map and gid_map as the host reads them, split."""
    maps = []
    for name in ("uid_map", "gid_map"):
        with open(f"/proc/{pid}/{name}") as f:
            maps += [line.split() for line in f]
    return maps


def _confined_sentry_below(host: int) -> int:
    """The OCI host's one child once it is a confined Sentry (seccomp mode 2),
    waited for at most 30 s."""
    deadline = time.monotonic() + 30
    while True:
        kids = host_children(host)
        if len(kids) == 1 and _status(kids[0]).get("Seccomp") == "2":
            return kids[0]
        assert time.monotonic() < deadline, f"no confined Sentry below host {host}: {kids}"
        time.sleep(0.1)


def _in_identity_user_ns(pid: int) -> None:
    host = os.readlink("/proc/self/ns/user")
    assert os.readlink(f"/proc/{pid}/ns/user") != host, f"{pid} is in the host's user namespace"
    assert _id_maps(pid) == [IDENTITY_MAP, IDENTITY_MAP], _id_maps(pid)


def _gofer_of(sentry: int) -> int:
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if b"gofer.server" in argv[0] and int(name) in host_children(sentry):
            return int(name)
    raise AssertionError(f"no Gofer of Sentry {sentry}")


@pytest.mark.sandbox
def test_booted_sentry_and_gofer_are_confined(tmp_path) -> None:  # noqa: ANN001
    proc = subprocess.Popen([sys.executable, str(RUNSC), "do", "--", "/bin/busybox", "sleep", "30"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        status: dict[str, str] = {}
        sentry_id = sentry_pid(proc.pid)
        while time.monotonic() < deadline:
            status = _status(sentry_id)
            if status.get("Seccomp") == "2":
                break
            assert proc.poll() is None, "the sandbox ended before its filter was seen"
            time.sleep(0.1)
        host = _ns("self")
        sentry = _ns(sentry_id)
        for n in SENTRY_NEW_NS:
            assert sentry[n] != host[n], f"the Sentry is still in the host's {n} namespace"
        assert status["Seccomp"] == "2"
        assert status["NoNewPrivs"] == "1"
        for s in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
            assert int(status[s], 16) == 0, f"Sentry {s} {status[s]}"
        # pivot_root onto an empty tmpfs in its own mount namespace
        assert os.readlink(f"/proc/{sentry_id}/root") == "/"
        assert os.listdir(f"/proc/{sentry_id}/root/") == []
        assert os.statvfs(f"/proc/{sentry_id}/root/").f_flag & os.ST_RDONLY

        gofer = _gofer_of(sentry_id)
        gs = _status(gofer)
        assert gs["Seccomp"] == "2" and gs["NoNewPrivs"] == "1"
        # chown, dac_override, dac_read_search, fowner, fsetid
        assert int(gs["CapEff"], 16) == 0b11111
        assert int(gs["CapBnd"], 16) == 0b11111
        assert _ns(gofer)["mnt"] != host["mnt"]
        _in_identity_user_ns(sentry_id)
        _in_identity_user_ns(gofer)
        assert os.readlink(f"/proc/{gofer}/root") == "/"  # pivot_root: "/" is the served tree
        assert os.stat(f"/proc/{gofer}/root/bin/busybox").st_ino == os.stat("/bin/busybox").st_ino

        # The zygote and the stubs (application code) hold no host capability.
        stubs = [k for k in host_children(sentry_id) if k != gofer]
        assert len(stubs) >= 2, stubs  # the zygote and the program's stub
        for k in stubs:
            ks = _status(k)
            assert int(ks["CapEff"], 16) == 0 and int(ks["CapPrm"], 16) == 0, (k, ks)
            assert int(ks["CapBnd"], 16) == 0, (k, ks)
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.sandbox
def test_with_host_network_the_sentry_keeps_the_host_user_namespace() -> None:
    """--network=host: binding a port below 1024 in the host's network
    namespace needs CAP_NET_BIND_SERVICE in the initial user namespace (its
    owner), so the Sentry stays there, as runsc's sandbox does with host
    networking (docs/security.md)."""
    proc = subprocess.Popen([sys.executable, str(RUNSC), "do", "--network", "host", "--",
                             "/bin/busybox", "sleep", "30"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        sentry_id = sentry_pid(proc.pid)
        deadline = time.monotonic() + 30
        while _status(sentry_id).get("Seccomp") != "2":
            assert proc.poll() is None and time.monotonic() < deadline, "no confined Sentry"
            time.sleep(0.1)
        assert _ns(sentry_id)["user"] == _ns("self")["user"]
        assert _ns(sentry_id)["net"] == _ns("self")["net"]
    finally:
        proc.kill()
        proc.wait()


COPY_CHILD = r"""
import fcntl, os, sys
sys.path.insert(0, sys.argv[1])
from sentry import confine_filters
base = 1000
low = os.memfd_create("low")
a, b = (fcntl.fcntl(os.memfd_create(n), fcntl.F_DUPFD_CLOEXEC, base) for n in "ab")
for fd in (low, a, b):
    os.pwrite(fd, b"page" * 1024, 0)
f = confine_filters.build("none")
confine_filters.allow_memory_file(f, base)
f.load()
print("arena to arena", os.copy_file_range(a, b, 4096, 0, 0), flush=True)
os.copy_file_range(low, b, 4096, 0, 0)
print("low descriptor allowed", flush=True)
"""


def test_sentry_copies_pages_only_between_arena_files() -> None:
    """The Sentry's filter lets copy_file_range through between descriptors
    at or above the memory file's arena base (fork's copy from the parent's
    arena to the child's), and kills it from any other descriptor."""
    res = subprocess.run([sys.executable, "-c", COPY_CHILD, str(REPO_ROOT)], capture_output=True,
                         text=True, timeout=60)
    assert res.stdout == "arena to arena 4096\n", res.stderr
    assert res.returncode == -signal.SIGSYS, (res.returncode, res.stderr)


SIGNAL_CHILD = r"""
import ctypes, os, signal, sys
sys.path.insert(0, sys.argv[1])
from sentry.confine import confine_sentry
victim, how = int(sys.argv[2]), sys.argv[3]
confine_sentry()
os.kill(os.getpid(), 0)  # itself: allowed
import threading; signal.pthread_kill(threading.get_ident(), 0)  # its own threads: allowed
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall(234, victim, victim, signal.SIGURG)  # the stubs' kick: ignored by default
print("confined", flush=True)
if how == "kill":
    os.kill(victim, signal.SIGTERM)
elif how == "tgkill":
    libc.syscall(234, victim, victim, signal.SIGTERM)
else:
    signal.pidfd_send_signal(os.pidfd_open(victim), signal.SIGTERM)
print("signalled", flush=True)
"""


@pytest.mark.parametrize("how", ["kill", "tgkill", "pidfd"])
def test_sentry_cannot_signal_another_host_process(how: str) -> None:
    """The confined Sentry signals by number only itself (and the stubs'
    SIGURG kick, ignored by default); kill, tgkill with another signal, and
    pidfd_open of a host pid kill it, and the other process lives on."""
    victim = subprocess.Popen(["sleep", "60"])
    try:
        res = subprocess.run([sys.executable, "-c", SIGNAL_CHILD, str(REPO_ROOT), str(victim.pid),
                              how], capture_output=True, text=True, timeout=60)
        assert res.stdout == "confined\n", res.stderr
        assert res.returncode == -signal.SIGSYS, (res.returncode, res.stderr)
        assert victim.poll() is None
    finally:
        victim.kill()
        victim.wait()


@pytest.mark.root
@pytest.mark.sandbox
@pytest.mark.parametrize("user_ns", [False, True], ids=["no-user-ns-listed", "user-ns-listed"])
def test_oci_sentry_and_gofer_are_in_a_user_namespace(state_root: Path, cid: str,  # noqa: F811
                                                      make_bundle: Callable[..., Path],  # noqa: F811
                                                      tmp_path: Path, user_ns: bool) -> None:
    """An OCI container's Sentry and Gofer are in an identity-mapped user
    namespace of their own.  The state's pid (the sandbox host) is in it too
    when the config lists a user namespace (the runtime-tools validator's
    linux_ns_nopath compares it with the runtime's own), and in the
    runtime's when it does not (linux_ns_itype: an unlisted type is
    inherited, as runc's container process inherits it)."""
    def edit(cfg: dict[str, Any]) -> None:
        ns = [n for n in cfg["linux"]["namespaces"] if n["type"] != "user"]
        cfg["linux"]["namespaces"] = [*ns, {"type": "user"}] if user_ns else ns
        if user_ns:
            cfg["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 1000, "size": 1000}]
            cfg["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 1000, "size": 1000}]

    pid_file = tmp_path / "pid"
    bundle = make_bundle(["sleep", "30"], edit=edit)
    res = runsc_bg(state_root, "create", "--bundle", str(bundle), "--pid-file", str(pid_file), cid)
    assert res.returncode == 0, res.stderr
    host = int(pid_file.read_text())
    try:
        if user_ns:
            _in_identity_user_ns(host)
        else:
            assert _ns(host)["user"] == _ns("self")["user"]
        assert runsc(state_root, "start", cid).returncode == 0
        sentry = _confined_sentry_below(host)
        _in_identity_user_ns(sentry)
        _in_identity_user_ns(_gofer_of(sentry))
        assert (_ns(sentry)["user"] == _ns(host)["user"]) == user_ns
        # The application still sees its config's maps (the Sentry's, not these).
        res = runsc(state_root, "exec", cid, "cat", "/proc/self/uid_map")
        assert res.returncode == 0, res.stderr
        want = ["0", "1000", "1000"] if user_ns else IDENTITY_MAP
        assert res.stdout.split() == want, res.stdout
    finally:
        runsc(state_root, "delete", "--force", cid)


@pytest.fixture()
def veth_netns() -> Iterator[str]:
    """A named network namespace with veth1 10.78.0.2/24, its peer 10.78.0.1
    on the host side (as Docker's bridge hands a container)."""
    tag = os.urandom(3).hex()
    ns, host_if = f"pyvu{tag}", f"pvu{tag}"

    def ip(*args: str) -> None:
        subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)

    ip("netns", "add", ns)
    try:
        ip("link", "add", host_if, "type", "veth", "peer", "name", "veth1", "netns", ns)
        ip("addr", "add", "10.78.0.1/24", "dev", host_if)
        ip("link", "set", host_if, "up")
        ip("-n", ns, "addr", "add", "10.78.0.2/24", "dev", "veth1")
        ip("-n", ns, "link", "set", "veth1", "up")
        ip("-n", ns, "link", "set", "lo", "up")
        yield ns
    finally:
        subprocess.run(["ip", "link", "del", host_if], capture_output=True, timeout=30)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30)


@pytest.mark.root
@pytest.mark.sandbox
@pytest.mark.skipif(shutil.which("ip") is None, reason="needs iproute2 to make a veth")
def test_oci_host_in_a_user_namespace_still_opens_the_packet_socket(
        state_root: Path, cid: str, make_bundle: Callable[..., Path],  # noqa: F811
        veth_netns: str, tmp_path: Path) -> None:
    """--network=sandbox with a user namespace listed: the host (in it, so
    without CAP_NET_RAW over Docker's network namespace) gets `start`'s
    packet socket from the helper it forked before entering
    (sentry/oci/host_userns.py), and the container talks to the host side."""
    srv = socket.create_server(("10.78.0.1", 0))
    srv.settimeout(60)
    port = srv.getsockname()[1]

    def serve() -> None:
        with contextlib.suppress(OSError):
            conn, _ = srv.accept()
            with conn:
                conn.sendall(b"pong\n")

    def edit(cfg: dict[str, Any]) -> None:
        ns = [n for n in cfg["linux"]["namespaces"] if n["type"] not in ("user", "network")]
        cfg["linux"]["namespaces"] = [*ns, {"type": "user"},
                                      {"type": "network", "path": f"/run/netns/{veth_netns}"}]

    threading.Thread(target=serve, daemon=True).start()
    bundle = make_bundle(["/bin/busybox", "nc", "10.78.0.1", str(port)], edit=edit)
    out, pid_file = tmp_path / "out", tmp_path / "pid"
    try:
        with open(out, "w") as f, open(tmp_path / "err", "w+") as err:
            res = subprocess.run([sys.executable, str(RUNSC), "--root", str(state_root), "create",
                                  "--bundle", str(bundle), "--pid-file", str(pid_file), cid],
                                 stdin=subprocess.DEVNULL, stdout=f, stderr=err,
                                 timeout=120, start_new_session=True)
            err.seek(0)
            assert res.returncode == 0, err.read()
        _in_identity_user_ns(int(pid_file.read_text()))
        assert runsc(state_root, "start", cid).returncode == 0
        deadline = time.monotonic() + 60
        while out.read_text() != "pong\n":
            assert time.monotonic() < deadline, f"no answer through the stack: {out.read_text()!r}"
            time.sleep(0.1)
    finally:
        srv.close()
        runsc(state_root, "delete", "--force", cid)


REFUSED_CHILD = r"""
import errno, os, sys
sys.path.insert(0, sys.argv[1])
import pyseccomp as sc
f = sc.SyscallFilter(sc.ALLOW)  # as a host that refuses user namespaces
f.add_rule(sc.ERRNO(errno.EPERM), "unshare", sc.Arg(0, sc.MASKED_EQ, 0x10000000, 0x10000000))
f.load()
os.execv(sys.executable, [sys.executable, *sys.argv[2:]])
"""


@pytest.mark.sandbox
def test_a_refused_user_namespace_falls_back_to_the_host_one(tmp_path: Path) -> None:
    """A host that refuses unshare(CLONE_NEWUSER) (here a seccomp filter
    answering EPERM, as a container runtime's default profile does) gets a
    sandbox as before, in its user namespace, with one debug line, never a
    failed sandbox: the pid namespace is still made."""
    log = tmp_path / "debug.log"
    res = subprocess.run([sys.executable, "-c", REFUSED_CHILD, str(REPO_ROOT), str(RUNSC),
                          "--debug", "--debug-log", str(log), "do", "--", "/bin/busybox", "sh",
                          "-c", "echo $$; ls /proc/1/ns/user"],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["1", "/proc/1/ns/user"], res.stdout
    text = log.read_text()
    assert "no user namespace of its own: Operation not permitted" in text, text[-2000:]
    assert "in an identity-mapped user namespace" not in text


@pytest.mark.sandbox
@pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs setpriv (util-linux)")
def test_the_program_gets_the_callers_capabilities_not_the_namespaces() -> None:
    """Entering a user namespace grants every capability in it; a caller
    without CAP_SYS_RESOURCE and CAP_MKNOD (dropped from its bounding set:
    root's exec then loses them from every set) must not see `runsc.py do`'s
    program (or its Sentry) hold them: the sets it shows are the caller's,
    as natively (differential)."""
    drop = ["setpriv", "--bounding-set", "-sys_resource,-mknod", "--"]

    def caps(*argv: str) -> str:
        res = subprocess.run([*drop, *argv], capture_output=True, text=True, timeout=60)
        assert res.returncode == 0, res.stderr
        return "".join(line for line in res.stdout.splitlines(True) if line.startswith("Cap"))

    native = caps("/bin/busybox", "grep", "Cap", "/proc/self/status")
    assert int(native.split("CapBnd:\t")[1][:16], 16) & (1 << 24 | 1 << 27) == 0, native
    sandboxed = caps(sys.executable, str(RUNSC), "do", "--", "/bin/busybox", "grep", "Cap",
                     "/proc/self/status")
    assert sandboxed == native


@pytest.mark.root
@pytest.mark.sandbox
def test_oci_with_host_network_no_user_namespace(state_root: Path, cid: str,  # noqa: F811
                                                 make_bundle: Callable[..., Path],  # noqa: F811
                                                 tmp_path: Path) -> None:
    """`runsc.py --network=host`: the host and the Sentry stay in the
    runtime's user namespace even when the config lists one (ports below
    1024 in the host's network namespace need its owner's
    CAP_NET_BIND_SERVICE; runsc does the same)."""
    def edit(cfg: dict[str, Any]) -> None:
        ns = [n for n in cfg["linux"]["namespaces"] if n["type"] not in ("user", "network")]
        cfg["linux"]["namespaces"] = [*ns, {"type": "user"}]

    pid_file = tmp_path / "pid"
    bundle = make_bundle(["sleep", "30"], edit=edit)
    res = runsc_bg(state_root, "--network=host", "create", "--bundle", str(bundle),
                   "--pid-file", str(pid_file), cid)
    assert res.returncode == 0, res.stderr
    host = int(pid_file.read_text())
    try:
        assert runsc(state_root, "--network=host", "start", cid).returncode == 0
        sentry = _confined_sentry_below(host)
        mine = _ns("self")["user"]
        assert _ns(host)["user"] == mine
        assert _ns(sentry)["user"] == mine
        assert _ns(_gofer_of(sentry))["user"] == mine
    finally:
        runsc(state_root, "delete", "--force", cid)
