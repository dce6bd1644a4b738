"""End to end: a two-container pod through containerd's CRI, in one sandbox.

containerd runs with its CRI plugin and pyvisor as the runtime handler
"pyvisor" (io.containerd.runc.v2 with BinaryName = the pyvisor launcher), and
the test is the kubelet: RunPodSandbox, CreateContainer, StartContainer,
ExecSync, then Stop/Remove, over the CRI's gRPC API (tests/cri_api.py; no
crictl here).  Two containers of the pod talk over 127.0.0.1, see each other's
processes, and run in the pod's one Sentry (one Gofer serves all three roots).

The pod uses the host's network namespace (NamespaceMode NODE) so no CNI
plugin is needed: its loopback is the Sentry's own, which is what the two
containers share.  Ports are unusual (other e2e tests run in parallel).
Needs grpcio and protobuf (pip) besides containerd; without them: a skip.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import e2e
import pytest
from helpers import assert_no_process_left, processes_mentioning

pytest.importorskip("grpc", reason="grpcio is not installed (pip install grpcio protobuf)")
pytest.importorskip("google.protobuf", reason="protobuf is not installed (pip install protobuf)")

import cri_api  # noqa: E402 - needs protobuf, checked above

pytestmark = [pytest.mark.root, pytest.mark.sandbox]
PAUSE = "pyvisor.test/pause:1"
APP = "pyvisor.test/app:1"
PORT = 38623
NAMESPACE = "k8s.io"


class Cri:
    def __init__(self, base: Path, svc: cri_api.RuntimeService, daemon: e2e.Daemon,
                 runtime_root: Path) -> None:
        self.base, self.svc, self.daemon, self.runtime_root = base, svc, daemon, runtime_root

    def exec(self, cid: str, *cmd: str) -> Any:
        return self.svc.call("ExecSync", {"container_id": cid, "cmd": list(cmd),
                                          "timeout": 60})


def _config(base: Path, sock: Path, runtime_root: Path, launcher: Path) -> str:
    cri = 'plugins."io.containerd.grpc.v1.cri"'
    return (
        "version = 2\n"
        f'root = "{base}/root"\n'
        f'state = "{base}/state"\n'
        f'[grpc]\n  address = "{sock}"\n'
        f'[ttrpc]\n  address = "{sock}.ttrpc"\n'
        '[debug]\n  address = ""\n'
        '[metrics]\n  address = ""\n'
        f"[{cri}]\n"
        f'  sandbox_image = "{PAUSE}"\n'
        '  stream_server_address = "127.0.0.1"\n'
        '  stream_server_port = "0"\n'
        "  disable_apparmor = true\n"
        f"[{cri}.cni]\n"
        f'  bin_dir = "{base}/cni-bin"\n'
        f'  conf_dir = "{base}/cni-conf"\n'
        f"[{cri}.containerd]\n"
        '  snapshotter = "overlayfs"\n'
        '  default_runtime_name = "runc"\n'
        f"[{cri}.containerd.runtimes.runc]\n"
        '  runtime_type = "io.containerd.runc.v2"\n'
        f"[{cri}.containerd.runtimes.pyvisor]\n"
        '  runtime_type = "io.containerd.runc.v2"\n'
        f"[{cri}.containerd.runtimes.pyvisor.options]\n"
        f'  BinaryName = "{launcher}"\n'
        f'  Root = "{runtime_root}"\n')


@pytest.fixture(scope="module")
def cri() -> Iterator[Cri]:
    e2e.require_root()
    containerd = e2e.require_tool("containerd")
    client = e2e.require_tool("ctr")
    e2e.require_tool("containerd-shim-runc-v2")
    e2e.require_busybox()
    base = e2e.short_tmpdir("pyv-cri-")
    daemon: e2e.Daemon | None = None
    svc = None
    try:
        sock = base / "containerd.sock"
        runtime_root = base / "runtime-root"
        conf = base / "config.toml"
        conf.write_text(_config(base, sock, runtime_root, e2e.launcher(base)))
        env = e2e.tool_env()
        daemon = e2e.Daemon("containerd", [containerd, "--config", str(conf)],
                            base / "containerd.log", env)
        daemon.start()
        argv = [client, "--address", str(sock), "--namespace", NAMESPACE]
        daemon.wait_ready([*argv, "version"])
        for ref, cmd in ((PAUSE, ("/bin/sleep", "1000000")), (APP, ("/bin/sh",))):
            archive = e2e.write_oci_archive(base / f"{ref.rsplit('/', 1)[1]}.tar", ref, cmd)
            res = e2e.run([*argv, "images", "import", str(archive)], env=env)
            if res.returncode != 0:
                e2e.unavailable(f"ctr images import failed: {res.stderr}", daemon.why(res))
        svc = cri_api.RuntimeService(str(sock))
        yield Cri(base, svc, daemon, runtime_root)
    finally:
        if svc is not None:
            svc.close()
        if daemon is not None:
            daemon.stop()
        e2e.kill_leftovers(base)
        e2e.remove_tree(base)


def _sandbox_config(tag: str, base: Path) -> dict[str, Any]:
    (base / "logs").mkdir(exist_ok=True)
    return {"metadata": {"name": f"pod-{tag}", "uid": tag, "namespace": "default",
                         "attempt": 0},
            "hostname": "pod-host", "log_directory": str(base / "logs"),
            "linux": {"security_context": {"namespace_options": {"network": "NODE"}}}}


def test_two_container_pod_in_one_sandbox(cri: Cri) -> None:
    tag = uuid.uuid4().hex[:8]
    sandbox_config = _sandbox_config(tag, cri.base)
    try:
        pod = cri.svc.call("RunPodSandbox", {"config": sandbox_config,
                                             "runtime_handler": "pyvisor"}).pod_sandbox_id
    except Exception as exc:  # noqa: BLE001 - grpc.RpcError: show containerd's side
        pytest.fail(f"RunPodSandbox: {exc}\n{e2e.log_tail(cri.daemon.log)}")
    ids = []
    try:
        for name, n in (("a", 100011), ("b", 100012)):
            cid = cri.svc.call("CreateContainer", {
                "pod_sandbox_id": pod, "sandbox_config": sandbox_config,
                "config": {"metadata": {"name": name}, "image": {"image": APP},
                           "command": ["/bin/busybox", "sleep", str(n)],
                           "log_path": f"{name}.log"}}).container_id
            ids.append(cid)
            cri.svc.call("StartContainer", {"container_id": cid})
        a, b = ids
        # A server in a, bound before the exec returns (httpd daemonizes after bind).
        r = cri.exec(a, "/bin/sh", "-c", "mkdir -p /www && echo from-a > /www/hello && "
                     f"/bin/busybox httpd -p 127.0.0.1:{PORT} -h /www "
                     "</dev/null >/dev/null 2>&1")
        assert r.exit_code == 0, r.stderr
        r = cri.exec(b, "/bin/busybox", "wget", "-qO-", f"http://127.0.0.1:{PORT}/hello")
        assert (r.exit_code, r.stdout) == (0, b"from-a\n"), r.stderr
        # One kernel: b sees a's init and the pod's pause process.
        r = cri.exec(b, "/bin/busybox", "ps")
        out = r.stdout.decode()
        assert "sleep 100011" in out and "sleep 1000000" in out, out
        # ... but its own root: a's /www is not in b's.
        assert cri.exec(b, "/bin/busybox", "ls", "/www").exit_code != 0
        # One Sentry: the pod's three containers have one Gofer between them.
        gofers = [p for p, cmd in processes_mentioning("gofer.server")
                  if any(str(cri.runtime_root) in c for _, c in
                         processes_mentioning(f"sandbox-serve {pod}"))
                  and os.path.exists(f"/proc/{p}")]
        assert gofers, "no Gofer for the pod"
        hosts = processes_mentioning(f"--root {cri.runtime_root}")
        sentries = {c.split("sandbox-serve ", 1)[1].split()[0] for _, c in hosts}
        assert sentries == {pod, a, b}, hosts
        assert len(processes_mentioning(f"sandbox-serve {a}")) == 1  # a host, no Sentry
        assert len(processes_mentioning(f"sandbox-serve {pod}")) == 2  # host and Sentry
    finally:
        errors = []
        for rpc, req in [*[(r, {"container_id": c, **({"timeout": 5} if r[0] == "S" else {})})
                           for c in reversed(ids) for r in ("StopContainer", "RemoveContainer")],
                         ("StopPodSandbox", {"pod_sandbox_id": pod}),
                         ("RemovePodSandbox", {"pod_sandbox_id": pod})]:
            try:
                cri.svc.call(rpc, req)
            except Exception as exc:  # noqa: BLE001 - every step is tried; all reported
                errors.append(f"{rpc}: {exc}")
    assert not errors, errors
    assert_no_process_left(f"--root {cri.runtime_root}", grace=10.0)
