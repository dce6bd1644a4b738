"""A minimal client of the Kubernetes CRI (runtime.v1.RuntimeService), for
tests/test_e2e_cri_pod.py: the few messages and fields a pod of two
containers needs, built at import with protobuf's descriptor API (no .proto
compiled, no generated code), and called over gRPC on containerd's socket.

Field numbers are the CRI's own (k8s.io/cri-api, runtime/v1): a message on
the wire is only its numbers, so the messages here are the CRI's with every
field the test does not set left out.  crictl would do this, but Debian has
no cri-tools package and this machine reaches no other registry.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

PACKAGE = "runtime.v1"
SERVICE = f"/{PACKAGE}.RuntimeService/"

_S, _B, _I64, _I32, _U32, _E, _M = ("string", "bytes", "int64", "int32", "uint32", "enum",
                                    "message")
_KIND = {
    _S: descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
    _B: descriptor_pb2.FieldDescriptorProto.TYPE_BYTES,
    _I64: descriptor_pb2.FieldDescriptorProto.TYPE_INT64,
    _I32: descriptor_pb2.FieldDescriptorProto.TYPE_INT32,
    _U32: descriptor_pb2.FieldDescriptorProto.TYPE_UINT32,
    _E: descriptor_pb2.FieldDescriptorProto.TYPE_ENUM,
    _M: descriptor_pb2.FieldDescriptorProto.TYPE_MESSAGE,
}

# message -> [(field, number, kind, type name or None, repeated)]
MESSAGES: dict[str, list[tuple[str, int, str, str | None, bool]]] = {
    "PodSandboxMetadata": [("name", 1, _S, None, False), ("uid", 2, _S, None, False),
                           ("namespace", 3, _S, None, False),
                           ("attempt", 4, _U32, None, False)],
    "NamespaceOption": [("network", 1, _E, "NamespaceMode", False),
                        ("pid", 2, _E, "NamespaceMode", False),
                        ("ipc", 3, _E, "NamespaceMode", False)],
    "LinuxSandboxSecurityContext": [("namespace_options", 1, _M, "NamespaceOption", False)],
    "LinuxPodSandboxConfig": [("cgroup_parent", 1, _S, None, False),
                              ("security_context", 2, _M, "LinuxSandboxSecurityContext",
                               False)],
    "PodSandboxConfig": [("metadata", 1, _M, "PodSandboxMetadata", False),
                         ("hostname", 2, _S, None, False),
                         ("log_directory", 3, _S, None, False),
                         ("linux", 8, _M, "LinuxPodSandboxConfig", False)],
    "RunPodSandboxRequest": [("config", 1, _M, "PodSandboxConfig", False),
                             ("runtime_handler", 2, _S, None, False)],
    "RunPodSandboxResponse": [("pod_sandbox_id", 1, _S, None, False)],
    "PodSandboxIdRequest": [("pod_sandbox_id", 1, _S, None, False)],  # Stop/Remove
    "Empty": [],
    "ContainerMetadata": [("name", 1, _S, None, False), ("attempt", 2, _U32, None, False)],
    "ImageSpec": [("image", 1, _S, None, False)],
    "ContainerConfig": [("metadata", 1, _M, "ContainerMetadata", False),
                        ("image", 2, _M, "ImageSpec", False),
                        ("command", 3, _S, None, True), ("args", 4, _S, None, True),
                        ("log_path", 11, _S, None, False)],
    "CreateContainerRequest": [("pod_sandbox_id", 1, _S, None, False),
                               ("config", 2, _M, "ContainerConfig", False),
                               ("sandbox_config", 3, _M, "PodSandboxConfig", False)],
    "CreateContainerResponse": [("container_id", 1, _S, None, False)],
    "ContainerIdRequest": [("container_id", 1, _S, None, False)],  # Start/Remove
    "StopContainerRequest": [("container_id", 1, _S, None, False),
                             ("timeout", 2, _I64, None, False)],
    "ExecSyncRequest": [("container_id", 1, _S, None, False), ("cmd", 2, _S, None, True),
                        ("timeout", 3, _I64, None, False)],
    "ExecSyncResponse": [("stdout", 1, _B, None, False), ("stderr", 2, _B, None, False),
                         ("exit_code", 3, _I32, None, False)],
}
NAMESPACE_MODES = {"POD": 0, "CONTAINER": 1, "NODE": 2, "TARGET": 3}


def _build() -> dict[str, Any]:
    f = descriptor_pb2.FileDescriptorProto(name="pyvisor_cri_min.proto", package=PACKAGE,
                                           syntax="proto3")
    enum = f.enum_type.add(name="NamespaceMode")
    for name, number in NAMESPACE_MODES.items():
        enum.value.add(name=name, number=number)
    for name, fields in MESSAGES.items():
        m = f.message_type.add(name=name)
        for fname, number, kind, type_name, repeated in fields:
            fd = m.field.add(name=fname, number=number, type=_KIND[kind],
                             label=(descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED
                                    if repeated else
                                    descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL))
            if type_name is not None:
                fd.type_name = f".{PACKAGE}.{type_name}"
    pool = descriptor_pool.DescriptorPool()
    pool.Add(f)
    return {name: message_factory.GetMessageClass(pool.FindMessageTypeByName(
        f"{PACKAGE}.{name}")) for name in MESSAGES}


M = _build()

# rpc -> (request message, response message)
RPCS = {
    "RunPodSandbox": ("RunPodSandboxRequest", "RunPodSandboxResponse"),
    "StopPodSandbox": ("PodSandboxIdRequest", "Empty"),
    "RemovePodSandbox": ("PodSandboxIdRequest", "Empty"),
    "CreateContainer": ("CreateContainerRequest", "CreateContainerResponse"),
    "StartContainer": ("ContainerIdRequest", "Empty"),
    "StopContainer": ("StopContainerRequest", "Empty"),
    "RemoveContainer": ("ContainerIdRequest", "Empty"),
    "ExecSync": ("ExecSyncRequest", "ExecSyncResponse"),
}


class RuntimeService:
    """``svc.call("RunPodSandbox", {...})`` -> the response message."""

    def __init__(self, socket_path: str) -> None:
        import grpc

        self.channel = grpc.insecure_channel(f"unix://{socket_path}")

    def call(self, rpc: str, request: dict[str, Any], timeout: float = 120.0) -> Any:
        from google.protobuf import json_format

        req_name, resp_name = RPCS[rpc]
        req = json_format.ParseDict(request, M[req_name]())
        fn = self.channel.unary_unary(SERVICE + rpc,
                                      request_serializer=lambda m: m.SerializeToString(),
                                      response_deserializer=M[resp_name].FromString)
        return fn(req, timeout=timeout)

    def close(self) -> None:
        self.channel.close()
