"""Byte layout of the channel's shared-memory segment and its object names.

Both processes compute every offset from (nslots, msize) alone, so the layout
lives here, apart from the code that waits and wakes. Tests use it to play a
hostile peer that writes raw bytes.

Segment (one POSIX shm object, created by the client)::

    page 0          header: magic, version, nslots, msize, client pid,
                    server pid, client-closed flag, server-closed flag
    per slot i      page-aligned stride:
      +0            slot header (64 bytes): state, seq, req_len,
                    resp_seq, resp_len, status
      +64           request buffer, msize bytes
      +64+msize     response buffer, msize bytes

Separate request and response buffers let a server handler build its answer
in place (e.g. pread straight into the Rread payload) while it still reads the
request.

Names: the prefix "/pyvisor-<tag>-<hex>" is the shm object (the tag: the
creator's pid as the host sees it, :func:`creator_tag`); "<prefix>.work"
and "<prefix>.s<i>" are the semaphores (glibc stores them as
/dev/shm/sem.<name without slash>).
"""

from __future__ import annotations

import mmap
import os
import re
import struct

from shm.errors import ProtocolError
from shm.records import record

PAGE = mmap.PAGESIZE
MAGIC = 0x48535650  # "PVSH" little-endian
VERSION = 1

DEFAULT_SLOTS = 8
MAX_SLOTS = 64
# Room for a 1 MiB 9P payload (Twrite/Rread data) plus the 9P header.
DEFAULT_MSIZE = (1 << 20) + 4096
MIN_MSIZE = 64
MAX_MSIZE = 64 << 20

U32 = struct.Struct("=I")
HEADER = struct.Struct("=IIII")  # magic, version, nslots, msize
OFF_CLIENT_PID = 16
OFF_SERVER_PID = 20
OFF_CLIENT_CLOSED = 24
OFF_SERVER_CLOSED = 28

SLOT_HEADER_SIZE = 64
S_STATE = 0
S_SEQ = 4
S_REQ_LEN = 8
S_RESP_SEQ = 12
S_RESP_LEN = 16
S_STATUS = 20
REQ_HEADER = struct.Struct("=II")  # seq, req_len at S_SEQ
RESP_HEADER = struct.Struct("=III")  # resp_seq, resp_len, status at S_RESP_SEQ

# Slot states. The client owns a slot in FREE and (after its wake-up) RESPONSE;
# the server owns it in REQUEST and BUSY.
FREE = 0
REQUEST = 1
BUSY = 2
RESPONSE = 3

# Response status codes.
ST_OK = 0
ST_BAD_FRAME = 1  # the request's length field was impossible
ST_TOO_LARGE = 2  # the handler's answer did not fit in msize
ST_SERVER_ERROR = 3  # the handler raised

# Channels made by ClientChannel are "/<NAME_PREFIX><creator tag>-<random hex>":
# the tag lets a survivor remove a dead creator's objects (segment.unlink_created_by).
NAME_PREFIX = "pyvisor-"

_creator_tag: str | None = None


def set_creator_tag() -> None:
    """Name the channels of this process and of those it forks from now on
    after its pid as the host sees it (/proc/self in the host's procfs),
    not its pid in its own pid namespace.  Why: /dev/shm is the host's, and
    every OCI Sentry is pid 2 of its namespace (sentry/oci/namespaces.py),
    every `runsc.py do` Sentry pid 1 (sentry/pidns.py); names carrying that
    pid would collide, and one sandbox's clean-up (unlink_created_by) would
    remove another's channel while it boots.  The OCI sandbox host calls
    this before it forks the Sentry (its own host pid, the container's pid
    in state.json, tags the container's names); `do`'s Sentry right after
    the fork that put it in its pid namespace."""
    global _creator_tag
    _creator_tag = str(host_view_pid())


def host_view_pid() -> int:
    """This process's pid as the host sees it: /proc/self of the host's
    procfs, which a process in a pid namespace of its own still has mounted
    (os.getpid() there says 1 or 2); os.getpid() when there is no procfs or
    it is one of a namespace this process is not in."""
    try:
        return int(os.readlink("/proc/self"))
    except (OSError, ValueError):
        return os.getpid()


def inherited_creator_tag() -> str | None:
    """The tag set in this process or inherited through fork, else None."""
    return _creator_tag


def creator_tag() -> str:
    """The tag this process's channel names carry: the one set, else its pid."""
    return _creator_tag if _creator_tag is not None else str(os.getpid())


def tag_of_name(name: str) -> str | None:
    """The creator tag in a channel's name (``/pyvisor-TAG-HEX``), or None."""
    rest = name.lstrip("/")
    if not rest.startswith(NAME_PREFIX):
        return None
    tag = rest[len(NAME_PREFIX):].split("-", 1)[0]
    return tag if tag.isdigit() else None

_PREFIX_RE = re.compile(r"/[A-Za-z0-9_.-]{1,200}")


def _align(n: int, to: int) -> int:
    return (n + to - 1) // to * to


@record(frozen=True, slots=True)
class Geometry:
    """Slot count and slot size; every offset follows from these two."""

    nslots: int
    msize: int

    def __post_init__(self) -> None:
        if not 1 <= self.nslots <= MAX_SLOTS:
            raise ProtocolError(f"nslots {self.nslots} outside 1..{MAX_SLOTS}")
        if not MIN_MSIZE <= self.msize <= MAX_MSIZE:
            raise ProtocolError(f"msize {self.msize} outside {MIN_MSIZE}..{MAX_MSIZE}")

    @property
    def stride(self) -> int:
        return _align(SLOT_HEADER_SIZE + 2 * self.msize, PAGE)

    @property
    def size(self) -> int:
        """Total segment size in bytes."""
        return PAGE + self.nslots * self.stride

    def slot(self, i: int) -> int:
        """Offset of slot i's header."""
        return PAGE + i * self.stride

    def request(self, i: int) -> int:
        """Offset of slot i's request buffer."""
        return self.slot(i) + SLOT_HEADER_SIZE

    def response(self, i: int) -> int:
        """Offset of slot i's response buffer."""
        return self.slot(i) + SLOT_HEADER_SIZE + self.msize


@record(frozen=True, slots=True)
class Names:
    """Every /dev/shm object one channel owns."""

    shm: str
    work: str
    slots: tuple[str, ...]

    @classmethod
    def for_prefix(cls, prefix: str, nslots: int) -> Names:
        check_prefix(prefix)
        return cls(prefix, f"{prefix}.work", tuple(f"{prefix}.s{i}" for i in range(nslots)))

    @property
    def semaphores(self) -> tuple[str, ...]:
        return (self.work, *self.slots)


def check_prefix(prefix: str) -> None:
    """Reject names POSIX would refuse or that could escape /dev/shm."""
    if not _PREFIX_RE.fullmatch(prefix):
        raise ValueError(f"bad channel name {prefix!r}: want '/' then [A-Za-z0-9_.-]")
