"""`runsc.py do`, parsed and run without click.

Why a second way in: `do` is a fresh interpreter per sandbox, and click with
what it imports (inspect, dis, ast, uuid, platform) costs ~15-30 ms of the
start-up a user waits on, on this project's 2-core machines (issue 15 item
4: `do /bin/true` against gVisor's).  So the usual forms -- `do [OPTIONS]
[--] PROGRAM [ARGS...]`, global flags before `do` included -- are parsed
here from a table, as sentry/oci/shimcalls.py does for a shim's calls, and
run by :func:`run`, which runsc.py's click command for `do` calls too.

Anything the table does not cover -- ``--help``, an unknown or single-dash
long flag, a value outside a choice, an option after the program (click
would take it as its own), global ``--root`` (click says why it is wrong
there) -- is left to click: :func:`parse` returns None.  So this module has
no usage messages of its own.  tests/test_shimcalls.py checks the table
against the click definition, so the two cannot drift apart.
"""

from __future__ import annotations

import os
import sys

from sentry import clibase
from sentry.oci import shimcalls

TYPE_CHECKING = False  # typing stays unimported at run time: the path is timed
if TYPE_CHECKING:
    from typing import Any, NoReturn

FLAG = shimcalls.FLAG

# `do`'s options: name -> (key, kind), as shimcalls' tables.
OPTIONS: dict[str, tuple[str, Any]] = {
    "--debug": ("debug", FLAG),
    "--debug-log": ("debug_log", str),
    "--strace": ("strace", FLAG),
    "--cwd": ("cwd", str),
    "--hostname": ("hostname", str),
    "--network": ("do_network", ("none", "host")),
    "--kernel-release": ("kernel_release", str),
    "--root": ("root_dir", str),
    "--profile": ("profile", FLAG),
    "--profile-format": ("profile_format", ("table", "json")),
}
# Options that may be given many times: name -> key of the list.
MULTIPLE: dict[str, str] = {"-e": "envs", "--env": "envs", "-v": "volumes", "--volume": "volumes"}
DEFAULTS: dict[str, Any] = {
    "debug": False, "debug_log": None, "strace": False, "cwd": None, "hostname": "pyvisor",
    "do_network": None, "kernel_release": None, "root_dir": "/", "profile": False,
    "profile_format": "table",
}
# The global options `do` reads (the others are the OCI commands').
GLOBALS_READ = ("debug", "debug_log", "strace", "network", "kernel_release")


def parse(argv: list[str]) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """``(globals, values)`` for `do`'s usual forms (``values["argv"]``: the
    program and its arguments), else None: click parses it."""
    g = dict(shimcalls.GLOBAL_DEFAULTS)
    i = 0
    while i < len(argv) and argv[i].startswith("-"):
        if argv[i].partition("=")[0] in ("--root", "-root"):
            return None  # before `do`: click explains the mistake
        nxt = shimcalls._take(shimcalls.GLOBAL_OPTIONS, argv, i, g)
        if nxt is None:
            return None
        i = nxt
    if i >= len(argv) or argv[i] != "do":
        return None
    v: dict[str, Any] = {**DEFAULTS, "envs": [], "volumes": []}
    i += 1
    while i < len(argv) and argv[i] != "--" and argv[i].startswith("-") and argv[i] != "-":
        name, eq, inline = argv[i].partition("=")
        if name in MULTIPLE:
            if eq:
                v[MULTIPLE[name]].append(inline)
            elif i + 1 < len(argv):
                i += 1
                v[MULTIPLE[name]].append(argv[i])
            else:
                return None
            i += 1
        elif name in OPTIONS:  # exact names only: single-dash long ones go to click
            nxt = shimcalls._take(OPTIONS, argv, i, v)
            if nxt is None:
                return None
            i = nxt
        else:
            return None
    if i < len(argv) and argv[i] == "--":
        i += 1
    elif any(a.startswith("-") and a != "-" for a in argv[i + 1:]):
        return None  # click would read an option after the program as its own
    if i >= len(argv):
        return None  # no program: click's usage error
    v["argv"] = list(argv[i:])
    return {k: g[k] for k in GLOBALS_READ}, v


def check_release(release: str) -> None:
    """--kernel-release must be a release uname can report."""
    from sentry.kernel.kernel import release_error

    why = release_error(release)
    if why is not None:
        clibase.fail(f"--kernel-release {release!r}: {why}")


def do_network(global_network: str | None) -> str:
    """`do`'s network from the global --network: host stays host; sandbox
    (the OCI default) means loopback only for `do`, which has no namespace
    interface to attach a stack to."""
    return "host" if global_network == "host" else "none"


def _warn(msg: str) -> None:
    sys.stderr.write(f"runsc.py: {msg}\n")
    sys.stderr.flush()


def run(g: dict[str, Any], v: dict[str, Any]) -> NoReturn:
    """Run `do` with globals ``g`` and options ``v`` (as :func:`parse` makes
    them, or runsc.py's click command); exits with the program's status."""
    fail = clibase.fail
    debug = v["debug"] or g["debug"]
    strace = v["strace"] or g["strace"]
    clibase.setup_logging(debug, v["debug_log"] or g["debug_log"], strace)
    release = v["kernel_release"] or g["kernel_release"]
    if release is not None:
        check_release(release)
    clibase.check_privileges()
    extra: dict[str, str] = {}
    for kv in v["envs"]:
        if "=" not in kv:
            fail(f"-e {kv}: expected K=V")
        if kv.startswith("="):  # as docker run refuses it: no variable has an empty name
            fail(f"-e {kv}: invalid environment variable: the name is empty")
        k, val = kv.split("=", 1)
        extra[k] = val
    from sentry.mountspec import MountError, parse_volume

    try:
        mounts = [parse_volume(vol) for vol in v["volumes"]]
    except MountError as exc:
        fail(str(exc))

    # The Sentry's own pid namespace: this process stays outside as a relay
    # and its child, pid 1 there, goes on as the Sentry (sentry/pidns.py);
    # both in a user namespace of their own unless the network is the
    # host's (sentry/userns.py).
    from sentry import pidns, userns

    network = v["do_network"] or do_network(g["network"])
    try:
        if pidns.enabled():
            pidns.enter(user_ns=network != "host")
        elif network != "host":
            userns.enter()
    except userns.UserNamespaceError as exc:
        fail(str(exc))
    # The Gofer's fork point: still one thread, no kernel, no memory file, so the
    # child inherits nothing of the sandbox; it confines itself while this
    # process imports the kernel (gofer/prefork.py).  What both import is
    # imported first, once: the child then starts ready, and shares those pages.
    from gofer import prefork

    prefork.import_shared()
    prefork.prefork()
    try:
        from sentry import sandbox
        from sentry.kernel.task import SentryBug
        from sentry.systrap.stubs import StubDied, StubError
    except ImportError as exc:
        fail(str(exc))

    root_dir, cwd = v["root_dir"], v["cwd"]
    if not os.path.isdir(root_dir):
        fail(f"--root {root_dir}: not a directory")
    if cwd is None:
        here = os.getcwd()
        real_root = os.path.realpath(root_dir)
        cwd = "/" if real_root != "/" else here
    opts = sandbox.SandboxOptions(root=root_dir, strace=strace, hostname=v["hostname"], cwd=cwd,
                                  extra_env=extra, mounts=mounts,
                                  network=network,
                                  **({"kernel_release": release} if release else {}),
                                  ignored_signals=sandbox.inherited_ignores(), warn=_warn)
    if v["profile"]:
        opts.profile = clibase.profile_printer(v["profile_format"])
    if os.isatty(0) and os.isatty(1):
        # From a terminal: the sandbox gets a terminal of its own, bridged to
        # this one (raw here; ^C is the sandbox's foreground job's SIGINT).
        opts.console_fd = 0
        opts.console_sigterm = True
    try:
        code = sandbox.run(list(v["argv"]), dict(os.environ), opts)
    except sandbox.LaunchError as exc:
        fail(str(exc), exc.status)
    except (StubError, StubDied) as exc:
        fail(f"sandbox platform failure: {exc}", 125)
    except SentryBug as exc:
        fail(f"internal error (Sentry bug), sandbox killed: {exc}", 125)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - never a traceback on the user's terminal
        import logging

        logging.getLogger("pyvisor").debug("internal error", exc_info=True)
        fail(f"internal error: {exc!r} (details with --debug)", 125)
    sys.stdout.flush()
    sys.exit(code)


def run_if_plain_do(argv: list[str]) -> None:
    """Run ``argv`` (exiting) if it is one of `do`'s usual forms; else return."""
    parsed = parse(argv)
    if parsed is not None:
        run(*parsed)
