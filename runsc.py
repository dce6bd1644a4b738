#!/usr/bin/env python3
"""runsc.py: pyvisor's command line, after gVisor's runsc.

`do` runs a host program in a new sandbox; `help syscalls` prints the syscall
compatibility table.  Errors are one line on stderr, never a traceback.
"""

from __future__ import annotations

import logging
import os
import sys

import click

log = logging.getLogger("pyvisor")


def _fail(message: str, code: int = 1) -> None:
    click.echo(f"runsc.py: {message}", err=True)
    sys.exit(code)


def _setup_logging(debug: bool, debug_log: str | None, strace: bool) -> None:
    if not (debug or strace):
        log.addHandler(logging.NullHandler())
        log.propagate = False
        return
    try:
        handler: logging.Handler = (
            logging.FileHandler(debug_log) if debug_log else logging.StreamHandler(sys.stderr)
        )
    except OSError as exc:
        _fail(f"cannot open debug log {debug_log}: {exc.strerror}")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname).1s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.DEBUG if debug else logging.INFO)
    log.propagate = False


CAP_SYS_ADMIN = 21


def _effective_caps() -> int:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("CapEff:"):
                    return int(line.split()[1], 16)
    except OSError:
        pass
    return 0


def _check_privileges() -> None:
    """The sandbox needs root with CAP_SYS_ADMIN (namespaces, mounts for the Gofer)."""
    if os.geteuid() != 0 or not _effective_caps() & (1 << CAP_SYS_ADMIN):
        _fail("needs root with CAP_SYS_ADMIN: the sandbox creates namespaces and "
              "seccomp filters (run it as root, e.g. with sudo)")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--root", "state_root", default="/var/run/pyvisor", show_default=True,
              help="Directory for container state.")
@click.option("--debug", is_flag=True, help="Enable debug logging.")
@click.option("--debug-log", type=str, default=None, help="Write the debug log to this file.")
@click.option("--strace", is_flag=True, help="Log every syscall in strace's format.")
@click.option("--network", type=click.Choice(["none", "host", "sandbox"]), default="none",
              show_default=True)
@click.option("--platform", type=click.Choice(["systrap"]), default="systrap",
              show_default=True)
@click.option("--log", "log_path", type=str, default=None, help="Runtime log file.")
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text")
@click.pass_context
def cli(ctx: click.Context, state_root: str, debug: bool, debug_log: str | None, strace: bool,
        network: str, platform: str, log_path: str | None, log_format: str) -> None:
    """pyvisor: run untrusted programs in a Python application kernel."""
    ctx.ensure_object(dict)
    ctx.obj.update(debug=debug, debug_log=debug_log, strace=strace, root=state_root)


@cli.command("do", context_settings={"ignore_unknown_options": False})
@click.option("--debug", is_flag=True, help="Enable debug logging.")
@click.option("--debug-log", type=str, default=None, help="Write the debug log to this file.")
@click.option("--strace", is_flag=True, help="Log every syscall in strace's format.")
@click.option("--cwd", type=str, default=None, help="Working directory inside the sandbox.")
@click.option("-e", "--env", "envs", multiple=True, help="K=V to add to the environment.")
@click.option("--hostname", default="pyvisor", show_default=True)
@click.option("--root", "root_dir", default="/", show_default=True,
              help="Directory served (read-only, under an in-memory overlay) as the root.")
@click.argument("argv", nargs=-1, required=True, type=click.UNPROCESSED)
@click.pass_context
def do_cmd(ctx: click.Context, debug: bool, debug_log: str | None, strace: bool,
           cwd: str | None, envs: tuple[str, ...], hostname: str, root_dir: str,
           argv: tuple[str, ...]) -> None:
    """Run PROGRAM [ARGS...] in a new sandbox, with stdio passed through.

    Exits with the program's status (128+N when signal N killed it).
    """
    debug = debug or ctx.obj["debug"]
    strace = strace or ctx.obj["strace"]
    _setup_logging(debug, debug_log or ctx.obj["debug_log"], strace)
    _check_privileges()
    extra: dict[str, str] = {}
    for kv in envs:
        if "=" not in kv:
            _fail(f"-e {kv}: expected K=V")
        k, v = kv.split("=", 1)
        extra[k] = v

    try:
        from sentry import sandbox
        from sentry.kernel.task import SentryBug
        from sentry.systrap.stubs import StubDied, StubError
    except ImportError as exc:
        _fail(str(exc))

    if not os.path.isdir(root_dir):
        _fail(f"--root {root_dir}: not a directory")
    if cwd is None:
        here = os.getcwd()
        real_root = os.path.realpath(root_dir)
        cwd = "/" if real_root != "/" else here
    opts = sandbox.SandboxOptions(root=root_dir, strace=strace, hostname=hostname, cwd=cwd,
                                  extra_env=extra,
                                  warn=lambda msg: click.echo(f"runsc.py: {msg}", err=True))
    try:
        code = sandbox.run(list(argv), dict(os.environ), opts)
    except sandbox.LaunchError as exc:
        _fail(str(exc), exc.status)
    except (StubError, StubDied) as exc:
        _fail(f"sandbox platform failure: {exc}", 125)
    except SentryBug as exc:
        _fail(f"internal error (Sentry bug), sandbox killed: {exc}", 125)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - never a traceback on the user's terminal
        log.debug("internal error", exc_info=True)
        _fail(f"internal error: {exc!r} (details with --debug)", 125)
    sys.stdout.flush()
    sys.exit(code)


@cli.command("help")
@click.argument("topic", required=False)
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table")
@click.pass_context
def help_cmd(ctx: click.Context, topic: str | None, fmt: str) -> None:
    """Help on a topic: `help syscalls` prints the syscall compatibility table."""
    if topic is None:
        click.echo(cli.get_help(ctx.parent or ctx))
        return
    if topic != "syscalls":
        _fail(f"no help topic {topic!r} (try: syscalls)")
    from syscalls.linux64 import build_table

    click.echo(build_table().format(fmt))


def main() -> None:
    cli(prog_name="runsc.py")


if __name__ == "__main__":
    main()
