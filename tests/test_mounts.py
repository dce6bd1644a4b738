"""Mounts: an OCI bundle's ``mounts`` and ``root.readonly``, and ``do --volume``.

Three levels:

- The Gofer serving several attach points (gofer/fids.py ``Attach``), driven
  in-process frame by frame: per-attach read-only, file attach points, ".."
  clamped at each attach root, EXDEV across attach points.
- The pure parts: mountspec checks, the tmpfs size limit, the sysfs tree.
- Whole sandboxes: ``runsc.py do -v`` and ``runsc.py run`` of a bundle, with
  busybox inside.  What the application writes into an rw bind must appear
  in the host directory; what it writes into an ro bind or a read-only root
  must fail with "Read-only file system".  Escape attempts through a bind are
  compared with the same commands run natively under chroot over a copy of the
  tree (the bind's content copied where it is mounted): symlinks and ".." must
  resolve the same way, inside the sandbox.

Facts the tests rely on: the Gofer channel's /dev/shm names start with
"pyvisor-" (a failed start must leave none behind); the sandbox host and its
Sentry carry the container id on their command lines.
"""

from __future__ import annotations

import errno
import json
import os
import shlex
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import (
    RUNSC,
    assert_no_process_left,
    run_sandbox,
    shell_status,
    shm_names_of,
    shm_names_orphaned,
)

from gofer import p9
from gofer.fids import open_attaches
from gofer.server import FileServer
from sentry.kernel.errors import SyscallError
from sentry.mountspec import MountError, MountSpec, check, parse_volume
from sentry.oci.bundle import BundleError
from sentry.oci.bundle import Mount as OciMount
from sentry.vfs.sysfs import SysFs
from sentry.vfs.tmpfs import PAGE, TmpFs

BB = "/bin/busybox"
TIMEOUT = 60.0
ROOT_FID = 1
NOFID = p9.P9_NOFID


# -- the Gofer with several attach points ---------------------------------------------


class Conn:
    """Frames in and out of an in-process FileServer."""

    def __init__(self, server: FileServer) -> None:
        self.server = server
        self.tag = 0

    def call(self, msg: p9.Message) -> p9.Message:
        self.tag += 1
        tag, reply = p9.decode(self.server.handle(p9.encode(msg, self.tag)))
        assert tag == self.tag
        return reply

    def ok(self, msg: p9.Message) -> p9.Message:
        r = self.call(msg)
        assert not isinstance(r, p9.Rlerror), f"{msg} -> {os.strerror(r.ecode)}"
        return r

    def err(self, msg: p9.Message) -> int:
        r = self.call(msg)
        assert isinstance(r, p9.Rlerror), f"{msg} should fail, got {r}"
        return r.ecode

    def read(self, fid: int) -> bytes:
        r = self.ok(p9.Tread(fid, 0, 4096))
        assert isinstance(r, p9.Rread)
        return bytes(r.data)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Conn, Path]]:
    """A server over ROOT with attach points rw (a dir), ro (a dir), file (rw) and
    rofile; ROOT and the sources are siblings, next to a secret."""
    root, rw, ro = tmp_path / "root", tmp_path / "rw", tmp_path / "ro"
    for d in (root, rw / "sub", ro):
        d.mkdir(parents=True)
    (tmp_path / "secret").write_text("SECRET\n")
    (root / "rootfile").write_text("ROOT\n")
    (rw / "sub" / "f").write_text("RW\n")
    (rw / "abs").symlink_to(tmp_path / "secret")
    (ro / "r").write_text("RO\n")
    (tmp_path / "file").write_text("FILE\n")
    (tmp_path / "rofile").write_text("ROFILE\n")
    attaches = open_attaches([("rw", str(rw), True), ("ro", str(ro), False),
                              ("file", str(tmp_path / "file"), True),
                              ("rofile", str(tmp_path / "rofile"), False)])
    fd = os.open(root, os.O_PATH | os.O_DIRECTORY)
    server = FileServer(fd, readonly=True, attaches=attaches)
    conn = Conn(server)
    conn.ok(p9.Tversion(65536, "9P2000.L"))
    try:
        yield conn, tmp_path
    finally:
        server.close()
        os.close(fd)
        for at in attaches.values():
            os.close(at.fd)
            if at.io_fd >= 0:
                os.close(at.io_fd)


def _attach(c: Conn, fid: int, aname: str) -> None:
    c.ok(p9.Tattach(fid, NOFID, "root", aname, 0))


def test_attach_unknown_name_is_enoent(served: tuple[Conn, Path]) -> None:
    c, _ = served
    assert c.err(p9.Tattach(5, NOFID, "root", "nope", 0)) == errno.ENOENT
    assert c.err(p9.Tattach(5, NOFID, "root", "../rw", 0)) == errno.ENOENT


def test_rw_attach_writes_reach_the_host(served: tuple[Conn, Path]) -> None:
    c, tmp = served
    _attach(c, 2, "rw")
    c.ok(p9.Twalk(2, 3, ()))
    c.ok(p9.Tlcreate(3, "new", os.O_WRONLY, 0o644, 0))
    c.ok(p9.Twrite(3, 0, b"written\n"))
    c.ok(p9.Tmkdir(2, "d", 0o755, 0))
    assert (tmp / "rw" / "new").read_text() == "written\n"
    assert (tmp / "rw" / "d").is_dir()


def test_ro_attach_refuses_every_change(served: tuple[Conn, Path]) -> None:
    c, tmp = served
    _attach(c, 2, "ro")
    c.ok(p9.Twalk(2, 3, ("r",)))
    assert c.err(p9.Tlopen(3, os.O_RDWR)) == errno.EROFS
    assert c.err(p9.Tlopen(3, os.O_RDONLY | os.O_TRUNC)) == errno.EROFS
    for msg in (p9.Tmkdir(2, "d", 0o755, 0), p9.Tlcreate(2, "x", os.O_WRONLY, 0o644, 0),
                p9.Tunlinkat(2, "r", 0), p9.Tsetattr(3, p9.P9_SETATTR_MODE, 0o777, 0, 0, 0,
                                                      0, 0, 0, 0),
                p9.Tsymlink(2, "l", "/x", 0)):
        assert c.err(msg) == errno.EROFS, msg
    c.ok(p9.Tlopen(3, os.O_RDONLY))
    assert c.read(3) == b"RO\n"
    assert sorted(os.listdir(tmp / "ro")) == ["r"]
    assert (tmp / "ro" / "r").stat().st_mode & 0o777 == 0o644


def test_dotdot_and_symlinks_stay_in_the_attach(served: tuple[Conn, Path]) -> None:
    c, _ = served
    _attach(c, 2, "rw")
    root_qid = c.ok(p9.Twalk(2, 3, ())).qids  # type: ignore[attr-defined]
    assert root_qid == ()
    r = c.ok(p9.Twalk(2, 4, ("..", "..", "..")))
    assert isinstance(r, p9.Rwalk)
    # ".." of the attach root is the attach root: "sub" is still found from there.
    c.ok(p9.Twalk(4, 5, ("sub", "f")))
    c.ok(p9.Tlopen(5, os.O_RDONLY))
    assert c.read(5) == b"RW\n"
    # Neither the sibling secret nor the root's files are reachable by name:
    # the walk stops after ".." (a partial Rwalk: one qid, no new fid).
    for name in ("secret", "rootfile", "rw"):
        r = c.ok(p9.Twalk(2, 6, ("..", name)))
        assert isinstance(r, p9.Rwalk) and len(r.qids) == 1, name
        assert c.err(p9.Tclunk(6)) == errno.EBADF
    # A symlink is a symlink: opening it is refused, its text is just text.
    c.ok(p9.Twalk(2, 7, ("abs",)))
    assert c.err(p9.Tlopen(7, os.O_RDONLY)) == errno.ELOOP
    target = c.ok(p9.Treadlink(7))
    assert isinstance(target, p9.Rreadlink) and target.target.endswith("/secret")


def test_rename_and_link_across_attaches_is_exdev(served: tuple[Conn, Path]) -> None:
    c, tmp = served
    _attach(c, 2, "rw")
    c.ok(p9.Tattach(3, NOFID, "root", "", 0))
    c.ok(p9.Twalk(2, 4, ("sub", "f")))
    c.ok(p9.Twalk(2, 5, ("sub",)))
    # the root attach is read-only here: EROFS first; a second rw attach is EXDEV
    assert c.err(p9.Trenameat(5, "f", 3, "f")) == errno.EROFS
    _attach(c, 6, "file")
    assert c.err(p9.Tlink(5, 6, "x")) == errno.EXDEV
    assert (tmp / "rw" / "sub" / "f").exists()


def test_file_attach(served: tuple[Conn, Path]) -> None:
    c, tmp = served
    _attach(c, 2, "file")
    assert c.err(p9.Twalk(2, 3, ("x",))) == errno.ENOTDIR
    c.ok(p9.Twalk(2, 3, ()))
    c.ok(p9.Tlopen(3, os.O_RDONLY))
    assert c.read(3) == b"FILE\n"
    assert c.err(p9.Twrite(3, 0, b"no")) == errno.EBADF  # opened read-only
    c.ok(p9.Twalk(2, 4, ()))
    c.ok(p9.Tlopen(4, os.O_WRONLY | os.O_TRUNC))
    c.ok(p9.Twrite(4, 0, b"new\n"))
    assert (tmp / "file").read_text() == "new\n"
    _attach(c, 5, "rofile")
    c.ok(p9.Twalk(5, 6, ()))
    assert c.err(p9.Tlopen(6, os.O_WRONLY)) == errno.EROFS
    assert c.err(p9.Tsetattr(5, p9.P9_SETATTR_SIZE, 0, 0, 0, 0, 0, 0, 0, 0)) == errno.EROFS
    assert (tmp / "rofile").read_text() == "ROFILE\n"


def test_open_attaches_rejects_bad_sources(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        open_attaches([("a", str(tmp_path / "missing"), True)])
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(OSError):
        open_attaches([("a", str(tmp_path / "fifo"), False)])
    with pytest.raises(ValueError):
        open_attaches([("a", str(tmp_path), False), ("a", str(tmp_path), False)])


# -- mount specs, tmpfs size, sysfs --------------------------------------------------


def _check(dest: str, type_: str, source: str = "", options: tuple[str, ...] = (),
           base: str = "/") -> MountSpec:
    return check(OciMount(dest, type_, source, options), "mounts[3]", base)


def test_mountspec_types_and_options(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    m = _check("/a/../b/", "none", str(tmp_path), ("rbind", "ro", "nosuid", "rprivate"))
    assert (m.destination, m.type, m.readonly, m.file, m.flags) == (
        "/b", "bind", True, False, ("nosuid",))
    assert _check("/h", "bind", "f", base=str(tmp_path)).file is True
    t = _check("/t", "tmpfs", "tmpfs", ("size=64k", "mode=755", "nr_inodes=5", "noexec"))
    assert (t.size, t.mode, t.flags) == (65536, 0o755, ("noexec",))
    assert _check("/s", "sysfs", "sysfs").readonly is True
    with pytest.raises(MountError, match=r"^mounts\[3\]\.type: unsupported mount type 'nfs'"):
        _check("/n", "nfs", "server:/x")
    with pytest.raises(MountError, match=r"^mounts\[3\]\.type"):
        _check("/n", "none", "x")  # "none" without a bind option
    with pytest.raises(MountError, match=r"^mounts\[3\]\.source: .*missing"):
        _check("/m", "bind", str(tmp_path / "missing"), ("rbind",))
    with pytest.raises(MountError, match=r"^mounts\[3\]\.options: bad value in 'size=lots'"):
        _check("/t", "tmpfs", "tmpfs", ("size=lots",))
    with pytest.raises(MountError, match=r"^mounts\[3\]\.destination"):
        _check("/", "tmpfs", "tmpfs")


def test_parse_volume(tmp_path: Path) -> None:
    v = parse_volume(f"{tmp_path}:/data:ro")
    assert (v.source, v.destination, v.readonly, v.type) == (str(tmp_path), "/data", True,
                                                              "bind")
    assert parse_volume(f"{tmp_path}:/data").readonly is False
    for bad in (str(tmp_path), f"{tmp_path}:data", f"{tmp_path}:/d:rx", ":/d"):
        with pytest.raises(MountError, match="^-v "):
            parse_volume(bad)
    with pytest.raises(MountError, match="No such file"):
        parse_volume(f"{tmp_path}/missing:/d")


def test_from_oci_names_the_field(tmp_path: Path) -> None:
    from sentry.mountspec import from_oci

    mounts = [OciMount("/proc", "proc", "proc"), OciMount("/x", "overlay", "overlay")]
    with pytest.raises(BundleError, match=r"^config.json: mounts\[1\]\.type"):
        from_oci(mounts, str(tmp_path))


def test_tmpfs_size_limit() -> None:
    fs = TmpFs(size_limit=4 * PAGE)
    f = fs.root.create(b"f", 0o644, 0, 0)
    assert f.write_at(0, b"x" * (3 * PAGE)) == 3 * PAGE
    assert f.write_at(3 * PAGE, b"y" * (2 * PAGE)) == PAGE  # short: one page left
    with pytest.raises(SyscallError) as exc:
        f.write_at(4 * PAGE, b"z")
    assert exc.value.errno == errno.ENOSPC
    assert fs.statfs().bfree == 0 and fs.statfs().blocks == 4
    f.truncate(PAGE)
    assert fs.statfs().bfree == 3
    fs.root.unlink(b"f")
    assert fs.statfs().bfree == 4
    assert "size=16k" in fs.options()


def test_sysfs_tree() -> None:
    fs = SysFs(ncpus=3)
    cpu = fs.root.lookup(b"devices").lookup(b"system").lookup(b"cpu")
    for name in (b"online", b"possible", b"present"):
        assert cpu.lookup(name).read_at(0, 100) == b"0-2\n"
    assert {n for n, _, _ in cpu.iterdir()} >= {b"cpu0", b"cpu1", b"cpu2"}
    topo = cpu.lookup(b"cpu1").lookup(b"topology")
    assert topo.lookup(b"core_cpus").read_at(0, 100) == b"2\n"
    assert topo.lookup(b"package_cpus").read_at(0, 100) == b"7\n"
    assert SysFs(ncpus=1).root.lookup(b"devices").lookup(b"system").lookup(
        b"cpu").lookup(b"online").read_at(0, 100) == b"0-0\n"
    assert fs.root.lookup(b"fs").lookup(b"cgroup").iterdir() == []
    assert fs.readonly and fs.options() == "ro"


# -- whole sandboxes: do --volume ----------------------------------------------------------


def _need_sandbox() -> None:
    if os.geteuid() != 0:
        pytest.skip("the sandbox needs root (namespaces, seccomp)")
    if not Path(BB).is_file():
        pytest.skip(f"{BB} not found (apt-get install busybox-static)")


@pytest.fixture
def host(tmp_path: Path) -> Path:
    """Host-side sources: rw/ (with a file), ro/ (with a file), a hostname file."""
    _need_sandbox()
    (tmp_path / "rw").mkdir()
    (tmp_path / "rw" / "host.txt").write_text("FROM-HOST\n")
    (tmp_path / "ro").mkdir()
    (tmp_path / "ro" / "r.txt").write_text("READ-ONLY\n")
    (tmp_path / "hostname").write_text("box-name\n")
    return tmp_path


def _sh(script: str, *flags: str) -> Any:
    return run_sandbox([BB, "sh", "-c", script], extra_flags=list(flags), timeout=TIMEOUT)


@pytest.mark.sandbox
def test_volume_rw_dir(host: Path) -> None:
    res = _sh(f"{BB} cat /data/host.txt; echo inside > /data/new.txt; {BB} mkdir /data/d; "
              f"echo x > /data/d/f; {BB} mv /data/d/f /data/d/g; {BB} rm /data/host.txt; "
              f"{BB} ln -s target /data/link; {BB} chmod 600 /data/new.txt; echo done",
              "-v", f"{host}/rw:/data")
    assert res.returncode == 0 and res.out == "FROM-HOST\ndone\n", res.describe()
    rw = host / "rw"
    assert (rw / "new.txt").read_text() == "inside\n"
    assert (rw / "new.txt").stat().st_mode & 0o777 == 0o600
    assert (rw / "d" / "g").read_text() == "x\n" and not (rw / "d" / "f").exists()
    assert not (rw / "host.txt").exists()
    assert os.readlink(rw / "link") == "target"


@pytest.mark.sandbox
def test_volume_ro_dir(host: Path) -> None:
    """`-v SRC:DEST:ro`, differential: natively the same script runs over a
    read-only bind mount at the same path, made in a mount namespace of its
    own (unshare -m), so the host's mounts are not touched.  /proc/mounts is
    compared by the mount's rw/ro flag (the sandbox's type is 9p)."""
    mnt = host / "mnt"
    mnt.mkdir()
    script = (f"{BB} cat {mnt}/r.txt; echo x > {mnt}/new; {BB} touch {mnt}/r.txt; "
              f"{BB} rm {mnt}/r.txt; {BB} mkdir {mnt}/d; "
              f"{BB} grep ' {mnt} ' /proc/mounts | {BB} cut -d' ' -f4 | {BB} cut -d, -f1")
    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.skip("unshare(1) is not installed (util-linux): it makes the native reference")
    nat = subprocess.run(
        [unshare, "-m", "--propagation", "private", BB, "sh", "-c",
         f"{BB} mount --bind {host}/ro {mnt} && {BB} mount -o remount,bind,ro {mnt} && "
         f"exec {BB} sh -c {shlex.quote(script)}"],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=TIMEOUT)
    assert nat.stdout.startswith("READ-ONLY\n") and nat.stdout.endswith("ro\n"), nat
    res = _sh(script, "-v", f"{host}/ro:{mnt}:ro")
    assert (res.returncode, res.out, res.err) == (nat.returncode, nat.stdout, nat.stderr), (
        nat, res.describe())
    assert sorted(os.listdir(host / "ro")) == ["r.txt"]


@pytest.mark.sandbox
def test_volume_file_binds(host: Path) -> None:
    (host / "ro.conf").write_text("conf\n")
    res = _sh(f"{BB} cat /etc/hostname; echo appended >> /etc/hostname; "
              f"{BB} cat /etc/deep/ro.conf; echo no > /etc/deep/ro.conf; echo st $?",
              "-v", f"{host}/hostname:/etc/hostname", "-v", f"{host}/ro.conf:/etc/deep/ro.conf:ro")
    assert res.out == "box-name\nconf\nst 1\n", res.describe()
    assert "Read-only file system" in res.err, res.describe()
    assert (host / "hostname").read_text() == "box-name\nappended\n"
    assert (host / "ro.conf").read_text() == "conf\n"


@pytest.mark.sandbox
def test_volume_missing_source(host: Path) -> None:
    marker = f"missing-{uuid.uuid4().hex[:8]}"
    res = run_sandbox([BB, "true"], extra_flags=["-v", f"{host}/{marker}:/x"], timeout=TIMEOUT)
    assert res.returncode == 1, res.describe()
    lines = res.err.strip().splitlines()
    assert len(lines) == 1 and marker in lines[0] and "No such file" in lines[0], res.describe()
    assert_no_process_left(marker)
    assert shm_names_of(res.pid) == set(), "the sandbox left its channel in /dev/shm"


@pytest.mark.sandbox
def test_bind_escape_like_chroot(host: Path, tmp_path: Path) -> None:
    """Links in a bind pointing out of it resolve inside the sandbox, as chroot does."""
    if shutil.which("chroot") is None:
        pytest.skip("the chroot reference needs chroot(8)")
    root = tmp_path / "root"
    for sub in ("bin", "etc", "data", "dev", "proc", "tmp"):  # the sandbox makes the last 3
        (root / sub).mkdir(parents=True)
    shutil.copy2(BB, root / "bin" / "busybox")
    (root / "etc" / "shadow").write_text("SANDBOX-SHADOW\n")
    (host / "outside-secret").write_text("OUTSIDE-SECRET\n")
    data = host / "data"
    (data / "sub").mkdir(parents=True)
    links = {"abs": "/etc/shadow", "rel": "../../../../../../etc/shadow",
             "up": "../..", "host": str(host / "outside-secret"), "root": "/"}
    for name, target in links.items():
        (data / name).symlink_to(target)
    (data / "sub" / "deep").symlink_to("../../../etc/shadow")
    script = ("for p in /data/abs /data/rel /data/up/etc/shadow /data/host /data/root/etc/shadow "
              "/data/sub/deep /data/../../../etc/shadow /data/sub/../../etc/shadow; do "
              "/bin/busybox cat $p; echo \"$p $?\"; done; cd /data/sub/../../..; /bin/busybox pwd; "
              "/bin/busybox ls /data/up")
    ref = tmp_path / "ref"
    shutil.copytree(root, ref, symlinks=True)
    shutil.rmtree(ref / "data")
    shutil.copytree(data, ref / "data", symlinks=True)
    nat = subprocess.run(["chroot", str(ref), "/bin/busybox", "sh", "-c", script],
                         capture_output=True, timeout=TIMEOUT, start_new_session=True)
    box = run_sandbox(["/bin/busybox", "sh", "-c", script], timeout=TIMEOUT,
                      extra_flags=["--root", str(root), "-v", f"{data}:/data"])
    assert "OUTSIDE-SECRET" not in box.out + box.err, box.describe()
    assert box.out == nat.stdout.decode(), f"chroot:\n{nat.stdout.decode()}\n{box.describe()}"
    assert box.returncode == shell_status(nat.returncode), box.describe()
    assert box.out.count("SANDBOX-SHADOW") == 7, box.describe()


# -- whole sandboxes: OCI bundles ----------------------------------------------------------


def _runsc(state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(RUNSC), "--root", str(state), *args],
                          stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=TIMEOUT, start_new_session=True)


@pytest.fixture
def bundle(host: Path, tmp_path: Path) -> Callable[..., Path]:
    """``bundle(script, mounts=[...], readonly=True)``: a bundle running busybox sh
    -c script over the template's mounts plus ``mounts``."""

    def make(script: str, mounts: list[dict[str, Any]] = (), readonly: bool = True,  # type: ignore[assignment]
             ) -> Path:
        b = tmp_path / f"bundle-{uuid.uuid4().hex[:6]}"
        (b / "rootfs" / "bin").mkdir(parents=True)
        shutil.copy2(BB, b / "rootfs" / "bin" / "busybox")
        (b / "rootfs" / "bin" / "sh").symlink_to("busybox")
        res = _runsc(tmp_path / "unused", "spec", "--bundle", str(b))
        assert res.returncode == 0, res.stderr
        cfg = json.loads((b / "config.json").read_text())
        cfg["process"]["args"] = ["/bin/busybox", "sh", "-c", script]
        cfg["root"]["readonly"] = readonly
        cfg["mounts"] += list(mounts)
        (b / "config.json").write_text(json.dumps(cfg))
        return b

    return make


def _runc_reference(bundle_dir: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """The same bundle under runc: the reference for what a container sees."""
    runc = shutil.which("runc")
    if runc is None:
        pytest.skip("runc is not installed (apt-get install -y runc): it is the reference")
    return subprocess.run([runc, "--root", str(tmp_path / "runc-root"), "run", "--bundle",
                           str(bundle_dir), f"mnt-ref-{uuid.uuid4().hex[:8]}"],
                          stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=TIMEOUT, start_new_session=True)


@pytest.mark.sandbox
def test_bundle_mounts_and_readonly_root(host: Path, bundle: Callable[..., Path],
                                         tmp_path: Path) -> None:
    """Every kind of OCI mount and a read-only root, differential against runc
    on the same bundle.  What differs by design is left out of the script: the
    sandbox's filesystem types (9p, its own tmpfs) and the cgroup tree's
    contents (the sandbox has no cgroupfs; its /sys/fs/cgroup is an empty,
    read-only directory: a write there fails under both, with EROFS in the
    sandbox and, on this project's cgroup v1 hosts, EACCES under runc, whose
    /proc/mounts also says rw for it), so mounts are compared by their rw/ro
    flag and the cgroup write by its status."""
    b = bundle(
        "B=/bin/busybox; $B touch /x; echo root $?; echo shm > /dev/shm/a && $B cat /dev/shm/a; "
        "$B cat /sys/devices/system/cpu/online > /dev/null; echo cpu $?; "
        "[ -d /sys/fs/cgroup ]; echo cgroup-dir $?; "
        "$B touch /sys/fs/cgroup/x 2>/dev/null; echo cgroup $?; "
        "$B cat /data/host.txt; echo in > /data/in.txt; "
        "$B cat /etc/hostname; echo x > /ro/x; echo ro $?; echo t > /t/f; $B cat /t/f; "
        "$B dd if=/dev/zero of=/t/big bs=4096 count=64 2>/dev/null; echo dd $?; "
        "echo n > /t/deep/nested/f; $B cat /t/deep/nested/f; $B ls /t/deep; "
        "$B cat /proc/self/comm; $B cp /bin/busybox /nx/b && /nx/b true; echo nx $?; "
        "for m in /data /ro /t /nx; do "
        "$B grep \" $m \" /proc/mounts | $B cut -d' ' -f4 | $B cut -d, -f1; done; echo end",
        [{"destination": "/data", "type": "bind", "source": str(host / "rw"),
          "options": ["rbind", "rw"]},
         {"destination": "/ro", "type": "none", "source": str(host / "ro"),
          "options": ["bind", "ro"]},
         {"destination": "/etc/hostname", "type": "bind", "source": str(host / "hostname"),
          "options": ["rbind", "rprivate"]},
         {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
          "options": ["ro", "nosuid"]},
         {"destination": "/t", "type": "tmpfs", "source": "tmpfs",
          "options": ["size=64k", "mode=1777"]},
         {"destination": "/nx", "type": "tmpfs", "source": "tmpfs", "options": ["noexec"]},
         {"destination": "/t/deep/nested", "type": "tmpfs", "source": "tmpfs"}])
    ref = _runc_reference(b, tmp_path)
    assert (host / "rw" / "in.txt").read_text() == "in\n"
    (host / "rw" / "in.txt").unlink()
    assert ref.stdout.endswith("end\n") and "ro 1" in ref.stdout, ref
    res = _runsc(tmp_path / "state", "run", "--bundle", str(b), f"mnt-{uuid.uuid4().hex[:8]}")
    assert (res.returncode, res.stdout) == (ref.returncode, ref.stdout), (ref, res)
    assert res.stderr == ref.stderr, (ref.stderr, res.stderr)
    assert (host / "rw" / "in.txt").read_text() == "in\n"
    assert not (b / "rootfs" / "x").exists()


@pytest.mark.sandbox
def test_bundle_writable_root_stays_in_memory(host: Path, bundle: Callable[..., Path],
                                              tmp_path: Path) -> None:
    """With --overlay2=root:memory writes to the root stay in the sandbox;
    by default they reach the bundle's rootfs, as runc's do."""
    b = bundle("echo hi > /x && /bin/busybox cat /x", readonly=False)
    res = _runsc(tmp_path / "state", "--overlay2=root:memory", "run", "--bundle", str(b),
                 f"mnt-{uuid.uuid4().hex[:8]}")
    assert res.returncode == 0 and res.stdout == "hi\n", res
    assert not (b / "rootfs" / "x").exists()
    res = _runsc(tmp_path / "state", "run", "--bundle", str(b), f"mnt-{uuid.uuid4().hex[:8]}")
    assert res.returncode == 0 and res.stdout == "hi\n", res
    assert (b / "rootfs" / "x").read_text() == "hi\n"


@pytest.mark.sandbox
@pytest.mark.parametrize(("mount", "field"), [
    ({"destination": "/n", "type": "nfs", "source": "srv:/x"}, "type"),
    ({"destination": "/n", "type": "bind", "source": "/nonexistent-pyvisor-src",
      "options": ["rbind"]}, "source"),
])
def test_bundle_bad_mount_fails_create(host: Path, bundle: Callable[..., Path], tmp_path: Path,
                                       mount: dict[str, Any], field: str) -> None:
    b = bundle("true", [mount])
    index = len(json.loads((b / "config.json").read_text())["mounts"]) - 1
    field = f"mounts[{index}].{field}"
    cid = f"mnt-{uuid.uuid4().hex[:8]}"
    state = tmp_path / "state"
    before = set(os.listdir("/dev/shm"))
    res = _runsc(state, "create", "--bundle", str(b), cid)
    assert res.returncode == 1, res
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and field in lines[0], res
    assert "Traceback" not in res.stderr
    assert not (state / cid).exists()
    assert_no_process_left(cid)
    assert shm_names_orphaned(before) == set()
