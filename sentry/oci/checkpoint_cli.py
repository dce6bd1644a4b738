"""The click commands `runsc.py checkpoint` and `runsc.py restore` (their work
is sentry/oci/checkpoint_ops.py; docs/checkpoint.md).

runc's CRIU options that containerd and Docker pass (--work-path,
--tcp-established, --file-locks, --manage-cgroups-mode, ...) are accepted
and ignored: there is no CRIU here, and what they ask of CRIU either does not
apply or is refused by the checkpoint itself, naming the object.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import click

from sentry import clibase
from sentry.oci import shimcalls

_CRIU_FLAGS = ("tcp-established", "ext-unix-sk", "shell-job", "file-locks", "auto-dedup",
               "lazy-pages", "no-subreaper", "no-pivot", "pre-dump")
_CRIU_VALUES = ("work-path", "manage-cgroups-mode", "empty-ns", "parent-path", "status-fd",
                "page-server", "lsm-profile", "lsm-mount-context")


def _criu_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    for name in _CRIU_FLAGS:
        fn = click.option(f"--{name}", is_flag=True, hidden=True)(fn)
    for name in _CRIU_VALUES:
        fn = click.option(f"--{name}", multiple=True, hidden=True)(fn)
    return fn


def _call(ctx: click.Context, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    g = ctx.find_root().params
    clibase.setup_logging(bool(g.get("debug")), g.get("debug_log"), False)
    return shimcalls.call(g, fn, *args, **kwargs)


@click.command("checkpoint")
@click.option("--image-path", required=True, help="Directory the image is written to.")
@click.option("--leave-running", is_flag=True, help="Keep the container running afterwards.")
@_criu_options
@click.argument("container_id", metavar="ID")
@click.pass_context
def checkpoint_cmd(ctx: click.Context, image_path: str, leave_running: bool,
                   container_id: str, **_criu: Any) -> None:
    """Save a running container to --image-path (docs/checkpoint.md)."""
    from sentry.oci import checkpoint_ops

    _call(ctx, checkpoint_ops.checkpoint, container_id, image_path, leave_running)


@click.command("restore")
@click.option("--image-path", required=True, help="Directory holding the image.")
@click.option("--bundle", "-b", default=".", show_default=True,
              help="Path to the bundle directory (holding config.json).")
@click.option("--pid-file", default=None, help="Write the sandbox pid here.")
@click.option("--console-socket", default=None,
              help="Unix socket for the terminal's master (terminal only).")
@click.option("--detach", "-d", is_flag=True, help="Return once the container runs.")
@_criu_options
@click.argument("container_id", metavar="ID")
@click.pass_context
def restore_cmd(ctx: click.Context, image_path: str, bundle: str, pid_file: str | None,
                console_socket: str | None, detach: bool, container_id: str,
                **_criu: Any) -> None:
    """Run a container from a bundle with the processes of a checkpoint."""
    from sentry.oci import checkpoint_ops

    g = ctx.find_root().params
    code = _call(ctx, checkpoint_ops.restore, container_id, bundle, image_path,
                 host_argv=shimcalls.host_argv(g), pid_file=pid_file,
                 console_socket=console_socket, detach=detach,
                 spawn_host=shimcalls.spawn_host)
    sys.exit(int(code or 0))
