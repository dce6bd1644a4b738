"""Files, differential: busybox applets, the host's dynamic coreutils and dash,
and a C program run on the same fixture tree natively and in the sandbox, and
must print the same thing and exit the same way.

The fixture trees live under /tmp, so both sides see the same files (the
sandbox's root is the host's "/", served read-only by the Gofer). Commands that
write run in the sandbox first: its writes land in the Sentry's in-memory
overlay, so the host tree must be unchanged afterwards (checked), and then the
same command runs natively on that unchanged tree.

Shell scripts call applets as ``/bin/busybox APPLET``: busybox sh runs a bare
applet name by exec'ing /proc/self/exe, which depends on the Sentry's procfs
(checked separately in test_bare_applet_through_proc_self_exe), not on files.

Legitimate differences, not compared: a directory's st_size (4096 on the
host's ext4, 0 in the in-memory overlay) once the sandbox has written to it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from helpers import Programs, Result, run_native, run_sandbox, shell_status

BB = "/bin/busybox"

pytestmark = pytest.mark.sandbox

TEXT = "first line\nsecond line with  two  spaces\n\ttabbed\nlast line without newline"
BIG_SIZE = 8 * 1024 * 1024  # far more than the 1 MiB msize
MANY = 5000


def check_same(nat: Result, box: Result, *, stderr: bool = True) -> None:
    """The sandbox run printed and exited as the native one did."""
    assert "Traceback" not in box.err, box.describe()
    assert box.stdout == nat.stdout, f"native:\n{nat.describe()}\nsandbox:\n{box.describe()}"
    if stderr:
        assert box.err == nat.err, f"native:\n{nat.describe()}\nsandbox:\n{box.describe()}"
    assert box.returncode == shell_status(nat.returncode), (
        f"native:\n{nat.describe()}\nsandbox:\n{box.describe()}")


def differential(argv: Sequence[str | os.PathLike[str]], *, stderr: bool = True,
                 stdin: bytes | None = None) -> Result:
    nat = run_native(argv, stdin=stdin)
    box = run_sandbox(argv, stdin=stdin)
    check_same(nat, box, stderr=stderr)
    return box


def snapshot(root: Path) -> dict[str, tuple[int, int, bytes | str | None]]:
    """Everything a sandbox must not change on the host: per path, its mode,
    size, and content (file bytes, symlink target)."""
    snap: dict[str, tuple[int, int, bytes | str | None]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            path = Path(dirpath, name)
            st = path.lstat()
            if path.is_symlink():
                content: bytes | str | None = os.readlink(path)
            elif path.is_file():
                content = path.read_bytes()
            else:
                content = None
            snap[str(path.relative_to(root))] = (st.st_mode, st.st_size, content)
    return snap


def write_then_native(script: str, work: Path, *, dash: bool = False) -> Result:
    """Run ``script`` (which writes under ``work``) with busybox sh (or the
    host's dash) in the sandbox, check the host's ``work`` is untouched, then
    run it natively and compare."""
    argv = ["/bin/dash", "-c", script] if dash else [BB, "sh", "-c", script]
    before = snapshot(work)
    box = run_sandbox(argv)
    assert snapshot(work) == before, "the sandbox's writes reached the host\n" + box.describe()
    nat = run_native(argv)
    check_same(nat, box)
    return box


@contextlib.contextmanager
def host_tmp_dir(tag: str) -> Iterator[Path]:
    """A fresh directory under /tmp, removed afterwards. Not pytest's tmp_path:
    a concurrent pytest session may prune /tmp/pytest-of-USER/ under a running
    module fixture."""
    path = Path(tempfile.mkdtemp(prefix=f"pyvisor-{tag}-", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def tree() -> Iterator[Path]:
    """A read-only fixture tree: files of several kinds, links, a big file and
    a big directory."""
    with host_tmp_dir("files-tree") as parent:
        # One level down, so that "ls -la" shows a ".." nobody else changes
        # (/tmp's own times and link count move all the time).
        root = parent / "tree"
        root.mkdir()
        _build_tree(root)
        os.utime(parent, (1_000_000_000, 1_000_000_000))
        yield root


def _build_tree(root: Path) -> None:
    (root / "text.txt").write_text(TEXT)
    (root / "empty").write_bytes(b"")
    (root / "with space.txt").write_text("spaced\n")
    sub = root / "sub" / "deep"
    sub.mkdir(parents=True)
    (sub / "file.bin").write_bytes(bytes(range(256)) * 12 + b"tail")
    (root / "sub" / "note").write_text("note\n")
    script = root / "exec.sh"
    script.write_text("#!/bin/sh\necho from script\n")
    script.chmod(0o755)
    ro = root / "ro.txt"
    ro.write_text("read only\n")
    ro.chmod(0o400)
    os.link(root / "text.txt", root / "hardlink")
    (root / "link_rel").symlink_to("text.txt")
    (root / "link_dir").symlink_to("sub")
    (root / "link_abs").symlink_to(root / "sub" / "note")
    (root / "dangling").symlink_to("nowhere")
    (root / "loop1").symlink_to("loop2")
    (root / "loop2").symlink_to("loop1")
    (root / "self").symlink_to("self")
    (root / "big.bin").write_bytes(secrets.token_bytes(BIG_SIZE))
    many = root / "many"
    many.mkdir()
    for i in range(MANY):
        fd = os.open(many / f"entry-{i:05d}", os.O_WRONLY | os.O_CREAT, 0o644)
        os.close(fd)
    # Same times everywhere, so nothing depends on when the fixture was made.
    for dirpath, dirnames, filenames in os.walk(root, topdown=False):
        for name in [*dirnames, *filenames]:
            os.utime(Path(dirpath, name), (1_000_000_000, 1_000_000_000), follow_symlinks=False)
    os.utime(root, (1_000_000_000, 1_000_000_000))


@pytest.fixture
def work() -> Iterator[Path]:
    """A small tree for commands that change files."""
    with host_tmp_dir("files-work") as w:
        _build_work(w)
        yield w


def _build_work(w: Path) -> None:
    (w / "a").write_text("alpha\n")
    (w / "b").write_text("beta\n")
    (w / "dir").mkdir()
    (w / "dir" / "inner").write_text("inner\n")
    (w / "dir" / "sub").mkdir()
    (w / "dir" / "sub" / "leaf").write_text("leaf\n")
    (w / "empty_dir").mkdir()


# Read-only busybox applets on the fixture tree, in groups (one sandbox per
# group keeps the suite fast): group -> commands, each an argv after "busybox"
# in which "T" stands for the tree. Every command's output is followed by its
# exit status.
READ_ONLY: dict[str, list[list[str]]] = {
    "cat": [
        ["cat", "T/text.txt", "T/sub/note", "T/with space.txt", "T/empty"],
        ["cat", "T/sub/deep/file.bin"],
        ["cat", "T/link_rel", "T/link_dir/note", "T/link_abs", "T/hardlink"],
        ["cat", "T/text.txt", "T/missing", "T/sub/note"],
        ["cat", "T/sub"],
        ["cat", "T/ro.txt"],
    ],
    "loops_and_dangling": [
        ["cat", "T/dangling"],
        ["cat", "T/loop1"],
        ["cat", "T/self"],
        ["cat", "T/loop1/x"],
        ["stat", "-L", "T/loop2"],
        ["ls", "T/loop1/"],
        ["ls", "-L", "T/loop1"],
        ["readlink", "-f", "T/loop1"],
        ["find", "-L", "T/loop1"],
    ],
    "ls": [
        ["ls", "-la", "--full-time", "T"],
        ["ls", "-lan", "T", "T/sub", "T/sub/deep"],
        ["ls", "-lR", "--full-time", "T/sub", "T/link_dir"],
        ["ls", "-laL", "--full-time", "T/link_dir"],
        ["ls", "-ld", "T/sub", "T/link_dir", "T/dangling", "T/loop1"],
        ["ls", "-1", "T/hardlink", "T/text.txt", "T/missing"],
        ["ls", "-s", "T/big.bin", "T/text.txt"],
    ],
    "stat": [
        ["stat", "-c", "%n %s %a %F %h", "T/text.txt", "T/empty", "T/sub", "T/sub/deep",
         "T/exec.sh", "T/ro.txt", "T/hardlink", "T/link_rel", "T/dangling", "T/big.bin",
         "T/many"],
        ["stat", "-L", "-c", "%n %s %a %F %h", "T/link_rel", "T/link_dir", "T/link_abs"],
        ["stat", "-c", "%n %Y %Z %u %g %b", "T/text.txt", "T/sub", "T/link_rel"],
        ["stat", "T/missing"],
    ],
    "sums": [
        ["sha256sum", "T/text.txt", "T/sub/deep/file.bin", "T/empty", "T/hardlink"],
        ["md5sum", "T/text.txt", "T/sub/deep/file.bin", "T/with space.txt"],
        ["sha256sum", "T/big.bin"],
        ["md5sum", "T/big.bin"],
        ["sha256sum", "T/missing"],
    ],
    "head_wc_du": [
        ["head", "-c", "100", "T/sub/deep/file.bin"],
        ["head", "-n", "2", "T/text.txt"],
        ["tail", "-c", "5000", "T/big.bin"],
        ["wc", "T/text.txt", "T/sub/note", "T/empty", "T/sub/deep/file.bin"],
        ["wc", "-c", "T/big.bin"],
        ["du", "-sb", "T/sub", "T/text.txt"],
        ["du", "-s", "T/sub", "T/big.bin"],
        ["od", "-A", "x", "-t", "x1", "-N", "48", "T/sub/deep/file.bin"],
    ],
    "links": [
        ["readlink", "T/link_rel"],
        ["readlink", "T/link_dir"],
        ["readlink", "T/link_abs"],
        ["readlink", "T/dangling"],
        ["readlink", "-f", "T/dangling"],
        ["readlink", "-f", "T/link_dir/deep/file.bin"],
        ["readlink", "T/text.txt"],
        ["realpath", "T/link_dir/deep/../note"],
    ],
    "misc": [
        ["sh", "-c", "for f in T/text.txt T/sub T/link_rel T/dangling T/exec.sh "
         "T/ro.txt T/empty T/missing; do "
         "[ -e \"$f\" ]; e=$?; [ -f \"$f\" ]; r=$?; [ -d \"$f\" ]; d=$?; "
         "[ -L \"$f\" ]; l=$?; [ -x \"$f\" ]; x=$?; [ -s \"$f\" ]; s=$?; "
         "echo \"$f $e$r$d$l$x$s\"; done"],
        ["cmp", "T/text.txt", "T/hardlink"],
        ["cmp", "T/text.txt", "T/sub/note"],
        ["grep", "-n", "line", "T/text.txt"],
        ["grep", "-r", "-l", "note", "T/sub"],
        ["sh", "T/exec.sh"],
    ],
}


@pytest.mark.parametrize("group", sorted(READ_ONLY))
def test_busybox_read_only(tree: Path, group: str) -> None:
    lines = []
    for cmd in READ_ONLY[group]:
        args = [str(tree) if a == "T" else a.replace("T/", f"{tree}/") for a in cmd]
        quoted = " ".join(shlex.quote(a) for a in [BB, *args])
        lines.append(f"echo '== {shlex.join(cmd)}'; {quoted}; echo \"status $?\"")
    differential([BB, "sh", "-c", "\n".join(lines)])


def test_find_sorted(tree: Path) -> None:
    """find prints in getdents order, which no file system promises: compare sorted."""
    lines = []
    for extra in ("", "-type f", "-type l", "-name '*.txt'", "-maxdepth 1", "-L -type f"):
        lines.append(f"echo '== find {extra}'; {BB} find {tree}/sub {tree}/text.txt "
                     f"{tree}/link_dir {extra} | {BB} sort; echo status $?")
    lines.append(f"{BB} find {tree} -maxdepth 1 | {BB} sort")
    differential([BB, "sh", "-c", "\n".join(lines)])


def test_many_entries(tree: Path) -> None:
    """A directory of 5,000 entries: several getdents64 rounds, sorted equal."""
    many = tree / "many"
    box = differential([BB, "sh", "-c",
                        f"{BB} ls {many}; {BB} ls -1 {many} | {BB} wc -l; "
                        f"{BB} find {many} -type f | {BB} sort | {BB} md5sum; "
                        f"/bin/ls {many} | /bin/wc -l"])
    lines = box.out.splitlines()
    assert len(lines) == MANY + 3 and lines[MANY] == str(MANY), box.out[-300:]


def test_big_file(tree: Path) -> None:
    """8 MiB through a 1 MiB msize: whole, piped, and copied inside the sandbox."""
    expect = hashlib.sha256((tree / "big.bin").read_bytes()).hexdigest()
    copy = f"/tmp/pyvisor-big-copy-{secrets.token_hex(8)}"  # unique: other runs share /tmp
    script = (f"{BB} cat {tree}/big.bin | {BB} sha256sum; "
              f"{BB} cp {tree}/big.bin {copy} && "
              f"{BB} sha256sum < {copy} && {BB} wc -c < {copy}; "
              f"{BB} dd if={tree}/big.bin bs=3000000 skip=1 count=1 2>/dev/null | {BB} wc -c")
    try:
        box = run_sandbox([BB, "sh", "-c", script])
        assert box.returncode == 0, box.describe()
        assert box.out == f"{expect}  -\n{expect}  -\n{BIG_SIZE}\n3000000\n", box.describe()
        assert not Path(copy).exists(), "the sandbox's copy reached the host's /tmp"
    finally:
        Path(copy).unlink(missing_ok=True)


def test_read_big_file_in_one_syscall(tree: Path) -> None:
    """dd with one 8 MiB block: a single read(2) bigger than msize returns the whole file."""
    differential([BB, "sh", "-c",
                  f"{BB} dd if={tree}/big.bin bs={BIG_SIZE} count=1 2>/dev/null | "
                  f"{BB} md5sum"])


# Host dynamic binaries (through the dynamic loader and the host's libc).
def test_dynamic_echo() -> None:
    differential(["/bin/echo", "hello", "world", "-n-is-not-first"])


def test_dynamic_cat(tree: Path) -> None:
    differential(["/bin/dash", "-c",
                  f"/bin/cat {tree}/text.txt {tree}/sub/deep/file.bin; echo status $?; "
                  f"/bin/cat {tree}/big.bin | /bin/md5sum; "
                  f"/bin/cat {tree}/loop1; echo status $?"])


def test_dynamic_ls_1(tree: Path) -> None:
    differential(["/bin/dash", "-c",
                  f"/bin/ls -1 {tree}; /bin/ls -1a {tree}/sub {tree}/link_dir; "
                  f"/bin/ls -1 {tree}/missing; echo status $?"])


def test_dynamic_ls_long(tree: Path) -> None:
    """GNU ls -l asks for the file's ACL/security label (lgetxattr) and prints
    the error unless it is one of "no such attribute"/"not supported"."""
    differential(["/bin/ls", "-lan", "--time-style=+%s", str(tree)])


def test_dash_script(work: Path) -> None:
    w = work
    script = f"""
set -u
for i in 1 2 3; do echo "line $i" >> {w}/out; done
echo first > {w}/over; echo second > {w}/over
i=0
while read -r line; do i=$((i+1)); echo "read $i: $line"; done < {w}/out
for word in alpha dir zz; do
  case $word in
    a*) echo "$word starts with a";;
    d??) echo "$word has three letters";;
    *) echo "$word is something else";;
  esac
done
cat <<EOF > {w}/heredoc
here $i
  indented \\$HOME kept literal
EOF
cat <<'EOF' >> {w}/heredoc
quoted $i stays
EOF
/bin/cat {w}/over {w}/heredoc
/bin/cat < {w}/a
exec 3> {w}/fd3; echo via fd3 >&3; exec 3>&-
/bin/cat {w}/fd3
/bin/cat {w}/missing 2>/dev/null || echo "cat failed: $?"
/bin/ls -1 {w}
if [ -d {w}/dir ] && [ ! -e {w}/nope ]; then echo tests ok; fi
/bin/cat {w}/out | /bin/cat > {w}/piped && /bin/cat {w}/piped
exit 3
"""
    write_then_native(script, w, dash=True)


# Writing commands: run in the sandbox first (its writes stay in the overlay),
# then natively; the script is the same, with $W the work dir.
WRITES = {
    "cp": "$B cp $W/a $W/copy && $B cat $W/copy && $B cmp $W/a $W/copy && echo same; "
          "$B cp -r $W/dir $W/dir2 && $B find $W/dir2 | $B sort && $B cat $W/dir2/sub/leaf; "
          "$B cp $W/missing $W/x; echo status $?; $B cp $W/dir $W/x; echo status $?",
    "cp_mode": "$B chmod 751 $W/a && $B cp -p $W/a $W/kept && $B cp $W/a $W/plain && "
               "$B stat -c '%n %a %s' $W/kept $W/plain",
    "mv": "$B mv $W/a $W/moved && $B cat $W/moved; [ -e $W/a ]; echo a exists $?; "
          "$B mv $W/dir $W/dir_moved && $B ls -R $W/dir_moved; $B mv $W/b $W/empty_dir/ && "
          "$B ls $W/empty_dir; $B mv $W/nothing $W/x; echo status $?; $B ls $W",
    "mv_over": "$B mv $W/a $W/b && $B cat $W/b && $B ls $W",
    "rm": "$B rm $W/a && $B ls $W; $B rm $W/a; echo status $?; $B rm $W/dir; echo status $?; "
          "$B rm -r $W/dir && $B ls $W; $B rmdir $W/empty_dir && $B ls $W; $B rm -f $W/nothing; "
          "echo status $?",
    "rmdir_not_empty": "$B mkdir $W/d2 && $B touch $W/d2/f && $B rmdir $W/d2; echo status $?",
    "mkdir_p": "$B mkdir -p $W/x/y/z && $B find $W/x | $B sort; $B mkdir $W/x; echo status $?; "
               "$B mkdir -p $W/x/y; echo status $?; $B mkdir $W/a/sub; echo status $?; "
               "$B mkdir -m 700 $W/m && $B stat -c '%a %F' $W/m",
    "ln_s_readlink": "$B ln -s a $W/l && $B readlink $W/l && $B cat $W/l; "
                     "$B ln -s /nonexistent/target $W/dl && $B readlink $W/dl; $B cat $W/dl; "
                     "echo status $?; $B ln -s a $W/l; echo status $?; "
                     "$B ln -sf b $W/l && $B cat $W/l; $B stat -c '%N' $W/l",
    "ln_hard": "$B ln $W/a $W/hard && $B stat -c '%n %h %s' $W/a $W/hard && "
               "echo more >> $W/hard && $B cat $W/a; $B rm $W/a && $B stat -c '%h' $W/hard; "
               "$B ln $W/dir $W/dirlink; echo status $?",
    "touch_stat": "$B touch $W/new && $B stat -c '%n %s %a %F %h' $W/new; "
                  "$B touch -d '2001-02-03 04:05:06' $W/new && $B stat -c '%Y' $W/new; "
                  "$B touch -r $W/new $W/a && $B stat -c '%Y' $W/a; "
                  "$B touch -c $W/notcreated; [ -e $W/notcreated ]; echo created $?",
    "redirections": "echo one > $W/r; echo two >> $W/r; echo three >> $W/r; $B cat $W/r; "
                    "echo replaced > $W/r; $B cat $W/r; $B wc -l < $W/r; "
                    "echo x > $W/dir; echo status $?",
    "truncate_chmod": "$B truncate -s 3 $W/a && $B cat $W/a; echo; $B truncate -s 10 $W/b && "
                      "$B od -c $W/b; $B chmod 0 $W/b && $B stat -c '%a' $W/b; "
                      "$B chmod u+x,g-r $W/a && $B stat -c '%A' $W/a",
    "sha256_after_write": "echo written > $W/a && $B sha256sum $W/a $W/b && $B md5sum $W/a",
    "du_written_files": "$B dd if=/dev/zero of=$W/z bs=1000 count=7 2>/dev/null && "
                        "$B du -b $W/z $W/a",
    "cd_pwd": "cd $W/dir/sub && pwd && cd .. && pwd && cd ../.. && pwd; cd $W/missing; "
              "echo status $?; cd $W/a; echo status $?",
}


@pytest.mark.parametrize("name", sorted(WRITES))
def test_busybox_writes(work: Path, name: str) -> None:
    script = f"B=/bin/busybox; W={work}; " + WRITES[name]
    write_then_native(script, work)


def test_cd_pwd_through_symlink(tree: Path) -> None:
    differential([BB, "sh", "-c",
                  f"cd {tree}/link_dir/deep && pwd && pwd -P && cd .. && pwd && "
                  f"{BB} ls && cd {tree} && pwd && cd / && pwd && cd .. && pwd"])


def test_cwd_flag(tree: Path) -> None:
    """--cwd DIR: relative paths resolve there, as natively with cwd=DIR."""
    script = (f"{BB} cat text.txt sub/note; {BB} pwd; {BB} ls; "
              f"{BB} stat -c '%n %s' link_rel sub/../empty; /bin/ls -1 .; "
              f"cd sub && {BB} pwd && {BB} cat note")
    argv = [BB, "sh", "-c", script]
    nat = subprocess.run(argv, cwd=tree, capture_output=True, timeout=30, start_new_session=True)
    assert nat.returncode == 0, nat
    box = run_sandbox(argv, extra_flags=["--cwd", str(tree)])
    assert "Traceback" not in box.err, box.describe()
    assert box.stdout == nat.stdout, box.describe()
    assert box.returncode == nat.returncode, box.describe()
    # Without a shell in between: the program itself starts in DIR.
    box = run_sandbox([BB, "cat", "sub/note"], extra_flags=["--cwd", str(tree)])
    assert (box.returncode, box.out) == (0, "note\n"), box.describe()


# /dev
def test_dev_read() -> None:
    """/dev/null is empty, /dev/zero and /dev/full read zeros, /dev/urandom never ends."""
    box = differential([BB, "sh", "-c",
                        f"{BB} cat /dev/null; echo null $?; "
                        f"{BB} head -c 100000 /dev/zero | {BB} od -A d -t x1; "
                        f"{BB} head -c 10 /dev/full | {BB} od -A d -t x1; "
                        f"{BB} head -c 70000 /dev/urandom | {BB} wc -c"])
    assert box.out.startswith("null 0\n") and box.out.endswith("70000\n"), box.describe()


def test_dev_write() -> None:
    """Writing to /dev/full fails with ENOSPC, to /dev/null succeeds."""
    box = differential([BB, "sh", "-c",
                        f"echo x > /dev/full; echo status $?; "
                        f"{BB} dd if=/dev/zero of=/dev/full bs=1 count=1 2>/dev/null; "
                        f"echo status $?; {BB} cat /etc/hostname > /dev/null; echo status $?; "
                        f"echo x >> /dev/null; echo status $?"])
    assert box.out == "status 1\nstatus 1\nstatus 0\nstatus 0\n", box.describe()


@pytest.mark.parametrize("variant", ["static", "static-pie"])
def test_files_syscalls(programs: Programs, work: Path, variant: str) -> None:
    path = programs.path("files_syscalls", variant)
    scratch = work / "scratch"
    scratch.mkdir()
    box = run_sandbox([path, scratch])
    assert list(scratch.iterdir()) == [], "the sandbox's writes reached the host"
    nat = run_native([path, scratch])
    assert nat.returncode == 0 and nat.out.endswith("done\n"), nat.describe()
    nat_lines, box_lines = nat.out.splitlines(), box.out.splitlines()
    # One line per check: report the first that differs, then the whole picture.
    for n, b in zip(nat_lines, box_lines, strict=False):
        assert b == n, f"first difference: native {n!r}, sandbox {b!r}\n{box.describe()}"
    check_same(nat, box)


# The overlay guarantee: nothing the sandbox writes reaches the host.
def test_overlay_cp_into_host_tmp() -> None:
    target = Path(f"/tmp/pyvisor-x-{secrets.token_hex(8)}")
    box = run_sandbox([BB, "sh", "-c", f"{BB} cp /etc/hostname {target} && {BB} cat {target}"])
    try:
        assert box.returncode == 0, box.describe()
        assert box.stdout == Path("/etc/hostname").read_bytes(), box.describe()
        assert not target.exists(), "a file copied in the sandbox appeared on the host"
    finally:
        target.unlink(missing_ok=True)
    box = run_sandbox([BB, "cp", "/etc/hostname", str(target)])
    try:
        assert box.returncode == 0, box.describe()
        assert not target.exists(), "a file copied in the sandbox appeared on the host"
    finally:
        target.unlink(missing_ok=True)


def test_overlay_write_into_host_etc() -> None:
    name = f"/etc/pyvisor-test-{secrets.token_hex(6)}"
    before = sorted(os.listdir("/etc"))
    hostname = Path("/etc/hostname").read_bytes()
    box = run_sandbox([BB, "sh", "-c",
                       f"echo x > {name} && {BB} cat {name} && echo more >> /etc/hostname && "
                       f"{BB} tail -n 1 /etc/hostname"])
    try:
        assert box.returncode == 0, box.describe()
        assert box.out == "x\nmore\n", box.describe()
        assert not Path(name).exists(), "a file written in the sandbox appeared in the host /etc"
        assert sorted(os.listdir("/etc")) == before
        assert Path("/etc/hostname").read_bytes() == hostname
    finally:
        Path(name).unlink(missing_ok=True)


def test_overlay_rm_keeps_host_files(work: Path) -> None:
    """rm, mv and chmod in the sandbox leave the host's files alone
    (write_then_native checks that), and show what they show natively."""
    box = write_then_native(f"{BB} rm {work}/a && {BB} rm -r {work}/dir && "
                            f"{BB} mv {work}/b {work}/b2 && {BB} chmod 600 {work}/b2 && "
                            f"echo changed >> {work}/b2 && {BB} ls {work}; [ -e {work}/a ]; "
                            f"echo a exists $?", work)
    assert box.out == "b2\nempty_dir\na exists 1\n", box.describe()


def test_bare_applet_through_proc_self_exe(tree: Path, work: Path) -> None:
    """busybox sh runs a bare applet name by exec'ing /proc/self/exe: that must
    be the sandboxed busybox (procfs), not the host's /proc."""
    differential([BB, "sh", "-c", f"cat {tree}/text.txt | wc -l; ls {tree}/sub; "
                  f"cp {tree}/sub/note {work}/n2 && cat {work}/n2"])


def test_proc_exe_is_the_file_execve_ran() -> None:
    """/proc/<pid>/exe names the file execve ran (kept at exec, copied by fork),
    also when the program was started through a symlink, and in a forked child;
    a #! script's exe is its interpreter. Differential."""
    script = (
        "D=$(/bin/busybox mktemp -d) && /bin/busybox cp /bin/busybox $D/busybox && "
        "mkdir $D/l && ln -s ../busybox $D/l/busybox && "
        "printf '#!%s/busybox sh\\nreadlink /proc/$$/exe\\n' $D > $D/s && chmod +x $D/s && "
        "{ $D/l/busybox readlink /proc/self/exe; "
        "$D/busybox sh -c 'readlink /proc/$$/exe; (readlink /proc/self/exe)'; "
        "$D/s; } | sed \"s|$D|D|\"; /bin/busybox rm -rf $D"
    )
    box = differential([BB, "sh", "-c", script])
    assert box.out.splitlines() == ["D/busybox"] * 4, box.describe()


def test_readlink_proc_self_exe_is_not_the_host() -> None:
    """The application must never see the host's /proc: /proc/self/exe is the
    program itself, not the Sentry's or the Gofer's python."""
    box = differential([BB, "readlink", "/proc/self/exe"])
    # busybox itself (by its resolved path, as Linux names it), not a python
    assert box.out == f"{os.path.realpath(BB)}\n", box.describe()



def test_gofer_read_paths(programs: Programs, tmp_path: Path) -> None:
    """read/pread of a Gofer file through the Sentry's page cache, straight
    into the application's memory: every chunk and fill boundary, the end of
    the file, and a buffer whose tail is unmapped (a short count as Linux,
    not EFAULT: this failed when reads were copied out whole afterwards)."""
    data = bytes((i * 7919 + (i >> 9)) & 0xFF for i in range(3 * 1024 * 1024 + 12345))
    f = tmp_path / "data"
    f.write_bytes(data)
    for variant in ("static", "static-pie"):
        prog = programs.path("gofer_read_paths", variant)
        nat = run_native([prog, f])
        assert nat.returncode == 0 and "done" in nat.out, nat.describe()
        assert "pread into 100 mapped bytes: 100 " in nat.out, nat.describe()
        box = run_sandbox([prog, f])
        assert (box.returncode, box.out, box.err) == (nat.returncode, nat.out, nat.err), \
            box.describe()
