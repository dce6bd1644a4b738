"""The shape of ``linux.resources`` (runtime-spec config-linux.md), checked as
runc checks it: by decoding it into typed fields.

Why: runc unmarshals config.json into Go structs, so ``"limit": "64m"`` or
``"pids": {"limit": "x"}`` fails ``create`` with "cannot unmarshal string into
... of type int64".  A runtime that reads the same field with a type test and
skips what does not match would start the container with no limit at all: a
silent loss of the user's memory or pids cap.  So every field of the resources
object is checked here for its Go type (integer width and sign, string,
boolean, list, object) before anything exists; unknown fields are ignored, as
the spec asks, and ``null`` is an absent value, as Go's decoder treats it.

What the values then mean (which limits apply to the host cgroup and how) is
sentry/oci/cgroups.py's business, not this module's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Check = Callable[[Any, str], None]


class ResourceError(ValueError):
    """A field of linux.resources has the wrong type: the message names it."""


_INT_RANGES = {
    "int64": (-(1 << 63), (1 << 63) - 1),
    "uint64": (0, (1 << 64) - 1),
    "uint32": (0, (1 << 32) - 1),
    "uint16": (0, (1 << 16) - 1),
}


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _int(kind: str) -> Check:
    lo, hi = _INT_RANGES[kind]

    def check(value: Any, where: str) -> None:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ResourceError(f"{where}: must be an integer ({kind}), not {_show(value)}")
        if not lo <= value <= hi:
            raise ResourceError(f"{where}: {value} is out of range for {kind}")
    return check


def _str(value: Any, where: str) -> None:
    if not isinstance(value, str):
        raise ResourceError(f"{where}: must be a string, not {_show(value)}")


def _bool(value: Any, where: str) -> None:
    if not isinstance(value, bool):
        raise ResourceError(f"{where}: must be a boolean, not {_show(value)}")


def _struct(fields: dict[str, Check]) -> Check:
    """An object whose known keys have these types (null: absent)."""
    def check(value: Any, where: str) -> None:
        if not isinstance(value, dict):
            raise ResourceError(f"{where}: must be an object, not {_show(value)}")
        for key, sub in fields.items():
            if value.get(key) is not None:
                sub(value[key], f"{where}.{key}")
    return check


def _list(item: Check) -> Check:
    def check(value: Any, where: str) -> None:
        if not isinstance(value, list):
            raise ResourceError(f"{where}: must be a list, not {_show(value)}")
        for i, v in enumerate(value):
            if v is not None:
                item(v, f"{where}[{i}]")
    return check


def _map(item: Check) -> Check:
    def check(value: Any, where: str) -> None:
        if not isinstance(value, dict):
            raise ResourceError(f"{where}: must be an object, not {_show(value)}")
        for k, v in value.items():
            if v is not None:
                item(v, f"{where}.{k}")
    return check


I64, U64, U32, U16 = _int("int64"), _int("uint64"), _int("uint32"), _int("uint16")

_THROTTLE = _list(_struct({"major": I64, "minor": I64, "rate": U64}))

RESOURCES: Check = _struct({
    "devices": _list(_struct({"allow": _bool, "type": _str, "major": I64, "minor": I64,
                              "access": _str})),
    "memory": _struct({"limit": I64, "reservation": I64, "swap": I64, "kernel": I64,
                       "kernelTCP": I64, "swappiness": U64, "disableOOMKiller": _bool,
                       "useHierarchy": _bool, "checkBeforeUpdate": _bool}),
    "cpu": _struct({"shares": U64, "quota": I64, "burst": U64, "period": U64,
                    "realtimeRuntime": I64, "realtimePeriod": U64, "cpus": _str,
                    "mems": _str, "idle": I64}),
    "pids": _struct({"limit": I64}),
    "blockIO": _struct({
        "weight": U16, "leafWeight": U16,
        "weightDevice": _list(_struct({"major": I64, "minor": I64, "weight": U16,
                                       "leafWeight": U16})),
        "throttleReadBpsDevice": _THROTTLE, "throttleWriteBpsDevice": _THROTTLE,
        "throttleReadIOPSDevice": _THROTTLE, "throttleWriteIOPSDevice": _THROTTLE,
    }),
    "hugepageLimits": _list(_struct({"pageSize": _str, "limit": U64})),
    "network": _struct({"classID": U32,
                        "priorities": _list(_struct({"name": _str, "priority": U32}))}),
    "rdma": _map(_struct({"hcaHandles": U32, "hcaObjects": U32})),
    "unified": _map(_str),
})


def check(value: Any) -> None:
    """Raise ResourceError naming the first ``linux.resources`` field whose type
    is wrong; an absent or null resources object is fine."""
    if value is not None:
        RESOURCES(value, "linux.resources")
