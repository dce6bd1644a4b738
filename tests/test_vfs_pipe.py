"""Pipes and fifos: pipe(7) and fifo(7) semantics, including blocking across threads.

A thread is known to be blocked when the pipe holds its waiter (``blocked``),
not after a sleep; a thread that should have ended is checked to have ended."""

from __future__ import annotations

import errno
import threading
import time
from collections.abc import Callable

import pytest
from helpers import Programs, assert_same_as_native

from sentry.kernel.errors import SyscallError
from sentry.vfs import vfs
from sentry.vfs.file import (
    O_NONBLOCK,
    O_RDONLY,
    O_RDWR,
    O_WRONLY,
    POLLERR,
    POLLHUP,
    POLLIN,
    POLLOUT,
)
from sentry.vfs.mount import MountNamespace
from sentry.vfs.pipe import DEFAULT_CAPACITY, FIONREAD, PIPE_BUF, Pipe, PipeFile, make_pipe
from sentry.vfs.resolve import FsContext, resolve
from sentry.vfs.tmpfs import TmpFs

ALL = POLLIN | POLLOUT


def errno_of(fn: Callable[..., object], *a: object) -> int:
    with pytest.raises(SyscallError) as ei:
        fn(*a)
    return ei.value.errno


def in_thread(fn: Callable[[], object]) -> tuple[threading.Thread, list[object]]:
    out: list[object] = []

    def run() -> None:
        try:
            out.append(fn())
        except SyscallError as e:
            out.append(e)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, out


DEADLINE = 10.0  # far above what any step takes; only there so a bug cannot hang the run


def blocked(pipe: Pipe, t: threading.Thread) -> bool:
    """Wait until ``t`` waits on ``pipe`` (its waiter lock is queued there).
    A blocking wait re-queues itself every tick, so it is seen within one."""
    end = time.monotonic() + DEADLINE
    while t.is_alive() and time.monotonic() < end:
        with pipe._lock:
            if pipe._waiters:
                return True
        time.sleep(0.001)
    return False


def ended(t: threading.Thread) -> bool:
    t.join(DEADLINE)
    return not t.is_alive()


def test_blocking_read_woken_by_writer_then_eof() -> None:
    r, w = make_pipe()
    t, out = in_thread(lambda: r.read(100))
    assert blocked(r.pipe, t), out  # really blocked
    w.write(b"hi")
    assert ended(t)
    assert out == [b"hi"]
    w.release()
    assert r.read(100) == b""


def test_epipe_and_nonblocking() -> None:
    r, w = make_pipe(O_NONBLOCK)
    assert errno_of(r.read, 10) == errno.EAGAIN
    assert w.write(b"x" * DEFAULT_CAPACITY) == DEFAULT_CAPACITY
    assert errno_of(w.write, b"y") == errno.EAGAIN
    assert r.read(10) == b"x" * 10
    assert errno_of(w.write, b"y" * 11) == errno.EAGAIN  # not enough room: atomic
    big = w.write(b"z" * (PIPE_BUF + 100))  # larger than PIPE_BUF: partial
    assert big == 10
    r.release()
    assert errno_of(w.write, b"y") == errno.EPIPE


def test_blocking_writer_woken_and_epipe_on_reader_close() -> None:
    r, w = make_pipe()
    w.write(b"a" * DEFAULT_CAPACITY)
    t, out = in_thread(lambda: w.write(b"b" * 100))
    assert blocked(w.pipe, t), out
    r.read(100)
    assert ended(t)
    assert out == [100]
    t, out = in_thread(lambda: w.write(b"c" * 200))
    assert blocked(w.pipe, t), out
    r.release()
    assert ended(t)
    assert isinstance(out[0], SyscallError) and out[0].errno == errno.EPIPE


def test_small_writes_are_atomic_across_threads() -> None:
    r, w = make_pipe()
    n_writers, per_writer, size = 4, 40, PIPE_BUF
    payloads = [bytes([65 + i]) * size for i in range(n_writers)]

    def writer(i: int) -> None:
        for _ in range(per_writer):
            w.write(payloads[i])

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(n_writers)]
    for t in threads:
        t.start()
    data = bytearray()
    total = n_writers * per_writer * size
    while len(data) < total:
        data += r.read(65536)
    assert all(ended(t) for t in threads)
    for off in range(0, total, size):
        chunk = data[off:off + size]
        assert chunk == bytes([chunk[0]]) * size  # never interleaved


def test_interrupt_hook_gives_eintr() -> None:
    flag = threading.Event()
    r, w = make_pipe(interrupted=flag.is_set)
    t, out = in_thread(lambda: r.read(10))
    assert blocked(r.pipe, t), out
    flag.set()
    assert ended(t)
    assert isinstance(out[0], SyscallError) and out[0].errno == errno.EINTR
    # the class-wide default hook
    r2, w2 = make_pipe()
    Pipe.interrupted = staticmethod(lambda: True)  # type: ignore[assignment]
    try:
        assert errno_of(r2.read, 1) == errno.EINTR
    finally:
        Pipe.interrupted = None


def test_poll_and_fionread() -> None:
    r, w = make_pipe()
    assert r.poll(ALL, 0) == 0
    assert w.poll(ALL, 0) == POLLOUT
    w.write(b"abc")
    assert r.poll(ALL, 0) == POLLIN
    t, out = in_thread(lambda: r.poll(POLLIN, None))
    assert ended(t)
    assert out == [POLLIN]

    class Mem:
        def __init__(self) -> None:
            self.data = b""

        def copy_out(self, addr: int, data: bytes) -> None:
            self.data = data

    class Task:
        mm = Mem()

    r.ioctl(FIONREAD, 0x1000, Task())
    assert int.from_bytes(Task.mm.data, "little") == 3
    # a poll with a timeout waits for the writer
    r.read(3)
    t, out = in_thread(lambda: r.poll(POLLIN, DEADLINE))
    assert blocked(r.pipe, t), out
    w.write(b"x")
    assert ended(t)
    assert out == [POLLIN]
    w.release()
    assert r.poll(POLLIN, 0) == POLLIN | POLLHUP
    r2, w2 = make_pipe()
    r2.release()
    assert w2.poll(POLLOUT, 0) == POLLOUT | POLLERR
    st = r2.stat()
    assert st.mode == 0o010600 and st.ino == r2.pipe.ino


def test_set_capacity() -> None:
    r, w = make_pipe(O_NONBLOCK)
    assert r.pipe.set_capacity(5000) == 8192
    w.write(b"x" * 8192)
    assert errno_of(w.write, b"x") == errno.EAGAIN
    assert errno_of(r.pipe.set_capacity, 4096) == errno.EBUSY


def test_fifo_rendezvous() -> None:
    ctx = FsContext.for_namespace(MountNamespace(TmpFs()))
    vfs.mknod(ctx, None, b"/fifo", 0o010666)
    assert errno_of(vfs.open, ctx, None, b"/fifo", O_WRONLY | O_NONBLOCK) == errno.ENXIO
    inode = resolve(ctx, b"/fifo").inode
    t, out = in_thread(lambda: vfs.open(ctx, None, b"/fifo", O_RDONLY))
    end = time.monotonic() + DEADLINE  # the open makes the fifo's pipe, then waits on it
    while inode._pipe is None and t.is_alive() and time.monotonic() < end:
        time.sleep(0.001)
    assert inode._pipe is not None and blocked(inode._pipe, t), out  # a reader waits
    w = vfs.open(ctx, None, b"/fifo", O_WRONLY)
    assert ended(t)
    r = out[0]
    assert isinstance(r, PipeFile) and isinstance(w, PipeFile)
    w.write(b"through the fifo")
    assert r.read(100) == b"through the fifo"
    assert r.stat().mode == 0o010644  # (umask 022) the fifo's inode, not an anonymous pipe
    w.release()
    assert r.read(100) == b""
    rw = vfs.open(ctx, None, b"/fifo", O_RDWR)  # never blocks
    rw.write(b"self")
    assert rw.read(10) == b"self"
    nb = vfs.open(ctx, None, b"/fifo", O_RDONLY | O_NONBLOCK)
    assert nb.poll(POLLIN, 0) == 0


@pytest.mark.sandbox
def test_fifo_bytes_go_with_its_last_opener(programs: Programs) -> None:
    """Linux frees a fifo's pipe when its last opener closes it: unread bytes
    are gone at the next open. The Sentry kept them on the inode (and in its
    heap) until read."""
    assert_same_as_native(programs.path("fifo_close_drops"), in_tmpdir=True, markers=(
        "after the last close: read -1 EAGAIN", "a reader left open: read 3 'def'",
        "reopened after both closed: read 0 ''"))
