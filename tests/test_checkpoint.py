"""Checkpoint and restore (docs/checkpoint.md) of an OCI container.

The program: python3 counting in a loop, reading its input file a record at a
time (the file offset matters), writing a log file, feeding each count into
a pipe to a child that collects everything until EOF and exits 7, which the
parent reaps at the end, as it reaps a second child that exited at once (a
zombie across the checkpoint), then it runs a new program.  It is
checkpointed while it runs, killed with the checkpoint, restored from the
image into a new sandbox, and must go on where it stopped: its whole output
(before the checkpoint plus after the restore) is the output of a run never
interrupted, and so is its log file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import msgpack
import pytest
from helpers import RUNSC, assert_no_process_left
from test_oci import make_bundle, runsc, runsc_bg, state_root  # noqa: F401 - fixtures

from sentry.checkpoint import image, task_state

pytestmark = [pytest.mark.root, pytest.mark.sandbox]
PYTHON = "/usr/bin/python3"
COUNT = 150

PROGRAM = r"""
import os, sys, time
n = int(sys.argv[1])
src = os.open("/data/input.txt", os.O_RDONLY)
log = os.open("/data/log.txt", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    os.close(w)
    got = b""
    while True:
        chunk = os.read(r, 4096)
        if not chunk:
            break
        got += chunk
    out = os.open("/data/child.txt", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.write(out, got)
    os._exit(7)
os.close(r)
zombie = os.fork()  # exits at once: a zombie until the end, across the restore
if zombie == 0:
    os._exit(3)
total = 0
for i in range(n):
    rec = os.read(src, 8)
    total += i
    print(i, rec.decode().strip(), total, flush=True)
    os.write(log, b"%d " % i)
    os.write(w, b"<%d>" % i)
    time.sleep(0.02)
os.close(w)
_, status = os.waitpid(pid, 0)
print("child", pid, os.WEXITSTATUS(status), open("/data/child.txt").read()[-12:], flush=True)
_, status = os.waitpid(zombie, 0)
print("zombie", zombie, os.WEXITSTATUS(status), flush=True)
late = os.fork()  # a new program after the restore: fork and execve still work
if late == 0:
    os.execv("/bin/echo", ["echo", "exec after"])
os.waitpid(late, 0)
"""


def _expected(n: int) -> str:
    lines, total = [], 0
    for i in range(n):
        total += i
        lines.append(f"{i} rec{i:04d} {total}")
    got = "".join(f"<{i}>" for i in range(n))
    return "\n".join(lines) + f"\nchild 2 7 {got[-12:]}\nzombie 3 3\nexec after\n"


def _python_bundle(make_bundle: Callable[..., Path], data: Path, args: list[str]) -> Path:  # noqa: F811
    if not os.path.exists(PYTHON):
        pytest.skip(f"{PYTHON} is not installed (the program checkpointed)")

    def edit(cfg: dict) -> None:
        cfg["mounts"] += [
            {"destination": "/usr", "type": "bind", "source": "/usr", "options": ["rbind", "ro"]},
            {"destination": "/data", "type": "bind", "source": str(data),
             "options": ["rbind", "rw"]},
        ]

    b = make_bundle(args, edit=edit)
    for name in ("lib", "lib64"):
        (b / "rootfs" / name).symlink_to(f"usr/{name}")
    return b


def _create(root: Path, bundle: Path, cid: str, out: Path, err: Path,
            *flags: str) -> subprocess.CompletedProcess[bytes]:
    """`runsc.py --root ROOT [FLAGS] create` of ``bundle``, its stdout and
    stderr (which the container's init inherits) going to the files ``out``
    and ``err``."""
    with open(out, "w") as o, open(err, "w") as e:
        return subprocess.run([sys.executable, str(RUNSC), "--root", str(root), *flags,
                               "create", "--bundle", str(bundle), cid], stdout=o, stderr=e,
                              stdin=subprocess.DEVNULL, timeout=60, start_new_session=True)


def _wait_for(path: Path, lines: int, timeout: float = 60.0) -> str:
    """Poll a file the container writes until it has ``lines`` lines."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = path.read_text() if path.exists() else ""
        if text.count("\n") >= lines:
            return text
        time.sleep(0.05)
    raise AssertionError(f"{path} never reached {lines} lines: {text!r}")


def test_checkpoint_kill_restore_goes_on(state_root: Path, make_bundle: Callable[..., Path],  # noqa: F811
                                         tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "input.txt").write_text("".join(f"rec{i:04d}\n" for i in range(COUNT)))
    b = _python_bundle(make_bundle, data, [PYTHON, "/data/prog.py", str(COUNT)])
    (data / "prog.py").write_text(PROGRAM)
    cid = f"ckpt-{tmp_path.name[-8:]}"
    images = tmp_path / "images"
    first = tmp_path / "first.out"
    errors = tmp_path / "first.err"
    create = _create(state_root, b, cid, first, errors)
    assert create.returncode == 0, errors.read_text()
    try:
        assert runsc(state_root, "start", cid).returncode == 0
        _wait_for(first, 10)
        res = runsc(state_root, "checkpoint", "--image-path", str(images), cid, timeout=120)
        assert res.returncode == 0, res.stderr
        before = first.read_text()
        assert 10 <= before.count("\n") < COUNT, before  # it stopped part way
        st = json.loads(runsc(state_root, "state", cid).stdout)
        assert st["status"] == "stopped", st
        assert (images / image.IMAGE_NAME).exists()
        assert [p.name for p in images.iterdir()] == [image.IMAGE_NAME]
    finally:
        runsc(state_root, "delete", "--force", cid)
    log_before = (data / "log.txt").read_text()
    assert log_before == "".join(f"{i} " for i in range(before.count("\n"))), log_before
    # Restored into a new sandbox, in the foreground: the rest of the output.
    res = runsc(state_root, "restore", "--image-path", str(images), "--bundle", str(b),
                cid, timeout=120)
    assert res.returncode == 0, res.stderr
    assert before + res.stdout == _expected(COUNT), (before, res.stdout, res.stderr)
    assert (data / "log.txt").read_text() == "".join(f"{i} " for i in range(COUNT))
    assert (data / "child.txt").read_text() == "".join(f"<{i}>" for i in range(COUNT))
    assert_no_process_left(cid)


def test_leave_running_then_restore_a_copy(state_root: Path,  # noqa: F811
                                           make_bundle: Callable[..., Path],  # noqa: F811
                                           tmp_path: Path) -> None:
    """--leave-running: the container goes on to its end untouched, and the
    image restored later replays the rest from the checkpoint's point."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "input.txt").write_text("".join(f"rec{i:04d}\n" for i in range(COUNT)))
    (data / "prog.py").write_text(PROGRAM)
    b = _python_bundle(make_bundle, data, [PYTHON, "/data/prog.py", str(COUNT)])
    cid = f"ckpt-lr-{tmp_path.name[-8:]}"
    images = tmp_path / "images"
    first = tmp_path / "first.out"
    create = _create(state_root, b, cid, first, tmp_path / "first.err")
    assert create.returncode == 0
    try:
        assert runsc(state_root, "start", cid).returncode == 0
        _wait_for(first, 5)
        res = runsc(state_root, "checkpoint", "--leave-running", "--image-path", str(images),
                    cid, timeout=120)
        assert res.returncode == 0, res.stderr
        assert runsc(state_root, "wait", cid, timeout=120).returncode == 0
    finally:
        runsc(state_root, "delete", "--force", cid)
    assert first.read_text() == _expected(COUNT)
    res = runsc(state_root, "restore", "--image-path", str(images), "--bundle", str(b),
                cid, timeout=120)
    assert res.returncode == 0, res.stderr
    rest = res.stdout
    assert 0 < len(rest) < len(_expected(COUNT)) and _expected(COUNT).endswith(rest), rest
    assert (data / "log.txt").read_text() == "".join(f"{i} " for i in range(COUNT))
    assert_no_process_left(cid)


def _image_dir(tmp_path: Path, content: bytes) -> Path:
    d = Path(tempfile.mkdtemp(dir=tmp_path))
    (d / image.IMAGE_NAME).write_bytes(content)
    return d


@pytest.mark.parametrize("case", ["truncated", "flipped", "version", "garbage"])
def test_bad_image_is_one_line_and_leaves_nothing(state_root: Path,  # noqa: F811
                                                  make_bundle: Callable[..., Path],  # noqa: F811
                                                  tmp_path: Path, case: str) -> None:
    good = image.encode({"kernel": {"init": 1}, "groups": []})
    if case == "truncated":
        content = good[: len(good) // 2]
    elif case == "flipped":
        raw = bytearray(good)
        raw[-3] ^= 0xFF
        content = bytes(raw)
    elif case == "version":
        outer = msgpack.unpackb(good)
        outer[1] = image.VERSION + 1
        content = msgpack.packb(outer, use_bin_type=True)
    else:
        content = os.urandom(64)
    d = _image_dir(tmp_path, content)
    b = make_bundle(["true"])
    cid = f"ckpt-corrupt-{tmp_path.name[-10:]}"
    res = runsc(state_root, "restore", "--image-path", str(d), "--bundle", str(b), cid)
    assert res.returncode != 0
    assert "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr
    want = {"truncated": "corrupt", "flipped": "corrupt", "garbage": "corrupt",
            "version": f"version {image.VERSION + 1} is not supported"}[case]
    assert want in res.stderr, res.stderr
    assert not (state_root / cid).exists()
    assert runsc(state_root, "state", cid).returncode != 0
    assert_no_process_left(cid)


@pytest.mark.parametrize("state", [
    {"kernel": {"init": 1}, "groups": []},  # keys missing
    {"kernel": {"init": 1, "next_pid": 2}, "groups": [{"tgid": "one"}], "shared": [],
     "mms": [], "fdtables": [], "descs": [], "pipes": [], "trees": []},
    {"kernel": {"init": 1, "next_pid": 2}, "shared": [], "mms": [], "fdtables": [],
     "descs": [], "pipes": [], "trees": [{"target": b"/nowhere", "kind": "tmpfs",
                                          "tree": {"entries": []}}], "groups": []},
    {"kernel": {"init": 1, "next_pid": 2}, "shared": [], "fdtables": [[]], "descs": [],
     "pipes": [], "trees": [],  # a VMA over the stub's region
     "mms": [{"brk_start": 0, "current_brk": 0, "auxv": b"", "vmas": [
         {"start": 1 << 47, "end": (1 << 47) + 4096, "prot": 7, "shared": False, "name": "",
          "vmflags": 0, "data": []}]}],
     "groups": [{"tgid": 1, "parent": None, "pgid": 1, "sid": 1, "zombie": False, "cwd": b"/",
                 "mm": 0, "fds": 0, "tasks": [{"creds": {
                     f: [] if f == "groups" else 0 for f in task_state.CRED_FIELDS}}]}]},
])
def test_well_formed_image_with_bad_contents(state_root: Path,  # noqa: F811
                                             make_bundle: Callable[..., Path],  # noqa: F811
                                             tmp_path: Path, state: dict) -> None:
    """An image whose checksum holds but whose contents do not make sense:
    refused by the new Sentry with one line, and nothing left behind."""
    d = _image_dir(tmp_path, image.encode(state))
    b = make_bundle(["true"])
    cid = f"ckpt-bad-{tmp_path.name[-10:]}"
    res = runsc(state_root, "restore", "--image-path", str(d), "--bundle", str(b), cid)
    assert res.returncode != 0
    assert "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert "cannot restore the checkpoint" in res.stderr, res.stderr
    if "mms" in state and state["mms"]:
        assert "bad VMA" in res.stderr, res.stderr
    assert runsc(state_root, "state", cid).returncode != 0
    assert_no_process_left(cid)


def test_unsavable_object_is_named(state_root: Path, make_bundle: Callable[..., Path],  # noqa: F811
                                   tmp_path: Path) -> None:
    """A process holding a socket: the checkpoint fails naming it, and the
    container goes on running, untouched."""
    b = make_bundle(["sh", "-c", "nc -l -p 5000 < /dev/null; sleep 60"])
    (b / "rootfs/bin/nc").symlink_to("busybox")
    cid = f"ckpt-sock-{tmp_path.name[-8:]}"
    res = runsc_bg(state_root, "create", "--bundle", str(b), cid)
    assert res.returncode == 0, res.stderr
    try:
        assert runsc(state_root, "start", cid).returncode == 0
        images = tmp_path / "img"
        deadline = time.monotonic() + 30
        while True:  # until nc has its socket
            res = runsc(state_root, "checkpoint", "--leave-running", "--image-path",
                        str(images), cid)
            if res.returncode != 0 and "socket" in res.stderr.lower():
                break
            assert time.monotonic() < deadline, res.stderr
        assert "Traceback" not in res.stderr and "fd" in res.stderr, res.stderr
        assert not (images / image.IMAGE_NAME).exists()
        st = json.loads(runsc(state_root, "state", cid).stdout)
        assert st["status"] == "running", st
    finally:
        runsc(state_root, "delete", "--force", cid)


OVERLAY_SCRIPT = (
    "echo made-before > /made.txt; echo shm-before > /dev/shm/x; ln /made.txt /hard.txt; "
    "rm /bin/true; exec 3</made.txt; read first <&3; echo first:$first; "
    "i=0; while [ $i -lt 120 ]; do echo n$i; i=$((i+1)); sleep 0.02; done; "
    "cat /made.txt /dev/shm/x /hard.txt; echo >> /made.txt again; cat /hard.txt; "
    "ls /bin/true 2>&1 || echo gone; cat <&3; echo end")


def test_in_memory_root_and_tmpfs_contents_are_saved(
        state_root: Path, make_bundle: Callable[..., Path], tmp_path: Path) -> None:  # noqa: F811
    """--overlay2=root:memory: what the container wrote to its root (the
    overlay's upper layer: a file, a hard link, a removed file's whiteout) and
    to /dev/shm (a tmpfs) lives in the Sentry's memory only; the restored
    sandbox has it, and an fd open on such a file keeps its offset."""
    b = make_bundle(["sh", "-c", OVERLAY_SCRIPT],
                    edit=lambda cfg: cfg["root"].update(readonly=False))
    (b / "rootfs/bin/ls").symlink_to("busybox")
    cid = f"ckpt-ovl-{tmp_path.name[-8:]}"
    images = tmp_path / "images"
    first = tmp_path / "first.out"
    create = _create(state_root, b, cid, first, tmp_path / "first.err",
                     "--overlay2", "root:memory")
    assert create.returncode == 0
    try:
        assert runsc(state_root, "start", cid).returncode == 0
        _wait_for(first, 10)
        res = runsc(state_root, "checkpoint", "--image-path", str(images), cid, timeout=120)
        assert res.returncode == 0, res.stderr
    finally:
        runsc(state_root, "delete", "--force", cid)
    before = first.read_text()
    assert before.startswith("first:made-before\nn0\n") and "end" not in before, before
    res = runsc(state_root, "--overlay2", "root:memory", "restore", "--image-path",
                str(images), "--bundle", str(b), cid, timeout=120)
    assert res.returncode == 0, res.stderr
    expected = ("first:made-before\n" + "".join(f"n{i}\n" for i in range(120))
                + "made-before\nshm-before\nmade-before\nmade-before\nagain\n"
                + "ls: /bin/true: No such file or directory\ngone\nagain\nend\n")
    assert before + res.stdout == expected, (before, res.stdout)
    assert not (b / "rootfs/made.txt").exists()  # never written through to the host
    assert (b / "rootfs/bin/true").is_symlink()
    assert_no_process_left(cid)


THREADS = r"""
import os, sys, threading, time
n = int(sys.argv[1])
lock = threading.Lock()
state = {"a": 0, "b": 0}

def work(name):
    for i in range(n):
        with lock:
            state[name] += 1
            print(name, state[name], flush=True)
        time.sleep(0.02)

threads = [threading.Thread(target=work, args=(k,)) for k in ("a", "b")]
for t in threads:
    t.start()
for t in threads:
    t.join()  # the main thread waits in futex across the checkpoint
print("joined", state["a"], state["b"], threading.active_count(), flush=True)
"""


def test_threads_go_on(state_root: Path, make_bundle: Callable[..., Path],  # noqa: F811
                       tmp_path: Path) -> None:
    """A process of three threads (two counting, one joining them): every
    thread is saved and made again in the new stub process, and each goes on."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "prog.py").write_text(THREADS)
    n = 80
    b = _python_bundle(make_bundle, data, [PYTHON, "/data/prog.py", str(n)])
    cid = f"ckpt-thr-{tmp_path.name[-8:]}"
    images = tmp_path / "images"
    first = tmp_path / "first.out"
    create = _create(state_root, b, cid, first, tmp_path / "first.err")
    assert create.returncode == 0
    try:
        assert runsc(state_root, "start", cid).returncode == 0
        _wait_for(first, 10)
        res = runsc(state_root, "checkpoint", "--image-path", str(images), cid, timeout=120)
        assert res.returncode == 0, res.stderr
    finally:
        runsc(state_root, "delete", "--force", cid)
    before = first.read_text()
    assert "joined" not in before
    res = runsc(state_root, "restore", "--image-path", str(images), "--bundle", str(b),
                cid, timeout=120)
    assert res.returncode == 0, res.stderr
    lines = (before + res.stdout).splitlines()
    assert lines[-1] == f"joined {n} {n} 1", lines[-3:]
    for name in ("a", "b"):  # each count once, in order, across the restore
        assert [int(x.split()[1]) for x in lines if x.startswith(name + " ")] == \
            list(range(1, n + 1))
    assert_no_process_left(cid)


def test_sysv_ipc_is_refused(state_root: Path, make_bundle: Callable[..., Path],  # noqa: F811
                             tmp_path: Path) -> None:
    """A System V semaphore set is not saved: the checkpoint says so, and
    the container runs on."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "prog.py").write_text(
        "import ctypes, time\n"
        "print(ctypes.CDLL(None).semget(0, 1, 0o1600), flush=True)\n"
        "time.sleep(60)\n")
    b = _python_bundle(make_bundle, data, [PYTHON, "/data/prog.py"])
    cid = f"ckpt-ipc-{tmp_path.name[-8:]}"
    out = tmp_path / "first.out"
    create = _create(state_root, b, cid, out, tmp_path / "first.err")
    assert create.returncode == 0
    try:
        assert runsc(state_root, "start", cid).returncode == 0
        assert _wait_for(out, 1).strip() == "0"  # the set exists
        res = runsc(state_root, "checkpoint", "--image-path", str(tmp_path / "img"), cid)
        assert res.returncode != 0
        assert "1 System V semaphore sets" in res.stderr and "Traceback" not in res.stderr
        st = json.loads(runsc(state_root, "state", cid).stdout)
        assert st["status"] == "running", st
    finally:
        runsc(state_root, "delete", "--force", cid)
    assert_no_process_left(cid)
