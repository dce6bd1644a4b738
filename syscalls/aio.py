"""Linux native AIO: io_setup, io_submit, io_getevents, io_pgetevents,
io_cancel, io_destroy (what libaio wraps: fio, MariaDB's InnoDB, QEMU).

How it is served: each request runs when it is submitted, through the same
handlers as pread/pwrite/preadv/pwritev/fsync/fdatasync (so RLIMIT_FSIZE,
permissions and errnos are theirs), and its completion is queued on the
context; io_getevents hands completions out, waiting (interruptibly, with
the timeout) for as many as asked while other threads still submit. Linux
runs buffered-file AIO at submit time too, so programs see the same order.
IOCB_CMD_POLL is not served (EINVAL at submit), so nothing can stay in
flight, and io_cancel always finds the request done (EINVAL) or unknown.

The context id is the address of a read-only page mapped for it, as Linux's
ring: the header says nr and id but carries no AIO_RING_MAGIC, so libaio
always asks the kernel instead of reading completions from the page. A fork
child does not inherit contexts (their page is not copied: Linux's
VM_DONTCOPY), and execve drops them with the old address space.
"""

from __future__ import annotations

import errno
import struct
import threading
import time
import weakref
from collections import deque
from typing import TYPE_CHECKING, Any

from sentry.kernel.errors import SyscallError
from sentry.mm.vma import MADV_DONTFORK
from sentry.vfs.file import READINESS
from syscalls import fs, path_attrs
from syscalls.abi import read_iovecs, s32
from syscalls.poll import wait_ready, with_sigmask
from syscalls.table import Entry, partial

if TYPE_CHECKING:
    from sentry.kernel.task import Task

Args = tuple[int, ...]

IOCB = struct.Struct("<QIIHhIQQqQII")
TIMESPEC = struct.Struct("<qq")
IO_EVENT = struct.Struct("<QQqq")  # data, obj, res, res2
RING_HEADER = struct.Struct("<8I")  # id, nr, head, tail, magic, compat, incompat, header_len
IOCB_CMD_PREAD, IOCB_CMD_PWRITE, IOCB_CMD_FSYNC, IOCB_CMD_FDSYNC = 0, 1, 2, 3
IOCB_CMD_POLL, IOCB_CMD_NOOP, IOCB_CMD_PREADV, IOCB_CMD_PWRITEV = 5, 6, 7, 8
IOCB_FLAG_RESFD = 1
IOCB_FLAG_IOPRIO = 2
RWF_SUPPORTED = 0x1F  # HIPRI, DSYNC, SYNC, NOWAIT, APPEND
AIO_MAX_NR = 65536  # /proc/sys/fs/aio-max-nr
PAGE = 4096
PROT_READ = 1
MAP_PRIVATE, MAP_ANONYMOUS = 0x02, 0x20

_AIO_NR = [0]  # events reserved by every live context (aio-nr)
_AIO_LOCK = threading.Lock()


class AioContext:
    """One io_setup context: its completions waiting for io_getevents."""

    def __init__(self, ctx_id: int, nr: int, length: int) -> None:
        self.id = ctx_id
        self.nr = nr
        self.length = length
        self.done: deque[bytes] = deque()
        self.lock = threading.Lock()

    def complete(self, data: int, obj: int, res: int) -> None:
        with self.lock:
            self.done.append(IO_EVENT.pack(data, obj, res, 0))
        READINESS.changed()

    def take(self, n: int) -> list[bytes]:
        with self.lock:
            return [self.done.popleft() for _ in range(min(n, len(self.done)))]


_CONTEXTS: weakref.WeakKeyDictionary[Any, dict[int, AioContext]] = weakref.WeakKeyDictionary()


def _contexts(t: Task) -> dict[int, AioContext]:
    return _CONTEXTS.setdefault(t.mm, {})


def _context(t: Task, ctx_id: int) -> AioContext:
    ctx = _contexts(t).get(ctx_id)
    if ctx is None:
        raise SyscallError(errno.EINVAL)
    return ctx


def io_setup(t: Task, a: Args) -> int:
    """io_setup(2): a context for ``nr_events`` requests; its id goes to *ctxp,
    which must hold 0."""
    nr, ctxp = s32(a[0]), a[1]
    current = int.from_bytes(t.mm.copy_in(ctxp, 8), "little")
    if current or nr <= 0:
        raise SyscallError(errno.EINVAL)
    with _AIO_LOCK:
        if nr > AIO_MAX_NR or _AIO_NR[0] + nr > AIO_MAX_NR:
            raise SyscallError(errno.EAGAIN)
        _AIO_NR[0] += nr
    length = -(-(RING_HEADER.size + nr * IO_EVENT.size) // PAGE) * PAGE
    try:
        addr = t.mm.mmap(0, length, PROT_READ | 2, MAP_PRIVATE | MAP_ANONYMOUS, name="[aio]")
        t.mm.copy_out(addr, RING_HEADER.pack(addr & 0xFFFFFFFF, nr, 0, 0, 0, 1, 0,
                                             RING_HEADER.size))
        t.mm.mprotect(addr, length, PROT_READ)
        t.mm.madvise(addr, length, MADV_DONTFORK)
        t.mm.copy_out(ctxp, addr.to_bytes(8, "little"))
    except SyscallError:
        with _AIO_LOCK:
            _AIO_NR[0] -= nr
        raise
    _contexts(t)[addr] = AioContext(addr, nr, length)
    return 0


def io_destroy(t: Task, a: Args) -> int:
    """io_destroy(2): the context goes, with its page and pending completions."""
    ctx = _contexts(t).pop(a[0], None)
    if ctx is None:
        raise SyscallError(errno.EINVAL)
    with _AIO_LOCK:
        _AIO_NR[0] -= ctx.nr
    t.mm.munmap(ctx.id, ctx.length)
    return 0


def _run(t: Task, op: int, fd: int, buf: int, nbytes: int, offset: int) -> int:
    """One request through the synchronous handlers: its result or -errno."""
    pos = offset & ((1 << 64) - 1)
    try:
        if op == IOCB_CMD_PREAD:
            return fs.pread64(t, (fd, buf, nbytes, pos, 0, 0))
        if op == IOCB_CMD_PWRITE:
            return fs.pwrite64(t, (fd, buf, nbytes, pos, 0, 0))
        if op == IOCB_CMD_PREADV:
            return fs.preadv(t, (fd, buf, nbytes, pos, 0, 0))
        if op == IOCB_CMD_PWRITEV:
            return fs.pwritev(t, (fd, buf, nbytes, pos, 0, 0))
        return path_attrs.fsync(t, (fd, 0, 0, 0, 0, 0))  # fdatasync is the same here
    except SyscallError as exc:
        return -exc.errno


def _submit_one(t: Task, ctx: AioContext, obj: int) -> None:
    (data, _key, rw_flags, op, _prio, fd, buf, nbytes, offset, reserved2, flags,
     resfd) = IOCB.unpack(t.mm.copy_in(obj, IOCB.size))
    if reserved2 or flags & ~(IOCB_FLAG_RESFD | IOCB_FLAG_IOPRIO):
        raise SyscallError(errno.EINVAL)
    f = t.fds.get(s32(fd))  # EBADF
    eventfd = None
    if flags & IOCB_FLAG_RESFD:
        eventfd = t.fds.get(s32(resfd))
        if not hasattr(eventfd, "semaphore"):  # only an eventfd can be signalled
            raise SyscallError(errno.EINVAL)
    if op not in (IOCB_CMD_PREAD, IOCB_CMD_PWRITE, IOCB_CMD_PREADV, IOCB_CMD_PWRITEV,
                  IOCB_CMD_FSYNC, IOCB_CMD_FDSYNC):
        raise SyscallError(errno.EINVAL)
    if rw_flags & ~RWF_SUPPORTED:
        raise SyscallError(errno.EOPNOTSUPP)
    if op in (IOCB_CMD_PREAD, IOCB_CMD_PREADV) and not f.readable():
        raise SyscallError(errno.EBADF)
    if op in (IOCB_CMD_PWRITE, IOCB_CMD_PWRITEV) and not f.writable():
        raise SyscallError(errno.EBADF)
    if op in (IOCB_CMD_FSYNC, IOCB_CMD_FDSYNC):
        if buf or nbytes or offset or rw_flags:
            raise SyscallError(errno.EINVAL)
    else:  # aio_setup_rw and rw_verify_area fail the submit, not the request
        if op in (IOCB_CMD_PREADV, IOCB_CMD_PWRITEV):
            read_iovecs(t, buf, nbytes)
        if offset < 0:
            raise SyscallError(errno.EINVAL)
    res = _run(t, op, s32(fd), buf, nbytes, offset)
    ctx.complete(data, obj, res)
    if eventfd is not None:
        eventfd.write((1).to_bytes(8, "little"))


def io_submit(t: Task, a: Args) -> int:
    """io_submit(2): how many requests were taken; an error only if the
    first one could not be."""
    ctx = _context(t, a[0])
    nr = a[1]
    if nr >= 1 << 63:  # a negative long
        raise SyscallError(errno.EINVAL)
    nr = min(nr, ctx.nr)
    done = 0
    for i in range(nr):
        try:
            obj = int.from_bytes(t.mm.copy_in(a[2] + 8 * i, 8), "little")
            _submit_one(t, ctx, obj)
        except SyscallError:
            if done == 0:
                raise
            break
        done += 1
    return done


def _getevents(t: Task, ctx_id: int, min_nr: int, nr: int, addr: int,
               deadline: float | None) -> int:
    ctx = _context(t, ctx_id)
    if min_nr < 0 or nr < 0 or min_nr > nr:
        raise SyscallError(errno.EINVAL)
    got: list[bytes] = []

    def enough() -> bool:
        got.extend(ctx.take(nr - len(got)))
        return len(got) >= max(min_nr, 1) or (deadline is not None and not min_nr)

    if nr and not enough():
        try:
            wait_ready(t, enough, deadline)
        except SyscallError:
            if not got:
                raise SyscallError(errno.EINTR) from None
    if got:
        t.mm.copy_out(addr, b"".join(got))
    return len(got)


def _deadline(t: Task, addr: int) -> float | None:
    """The timeout as Linux's read_events takes it: not validated, so a
    negative one has simply passed already."""
    if not addr:
        return None
    sec, nsec = TIMESPEC.unpack(t.mm.copy_in(addr, TIMESPEC.size))
    return time.monotonic() + sec + nsec / 1e9


def io_getevents(t: Task, a: Args) -> int:
    """io_getevents(2): at least min_nr completions unless the timeout (a
    relative timespec; NULL waits for ever) passes first."""
    deadline = _deadline(t, a[4])
    return _getevents(t, a[0], s32(a[1]), s32(a[2]), a[3], deadline)


def io_pgetevents(t: Task, a: Args) -> int:
    """io_pgetevents(2): io_getevents with a signal mask ({sigmask, size})."""
    deadline = _deadline(t, a[4])
    mask_addr = size = 0
    if a[5]:
        mask_addr, size = struct.unpack("<QQ", t.mm.copy_in(a[5], 16))
    return with_sigmask(t, mask_addr, size,
                         lambda: _getevents(t, a[0], s32(a[1]), s32(a[2]), a[3], deadline))


def io_cancel(t: Task, a: Args) -> int:
    """io_cancel(2): every request has completed by the time io_submit
    returns, so there is never one to cancel."""
    _context(t, a[0])
    t.mm.copy_in(a[1], IOCB.size)
    raise SyscallError(errno.EINVAL)


ENTRIES: list[Entry] = [
    partial("io_setup", io_setup, note="no AIO_RING_MAGIC: completions only by syscall"),
    partial("io_submit", io_submit, note="requests run at submit; no IOCB_CMD_POLL"),
    partial("io_getevents", io_getevents, note="as io_submit"),
    partial("io_pgetevents", io_pgetevents, note="as io_submit"),
    partial("io_cancel", io_cancel, note="nothing is ever in flight: EINVAL"),
    partial("io_destroy", io_destroy, note="as io_submit"),
]
