"""Turning a path into a loaded image: #! scripts, the ELF loader, the new
address space.  Shared by the sandbox's first process and execve.

Files are read through ``read_file(path) -> bytes``, which raises
SyscallError with execve's errno (ENOENT, EACCES for a directory or a file
without the execute bit, ...).
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable

from sentry.kernel.errors import SyscallError
from sentry.loader import elf, loader
from sentry.mm.address_space import AddressSpace
from sentry.mm.arena import Arena
from sentry.mm.memfile import MemoryFile

ReadFile = Callable[[bytes], bytes]
MAX_SCRIPT_DEPTH = 4  # Linux's binfmt_script nesting limit


class ImageError(Exception):
    """execve cannot load this file: errno and a short reason."""

    def __init__(self, err: int, message: str) -> None:
        super().__init__(message)
        self.errno = err
        self.message = message


def prepare(read_file: ReadFile, path: bytes, argv: list[bytes]
            ) -> tuple[bytes, list[bytes], bytes]:
    """Follow #! lines to the ELF that will run: (image, argv, execfn)."""
    execfn = path
    try:
        data = read_file(path)
    except SyscallError as exc:
        raise ImageError(exc.errno, os.strerror(exc.errno)) from None
    for _ in range(MAX_SCRIPT_DEPTH + 1):
        try:
            script = elf.parse_shebang(data)
        except elf.ElfError as exc:
            raise ImageError(exc.errno, exc.message) from None
        if script is None:
            return data, argv, execfn
        interp, arg = script
        argv = elf.shebang_argv(interp, arg, path, argv)
        path = interp
        try:
            data = read_file(path)
        except SyscallError as exc:
            raise ImageError(exc.errno, f"#! interpreter {os.fsdecode(path)}: "
                                        f"{os.strerror(exc.errno)}") from None
    raise ImageError(errno.ELOOP, "too many levels of #! interpreters")


def load(mf: MemoryFile, image: bytes, argv: list[bytes], envp: list[bytes], execfn: bytes,
         read_file: ReadFile, creds: tuple[int, ...],
         cache: loader.ImageCacheLike | None = None, arena: Arena | None = None,
         ) -> tuple[AddressSpace, loader.LoadResult]:
    """A fresh address space holding ``image`` and its initial stack, its
    private memory in ``arena`` (the old image's, when no other process can
    map that) or a new one."""
    info = loader.host_auxv()
    mm = AddressSpace(mf, arena)
    mm.defer_frees = True  # freed pages return only after the stub has unmapped them

    def open_interp(p: bytes) -> bytes:
        return read_file(p)

    try:
        result = loader.load_elf(
            mm, image, argv=argv, envp=envp, execfn=execfn, open_interp=open_interp,
            creds=creds, hwcap=info.get(loader.AT_HWCAP, 0),
            hwcap2=info.get(loader.AT_HWCAP2, 0),
            minsigstksz=info.get(loader.AT_MINSIGSTKSZ, 2048), random16=os.urandom(16),
            image_cache=cache,
        )
    except elf.ElfError as exc:
        mm.release()
        mm.commit_frees()  # no stub has seen this address space
        raise ImageError(exc.errno, exc.message) from None
    except SyscallError as exc:
        mm.release()
        mm.commit_frees()
        raise ImageError(exc.errno, f"cannot load: {exc}") from None
    mm.saved_auxv = saved_auxv(mm, result.stack_pointer)
    return mm, result


def saved_auxv(mm: AddressSpace, sp: int) -> bytes:
    """The auxiliary vector of a new image, read from its initial stack at
    ``sp`` (argc, argv, NULL, envp, NULL, then the pairs up to AT_NULL), kept
    for /proc/PID/auxv, where debuggers find AT_ENTRY to relocate a PIE."""
    try:
        argc = int.from_bytes(mm.copy_in(sp, 8), "little")
        p = sp + 8 * (argc + 2)
        for _ in range(1 << 16):  # envp, up to its NULL
            p += 8
            if not int.from_bytes(mm.copy_in(p - 8, 8), "little"):
                break
        out = bytearray()
        for _ in range(64):
            pair = mm.copy_in(p, 16)
            out += pair
            p += 16
            if not int.from_bytes(pair[:8], "little"):
                break
        return bytes(out)
    except SyscallError:
        return b""
