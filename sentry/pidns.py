"""The Sentry in a pid namespace of its own (`runsc.py do`).

Why: a compromised Sentry should not even see the host's processes.  runsc
starts its sandbox process in new namespaces from its first instruction;
a pid namespace can only be entered by a child, so `runsc.py do` splits in
two at its very start, while it is one thread and has made nothing: the
command's process stays in the host's pid namespace as a *relay*, and its
child, pid 1 of a new pid namespace, becomes the Sentry.  Everything the
Sentry makes after (the Gofer, the zygote, the stubs) is born in that
namespace; from inside it no host pid names anything, so kill, tgkill,
pidfd_open and wait4 by number reach only the sandbox's own processes
(docs/security.md).  As the namespace's init, the Sentry's exit kills
every process left in it.

The relay does what the caller of `runsc.py do` expects of the command's
own process: it exits as the Sentry did (the same status, or killed by the
same signal), and a signal sent to it reaches the Sentry.  Facts of Linux
it relies on (pid_namespaces(7)): an ancestor may signal a namespace's init
only with a signal that init catches (or SIGKILL/SIGSTOP), so a signal the
Sentry leaves at its default action is turned into SIGKILL for the Sentry
and the relay then dies by the signal itself, as the command would have;
a signal a terminal sends to its foreground group (si_code SI_KERNEL) has
reached the Sentry directly and is not sent twice.  The Sentry dies with
the relay (PR_SET_PDEATHSIG), so killing the command kills the sandbox.

``PYVISOR_SENTRY_PID_NS=0`` turns it off (the Sentry is then the command's
process, in the host's pid namespace).

The same unshare also makes a user namespace, identity-mapped
(sentry/userns.py), unless the Sentry keeps the host's network
(``--network=host``: binding a port below 1024 there needs
CAP_NET_BIND_SERVICE in the initial user namespace, which owns the host's
network namespace) or PYVISOR_SENTRY_USER_NS=0.  One unshare with both
flags makes the pid namespace the user namespace's, so the Sentry may
mount that namespace's /proc; the relay is in it too (it only signals and
waits for its child).
"""

from __future__ import annotations

import ctypes
import os
import signal

from sentry import userns

CLONE_NEWPID = 0x20000000
PR_SET_PDEATHSIG = 1
SI_KERNEL = 0x80

# Signals the relay passes on; SIGCHLD tells it the Sentry is gone.
FORWARDED = (signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGTERM, signal.SIGUSR1,
             signal.SIGUSR2, signal.SIGALRM, signal.SIGCONT, signal.SIGWINCH)
# What a terminal sends its whole foreground group: the Sentry has it already.
_GROUP_SIGNALS = (signal.SIGINT, signal.SIGQUIT, signal.SIGWINCH)
# Default action: ignore or continue (never turned into a SIGKILL).
_HARMLESS = (signal.SIGCONT, signal.SIGWINCH, signal.SIGCHLD)


def enabled() -> bool:
    return os.environ.get("PYVISOR_SENTRY_PID_NS", "1") != "0"


def enter(user_ns: bool = True) -> bool:
    """Make the caller's child the Sentry, in a new pid namespace: returns
    True in the child; the caller's process relays and never returns.
    False (nothing changed) when the namespace is refused (no CAP_SYS_ADMIN,
    nested too deep): the Sentry then stays in the host's pid namespace.
    ``user_ns``: in a new user namespace too, if the host allows it
    (userns.UserNamespaceError if its maps cannot be written)."""
    libc = ctypes.CDLL(None, use_errno=True)
    if not (user_ns and userns.enter(CLONE_NEWPID)) and libc.unshare(CLONE_NEWPID) != 0:
        return False
    # A signal the caller left ignored stays ignored for the relay (and,
    # inherited, for the Sentry): it must not be queued for passing on.
    watched = {s for s in FORWARDED if signal.getsignal(s) != signal.SIG_IGN}
    watched.add(signal.SIGCHLD)
    old = signal.pthread_sigmask(signal.SIG_BLOCK, watched)
    pid = os.fork()
    if pid == 0:
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
        # Its channel names carry its host pid, not 1 (shm/layout.py).
        from shm import layout

        layout.set_creator_tag()
        return True
    _relay(pid, watched)  # never returns
    raise AssertionError("unreachable")


def procfs_is_foreign() -> bool:
    """Whether /proc counts pids in another pid namespace than this
    process's (the host's procfs, seen from a Sentry in a pid namespace of
    its own): its /proc/self names another pid, or none (ENOENT)."""
    try:
        return int(os.readlink("/proc/self")) != os.getpid()
    except FileNotFoundError:
        return os.path.isdir("/proc/1")  # a procfs, of a namespace we are not in
    except (OSError, ValueError):
        return os.getpid() == 1


def _catches(pid: int, sig: int) -> bool:
    """Whether process ``pid`` has a handler for ``sig`` (SigCgt)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("SigCgt:"):
                    return bool(int(line.split()[1], 16) >> (sig - 1) & 1)
    except (OSError, ValueError):
        pass
    return False


def _relay(pid: int, watched: set[int]) -> None:
    """The command's process from now on: pass signals on to the Sentry, and
    end as it ended."""
    pidfd = os.pidfd_open(pid)
    while True:
        info = signal.sigwaitinfo(watched)
        sig = info.si_signo
        if sig == signal.SIGCHLD:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done == pid:
                _end_as(status)
            continue
        if sig in _GROUP_SIGNALS and info.si_code == SI_KERNEL:
            continue  # the terminal's: the Sentry, in the same group, has it
        if sig in _HARMLESS or _catches(pid, sig):
            try:
                signal.pidfd_send_signal(pidfd, sig)
            except ProcessLookupError:
                pass
            continue
        # Its default action would end the command: end the Sentry (which
        # init of a namespace would not do for this signal), then the relay.
        try:
            signal.pidfd_send_signal(pidfd, signal.SIGKILL)
        except ProcessLookupError:
            pass
        os.waitpid(pid, 0)
        _die_by(sig)


def _end_as(status: int) -> None:
    """Exit with the Sentry's wait status: its exit code, or its signal."""
    if os.WIFSIGNALED(status):
        _die_by(os.WTERMSIG(status))
    os._exit(os.WEXITSTATUS(status) if os.WIFEXITED(status) else 1)


def _die_by(sig: int) -> None:
    if sig != signal.SIGKILL:
        signal.signal(sig, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {sig})
    os.kill(os.getpid(), sig)
    os._exit(128 + sig)  # a signal that does not kill (SIGCONT): as a shell reports it
