"""Terminals without a sandbox: the line discipline, a Terminal's two ends,
and the devpts entries that follow pty pairs (unit tests of sentry/tty).
The programs that use terminals natively and sandboxed are in test_tty.py.

Errors are checked by their exact errno, the one Linux gives for the case
(tty_io.c, n_tty.c, devpts); nothing waits on a fixed time.
"""

from __future__ import annotations

import errno
import os
import threading
import time
from collections.abc import Callable

import pytest

from sentry.kernel.errors import SyscallError
from sentry.tty import termios as t
from sentry.tty.ldisc import LineDiscipline
from sentry.tty.terminal import Terminal


def _type(ld: LineDiscipline, data: bytes) -> list[int]:
    signals: list[int] = []
    assert ld.input(data, signals) == len(data)
    return signals


def test_canonical_editing_and_echo() -> None:
    ld = LineDiscipline()
    _type(ld, b"abx\x7fc\r")
    assert ld.take_input(100) == b"abc\n"
    assert ld.take_output(100) == b"abx\b \bc\r\n"
    _type(ld, b"one two \x17three\n")
    assert ld.take_input(100) == b"one three\n"
    _type(ld, b"junk\x15ok\n")
    assert ld.take_input(100) == b"ok\n"


def test_eof_and_partial_reads() -> None:
    ld = LineDiscipline()
    _type(ld, b"xy\x04\x04long line\n")
    assert ld.take_input(100) == b"xy"
    assert ld.take_input(100) == b""  # VEOF alone: read returns 0
    assert ld.take_input(4) == b"long"
    assert ld.take_input(100) == b" line\n"
    assert not ld.input_ready()


def test_signal_characters_flush_and_echo() -> None:
    ld = LineDiscipline()
    assert _type(ld, b"partial\x03") == [2]
    assert not ld.edit and ld.take_output(100).endswith(b"^C")
    assert _type(ld, b"\x1c\x1a") == [3, 20]
    ld.termios.lflag &= ~t.ISIG
    assert _type(ld, b"\x03\n") == []
    assert ld.take_input(10) == b"\x03\n"


def test_raw_mode_switch_keeps_typed_text() -> None:
    ld = LineDiscipline()
    _type(ld, b"half")
    raw = ld.termios.copy()
    raw.lflag &= ~(t.ICANON | t.ECHO)
    ld.set_termios(raw)
    assert ld.take_input(100) == b"half"
    _type(ld, b"\r\n")
    assert ld.take_input(100) == b"\n\n"  # ICRNL still applies


def test_output_processing() -> None:
    ld = LineDiscipline()
    ld.output(b"a\nb")
    assert ld.take_output(100) == b"a\r\nb"
    ld.termios.oflag &= ~t.OPOST
    ld.output(b"a\nb")
    assert ld.take_output(100) == b"a\nb"


def _fails_with(err: int, fn: Callable[..., object], *args: object) -> None:
    """``fn(*args)`` raises SyscallError with exactly ``err`` (Linux's errno
    for the case, per tty_io.c / n_tty.c / devpts), not just any error."""
    with pytest.raises(SyscallError) as info:
        fn(*args)
    assert info.value.errno == err, (errno.errorcode.get(info.value.errno), errno.errorcode[err])


def test_terminal_nonblocking_and_hangup() -> None:
    term = Terminal(0)
    term.attach(master=True)
    term.attach(master=False)
    _fails_with(errno.EAGAIN, term.replica_read, 10, True)
    _fails_with(errno.EAGAIN, term.master_read, 10, True)
    assert term.master_write(b"hi\n", nonblock=True) == 3
    assert term.replica_read(10, nonblock=False) == b"hi\n"
    term.detach(master=True)
    assert term.replica_read(10, nonblock=False) == b""  # hung up: EOF
    _fails_with(errno.EIO, term.replica_write, b"x", False)


def test_noncanonical_vtime_times_out() -> None:
    term = Terminal(0)
    term.attach(master=True)
    term.attach(master=False)
    tio = term.ld.termios.copy()
    tio.lflag &= ~t.ICANON
    tio.cc[t.VMIN], tio.cc[t.VTIME] = 0, 1
    term.ld.set_termios(tio)
    # A read that ignored VTIME would block for ever: it runs in a thread that
    # must end (the join's bound is 100 times VTIME, only there to not hang the
    # suite).  The lower bound cannot flake under load, which only slows a run:
    # it catches a read that returned at once, as VTIME 0 would.
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(term.replica_read(10, nonblock=False)))
    start = time.monotonic()
    reader.start()
    reader.join(10.0)
    assert not reader.is_alive(), "a VMIN 0, VTIME 1 read did not time out"
    assert got == [b""]
    assert time.monotonic() - start >= 0.09  # VTIME is in tenths of a second


def test_devpts_entries_follow_the_pairs(monkeypatch: pytest.MonkeyPatch) -> None:
    from sentry.tty import devpts
    from sentry.tty.devpts import mount_devpts
    from sentry.vfs import vfs
    from sentry.vfs.devfs import mount_devfs
    from sentry.vfs.mount import MountNamespace
    from sentry.vfs.resolve import FsContext, resolve
    from sentry.vfs.tmpfs import TmpFs

    ns = MountNamespace(TmpFs(mode=0o755))
    ctx = FsContext.for_namespace(ns)
    vfs.mkdir(ctx, None, b"/dev", 0o755)
    mount_devfs(ns, resolve(ctx, b"/dev"))
    monkeypatch.setattr(devpts, "_default", None)  # put back afterwards: /dev/ptmx's target
    mount_devpts(ns, resolve(ctx, b"/dev/pts"))
    m0 = vfs.open(ctx, None, b"/dev/ptmx", os.O_RDWR)
    m1 = vfs.open(ctx, None, b"/dev/pts/ptmx", os.O_RDWR)
    st = vfs.stat(ctx, None, b"/dev/pts/1")
    assert (os.major(st.rdev), os.minor(st.rdev)) == (136, 1)
    # locked until unlockpt: EIO, as Linux's pts_unix98_lookup/tty_open give
    _fails_with(errno.EIO, vfs.open, ctx, None, b"/dev/pts/0", os.O_RDWR | os.O_NOCTTY)
    m0.term.locked = False
    r0 = vfs.open(ctx, None, b"/dev/pts/0", os.O_RDWR | os.O_NOCTTY)
    assert not r0.flags & os.O_NOCTTY
    m0.write(b"x\n")
    assert r0.read(10) == b"x\n"
    m1.release()
    _fails_with(errno.ENOENT, vfs.stat, ctx, None, b"/dev/pts/1")  # gone with its master
    # no task, no controlling tty: ENXIO
    _fails_with(errno.ENXIO, vfs.open, ctx, None, b"/dev/tty", os.O_RDWR)
    r0.release()
    m0.release()
