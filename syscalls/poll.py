"""Waiting for file readiness: poll, ppoll, select, pselect6, epoll, and eventfd.

Readiness is asked of each file description (``FileDescription.poll(events,
0)``); a wait sleeps in short slices between checks, woken early by signals
and by sentry.vfs.file.READINESS (sockets and pipes report changes there).
epoll is level-triggered, and edge-triggered (EPOLLET) for files that count
their readiness changes (``FileDescription.poll_generation``: pipes, eventfds);
other files report EPOLLET level-triggered.
"""

from __future__ import annotations

import errno
import os
import stat as _stat
import struct
import threading
import time as _time
import weakref
from typing import TYPE_CHECKING

from sentry.kernel.errors import SyscallError
from sentry.kernel.task_exits import ERESTARTNOHAND, RESTART_CODES
from sentry.vfs.description import InodeFile, PathDescription
from sentry.vfs.file import (
    O_CLOEXEC,
    O_NONBLOCK,
    O_RDWR,
    POLLERR,
    POLLHUP,
    POLLIN,
    POLLNVAL,
    POLLOUT,
    READINESS,
    FileDescription,
    Stat,
    check_interrupt,
)
from syscalls.abi import POLLFD, TIMESPEC, TIMEVAL, U64S, s32
from syscalls.table import Entry, partial, supported

if TYPE_CHECKING:
    from sentry.kernel.task import Task

Args = tuple[int, ...]

POLL_SLICE = 0.005
FD_SETSIZE = 1024
POLLRDNORM = 0x40
POLLWRNORM = 0x100
POLLRDHUP = 0x2000


def wait_ready(t: Task, check: object, deadline: float | None) -> object:
    """Call ``check()`` until it returns something true or the deadline passes;
    a pending signal ends the wait with ERESTARTNOHAND (EINTR for the caller)."""
    slice_s = POLL_SLICE
    while True:
        gen = READINESS.gen
        try:
            got = check()  # type: ignore[operator]
        except SyscallError as exc:
            if exc.errno in RESTART_CODES:  # a file's own wait met a signal
                raise SyscallError(ERESTARTNOHAND) from None
            raise
        if got:
            return got
        now = _time.monotonic()
        if deadline is not None and now >= deadline:
            return got
        # One slice, ended early by a signal (Task.wake) or a readiness change.
        wake = t._wake
        READINESS.sleeping(wake)
        try:
            wake.clear()
            t.check_interrupt()
            if READINESS.gen == gen:
                wake.wait(slice_s if deadline is None else min(deadline - now, slice_s))
        except SyscallError:
            raise SyscallError(ERESTARTNOHAND) from None
        finally:
            READINESS.awake(wake)
        slice_s = min(slice_s * 2, 0.05)


def _poll_one(t: Task, fd: int, events: int) -> int:
    try:
        f = t.fds.get(fd)
    except SyscallError:
        return POLLNVAL
    got = f.poll(events | POLLERR | POLLHUP, 0)
    if got & POLLIN:
        got |= POLLRDNORM & events
    if got & POLLOUT:
        got |= POLLWRNORM & events
    return got & (events | POLLERR | POLLHUP | POLLNVAL)


def _do_poll(t: Task, addr: int, nfds: int, deadline: float | None) -> int:
    if nfds > t.fds.limit:
        raise SyscallError(errno.EINVAL)
    raw = bytearray(t.mm.copy_in(addr, POLLFD.size * nfds)) if nfds else bytearray()
    entries = [POLLFD.unpack_from(raw, i * POLLFD.size) for i in range(nfds)]
    results: list[int] = [0] * nfds

    def check() -> int:
        ready = 0
        for i, (fd, events, _) in enumerate(entries):
            results[i] = 0 if fd < 0 else _poll_one(t, fd, events & 0xFFFF)
            if results[i]:
                ready += 1
        return ready

    ready = wait_ready(t, check, deadline)
    for i, (fd, events, _) in enumerate(entries):
        POLLFD.pack_into(raw, i * POLLFD.size, fd, events, results[i])
    if nfds:
        t.mm.copy_out(addr, bytes(raw))
    return int(ready)  # type: ignore[call-overload]


def poll(t: Task, a: Args) -> int:
    """poll(2)."""
    ms = s32(a[2])
    return _do_poll(t, a[0], a[1], None if ms < 0 else _time.monotonic() + ms / 1000)


def with_sigmask(t: Task, sigmask_addr: int, size: int, fn: object) -> int:
    """ppoll/pselect: run ``fn`` with a temporary signal mask (restored after the
    call, or after the handler when a signal interrupts it)."""
    if not sigmask_addr:
        return fn()  # type: ignore[operator]
    if size != 8:
        raise SyscallError(errno.EINVAL)
    (mask,) = U64S.unpack(t.mm.copy_in(sigmask_addr, 8))
    old = t.sigmask
    t.sigmask = mask & ~((1 << 8) | (1 << 18))
    try:
        ret = fn()  # type: ignore[operator]
    except SyscallError as exc:
        if exc.errno in RESTART_CODES:
            # A signal ended the wait: EINTR after its handler, which runs
            # with the temporary mask (restored by sigreturn).  Any restart
            # code counts: restored at once, the mask could block the very
            # signal, which then never runs while the call restarts forever.
            t.saved_sigmask = old
            raise SyscallError(ERESTARTNOHAND) from None
        t.sigmask = old
        raise
    t.sigmask = old
    return ret


def _timespec_deadline(t: Task, addr: int) -> float | None:
    if not addr:
        return None
    sec, nsec = TIMESPEC.unpack(t.mm.copy_in(addr, TIMESPEC.size))
    if sec < 0 or not 0 <= nsec < 1_000_000_000:
        raise SyscallError(errno.EINVAL)
    return _time.monotonic() + sec + nsec / 1e9


def ppoll(t: Task, a: Args) -> int:
    """ppoll(2)."""
    deadline = _timespec_deadline(t, a[2])
    return with_sigmask(t, a[3], a[4], lambda: _do_poll(t, a[0], a[1], deadline))


def _read_fdset(t: Task, addr: int, nfds: int) -> int:
    if not addr:
        return 0
    n = (nfds + 63) // 64 * 8
    return int.from_bytes(t.mm.copy_in(addr, n), "little") & ((1 << nfds) - 1)


def _write_fdset(t: Task, addr: int, nfds: int, bits: int) -> None:
    if addr:
        n = (nfds + 63) // 64 * 8
        t.mm.copy_out(addr, bits.to_bytes(n, "little"))


def _do_select(t: Task, nfds: int, raddr: int, waddr: int, eaddr: int,
               deadline: float | None) -> int:
    if s32(nfds) < 0:
        raise SyscallError(errno.EINVAL)
    nfds = min(nfds, FD_SETSIZE * 64)
    rset, wset, eset = (_read_fdset(t, x, nfds) for x in (raddr, waddr, eaddr))
    for fd in range(nfds):
        if (rset | wset | eset) >> fd & 1:
            t.fds.get(fd)  # EBADF for a closed descriptor, as Linux checks first
    out = [0, 0, 0]

    def check() -> int:
        r = w = e = 0
        for fd in range(nfds):
            bitv = 1 << fd
            if not (rset | wset | eset) & bitv:
                continue
            got = _poll_one(t, fd, POLLIN | POLLOUT | 0x2)
            if rset & bitv and got & (POLLIN | POLLHUP | POLLERR):
                r |= bitv
            if wset & bitv and got & (POLLOUT | POLLERR):
                w |= bitv
            if eset & bitv and got & 0x2:
                e |= bitv
        out[:] = [r, w, e]
        return bin(r).count("1") + bin(w).count("1") + bin(e).count("1")

    ready = wait_ready(t, check, deadline)
    for addr, bits in zip((raddr, waddr, eaddr), out, strict=True):
        _write_fdset(t, addr, nfds, bits)
    return int(ready)  # type: ignore[call-overload]


def select(t: Task, a: Args) -> int:
    """select(2): the timeout is updated with the time left, as Linux does."""
    deadline = None
    if a[4]:
        sec, usec = TIMEVAL.unpack(t.mm.copy_in(a[4], TIMEVAL.size))
        if sec < 0 or not 0 <= usec < 1_000_000:
            raise SyscallError(errno.EINVAL)
        deadline = _time.monotonic() + sec + usec / 1e6
    n = _do_select(t, a[0], a[1], a[2], a[3], deadline)
    if a[4] and deadline is not None:
        left = max(0.0, deadline - _time.monotonic())
        t.mm.copy_out(a[4], TIMEVAL.pack(int(left), int((left % 1) * 1e6)))
    return n


def pselect6(t: Task, a: Args) -> int:
    """pselect6(2): the sixth argument points at {sigset pointer, size}."""
    deadline = _timespec_deadline(t, a[4])
    mask_addr = size = 0
    if a[5]:
        mask_addr, size = struct.unpack("<QQ", t.mm.copy_in(a[5], 16))
    return with_sigmask(t, mask_addr, size,
                         lambda: _do_select(t, a[0], a[1], a[2], a[3], deadline))


# --- epoll ----------------------------------------------------------------

EPOLL_CTL_ADD, EPOLL_CTL_DEL, EPOLL_CTL_MOD = 1, 2, 3
EPOLLONESHOT = 1 << 30
EPOLLET = 1 << 31
EPOLLEXCLUSIVE = 1 << 28
EPOLL_EVENT = struct.Struct("<IQ")  # packed on x86-64: 12 bytes


# EPOLLEXCLUSIVE: which edge (poll_generation) of a file some exclusive
# waiter already took. Linux wakes one exclusive waiter per wake-up of the
# file's queue; here the first epoll to see an edge claims it and the others
# let it pass. Weak keys: a closed file's entry goes with it.
_CLAIMED: weakref.WeakKeyDictionary[FileDescription, int] = weakref.WeakKeyDictionary()
_CLAIM_LOCK = threading.Lock()


def _claim_edge(desc: FileDescription, gen: int) -> bool:
    """True if this caller is the one exclusive waiter for edge ``gen``."""
    with _CLAIM_LOCK:
        if _CLAIMED.get(desc) == gen:
            return False
        _CLAIMED[desc] = gen
        return True


class EpollFile(FileDescription):
    """An epoll instance: the interest list, checked on each wait.

    Edge-triggered entries (EPOLLET) report a ready file once per change of
    its ``poll_generation``, as Linux reports one edge per wake-up of the
    file's wait queue: the generation is read before the readiness, so a change
    racing with the check shows as one more (harmless) report, never a lost
    one.  Why it matters: Go's netpoller registers every pipe EPOLLET, and a
    pipe's write end with room stays ready; reported level-triggered, it ended
    every epoll_wait at once and the netpoller spun.
    """

    def __init__(self, flags: int) -> None:
        super().__init__(O_RDWR | (flags & O_NONBLOCK))
        self.interest: dict[int, tuple[FileDescription, int, int]] = {}
        self.reported: dict[int, int] = {}  # EPOLLET fd -> generation last reported
        self.lock = threading.Lock()

    def ready(self, t: Task, maxevents: int, woken: bool = False) -> list[tuple[int, int]]:
        """The events to report now. ``woken``: this check follows a sleep in
        epoll_wait, so an EPOLLEXCLUSIVE edge is this waiter's only if no
        other woken waiter took it (one wake-up per edge, as Linux); a caller
        that was not asleep sees the edge like any other, as Linux puts it on
        the ready list of every instance that has no sleeper."""
        # Every file is looked at first and the edges are taken after, all
        # together: if a look raises, no edge is lost (the Go hang: an edge
        # taken, then the next file's look met a signal).
        taken: list[tuple[int, FileDescription, int, int, int | None, int]] = []
        passed: list[tuple[int, FileDescription, int]] = []  # another waiter's edge
        with self.lock:
            items = list(self.interest.items())
        for fd, (desc, events, data) in items:
            if len(taken) >= maxevents:
                break
            if events & ~(EPOLLONESHOT | EPOLLET | EPOLLEXCLUSIVE) == 0:
                continue  # a disarmed one-shot
            gen = desc.poll_generation() if events & EPOLLET else None
            if gen is not None and self.reported.get(fd) == gen:
                continue  # no edge since the last report
            got = desc.poll((events & 0xFFFF) | POLLERR | POLLHUP, 0)
            got &= (events & 0xFFFF) | POLLERR | POLLHUP
            if got and woken and gen is not None and events & EPOLLEXCLUSIVE \
                    and not _claim_edge(desc, gen):
                passed.append((fd, desc, gen))
                continue
            if got:
                taken.append((fd, desc, events, data, gen, got))
        out: list[tuple[int, int]] = []
        with self.lock:
            for fd, desc, gen in passed:
                if self.interest.get(fd, (None,))[0] is desc:
                    self.reported[fd] = gen
            for fd, desc, events, data, gen, got in taken:
                if self.interest.get(fd, (None,))[0] is not desc:
                    continue  # removed or replaced meanwhile
                out.append((got, data))
                if gen is not None:
                    self.reported[fd] = gen
                if events & EPOLLONESHOT:
                    self.interest[fd] = (desc, events & (EPOLLONESHOT | EPOLLET), data)
                # To the back of the line, as Linux puts a reported file at
                # the tail of its ready list: with more ready files than
                # maxevents, each is reported in turn, none starved.
                self.interest[fd] = self.interest.pop(fd)
        return out

    def poll(self, events: int, timeout_s: float | None) -> int:
        with self.lock:
            items = list(self.interest.values())
        for desc, ev, _ in items:
            if desc.poll((ev & 0xFFFF) | POLLERR | POLLHUP, 0):
                return events & POLLIN
        return 0

    def stat(self) -> Stat:
        return Stat(mode=0o600)


def epoll_create1(t: Task, a: Args) -> int:
    """epoll_create1(2)."""
    flags = a[0] & 0xFFFFFFFF
    if flags & ~O_CLOEXEC:
        raise SyscallError(errno.EINVAL)
    return t.fds.install(EpollFile(0), cloexec=bool(flags & O_CLOEXEC))


def epoll_create(t: Task, a: Args) -> int:
    """epoll_create(2): size must be positive and is otherwise ignored."""
    if s32(a[0]) <= 0:
        raise SyscallError(errno.EINVAL)
    return t.fds.install(EpollFile(0))


# The character devices Linux gives no poll method: null, zero, full
# (drivers/char/mem.c) and, since Linux 5.18, urandom; random keeps one.
_UNPOLLABLE_DEVICES = frozenset(os.makedev(1, minor) for minor in (3, 5, 7, 9))


def _check_epollable(target: FileDescription) -> None:
    """Linux's ``file_can_poll`` test in epoll_ctl: EPERM for a file with no
    poll method (regular files, directories, /dev/null, /dev/zero, /dev/full),
    EBADF for an O_PATH descriptor.  Why it matters: a program asks epoll
    whether a file can wait at all (Go's runtime adds every file it opens and
    treats EPERM as "not pollable"); accepted, a regular file sits in the
    interest list forever ready, and every epoll_wait returns at once.
    Checked before anything else about the call, as Linux does."""
    if isinstance(target, PathDescription):
        raise SyscallError(errno.EBADF)
    if isinstance(target, InodeFile) and not getattr(target, "can_poll", False):
        mode = target.inode.mode
        if (_stat.S_ISREG(mode) or _stat.S_ISDIR(mode)
                or (_stat.S_ISCHR(mode) and target.inode.rdev in _UNPOLLABLE_DEVICES)):
            raise SyscallError(errno.EPERM)


EP_MAX_NESTS = 4  # epoll instances nested inside one another, at most, below a top one


def _epolls_in(ep: EpollFile) -> list[EpollFile]:
    with ep.lock:
        return [d for d, _, _ in ep.interest.values() if isinstance(d, EpollFile)]


def _check_nesting(ep: EpollFile, target: EpollFile) -> None:
    """Adding epoll ``target`` to ``ep``: ELOOP when ``ep`` is reachable from
    ``target`` (a cycle) or when the chain below would get deeper than
    Linux's EP_MAX_NESTS (ep_loop_check)."""
    def depth(e: EpollFile, seen: set[int]) -> int:
        if e is ep:
            raise SyscallError(errno.ELOOP)
        if id(e) in seen:
            return 0
        seen.add(id(e))
        return 1 + max((depth(c, seen) for c in _epolls_in(e)), default=0)

    if depth(target, set()) > EP_MAX_NESTS:
        raise SyscallError(errno.ELOOP)


def epoll_ctl(t: Task, a: Args) -> int:
    """epoll_ctl(2)."""
    epfd, op, fd = s32(a[0]), s32(a[1]), s32(a[2])
    ep = t.fds.get(epfd)
    target = t.fds.get(fd)
    _check_epollable(target)
    if not isinstance(ep, EpollFile) or ep is target:
        raise SyscallError(errno.EINVAL)
    events = data = 0
    if op != EPOLL_CTL_DEL:
        events, data = EPOLL_EVENT.unpack(t.mm.copy_in(a[3], EPOLL_EVENT.size))
    if op == EPOLL_CTL_ADD and isinstance(target, EpollFile):
        _check_nesting(ep, target)
    with ep.lock:
        if op == EPOLL_CTL_ADD:
            if fd in ep.interest:
                raise SyscallError(errno.EEXIST)
            ep.interest[fd] = (target, events | POLLERR | POLLHUP, data)
        elif op == EPOLL_CTL_MOD:
            if fd not in ep.interest:
                raise SyscallError(errno.ENOENT)
            ep.interest[fd] = (target, events | POLLERR | POLLHUP, data)
        elif op == EPOLL_CTL_DEL:
            if ep.interest.pop(fd, None) is None:
                raise SyscallError(errno.ENOENT)
        else:
            raise SyscallError(errno.EINVAL)
        ep.reported.pop(fd, None)  # ADD and MOD report a ready file at once, as Linux
    return 0


def _epoll_wait(t: Task, epfd: int, addr: int, maxevents: int, deadline: float | None) -> int:
    ep = t.fds.get(epfd)
    if not isinstance(ep, EpollFile) or not 0 < maxevents <= (1 << 31) // EPOLL_EVENT.size:
        raise SyscallError(errno.EINVAL)
    checks = [0]

    def check() -> list[tuple[int, int]]:
        checks[0] += 1  # every check after the first follows a sleep
        return ep.ready(t, maxevents, checks[0] > 1)

    got = wait_ready(t, check, deadline) or []
    if got:
        t.mm.copy_out(addr, b"".join(EPOLL_EVENT.pack(ev, data) for ev, data in got))
    return len(got)


def epoll_wait(t: Task, a: Args) -> int:
    """epoll_wait(2)."""
    ms = s32(a[3])
    return _epoll_wait(t, s32(a[0]), a[1], s32(a[2]),
                       None if ms < 0 else _time.monotonic() + ms / 1000)


def epoll_pwait(t: Task, a: Args) -> int:
    """epoll_pwait(2)."""
    ms = s32(a[3])
    deadline = None if ms < 0 else _time.monotonic() + ms / 1000
    return with_sigmask(t, a[4], a[5],
                         lambda: _epoll_wait(t, s32(a[0]), a[1], s32(a[2]), deadline))


def epoll_pwait2(t: Task, a: Args) -> int:
    """epoll_pwait2(2): epoll_pwait with a timespec timeout (NULL: wait
    forever), checked before anything else as Linux does."""
    deadline = _timespec_deadline(t, a[3])
    return with_sigmask(t, a[4], a[5],
                         lambda: _epoll_wait(t, s32(a[0]), a[1], s32(a[2]), deadline))


# --- eventfd ----------------------------------------------------------------

EFD_SEMAPHORE = 1
MAX_COUNT = (1 << 64) - 2


class EventFd(FileDescription):
    """eventfd(2): a 64-bit counter."""

    def __init__(self, initval: int, flags: int) -> None:
        super().__init__(O_RDWR | (flags & O_NONBLOCK))
        self.count = initval
        self.semaphore = bool(flags & EFD_SEMAPHORE)
        self.cond = threading.Condition()
        self.changes = 0  # moves on every read and write: epoll's edges

    def read(self, count: int) -> bytes:
        if count < 8:
            raise SyscallError(errno.EINVAL)
        with self.cond:
            while self.count == 0:
                if self.flags & O_NONBLOCK:
                    raise SyscallError(errno.EAGAIN)
                check_interrupt()
                self.cond.wait(0.05)
            value = 1 if self.semaphore else self.count
            self.count -= value
            self.changes += 1
            self.cond.notify_all()
        return U64S.pack(value)

    def write(self, data: bytes) -> int:
        if len(data) < 8:
            raise SyscallError(errno.EINVAL)
        (value,) = U64S.unpack(data[:8])
        if value == (1 << 64) - 1:
            raise SyscallError(errno.EINVAL)
        with self.cond:
            while self.count + value > MAX_COUNT:
                if self.flags & O_NONBLOCK:
                    raise SyscallError(errno.EAGAIN)
                check_interrupt()
                self.cond.wait(0.05)
            self.count += value
            self.changes += 1
            self.cond.notify_all()
        return 8

    def poll(self, events: int, timeout_s: float | None) -> int:
        got = (POLLIN if self.count > 0 else 0) | (POLLOUT if self.count < MAX_COUNT else 0)
        return got & events

    def poll_generation(self) -> int:
        return self.changes

    def stat(self) -> Stat:
        return Stat(mode=0o600)


def eventfd2(t: Task, a: Args) -> int:
    """eventfd2(2)."""
    flags = a[1] & 0xFFFFFFFF
    if flags & ~(O_CLOEXEC | O_NONBLOCK | EFD_SEMAPHORE):
        raise SyscallError(errno.EINVAL)
    return t.fds.install(EventFd(a[0] & 0xFFFFFFFF, flags), cloexec=bool(flags & O_CLOEXEC))


def eventfd(t: Task, a: Args) -> int:
    """eventfd(2)."""
    return eventfd2(t, (a[0], 0, 0, 0, 0, 0))


ENTRIES: list[Entry] = [
    supported("poll", poll),
    supported("ppoll", ppoll),
    supported("select", select),
    supported("pselect6", pselect6),
    supported("epoll_create", epoll_create),
    supported("epoll_create1", epoll_create1),
    supported("epoll_ctl", epoll_ctl),
    partial("epoll_wait", epoll_wait, note="EPOLLET and EPOLLEXCLUSIVE on pipes and eventfds; "
            "LT for others"),
    partial("epoll_pwait", epoll_pwait, note="EPOLLET and EPOLLEXCLUSIVE on pipes and eventfds; "
            "LT for others"),
    partial("epoll_pwait2", epoll_pwait2, note="as epoll_pwait"),
    supported("eventfd", eventfd),
    supported("eventfd2", eventfd2),
]
