"""The Gofer's later trees (gofer/late.py): what comes over the tree socket is
untrusted (it is relayed by the Sentry), so every malformed message is dropped
with its descriptors closed, a tree that came at boot can never be dropped,
and a dropped tree's fids are gone.  In-process, on a FileServer (no
confinement needed to check the protocol)."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from gofer import p9
from gofer.fids import open_attaches
from gofer.late import LateTrees
from gofer.server import FileServer


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[FileServer, socket.socket, Path]]:
    root = tmp_path / "root"
    (root / "in-root").mkdir(parents=True)
    other = tmp_path / "member"
    (other / "sub").mkdir(parents=True)
    (other / "file").write_text("member file\n")
    boot = tmp_path / "boot-bind"
    boot.mkdir()
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    root_fd = os.open(root, os.O_PATH | os.O_DIRECTORY)
    attaches = open_attaches([("m0", str(boot), True)])
    srv = FileServer(root_fd, attaches=attaches, late=LateTrees(theirs.detach()))
    try:
        yield srv, ours, other
    finally:
        srv.close()
        srv.late.close()
        os.close(root_fd)
        ours.close()


def _attach(srv: FileServer, fid: int, aname: str) -> p9.Message:
    return srv._dispatch(p9.Tattach(fid, p9.P9_NOFID, "root", aname, 0))


def _send(sock: socket.socket, msg: object, fds: list[int]) -> None:
    data = msg if isinstance(msg, bytes) else json.dumps(msg).encode()
    socket.send_fds(sock, [data], fds)
    for fd in fds:
        os.close(fd)


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_a_tree_sent_is_served_and_a_drop_closes_it(served) -> None:
    srv, sock, other = served
    before = _open_fds()
    _send(sock, {"name": "pod1:", "writable": True},
          [os.open(other, os.O_PATH | os.O_DIRECTORY)])
    assert isinstance(_attach(srv, 1, "pod1:"), p9.Rattach)
    assert isinstance(srv._dispatch(p9.Twalk(1, 2, ["sub"])), p9.Rwalk)
    _send(sock, {"drop": "pod1:"}, [])
    assert isinstance(_attach(srv, 3, ""), p9.Rattach)  # the drain happens here
    assert 1 not in srv.fids and 2 not in srv.fids  # the dropped tree's fids are gone
    assert isinstance(_attach(srv, 4, "pod1:"), p9.Rlerror)
    srv._dispatch(p9.Tclunk(3))
    assert _open_fds() == before  # nothing of the tree is held any more


@pytest.mark.parametrize("case", ["not-json", "not-object", "no-name", "slash-name",
                                  "bad-writable", "no-fd", "socket-fd", "dir-with-two",
                                  "file-alone", "file-mismatch"])
def test_malformed_messages_are_dropped_with_their_fds(served, case: str) -> None:
    srv, sock, other = served
    d = lambda: os.open(other, os.O_PATH | os.O_DIRECTORY)  # noqa: E731
    f = lambda: os.open(other / "file", os.O_PATH)  # noqa: E731
    msgs: dict[str, tuple[object, list[int]]] = {
        "not-json": (b"{nope", [d()]),
        "not-object": ([1, 2], [d()]),
        "no-name": ({"writable": True}, [d()]),
        "slash-name": ({"name": "/", "writable": True}, [d()]),
        "bad-writable": ({"name": "x", "writable": "yes"}, [d()]),
        "no-fd": ({"name": "x", "writable": True}, []),
        "socket-fd": ({"name": "x", "writable": True}, [os.dup(sock.fileno())]),
        "dir-with-two": ({"name": "x", "writable": True}, [d(), d()]),
        "file-alone": ({"name": "x", "writable": True}, [f()]),
        "file-mismatch": ({"name": "x", "writable": True},
                          [f(), os.open(other / "sub", os.O_RDONLY)]),
    }
    before = _open_fds()
    msg, fds = msgs[case]
    if not fds:
        socket.send_fds(sock, [json.dumps(msg).encode()], [])
    else:
        _send(sock, msg, fds)
    assert isinstance(_attach(srv, 1, ""), p9.Rattach)  # the server lives on
    srv._dispatch(p9.Tclunk(1))
    assert "x" not in srv.attaches
    assert _open_fds() == before - len(fds)  # ours closed, the Gofer's too


def test_a_boot_bind_cannot_be_dropped_nor_replaced(served) -> None:
    srv, sock, other = served
    _send(sock, {"drop": "m0"}, [])
    _send(sock, {"name": "m0", "writable": True}, [os.open(other, os.O_PATH | os.O_DIRECTORY)])
    assert isinstance(_attach(srv, 1, "m0"), p9.Rattach)
    assert isinstance(srv._dispatch(p9.Twalk(1, 2, ["sub"])), p9.Rlerror) or \
        2 not in srv.fids  # still the boot bind, which has no "sub"
