"""The Gofer: a 9P2000.L file server over one directory tree.

`FileServer` is a pure request handler (frame in, frame out) so it can be unit
tested without a process or a channel; `serve` is the Gofer process around it:
open the shm channel, open the root, confine (gofer/confine.py), serve. This
module holds the frame loop (decoding, the read-only check, dispatch, the
in-place Tread) and the process; what each request does is gofer/handlers.py's
(`Handlers`, FileServer's base).

Why the handler is shaped this way (DESIGN.md, trust boundary 4):

* Every file is held as an ``O_PATH|O_NOFOLLOW`` descriptor reached by opening
  ONE name at a time relative to its parent's descriptor. No host path string is
  ever built, so a symlink, a "/" in a name or a ".." can never take a lookup
  out of the tree; symlinks are returned as symlinks (Treadlink gives the text)
  and the Sentry resolves them in its own VFS.
* ".." is not asked of the kernel either: each fid remembers its path as a list
  of names from the root and ".." drops the last name and re-walks from the
  root, clamping at the root. A directory moved out of the tree by a racing host
  process therefore cannot serve as a ladder out of it.
* Opening for I/O (Tlopen) reopens the name relative to a freshly walked parent
  with O_NOFOLLOW and checks that the result is the same inode (st_dev, st_ino)
  as the fid's O_PATH descriptor; a mismatch is ESTALE. Twalkopenfd of one
  name (the Sentry's first open of a file) opens it relative to the directory
  it was walked from in the same request, by the same name, with the same
  checks: it reaches nothing the walk did not, without re-walking the path. Devices and sockets are
  never opened: a device node inside a container image must not become a window
  onto host hardware through a process that runs as root.
* Attribute changes act on the O_PATH descriptor itself (gofer/hostops.py,
  AT_EMPTY_PATH), never on a name.
* The client is untrusted: malformed frames, unknown fids, over-long counts and
  bad names all become Rlerror; nothing escapes `handle`.
* Several trees may be served (gofer/fids.py, `Attach`): the container root
  (aname "" or "/") and one attach point per bind mount, each read-only or
  writable on its own. Every change is checked against the attach point of
  each fid it names (EROFS), and a rename or link between two attach points is
  EXDEV. The bind sources are opened before confinement (`open_attaches`): the
  confined Gofer cannot name them any more, it only holds their descriptors.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
import struct
import sys
from collections.abc import Callable

from gofer import p9
from gofer.fids import (
    MAX_FIDS,
    TCLUNK_FRAME,
    Attach,
    AttachSpec,
    P9Fail,
    close_attaches,
    open_attaches,
)
from gofer.handlers import READ_HDR, Handlers
from gofer.late import LateTrees

log = logging.getLogger("pyvisor.gofer")

_TREAD = struct.Struct("<IBHIQI")
_RREAD_HDR = struct.Struct("<IBHI")


Handler = Callable[..., p9.Message]
"""A FileServer.t_* method: (server, request) -> reply."""


class FileServer(Handlers):
    """Serve the tree under ``root_fd`` (a directory fd, O_PATH is enough), and
    the extra ``attaches`` by aname.

    Single-threaded: one request at a time, so no locking. The server does not
    own ``root_fd`` nor the attach descriptors; `close` releases the fids only.
    """

    def __init__(
        self,
        root_fd: int,
        *,
        readonly: bool = False,
        attaches: dict[str, Attach] | None = None,
        msize: int = p9.MAX_MSIZE,
        max_fids: int = MAX_FIDS,
        late: LateTrees | None = None,
        donate_sock: socket.socket | None = None,
    ) -> None:
        super().__init__(root_fd, writable=not readonly, attaches=attaches, max_fids=max_fids)
        self.max_msize = msize
        self.msize = msize
        self.late = late  # a pod's later trees (gofer/late.py), read at every Tattach
        self.donate_sock = donate_sock
        """Where Tlopenfd sends descriptors (gofer/donate.py); None: never donate."""
        self._tag = p9.P9_NOTAG  # the request being answered (Tlopenfd's message names it)

    # -- framing ----------------------------------------------------------

    def handle(self, frame: bytes | bytearray | memoryview) -> bytes:
        """Answer one request frame with one reply frame; never raises."""
        try:
            tag, msg = p9.decode(frame, self.max_msize)
        except p9.RemoteProtocolError as exc:
            return self._malformed(bytes(frame[:7]), exc)
        try:
            self._tag = tag
            reply = self._dispatch(msg)
            return p9.encode(reply, tag, self.msize)
        except p9.LocalProtocolError:
            log.warning("gofer: reply to %s does not fit", type(msg).__name__)
            return p9.encode(p9.errno_reply(errno.EIO), tag)

    def handle_into(self, request: memoryview, out: memoryview) -> bytes | int:
        """The shm channel's handler: batched clunks first (`clunk_prefix`);
        Tread is answered in place (pread straight into the response buffer,
        no copy), everything else through `handle`."""
        if len(request) > TCLUNK_FRAME.size and request[4] == p9.MsgType.TCLUNK:
            request = self.clunk_prefix(request)
        if len(request) == _TREAD.size and request[4] == p9.MsgType.TREAD:
            size, _, tag, fid, offset, count = _TREAD.unpack_from(request)
            st = self.fids.get(fid)
            if size == _TREAD.size and st is not None and st.ofd >= 0:
                count = min(count, self.msize - READ_HDR, len(out) - READ_HDR)
                try:
                    n = os.preadv(st.ofd, [out[READ_HDR : READ_HDR + count]], offset)
                except OSError as exc:
                    return p9.encode(p9.errno_reply(exc.errno or errno.EIO), tag)
                except (ValueError, OverflowError):
                    return p9.encode(p9.errno_reply(errno.EINVAL), tag)
                _RREAD_HDR.pack_into(out, 0, READ_HDR + n, p9.MsgType.RREAD, tag, n)
                return READ_HDR + n
        return self.handle(request)

    def __call__(self, request: memoryview, out: memoryview) -> bytes | int:
        return self.handle_into(request, out)

    @staticmethod
    def _malformed(head: bytes, exc: p9.RemoteProtocolError) -> bytes:
        """Rlerror for a frame we could not decode: EINVAL when its tag was
        readable (the body was bad), EPROTO when even the framing was."""
        if exc.tag is not None:
            return p9.encode(p9.errno_reply(errno.EINVAL), exc.tag)
        tag = struct.unpack_from("<H", head, 5)[0] if len(head) >= 7 else p9.P9_NOTAG
        return p9.encode(p9.errno_reply(errno.EPROTO), tag)

    def _dispatch(self, msg: p9.Message) -> p9.Message:
        handler = _HANDLERS.get(type(msg))
        if handler is None:
            if type(msg) in _UNSUPPORTED:
                return p9.errno_reply(errno.EOPNOTSUPP)
            return p9.errno_reply(errno.EINVAL)  # an R-message or Tlerror sent to us
        if type(msg) in _MUTATING and not self._may_change(msg):
            return p9.errno_reply(errno.EROFS)
        try:
            return handler(self, msg)
        except P9Fail as exc:
            return p9.errno_reply(exc.errno)
        except OSError as exc:
            return p9.errno_reply(exc.errno or errno.EIO)
        except (ValueError, OverflowError, UnicodeError):
            return p9.errno_reply(errno.EINVAL)
        except Exception:  # a server bug: report it, keep serving
            log.exception("gofer: %s failed", type(msg).__name__)
            return p9.errno_reply(errno.EIO)

    # -- fid helpers --------------------------------------------------------

    def _may_change(self, msg: p9.Message) -> bool:
        """False if a fid ``msg`` names belongs to a read-only attach point
        (unknown fids are left to the handler: EBADF)."""
        for attr in _FID_FIELDS:
            st = self.fids.get(getattr(msg, attr, -1))
            if st is not None and not st.attach.writable:
                return False
        return True


_HANDLERS: dict[type[p9.Message], Handler] = {
    getattr(p9, "T" + name[2:]): fn
    for name, fn in vars(Handlers).items()
    if name.startswith("t_")
}
"""Dispatch table: FileServer.t_walk answers p9.Twalk, and so on."""
_MUTATING = frozenset({
    p9.Tlcreate, p9.Twrite, p9.Tsetattr, p9.Tmkdir, p9.Tsymlink, p9.Tmknod, p9.Tlink,
    p9.Trenameat, p9.Trename, p9.Tunlinkat, p9.Tremove, p9.Txattrcreate,
})  # fmt: skip
_FID_FIELDS = ("fid", "dfid", "dirfid", "olddirfid", "newdirfid")
"""The fields of mutating messages that name fids (checked by `_may_change`)."""
_UNSUPPORTED = frozenset({p9.Tauth, p9.Txattrwalk, p9.Txattrcreate, p9.Tlock, p9.Tgetlock})


# -- the Gofer process --------------------------------------------------------------


def _raise_nofile() -> None:
    """Fids hold host fds: let the soft fd limit reach the hard one."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _trim_heap() -> None:
    """Give start-up's free heap pages back (malloc_trim) before serving:
    under a container memory limit they are charged with the application's."""
    import ctypes

    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):
        pass


def serve(
    root: str,
    channel_name: str,
    *,
    readonly: bool,
    sentry_pid: int,
    attach: list[AttachSpec] | None = None,
    confine: bool = True,
    seccomp_action: str = "kill",
    late_fd: int = -1,
    donate_fd: int = -1,
) -> None:
    """The Gofer process: channel first (glibc finds its names under the host's
    /dev/shm), then the root and the ``attach`` sources, then confinement, then
    serve until the Sentry closes the channel (return) or dies (PeerDiedError,
    after unlinking the channel's names on its behalf)."""
    from gofer import lifeline
    from shm import faults
    from shm.channel import ServerChannel

    channel = ServerChannel(channel_name, peer_pid=sentry_pid)
    faults.at("gofer-channel")
    # Both ends have the channel open: its names can go, so nothing is left in
    # /dev/shm whichever side dies from here on (the Sentry unlinks too, later).
    channel.unlink()
    attaches: dict[str, Attach] = {}
    # The donation socket (gofer/donate.py), made a socket object while
    # getsockname is still allowed; only sendmsg on it is, once confined.
    sock = socket.socket(fileno=donate_fd) if donate_fd >= 0 else None
    try:
        root_fd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        attaches = open_attaches(list(attach or []))
        _raise_nofile()
        faults.at("gofer-root")
        _trim_heap()
        # Before the filter: making the socket object asks the kernel its type.
        late = LateTrees(late_fd) if late_fd >= 0 else None
        if confine:
            from gofer import confine as _confine

            _confine.confine(root_fd, seccomp_action=seccomp_action, late_fd=late_fd,
                             donate_fd=donate_fd)
            lifeline.confined()
            faults.at("gofer-confined")
            os.close(root_fd)
            # After pivot_root the old fd names a directory on a detached mount
            # outside our root; serve from the new "/" instead.
            root_fd = os.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        server = FileServer(root_fd, readonly=readonly, attaches=attaches, msize=channel.msize,
                            late=late, donate_sock=sock)
        try:
            channel.serve(server.handle_into)
        finally:
            server.close()
    finally:
        close_attaches(attaches)
        channel.close()
        if sock is not None:
            sock.close()


def main(argv: list[str] | None = None) -> int:
    """``python3 -m gofer.server --root DIR --channel NAME --sentry-pid PID``."""
    from gofer import args as cli

    args = cli.parse(sys.argv[1:] if argv is None else argv, __doc__.splitlines()[0])
    if args.sentry_pid == os.getppid():  # an exec'd Gofer (a forked one did it already)
        from gofer import lifeline
        from shm.layout import tag_of_name

        lifeline.die_with(args.sentry_pid, tag_of_name(args.channel))
    attach = [spec for spec in map(cli.attach_spec, args.attach) if spec is not None]
    logging.basicConfig(level=logging.WARNING, format="gofer[%(process)d]: %(message)s")
    from shm.errors import PeerDiedError

    try:
        serve(
            args.root,
            args.channel,
            readonly=args.readonly,
            sentry_pid=args.sentry_pid,
            attach=attach,
            confine=args.confine,
            seccomp_action=args.seccomp,
            late_fd=args.late_fd,
            donate_fd=args.donate_fd,
        )
    except PeerDiedError:
        return 0  # the Sentry is gone; nothing left to serve
    except Exception as exc:
        print(f"gofer: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
