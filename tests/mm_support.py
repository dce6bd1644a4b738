"""What the memory manager's tests share: page-sized names and the errno check.

tests/test_mm.py (each syscall's semantics, fork) and tests/test_mm_model.py
(the randomized model check) map in the same quiet area with the same flag
combinations.
"""

from __future__ import annotations

import pytest

from sentry.kernel.errors import SyscallError
from sentry.mm.layout import PAGE_SIZE
from sentry.mm.vma import MAP_ANONYMOUS, MAP_PRIVATE, MAP_SHARED, PROT_READ, PROT_WRITE

P = PAGE_SIZE
RW = PROT_READ | PROT_WRITE
PRIV = MAP_PRIVATE | MAP_ANONYMOUS
SHARED = MAP_SHARED | MAP_ANONYMOUS
BASE = 0x1000_0000  # a quiet area for fixed mappings


def errno_of(fn, *args, **kw) -> int:
    with pytest.raises(SyscallError) as ei:
        fn(*args, **kw)
    return ei.value.errno
