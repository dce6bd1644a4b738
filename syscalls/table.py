"""The declarative syscall table: nr -> handler, with a support level per syscall.

After gVisor's ``pkg/sentry/syscalls/linux/linux64.go``: each family module
(``syscalls/fs.py``, ``mm.py``, ...) returns a list of :class:`Entry` built with
:func:`supported`, :func:`partial`, :func:`unsupported` or :func:`error`;
``SyscallTable(entries)`` joins them, fills every other x86-64 syscall in as
unsupported, and exposes

* ``dispatch``: a plain list indexed by nr, because the hot path (DESIGN.md section 3)
  must cost one list index, not a dict lookup or an attribute walk. A ``None``
  slot means "no handler": the caller's one fallback returns -ENOSYS and reports
  the syscall once; nothing is ever passed through to the host.
* ``format()``: the same table printed as the compatibility report
  (``runsc.py help syscalls``), so the report can never drift from what runs.

A handler is ``(task, args) -> int``: ``args`` is the tuple of the six raw argument
registers (unsigned 64-bit), the return value goes to rax; failures raise
``SyscallError(errno)`` and the dispatcher turns that into -errno in one place.
"""

from __future__ import annotations

import errno as _errno
import io
import json
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Literal

from sentry.kernel.errors import SyscallError
from shm.records import record
from syscalls.numbers import MAX_SYSCALL, NAMES, NUMBERS

# The task type lives in sentry.kernel; handlers take it opaquely here so that
# this module stays importable without the kernel (and the layers stay one-way).
Handler = Callable[[Any, tuple[int, ...]], int]
Support = Literal["supported", "partial", "unsupported"]

SUPPORT_LEVELS: tuple[Support, ...] = ("supported", "partial", "unsupported")
FORMATS = ("table", "csv", "json")


@record(frozen=True, slots=True)
class Entry:
    """One syscall: its number, name, handler (None: ENOSYS fallback), support, note."""

    nr: int
    name: str
    handler: Handler | None
    support: Support
    note: str = ""

    def __post_init__(self) -> None:
        if self.support not in SUPPORT_LEVELS:
            raise ValueError(f"{self.name}: unknown support level {self.support!r}")
        if self.support != "unsupported" and self.handler is None:
            raise ValueError(f"{self.name}: a {self.support} syscall needs a handler")
        if self.handler is not None and not callable(self.handler):
            raise ValueError(f"{self.name}: handler {self.handler!r} is not callable")


def _nr(name: str) -> int:
    """Look a name up now, so a typo in a family module fails at import, not at run."""
    try:
        return NUMBERS[name]
    except KeyError:
        raise ValueError(f"unknown x86-64 syscall name {name!r}") from None


def supported(name: str, handler: Handler, note: str = "") -> Entry:
    """A syscall implemented with Linux semantics."""
    return Entry(_nr(name), name, handler, "supported", note)


def partial(name: str, handler: Handler, note: str) -> Entry:
    """A syscall implemented in part; the note says what is missing (it is required)."""
    if not note:
        raise ValueError(f"{name}: a partial entry must say what is missing")
    return Entry(_nr(name), name, handler, "partial", note)


def unsupported(name: str, note: str = "") -> Entry:
    """A syscall left out on purpose: no handler, so the fallback returns ENOSYS."""
    return Entry(_nr(name), name, None, "unsupported", note)


def error(name: str, err: int, note: str = "", support: Support = "unsupported") -> Entry:
    """A syscall that always fails with ``err`` (e.g. rseq -> ENOSYS, so glibc falls back).

    Unlike :func:`unsupported` it has a handler, so it is a deliberate answer and is
    not reported as a missing syscall. The errno is appended to the note, as gVisor's
    ``syscalls.Error`` does, so the report says what the application sees.
    """
    errname = _errno.errorcode.get(err)
    if errname is None or err <= 0:
        raise ValueError(f"{name}: {err!r} is not an errno")
    exc = SyscallError(err)

    def handler(task: Any, args: tuple[int, ...]) -> int:
        raise exc

    handler.__name__ = f"{name}_{errname.lower()}"
    handler.__doc__ = f"Linux {name}(2): always fails with {errname} here."
    full = f"{note}; returns {errname}" if note else f"Returns {errname}"
    return Entry(_nr(name), name, handler, support, full)


class SyscallTable:
    """Every x86-64 syscall with its entry, plus the dispatch list for the hot path."""

    __slots__ = ("_entries", "dispatch")

    def __init__(self, entries: Iterable[Entry]) -> None:
        table: dict[int, Entry] = {}
        for e in entries:
            if NAMES.get(e.nr) != e.name:
                raise ValueError(f"unknown syscall {e.name!r} (nr {e.nr})")
            if e.nr in table:
                raise ValueError(f"duplicate entry for syscall {e.name!r}")
            table[e.nr] = e
        for nr, name in NAMES.items():
            table.setdefault(nr, Entry(nr, name, None, "unsupported"))
        self._entries: dict[int, Entry] = dict(sorted(table.items()))
        self.dispatch: list[Handler | None] = [None] * MAX_SYSCALL
        for nr, e in self._entries.items():
            self.dispatch[nr] = e.handler

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[Entry]:
        """Entries sorted by number."""
        return iter(self._entries.values())

    def entry(self, nr: int) -> Entry | None:
        """The entry for ``nr``, or None for a number Linux x86-64 does not define."""
        return self._entries.get(nr)

    def name(self, nr: int) -> str:
        """The syscall's name, or ``syscall_NNN`` for an unknown number (for logs)."""
        e = self._entries.get(nr)
        return e.name if e is not None else f"syscall_{nr}"

    def counts(self) -> dict[str, int]:
        """How many syscalls sit at each support level (all levels present)."""
        c = Counter(e.support for e in self._entries.values())
        return {level: c[level] for level in SUPPORT_LEVELS}

    def summary(self) -> str:
        """One line: total and count per support level."""
        c = self.counts()
        parts = ", ".join(f"{c[level]} {level}" for level in SUPPORT_LEVELS)
        return f"{len(self)} syscalls: {parts}"

    def format(self, fmt: str = "table") -> str:
        """The compatibility report, like ``runsc help syscalls``, sorted by number.

        ``table`` is for people (aligned columns and a summary line); ``csv`` (with a
        header row) and ``json`` (a list of objects) are for tools, so they carry the
        rows only. Columns: number, name, support, note.
        """
        rows = [(e.nr, e.name, e.support, e.note) for e in self._entries.values()]
        if fmt == "json":
            keys = ("number", "name", "support", "note")
            return json.dumps([dict(zip(keys, r, strict=True)) for r in rows], indent=1)
        if fmt == "csv":
            out = io.StringIO()
            import csv  # only `help syscalls --format csv` needs it

            w = csv.writer(out, lineterminator="\n")
            w.writerow(("number", "name", "support", "note"))
            w.writerows(rows)
            return out.getvalue()
        if fmt == "table":
            width = max(len(r[1]) for r in rows)
            lines = [f"{'NR':>3}  {'NAME':<{width}}  {'SUPPORT':<11}  NOTE"]
            lines += [f"{n:>3}  {m:<{width}}  {s:<11}  {t}".rstrip() for n, m, s, t in rows]
            lines.append(self.summary())
            return "\n".join(lines) + "\n"
        raise ValueError(f"unknown format {fmt!r} (expected one of {', '.join(FORMATS)})")
