"""The Sentry's caches of Gofer files (sentry/vfs/goferfs.py's revalidation
rules) never hide a change made inside the sandbox: one process changes a
file (append, chmod, rename, unlink, create, link, truncate, a write through
another name, mkdir, rename over) and another, which looked at every name
just before (so its dentries, attributes, failed lookups and pages are
cached), must see exactly what it sees natively.

Both kinds of Gofer tree: the read-only root under its overlay (the files
exist on the host first, so they come from the Gofer; the changes land in
the overlay) and a writable bind mount (the changes go through the Gofer to
the host, which must end up as natively).
"""

from __future__ import annotations

from pathlib import Path

from helpers import Programs, run_native, run_sandbox


def _fresh(d: Path) -> Path:
    d.mkdir()
    (d / "f").write_bytes(b"hello\n")
    (d / "g").write_bytes(b"gone\n")
    for p in (d / "f", d / "g"):
        p.chmod(0o644)
    return d


def _tree(d: Path) -> dict[str, tuple[int, bytes]]:
    return {p.name: (p.stat().st_mode & 0o7777, p.read_bytes() if p.is_file() else b"")
            for p in sorted(d.iterdir())}


def test_changes_are_seen_through_the_overlay_root(programs: Programs, tmp_path: Path) -> None:
    prog = programs.path("cache_coherence")
    nat = run_native([prog, _fresh(tmp_path / "native")])
    assert nat.returncode == 0 and "rename g over h: child ok" in nat.out, nat.describe()
    box_dir = _fresh(tmp_path / "box")
    box = run_sandbox([prog, box_dir])
    assert (box.returncode, box.out, box.err) == (0, nat.out, nat.err), box.describe()
    assert _tree(box_dir) == {"f": (0o644, b"hello\n"), "g": (0o644, b"gone\n")}


def test_changes_are_seen_through_a_writable_bind(programs: Programs, tmp_path: Path) -> None:
    """Failed when a writable tree's attributes were trusted until a change
    marked them stale: link count and size of a hard link's other name."""
    prog = programs.path("cache_coherence")
    nat_dir = _fresh(tmp_path / "native")
    nat = run_native([prog, nat_dir])
    assert nat.returncode == 0 and "pwrite k (h's other name): child ok" in nat.out, \
        nat.describe()
    box_dir = _fresh(tmp_path / "box")
    box = run_sandbox([prog, "/mnt"], extra_flags=["-v", f"{box_dir}:/mnt"])
    assert (box.returncode, box.out, box.err) == (0, nat.out, nat.err), box.describe()
    assert _tree(box_dir) == _tree(nat_dir)
