"""The x86-64 syscall table: every family's entries in one place.

One hop from a number to its handler: ``build_table().entry(nr).handler`` is a
function in the family module named here.
"""

from __future__ import annotations

from syscalls import fs, ids, misc, mm, path, poll, process, signal, time, xattr
from syscalls.table import SyscallTable

FAMILIES = (fs, path, xattr, mm, poll, process, ids, signal, time, misc)


def build_table() -> SyscallTable:
    return SyscallTable(e for fam in FAMILIES for e in fam.ENTRIES)
