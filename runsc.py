#!/usr/bin/env python3
"""runsc.py: pyvisor's command line, after gVisor's runsc.

`do` runs a host program in a new sandbox; `help syscalls` prints the syscall
compatibility table.  Errors are one line on stderr, never a traceback.
"""

from __future__ import annotations

import os
import sys

if __name__ == "__main__":  # the calls shims make run without click (shimcalls.py)
    from sentry.oci import shimcalls

    shimcalls.run_if_shim_call(sys.argv[1:])  # returns only for other command lines

import click  # noqa: E402 - after the click-free path above, which must not pay for it

from sentry import clibase  # noqa: E402
from sentry.oci import checkpoint_cli, shimcalls  # noqa: E402

_fail = clibase.fail
_setup_logging = clibase.setup_logging
_check_privileges = clibase.check_privileges


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--root", "state_root", default="/var/run/pyvisor", show_default=True,
              help="Directory for container state.")
@click.option("--debug", is_flag=True, help="Enable debug logging.")
@click.option("--debug-log", type=str, default=None, help="Write the debug log to this file.")
@click.option("--strace", is_flag=True, help="Log every syscall in strace's format.")
@click.option("--network", type=click.Choice(["none", "host", "sandbox"]), default="sandbox",
              show_default=True,
              help="OCI containers' network: sandbox (a user-space TCP/IP stack on the "
                   "namespace's interface, as runsc), none (loopback only), or host (host "
                   "sockets: faster, weaker). `do` takes none or host (default none).")
@click.option("--platform", type=click.Choice(["systrap"]), default="systrap",
              show_default=True)
@click.option("--log", "log_path", type=str, default=None, help="Runtime log file.")
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text")
@click.option("--kernel-release", default=None, metavar="RELEASE",
              help="What uname reports as the kernel release (default 6.1.0).")
@click.option("--overlay2", type=click.Choice(shimcalls.OVERLAY_CHOICES), default="none",
              show_default=True, help="Where a container's root filesystem writes go: "
              "through to the bundle's rootfs (none, as runc) or an in-memory overlay "
              "(root:memory).")
# runc's global flags that containerd's go-runc, Docker and podman pass: accepted
# and ignored (the sandbox makes no host cgroups, has no checkpointing, and
# always runs as root), so a systemd-cgroup host does not break every command.
@click.option("--systemd-cgroup", is_flag=True, hidden=True)
@click.option("--criu", type=str, default=None, hidden=True)
@click.option("--rootless", type=click.Choice(["true", "false", "auto"]), default=None,
              hidden=True)
@click.version_option("0.1.0", prog_name="runsc.py",
                      message="%(prog)s version %(version)s\nspec: 1.1.0")
@click.pass_context
def cli(ctx: click.Context, state_root: str, debug: bool, debug_log: str | None, strace: bool,
        network: str, platform: str, log_path: str | None, log_format: str, overlay2: str,
        kernel_release: str | None, **runc_compat: object) -> None:
    """pyvisor: run untrusted programs in a Python application kernel."""
    global _invoked
    _invoked = ctx.invoked_subcommand
    if _invoked == "do" and _given(ctx, "state_root"):
        _fail(f"--root {state_root} before 'do' is the OCI commands' state directory, "
              "which 'do' does not use; for the sandbox's root file system put it "
              f"after: runsc.py do --root {state_root} -- PROGRAM")
    ctx.ensure_object(dict)
    if kernel_release is not None:
        _check_release(kernel_release)
    ctx.obj.update(debug=debug, debug_log=debug_log, strace=strace, root=state_root,
                   network=network, kernel_release=kernel_release)


def _check_release(release: str) -> None:
    from sentry.kernel.kernel import release_error

    why = release_error(release)
    if why is not None:
        _fail(f"--kernel-release {release!r}: {why}")


def _do_network(global_network: str | None) -> str:
    """`do`'s network from the global --network: host stays host; sandbox
    (the OCI default) means loopback only for `do`, which has no namespace
    interface to attach a stack to."""
    return "host" if global_network == "host" else "none"


def _given(ctx: click.Context, name: str) -> bool:
    """Whether option ``name`` was on the command line (not its default)."""
    return ctx.get_parameter_source(name) is click.core.ParameterSource.COMMANDLINE


@cli.command("do", context_settings={"ignore_unknown_options": False})
@click.option("--debug", is_flag=True, help="Enable debug logging.")
@click.option("--debug-log", type=str, default=None, help="Write the debug log to this file.")
@click.option("--strace", is_flag=True, help="Log every syscall in strace's format.")
@click.option("--cwd", type=str, default=None, help="Working directory inside the sandbox.")
@click.option("-e", "--env", "envs", multiple=True, help="K=V to add to the environment.")
@click.option("--hostname", default="pyvisor", show_default=True)
@click.option("--network", "do_network", type=click.Choice(["none", "host"]), default=None,
              help="none (default): loopback only, in the Sentry; host: the program's "
                   "inet sockets are host sockets (faster, weaker).")
@click.option("--kernel-release", default=None, metavar="RELEASE",
              help="What uname reports as the kernel release (default 6.1.0).")
@click.option("--root", "root_dir", default="/", show_default=True,
              help="Directory served (read-only, under an in-memory overlay) as the root.")
@click.option("-v", "--volume", "volumes", multiple=True, metavar="HOST:DEST[:ro]",
              help="Bind-mount host file or directory HOST at DEST (writable unless :ro).")
@click.option("--profile", is_flag=True,
              help="At exit, print a syscall profile (counts, latency, callers) to stderr.")
@click.option("--profile-format", type=click.Choice(["table", "json"]), default="table",
              show_default=True)
@click.argument("argv", nargs=-1, required=True, type=click.UNPROCESSED)
@click.pass_context
def do_cmd(ctx: click.Context, debug: bool, debug_log: str | None, strace: bool,
           cwd: str | None, envs: tuple[str, ...], hostname: str, do_network: str | None,
           kernel_release: str | None, root_dir: str, volumes: tuple[str, ...], profile: bool,
           profile_format: str, argv: tuple[str, ...]) -> None:
    """Run PROGRAM [ARGS...] in a new sandbox, with stdio passed through.

    Exits with the program's status (128+N when signal N killed it).
    """
    debug = debug or ctx.obj["debug"]
    strace = strace or ctx.obj["strace"]
    _setup_logging(debug, debug_log or ctx.obj["debug_log"], strace)
    release = kernel_release or ctx.obj.get("kernel_release")
    if release is not None:
        _check_release(release)
    _check_privileges()
    extra: dict[str, str] = {}
    for kv in envs:
        if "=" not in kv:
            _fail(f"-e {kv}: expected K=V")
        if kv.startswith("="):  # as docker run refuses it: no variable has an empty name
            _fail(f"-e {kv}: invalid environment variable: the name is empty")
        k, v = kv.split("=", 1)
        extra[k] = v
    from sentry.mountspec import MountError, parse_volume

    try:
        mounts = [parse_volume(v) for v in volumes]
    except MountError as exc:
        _fail(str(exc))

    # The Sentry's own pid namespace: this process stays outside as a relay
    # and its child, pid 1 there, goes on as the Sentry (sentry/pidns.py).
    from sentry import pidns

    if pidns.enabled():
        pidns.enter()
    # The Gofer's fork point: still one thread, no kernel, no memory file, so the
    # child inherits nothing of the sandbox; it imports and confines itself
    # while this process imports the kernel (gofer/prefork.py).
    from gofer import prefork
    prefork.prefork()
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
                                  extra_env=extra, mounts=mounts,
                                  network=do_network or _do_network(ctx.obj.get("network")),
                                  **({"kernel_release": release} if release else {}),
                                  ignored_signals=sandbox.inherited_ignores(),
                                  warn=lambda msg: click.echo(f"runsc.py: {msg}", err=True))
    if profile:
        opts.profile = clibase.profile_printer(profile_format)
    if os.isatty(0) and os.isatty(1):
        # From a terminal: the sandbox gets a terminal of its own, bridged to
        # this one (raw here; ^C is the sandbox's foreground job's SIGINT).
        opts.console_fd = 0
        opts.console_sigterm = True
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
        import logging

        logging.getLogger("pyvisor").debug("internal error", exc_info=True)
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


# -- OCI runtime commands (runc's CLI conventions) ----------------------------


def _globals(ctx: click.Context) -> dict[str, object]:
    """The global options as given (the group callback keeps only some in obj)."""
    return ctx.find_root().params


def _oci_fail(ctx: click.Context, message: str, code: int = 1) -> None:
    shimcalls.report_failure(_globals(ctx), message, code)


def _host_argv(ctx: click.Context) -> list[str]:
    return shimcalls.host_argv(_globals(ctx))


def _oci(ctx: click.Context, fn: object, *args: object, **kwargs: object) -> object:
    """Call a sentry.oci function; its OciError is the one-line error (shimcalls.call)."""
    g = _globals(ctx)
    _setup_logging(bool(g.get("debug")), g.get("debug_log"), False)  # type: ignore[arg-type]
    return shimcalls.call(g, fn, *args, **kwargs)  # type: ignore[arg-type]


_ID = click.argument("container_id", metavar="ID")
_BUNDLE = click.option("--bundle", "-b", default=".", show_default=True,
                       help="Path to the bundle directory (holding config.json).")
_PID_FILE = click.option("--pid-file", default=None, help="Write the sandbox pid here.")
_CONSOLE = click.option("--console-socket", default=None,
                        help="Unix socket for the terminal's master (terminal only).")


@cli.command("create")
@_BUNDLE
@_PID_FILE
@_CONSOLE
@click.option("--no-pivot", is_flag=True, hidden=True)
@click.option("--no-new-keyring", is_flag=True, hidden=True)
@_ID
@click.pass_context
def create_cmd(ctx: click.Context, **params: object) -> None:
    """Create a container from a bundle; its init waits for `start`.

    The sandbox process inherits this command's stdin, stdout and stderr.
    """
    sys.exit(shimcalls.dispatch(_globals(ctx), "create", params))


@cli.command("start")
@_ID
@click.pass_context
def start_cmd(ctx: click.Context, **params: object) -> None:
    """Start a created container's init."""
    sys.exit(shimcalls.dispatch(_globals(ctx), "start", params))


@cli.command("state")
@_ID
@click.pass_context
def state_cmd(ctx: click.Context, **params: object) -> None:
    """Print a container's OCI state as JSON."""
    sys.exit(shimcalls.dispatch(_globals(ctx), "state", params))


@cli.command("kill")
@click.option("--all", "-a", "all_", is_flag=True, help="Signal every process.")
@_ID
@click.argument("sig", metavar="[SIGNAL]", default="SIGTERM")
@click.pass_context
def kill_cmd(ctx: click.Context, **params: object) -> None:
    """Send SIGNAL (name or number, default SIGTERM) to the container's init."""
    sys.exit(shimcalls.dispatch(_globals(ctx), "kill", params))


@cli.command("delete")
@click.option("--force", "-f", is_flag=True, help="Kill a running container first.")
@_ID
@click.pass_context
def delete_cmd(ctx: click.Context, **params: object) -> None:
    """Delete a stopped (or created) container and its state."""
    sys.exit(shimcalls.dispatch(_globals(ctx), "delete", params))


@cli.command("run")
@_BUNDLE
@_PID_FILE
@_CONSOLE
@click.option("--detach", "-d", is_flag=True, help="Return once the container started.")
@click.option("--no-pivot", is_flag=True, hidden=True)
@click.option("--no-new-keyring", is_flag=True, hidden=True)
@_ID
@click.pass_context
def run_cmd(ctx: click.Context, bundle: str, pid_file: str | None, console_socket: str | None,
            detach: bool, no_pivot: bool, no_new_keyring: bool, container_id: str) -> None:
    """Create and start a container; unless --detach, wait and exit with its status."""
    from sentry.oci import lifecycle

    _check_privileges()
    code = _oci(ctx, lifecycle.run, container_id, bundle, host_argv=_host_argv(ctx),
                spawn_host=shimcalls.spawn_host,
                pid_file=pid_file, console_socket=console_socket, detach=detach)
    sys.stdout.flush()
    sys.exit(int(code or 0))  # type: ignore[call-overload]


@cli.command("wait")
@_ID
@click.pass_context
def wait_cmd(ctx: click.Context, container_id: str) -> None:
    """Wait for the container's init to exit; print {"id", "exitStatus"}."""
    import json

    from sentry.oci import lifecycle

    code = _oci(ctx, lifecycle.wait, container_id)
    click.echo(json.dumps({"id": container_id, "exitStatus": code}))


@cli.command("list")
@click.option("--format", "-f", "fmt", type=click.Choice(["table", "json"]), default="table")
@click.option("--quiet", "-q", is_flag=True, help="Print only the ids.")
@click.pass_context
def list_cmd(ctx: click.Context, fmt: str, quiet: bool) -> None:
    """List the containers under --root."""
    import json

    from sentry.oci import inspection

    rows: list[dict[str, object]] = _oci(ctx, inspection.list_containers) or []  # type: ignore[assignment]
    if quiet:
        for r in rows:
            click.echo(r["id"])
    elif fmt == "json":
        click.echo(json.dumps(rows))
    else:
        table = [("ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER")]
        table += [(str(r.get("id")), str(r.get("pid", 0)), str(r.get("status")),
                   str(r.get("bundle", "")), str(r.get("created", "")), str(r.get("owner", "")))
                  for r in rows]
        widths = [max(len(row[i]) for row in table) for i in range(5)]
        for row in table:
            click.echo("   ".join(c.ljust(w) for c, w in zip(row, widths, strict=False))
                       + "   " + row[5])


@cli.command("ps")
@click.option("--format", "-f", "fmt", type=click.Choice(["table", "json"]), default="table")
@_ID
@click.pass_context
def ps_cmd(ctx: click.Context, fmt: str, container_id: str) -> None:
    """List the container's processes: as the sandbox sees them (table), or the
    host pids that make it up (json, what `docker top` asks for, as runc's)."""
    import json

    from sentry.oci import inspection

    if fmt == "json":
        click.echo(json.dumps(_oci(ctx, inspection.host_pids, container_id) or []))
        return
    procs: list[dict[str, object]] = _oci(ctx, inspection.ps, container_id) or []  # type: ignore[assignment]
    click.echo(f"{'PID':>7} {'PPID':>7} CMD")
    for p in procs:
        click.echo(f"{p.get('pid')!s:>7} {p.get('ppid')!s:>7} {p.get('cmd', '')}")


@cli.command("spec")
@_BUNDLE
@click.option("--rootless", is_flag=True, hidden=True)
@click.pass_context
def spec_cmd(ctx: click.Context, bundle: str, rootless: bool) -> None:
    """Write a template config.json (args ["sh"]) into the bundle directory."""
    import json

    from sentry.oci.bundle import CONFIG_NAME, default_spec

    path = os.path.join(bundle, CONFIG_NAME)
    if os.path.exists(path):
        _oci_fail(ctx, f"{path} exists: remove it first")
    try:
        with open(path, "x") as f:
            json.dump(default_spec(), f, indent=2)
            f.write("\n")
    except OSError as exc:
        _oci_fail(ctx, f"{path}: {exc.strerror}")


@cli.command("features")
def features_cmd() -> None:
    """Print what this runtime supports, as JSON (runtime-spec features.md)."""
    import json

    from sentry.oci.inspection import features

    click.echo(json.dumps(features(), indent=2))


@cli.command("exec", context_settings={"allow_interspersed_args": False})
@click.option("--process", "-p", "process_file", default=None,
              help="Path to an OCI process.json (overrides ARGS and the flags below).")
@click.option("--detach", "-d", is_flag=True, help="Return once the process runs.")
@_PID_FILE
@click.option("--tty", "-t", is_flag=True, help="Give the process a terminal.")
@_CONSOLE
@click.option("--cwd", default=None, help="Working directory inside the container.")
@click.option("--env", "-e", "envs", multiple=True, help="K=V to add to the environment.")
@click.option("--user", "-u", default=None, help="uid[:gid] to run as.")
@click.option("--additional-gids", "-g", "gids", multiple=True, type=int,
              help="Supplementary group (repeatable).")
@click.option("--no-new-privs", is_flag=True, help="Set no_new_privs for the process.")
@click.option("--ignore-paused", is_flag=True, help="Exec even into a paused container.")
@click.option("--process-label", hidden=True)
@click.option("--apparmor", hidden=True)
@click.option("--cap", "-c", multiple=True, hidden=True)
@click.option("--preserve-fds", type=int, default=0, hidden=True)
@click.option("--cgroup", multiple=True, hidden=True)
@_ID
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def exec_cmd(ctx: click.Context, process_file: str | None, detach: bool, pid_file: str | None,
             tty: bool, console_socket: str | None, cwd: str | None, envs: tuple[str, ...],
             user: str | None, gids: tuple[int, ...], no_new_privs: bool, ignore_paused: bool,
             container_id: str, args: tuple[str, ...], **_ignored: object) -> None:
    """Run ARGS (or --process FILE) in a running container, with this command's
    stdin, stdout and stderr; exit with its status (or 0 at once with --detach).

    --process-label, --apparmor, --cap, --preserve-fds and --cgroup are accepted
    and ignored (the sandbox has no such host-side controls).
    """
    from sentry.oci import execproc

    for kv in envs:
        if "=" not in kv or kv.startswith("="):
            _oci_fail(ctx, f"--env {kv!r}: expected K=V")
    opts = execproc.ExecOptions(
        args=args, process_file=process_file, cwd=cwd, env=envs, user=user,
        additional_gids=gids, no_new_privs=no_new_privs, tty=tty,
        console_socket=console_socket, detach=detach, pid_file=pid_file,
        ignore_paused=ignore_paused)
    code = _oci(ctx, execproc.run, container_id, opts)
    sys.stdout.flush()
    sys.exit(int(code or 0))  # type: ignore[call-overload]


cli.add_command(checkpoint_cli.checkpoint_cmd)
cli.add_command(checkpoint_cli.restore_cmd)


@cli.command("debug")
@click.option("--stacks", is_flag=True, help="Each task's state, current syscall and Sentry stack.")
@click.option("--profile", is_flag=True, help="Profile the sandbox's syscalls for --duration.")
@click.option("--duration", default="5s", show_default=True, help="How long to profile.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
              show_default=True)
@_ID
@click.pass_context
def debug_cmd(ctx: click.Context, stacks: bool, profile: bool, duration: str, fmt: str,
              container_id: str) -> None:
    """Look inside a running sandbox (as runsc debug): --stacks, --profile."""
    import json

    from sentry.kernel.profile import format_table
    from sentry.oci import debug_cli

    if stacks == profile:
        _oci_fail(ctx, "debug: give exactly one of --stacks and --profile")
    if stacks:
        tasks = _oci(ctx, debug_cli.stacks, container_id) or []
        click.echo(json.dumps(tasks, indent=1) if fmt == "json"
                   else debug_cli.format_stacks(tasks), nl=False)  # type: ignore[arg-type]
        return
    snap = _oci(ctx, debug_cli.profile, container_id, duration)
    click.echo(json.dumps(snap, indent=1) if fmt == "json" else format_table(snap),  # type: ignore[arg-type]
               nl=False)


@cli.command("pause")
@_ID
@click.pass_context
def pause_cmd(ctx: click.Context, container_id: str) -> None:
    """Freeze every process of a running container."""
    from sentry.oci import inspection

    _oci(ctx, inspection.pause, container_id)


@cli.command("resume")
@_ID
@click.pass_context
def resume_cmd(ctx: click.Context, container_id: str) -> None:
    """Let a paused container's processes run again."""
    from sentry.oci import inspection

    _oci(ctx, inspection.pause, container_id, resume=True)


@cli.command("events")
@click.option("--stats", "once", is_flag=True, help="Print the stats once and exit.")
@click.option("--interval", default="5s", show_default=True,
              help="Time between stats events (5s, 500ms, 1m).")
@_ID
@click.pass_context
def events_cmd(ctx: click.Context, once: bool, interval: str, container_id: str) -> None:
    """Print resource stats as JSON lines until the container stops (runc's events)."""
    import json

    from sentry.oci import inspection, lifecycle

    try:
        seconds = inspection.parse_duration(interval)
    except lifecycle.OciError as exc:
        _oci_fail(ctx, f"--interval: {exc}")

    def emit(event: dict[str, object]) -> None:
        click.echo(json.dumps(event))
        sys.stdout.flush()

    _oci(ctx, inspection.events, container_id, emit, once=once, interval=seconds)


# -- Docker integration (gVisor's runsc install / uninstall) --------------------


_RELOAD = ("runsc.py: dockerd reads daemon.json only when it starts or reloads: "
           "reload it now (systemctl reload docker, or kill -HUP $(pidof dockerd))")


@cli.command("install", context_settings={"ignore_unknown_options": False})
@click.option("--runtime", default="pyvisor", show_default=True,
              help="Runtime name in daemon.json (not gVisor's 'runsc': both can coexist).")
@click.option("--config-file", default="/etc/docker/daemon.json", show_default=True,
              help="Docker daemon config file to edit.")
@click.argument("runtime_args", nargs=-1, type=click.UNPROCESSED, metavar="[-- FLAGS...]")
def install_cmd(runtime: str, config_file: str, runtime_args: tuple[str, ...]) -> None:
    """Register this runtime in Docker's daemon.json; FLAGS after -- become runtimeArgs.

    Other keys and runtimes are kept; dockerd must reload afterwards
    (systemctl reload docker, or kill -HUP $(pidof dockerd)).
    """
    from sentry.oci import launcher
    from sentry.oci.install import InstallError, install, runtime_path

    script = os.path.abspath(__file__)
    try:
        install(config_file, runtime, launcher.write(script) or runtime_path(script),
                runtime_args)
    except InstallError as exc:
        _fail(str(exc))
    click.echo(f"runsc.py: added runtime {runtime!r} with arguments {list(runtime_args)} "
               f"to {config_file}", err=True)
    click.echo(_RELOAD, err=True)


@cli.command("uninstall")
@click.option("--runtime", default="pyvisor", show_default=True, help="Runtime name to remove.")
@click.option("--config-file", default="/etc/docker/daemon.json", show_default=True,
              help="Docker daemon config file to edit.")
def uninstall_cmd(runtime: str, config_file: str) -> None:
    """Remove this runtime's entry from Docker's daemon.json (nothing else; a
    file left empty is removed).  dockerd must reload afterwards."""
    from sentry.oci.install import InstallError, uninstall

    try:
        removed_file = uninstall(config_file, runtime)
    except InstallError as exc:
        _fail(str(exc))
    click.echo(f"runsc.py: removed runtime {runtime!r} from {config_file}"
               + (" (nothing else was in it: file removed)" if removed_file else ""), err=True)
    click.echo(_RELOAD, err=True)


_invoked: str | None = None
"""The subcommand this process runs (set by the group callback)."""

_FAST_EXIT = frozenset({"create", "start", "state", "kill", "delete", "list", "ps",
                        "features", "spec", "pause", "resume"})
"""Commands a shim runs several times per container (Docker: create, start,
state, delete), whose work is done when click exits: they skip the
interpreter's teardown (~12 ms of CPU: module and object finalization) with
os._exit once stdio is flushed. None starts a thread or leaves anything that
needs an atexit handler; the sandbox host `create` starts is its own process."""


def main() -> None:
    shimcalls.run_if_shim_call(sys.argv[1:])
    from sentry.oci import goflags

    try:
        cli(args=goflags.normalize(cli, sys.argv[1:]), prog_name="runsc.py")
    except SystemExit as exc:
        if _invoked in _FAST_EXIT:
            clibase.exit_now(exc.code)
        raise


if __name__ == "__main__":
    main()
