"""``runsc.py do --network=host`` (sentry/net/hostinet.py): the program's
AF_INET/AF_INET6 sockets are host sockets the Sentry drives, in the
network namespace `do` runs in (the host's here).

- a program in the sandbox reaches a TCP server and a UDP socket this test
  opens on the host's 127.0.0.1;
- a server in the sandbox is reached from the host over IPv4 and IPv6;
- the socket programs of test_sockets.py give what they give natively;
- the sandbox sees the host's interfaces and routes (ip route, hostname -I).

Before host mode, every one of these failed: `do` had no --network and
inet sockets reached loopback inside the Sentry only (ENETUNREACH or
ECONNREFUSED for the host's listeners).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import threading

import pytest
from helpers import Programs, Result, run_native, run_sandbox, sandbox_command

HOST = ["--network=host"]


def _same(nat: Result, box: Result) -> None:
    assert "Traceback" not in box.err, box.describe()
    assert box.out == nat.out, box.describe() + "\n--- native ---\n" + nat.out
    assert box.returncode == nat.returncode, box.describe()


@pytest.mark.sandbox
def test_program_reaches_tcp_and_udp_on_the_host() -> None:
    srv = socket.create_server(("127.0.0.1", 0))
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    udp.settimeout(60)
    tport, uport = srv.getsockname()[1], udp.getsockname()[1]
    got: dict[str, bytes] = {}

    def serve() -> None:
        conn, _ = srv.accept()
        with conn:
            got["tcp"] = conn.recv(100)
            conn.sendall(b"host says hi to " + got["tcp"])
        got["udp"] = udp.recv(100)

    th = threading.Thread(target=serve, daemon=True)
    th.start()
    code = ("import socket\n"
            f"c = socket.create_connection(('127.0.0.1', {tport}))\n"
            "c.sendall(b'sandbox'); print(c.recv(100).decode())\n"
            "u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
            f"print(u.sendto(b'datagram', ('127.0.0.1', {uport})))\n")
    try:
        res = run_sandbox([sys.executable, "-c", code], extra_flags=HOST)
        th.join(30)
    finally:
        srv.close()
        udp.close()
    assert res.returncode == 0, res.describe()
    assert res.out == "host says hi to sandbox\n8\n", res.describe()
    assert got == {"tcp": b"sandbox", "udp": b"datagram"}


SERVER = r'''
import socket
s = socket.socket(socket.AF_INET6)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("::", 0)); s.listen(5)
print(s.getsockname()[1], flush=True)
for _ in range(2):
    c, peer = s.accept()
    with c:
        c.sendall(b"sandbox got " + c.recv(100) + b" from " + peer[0].encode())
'''


@pytest.mark.sandbox
def test_server_in_the_sandbox_is_reached_from_the_host() -> None:
    cmd = sandbox_command([sys.executable, "-c", SERVER], HOST)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        line = proc.stdout.readline()  # type: ignore[union-attr]
        assert line.strip().isdigit(), (line, proc.stderr.read())  # type: ignore[union-attr]
        port = int(line)
        answers = []
        for host in ("127.0.0.1", "::1"):
            with socket.create_connection((host, port), timeout=60) as c:
                c.sendall(b"hello")
                answers.append(c.recv(100))
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()  # reaps it and closes the pipes
    assert answers == [b"sandbox got hello from ::ffff:127.0.0.1", b"sandbox got hello from ::1"]


@pytest.mark.sandbox
@pytest.mark.parametrize("name", ("sock_tcp", "sock_udp", "sock_errors", "sock_poll"))
def test_socket_programs_match_native(programs: Programs, name: str) -> None:
    """In host mode the host's stack answers: the same as natively."""
    exe = programs.path(name, "static")
    _same(run_native([exe]), run_sandbox([exe], extra_flags=HOST, timeout=120))


@pytest.mark.sandbox
def test_host_interfaces_and_routes_are_seen() -> None:
    if shutil.which("ip") is None or shutil.which("hostname") is None:
        pytest.skip("iproute2's ip and hostname(1) are needed")
    # Routes and addresses; not the link list, which shows host-side veths of
    # other sandboxes coming and going, with peer details not copied here.
    argv = ["sh", "-c", "ip route show table main; hostname -I"]
    before = run_native(argv)
    box = run_sandbox(argv, extra_flags=HOST)
    after = run_native(argv)
    assert box.returncode == 0, box.describe()
    # Another process may add an interface meanwhile: either view is right.
    assert box.out in (before.out, after.out), box.describe() + "\n--- native ---\n" + before.out


@pytest.mark.sandbox
def test_none_stays_the_default() -> None:
    """Without --network the host's listeners are out of reach."""
    srv = socket.create_server(("127.0.0.1", 0))
    try:
        code = ("import socket\n"
                "try:\n"
                f"    socket.create_connection(('127.0.0.1', {srv.getsockname()[1]}))\n"
                "except OSError as e: print(e.errno)\n")
        res = run_sandbox([sys.executable, "-c", code])
    finally:
        srv.close()
    assert res.out == "111\n", res.describe()  # ECONNREFUSED: the Sentry's own loopback
