"""Inodes and filesystems: what every Sentry filesystem implements.

An :class:`Inode` is one file of one :class:`Filesystem` (tmpfs, overlay, the
gofer-backed root, devtmpfs, procfs...).  Names live in directories, not in
inodes: the VFS (dentries, mounts, path resolution) sits above this layer and
calls the directory operations here with one name at a time, after it has done
the checks every filesystem shares (EEXIST, EISDIR, EROFS, EBUSY, loops).

The defaults give the errno Linux gives when a kind of file lacks an operation:
a directory operation on a non-directory is ENOTDIR, readlink of a
non-symlink is EINVAL, a namespace change on a filesystem that does not
implement it is EPERM.  Opening a fifo or a device node is the same on every
filesystem (the pipe and the driver are Sentry objects keyed by the inode or by
rdev), so :meth:`Inode.open` handles those kinds here.

Lock order: filesystems that own locks document them; no lock in this module.
"""

from __future__ import annotations

import errno
import itertools
import os
import stat as _stat
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from sentry.kernel.errors import SyscallError
from sentry.vfs import iflags, xattr
from sentry.vfs.file import FileDescription, Stat
from shm.records import record

if TYPE_CHECKING:
    from sentry.vfs.dentry import Dentry
    from sentry.vfs.pipe import Pipe
    from sentry.vfs.resolve import FsContext

S_IFMT = _stat.S_IFMT(0o177777)
S_IFREG = _stat.S_IFREG
S_IFDIR = _stat.S_IFDIR
S_IFLNK = _stat.S_IFLNK
S_IFCHR = _stat.S_IFCHR
S_IFBLK = _stat.S_IFBLK
S_IFIFO = _stat.S_IFIFO
S_IFSOCK = _stat.S_IFSOCK

DT_UNKNOWN = 0
DT_FIFO = 1
DT_CHR = 2
DT_DIR = 4
DT_BLK = 6
DT_REG = 8
DT_LNK = 10
DT_SOCK = 12

RENAME_NOREPLACE = 1
RENAME_EXCHANGE = 2
RENAME_WHITEOUT = 4

NAME_MAX = 255
PATH_MAX = 4096


def dtype_of(mode: int) -> int:
    """The d_type getdents reports for a file of this mode (IFTODT)."""
    return (mode & S_IFMT) >> 12


def mknod_makes_regular(mode: int) -> bool:
    """mknod(2)'s file type, as Linux routes it: True for a regular file
    (type 0 or S_IFREG, made as by create), False for a device, fifo or
    socket node; EINVAL for a directory or symlink type."""
    fmt = mode & S_IFMT
    if fmt in (0, S_IFREG):
        return True
    if fmt in (_stat.S_IFDIR, _stat.S_IFLNK):
        raise SyscallError(errno.EINVAL)
    return False


def check_rename_target(src: Inode, dst: Inode, flags: int, dst_empty: Callable[[], bool]) -> None:
    """Linux's checks on the file a rename would replace, in its order:
    EEXIST under RENAME_NOREPLACE, EISDIR for a non-directory onto a
    directory, ENOTEMPTY for a directory with entries (``dst_empty`` asks
    the filesystem), ENOTDIR for a directory onto a non-directory.  One
    copy for every filesystem that renames in the Sentry."""
    if flags & RENAME_NOREPLACE:
        raise SyscallError(errno.EEXIST)
    if dst.is_dir():
        if not src.is_dir():
            raise SyscallError(errno.EISDIR)
        if not dst_empty():
            raise SyscallError(errno.ENOTEMPTY)
    elif src.is_dir():
        raise SyscallError(errno.ENOTDIR)


def now_ns() -> int:
    """Wall-clock time for file timestamps (CLOCK_REALTIME, as Linux uses)."""
    return time.time_ns()


_anon_minor = itertools.count(16)


def alloc_dev() -> int:
    """A fresh anonymous device number (major 0), as Linux gives tmpfs/proc mounts."""
    return os.makedev(0, next(_anon_minor))


@record(slots=True)
class StatFs:
    """struct statfs as the Sentry fills it in (f_type is the fs magic)."""

    type: int = 0x01021994  # TMPFS_MAGIC
    bsize: int = 4096
    blocks: int = 0
    bfree: int = 0
    bavail: int = 0
    files: int = 0
    ffree: int = 0
    fsid: int = 0
    namelen: int = NAME_MAX
    frsize: int = 4096
    flags: int = 0


Opener = Callable[["Inode", int], FileDescription]


class DeviceRegistry:
    """Character- and block-device drivers keyed by (major, minor).

    A device node on any filesystem opens the same driver, as on Linux: the node
    only names the driver by its rdev.  A node with no driver opens with ENXIO.
    """

    def __init__(self) -> None:
        self._chr: dict[tuple[int, int], Opener] = {}
        self._blk: dict[tuple[int, int], Opener] = {}

    def register(self, major: int, minor: int, opener: Opener) -> None:
        self._chr[(major, minor)] = opener

    def register_block(self, major: int, minor: int, opener: Opener) -> None:
        """A block-device driver (the ramdisk, sentry/vfs/ramdisk.py)."""
        self._blk[(major, minor)] = opener

    def open(self, inode: Inode, flags: int) -> FileDescription:
        table = self._blk if inode.mode & S_IFMT == S_IFBLK else self._chr
        opener = table.get((os.major(inode.rdev), os.minor(inode.rdev)))
        if opener is None:
            raise SyscallError(errno.ENXIO)
        return opener(inode, flags)


DEVICES = DeviceRegistry()
"""The Sentry's drivers (devfs registers the memory devices here at import)."""


class Filesystem:
    """One filesystem instance: a root inode, a device number, a statfs."""

    name = "none"
    magic = 0x01021994
    keeps_xattrs = False
    # FS_IOC_[GS]ETFLAGS: the inode flags it keeps (tmpfs: append, immutable,
    # nodump, noatime, as Linux's shmem); 0: ENOTTY.
    inode_flags = 0
    """Whether this filesystem stores extended attributes (tmpfs does)."""

    def __init__(self, *, readonly: bool = False, source: str = "none") -> None:
        self.dev = alloc_dev()
        self.readonly = readonly
        self.source = source
        self.devices = DEVICES
        self._ino = itertools.count(1)
        self.root: Inode

    def next_ino(self) -> int:
        return next(self._ino)

    def statfs(self) -> StatFs:
        return StatFs(type=self.magic, fsid=self.dev)

    def options(self) -> str:
        """The /proc/mounts options column."""
        return "ro" if self.readonly else "rw"


class Inode:
    """One file.  Subclasses override what their kind of file supports.

    Attributes are plain fields (a filesystem that computes them, like the
    overlay, overrides them with properties).  ``setattr(mode=...)`` takes the
    permission bits only: a file never changes type.
    """

    fs: Filesystem
    ino: int
    mode: int
    uid: int
    gid: int
    nlink: int
    size: int
    rdev: int
    atime_ns: int
    mtime_ns: int
    ctime_ns: int
    iflags: int = 0  # FS_IOC_SETFLAGS's (sentry/vfs/iflags.py)

    def __init__(self, fs: Filesystem, mode: int, *, ino: int | None = None, uid: int = 0,
                 gid: int = 0, rdev: int = 0) -> None:
        self.fs = fs
        self.ino = fs.next_ino() if ino is None else ino
        self.mode = mode
        self.uid = uid
        self.gid = gid
        self.nlink = 2 if _stat.S_ISDIR(mode) else 1
        self.size = 0
        self.rdev = rdev
        t = now_ns()
        self.atime_ns = self.mtime_ns = self.ctime_ns = t
        self._pipe: Pipe | None = None

    # Kind of file.
    def is_dir(self) -> bool:
        return _stat.S_ISDIR(self.mode)

    def is_symlink(self) -> bool:
        return _stat.S_ISLNK(self.mode)

    def is_reg(self) -> bool:
        return _stat.S_ISREG(self.mode)

    def stat(self) -> Stat:
        blocks = (self.size + 511) // 512 if self.is_reg() else 0
        st = Stat(dev=self.fs.dev, ino=self.ino, mode=self.mode, nlink=self.nlink,
                  uid=self.uid, gid=self.gid, rdev=self.rdev, size=self.size,
                  blocks=blocks, atime_ns=self.atime_ns, mtime_ns=self.mtime_ns,
                  ctime_ns=self.ctime_ns)
        if self.fs.inode_flags:
            st.attributes, st.attributes_mask = iflags.statx_attributes(self.iflags)
        return st

    def statfs(self) -> StatFs:
        return self.fs.statfs()

    # Directory operations (the VFS has checked the name and EEXIST/ENOENT).
    def _dir_op(self) -> SyscallError:
        if not self.is_dir():
            return SyscallError(errno.ENOTDIR)
        if self.fs.readonly:
            return SyscallError(errno.EROFS)
        return SyscallError(errno.EPERM)

    def lookup(self, name: bytes) -> Inode:
        if not self.is_dir():
            raise SyscallError(errno.ENOTDIR)
        raise SyscallError(errno.ENOENT)

    def iterdir(self) -> list[tuple[bytes, int, int]]:
        """(name, ino, d_type) of every entry except "." and "..", in a stable order."""
        if not self.is_dir():
            raise SyscallError(errno.ENOTDIR)
        return []

    def create(self, name: bytes, mode: int, uid: int, gid: int) -> Inode:
        raise self._dir_op()

    def mkdir(self, name: bytes, mode: int, uid: int, gid: int) -> Inode:
        raise self._dir_op()

    def mknod(self, name: bytes, mode: int, rdev: int, uid: int, gid: int) -> Inode:
        raise self._dir_op()

    def symlink(self, name: bytes, target: bytes, uid: int, gid: int) -> Inode:
        raise self._dir_op()

    def link(self, name: bytes, inode: Inode) -> None:
        raise self._dir_op()

    def unlink(self, name: bytes) -> None:
        raise self._dir_op()

    def rmdir(self, name: bytes) -> None:
        raise self._dir_op()

    def rename(self, oldname: bytes, newdir: Inode, newname: bytes, flags: int = 0) -> None:
        """Move ``oldname`` here to ``newname`` in ``newdir`` (same filesystem).

        The VFS has checked: the source exists, type compatibility of a replaced
        target, NOREPLACE/EXCHANGE preconditions, no move into a descendant.  The
        filesystem checks that a replaced directory is empty (ENOTEMPTY).
        """
        raise self._dir_op()

    # Symlinks.
    def readlink(self) -> bytes:
        raise SyscallError(errno.EINVAL)

    def follow_link(self, ctx: FsContext) -> Dentry | None:
        """A "magic" link's target as a dentry (procfs fd links), or None to use readlink."""
        return None

    # Attributes.
    def setattr(self, *, mode: int | None = None, uid: int | None = None,
                gid: int | None = None, size: int | None = None,
                atime_ns: int | None = None, mtime_ns: int | None = None) -> None:
        """chmod/chown/truncate/utimens; None leaves a field alone."""
        if self.fs.readonly:
            raise SyscallError(errno.EROFS)
        if size is not None:
            if self.is_dir():
                raise SyscallError(errno.EISDIR)
            if not self.is_reg():
                raise SyscallError(errno.EINVAL)
            self.truncate(size)
        self._apply_attrs(mode, uid, gid, atime_ns, mtime_ns)

    def _apply_attrs(self, mode: int | None, uid: int | None, gid: int | None,
                     atime_ns: int | None, mtime_ns: int | None) -> None:
        if mode is not None:
            self.mode = (self.mode & S_IFMT) | (mode & 0o7777)
        if uid is not None:
            self.uid = uid
        if gid is not None:
            self.gid = gid
        if atime_ns is not None:
            self.atime_ns = atime_ns
        if mtime_ns is not None:
            self.mtime_ns = mtime_ns
        self.ctime_ns = now_ns()

    # Extended attributes (syscalls/xattr.py has checked names and permissions).
    def get_xattr(self, name: bytes) -> bytes:
        """The attribute's value; ENODATA if unset (or never kept here)."""
        return xattr.get(self.__dict__.get("_xattrs"), name)

    def list_xattr(self) -> list[bytes]:
        """Every attribute name, in the order they were first set."""
        return list(self.__dict__.get("_xattrs") or ())

    def set_xattr(self, name: bytes, value: bytes, flags: int) -> None:
        """Set an attribute (XATTR_CREATE/REPLACE in ``flags``); EOPNOTSUPP
        on a filesystem that keeps none, EROFS on a read-only one."""
        if not self.fs.keeps_xattrs:
            raise SyscallError(errno.EOPNOTSUPP)
        if self.fs.readonly:
            raise SyscallError(errno.EROFS)
        xattr.put(self.__dict__.setdefault("_xattrs", {}), name, value, flags)
        self.ctime_ns = now_ns()

    def remove_xattr(self, name: bytes) -> None:
        """Remove an attribute; ENODATA if it is not set."""
        if not self.fs.keeps_xattrs:
            raise SyscallError(errno.EOPNOTSUPP)
        if self.fs.readonly:
            raise SyscallError(errno.EROFS)
        xattr.remove(self.__dict__.get("_xattrs"), name)
        self.ctime_ns = now_ns()

    # Regular-file data (used by RegularFileDescription and by mmap).
    def read_at(self, offset: int, count: int) -> bytes:
        raise SyscallError(errno.EINVAL)

    def write_at(self, offset: int, data: bytes) -> int:
        raise SyscallError(errno.EINVAL)

    def truncate(self, size: int) -> None:
        raise SyscallError(errno.EINVAL)

    def read_pages(self, offset: int, length: int) -> bytes:
        """File bytes for a private mapping: short past EOF (the MM zero-fills)."""
        return self.read_at(offset, length)

    def seek_data(self, offset: int, hole: bool) -> int:
        """SEEK_DATA / SEEK_HOLE: the whole file is data unless a subclass knows better."""
        if offset >= self.size:
            raise SyscallError(errno.ENXIO)
        return self.size if hole else offset

    # Opening.
    def open(self, flags: int) -> FileDescription:
        """A new description of this file; the VFS has done the access checks.

        Regular files and directories get the generic descriptions (over
        read_at/write_at and iterdir); fifos and devices are the same on every
        filesystem.  Writable opens of read-only filesystems were refused above.
        """
        fmt = self.mode & S_IFMT
        if fmt == S_IFREG:
            from sentry.vfs.description import RegularFileDescription

            return RegularFileDescription(self, flags)
        if fmt == S_IFDIR:
            from sentry.vfs.description import DirectoryDescription

            return DirectoryDescription(self, flags)
        if fmt == S_IFIFO:
            from sentry.vfs.pipe import Pipe, open_fifo

            if self._pipe is None:
                self._pipe = Pipe()
            return open_fifo(self._pipe, flags, self)
        if fmt in (S_IFCHR, S_IFBLK):
            return self.fs.devices.open(self, flags)
        if fmt == S_IFSOCK:
            raise SyscallError(errno.ENXIO)
        if fmt == S_IFLNK:
            raise SyscallError(errno.ELOOP)
        raise SyscallError(errno.ENXIO)
