"""Garbage collection of AF_UNIX sockets kept alive only by messages in
flight (Linux's unix_gc, net/unix/garbage.c).

A description passed with SCM_RIGHTS holds a reference while it sits in a
receive queue. Two sockets that each hold the other in their queue (or one
that holds itself), once their descriptors are closed, keep each other's
reference count above zero for ever: plain counting never frees them, nor
whatever else their queues hold (pipes, other sockets). This finds them.

The algorithm, as Linux's (not its code):

* Scan the queues that may hold descriptions (``carriers``: every
  endpoint a message with rights was queued to, until a scan finds its
  queue without any or it is released; a listener's queue includes its
  not yet accepted connections').
* A unix socket description is a candidate when every reference to it is
  one of those in-flight copies: ``refs == in-flight count``.
* Take away the references candidates' queues hold on candidates. A
  candidate left with one is referenced from outside (an fd table, or the
  queue of a socket someone can still read): it is alive, and so is
  everything its queue holds, transitively.
* The other candidates are garbage: their queues are emptied and the
  rights in them dropped, which frees the sockets and all they held.

When it runs, as Linux's: when a unix socket is released while anything is
in flight, and after every ``TRIGGER`` sends carrying rights (so a program
that only ever makes cycles and closes them is bounded too). One collection
at a time; one that would start inside another (the purge releasing
sockets) or beside it is skipped: the running one covers it, or the next. A not yet accepted
connection's queue is found through its listener; when the listener is
gone its rights count as held from outside (never freed by mistake).
"""

from __future__ import annotations

import threading
from typing import Any

from sentry.net import consts as c
from sentry.net.endpoint import drop_rights

TRIGGER = 1024

_lock = threading.Lock()
_collecting = threading.Lock()
# Strong references: a cycle in flight is unreachable from Python's roots
# too, and Python's own collector would free its objects without releasing
# them (the pipes and sockets they hold would never see their close).
_carriers: dict[int, Any] = {}
_sends = 0
stats = {"collections": 0, "freed": 0}


def carried(ep: Any) -> None:
    """A message with rights was queued to ``ep`` (its cond held: this
    takes only the registry's lock)."""
    with _lock:
        _carriers[id(ep)] = ep


def sent_rights() -> None:
    """A sendmsg carried rights (no endpoint lock held): collect every
    TRIGGER of them."""
    global _sends
    with _lock:
        _sends += 1
        due = _sends >= TRIGGER
    if due:
        collect()


def released(ep: Any) -> None:
    """A unix socket was released (no lock held): collect if anything is in
    flight."""
    if _carriers.get(id(ep)) is ep:
        with _lock:
            _carriers.pop(id(ep), None)
    if ep.family == c.AF_UNIX and _carriers and not _collecting.locked():
        collect()


def _rights_of(ep: Any) -> list[Any]:
    """The descriptions queued to ``ep`` and, for a listener, to its
    connections not accepted yet."""
    with ep.cond:
        out = [d for seg in ep.rq for d in (seg.rights or ())]
        children = list(getattr(ep, "acceptq", ()))
    for child in children:
        with child.cond:
            out.extend(d for seg in child.rq for d in (seg.rights or ()))
    return out


def _file_of(ep: Any) -> Any:
    ref = getattr(ep, "file_ref", None)
    return ref() if ref is not None else None


def _is_unix_socket(desc: Any) -> bool:
    ep = getattr(desc, "endpoint", None)
    return ep is not None and ep.family == c.AF_UNIX and _file_of(ep) is desc


def _purge(desc: Any) -> list[Any]:
    """Empty a garbage socket's queues; the rights they held."""
    out: list[Any] = []
    ep = desc.endpoint
    with ep.cond:
        children = list(getattr(ep, "acceptq", ()))
        for seg in ep.rq:
            out.extend(seg.rights or ())
            seg.rights = None
    for child in children:
        with child.cond:
            for seg in child.rq:
                out.extend(seg.rights or ())
                seg.rights = None
    return out


def collect() -> int:
    """One collection; the number of sockets found to be garbage."""
    global _sends
    if not _collecting.acquire(blocking=False):
        return 0
    try:
        with _lock:
            carriers = list(_carriers.values())
            _sends = 0
        held: dict[int, list[Any]] = {}  # id(holder description) -> what its queues hold
        outside: list[Any] = []  # held by queues with no description to account to
        keep: list[Any] = []  # keeps every id() used below alive
        inflight: dict[int, int] = {}
        for ep in carriers:
            rights = _rights_of(ep)
            if not rights:
                with _lock:
                    _carriers.pop(id(ep), None)
                continue
            owner = _file_of(ep)
            if owner is None or ep.closed:
                outside.extend(rights)
            else:
                held.setdefault(id(owner), []).extend(rights)
                keep.append(owner)
            for d in rights:
                inflight[id(d)] = inflight.get(id(d), 0) + 1
                keep.append(d)
        by_id = {id(d): d for d in keep}
        cands = {i for i, n in inflight.items()
                 if _is_unix_socket(by_id[i]) and by_id[i].refs == n}
        left = {i: by_id[i].refs for i in cands}
        for i in cands:
            for d in held.get(i, ()):
                if id(d) in left:
                    left[id(d)] -= 1
        alive = [i for i in cands if left[i] > 0]
        seen = set(alive)
        while alive:
            for d in held.get(alive.pop(), ()):
                if id(d) in cands and id(d) not in seen:
                    seen.add(id(d))
                    alive.append(id(d))
        garbage = [by_id[i] for i in cands - seen]
        doomed: list[Any] = []
        for desc in garbage:
            doomed.extend(_purge(desc))
            with _lock:
                _carriers.pop(id(desc.endpoint), None)
        stats["collections"] += 1
        stats["freed"] += len(garbage)
        # Dropping frees the garbage; the releases it causes find a
        # collection running and do not start another.
        drop_rights(doomed)
        return len(garbage)
    finally:
        _collecting.release()
