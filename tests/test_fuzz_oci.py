"""Fuzzing the OCI side's decoders: config.json and the control socket.

Both take bytes from outside the sandbox's wall but from less-trusted hands
than the runtime's: a bundle is whatever the caller (or an image) wrote, and
the control socket's frames come from any process that can reach the state
directory (an `exec` request's process object is parsed once by the sandbox
host and again inside the Sentry).  The promises checked here:

- bundle.read_config / bundle.parse / bundle.parse_process (and the Sentry's
  process_spec after it) raise only BundleError, whatever the JSON or
  msgpack value: wrong types at any depth, huge or negative numbers, NULs,
  lone surrogates, deep nesting;
- control.decode raises only FrameError; control.read_frame only FrameError
  or TimeoutError, and never waits past its deadline;
- a live ControlServer answers every byte stream with error replies (or
  closes the connection), and then still serves a good request.
"""

from __future__ import annotations

import json
import socket
import threading
from pathlib import Path
from typing import Any

import msgpack
from fuzzing import fuzz
from hypothesis import example
from hypothesis import strategies as st

from sentry.oci import bundle, control
from sentry.oci.control_errors import FrameError
from sentry.oci.control_server import ControlServer
from sentry.oci.sentry_ops import process_spec


# JSON-like values: what json.loads and msgpack.unpackb can hand a parser
# (msgpack's integers stop at 64 bits, JSON's do not).
def _values(ints: st.SearchStrategy[int]) -> st.SearchStrategy[Any]:
    scalars = st.one_of(
        st.none(), st.booleans(), ints, st.floats(allow_nan=True), st.text(max_size=12),
        st.sampled_from(["", "/", "\0", "\ud800", "RLIMIT_NOFILE", "CAP_KILL", "RLIMIT_",
                         "CAP_", "1.0.2", "=x", "A=1", "pid"]),
    )
    return st.recursive(
        scalars,
        lambda kids: st.one_of(st.lists(kids, max_size=4),
                               st.dictionaries(st.text(max_size=8), kids, max_size=4)),
        max_leaves=20,
    )


values = _values(st.integers(-(1 << 70), 1 << 70))
mp_values = _values(st.integers(-(1 << 63), (1 << 64) - 1))
SPEC = bundle.default_spec(["sh", "-c", "true"])


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a JSON tree (dict keys and list indices)."""
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


SPEC_PATHS = _paths(SPEC)[1:]


@st.composite
def mutated_specs(draw: st.DrawFn) -> Any:
    """The default spec with a few places replaced by hostile values."""
    spec = json.loads(json.dumps(SPEC))
    for _ in range(draw(st.integers(1, 4))):
        path = draw(st.sampled_from(SPEC_PATHS))
        node = spec
        try:
            for key in path[:-1]:
                node = node[key]
            node[path[-1]] = draw(values)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier replacement removed that place
    return spec


_BUNDLE_DIR: list[str] = []


def _dir() -> str:
    if not _BUNDLE_DIR:
        import tempfile

        d = Path(tempfile.mkdtemp(prefix="pyvisor-fuzz-bundle-"))
        (d / "rootfs").mkdir()
        _BUNDLE_DIR.append(str(d))
    return _BUNDLE_DIR[0]


def _parse_all(raw: Any) -> None:
    try:
        b = bundle.parse(raw, _dir())
        process_spec(b.process, None)  # unknown rlimit names are refused here
        bundle.parse_hooks(b.raw.get("hooks"))
    except bundle.BundleError:
        pass


@fuzz(quick=60, raw=st.one_of(mutated_specs(), values))
@example(raw={**SPEC, "process": {**SPEC["process"], "rlimits": [{"type": "RLIMIT_X"}]}})
@example(raw={**SPEC, "hostname": "\ud800"})
@example(raw={**SPEC, "root": {"path": "rootfs\ud800"}})
def test_config_parse_raises_only_bundle_error(raw: Any) -> None:
    _parse_all(raw)


test_config_parse_raises_only_bundle_error_long = test_config_parse_raises_only_bundle_error.long


@fuzz(quick=60, data=st.one_of(
    st.binary(max_size=200),
    st.builds(lambda v: json.dumps(v).encode(), mutated_specs()),
    st.integers(1, 100_000).map(lambda n: b"[" * n),
    st.sampled_from([b"\xef\xbb\xbf{}", b"{\"a\": 1e999999}", b"\"\\ud800\"", b"", b"\xff"]),
))
def test_read_config_raises_only_bundle_error(data: bytes) -> None:
    path = Path(_dir()) / "config.json"
    path.write_bytes(data)
    try:
        raw = bundle.read_config(str(path))
    except bundle.BundleError:
        return
    _parse_all(raw)


test_read_config_raises_only_bundle_error_long = test_read_config_raises_only_bundle_error.long


@fuzz(quick=60, process=st.one_of(
    st.builds(lambda v: msgpack.unpackb(_packb(v), raw=False, unicode_errors="surrogatepass"),
              mp_values),
    mutated_specs().map(lambda s: s.get("process") if isinstance(s, dict) else s),
))
@example(process={"args": ["x"], "capabilities": {"bounding": ["CAP_NOPE"]}})
def test_exec_process_raises_only_bundle_error(process: Any) -> None:
    """The process object of an exec request, as the Sentry parses it."""
    try:
        p = bundle.parse_process(process)
        process_spec(p, None)
    except bundle.BundleError:
        pass


test_exec_process_raises_only_bundle_error_long = test_exec_process_raises_only_bundle_error.long


# -- frames -----------------------------------------------------------------

def _packb(value: Any) -> bytes:
    """msgpack of a drawn value; lone surrogates travel as their UTF-8-ish bytes
    (a client may send any bytes as a "str")."""
    return msgpack.packb(value, unicode_errors="surrogatepass")


def _nested(depth: int) -> bytes:
    return b"\x91" * depth + b"\xc0"  # [[[...nil]]]


msgpack_payloads = st.one_of(
    st.binary(max_size=100),
    st.builds(_packb, mp_values),
    st.integers(1, 20_000).map(_nested),
    st.sampled_from([b"\xdd\xff\xff\xff\xff", b"\xdf\xff\xff\xff\xff", b"\xc1",
                     b"\xde\x00\x01\xc0\xc0", b"\xa1\xff", b"\x81\xa1\xff\xc0",
                     b"\x81\x91\x00\x00"]),  # list key: strict_map_key refuses
)


@fuzz(payload=msgpack_payloads)
@example(payload=_nested(100_000))  # nesting past msgpack's stack
def test_decode_raises_only_frame_error(payload: bytes) -> None:
    try:
        msg = control.decode(payload)
    except FrameError:
        return
    assert isinstance(msg, dict)


test_decode_raises_only_frame_error_long = test_decode_raises_only_frame_error.long


def _frame(payload: bytes) -> bytes:
    return control.HEADER.pack(len(payload)) + payload


streams = st.lists(st.one_of(
    msgpack_payloads.map(_frame),
    st.binary(max_size=12),
    st.sampled_from([b"\xff\xff\xff\xff", b"\x00\x10\x00\x01", control.HEADER.pack(100)]),
), max_size=4).map(b"".join)


@fuzz(stream=streams)
def test_read_frame_bounded(stream: bytes) -> None:
    """Whatever a client writes (then closes): frames, errors, EOF; no wait
    past the deadline (the peer closed, so every read returns)."""
    a, b = socket.socketpair()
    with a, b:
        sender = threading.Thread(target=lambda: (a.sendall(stream), a.shutdown(socket.SHUT_WR)))
        sender.start()
        try:
            for _ in range(len(stream) + 1):
                try:
                    if control.read_frame(b, 5.0) is None:
                        break
                except FrameError as exc:
                    if exc.fatal:
                        break
        finally:
            b.close()
            sender.join(10)
        assert not sender.is_alive()


test_read_frame_bounded_long = test_read_frame_bounded.long


class _Server:
    """A live control server whose handler validates as the real ops do."""

    def __init__(self, path: str) -> None:
        self.server = ControlServer(path, self.handle)
        self.server.start()
        self.path = path

    @staticmethod
    def handle(req: dict[str, Any]) -> dict[str, Any]:
        op = req.get("op")
        if op == "kill":
            try:
                control.valid_signal(req.get("signal"))
            except ValueError as exc:
                return {"ok": False, "error": str(exc)}
        elif op == "exec":
            try:
                process_spec(bundle.parse_process(req.get("process")), None)
            except bundle.BundleError as exc:
                return {"ok": False, "error": str(exc)}
        return {"ok": True, "op": op}


_SERVERS: list[_Server] = []


def _server() -> _Server:
    if not _SERVERS:
        import tempfile

        d = tempfile.mkdtemp(prefix="pyvisor-fuzz-ctl-")
        _SERVERS.append(_Server(str(Path(d) / "control.sock")))
    return _SERVERS[0]


@fuzz(quick=40, stream=streams)
@example(stream=_frame(_packb({"op": "exec", "process": {"args": [1]}})))
def test_server_survives_any_stream(stream: bytes) -> None:
    srv = _server()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(15)
        s.connect(srv.path)
        s.sendall(stream)
        s.shutdown(socket.SHUT_WR)
        while True:  # the server answers what it can, then closes: never hangs
            try:
                if not s.recv(1 << 16):
                    break
            except ConnectionResetError:
                break
    assert control.request(srv.path, {"op": "state"}, timeout=10) == {"ok": True, "op": "state"}


test_server_survives_any_stream_long = test_server_survives_any_stream.long


def teardown_module() -> None:
    for srv in _SERVERS:
        srv.server.close()
    _SERVERS.clear()
    import shutil

    for d in _BUNDLE_DIR:
        shutil.rmtree(d, ignore_errors=True)
    _BUNDLE_DIR.clear()
