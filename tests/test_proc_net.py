"""/proc/net (sentry/procfs/net.py), differentially: the files' format and
the tools that read them (ifconfig, netstat, route, ss) natively in a fresh
network namespace with lo up and in the sandbox; and the sockets a program
opens itself, found in tcp, tcp6, udp, udp6 and unix with their states,
queues and inode numbers.

Before /proc/net existed every read here failed with ENOENT in the sandbox.
"""

from __future__ import annotations

import shutil
import sys

import pytest
from helpers import Result, run_native, run_sandbox

FILES = ("dev", "route", "if_inet6", "tcp", "tcp6", "udp", "udp6", "unix")
TOOLS = ("busybox ifconfig", "busybox ifconfig -a", "busybox route -n", "busybox netstat -tan",
         "busybox netstat -uan", "ifconfig", "ifconfig lo", "netstat -tan", "netstat -rn",
         "netstat -i", "route -n")


def _native_in_netns(argv: list[str]) -> Result:
    if shutil.which("unshare") is None:
        pytest.skip("unshare(1) is not installed: no fresh network namespace to compare with")
    res = run_native(["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$@"', "sh",
                      *argv])
    if res.returncode != 0 and "unshare" in res.err:
        pytest.skip(f"cannot make a network namespace here: {res.err.strip()}")
    return res


def _same(nat: Result, box: Result) -> None:
    assert "Traceback" not in box.err, box.describe()
    assert box.out == nat.out, box.describe() + "\n--- native ---\n" + nat.out
    assert box.returncode == nat.returncode, box.describe()


@pytest.mark.sandbox
def test_files_and_tools_match_linux() -> None:
    """Every file (headers, padding) with no socket open, and the tools."""
    if shutil.which("ip") is None or shutil.which("busybox") is None:
        pytest.skip("iproute2's ip and busybox are needed (the netns set-up, the tools)")
    tools = [t for t in TOOLS if shutil.which(t.split()[0])]
    script = "".join(f"echo '== {f}'; cat /proc/net/{f}; echo rc=$?\n" for f in FILES)
    script += "".join(f"echo '== {t}'; {t} 2>&1; echo rc=$?\n" for t in tools)
    # snmp: the same tables and field names (the values are the sandbox's).
    script += "echo '== snmp'; cut -d' ' -f1-3 /proc/net/snmp | sed -n 'p;n'\n"
    argv = ["sh", "-c", script]
    nat = _native_in_netns(argv)
    assert "0100007F" not in nat.out and "lo:" in nat.out, nat.describe()
    _same(nat, run_sandbox(argv))


# Opens sockets of every kind on fixed ports and paths, then prints what
# /proc/net says of them with the run's own values (ephemeral ports, inode
# numbers) replaced by names, so native and sandbox print the same.
SOCKETS = r'''
import os, socket, sys

def rows(name):
    with open("/proc/net/" + name) as f:
        lines = f.read().splitlines()
    return [l.split() for l in lines[1:]]

def ino(s):
    return str(os.fstat(s.fileno()).st_ino)

names = {}
def nm(port):
    return names.get(port, port)

lt = socket.socket(); lt.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
lt.bind(("127.0.0.1", 7461)); lt.listen(5)
cl = socket.create_connection(("127.0.0.1", 7461))
sv, _ = lt.accept()
cl.sendall(b"12345")           # 5 bytes waiting at the server side
pending = socket.create_connection(("127.0.0.1", 7461))   # in the accept queue
names["%04X" % cl.getsockname()[1]] = "CLIENT"
names["%04X" % pending.getsockname()[1]] = "PENDING"
l6 = socket.socket(socket.AF_INET6); l6.bind(("::1", 7462)); l6.listen(1)
u4 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u4.bind(("127.0.0.1", 7463))
u4.sendto(b"abc", ("127.0.0.1", 7463))
u6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); u6.bind(("::", 7464))
u6.connect(("::1", 7463))
path = sys.argv[1]
ux = socket.socket(socket.AF_UNIX); ux.bind(path); ux.listen(1)
ab = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); ab.bind("\0pv-proc-net-test")
pa, pb = socket.socketpair()
inodes = {ino(s): n for n, s in [("lt", lt), ("cl", cl), ("sv", sv), ("pending", pending),
          ("l6", l6), ("u4", u4), ("u6", u6), ("ux", ux), ("ab", ab), ("pa", pa), ("pb", pb)]}

for f in ("tcp", "tcp6", "udp", "udp6"):
    print("==", f)
    out = []
    for r in rows(f):
        (la, lp), (ra, rp) = r[1].split(":"), r[2].split(":")
        queues = r[4] if f.startswith("tcp") else "rxq>0=%d" % (int(r[4][9:], 16) > 0)
        out.append(" ".join([la, nm(lp), ra, nm(rp), r[3], queues, inodes.get(r[9], "?")]))
    print("\n".join(sorted(out)))
print("== unix")
out = []
for r in rows("unix"):
    if r[6] in inodes:
        out.append(" ".join([inodes[r[6]], r[3], r[4], r[5]] + r[7:]))
print("\n".join(sorted(out)))
'''


@pytest.mark.sandbox
def test_sockets_the_program_opens_are_listed(tmp_path: object) -> None:
    """TCP listeners (with their accept queue), connections (with unread
    bytes), UDP bound and connected, unix listeners, abstract names and
    socketpairs: rows, states, queues and inodes as Linux gives them."""
    if shutil.which("ip") is None:
        pytest.skip("iproute2's ip is needed to bring lo up in the native netns")
    path = f"/tmp/pv-proc-net-{id(tmp_path)}.sock"
    argv = [sys.executable, "-c", SOCKETS, path]
    try:
        nat = _native_in_netns(argv)
        assert "0100007F 1D25 0100007F CLIENT 01 00000000:00000005 sv" in nat.out, \
            nat.describe()
        import os

        os.unlink(path)
        _same(nat, run_sandbox(argv))
    finally:
        import os

        if os.path.exists(path):
            os.unlink(path)
