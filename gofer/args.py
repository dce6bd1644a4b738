"""The Gofer's command line (``python3 -m gofer.server --root DIR --channel
NAME --sentry-pid PID [--readonly] [--attach NAME:ro|rw:PATH]... [--late-fd FD]
[--donate-fd FD] [--no-confine] [--seccomp kill|errno|log]``).

Why not argparse alone: a forked Gofer (gofer/prefork.py) imports what it
runs after the fork, into memory of its own, and argparse with gettext and
shutil is ~0.5 MB of it, charged to a container's memory limit (issue 16:
`docker run -m 32m`).  The command line the Sentry builds (gofer/client.py)
is parsed here by hand; anything else (help, an unknown, repeated or
malformed option) goes to argparse, with its usual messages and exit status.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing stays unimported here
if TYPE_CHECKING:
    from gofer.fids import AttachSpec


class Args:
    """The parsed command line (what argparse's namespace holds)."""

    def __init__(self) -> None:
        self.root: str | None = None
        self.channel: str | None = None
        self.sentry_pid: int | None = None
        self.readonly = False
        self.attach: list[str] = []
        self.confine = True
        self.seccomp = "kill"
        self.late_fd = -1
        self.donate_fd = -1


_VALUED = {"--root": "root", "--channel": "channel", "--sentry-pid": "sentry_pid",
           "--attach": "attach", "--seccomp": "seccomp", "--late-fd": "late_fd",
           "--donate-fd": "donate_fd"}


def _quick_args(argv: list[str]) -> Args | None:
    """The command line the Sentry builds (gofer/client.py), parsed without
    argparse: importing it (with gettext and shutil) is ~0.5 MB of a forked
    Gofer's private memory, charged to a container's memory limit.  None for
    anything else (help, an unknown or repeated option, a bad value): then
    argparse parses it, with its usual messages."""
    a = Args()
    seen: set[str] = set()
    it = iter(argv)
    for opt in it:
        flag = {"--readonly": "readonly", "--no-confine": "confine"}.get(opt)
        if flag is not None:
            setattr(a, flag, flag == "readonly")
            continue
        key = _VALUED.get(opt)
        value = next(it, None)
        if key is None or value is None or value.startswith("-") or (
                key in seen and key != "attach"):
            return None
        seen.add(key)
        if key == "attach":
            a.attach.append(value)
        elif key in ("sentry_pid", "late_fd", "donate_fd"):
            if not value.isdigit():
                return None
            setattr(a, key, int(value))
        elif key == "seccomp" and value not in ("kill", "errno", "log"):
            return None
        else:
            setattr(a, key, value)
    if a.root is None or a.channel is None or a.sentry_pid is None:
        return None
    return a


def attach_spec(spec: str) -> AttachSpec | None:
    """``NAME:ro|rw:PATH`` as (name, path, writable); None if malformed."""
    name, mode, path = (spec.split(":", 2) + ["", ""])[:3]
    if mode not in ("ro", "rw") or not name or not path:
        return None
    return (name, path, mode == "rw")


def parse(argv: list[str], description: str) -> Args:
    """``argv`` parsed: by hand when it is the usual line, else by argparse
    (which exits with its message on an error)."""
    args = _quick_args(argv)
    if args is None or any(attach_spec(spec) is None for spec in args.attach):
        return _parse_args(argv, description)
    return args


def _parse_args(argv: list[str], description: str) -> Args:
    """The command line through argparse, for what :func:`_quick_args` does
    not take (help, errors: it exits as argparse does)."""
    import argparse  # here: a Sentry that imports this module never needs it (~1.4 MB)

    ap = argparse.ArgumentParser(prog="gofer.server", description=description)
    ap.add_argument("--root", required=True)
    ap.add_argument("--channel", required=True)
    ap.add_argument("--sentry-pid", type=int, required=True)
    ap.add_argument("--readonly", action="store_true")
    ap.add_argument(
        "--attach",
        action="append",
        default=[],
        metavar="NAME:ro|rw:PATH",
        help="also serve PATH (a directory or a file) as aname NAME",
    )
    ap.add_argument("--late-fd", type=int, default=-1,
                    help="a socket the Sentry sends later trees on (gofer/late.py)")
    ap.add_argument("--donate-fd", type=int, default=-1,
                    help="an inherited AF_UNIX socket to donate read-only descriptors over")
    ap.add_argument("--no-confine", dest="confine", action="store_false")
    ap.add_argument(
        "--seccomp",
        choices=("kill", "errno", "log"),
        default="kill",
        help="what an unlisted syscall does (errno/log: for finding what Python needs)",
    )
    args = ap.parse_args(argv)
    for spec in args.attach:
        if attach_spec(spec) is None:
            ap.error(f"--attach {spec!r}: expected NAME:ro|rw:PATH")
    return args  # type: ignore[return-value] - the same attributes as Args
