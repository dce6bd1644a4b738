"""What a process has open and mounted: fd/, fdinfo/, mounts and mountinfo.

Facts kept here (proc(5)):

* fd/N reads as the file's path from the *reader's* root (Linux's d_path),
  or as "pipe:[ino]", "socket:[ino]", "anon_inode:[kind]" for descriptions
  that are no file in the tree; following it opens the very file, even after
  a rename or unlink (the description's dentry, not the path).
* fdinfo/N is "pos:", "flags:" (octal, O_CLOEXEC included when the fd has
  it), "mnt_id:" (matching mountinfo's first column) and "ino:".
* mountinfo: "id parent major:minor root mountpoint options - fstype source
  superoptions", mount points relative to the process's root; mounts outside
  a chroot are left out.  Mount ids are given on first sight and kept.
"""

from __future__ import annotations

import errno
import itertools
import os
import threading
import weakref
from typing import TYPE_CHECKING

from sentry.kernel.errors import SyscallError
from sentry.procfs.nodes import gone
from sentry.procfs.process import fs_of, reader_root
from sentry.vfs import mountns
from sentry.vfs.description import dentry_of
from sentry.vfs.file import O_ACCMODE, O_NONBLOCK, FileDescription
from sentry.vfs.host import HostFile
from sentry.vfs.mount import Mount, format_mounts, path_of
from sentry.vfs.pipe import PipeFile
from sentry.vfs.tmpfs import MemfdDescription

if TYPE_CHECKING:
    from sentry.kernel.threadgroup import ThreadGroup
    from sentry.vfs.dentry import Dentry

O_CLOEXEC = 0o2000000
# Linux's names for anonymous-inode files, where our class names differ.
ANON_KINDS = {"epoll": "eventpoll"}


# -- mount ids (mountinfo, fdinfo) -----------------------------------------

_mount_ids: weakref.WeakKeyDictionary[Mount, int] = weakref.WeakKeyDictionary()
_next_mount_id = itertools.count(21)  # Linux's first ids are around here too
_mount_id_lock = threading.Lock()


def mount_id(m: Mount) -> int:
    """A stable id for a mount, given the first time anyone asks."""
    with _mount_id_lock:
        mid = _mount_ids.get(m)
        if mid is None:
            mid = _mount_ids[m] = next(_next_mount_id)
        return mid


def _escape_path(b: bytes) -> bytes:
    for ch, rep in ((b"\\", b"\\134"), (b" ", b"\\040"), (b"\t", b"\\011"), (b"\n", b"\\012")):
        b = b.replace(ch, rep)
    return b


def mounts(tg: ThreadGroup) -> bytes:
    """/proc/<pid>/mounts: the process's namespace, paths from its root."""
    ctx = fs_of(tg)
    if ctx.ns is None:
        return b""
    return format_mounts(ctx.ns.mounts(ctx.root))


def mountinfo(tg: ThreadGroup) -> bytes:
    """/proc/<pid>/mountinfo (proc(5)): ids, dev, root, mount point, options."""
    ctx = fs_of(tg)
    if ctx.ns is None:
        return b""
    out = []
    for m in ctx.ns.all_mounts():
        target = path_of(m.root, ctx.root)
        if target.startswith(b"(unreachable)"):
            continue
        mid = mount_id(m)
        pid = mount_id(m.parent) if m.parent is not None else mid
        dev = m.fs.dev
        sup = "ro" if m.fs.readonly else "rw"
        # the root within the filesystem (a bind's source) and the optional
        # propagation field: sentry/vfs/mountns.py records both
        tag = mountns.propagation_of(m)
        out.append(f"{mid} {pid} {os.major(dev)}:{os.minor(dev)} ".encode()
                   + _escape_path(mountns.root_path(m)) + b" "
                   + _escape_path(target) + f" {m.options()}{' ' + tag if tag else ''}"
                   f" - {m.fs.name} ".encode()
                   + _escape_path(m.source.encode()) + f" {sup}\n".encode())
    return b"".join(out)


# -- fds -------------------------------------------------------------------------

def fd_desc(tg: ThreadGroup, fd: int) -> FileDescription:
    """The description behind fd ``fd`` (ENOENT once it is closed)."""
    if tg.zombie:
        raise gone()
    try:
        return tg.fds.get(fd)
    except SyscallError:
        raise gone() from None


def fd_target(tg: ThreadGroup, fd: int) -> bytes:
    """readlink of fd/N: a path, or "pipe:[N]", "socket:[N]", "anon_inode:[...]"."""
    desc = fd_desc(tg, fd)
    d = dentry_of(desc)
    if d is not None:
        return path_of(d, reader_root(tg))  # from the reader's root, like d_path
    link_name = getattr(desc, "link_name", None)
    if link_name is not None:
        return bytes(link_name())
    return _anon_name(desc)


def _anon_name(desc: FileDescription) -> bytes:
    """What Linux would show for a description that is no file of ours."""
    try:
        st = desc.stat()
    except (SyscallError, OSError):
        st = None
    if st is not None:
        fmt = st.mode & 0o170000
        if fmt == 0o010000:
            return b"pipe:[%d]" % st.ino
        if fmt == 0o140000:
            return b"socket:[%d]" % st.ino
        if fmt == 0o020000 and 136 <= os.major(st.rdev) <= 143:
            return b"/dev/pts/%d" % ((os.major(st.rdev) - 136) * 256 + os.minor(st.rdev))
    kind = type(desc).__name__.lower().removesuffix("file").removesuffix("description")
    kind = ANON_KINDS.get(kind, kind)
    return b"anon_inode:[" + (kind or "unknown").encode() + b"]"


def fd_follow(tg: ThreadGroup, fd: int) -> Dentry | None:
    """The dentry fd/N opens: the file itself, even if it was renamed or removed."""
    return dentry_of(fd_desc(tg, fd))


def fd_reopen(tg: ThreadGroup, fd: int, flags: int) -> FileDescription | None:
    """Open fd/N when it names no file in the tree, as Linux reopens the object.

    None means "open the dentry follow_link gives" (the usual case).  A pipe
    opens again with fifo(7) rules; an imported host descriptor (the CLI's
    stdio) is shared as it is, since the Sentry may not open host files; any
    other anonymous file is ENXIO.  The VFS calls it through the link's
    ``reopen`` (sentry/vfs/resolve.py, Reopened).
    """
    desc = fd_desc(tg, fd)
    if dentry_of(desc) is not None:
        return None
    if isinstance(desc, PipeFile):
        return PipeFile(desc.pipe, flags & (O_ACCMODE | O_NONBLOCK))
    if isinstance(desc, HostFile):
        return desc
    if isinstance(desc, MemfdDescription):
        return _reopen_memfd(desc, flags)
    raise SyscallError(errno.ENXIO)


_OPEN_ONLY = 0o100 | 0o200 | 0o400 | 0o1000  # O_CREAT, O_EXCL, O_NOCTTY, O_TRUNC
O_TRUNC = 0o1000


def _reopen_memfd(desc: MemfdDescription, flags: int) -> MemfdDescription:
    """A memfd opened again through fd/N: a new description of the same
    file (Linux opens the dentry the link names); O_TRUNC truncates it as an
    open does, which its seals may refuse (EPERM)."""
    if flags & O_TRUNC and desc.inode.size:
        desc.inode.setattr(size=0)
    new = MemfdDescription(desc.inode, desc.name)  # type: ignore[arg-type]
    new.flags = (flags & ~_OPEN_ONLY) | (new.flags & ~O_ACCMODE & ~O_NONBLOCK)
    return new


def fdinfo(tg: ThreadGroup, fd: int) -> bytes:
    """/proc/<pid>/fdinfo/<fd>: position, flags (octal, with O_CLOEXEC), mount id."""
    desc = fd_desc(tg, fd)
    try:
        cloexec = tg.fds.get_cloexec(fd)
    except SyscallError:
        raise gone() from None
    pos = getattr(desc, "offset", None)
    if not isinstance(pos, int):
        pos = getattr(desc, "pos", 0)  # directories count entries
    d = dentry_of(desc)
    mnt = mount_id(d.mount) if d is not None else 0
    flags = desc.flags | (O_CLOEXEC if cloexec else 0)
    ino = d.inode.ino if d is not None else 0
    pos = pos if isinstance(pos, int) else 0
    extra = getattr(desc, "fdinfo_lines", None)  # a kind's own lines (inotify's watches)
    return f"pos:\t{pos}\nflags:\t0{flags:o}\nmnt_id:\t{mnt}\n" \
        f"ino:\t{ino}\n".encode() + (extra() if extra is not None else b"")
