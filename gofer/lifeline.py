"""The Gofer dies with its Sentry, and takes the Sentry's channel names along.

Why not PR_SET_PDEATHSIG=SIGKILL, as the stubs have: the Sentry makes the
channel's /dev/shm objects (shm/channel.py) and they are unlinked only once
both ends have them open (:func:`gofer.server.serve`, right after it opens
them).  A Sentry killed before that (the OOM killer under a small memory
limit, a kill -9 during start-up) runs no clean-up, and a Gofer SIGKILLed with
it could not either: the names stayed in /dev/shm for good.  So the parent's
death sends SIGTERM, and the handler removes what the dead Sentry made (every
name carrying its tag, its pid as the host sees it:
shm.segment.unlink_created_by) before the Gofer exits.
The Sentry is a zombie until its parent reaps it, so no live process owns
names with that pid.

Once confined the Gofer cannot see /dev/shm, and has nothing left there
anyway (it unlinked the names before confining): the handler just exits.
The handler runs in Python, between bytecodes: a Gofer blocked in a system
call gets EINTR (Python's handlers are installed without SA_RESTART) and
runs it then.
"""

from __future__ import annotations

import ctypes
import os
import signal

from shm.layout import inherited_creator_tag
from shm.segment import unlink_created_by

_PR_SET_PDEATHSIG = 1
_parent = 0
_parent_tag = ""  # the tag the parent's channel names carry (shm/layout.py)
_confined = False


def _parent_died(_signum: int, _frame: object) -> None:
    """Runs wherever the main thread was (even mid-import): import nothing,
    and whatever happens, exit."""
    try:
        if not _confined and _parent > 0:
            unlink_created_by(_parent_tag)
    finally:
        os._exit(0)


def die_with(parent: int, tag: str | None = None) -> None:
    """From now on, ``parent``'s death ends this process (and removes its
    channel names, which carry ``tag``); call it first thing in the Gofer's
    process."""
    global _parent, _parent_tag
    _parent = parent
    # A forked Gofer inherited its Sentry's tag (a host pid, not the
    # Sentry's pid in its namespace); an exec'd one reads it from the
    # channel's name.
    _parent_tag = tag or inherited_creator_tag() or str(parent)
    signal.signal(signal.SIGTERM, _parent_died)
    ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent:  # it died before the prctl took effect
        _parent_died(signal.SIGTERM, None)


def confined() -> None:
    """The Gofer no longer sees the host's /dev/shm: the handler only exits."""
    global _confined
    _confined = True

