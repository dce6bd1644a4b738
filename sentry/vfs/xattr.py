"""Extended attributes kept by the Sentry's own filesystems (tmpfs, and the
overlay's upper layer, which is a tmpfs).

Why a store per inode and nothing more here: which names exist and what they
hold is the filesystem's business (this module), while who may read or write
which namespace (user., trusted., security.) depends on the caller's
credentials and is decided above the VFS, in ``syscalls/xattr.py``, before
these functions run.  Filesystems that keep no attributes (procfs, sysfs,
the Gofer-backed tree without an overlay) answer as a file with none.

Limits as Linux's: a name is 1..255 bytes, a value at most 64 KiB (checked by
the caller); a file's attributes together are bounded so an application
cannot grow the Sentry without limit through them (ENOSPC past it).
"""

from __future__ import annotations

import errno

from sentry.kernel.errors import SyscallError

XATTR_CREATE = 1
XATTR_REPLACE = 2
XATTR_NAME_MAX = 255
XATTR_SIZE_MAX = 65536
XATTR_LIST_MAX = 65536

MAX_BYTES_PER_INODE = 1 << 20
"""Names plus values of one file's attributes, at most (ENOSPC beyond)."""

Store = dict[bytes, bytes]
"""An inode's attributes in insertion order (the order listxattr gives)."""


def get(store: Store | None, name: bytes) -> bytes:
    """The value of ``name``: ENODATA when the file has no such attribute."""
    if store is None or name not in store:
        raise SyscallError(errno.ENODATA)
    return store[name]


def put(store: Store, name: bytes, value: bytes, flags: int) -> None:
    """Set ``name``: XATTR_CREATE fails on an existing name (EEXIST),
    XATTR_REPLACE on a missing one (ENODATA); the per-file bound is ENOSPC."""
    exists = name in store
    if flags & XATTR_CREATE and exists:
        raise SyscallError(errno.EEXIST)
    if flags & XATTR_REPLACE and not exists:
        raise SyscallError(errno.ENODATA)
    used = sum(len(k) + len(v) for k, v in store.items() if k != name)
    if used + len(name) + len(value) > MAX_BYTES_PER_INODE:
        raise SyscallError(errno.ENOSPC)
    store[name] = value


def remove(store: Store | None, name: bytes) -> None:
    """Remove ``name``: ENODATA when it is not set."""
    if store is None or name not in store:
        raise SyscallError(errno.ENODATA)
    del store[name]
