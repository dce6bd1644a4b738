"""Stub processes on the host: the zygote that clones them, and their lives.

Why apart from sentry/systrap/stubs.py: that module is the syscall path (a
stub thread's slot and the hand-off); this one runs when a process is made,
killed or reaped: `Platform` (the zygote, the stubs' seccomp program) and
`StubProcess` (one application address space: thread slots, reaping, CPU
time, its own arena).

Start-up order matters (facts, not taste):
1. ``reserve_stub_region()`` must run before the Sentry maps anything large
   (the memory file's mapping is hundreds of GiB of address space): the stub
   region's fixed addresses must be free in the Sentry, because the zygote is
   forked from it and maps the stub code there over whatever the Sentry had.
2. ``Platform`` forks the zygote from the Sentry's main thread: a stub's
   PDEATHSIG fires when the *thread* that created its parent lineage exits, so a
   short-lived Python thread must not create it.
3. The zygote is created before the Sentry installs its own seccomp filter, so
   stubs never inherit it.
"""

from __future__ import annotations

import errno
import os
import resource  # noqa: F401 - os.wait4 imports it on first use, after confinement
import signal
import socket
import struct
import threading
import time
from typing import Any

from sentry import placement
from sentry.mm.address_space import StubOp
from sentry.mm.arena import Arena
from sentry.mm.memfile import MemoryFile
from sentry.systrap import bpf, objects, patch
from sentry.systrap.region import reserve_stub_region
from sentry.systrap.stubs import SLOT_OPS_OFF, StubError, StubThread, ffi, lib

ZYGOTE_SPIN = 100_000  # TSC cycles; only when the zygote may run on another CPU
SPAWN_TIMEOUT_NS = 5_000_000_000


class Platform:
    """One per sandbox: the zygote that clones stub processes, and the seccomp
    program it gives them."""

    def __init__(self, mf: MemoryFile) -> None:
        if threading.current_thread() is not threading.main_thread():
            raise StubError("the platform must be created on the Sentry's main thread")
        if lib.stub_code_size() > lib.STUB_CODE_SIZE:
            raise StubError("stub code larger than its region")
        reserve_stub_region()
        self.mf = mf
        self.fresh_fp: bytes | None = None  # FPU state for a new image (init_fp_state)
        self.syscall_ip = lib.STUB_CODE_ADDR + lib.stub_syscall_ip_offset()
        prog = bpf.stub_filter(
            self.syscall_ip, lib.STUB_REGION_START, lib.STUB_REGION_END, lib.STUB_MEMFD_FD
        )
        if len(prog) // 8 > lib.STUB_MAX_FILTER:
            raise StubError("seccomp program too long")
        self.ctrl = ffi.cast("struct stub_ctrl *", lib.STUB_CTRL_ADDR)
        ffi.memmove(self.ctrl.filter, prog, len(prog))
        self.ctrl.filter_len = len(prog) // 8
        self.ctrl.sentry_pid = os.getpid()
        self.ctrl.state = 0
        self._lock = threading.Lock()
        # Each new stub's own arena goes to the zygote over this socket
        # (SCM_RIGHTS) with the request; the zygote keeps the other end.
        self._sock, zsock = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            pid = lib.stub_start_zygote(zsock.fileno())
        finally:
            zsock.close()
        if pid < 0:
            raise StubError(f"cannot fork the zygote: {os.strerror(-pid)}")
        self.zygote_pid = pid
        # Boot, before confinement: an unreaped child's pid names it alone.
        # The confined Sentry signals by pidfd only (confine_filters.py).
        self.zygote_pidfd = os.pidfd_open(pid)

    def new_process(self, arena: Arena) -> StubProcess:
        """A fresh stub process (empty application address space, one thread
        slot) holding ``arena``, its address space's private memory.

        The stub traps into its first slot at once; the caller waits for that
        event and answers it with the task's initial registers.
        """
        slots_off = arena.allocate(lib.STUB_SLOTS_SIZE)
        try:
            mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        except OSError as e:
            arena.free(slots_off, lib.STUB_SLOTS_SIZE)
            raise StubError(f"no socket for a new stub: {e}") from None
        try:
            with self._lock:
                spin = 0 if placement.home_cpu() is not None else ZYGOTE_SPIN
                try:
                    objects.send_fds(self._sock, arena.fd, theirs.fileno())
                except OSError as e:
                    pid = -(e.errno or errno.EIO)
                else:
                    pid = lib.zygote_request(self.ctrl, slots_off - arena.base, spin,
                                             SPAWN_TIMEOUT_NS)
                    if pid > 0:  # its pidfd came first (stub.c, stub_send_fd)
                        pidfd = _recv_pidfd(self._sock, pid)
        finally:
            theirs.close()
        if pid < 0:
            mine.close()
            arena.free(slots_off, lib.STUB_SLOTS_SIZE)
            raise StubError(f"the zygote could not clone a stub: {os.strerror(-pid)}")
        return StubProcess(self, pid, slots_off, arena, mine, pidfd)

    def close(self) -> None:
        """Kill the zygote (its stubs die with the Sentry or are killed by their tasks)."""
        if self.zygote_pid > 0:
            _kill_and_reap(self.zygote_pidfd, self.zygote_pid)
            os.close(self.zygote_pidfd)
            self.zygote_pid = -1
        self._sock.close()


def _recv_pidfd(sock: socket.socket, pid: int) -> int:
    """The pidfd of the stub the zygote just cloned (sent before its answer)."""
    _msg, fds, _flags, _addr = socket.recv_fds(sock, 1, 1)
    if len(fds) != 1:
        for fd in fds:
            os.close(fd)
        raise StubError(f"no pidfd for stub {pid}")
    return fds[0]


def _kill_and_reap(pidfd: int, pid: int) -> None:
    """SIGKILL through the pidfd (never kill(2): the confined Sentry may not
    signal a host process by number), then reap."""
    try:
        signal.pidfd_send_signal(pidfd, signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass


def _cpu_of(usage: Any) -> int:
    return int((usage.ru_utime + usage.ru_stime) * 1_000_000_000)


class StubProcess:
    """A stub process: one application address space on the host.

    Several task threads may ask about or kill the same process at once, so
    reaping is under a lock and the wait status is recorded once.
    """

    def __init__(self, platform: Platform, pid: int, slots_off: int, arena: Arena,
                 sock: socket.socket, pidfd: int) -> None:
        self.platform = platform
        self.pid = pid
        self.pidfd = pidfd  # kill() signals through it; closed once reaped
        self.slots_off = slots_off
        self.arena = arena  # the one arena whose file this process holds
        arena.hold()
        self.sock = sock  # shared objects' files go to the stub over this (OP_RECV_FD)
        # The object at the stub's STUB_OBJECT_FD, and the lock that keeps one
        # thread's receive-then-map of an object from interleaving another's.
        self.object_arena: Arena | None = None
        self.object_lock = threading.Lock()
        self.exit_status: int | None = None
        self._cpu_ns = 0  # from wait4's rusage, once reaped
        self.maxrss_kb = 0  # likewise: the host's peak resident set of the process
        self._lock = threading.Lock()
        self._used = {0}

    def thread(self, index: int = 0) -> StubThread:
        if not 0 <= index < lib.STUB_MAX_THREADS:
            raise StubError("no such stub thread slot")
        return StubThread(self, index)

    def new_thread(self, creator: StubThread) -> StubThread:
        """A new host thread in this process, cloned by ``creator`` (which must be
        stopped in an event); the new thread then traps into its own slot."""
        mf = self.platform.mf
        with self._lock:
            free = [i for i in range(1, lib.STUB_MAX_THREADS)
                    if i not in self._used and not self._alive_word(i)]
            if not free:
                raise StubError("no free stub thread slot")
            index = free[0]
            self._used.add(index)
        base = self.slots_off + index * lib.STUB_SLOT_STRIDE
        mf.view[base : base + SLOT_OPS_OFF] = bytes(SLOT_OPS_OFF)  # a fresh slot header
        if patch.HAVE_FSGSBASE:  # its GS base at its own slot (the syscall trampoline)
            struct.pack_into("<I", mf.view, base + ffi.offsetof("struct stub_slot", "use_gs"), 1)
        top = base + lib.STUB_SLOT_STRIDE - 16
        struct.pack_into("<Q", mf.view, top, lib.STUB_CODE_ADDR + lib.stub_thread_start_offset())
        child_sp = lib.STUB_SLOTS_ADDR + index * lib.STUB_SLOT_STRIDE + lib.STUB_SLOT_STRIDE - 16
        alive_addr = (lib.STUB_SLOTS_ADDR + index * lib.STUB_SLOT_STRIDE
                      + ffi.offsetof("struct stub_slot", "thread_alive"))
        try:
            tid = creator.apply_ops([StubOp(lib.OP_CLONE_THREAD, child_sp, 0, 0, alive_addr)])
        except StubError:
            self.free_thread(index)
            raise
        th = StubThread(self, index)
        th.host_tid = tid
        if creator.wide:  # the clone inherited the creator's let-out CPU set
            placement.pin_thread(tid, wide=False)
        return th

    def _alive_word(self, index: int) -> int:
        off = (self.slots_off + index * lib.STUB_SLOT_STRIDE
               + ffi.offsetof("struct stub_slot", "thread_alive"))
        return struct.unpack_from("<I", self.platform.mf.view, off)[0]

    def free_thread(self, index: int) -> None:
        with self._lock:
            self._used.discard(index)

    def poll_dead(self) -> bool:
        """True (and the wait status recorded) once the host process has exited."""
        with self._lock:
            if self.exit_status is not None:
                return True
            try:
                pid, status, usage = os.wait4(self.pid, os.WNOHANG)
            except ChildProcessError:
                self.exit_status = signal.SIGKILL
                self._close_pidfd()
                return True
            if pid == 0:
                return False
            self.exit_status = status
            self._cpu_ns = _cpu_of(usage)
            self.maxrss_kb = usage.ru_maxrss
            self._close_pidfd()
            return True

    def _close_pidfd(self) -> None:
        """Reaped (lock held): the pidfd names a dead process now."""
        if self.pidfd >= 0:
            os.close(self.pidfd)
            self.pidfd = -1

    def kill(self) -> None:
        """Kill and reap the stub (idempotent, any thread)."""
        with self._lock:
            if self.exit_status is not None:
                return
            try:
                signal.pidfd_send_signal(self.pidfd, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                _, status, usage = os.wait4(self.pid, 0)
                self._cpu_ns = _cpu_of(usage)
                self.maxrss_kb = usage.ru_maxrss
            except ChildProcessError:
                status = signal.SIGKILL
            self.exit_status = status
            self._close_pidfd()

    def cpu_ns(self) -> int:
        """CPU time (user + system) the host spent running this process: its
        per-process CPU clock while it lives, its rusage once reaped (a reaped
        pid has no clock)."""
        if self.exit_status is not None:
            return self._cpu_ns
        try:
            return time.clock_gettime_ns(((~self.pid) << 3) | 2)  # CPUCLOCK_SCHED of a pid
        except OSError:
            return self._cpu_ns

    def release(self) -> None:
        """Give the slot memory back to the memory file (after kill, by the owner)."""
        with self._lock:
            if self.slots_off < 0:
                return
            slots_off, self.slots_off = self.slots_off, -1
        self.sock.close()
        self.arena.free(slots_off, lib.STUB_SLOTS_SIZE)
        self.arena.drop()

    def map_target(self, offset: int) -> tuple[int, int, Arena | None]:
        """(descriptor in this stub, file offset, shared object or None) of an
        offset it is to map (sentry/systrap/objects.py)."""
        try:
            return objects.map_target(self, offset)
        except ValueError as e:
            raise StubError(str(e)) from None
