"""One side's handles on a channel: the mapped segment and the semaphores.

Creation, opening, field access and teardown live here so that the client and
the server share one careful implementation of the parts that can leak /dev/shm
objects or crash the process (closing a semaphore a thread still waits on,
closing an mmap with exported memoryviews).
"""

from __future__ import annotations

import logging
import mmap
import os

import posix_ipc

from shm import layout
from shm.errors import ChannelError, ProtocolError
from shm.layout import U32, Geometry, Names

log = logging.getLogger("pyvisor.shm")


def unlink_names(names: Names) -> None:
    """Remove every /dev/shm object of a channel; already-gone is fine."""
    try:
        posix_ipc.unlink_shared_memory(names.shm)
    except posix_ipc.ExistentialError:
        pass
    for name in names.semaphores:
        try:
            posix_ipc.unlink_semaphore(name)
        except posix_ipc.ExistentialError:
            pass


SHM_DIR = "/dev/shm"  # where glibc keeps shm objects and named semaphores


def unlink_created_by(pid: int | str, shm_dir: str = SHM_DIR) -> int:
    """Remove every /dev/shm object of channels created by process ``pid``
    (names start "pyvisor-<pid>-", layout.py: ``pid`` is its creator tag, the
    pid the host sees); how many were removed.

    For whoever outlives a channel's creator when that creator died before
    both ends had opened the channel (its names are unlinked then): its
    parent, the sandbox host, or its Gofer.  Only call it when ``pid`` is
    dead and not yet reaped (a zombie keeps its pid), so no live process can
    own names with that pid in them.
    """
    prefixes = (f"{layout.NAME_PREFIX}{pid}-", f"sem.{layout.NAME_PREFIX}{pid}-")
    try:
        names = os.listdir(shm_dir)
    except OSError:
        return 0
    removed = 0
    for name in names:
        if name.startswith(prefixes):
            try:
                os.unlink(os.path.join(shm_dir, name))
                removed += 1
            except OSError:
                pass
    return removed


class Segment:
    """The mapping and semaphores of one channel, as held by one process."""

    def __init__(
        self,
        names: Names,
        geometry: Geometry,
        mm: mmap.mmap,
        work: posix_ipc.Semaphore,
        slot_sems: list[posix_ipc.Semaphore],
    ) -> None:
        self.names = names
        self.geometry = geometry
        self.mm = mm
        self.work = work
        self.slot_sems = slot_sems
        self.closed = False
        self._view = memoryview(mm)
        g = geometry
        self.requests = [self._view[g.request(i) : g.request(i) + g.msize] for i in range(g.nslots)]
        self.responses = [
            self._view[g.response(i) : g.response(i) + g.msize] for i in range(g.nslots)
        ]
        self.slot_offsets = [g.slot(i) for i in range(g.nslots)]

    # -- creation ---------------------------------------------------------

    @classmethod
    def create(cls, prefix: str, geometry: Geometry) -> Segment:
        """Create every object exclusively (O_CREX); on failure leave nothing."""
        names = Names.for_prefix(prefix, geometry.nslots)
        made: list[posix_ipc.Semaphore] = []
        shm = None
        try:
            shm = posix_ipc.SharedMemory(names.shm, posix_ipc.O_CREX, 0o600, geometry.size)
            mm = mmap.mmap(shm.fd, geometry.size)
            shm.close_fd()
            for name in names.semaphores:
                made.append(posix_ipc.Semaphore(name, posix_ipc.O_CREX, 0o600, 0))
        except BaseException:
            for sem in made:
                sem.close()
            if shm is not None:
                unlink_names(names)  # ours: O_CREX succeeded
            raise
        layout.HEADER.pack_into(mm, 0, layout.MAGIC, layout.VERSION, *_geo(geometry))
        U32.pack_into(mm, layout.OFF_CLIENT_PID, os.getpid())
        return cls(names, geometry, mm, made[0], made[1:])

    @classmethod
    def open(cls, prefix: str) -> Segment:
        """Open a channel by name and validate its header against the segment.

        The header was written by the other process: nslots and msize are
        checked for range and against the real object size before any offset
        is computed from them.
        """
        layout.check_prefix(prefix)
        try:
            shm = posix_ipc.SharedMemory(prefix)
        except posix_ipc.ExistentialError as e:
            raise ChannelError(f"no channel named {prefix!r}") from e
        try:
            if shm.size < layout.PAGE:
                raise ProtocolError(f"segment too small ({shm.size} bytes)")
            head = mmap.mmap(shm.fd, layout.PAGE)
            try:
                magic, version, nslots, msize = layout.HEADER.unpack_from(head, 0)
            finally:
                head.close()
            if (magic, version) != (layout.MAGIC, layout.VERSION):
                raise ProtocolError(f"bad header magic {magic:#x} version {version}")
            geometry = Geometry(nslots, msize)
            if shm.size != geometry.size:
                raise ProtocolError(f"segment is {shm.size} bytes, header implies {geometry.size}")
            mm = mmap.mmap(shm.fd, geometry.size)
        finally:
            shm.close_fd()
        names = Names.for_prefix(prefix, geometry.nslots)
        sems: list[posix_ipc.Semaphore] = []
        try:
            for name in names.semaphores:
                sems.append(posix_ipc.Semaphore(name))
        except posix_ipc.ExistentialError as e:
            for sem in sems:
                sem.close()
            mm.close()
            raise ChannelError(f"channel {prefix!r} lacks semaphore: {e}") from e
        return cls(names, geometry, mm, sems[0], sems[1:])

    # -- fields -----------------------------------------------------------

    def get(self, off: int) -> int:
        return U32.unpack_from(self.mm, off)[0]

    def put(self, off: int, value: int) -> None:
        U32.pack_into(self.mm, off, value)

    def state(self, slot: int) -> int:
        return U32.unpack_from(self.mm, self.slot_offsets[slot] + layout.S_STATE)[0]

    def set_state(self, slot: int, state: int) -> None:
        U32.pack_into(self.mm, self.slot_offsets[slot] + layout.S_STATE, state)

    # -- teardown ---------------------------------------------------------

    def close(self) -> None:
        """Close this process's handles (not the names). Idempotent.

        Precondition: no thread is waiting on one of the semaphores; glibc's
        sem_close unmaps the semaphore under such a waiter.
        """
        if self.closed:
            return
        self.closed = True
        sems = [self.work, *self.slot_sems]
        for sem in sems:
            try:
                sem.close()
            except posix_ipc.ExistentialError:
                pass
        for view in (*self.requests, *self.responses, self._view):
            view.release()
        self.requests, self.responses = [], []
        try:
            self.mm.close()
        except BufferError:
            # A caller still holds a view into the segment; the mapping goes
            # away with the last reference instead.
            log.warning("shm %s: mapping still exported, left to the GC", self.names.shm)


def _geo(g: Geometry) -> tuple[int, int]:
    return g.nslots, g.msize
