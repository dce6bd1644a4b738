"""The runtime calls a container shim makes for every container -- create,
start, state, kill, delete -- and the sandbox host's own start
(sandbox-serve), parsed and run without click.

Why a second way in: every call is a fresh interpreter, and `docker run`
makes four (create, start, delete, then the shim's delete --force).  click
and what it imports cost ~15-30 ms per call on this project's 2-core
machines and `site` another ~25 (the launcher that ``install`` writes skips
it: sentry/oci/launcher.py), where runsc's Go binary starts in ~2 ms.  So the
forms runc's callers use are parsed here from a table, and the work is the
same functions the click commands would call: runsc.py's click commands for
these names call :func:`dispatch` too.

Anything the table does not cover -- ``--help``, an unknown flag, a value
outside a choice, a missing ID -- is left to click (``parse`` returns None),
which prints the usage error; so this module has no usage messages of its
own.  tests/test_shimcalls.py checks the table against the click definitions,
so the two cannot drift apart.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence

from sentry import clibase

# typing is for the type checker only, here and in the modules these calls
# import (lifecycle, state, control, cgroups): importing it costs each call
# ~2 ms, and this module's docstring says why that matters.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    Options = dict[str, tuple[str, Any]]

RUNSC = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                     "runsc.py")

FLAG = "flag"
"""An option's kind: a boolean flag (else: ``str``, ``int`` or a tuple of choices)."""

# runsc's --overlay2: where a container's root filesystem writes go.  "none"
# (the default, as runc): through the Gofer to the bundle's rootfs;
# "root:memory": an in-memory overlay, the image untouched (sentry/rootfs.py).
OVERLAY_CHOICES = ("none", "root:memory")

# runsc.py's global options (the click group's), runc's spellings.
GLOBAL_OPTIONS: Options = {
    "--root": ("state_root", str),
    "--debug": ("debug", FLAG),
    "--debug-log": ("debug_log", str),
    "--strace": ("strace", FLAG),
    "--network": ("network", ("none", "host", "sandbox")),
    "--platform": ("platform", ("systrap",)),
    "--log": ("log_path", str),
    "--log-format": ("log_format", ("text", "json")),
    "--systemd-cgroup": ("systemd_cgroup", FLAG),
    "--criu": ("criu", str),
    "--rootless": ("rootless", ("true", "false", "auto")),
    "--kernel-release": ("kernel_release", str),
    "--overlay2": ("overlay2", OVERLAY_CHOICES),
}
GLOBAL_DEFAULTS: dict[str, Any] = {
    "state_root": "/var/run/pyvisor", "debug": False, "debug_log": None, "strace": False,
    "network": "sandbox", "platform": "systrap", "log_path": None, "log_format": "text",
    "systemd_cgroup": False, "criu": None, "rootless": None, "kernel_release": None,
    "overlay2": "none",
}

# command -> (options, required arguments, optional arguments with defaults)
COMMANDS: dict[str, tuple[Options, tuple[str, ...], dict[str, Any]]] = {
    "create": ({"--bundle": ("bundle", str), "-b": ("bundle", str),
                "--pid-file": ("pid_file", str), "--console-socket": ("console_socket", str),
                "--no-pivot": ("no_pivot", FLAG), "--no-new-keyring": ("no_new_keyring", FLAG)},
               ("container_id",), {}),
    "start": ({}, ("container_id",), {}),
    "state": ({}, ("container_id",), {}),
    "kill": ({"--all": ("all_", FLAG), "-a": ("all_", FLAG)}, ("container_id",),
             {"sig": "SIGTERM"}),
    "delete": ({"--force": ("force", FLAG), "-f": ("force", FLAG)}, ("container_id",), {}),
    "sandbox-serve": ({"--bundle": ("bundle", str), "--ready-fd": ("ready_fd", int),
                       "--console-fd": ("console_fd", int),
                       "--restore-image": ("restore_image", str)}, ("container_id",), {}),
}
OPTION_DEFAULTS: dict[str, Any] = {"bundle": ".", "pid_file": None, "console_socket": None,
                                   "no_pivot": False, "no_new_keyring": False, "all_": False,
                                   "force": False, "console_fd": None, "restore_image": None}
REQUIRED_OPTIONS = {"sandbox-serve": ("bundle", "ready_fd")}


def _take(table: Options, argv: Sequence[str], i: int, out: dict[str, Any]) -> int | None:
    """Store the option at ``argv[i]`` (``--name value``, ``--name=value`` or a
    flag) in ``out``; the index after it, or None if click should judge it."""
    name, eq, inline = argv[i].partition("=")
    if name not in table and not name.startswith("--") and "-" + name in table:
        name = "-" + name  # runc's and runsc's single-dash long form (-force)
    if name not in table:
        return None
    key, kind = table[name]
    if kind == FLAG:
        if eq:
            return None
        out[key] = True
        return i + 1
    if eq:
        text = inline
    elif i + 1 < len(argv):
        i += 1
        text = argv[i]
    else:
        return None
    if isinstance(kind, tuple):
        if text not in kind:
            return None
        out[key] = text
    elif kind is int:
        try:
            out[key] = int(text)
        except ValueError:
            return None
    else:
        out[key] = text
    return i + 1


def parse(argv: Sequence[str]) -> tuple[dict[str, Any], str, dict[str, Any]] | None:
    """``(globals, command, values)`` for the forms in the tables, else None."""
    g = dict(GLOBAL_DEFAULTS)
    i = 0
    while i < len(argv) and argv[i].startswith("-"):
        nxt = _take(GLOBAL_OPTIONS, argv, i, g)
        if nxt is None:
            return None
        i = nxt
    if i >= len(argv) or argv[i] not in COMMANDS:
        return None
    command = argv[i]
    options, required, optional = COMMANDS[command]
    values = {key: OPTION_DEFAULTS.get(key) for key, _ in options.values()}
    args: list[str] = []
    i += 1
    only_args = False
    while i < len(argv):
        a = argv[i]
        if not only_args and a == "--":
            only_args = True
            i += 1
        elif not only_args and a.startswith("-") and a != "-":
            nxt = _take(options, argv, i, values)
            if nxt is None:
                return None
            i = nxt
        else:
            args.append(a)
            i += 1
    if not len(required) <= len(args) <= len(required) + len(optional):
        return None
    if any(values.get(k) is None for k in REQUIRED_OPTIONS.get(command, ())):
        return None
    values.update(zip(required, args, strict=False))
    extra = args[len(required):]
    for n, (key, default) in enumerate(optional.items()):
        values[key] = extra[n] if n < len(extra) else default
    return g, command, values


def report_failure(g: dict[str, Any], message: str, code: int = 1) -> None:
    """One line on stderr, and in --log (JSON with --log-format json): shims
    read the runtime's last error from that file, as they do with runc's.
    Then exit ``code``."""
    if g.get("log_path"):
        try:
            with open(str(g["log_path"]), "a") as f:
                if g.get("log_format") == "json":
                    import datetime
                    import json

                    now = datetime.datetime.now(datetime.UTC).isoformat()
                    f.write(json.dumps({"level": "error", "msg": message, "time": now}) + "\n")
                else:
                    f.write(f"runsc.py: {message}\n")
        except OSError:
            pass
    clibase.fail(message, code)


def host_argv(g: dict[str, Any]) -> list[str]:
    """How to start `sandbox-serve` with this invocation's global flags."""
    argv = [sys.executable, RUNSC, "--root", str(g["state_root"])]
    if g.get("debug"):
        argv.append("--debug")
    if g.get("debug_log"):
        argv += ["--debug-log", str(g["debug_log"])]
    if g.get("strace"):
        argv.append("--strace")
    if g.get("kernel_release"):
        argv += ["--kernel-release", str(g["kernel_release"])]
    if g.get("network"):
        argv += ["--network", str(g["network"])]
    if g.get("log_path"):
        argv += ["--log", str(g["log_path"]), "--log-format", str(g["log_format"])]
    if g.get("overlay2", "none") != "none":
        argv += ["--overlay2", str(g["overlay2"])]
    return argv


def spawn_host(argv: list[str], pass_fds: tuple[int, ...]) -> object:
    """Start the sandbox host (``argv``: :func:`host_argv`'s command line plus
    ``sandbox-serve ...``) by forking this process, which has the OCI modules
    loaded already, instead of exec'ing a new interpreter: that start
    (~80-170 ms) is on the critical path of every `create`.

    The child is what the exec'd host would be: a new session, fds 0-2 and
    ``pass_fds`` only (the container's lock and everything else closed:
    gofer/prefork.py forget_parent), a fresh logging set-up, its command line
    rewritten to name it (``runsc.py sandbox-serve ID ...``: tests and
    operators find hosts by it), then the same dispatch.  Forking is safe
    here because `create` has started no thread; if some caller has, exec.
    """
    import threading

    from gofer import prefork

    if threading.active_count() != 1:
        import subprocess

        return subprocess.Popen(argv, pass_fds=pass_fds, start_new_session=True)
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        code: object = 125
        try:
            code = become_host(argv, pass_fds)
        except SystemExit as exc:
            code = exc.code
        finally:
            os._exit(code if isinstance(code, int) else 1)
    return prefork.ForkedProcess(pid)


def become_host(argv: list[str], pass_fds: tuple[int, ...]) -> int:
    """In the child spawn_host forked: become the
    sandbox host that ``argv`` describes; its exit status."""
    from gofer import prefork

    os.setsid()
    prefork.forget_parent(keep=pass_fds)
    args = argv[2:]  # after the interpreter and runsc.py
    i = args.index("sandbox-serve")
    prefork.set_cmdline(["runsc.py", "sandbox-serve", args[-1], *args[:i], *args[i + 1 : -1]])
    parsed = parse(args)
    if parsed is None:
        clibase.fail(f"cannot parse the sandbox host's command line {args!r}")
        return 1
    return dispatch(*parsed)


def _sandbox_serve(g: dict[str, Any], v: dict[str, Any]) -> int:
    """The sandbox host process that `create` spawns (sentry/oci/host.py)."""
    from sentry.oci import host
    from sentry.oci.state import StateRoot

    clibase.setup_logging(bool(g["debug"]), g["debug_log"], bool(g["strace"]))
    ready_fd = int(v["ready_fd"])
    try:
        c = StateRoot(str(g["state_root"])).container(v["container_id"])
    except Exception as exc:  # noqa: BLE001 - reported to create over the ready pipe
        from sentry.oci.lifecycle import write_report

        write_report(ready_fd, {"ok": False, "error": str(exc)})
        return 1
    code = host.serve(c, v["bundle"], ready_fd, bool(g["strace"]), console_fd=v["console_fd"],
                      kernel_release=g.get("kernel_release"),
                      overlay=str(g.get("overlay2") or "none"),
                      network=str(g.get("network") or "sandbox"),
                      restore=v.get("restore_image"))
    sys.stdout.flush()
    os._exit(code)  # no atexit work: the Sentry child already cleaned up its resources


def call(g: dict[str, Any], fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``fn(state root, *args, **kwargs)`` for a sentry.oci command function;
    its OciError becomes the one-line failure (report_failure exits), ^C 130.
    The click commands in runsc.py call their functions through this too."""
    from sentry.oci.lifecycle import OciError

    try:
        return fn(str(g["state_root"]), *args, **kwargs)
    except OciError as exc:
        report_failure(g, str(exc), exc.code)
    except KeyboardInterrupt:
        sys.exit(130)
    return None


def dispatch(g: dict[str, Any], command: str, v: dict[str, Any]) -> int:
    """Run a parsed call; its exit status (a failure is reported first)."""
    if command == "sandbox-serve":
        return _sandbox_serve(g, v)
    from sentry.oci import lifecycle

    cid = v["container_id"]
    if command == "create":
        clibase.check_privileges()
    if g["debug"] or command == "create":
        # Not for the short calls without --debug: importing logging costs
        # them ~5 ms each, and their only warnings (a failing poststart or
        # poststop hook) then reach stderr through logging's last-resort
        # handler, which the shim records, as it records runc's.
        clibase.setup_logging(bool(g["debug"]), g["debug_log"], False)
    else:
        clibase.check_debug_log(g["debug_log"])
    if command == "create":
        call(g, lifecycle.create, cid, v["bundle"], host_argv=host_argv(g),
             spawn_host=spawn_host, pid_file=v["pid_file"], console_socket=v["console_socket"])
    elif command == "start":
        call(g, lifecycle.start, cid)
    elif command == "state":
        import json

        sys.stdout.write(json.dumps(call(g, lifecycle.state, cid), indent=2) + "\n")
    elif command == "kill":
        call(g, lambda root: lifecycle.kill(root, cid, lifecycle.parse_signal(v["sig"]),
                                            v["all_"]))
    elif command == "delete":
        call(g, lifecycle.delete, cid, v["force"])
    return 0


def run_if_shim_call(argv: Sequence[str]) -> None:
    """Run ``argv`` and exit if it is one of the tables' forms; else return."""
    parsed = parse(argv)
    if parsed is None:
        return
    try:
        code: object = dispatch(*parsed)
    except SystemExit as exc:
        code = exc.code
    clibase.exit_now(code)


def main(argv: Sequence[str]) -> None:
    """The launcher's entry: a shim call here, anything else through click."""
    run_if_shim_call(argv)
    import runsc

    runsc.main()
