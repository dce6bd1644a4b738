"""linux.resources as the cgroup files runc writes: v1 (one hierarchy per
controller) and v2 (the unified one).

Why a module of its own: sentry/oci/cgroups.py places the sandbox in its
cgroups; this is only the translation, field by field, from the OCI spec's
config-linux.md to the kernel's file names (Documentation/admin-guide/cgroup-v1
and cgroup-v2), so each field can be checked without a host cgroup.  Values
are written in the order listed (memory.limit_in_bytes before
memory.memsw.limit_in_bytes, which may not be set below it; devices.deny "a"
before the allow rules).  A field the config does not give is not written.

The pids limit is the one deliberate difference from runc: the host's
pids.max bounds the sandbox's own threads, not the container's tasks (the
Sentry counts those), so it gets :func:`host_pids_max` of the limit.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing unimported at run time: see sentry/oci/shimcalls.py
if TYPE_CHECKING:
    from typing import Any

# See sentry/oci/cgroups.py for why: each container task costs the host up
# to three threads or processes, and the sandbox a fixed number.
HOST_PIDS_PER_TASK = 3
HOST_PIDS_OVERHEAD = 64

Files = dict[str, list[tuple[str, str]]]


def host_pids_max(limit: int) -> int:
    """The host cgroup's pids.max for a container limit of ``limit``."""
    return limit * HOST_PIDS_PER_TASK + HOST_PIDS_OVERHEAD


def _int(value: Any, *, positive: bool = False) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    if positive and value <= 0:
        return None
    return value


def _dev_id(value: Any) -> str:
    n = _int(value)
    return "*" if n is None or n < 0 else str(n)


# The host devices the sandbox's own processes open (the Sentry, the Gofer and
# the sandbox host: /dev/null for detached stdio, /dev/urandom, the console's
# pty), allowed after the config's rules: the application never opens a host
# device (the Sentry's devtmpfs serves its /dev), so the config's rules bound
# nothing of the container's, while a "deny all" would stop the sandbox.
SANDBOX_DEVICES = ("c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm", "c 1:8 rwm", "c 1:9 rwm",
                   "c 5:0 rwm", "c 5:2 rwm", "c 136:* rwm")


def _device_rules(rules: Any) -> list[tuple[str, str]]:
    """devices.allow / devices.deny lines, in the config's order, then
    :data:`SANDBOX_DEVICES` if any rule was given."""
    out: list[tuple[str, str]] = []
    for r in rules if isinstance(rules, list) else []:
        if not isinstance(r, dict):
            continue
        kind = r.get("type") or "a"
        access = r.get("access") or "rwm"
        line = "a" if kind == "a" and r.get("major") is None and r.get("minor") is None else (
            f"{kind} {_dev_id(r.get('major'))}:{_dev_id(r.get('minor'))} {access}")
        out.append(("devices.allow" if r.get("allow") else "devices.deny", line))
    if out:
        out.extend(("devices.allow", line) for line in SANDBOX_DEVICES)
    return out


def _memory(mem: dict[str, Any], v1: list[tuple[str, str]], v2: list[tuple[str, str]]) -> None:
    limit = _int(mem.get("limit"))
    if limit is not None and limit != 0:
        v1.append(("memory.limit_in_bytes", str(limit)))
        v2.append(("memory.max", "max" if limit < 0 else str(limit)))
    reservation = _int(mem.get("reservation"))
    if reservation is not None and reservation != 0:
        v1.append(("memory.soft_limit_in_bytes", str(reservation)))
        v2.append(("memory.low", "max" if reservation < 0 else str(reservation)))
    swap = _int(mem.get("swap"))
    if swap is not None and swap != 0:
        v1.append(("memory.memsw.limit_in_bytes", str(swap)))
        if swap < 0:
            v2.append(("memory.swap.max", "max"))
        elif limit is not None and limit > 0:
            v2.append(("memory.swap.max", str(max(swap - limit, 0))))  # v1's swap is mem+swap
    for key, name in (("kernel", "memory.kmem.limit_in_bytes"),
                      ("kernelTCP", "memory.kmem.tcp.limit_in_bytes")):
        n = _int(mem.get(key))
        if n is not None and n != 0:
            v1.append((name, str(n)))
    swappiness = _int(mem.get("swappiness"))
    if swappiness is not None and 0 <= swappiness <= 100:
        v1.append(("memory.swappiness", str(swappiness)))
    if isinstance(mem.get("disableOOMKiller"), bool) and mem["disableOOMKiller"]:
        v1.append(("memory.oom_control", "1"))


def _cpu(cpu: dict[str, Any], files: Files) -> None:
    c1, s1, v2 = files["cpu"], files["cpuset"], files[""]
    shares = _int(cpu.get("shares"), positive=True)
    if shares is not None:
        c1.append(("cpu.shares", str(shares)))
        v2.append(("cpu.weight", str(1 + ((shares - 2) * 9999) // 262142)))  # runc's map
    period, quota = _int(cpu.get("period"), positive=True), _int(cpu.get("quota"))
    if period is not None:
        c1.append(("cpu.cfs_period_us", str(period)))
    if quota is not None and quota != 0:
        c1.append(("cpu.cfs_quota_us", str(quota)))
        v2.append(("cpu.max", f"{'max' if quota < 0 else quota} {period or 100_000}"))
    for key, name in (("realtimePeriod", "cpu.rt_period_us"),
                      ("realtimeRuntime", "cpu.rt_runtime_us")):
        n = _int(cpu.get(key), positive=True)
        if n is not None:
            c1.append((name, str(n)))
    for key, name in (("cpus", "cpuset.cpus"), ("mems", "cpuset.mems")):
        if isinstance(cpu.get(key), str) and cpu[key]:
            s1.append((name, cpu[key]))
            v2.append((name, cpu[key]))


def _blkio(blk: dict[str, Any], b1: list[tuple[str, str]]) -> None:
    for key, name in (("weight", "blkio.weight"), ("leafWeight", "blkio.leaf_weight")):
        n = _int(blk.get(key), positive=True)
        if n is not None:
            b1.append((name, str(n)))
    for d in blk.get("weightDevice") or []:
        if isinstance(d, dict):
            dev = f"{_dev_id(d.get('major'))}:{_dev_id(d.get('minor'))}"
            for key, name in (("weight", "blkio.weight_device"),
                              ("leafWeight", "blkio.leaf_weight_device")):
                n = _int(d.get(key), positive=True)
                if n is not None:
                    b1.append((name, f"{dev} {n}"))
    for key, name in (("throttleReadBpsDevice", "blkio.throttle.read_bps_device"),
                      ("throttleWriteBpsDevice", "blkio.throttle.write_bps_device"),
                      ("throttleReadIOPSDevice", "blkio.throttle.read_iops_device"),
                      ("throttleWriteIOPSDevice", "blkio.throttle.write_iops_device")):
        for d in blk.get(key) or []:
            if isinstance(d, dict) and _int(d.get("rate")) is not None:
                b1.append((name, f"{_dev_id(d.get('major'))}:{_dev_id(d.get('minor'))} "
                                 f"{d['rate']}"))


def files(resources: dict[str, Any], pids_limit: int | None) -> Files:
    """{controller: [(file, value), ...]} for v1 controllers, and "" for v2."""
    out: Files = {k: [] for k in ("memory", "cpu", "cpuset", "pids", "blkio",
                                        "devices", "hugetlb", "net_cls", "net_prio", "")}
    v2 = out[""]
    mem = resources.get("memory")
    if isinstance(mem, dict):
        _memory(mem, out["memory"], v2)
    cpu = resources.get("cpu")
    if isinstance(cpu, dict):
        _cpu(cpu, out)
    if pids_limit is not None:
        out["pids"].append(("pids.max", str(host_pids_max(pids_limit))))
        v2.append(("pids.max", str(host_pids_max(pids_limit))))
    blk = resources.get("blockIO")
    if isinstance(blk, dict):
        _blkio(blk, out["blkio"])
    out["devices"].extend(_device_rules(resources.get("devices")))
    for h in resources.get("hugepageLimits") or []:
        if isinstance(h, dict) and isinstance(h.get("pageSize"), str) \
                and _int(h.get("limit")) is not None:
            out["hugetlb"].append((f"hugetlb.{h['pageSize']}.limit_in_bytes",
                                       str(h["limit"])))
    net = resources.get("network")
    if isinstance(net, dict):
        if _int(net.get("classID")) is not None:
            out["net_cls"].append(("net_cls.classid", str(net["classID"])))
        for p in net.get("priorities") or []:
            if isinstance(p, dict) and isinstance(p.get("name"), str):
                out["net_prio"].append(("net_prio.ifpriomap",
                                            f"{p['name']} {_int(p.get('priority')) or 0}"))
    return {k: v for k, v in out.items() if v}
