"""The kernel's task and thread-group tables (sentry/kernel/kernel.py,
LiveTable): looked through by many threads without the kernel's lock while
forks and exits change them.  A plain dict raised "dictionary changed size
during iteration" in a task's exit path (LTP futex_cmp_requeue01: 1,000
processes exiting at once killed a Sentry worker)."""

from __future__ import annotations

import sys
import threading

from sentry.kernel.kernel import Kernel, LiveTable


def test_views_survive_concurrent_forks_and_exits() -> None:
    table = LiveTable((i, i) for i in range(1000))
    stop = threading.Event()

    def churn() -> None:
        i = 1000
        while not stop.is_set():
            table[i] = i
            table.pop(i - 1000, None)
            i += 1

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as CPython allows
    worker = threading.Thread(target=churn)
    worker.start()
    try:
        for _ in range(2000):  # a plain dict raised within the first few hundred
            assert sum(1 for v in table.values() if v >= 0) >= 999
            assert not any(k < 0 for k in table)
            assert all(k == v for k, v in table.items())
    finally:
        stop.set()
        worker.join()
        sys.setswitchinterval(old)


def test_the_kernel_uses_it() -> None:
    k = Kernel(dispatch=[], syscall_name=str)
    assert isinstance(k.tasks, LiveTable) and isinstance(k.thread_groups, LiveTable)
