"""`runsc.py checkpoint` and `runsc.py restore`: the CLI's side.

checkpoint: the CLI opens a temporary file in the image directory and sends
its fd with the request (the confined Sentry opens no files); the sandbox
host passes it on, the Sentry writes the image (sentry/checkpoint/save.py),
and the CLI renames it into place only when the whole image was written, so
a failed checkpoint leaves no image.  Without --leave-running the container
is killed once saved and this waits until it has stopped, as runc does.

restore: the image is read and checked first (a corrupt image or a wrong
version is refused before any container exists), then it is `run` with the
image: create (the sandbox host passes the image directory to the Sentry,
which rebuilds the processes instead of loading the init) and start.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from sentry.checkpoint import image
from sentry.oci.control import Client, ControlError
from sentry.oci.lifecycle import OciError, open_container, run

WAIT_STOPPED_S = 30.0


def checkpoint(root: str, cid: str, image_dir: str, leave_running: bool = False) -> int:
    """Save container ``cid`` to ``image_dir``; the image's size in bytes."""
    c = open_container(root, cid)
    try:
        fd, tmp = image.open_for_writing(image_dir)
    except image.ImageError as exc:
        raise OciError(f"checkpoint: {exc}") from None
    ok = False
    try:
        client = Client(c.socket_path)
        try:
            reply = client.call({"op": "checkpoint", "leave_running": leave_running},
                                timeout=180.0, fds=[fd])
        finally:
            client.close()
        os.close(fd)
        fd = -1
        image.commit(tmp, image_dir)
        ok = True
    except ControlError as exc:
        raise OciError(str(exc)) from None
    finally:
        if fd >= 0:
            os.close(fd)
        if not ok:
            image.discard(tmp)
    if not leave_running:
        _wait_stopped(c.socket_path)
    return int(reply.get("bytes") or 0)


def _wait_stopped(socket_path: str) -> None:
    try:
        client = Client(socket_path)
    except ControlError:
        return  # already gone
    try:
        client.call({"op": "wait"}, timeout=WAIT_STOPPED_S)
    except ControlError:
        pass  # the host went away with the container: stopped
    finally:
        client.close()


def restore(root: str, cid: str, bundle_dir: str, image_dir: str, *,
            host_argv: Sequence[str], pid_file: str | None = None,
            console_socket: str | None = None, detach: bool = False,
            spawn_host: Any = None) -> int:
    """Run container ``cid`` from ``bundle_dir`` with the processes saved in
    ``image_dir``; as `run`: the exit code, or 0 when detached."""
    try:
        image.read(image_dir)  # checked here: nothing is made for a bad image
    except image.ImageError as exc:
        raise OciError(f"restore: {exc}") from None
    return run(root, cid, bundle_dir, host_argv=host_argv, pid_file=pid_file,
               console_socket=console_socket, detach=detach, spawn_host=spawn_host,
               restore_image=image_dir)
