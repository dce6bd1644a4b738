"""The Sentry's own memory bounded by the sandbox's limit (issue 16 item 4):
pipe and socket buffers and the file caches share one account
(sentry/kmem.py) whose budget comes from the memory limit; caches yield
first, then a write gets Linux's errno for a failed buffer allocation.

In-process tests drive pipes, sockets and the page cache against a small
budget; the sandbox test fills hundreds of MiB of buffers under a 256 MiB
cgroup. That one is not differential: natively, Linux charges pipe and
socket pages to the memory cgroup and its OOM killer ends the program
(SIGKILL) once the limit is reached, where the sandbox, whose every
process would be killed with it, refuses the allocation instead."""

from __future__ import annotations

import contextlib
import errno
import gc
import os
import shutil
import signal
import struct
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from helpers import Programs, processes_mentioning, run_native, run_sandbox
from test_limits import _remove_test_cgroups, _require_memory_cgroup
from test_oci import (  # noqa: F401 - fixtures, used by name
    cid,
    make_bundle,
    runsc,
    state_root,
)

from sentry import kmem
from sentry.kernel.creds import Credentials
from sentry.kernel.errors import SyscallError
from sentry.kernel.ipc.msg import MsgNamespace
from sentry.kernel.ipc.registry import IPC_NOWAIT
from sentry.net import consts as c
from sentry.net import cork
from sentry.net.inet import TcpEndpoint, UdpEndpoint
from sentry.net.netconfig import NetConfig
from sentry.net.netlink import NetlinkEndpoint
from sentry.net.unix import socketpair
from sentry.oci import cgroups
from sentry.vfs import pipe
from sentry.vfs.file import POLLERR
from sentry.vfs.goferfs import PageCache
from sentry.vfs.mqueue import MessageQueue, MqueueFs
from syscalls import inotify

NONBLOCK = os.O_NONBLOCK

CRED = (1, 0, 0)
K = 1024


@pytest.fixture
def budget() -> Iterator[Callable[[int], None]]:
    """``budget(n)``: room for ``n`` more bytes than the account holds now;
    the real budget comes back afterwards, and every charge made in the
    test must have been given back by then: the account ends no higher than
    it began. It may end lower: the account is the process's, and what an
    earlier test left (a cache in a reference cycle, collected first here;
    a description another thread still held) can give its bytes back midway
    (CI saw 264 bytes go during a test)."""
    gc.collect()
    base = kmem.used
    old = kmem.budget

    def room(n: int) -> None:
        kmem.set_budget(kmem.used + n)

    yield room
    kmem.set_budget(old)
    gc.collect()
    assert kmem.used <= base, "a charge leaked"


def _errno(fn: Callable[[], object]) -> int:
    with pytest.raises(SyscallError) as ei:
        fn()
    return ei.value.errno


def test_budget_follows_the_limit() -> None:
    assert kmem.budget_for(256 << 20) == (256 - 48) // 2 << 20
    # Small limits: a sixteenth (the sandbox's own 32 MiB come first), never
    # less than the floor: a shell's pipes still work.
    assert kmem.budget_for(34 << 20) == (34 << 20) // 16
    assert kmem.budget_for(8 << 20) == kmem.MIN_BUDGET
    assert kmem.budget_for(1 << 62) >= kmem.MIN_BUDGET  # unlimited: a share of the host


def test_pipe_write_past_the_budget_is_enomem(budget: Callable[[int], None]) -> None:
    """pipe_write's failed page allocation: the bytes written so far, or
    ENOMEM; reading gives the pages back, and so does closing."""
    r1, w1 = pipe.make_pipe(NONBLOCK)
    r2, w2 = pipe.make_pipe(NONBLOCK)
    budget(96 * K)
    assert w1.write(b"a" * 65536) == 65536
    assert _errno(lambda: w2.write(b"b" * 65536)) == errno.ENOMEM
    assert w2.write(b"b" * 100) == 100  # one page still fits
    assert _errno(lambda: w2.write(b"b" * 65536)) == errno.ENOMEM
    assert len(r1.read(65536)) == 65536  # pages back to the account
    assert w2.write(b"c" * 65536) == 65536 - 100  # the pipe's room, now charged
    for f in (r1, w1, r2, w2):
        f.release()


def test_closing_a_pipe_drops_its_bytes(budget: Callable[[int], None]) -> None:
    budget(64 * K)
    r, w = pipe.make_pipe(NONBLOCK)
    assert w.write(b"x" * 65536) == 65536
    r.release()
    w.release()
    r, w = pipe.make_pipe(NONBLOCK)
    assert w.write(b"y" * 65536) == 65536  # the first pipe's pages were given back
    r.release()
    w.release()


@pytest.mark.parametrize("stype", [c.SOCK_STREAM, c.SOCK_SEQPACKET, c.SOCK_DGRAM])
def test_unix_send_past_the_budget_is_enobufs(budget: Callable[[int], None],
                                              stype: int) -> None:
    """sock_alloc_send_pskb's failure: ENOBUFS (a stream's bytes sent so far
    before it); a receive makes room again."""
    a, b = socketpair(stype, CRED)
    budget(16 * K)
    assert a.send(b"x" * 8000, 0, True, None, None, None, CRED) == 8000
    assert _errno(lambda: a.send(b"y" * 12000, 0, True, None, None, None, CRED)) \
        == errno.ENOBUFS
    assert b.recv(8000, 0, True).data == b"x" * 8000
    assert a.send(b"y" * 12000, 0, True, None, None, None, CRED) == 12000
    a.release()
    b.release()


def _inet(port: int, family: int = c.AF_INET) -> bytes:
    return family.to_bytes(2, "little") + port.to_bytes(2, "big") + bytes([127, 0, 0, 1]) \
        + bytes(8)


def _tcp_pair() -> tuple[TcpEndpoint, TcpEndpoint, TcpEndpoint]:
    """A loopback listener, and a connection to it: (listener, client, server)."""
    lst = TcpEndpoint(c.AF_INET)
    lst.bind(_inet(0), None)
    lst.listen(1, CRED)
    cli = TcpEndpoint(c.AF_INET)
    cli.connect(lst.name(), None, False, CRED)
    return lst, cli, lst.accept(False)


def test_tcp_send_past_the_budget_waits(budget: Callable[[int], None]) -> None:
    """sk_stream_wait_memory: no memory is a full buffer to TCP (EAGAIN when
    non-blocking); the peer's read lets the send go on."""
    lst, cli, srv = _tcp_pair()
    budget(16 * K)
    assert cli.send(b"x" * 8000, 0, True, None, None, None, CRED) == 8000
    assert _errno(lambda: cli.send(b"y" * 12000, 0, True, None, None, None, CRED)) \
        == errno.EAGAIN
    out: list[int] = []
    th = threading.Thread(target=lambda: out.append(
        cli.send(b"y" * 12000, 0, False, None, None, None, CRED)), daemon=True)
    th.start()
    th.join(0.3)
    assert th.is_alive(), "a send with no memory waits"
    assert srv.recv(8000, 0, True).data == b"x" * 8000
    th.join(10)
    assert out == [12000]
    for ep in (cli, srv, lst):
        ep.release()


def test_udp_datagram_past_the_budget_is_dropped(budget: Callable[[int], None]) -> None:
    """sk_rmem_schedule failing at the receiver: dropped; the sender succeeds."""
    rcv = UdpEndpoint(c.AF_INET)
    rcv.bind(_inet(0), None)
    snd = UdpEndpoint(c.AF_INET)
    budget(8 * K)
    assert snd.send(b"a" * 4000, 0, True, rcv.name(), None, None, CRED) == 4000
    assert snd.send(b"b" * 8000, 0, True, rcv.name(), None, None, CRED) == 8000
    assert rcv.recv(9000, 0, True).data == b"a" * 4000
    assert _errno(lambda: rcv.recv(9000, 0, True)) == errno.EAGAIN  # the second was dropped
    rcv.release()
    snd.release()


def test_caches_shrink_for_buffers(budget: Callable[[int], None],
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A pipe short of room makes the page cache drop its oldest chunks (as
    Linux reclaims page cache before failing a charge); a cache that does
    not fit the account drops its own oldest entries, never a buffer."""
    monkeypatch.setattr(kmem, "_shrinkers", [])  # this cache alone answers
    cache = PageCache(1 << 20)
    budget(160 * K)
    for i in range(4):
        cache.put(i, bytes(32 * K))
    held = cache.used
    assert held == 4 * (32 * K + cache.entry_overhead)
    r, w = pipe.make_pipe(NONBLOCK)
    assert w.write(b"p" * 65536) == 65536  # 32 KiB free: two chunks went
    assert cache.get(0) is None and cache.get(1) is None
    assert cache.get(2) is not None and cache.get(3) is not None
    assert _errno(lambda: w.write(b"q" * 65536)) == errno.EAGAIN  # full, not out of memory
    cache.put(4, bytes(64 * K))  # no room: the cache gives up its own oldest
    assert cache.get(2) is None and cache.get(4) is not None
    assert len(r.read(65536)) == 65536
    r.release()
    w.release()
    cache.clear()


def test_sysv_message_past_the_budget_is_enomem(budget: Callable[[int], None]) -> None:
    """load_msg's failed allocation: msgsnd gets ENOMEM; msgrcv gives room back."""
    ns = MsgNamespace(threading.Lock())
    task = SimpleNamespace(creds=Credentials(), tg=SimpleNamespace(tgid=1),
                           interrupted=lambda: False)
    qid = ns.msgget(task.creds, 0, 0o600)
    budget(12 * K)
    ns.msgsnd(task, qid, 1, b"a" * 8000, IPC_NOWAIT)  # type: ignore[arg-type]
    assert _errno(lambda: ns.msgsnd(task, qid, 2, b"b" * 8000, IPC_NOWAIT)) \
        == errno.ENOMEM  # type: ignore[arg-type]
    assert ns.msgrcv(task, qid, 8192, 0, IPC_NOWAIT) == (1, b"a" * 8000)  # type: ignore[arg-type]
    ns.msgsnd(task, qid, 2, b"b" * 8000, IPC_NOWAIT)  # type: ignore[arg-type]
    with ns.cond:
        ns.remove(ns.queues.lookup(qid))


def test_posix_message_past_the_budget_is_enomem(budget: Callable[[int], None]) -> None:
    """mq_timedsend's failed allocation: ENOMEM; a receive gives room back."""
    q = MessageQueue(MqueueFs(), 0o600, 10, 8192)
    budget(12 * K)
    q.send(b"a" * 8000, 0, True, None, (1, 0))
    with pytest.raises(SyscallError) as ei:
        q.send(b"b" * 8000, 0, True, None, (1, 0))
    assert ei.value.errno == errno.ENOMEM
    assert q.receive(8192, True, None) == (b"a" * 8000, 0)
    q.send(b"b" * 8000, 0, True, None, (1, 0))
    assert q.receive(8192, True, None) == (b"b" * 8000, 0)
    del q, ei  # its last page goes with it (kmem.Buffer's finalizer)
    gc.collect()


def test_inotify_event_past_the_budget_is_an_overflow(budget: Callable[[int], None]) -> None:
    """An inotify event that cannot be allocated is IN_Q_OVERFLOW, as when
    the queue is full; reading makes room for events again."""
    ino = inotify.InotifyFd(NONBLOCK)
    with inotify._COUNT_LOCK:
        inotify._INSTANCES[0] += 1  # as inotify_init counts it; release uncounts
    budget(8 * K)
    for i in range(100):
        ino.queue(1, 0x100, 0, b"%03d" % i + b"n" * 200)  # IN_CREATE with a name
    evs, masks, off = ino.read(1 << 20), [], 0
    while off < len(evs):
        _wd, mask, _cookie, n = inotify.EVENT.unpack_from(evs, off)
        masks.append(mask)
        off += inotify.EVENT.size + n
    assert 8 < masks.count(0x100) < 100, masks  # those that fit, then one overflow
    assert masks[masks.count(0x100):] == [inotify.IN_Q_OVERFLOW]
    ino.queue(1, 0x100, 0, b"again")
    assert inotify.EVENT.unpack_from(ino.read(4096))[1] == 0x100
    ino.release()


def test_netlink_answers_past_the_budget_are_an_overrun(budget: Callable[[int], None]) -> None:
    """The kernel's answers that find no room in the Sentry's account are
    dropped as netlink_overrun drops them when the queue is full: the next
    recv is ENOBUFS, once; what was queued reads, and the socket answers
    again once its queue is empty. Before, the queue grew without bound."""
    ep = NetlinkEndpoint(c.SOCK_RAW, 0, NetConfig(), lambda: (1, False, 0))
    ep.rcvbuf = 1 << 30  # only the account bounds it here
    noop_ack = struct.pack("<IHHII", 16, 1, 1 | 4, 0, 0)  # NLMSG_NOOP, REQUEST|ACK
    budget(8 * K)
    before = kmem.used
    for _ in range(1000):
        assert ep.send(noop_ack, 0, True, None, None, None, CRED) == 16
    assert kmem.used - before <= 8 * K
    assert ep.readiness() & POLLERR
    assert _errno(lambda: ep.recv(4096, 0, True)) == errno.ENOBUFS
    got = 0
    while True:
        try:
            ep.recv(4096, 0, True)
        except SyscallError as e:
            assert e.errno == errno.EAGAIN
            break
        got += 1
    assert 0 < got < 1000
    ep.send(noop_ack, 0, True, None, None, None, CRED)
    assert len(ep.recv(4096, 0, True).data) == 36  # the ack: answering again
    ep.release()


def test_tcp_corked_bytes_are_bounded_and_charged(budget: Callable[[int], None]) -> None:
    """Bytes held by MSG_MORE (or TCP_CORK) for a peer that does not read:
    at most max(SO_SNDBUF, a segment), charged to the Sentry's account, and
    a non-blocking send retried on EAGAIN gets no more held; every byte a
    send reported taken reaches the peer. Before, each retry's bytes were
    held (and reported not sent): the queue grew by 8000 bytes a retry and
    the peer got bytes the sender was told had not gone."""
    lst, cli, srv = _tcp_pair()
    budget(1 << 20)
    taken = 0
    for i in range(400):
        try:
            taken += cli.send(bytes([i % 251]) * 8000, c.MSG_MORE, True, None, None, None, CRED)
        except SyscallError as e:
            assert e.errno == errno.EAGAIN
    held = len(cli.cork_held or b"")
    assert 0 < held <= max(cli.sndbuf, cork.SEGMENT), held
    assert cli.cork_kbuf is not None and cli.cork_kbuf.charged >= held
    assert taken < 400 * 8000
    got = b""
    for _ in range(1000):
        try:
            got += srv.recv(1 << 20, 0, True).data
        except SyscallError as e:
            assert e.errno == errno.EAGAIN
            if len(got) == taken:
                break
            cork.stream_flush(cli, True) if cli.cork_held else None
    assert len(got) == taken
    for ep in (cli, srv, lst):
        ep.release()


def test_udp_corked_datagram_past_the_budget_is_enobufs(budget: Callable[[int], None]) -> None:
    """ip_append_data's failed allocation: ENOBUFS, what was held stays and
    goes as one datagram when the cork comes off; its charge goes with it."""
    rcv = UdpEndpoint(c.AF_INET)
    rcv.bind(_inet(0), None)
    snd = UdpEndpoint(c.AF_INET)
    snd.corked = True
    budget(8 * K)
    assert snd.send(b"a" * 4000, 0, True, rcv.name(), None, None, CRED) == 4000
    assert _errno(lambda: snd.send(b"b" * 8000, 0, True, rcv.name(), None, None, CRED)) \
        == errno.ENOBUFS
    snd.corked = False
    assert snd.send(b"c" * 100, 0, True, None, None, None, CRED) == 100
    assert rcv.recv(9000, 0, True).data == b"a" * 4000 + b"c" * 100
    assert snd.cork_kbuf is not None and snd.cork_kbuf.charged == 0
    rcv.release()
    snd.release()


# -- a sandbox under 256 MiB ---------------------------------------------------

LIMIT = 256 << 20
TARGET_MIB = 640  # well over the limit, in pipes and again in sockets
FILE_MIB = 768  # read through the file caches, twice


def _sparse_file(path: Path) -> int:
    """A FILE_MIB file holding a 4 KiB pattern every MiB (holes between),
    and the checksum kmem_fill.c prints for it."""
    pattern = bytes((i * 7 + 3) & 0xFF for i in range(4096))
    with path.open("wb") as f:
        for mib in range(FILE_MIB):
            f.seek(mib << 20)
            f.write(pattern)
        f.truncate(FILE_MIB << 20)
    block = pattern + bytes((1 << 20) - 4096)
    mask = (1 << 64) - 1
    # sum = sum*31 + byte over the file: fold one MiB block's affine map.
    mul, add = 1, 0
    for byte in block:
        mul, add = (mul * 31) & mask, (add * 31 + byte) & mask
    s = 0
    for _ in range(FILE_MIB):
        s = (s * mul + add) & mask
    return s


def _peak_hwm(name: str, stop: threading.Event, peaks: dict[int, int]) -> None:
    """VmHWM of every host process of the sandbox, until ``stop``."""
    while not stop.wait(0.1):
        for pid, _ in processes_mentioning(name):
            with contextlib.suppress(OSError, ValueError):
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        peaks[pid] = max(peaks.get(pid, 0), int(line.split()[1]) << 10)


def _memory_cgroup(rel: str) -> Path:
    """The sandbox's memory cgroup, made here so that `delete` leaves it
    (it removes only the directories it made) for ``_oom_kills``."""
    h = cgroups._hierarchies()
    d = Path(h.get("memory") or h[""], rel)
    d.mkdir()
    return d


def _oom_kills(d: Path) -> int:
    """The OOM kills the cgroup ``d`` has seen (v1 memory.oom_control, v2
    memory.events)."""
    name = "memory.oom_control" if (d / "memory.oom_control").exists() else "memory.events"
    for line in (d / name).read_text().splitlines():
        if line.startswith("oom_kill "):
            return int(line.split()[1])
    return 0


def _run_watched(root: Path, container: str, b: Path, rel: str
                 ) -> tuple[subprocess.CompletedProcess[str], dict[str, str], dict[int, int]]:
    """_run_in_memcg, with the sandbox's processes' peak RSS sampled meanwhile
    (_peak_hwm): (result, marker lines, peaks)."""
    stop, peaks = threading.Event(), {}
    watcher = threading.Thread(target=_peak_hwm, args=(container, stop, peaks), daemon=True)
    watcher.start()
    try:
        res, lines = _run_in_memcg(root, container, b, rel)
    finally:
        stop.set()
        watcher.join(10)
    return res, lines, peaks


def _run_in_memcg(root: Path, container: str, b: Path,
                  rel: str) -> tuple[subprocess.CompletedProcess[str], dict[str, str]]:
    """Run bundle ``b`` whose config names cgroup ``rel``, leave nothing behind,
    and check that it exited 0 with no OOM kill in that cgroup; its output
    lines ("what: result") as a dict."""
    memcg = _memory_cgroup(rel)
    try:
        res = runsc(root, "run", "--bundle", str(b), container, timeout=240)
        oom = _oom_kills(memcg)
    finally:
        runsc(root, "delete", "--force", container)
        for pid, _ in processes_mentioning(container):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        _remove_test_cgroups(rel)
    assert (res.returncode, oom) == (0, 0), (res, oom)
    return res, dict(line.split(": ", 1) for line in res.stdout.splitlines() if ": " in line)


@pytest.mark.root
@pytest.mark.sandbox
def test_buffers_stay_in_a_256m_sandbox(state_root: Path, cid: str,  # noqa: F811
                                        make_bundle: Callable[..., Path],  # noqa: F811
                                        programs: Programs) -> None:
    """`-m 256m`: a program fills 640 MiB worth of pipes, then of unix
    socketpairs, and reads a 768 MiB file before and while its pipes are
    full. The sandbox is not OOM-killed; each phase ends with the errno
    Linux gives for a failed buffer allocation (ENOMEM for pipes, ENOBUFS
    for unix sockets) below the limit; the file reads right both times (the
    page cache makes way for the pipes, and works while they are full); no
    sandbox process's peak RSS reaches the limit; once everything is closed
    the buffers work again. Before sentry/kmem.py the Sentry grew past the
    limit and the whole sandbox was OOM-killed."""
    _require_memory_cgroup()
    rel = f"pyvisor-test-{cid}"

    def edit(cfg: dict[str, Any]) -> None:
        cfg["linux"]["resources"] = {"memory": {"limit": LIMIT}}
        cfg["linux"]["cgroupsPath"] = f"/{rel}"

    b = make_bundle(["/bin/kmem_fill", str(TARGET_MIB), "/data"], edit=edit,
                    rlimits=[{"type": "RLIMIT_NOFILE", "hard": 65536, "soft": 65536}])
    shutil.copy2(programs.path("kmem_fill"), b / "rootfs/bin/kmem_fill")
    want_sum = _sparse_file(b / "rootfs/data")
    res, lines, peaks = _run_watched(state_root, cid, b, rel)
    file_line = f"{FILE_MIB} MiB sum {want_sum:x}"
    assert lines.get("file") == file_line, res.stdout
    assert lines.get("file with pipes full") == file_line, res.stdout
    for what, err in (("pipes", "ENOMEM"), ("sockets", "ENOBUFS")):
        mib, unit, stop_word, why = lines[what].split()
        assert (unit, stop_word, why) == ("MiB", "stop", err), res.stdout
        assert 32 <= int(mib) < LIMIT >> 20, res.stdout
    assert "again ok" in res.stdout.splitlines(), res.stdout
    assert peaks and max(peaks.values()) < LIMIT, peaks


@pytest.mark.root
@pytest.mark.sandbox
def test_buffer_budget_follows_the_limit_in_a_cgroup_namespace(
        state_root: Path, cid: str, make_bundle: Callable[..., Path],  # noqa: F811
        programs: Programs) -> None:
    """The same `-m 256m` fill of pipes and socketpairs in a container that
    asks for a new cgroup namespace (as Docker does on cgroup v2 hosts).
    Inside the namespace /proc/self/cgroup reads "/", so a limit read there
    is the hierarchy root's (none): the buffer budget became a quarter of the
    machine and the sandbox was OOM-killed. The sandbox host now reads the
    limit before it unshares the namespace."""
    _require_memory_cgroup()
    rel = f"pyvisor-test-{cid}"

    def edit(cfg: dict[str, Any]) -> None:
        cfg["linux"]["resources"] = {"memory": {"limit": LIMIT}}
        cfg["linux"]["cgroupsPath"] = f"/{rel}"
        cfg["linux"]["namespaces"] = [n for n in cfg["linux"]["namespaces"]
                                      if n["type"] != "cgroup"] + [{"type": "cgroup"}]

    b = make_bundle(["/bin/kmem_fill", str(TARGET_MIB)], edit=edit,
                    rlimits=[{"type": "RLIMIT_NOFILE", "hard": 65536, "soft": 65536}])
    shutil.copy2(programs.path("kmem_fill"), b / "rootfs/bin/kmem_fill")
    res, lines = _run_in_memcg(state_root, cid, b, rel)
    for what, err in (("pipes", "ENOMEM"), ("sockets", "ENOBUFS")):
        mib, unit, stop_word, why = lines[what].split()
        assert (unit, stop_word, why) == ("MiB", "stop", err), res.stdout
        assert 32 <= int(mib) < LIMIT >> 20, res.stdout


@pytest.mark.sandbox
def test_netlink_queue_is_bounded_as_natively(programs: Programs) -> None:
    """2,000 acked requests on a route socket with a 4 KiB SO_RCVBUF and no
    read: natively and in the sandbox the queue holds a few answers, the
    rest are dropped, poll says POLLERR and the next recv is ENOBUFS; once
    read empty, the socket answers again. Before, the sandbox queued all
    2,000 answers (no POLLERR, no ENOBUFS)."""
    prog = programs.path("netlink_flood")
    native = run_native([prog])
    assert native.returncode == 0, native.describe()
    assert "first recv: No buffer space available" in native.out, native.describe()
    res = run_sandbox([prog])
    assert (res.returncode, res.out) == (0, native.out), res.describe()


@pytest.mark.sandbox
@pytest.mark.parametrize("how", ["cork", "more"])
def test_corked_bytes_are_bounded_as_natively(programs: Programs, how: str) -> None:
    """A non-blocking TCP socket corked (TCP_CORK, or MSG_MORE on every
    send) whose peer reads nothing, retrying 2,048 times on EAGAIN: the
    sends stop taking bytes well under 64 MiB, as natively, and every byte
    taken arrives in order once the peer reads; UDP_CORK holds one datagram
    at most. Before, each retried send's bytes were held anyway (the peer
    got bytes the sender was told had not gone, and the held bytes grew)."""
    prog = programs.path("cork_flood")
    native = run_native([prog, how])
    assert native.returncode == 0, native.describe()
    res = run_sandbox([prog, how])
    assert (res.returncode, res.out) == (0, native.out), res.describe()


@pytest.mark.sandbox
def test_large_writes_stop_short_as_natively(programs: Programs) -> None:
    """A write of 8 MiB, copied into the Sentry a piece at a time, stops
    where Linux's does: a non-blocking pipe takes 64 KiB, then EAGAIN; no
    reader, EPIPE; an unmapped page 512 KiB in writes the 512 KiB before it
    (EFAULT when it is the first page); a non-blocking socket takes part;
    a reader that leaves mid-write gives a short write, with SIGPIPE from a
    pipe and none from a socket. Before the piecewise copy the hole gave
    EFAULT and nothing written, and a pipe's short write no SIGPIPE."""
    prog = programs.path("big_write_edges")
    native = run_native([prog])
    assert native.returncode == 0, native.describe()
    res = run_sandbox([prog])
    assert (res.returncode, res.out) == (0, native.out), res.describe()


BIG_WRITE_MIB = 1024
BIG_WRITES = ("pipe", "pipev", "socket", "send")


@pytest.mark.root
@pytest.mark.sandbox
def test_one_large_write_stays_in_a_256m_sandbox(
        state_root: Path, cid: str, make_bundle: Callable[..., Path],  # noqa: F811
        programs: Programs) -> None:
    """`-m 256m`: one write(2) (then one writev(2), a write(2) and a send(2)
    to a unix stream socket) of 1 GiB, with a reader on the other end,
    delivers every byte in order, as natively (same counts and checksum);
    the sandbox is not OOM-killed and no process of it peaks at the limit.
    The Sentry copies such a write in a piece at a time
    (syscalls/pieces.py). Before, it copied the whole GiB into its heap
    first (2.1 GiB peak RSS for one such write unlimited) and the sandbox
    was OOM-killed."""
    _require_memory_cgroup()
    prog = programs.path("big_write")
    native = "".join(f"mode: {how}\n" + run_native([prog, str(BIG_WRITE_MIB), how]).out
                     for how in BIG_WRITES)
    assert native.count(f"read: {BIG_WRITE_MIB << 20} sum") == len(BIG_WRITES), native
    rel = f"pyvisor-test-{cid}"

    def edit(cfg: dict[str, Any]) -> None:
        cfg["linux"]["resources"] = {"memory": {"limit": LIMIT}}
        cfg["linux"]["cgroupsPath"] = f"/{rel}"

    script = "; ".join(f"echo mode: {how}; /bin/big_write {BIG_WRITE_MIB} {how}"
                       for how in BIG_WRITES)
    b = make_bundle(["/bin/sh", "-c", script], edit=edit)
    shutil.copy2(prog, b / "rootfs/bin/big_write")
    res, _lines, peaks = _run_watched(state_root, cid, b, rel)
    assert res.stdout == native, res
    assert peaks and max(peaks.values()) < LIMIT // 2, peaks
