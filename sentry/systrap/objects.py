"""Which of a stub's files an OP_MAP uses, and shared objects' files sent to it.

A stub holds its address space's arena (STUB_MEMFD_FD) and the shared
object it last received (STUB_OBJECT_FD, sentry/mm/arena.py); never the
common arena, which is the Sentry's alone.  Before it maps an object it
does not hold, the Sentry sends the object's file over the stub's socket
(SCM_RIGHTS) and puts an OP_RECV_FD in front of the OP_MAP; the stub takes it onto STUB_OBJECT_FD,
replacing the last one (its mappings keep their files).  Callers hold the
process's ``object_lock`` from ``expand_ops`` until the stub has applied the
ops, so two threads' receive-and-map pairs never interleave.
"""

from __future__ import annotations

import socket
import struct
from typing import TYPE_CHECKING

from sentry.mm.address_space import StubOp
from sentry.systrap._stub import lib

if TYPE_CHECKING:
    from sentry.mm.arena import Arena
    from sentry.systrap.processes import StubProcess

_OP_MAP = lib.OP_MAP


def send_fds(sock: socket.socket, *fds: int) -> None:
    """One message carrying ``fds`` (SCM_RIGHTS) to a stub or the zygote."""
    sock.sendmsg([b"f"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                           struct.pack(f"{len(fds)}i", *fds))])


def map_target(proc: StubProcess, offset: int) -> tuple[int, int, Arena | None]:
    """(descriptor number in this stub, file offset, shared object or None)
    of a memory-file offset it is to map: its own arena or a shared
    object's (which the stub must receive first: OP_RECV_FD).  Never
    another address space's arena nor the common one, which no stub holds
    (ValueError: a Sentry bug)."""
    own = proc.arena
    if own.base <= offset < own.base + own.size:
        return lib.STUB_MEMFD_FD, offset - own.base, None
    mf = proc.platform.mf
    try:
        arena = mf.arena_of(offset)
    except ValueError:
        arena = None
    if arena is None or not arena.shared_object:
        raise ValueError(f"offset {offset:#x} is in an arena stub {proc.pid} does not hold")
    return lib.STUB_OBJECT_FD, offset - arena.base, arena


def expand_ops(proc: StubProcess, ops: list[StubOp]) -> tuple[list[StubOp], list[Arena]]:
    """``ops`` with an OP_RECV_FD before each OP_MAP of a shared object the
    stub does not hold at STUB_OBJECT_FD yet, and those objects in order
    (their files are sent with ``send_objects`` right before the ops run;
    the caller holds ``object_lock`` from here until the stub is done)."""
    out: list[StubOp] = []
    objects: list[Arena] = []
    current = proc.object_arena
    for op in ops:
        if op.kind == _OP_MAP:
            _fd, _off, arena = proc.map_target(op.offset)
            if arena is not None and arena is not current:
                out.append(StubOp(lib.OP_RECV_FD, 0, 0))
                objects.append(arena)
                current = arena
        out.append(op)
    return out, objects


def send_objects(proc: StubProcess, objects: list[Arena]) -> None:
    """Send the stub the files of ``objects``, one message each."""
    for arena in objects:
        send_fds(proc.sock, arena.fd)
        proc.object_arena = arena
