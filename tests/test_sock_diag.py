"""NETLINK_SOCK_DIAG (sentry/net/sock_diag.py), differentially: iproute2's
real ``ss`` asks inet_diag and unix_diag for the sockets a program holds,
natively in a fresh network namespace (lo up) and in the sandbox; the
output, with the run's own values (inode numbers, ephemeral ports, pids)
named, must be the same, and stderr too. Plus the protocol's errnos for
bad requests, from a raw netlink socket.

Before sock_diag existed, socket(AF_NETLINK, ..., NETLINK_SOCK_DIAG) was
EPROTONOSUPPORT: ss printed "Cannot open netlink socket" and fell back to
/proc/net, where listeners have no backlog (Send-Q 0) and unix sockets no
peer.
"""

from __future__ import annotations

import os
import shutil
import sys

import pytest
from helpers import Result, run_native, run_sandbox

# Opens sockets of every kind, runs ss, and prints each command's rows with
# single spaces, its own inodes and ports named, and the rows sorted (the
# kernel's dump order follows its hash tables).
SS_PROGRAM = r'''
import os, re, socket, subprocess, sys

def ino(s):
    return str(os.fstat(s.fileno()).st_ino)

lt = socket.socket(); lt.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
lt.bind(("127.0.0.1", 7471)); lt.listen(7)
cl = socket.create_connection(("127.0.0.1", 7471))
sv, _ = lt.accept()
cl.sendall(b"12345")                   # 5 bytes unread at sv
pending = socket.create_connection(("127.0.0.1", 7471))   # not accepted yet
l6 = socket.socket(socket.AF_INET6); l6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
l6.bind(("::1", 7472)); l6.listen(3)
c6 = socket.create_connection(("::1", 7472))
bound = socket.socket(); bound.bind(("127.0.0.1", 7473))   # bound only: not listed
u4 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u4.bind(("127.0.0.1", 7474))
u6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); u6.bind(("::1", 7475))
u6.connect(("::1", 7474))
path = sys.argv[1]
ux = socket.socket(socket.AF_UNIX); ux.bind(path); ux.listen(4)
uc = socket.socket(socket.AF_UNIX); uc.connect(path)        # in ux's queue
ab = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); ab.bind("\0pv-sock-diag-test")
ad = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); ad.connect("\0pv-sock-diag-test")
sq = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
sq.bind("\0pv-sock-diag-sq"); sq.listen(2)
pa, pb = socket.socketpair()
inodes = {ino(s): n for n, s in [("lt", lt), ("cl", cl), ("sv", sv), ("pending", pending),
          ("l6", l6), ("c6", c6), ("u4", u4), ("u6", u6), ("ux", ux), ("uc", uc), ("ab", ab),
          ("ad", ad), ("sq", sq), ("pa", pa), ("pb", pb)]}
ports = {str(s.getsockname()[1]): n for n, s in [("CL", cl), ("PENDING", pending), ("C6", c6)]}

def row(words, unix):
    out = []
    for i, w in enumerate(words):
        if unix and i in (unix, unix + 2):       # the inode columns
            w = inodes.get(w, w)
        m = re.fullmatch(r"(.*):(\d+)", w)
        if m and m.group(2) in ports:
            w = m.group(1) + ":" + ports[m.group(2)]
        out.append(re.sub(r"pid=\d+", "pid=P", w).replace(path, "PATH"))
    return " ".join(out)

for cmd in ("ss -tan", "ss -tanp", "ss -ltn", "ss -uan", "ss -xa", "ss -xan", "ss -x",
            "ss -lx", "ss -tn state established", "ss -an -A unix_dgram",
            "ss -tan sport = :7471", "ss -4tan", "ss -6uan"):
    p = subprocess.run(cmd.split(), capture_output=True, text=True)
    print("==", cmd, "rc", p.returncode)
    lines = p.stdout.splitlines()
    head = lines[0].split() if lines else []
    unix = ("x" in cmd.split()[1] or "unix" in cmd) and (5 if head[:1] == ["Netid"] else 4)
    rows = [row(l.split(), unix) for l in lines[1:]]
    print(" ".join(head).replace("PortProcess", "Port Process"))   # column widths differ
    print("\n".join(sorted(rows)))
    sys.stderr.write(p.stderr)
'''

# Bad and exact requests on a raw NETLINK_SOCK_DIAG socket: the errno in
# each NLMSG_ERROR (or the type of the answer).
ERRNO_PROGRAM = r'''
import os, socket, struct

def ask(kind, flags, payload):
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 4)
    s.sendto(struct.pack("<IHHII", 16 + len(payload), kind, flags, 1, 0) + payload, (0, 0))
    data = s.recv(65536)
    n, t = struct.unpack_from("<IH", data)
    if t == 2:
        return "error %d" % -struct.unpack_from("<i", data, 16)[0]
    return "type %d" % t

REQ, DUMP = 1, 0x300
lst = socket.socket(socket.AF_UNIX); lst.bind("\0pv-sock-diag-exact"); lst.listen(1)
me = os.fstat(lst.fileno()).st_ino
unix = lambda ino, show, ck=(0xFFFFFFFF, 0xFFFFFFFF): struct.pack(
    "<BBxxIIIII", 1, 0, 0xFFFFFFFF, ino, show, *ck)
inet = lambda fam, proto: struct.pack("<BBBxI48s", fam, proto, 0, 0xFFFFFFFF, bytes(48))
print("short", ask(20, REQ | DUMP, b"\x01"))
print("unix short", ask(20, REQ | DUMP, b"\x01\x00" + bytes(10)))
print("family past AF_MAX", ask(20, REQ | DUMP, bytes([50, 0])))
print("no handler family", ask(20, REQ | DUMP, bytes([3, 0]) + bytes(22)))
print("inet short", ask(20, REQ | DUMP, bytes([2, 6]) + bytes(20)))
print("inet bad proto", ask(20, REQ | DUMP, inet(2, 99)))
print("inet raw dump", ask(20, REQ | DUMP, inet(2, 255)))
print("dccp", ask(19, REQ | DUMP, bytes(60)))
print("unknown type", ask(22, REQ | DUMP, bytes(24)))
print("unix exact ino 0", ask(20, REQ, unix(0, 1)))
print("unix exact unknown", ask(20, REQ, unix(0x7FFFFFF0, 1)))
print("unix exact mine", ask(20, REQ, unix(me, 1)))
print("unix exact stale", ask(20, REQ, unix(me, 1, (1, 2))))
print("tcp exact none", ask(20, REQ, inet(2, 6)))
t = socket.socket(); t.bind(("127.0.0.1", 7480)); t.listen(1)
old = struct.pack("<BBBB48sII", 2, 0, 0, 0, bytes(48), 0xFFFFFFFF, 0)
print("tcpdiag old dump", ask(18, REQ | DUMP, old))
print("tcpdiag old short", ask(18, REQ | DUMP, old[:40]))
print("inet exact bad proto", ask(20, REQ, inet(2, 99)))
print("inet exact udp none", ask(20, REQ, inet(2, 17)))
print("inet6 exact none", ask(20, REQ, inet(10, 6)))
print("destroy none", ask(21, REQ, inet(2, 6)))
print("netlink family", ask(20, REQ | DUMP, bytes([16, 0]) + bytes(22)))
print("packet family", ask(20, REQ | DUMP, bytes([17, 0]) + bytes(22)))
'''


def _native_in_netns(argv: list[str]) -> Result:
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        pytest.skip("unshare(1) and iproute2's ip are needed for a fresh network namespace")
    res = run_native(["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$@"', "sh",
                      *argv])
    if res.returncode != 0 and "unshare" in res.err:
        pytest.skip(f"cannot make a network namespace here: {res.err.strip()}")
    return res


def _same(nat: Result, box: Result) -> None:
    assert nat.returncode == 0, nat.describe()
    assert "Traceback" not in box.err, box.describe()
    assert box.out == nat.out, box.describe() + "\n--- native ---\n" + nat.out
    assert (box.returncode, box.err) == (nat.returncode, nat.err), box.describe()


@pytest.mark.sandbox
def test_ss_matches_linux(tmp_path: object) -> None:
    """ss's TCP, UDP and unix listings (with -p, -l, -m, state and port
    filters) through sock_diag: queues, backlogs, peers, names, states."""
    if shutil.which("ss") is None:
        pytest.skip("iproute2's ss is not installed")
    path = f"/tmp/pv-sock-diag-{os.getpid()}.sock"
    argv = [sys.executable, "-c", SS_PROGRAM, path]
    try:
        nat = _native_in_netns(argv)
        assert "LISTEN 1 7 127.0.0.1:7471" in nat.out, nat.describe()
        assert "u_str ESTAB 0 0 * pa * pb" in nat.out, nat.describe()
        assert "u_str LISTEN 1 4 PATH ux * 0" in nat.out, nat.describe()
        os.unlink(path)
        _same(nat, run_sandbox(argv))
    finally:
        if os.path.exists(path):
            os.unlink(path)


@pytest.mark.sandbox
def test_bad_and_exact_requests_get_linux_errnos() -> None:
    """Short requests, unknown families, protocols and types, exact lookups
    (inode 0, unknown, stale cookie), the old TCPDIAG_GETSOCK, and the
    netlink and packet families answer as Linux."""
    argv = [sys.executable, "-c", ERRNO_PROGRAM]
    nat = _native_in_netns(argv)
    assert "unix exact mine type 20" in nat.out, nat.describe()
    _same(nat, run_sandbox(argv))
