"""The Gofer's command line parsed by hand (gofer/args.py) means what
argparse makes of it, and whatever the hand parser does not take goes to
argparse, whose messages and exit status stay the Gofer's."""

from __future__ import annotations

import subprocess
import sys

import pytest
from helpers import REPO_ROOT

from gofer import args as gofer_args

DOC = "Gofer"


@pytest.mark.parametrize("argv", [
    ["--root", "/r", "--channel", "/pyvisor-1-ab", "--sentry-pid", "12"],
    ["--root", "/r", "--channel", "c", "--sentry-pid", "12", "--readonly",
     "--attach", "m0:ro:/a", "--attach", "m1:rw:/b:c", "--no-confine"],
    ["--seccomp", "log", "--sentry-pid", "7", "--channel", "c", "--root", "/"],
    ["--root", "/r", "--channel", "c", "--sentry-pid", "12", "--late-fd", "9",
     "--donate-fd", "8"],
])
def test_quick_parse_is_argparse(argv: list[str]) -> None:
    quick = gofer_args._quick_args(argv)
    assert quick is not None
    assert vars(quick) == vars(gofer_args._parse_args(argv, DOC))
    assert vars(gofer_args.parse(argv, DOC)) == vars(quick)


@pytest.mark.parametrize("argv", [
    [], ["--help"], ["--root", "/r", "--channel", "c"],
    ["--root", "/r", "--root", "/s", "--channel", "c", "--sentry-pid", "1"],
    ["--root=/r", "--channel", "c", "--sentry-pid", "1"],
    ["--root", "/r", "--channel", "c", "--sentry-pid", "x1"],
    ["--root", "/r", "--channel", "c", "--sentry-pid", "1", "--seccomp", "allow"],
    ["--root", "/r", "--channel", "c", "--sentry-pid", "1", "--bogus"],
    ["--root", "/r", "--channel", "c", "--sentry-pid"],
    ["--root", "-r", "--channel", "c", "--sentry-pid", "1"],
    ["--root", "/r", "--channel", "c", "--sentry-pid", "1", "--late-fd", "x"],
])
def test_the_rest_goes_to_argparse(argv: list[str]) -> None:
    assert gofer_args._quick_args(argv) is None


def test_bad_attach_is_argparse_error() -> None:
    """A malformed --attach passes the quick parser's shape check but not
    the spec check: argparse reports it, exit status 2, as before."""
    res = subprocess.run([sys.executable, "-m", "gofer.server", "--root", "/", "--channel", "c",
                          "--sentry-pid", "1", "--attach", "bad"], cwd=REPO_ROOT,
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 2
    assert "--attach 'bad': expected NAME:ro|rw:PATH" in res.stderr
