"""`runsc.py do` without click (sentry/do_cli.py).

Why these tests: the click-free path parses `do`'s argv from its own table,
so the table must say exactly what runsc.py's click definition says (else
the same command line would behave two ways), anything else must reach
click (its usage errors are the only ones), and its point is start-up time,
so a usual `do` must not import click at all."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import click
import pytest
from helpers import REPO_ROOT, RUNSC
from test_shimcalls import _click_options

from sentry import do_cli

sys.path.insert(0, str(REPO_ROOT))
import runsc  # noqa: E402


def test_do_table_matches_click() -> None:
    cmd = runsc.cli.commands["do"]
    multiple = {o for p in cmd.params if isinstance(p, click.Option) and p.multiple
                for o in p.opts}
    opts = _click_options(cmd)
    assert {k: v[:2] for k, v in opts.items() if k not in multiple} == do_cli.OPTIONS
    assert {k: v[0] for k, v in opts.items() if k in multiple} == do_cli.MULTIPLE
    assert {name: default for name, _, default in opts.values()
            if name not in do_cli.MULTIPLE.values()} == do_cli.DEFAULTS
    args = [p for p in cmd.params if isinstance(p, click.Argument)]
    assert [str(p.name) for p in args] == ["argv"]


@pytest.mark.parametrize(("argv", "globals_", "values"), [
    (["do", "--", "/bin/true"], {}, {"argv": ["/bin/true"]}),
    (["do", "/bin/true"], {}, {"argv": ["/bin/true"]}),
    (["--debug", "--network", "host", "do", "--strace", "-e", "A=1", "--env=B=2",
      "-v", "/h:/d:ro", "--cwd", "/tmp", "--", "sh", "-c", "x"],
     {"debug": True, "network": "host"},
     {"strace": True, "envs": ["A=1", "B=2"], "volumes": ["/h:/d:ro"], "cwd": "/tmp",
      "argv": ["sh", "-c", "x"]}),
    (["do", "--network=host", "--profile", "--profile-format", "json", "--", "-x"], {},
     {"do_network": "host", "profile": True, "profile_format": "json", "argv": ["-x"]}),
    (["do", "--root", "/r", "--hostname", "h", "--kernel-release", "5.15.0", "ls", "-"], {},
     {"root_dir": "/r", "hostname": "h", "kernel_release": "5.15.0", "argv": ["ls", "-"]}),
])
def test_parse_do_forms(argv: list[str], globals_: dict[str, Any],
                        values: dict[str, Any]) -> None:
    parsed = do_cli.parse(argv)
    assert parsed is not None
    g, v = parsed
    assert {k: g[k] for k in globals_} == globals_
    assert set(g) == set(do_cli.GLOBALS_READ)
    assert {k: v[k] for k in values} == values
    assert set(v) == {*do_cli.DEFAULTS, "envs", "volumes", "argv"}


@pytest.mark.parametrize("argv", [
    [], ["do"], ["do", "--"], ["do", "--help"], ["do", "-h", "ls"], ["--help"],
    ["do", "ls", "-l"],  # click reads -l as do's option (an error): click says so
    ["do", "ls", "--", "x"], ["do", "--bogus", "ls"], ["do", "-debug", "ls"],
    ["do", "--network", "sandbox", "ls"], ["do", "--cwd"], ["do", "-e"],
    ["do", "-eA=1", "ls"], ["--root", "/r", "do", "ls"], ["--root=/r", "do", "ls"],
    ["--bogus", "do", "ls"], ["start", "c"], ["list"], ["do", "--strace=yes", "ls"],
])
def test_parse_leaves_the_rest_to_click(argv: list[str]) -> None:
    assert do_cli.parse(argv) is None


def test_usual_do_does_not_import_click() -> None:
    """The whole `do` (the Sentry's process, where the time is spent) without
    click; the same command through click gives the same result."""
    res = subprocess.run([sys.executable, "-X", "importtime", str(RUNSC), "do", "--",
                          "/bin/sh", "-c", "exit 7"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 7, res.stderr[-2000:]
    imported = {line.split("|")[-1].strip() for line in res.stderr.splitlines()
                if line.startswith("import time:")}
    assert "sentry.sandbox" in imported
    assert "click" not in imported
    # runc's single-dash spelling of --cwd: left to click (goflags.normalize)
    via_click = subprocess.run([sys.executable, str(RUNSC), "do", "-cwd", "/", "--",
                                "/bin/sh", "-c", "exit 7"],
                               capture_output=True, text=True, timeout=120)
    assert via_click.returncode == 7, via_click.stderr[-2000:]
