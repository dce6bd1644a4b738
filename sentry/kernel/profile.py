"""A syscall profile of a running sandbox: per-syscall counts, errors and a
latency histogram, the processes that make the most calls, and CPU time spent
in the Sentry against time spent in the application.

Why by wrapping the dispatch table's entries instead of timing in the task
loop: the loop is the hot path and pays nothing while no profile runs; a
profile replaces each handler by a timing wrapper in place (the loop indexes
the table on every call, so a running sandbox picks the wrappers up at its
next syscall) and puts the originals back when it stops. ``runsc.py do
--profile`` profiles a whole run; ``runsc.py debug --profile ID`` profiles a
running container for a while (sentry/oci/sentry_ops.py).

The latency of a call is the Sentry's wall time in its handler, so a call that
blocks (read on an empty pipe, wait4, nanosleep) counts its wait: the table
says so, and the CPU figures beside it come from the kernel's accounting.

``PYVISOR_SENTRY_CPROFILE=N`` (a debugging aid for `do --profile`) also runs
every handler under cProfile, one profiler per Sentry thread, and prints the
N most expensive functions (by own time) to stderr with the profile: where a
syscall's time goes inside the Sentry. cProfile and pstats are imported when
this module is, since a confined Sentry may not open files.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sentry.kernel.errors import SyscallError

if TYPE_CHECKING:
    from sentry.kernel.kernel import Kernel
    from sentry.kernel.task import Task

CPROFILE_TOP = int(os.environ.get("PYVISOR_SENTRY_CPROFILE", "0") or 0)
if CPROFILE_TOP:
    import cProfile
    import io
    import pstats

Handler = Callable[["Task", tuple[int, ...]], int]

BUCKETS_NS = tuple(1000 << i for i in range(21))  # 1 µs .. ~1 s, doubling
"""Upper bounds of the latency histogram's buckets; one more counts the rest."""


class _Calls:
    """What one syscall number did while profiled."""

    __slots__ = ("count", "errors", "total_ns", "max_ns", "buckets")

    def __init__(self) -> None:
        self.count = self.errors = self.total_ns = self.max_ns = 0
        self.buckets = [0] * (len(BUCKETS_NS) + 1)

    def add(self, ns: int, failed: bool) -> None:
        self.count += 1
        self.errors += failed
        self.total_ns += ns
        if ns > self.max_ns:
            self.max_ns = ns
        i = 0
        while i < len(BUCKETS_NS) and ns > BUCKETS_NS[i]:
            i += 1
        self.buckets[i] += 1


class SyscallProfile:
    """Counts kept while installed in one kernel's dispatch table."""

    def __init__(self, kernel: Kernel, name_of: Callable[[int], str]) -> None:
        self.kernel = kernel
        self.name_of = name_of
        self.lock = threading.Lock()
        self.calls: dict[int, _Calls] = {}
        self.callers: Counter[tuple[int, str]] = Counter()
        self._originals: dict[int, Handler] = {}
        self._start_ns = 0
        self._start_usage: tuple[int, int] = (0, 0)
        self._cprofiles: dict[int, Any] = {}  # thread id -> cProfile.Profile

    # -- installing ------------------------------------------------------------
    def start(self) -> None:
        """Wrap every handler of the kernel's table (idempotent)."""
        dispatch = self.kernel.dispatch
        self._start_ns = time.monotonic_ns()
        u = self.kernel.usage()
        self._start_usage = (u.user_ns, u.kernel_ns)
        for nr, handler in enumerate(dispatch):
            if handler is not None and nr not in self._originals:
                self._originals[nr] = handler
                dispatch[nr] = self._wrap(nr, handler)

    def stop(self) -> None:
        """Put the original handlers back."""
        dispatch = self.kernel.dispatch
        for nr, handler in self._originals.items():
            dispatch[nr] = handler
        self._originals.clear()

    def _wrap(self, nr: int, handler: Handler) -> Handler:
        if CPROFILE_TOP:
            handler = self._under_cprofile(handler)

        def timed(task: Task, args: tuple[int, ...]) -> int:
            t0 = time.perf_counter_ns()
            failed = True
            try:
                ret = handler(task, args)
                failed = ret < 0
                return ret
            except SyscallError:
                raise
            except BaseException:  # exit, exec, a park: not an errno
                failed = False
                raise
            finally:
                ns = time.perf_counter_ns() - t0
                with self.lock:
                    calls = self.calls.get(nr)
                    if calls is None:
                        calls = self.calls[nr] = _Calls()
                    calls.add(ns, failed)
                    self.callers[task.tg.tgid, _comm(task)] += 1

        return timed

    def _under_cprofile(self, handler: Handler) -> Handler:
        """``handler`` run under this thread's cProfile profiler."""
        def profiled(task: Task, args: tuple[int, ...]) -> int:
            me = threading.get_ident()
            prof = self._cprofiles.get(me)
            if prof is None:
                prof = self._cprofiles[me] = cProfile.Profile()
            return prof.runcall(handler, task, args)

        return profiled

    def print_cprofile(self) -> None:
        """The cProfile figures of every Sentry thread, merged, to stderr."""
        profs = list(self._cprofiles.values())
        if not CPROFILE_TOP or not profs:
            return
        out = io.StringIO()
        stats = pstats.Stats(profs[0], stream=out)
        for p in profs[1:]:
            stats.add(p)
        stats.sort_stats("tottime").print_stats(CPROFILE_TOP)
        sys.stderr.write(out.getvalue())

    # -- reporting -------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """The profile so far, as plain data (msgpack and JSON both carry it)."""
        u = self.kernel.usage()
        with self.lock:
            rows = [
                {"name": self.name_of(nr), "nr": nr, "count": c.count, "errors": c.errors,
                 "total_ns": c.total_ns, "max_ns": c.max_ns,
                 "mean_ns": c.total_ns // c.count if c.count else 0,
                 "histogram": [[BUCKETS_NS[i] if i < len(BUCKETS_NS) else None, n]
                               for i, n in enumerate(c.buckets) if n]}
                for nr, c in self.calls.items()
            ]
            # sorted, not most_common: that imports heapq, and the Sentry
            # may not open files once it is confined.
            top = sorted(self.callers.items(), key=lambda kv: -kv[1])[:10]
            callers = [{"pid": pid, "comm": comm, "count": n} for (pid, comm), n in top]
        rows.sort(key=lambda r: (-r["count"], r["name"]))
        return {
            "duration_ns": time.monotonic_ns() - self._start_ns,
            "app_cpu_ns": max(0, u.user_ns - self._start_usage[0]),
            "sentry_cpu_ns": max(0, u.kernel_ns - self._start_usage[1]),
            "handler_ns": sum(r["total_ns"] for r in rows),
            "syscalls": rows,
            "callers": callers,
        }


def _comm(task: Task) -> str:
    comm = getattr(task.tg, "comm", b"") or b""
    return comm.decode("utf-8", "replace") if isinstance(comm, bytes) else str(comm)


def _us(ns: int) -> str:
    return f"{ns / 1000:.1f}"


def format_table(snap: dict[str, Any]) -> str:
    """The profile as text: a summary line, one row per syscall, the callers."""
    lines = [
        f"profile: {snap['duration_ns'] / 1e9:.3f} s; CPU: application "
        f"{snap['app_cpu_ns'] / 1e6:.1f} ms, Sentry {snap['sentry_cpu_ns'] / 1e6:.1f} ms; "
        f"in handlers {snap['handler_ns'] / 1e6:.1f} ms (wall, blocking included)",
        f"{'syscall':<20}{'calls':>9}{'errors':>8}{'total ms':>11}{'mean us':>10}"
        f"{'max us':>10}  latency (us: calls)",
    ]
    for r in snap["syscalls"]:
        hist = " ".join(f"<={b // 1000}:{n}" if b is not None else f">1s:{n}"
                        for b, n in r["histogram"])
        lines.append(f"{r['name']:<20}{r['count']:>9}{r['errors']:>8}"
                     f"{r['total_ns'] / 1e6:>11.2f}{_us(r['mean_ns']):>10}{_us(r['max_ns']):>10}"
                     f"  {hist}")
    total = sum(r["count"] for r in snap["syscalls"])
    lines.append(f"{'total':<20}{total:>9}{sum(r['errors'] for r in snap['syscalls']):>8}")
    if snap["callers"]:
        lines.append("top callers: " + ", ".join(
            f"{c['pid']} ({c['comm']}): {c['count']}" for c in snap["callers"]))
    return "\n".join(lines) + "\n"
