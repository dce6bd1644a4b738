"""The checkpoint image: one msgpack file, versioned and checksummed.

Layout of ``DIR/checkpoint.img``: a msgpack array ``[MAGIC, VERSION,
crc32(payload), payload]`` where ``payload`` is the msgpack encoding of the
kernel's state (a map of plain data: ints, bytes, str, lists, maps; never a
pickled Python object, so reading an image runs no code from it).

Why a checksum over the payload: a truncated or bit-flipped image must be
refused before anything is rebuilt from it, with one line that says so, not
restored wrong or answered with a traceback from deep inside a restore.
CRC-32 finds damage, not tampering (an image is trusted as the bundle is:
whoever may restore one runs containers as root); zlib rather than hashlib
because every Sentry imports this module, and hashlib's OpenSSL costs each
container start ~14 ms and its memory.
"""

from __future__ import annotations

import contextlib
import os
import zlib
from typing import Any

import msgpack

MAGIC = "pyvisor-checkpoint"
VERSION = 1
IMAGE_NAME = "checkpoint.img"
MAX_IMAGE = 1 << 36  # 64 GiB: larger is not an image this code wrote


# What msgpack raises for bytes that are not a well-formed object: a map
# keyed by a list or map is a TypeError (unhashable), not a ValueError.
_DECODE_ERRORS = (ValueError, TypeError, msgpack.ExtraData, msgpack.FormatError,
                  msgpack.StackError)


class ImageError(Exception):
    """The image cannot be used; the message is one line for the user."""


def image_path(directory: str) -> str:
    return os.path.join(directory, IMAGE_NAME)


def encode(state: dict[str, Any]) -> bytes:
    """The whole image file's bytes for ``state``."""
    payload = msgpack.packb(state, use_bin_type=True)
    return msgpack.packb([MAGIC, VERSION, zlib.crc32(payload), payload], use_bin_type=True)


def decode(data: bytes) -> dict[str, Any]:
    """The state in an image file's bytes; ImageError naming what is wrong."""
    try:
        outer = msgpack.unpackb(data, raw=False, strict_map_key=False)
    except _DECODE_ERRORS as exc:
        raise ImageError(f"corrupt checkpoint image ({type(exc).__name__})") from None
    if not isinstance(outer, list) or len(outer) != 4 or outer[0] != MAGIC:
        raise ImageError("not a pyvisor checkpoint image")
    version = outer[1]
    if version != VERSION:
        raise ImageError(f"checkpoint image version {version!r} is not supported "
                         f"(this runtime reads version {VERSION})")
    digest, payload = outer[2], outer[3]
    if not isinstance(payload, bytes) or zlib.crc32(payload) != digest:
        raise ImageError("corrupt checkpoint image (checksum mismatch)")
    try:
        state = msgpack.unpackb(payload, raw=False, strict_map_key=False)
    except _DECODE_ERRORS:
        raise ImageError("corrupt checkpoint image (payload)") from None
    if not isinstance(state, dict):
        raise ImageError("corrupt checkpoint image (payload is not a map)")
    return state


def read(directory: str) -> dict[str, Any]:
    """Read and check ``DIR/checkpoint.img``."""
    path = image_path(directory)
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size > MAX_IMAGE:
                raise ImageError(f"{path}: too large for a checkpoint image")
            data = f.read()
    except OSError as exc:
        raise ImageError(f"{path}: {exc.strerror or exc}") from None
    return decode(data)


def open_for_writing(directory: str) -> tuple[int, str]:
    """A new temporary file in ``directory`` for the Sentry to write (its fd
    and name); :func:`commit` renames it into place, :func:`discard` removes
    it, so a failed checkpoint leaves no image behind."""
    try:
        os.makedirs(directory, exist_ok=True)
        tmp = os.path.join(directory, f".{IMAGE_NAME}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise ImageError(f"{directory}: {exc.strerror or exc}") from None
    return fd, tmp


def commit(tmp: str, directory: str) -> None:
    os.replace(tmp, image_path(directory))


def discard(tmp: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(tmp)


def write_fd(fd: int, data: bytes) -> None:
    """Write all of ``data`` to ``fd`` (the Sentry's side: it may not open files)."""
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]
