"""Path resolution, as path_resolution(7) describes it.

Facts this module follows (Linux behaviour, checked against the man pages):

* An absolute path starts at the process root (chroot), a relative one at the
  cwd or at the dirfd's directory.  ".." of the root is the root: neither a
  chroot nor the sandbox's own root can be escaped with "..".
* Every component but the last must be a searchable directory (ENOTDIR).  A
  trailing slash (or a last "." or "..") means "must be a directory" and also
  makes a final symlink followed.
* Symlinks are expanded in place: a relative body is relative to the
  directory holding the link, an absolute body to the process root.  More than
  40 expansions in one resolution is ELOOP (MAXSYMLINKS).  An empty body is
  ENOENT.
* A "magic" link (procfs fd links, /proc/self/exe) names a dentry directly:
  :meth:`Inode.follow_link` returns it and the string body is not used.
* A path of PATH_MAX (4096) bytes or more, or a component longer than NAME_MAX
  (255), is ENAMETOOLONG; an empty path is ENOENT unless AT_EMPTY_PATH.

openat2(2)'s RESOLVE_* restrictions ride on the context as a
:class:`ResolvePolicy` (None for every other call): RESOLVE_IN_ROOT and
RESOLVE_BENEATH resolve from a context whose root is the dirfd (so ".." and
absolute symlinks stay inside, as a chroot), BENEATH refusing instead of
clamping (EXDEV); NO_SYMLINKS and NO_MAGICLINKS refuse links (ELOOP); NO_XDEV
refuses any mount crossing (EXDEV). Checked at each step of the one walk, so
no other thread can swap a component between a check and the open.

Permission checks: the sandbox runs as root, so search permission is always
granted; :attr:`FsContext.permission` is the hook where a later credentials
model plugs in (called with MAY_EXEC for every directory searched).

Locking: takes ``TREE_LOCK`` through Dentry.child; callers that must act
atomically on the result hold it around the call (it is re-entrant).
"""

from __future__ import annotations

import errno
from collections.abc import Callable

from sentry.kernel.errors import SyscallError
from sentry.vfs.dentry import Dentry
from sentry.vfs.inode import NAME_MAX, PATH_MAX
from sentry.vfs.mount import MountNamespace, dotdot, follow_mounts

MAXSYMLINKS = 40
MAY_EXEC = 1
RESOLVE_NO_XDEV = 0x01
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_BENEATH = 0x08
RESOLVE_IN_ROOT = 0x10
RESOLVE_CACHED = 0x20
RESOLVE_ALL = 0x3F
MAY_WRITE = 2
MAY_READ = 4


class ResolvePolicy:
    """openat2's restrictions on one resolution (see the module docstring)."""

    __slots__ = ("flags",)

    def __init__(self, flags: int) -> None:
        self.flags = flags

    def absolute(self) -> None:
        """An absolute path or symlink body: RESOLVE_BENEATH refuses it."""
        if self.flags & RESOLVE_BENEATH:
            raise SyscallError(errno.EXDEV)

    def dotdot(self, cur: Dentry, root: Dentry) -> Dentry:
        """".." under the policy: BENEATH refuses to leave the root, NO_XDEV to
        step off a mount."""
        if cur is root and self.flags & RESOLVE_BENEATH:
            raise SyscallError(errno.EXDEV)
        up = dotdot(cur, root)
        if self.flags & RESOLVE_NO_XDEV and up.mount is not cur.mount:
            raise SyscallError(errno.EXDEV)
        return up

    def cross(self, cur: Dentry, nxt: Dentry) -> None:
        """A step from ``cur`` to ``nxt``: NO_XDEV refuses a mount crossing."""
        if self.flags & RESOLVE_NO_XDEV and nxt.mount is not cur.mount:
            raise SyscallError(errno.EXDEV)

    def link(self, magic: bool) -> None:
        """Following a symlink (``magic``: a procfs link naming a file directly).
        IN_ROOT and BENEATH also refuse magic links, as Linux does."""
        if self.flags & RESOLVE_NO_SYMLINKS:
            raise SyscallError(errno.ELOOP)
        if magic and self.flags & (RESOLVE_NO_MAGICLINKS | RESOLVE_BENEATH | RESOLVE_IN_ROOT):
            raise SyscallError(errno.ELOOP)


class FsContext:
    """A process's filesystem view: root, cwd, umask, mount namespace.

    Shared by threads (CLONE_FS) and copied by fork (:meth:`fork`): the fields
    are plain references, so a copy is two attribute reads, no lock.
    """

    __slots__ = ("root", "cwd", "umask", "ns", "permission", "owner_check", "chown_check",
                 "uid", "gid", "policy")

    def __init__(self, root: Dentry, cwd: Dentry | None = None, *, umask: int = 0o022,
                 ns: MountNamespace | None = None,
                 permission: Callable[[Dentry, int], None] | None = None) -> None:
        self.root = root
        self.cwd = cwd if cwd is not None else root
        self.umask = umask
        self.ns = ns
        # (dentry, MAY_* mask) -> None or raise SyscallError(EACCES); None: root.
        self.permission = permission
        # (dentry, sticky parent or None) -> None or raise EPERM: chmod and
        # utimes are the owner's; so is taking a name out of a sticky directory.
        self.owner_check: Callable[[Dentry, Dentry | None], None] | None = None
        # (dentry, new uid, new gid; 0xFFFFFFFF keeps one) -> None or raise EPERM.
        self.chown_check: Callable[[Dentry, int, int], None] | None = None
        # The ids new files get: the calling task's fs uid and gid.
        self.uid = 0
        self.gid = 0
        # openat2's restrictions, on a one-call context (:meth:`restricted`).
        self.policy: ResolvePolicy | None = None

    @classmethod
    def for_namespace(cls, ns: MountNamespace) -> FsContext:
        root = follow_mounts(ns.root)
        return cls(root, root, ns=ns)

    def fork(self) -> FsContext:
        """An independent copy (fork without CLONE_FS)."""
        c = FsContext(self.root, self.cwd, umask=self.umask, ns=self.ns,
                      permission=self.permission)
        c.owner_check, c.chown_check = self.owner_check, self.chown_check
        c.uid, c.gid = self.uid, self.gid
        return c

    def restricted(self, start: Dentry, flags: int) -> FsContext:
        """A one-call copy for openat2 resolving from ``start`` under RESOLVE_*
        ``flags``: IN_ROOT and BENEATH make ``start`` its root."""
        c = self.fork()
        c.umask = self.umask
        if flags & (RESOLVE_IN_ROOT | RESOLVE_BENEATH):
            c.root = start
        c.policy = ResolvePolicy(flags)
        return c

    def check(self, d: Dentry, mask: int) -> None:
        if self.permission is not None:
            self.permission(d, mask)

    def check_owner(self, d: Dentry, sticky_parent: Dentry | None = None) -> None:
        if self.owner_check is not None:
            self.owner_check(d, sticky_parent)


class Reopened(Exception):  # noqa: N818 - a result, not an error
    """Opening ended at a link that opens to an existing description (a procfs
    fd link to a pipe or host stdio: /dev/stdout), not at a dentry."""

    def __init__(self, desc: object) -> None:
        super().__init__()
        self.desc = desc


class _Walk:
    """One resolution's state: the symlink budget is shared by nested expansions."""

    __slots__ = ("ctx", "links", "reopen_flags")

    def __init__(self, ctx: FsContext, reopen_flags: int | None = None) -> None:
        self.ctx = ctx
        self.links = 0
        self.reopen_flags = reopen_flags

    def walk(self, start: Dentry, path: bytes, follow_last: bool, final: bool = True) -> Dentry:
        """Resolve every component of ``path`` from ``start``."""
        ctx = self.ctx
        pol = ctx.policy
        if path.startswith(b"/"):
            if pol is not None:
                pol.absolute()
                pol.cross(start, follow_mounts(ctx.root))
            cur = ctx.root
        else:
            cur = start
        cur = follow_mounts(cur)
        comps = [c for c in path.split(b"/") if c]
        last_i = len(comps) - 1
        permission = ctx.permission  # ctx.check, inlined: once per component
        for i, name in enumerate(comps):
            if not cur.inode.is_dir():
                raise SyscallError(errno.ENOTDIR)
            if permission is not None:
                permission(cur, MAY_EXEC)
            if name == b".":
                continue
            if name == b"..":
                cur = dotdot(cur, ctx.root) if pol is None else pol.dotdot(cur, ctx.root)
                continue
            if len(name) > NAME_MAX:
                raise SyscallError(errno.ENAMETOOLONG)
            child = follow_mounts(cur.child(name))
            if pol is not None:
                pol.cross(cur, child)
            if child.inode.is_symlink() and (i < last_i or follow_last):
                cur = self.follow(cur, child, final and i == last_i)
            else:
                cur = child
        return cur

    def follow(self, parent: Dentry, link: Dentry, final: bool = False) -> Dentry:
        """Expand symlink ``link`` found in directory ``parent`` (``final``: it is
        what the whole resolution names)."""
        self.links += 1
        if self.links > MAXSYMLINKS:
            raise SyscallError(errno.ELOOP)
        pol = self.ctx.policy
        if pol is not None:
            pol.link(is_magic(link.inode, self.ctx))
        if link.mount is not None and link.mount.nosymfollow:
            raise SyscallError(errno.ELOOP)  # the link's mount is "nosymfollow"
        reopen = getattr(link.inode, "reopen", None)
        if final and reopen is not None and self.reopen_flags is not None:
            desc = reopen(self.reopen_flags)
            if desc is not None:
                raise Reopened(desc)
        magic = link.inode.follow_link(self.ctx)
        if magic is not None:
            return follow_mounts(magic)
        body = link.inode.readlink()
        if not body:
            raise SyscallError(errno.ENOENT)
        return self.walk(parent, body, True, final)


def is_magic(inode: object, ctx: FsContext) -> bool:
    """Whether a symlink is a procfs "magic" link (names a file, not a path)."""
    if getattr(inode, "reopen", None) is not None:
        return True
    return inode.follow_link(ctx) is not None  # type: ignore[attr-defined]


def _check_path(path: bytes) -> None:
    if len(path) >= PATH_MAX:
        raise SyscallError(errno.ENAMETOOLONG)
    if b"\0" in path:
        raise SyscallError(errno.EINVAL)


def resolve(ctx: FsContext, path: bytes, *, dirfd_dentry: Dentry | None = None,
            follow: bool = True, want_dir: bool = False, allow_empty: bool = False,
            reopen_flags: int | None = None) -> Dentry:
    """The dentry ``path`` names (dirfd_dentry None: relative to the cwd).

    ``follow``: follow a final symlink; ``want_dir``: the result must be a
    directory (O_DIRECTORY); ``allow_empty``: an empty path names the dirfd
    itself (AT_EMPTY_PATH).
    """
    _check_path(path)
    start = dirfd_dentry if dirfd_dentry is not None else ctx.cwd
    if not path:
        if not allow_empty:
            raise SyscallError(errno.ENOENT)
        d = start
    else:
        must_dir = path.endswith(b"/") or _ends_with_dot(path)
        d = _Walk(ctx, reopen_flags).walk(start, path, follow or must_dir)
        want_dir = want_dir or must_dir
    if want_dir and not d.inode.is_dir():
        raise SyscallError(errno.ENOTDIR)
    return d


def _ends_with_dot(path: bytes) -> bool:
    last = path.rstrip(b"/").rsplit(b"/", 1)[-1]
    return last in (b".", b"..")


def resolve_parent(ctx: FsContext, path: bytes,
                   dirfd_dentry: Dentry | None = None) -> tuple[Dentry, bytes, bool]:
    """(directory, last name, trailing slash) for calls that create or remove a name.

    The last component is not looked up.  It may be "." or ".." (each caller
    gives its own errno for those); "/" itself comes back as (root, b".", True).
    """
    _check_path(path)
    if not path:
        raise SyscallError(errno.ENOENT)
    stripped = path.rstrip(b"/")
    trailing = len(stripped) != len(path)
    if not stripped:  # "/" or "///"
        return follow_mounts(ctx.root), b".", True
    head, sep, name = stripped.rpartition(b"/")
    if len(name) > NAME_MAX:
        raise SyscallError(errno.ENAMETOOLONG)
    start = dirfd_dentry if dirfd_dentry is not None else ctx.cwd
    if sep and not head:
        if ctx.policy is not None:
            ctx.policy.absolute()
        parent = follow_mounts(ctx.root)
    elif sep:
        parent = _Walk(ctx).walk(start, head, True)
    else:
        parent = follow_mounts(start)
    if not parent.inode.is_dir():
        raise SyscallError(errno.ENOTDIR)
    ctx.check(parent, MAY_EXEC)
    return parent, name, trailing


def lookup_last(ctx: FsContext, parent: Dentry, name: bytes) -> Dentry | None:
    """The entry ``name`` of ``parent`` (mounts crossed, symlinks not followed), or None."""
    if name == b".":
        return parent
    pol = ctx.policy
    if name == b"..":
        return dotdot(parent, ctx.root) if pol is None else pol.dotdot(parent, ctx.root)
    try:
        child = follow_mounts(parent.child(name))
        if pol is not None:
            pol.cross(parent, child)
        return child
    except SyscallError as e:
        if e.errno == errno.ENOENT:
            return None
        raise
