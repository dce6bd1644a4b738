"""What Linux's block layer answers alike for every disk (block/ioctl.c), for
the Sentry's block devices (the RAM disk, loop devices).

Facts kept from Linux:

* the setters (BLKROSET, BLKRASET, BLKFRASET) need CAP_SYS_ADMIN and say
  EACCES, not EPERM, before they read their argument;
* the read-ahead window belongs to the disk, not to an open file: BLKRASET
  takes the value itself (not a pointer) in 512-byte sectors and keeps it in
  pages (ra_pages), so it reads back rounded down to a page, with unsigned
  long arithmetic; BLKRAGET with a NULL pointer is EINVAL;
* the BLKFRA* calls are the same calls under older names.
"""

from __future__ import annotations

import errno
import struct
from typing import Any

from sentry.kernel.creds import CAP_SYS_ADMIN
from sentry.kernel.errors import SyscallError

BLKRASET, BLKRAGET, BLKFRASET, BLKFRAGET = 0x1262, 0x1263, 0x1264, 0x1265
SECTOR = 512
PAGE = 4096
RA_PAGES = 32  # Linux's VM_READAHEAD_PAGES: a new disk reads ahead 128 KiB
_ULONG = (1 << 64) - 1


def require_admin(task: Any) -> None:
    """A block setter's permission check (EACCES without CAP_SYS_ADMIN)."""
    if not task.creds.capable(CAP_SYS_ADMIN):
        raise SyscallError(errno.EACCES)


def readahead_ioctl(disk: Any, cmd: int, arg: int, task: Any) -> bool:
    """BLKRAGET/BLKRASET (and BLKFRA*) on ``disk.ra_pages``; False if ``cmd``
    is none of them, so the caller goes on with its own calls."""
    if cmd in (BLKRAGET, BLKFRAGET):
        if not arg:
            raise SyscallError(errno.EINVAL)
        task.mm.copy_out(arg, struct.pack("<Q", (disk.ra_pages * PAGE & _ULONG) // SECTOR))
        return True
    if cmd in (BLKRASET, BLKFRASET):
        require_admin(task)
        disk.ra_pages = (arg * SECTOR & _ULONG) // PAGE
        return True
    return False
