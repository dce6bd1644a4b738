"""Python's socket module, asyncio, http.server and urllib, natively and in
the sandbox: the programs real services are built from. Each printed the
ENOSYS of socket()/socketpair() before the socket layer."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest
from helpers import Result, run_native, run_sandbox

PYTHON = shutil.which("python3", path="/usr/bin:/bin")

pytestmark = pytest.mark.skipif(PYTHON is None, reason="no /usr/bin/python3 to run in the sandbox")

SCRIPTS = {
    "socketpair": """
        import socket
        a, b = socket.socketpair()
        a.sendall(b"ping")
        print(b.recv(10))
    """,
    "echo": """
        import socket, threading
        for fam, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
            l = socket.socket(fam)
            l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            l.bind((host, 0))
            l.listen()
            def serve():
                c, _ = l.accept()
                with c:
                    while data := c.recv(65536):
                        c.sendall(data)
            th = threading.Thread(target=serve)
            th.start()
            s = socket.create_connection((host, l.getsockname()[1]), timeout=30)
            payload = bytes(range(256)) * 4096
            def send_all():
                s.sendall(payload)
                s.shutdown(socket.SHUT_WR)
            sender = threading.Thread(target=send_all)
            sender.start()
            got = bytearray()
            while chunk := s.recv(65536):
                got += chunk
            sender.join(); th.join(); s.close(); l.close()
            print(fam.name, len(got), got == payload)
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.bind(("127.0.0.1", 0))
        v = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        v.sendto(b"d" * 3000, u.getsockname())
        data, _, flags, _ = u.recvmsg(100)
        print(len(data), bool(flags & socket.MSG_TRUNC))
        print(socket.getaddrinfo("localhost", 80, socket.AF_INET, socket.SOCK_STREAM)[0][4])
        print(socket.getaddrinfo("localhost", 80, type=socket.SOCK_STREAM,
                                 flags=socket.AI_ADDRCONFIG)[0][4])
    """,
    "asyncio": """
        import asyncio
        async def handle(reader, writer):
            line = await reader.readline()
            writer.write(line.upper())
            await writer.drain()
            writer.close()
        async def main():
            server = await asyncio.start_server(handle, "127.0.0.1", 0)
            port = server.sockets[0].getsockname()[1]
            async def client(i):
                r, w = await asyncio.open_connection("127.0.0.1", port)
                w.write(b"hello %d\\n" % i)
                reply = await r.readline()
                w.close()
                await w.wait_closed()
                return reply
            replies = await asyncio.gather(*(client(i) for i in range(20)))
            server.close()
            await server.wait_closed()
            print(sorted(replies)[:3], len(replies))
            rsock, wsock = __import__("socket").socketpair()
            loop = asyncio.get_running_loop()
            fut = loop.create_future()
            def readable():
                loop.remove_reader(rsock)
                fut.set_result(rsock.recv(10))
            loop.add_reader(rsock, readable)
            wsock.send(b"wake")
            print(await asyncio.wait_for(fut, 30))
        asyncio.run(main())
    """,
    "http_server": """
        import subprocess, sys, urllib.request
        srv = subprocess.Popen([sys.executable, "-u", "-m", "http.server", "--bind",
                                "127.0.0.1", "0", "--directory", "/etc"],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        banner = srv.stdout.readline()
        port = int(banner.split(" port ")[1].split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/hostname", timeout=30) as r:
            print(r.status, r.headers.get_content_type())
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=30) as r:
            print(r.status, b"passwd" in r.read())
        srv.terminate()
        print(srv.wait())
    """,
}


def _script(tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"sock_{name}.py"  # never shadows a module (asyncio)
    path.write_text(textwrap.dedent(SCRIPTS[name]))
    return path


def _same(nat: Result, box: Result) -> None:
    assert nat.returncode == 0, nat.describe()
    assert "Traceback" not in box.err, box.describe()
    assert box.out == nat.out, box.describe() + "\n--- native ---\n" + nat.out
    assert box.returncode == nat.returncode, box.describe()


@pytest.mark.sandbox
@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_python_matches_native(tmp_path: Path, name: str) -> None:
    script = _script(tmp_path, name)
    nat = run_native(_loopback_only([PYTHON, script]))
    box = run_sandbox([PYTHON, script], extra_flags=["-v", f"{tmp_path}:{tmp_path}:ro"],
                      timeout=120)
    _same(nat, box)


def _loopback_only(argv: list[str]) -> list[str]:
    """``argv`` natively in a new network namespace with only ``lo`` up: the
    network the sandbox models (`--network=none`), whatever the host has.
    Why: getaddrinfo with AI_ADDRCONFIG answers from the host's configured
    addresses, so on a host whose eth0 had lost its IPv4 address the native
    run failed and the sandbox's (loopback only, as Linux's in such a
    namespace) did not."""
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        pytest.skip("unshare or ip not found: no loopback-only namespace for the native run")
    return ["unshare", "--net", "sh", "-c", 'ip link set lo up && exec "$0" "$@"', *argv]


@pytest.mark.sandbox
def test_python_socketpair_one_liner() -> None:
    res = run_sandbox([PYTHON, "-c", "import socket; socket.socketpair()"])
    assert res.returncode == 0, res.describe()


@pytest.mark.sandbox
def test_sandbox_has_no_network_but_loopback() -> None:
    """runsc --network=none: other addresses are unreachable, never the host's."""
    code = textwrap.dedent("""
        import errno, socket
        for fam, addr in ((socket.AF_INET, ("192.0.2.1", 80)),
                          (socket.AF_INET6, ("2001:db8::1", 80))):
            for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
                s = socket.socket(fam, kind)
                print(errno.errorcode[s.connect_ex(addr)])
        s = socket.socket()
        try:
            s.bind(("192.0.2.1", 0))
        except OSError as e:
            print(errno.errorcode[e.errno])
        try:  # NETLINK_AUDIT: the Sentry answers NETLINK_ROUTE only
            socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 9)
        except OSError as e:
            print("netlink", errno.errorcode[e.errno])
    """)
    res = run_sandbox([PYTHON, "-c", code])
    assert res.returncode == 0, res.describe()
    want = "ENETUNREACH\n" * 4 + "EADDRNOTAVAIL\nnetlink EPROTONOSUPPORT\n"
    assert res.out == want, res.describe()


@pytest.mark.sandbox
def test_sandbox_bound_socket_is_an_inode() -> None:
    """A bound AF_UNIX name shows as a socket in ls -l (mode 's')."""
    code = textwrap.dedent("""
        import os, socket, subprocess
        s = socket.socket(socket.AF_UNIX)
        s.bind("/tmp/pyvisor.sock")
        print(subprocess.run(["ls", "-l", "/tmp/pyvisor.sock"], capture_output=True,
                             text=True).stdout[:1])
    """)
    res = run_sandbox([PYTHON, "-c", code])
    assert res.returncode == 0, res.describe()
    assert res.out == "s\n", res.describe()


@pytest.mark.sandbox
def test_sandbox_never_reaches_host_unix_socket(tmp_path: Path) -> None:
    """A host AF_UNIX socket visible through a bind mount is a socket inode
    with no Sentry socket bound to it: connect is refused, and the host
    listener never sees a connection (runsc without --host-uds)."""
    import socket

    path = tmp_path / "host.sock"
    host = socket.socket(socket.AF_UNIX)
    host.bind(str(path))
    host.listen()
    host.setblocking(False)
    code = textwrap.dedent(f"""
        import errno, os, socket, stat
        print(stat.S_ISSOCK(os.stat({str(path)!r}).st_mode))
        s = socket.socket(socket.AF_UNIX)
        print(errno.errorcode[s.connect_ex({str(path)!r})])
    """)
    try:
        res = run_sandbox([PYTHON, "-c", code], extra_flags=["-v", f"{tmp_path}:{tmp_path}"])
        assert res.returncode == 0, res.describe()
        assert res.out == "True\nECONNREFUSED\n", res.describe()
        with pytest.raises(BlockingIOError):
            host.accept()
    finally:
        host.close()
