"""The click-free way in for the calls shims make (sentry/oci/shimcalls.py)
and the launcher ``install`` registers (sentry/oci/launcher.py).

Why these tests: the shim path parses runc's argv from its own table, so the
table must say exactly what runsc.py's click definitions say (else Docker
and a user typing the same command would get different behaviour); and its
point is start-up cost, so the modules it imports must stay free of click,
logging, subprocess and dataclasses.  The lifecycle itself is tested through
runsc.py in test_oci.py, which takes this same path."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
import pytest
from helpers import REPO_ROOT, RUNSC, runsc_in

from sentry.oci import launcher, shimcalls

sys.path.insert(0, str(REPO_ROOT))
import runsc  # noqa: E402


def _click_options(cmd: click.Command) -> dict[str, tuple[str, Any, Any]]:
    """option spelling -> (parameter name, kind as in the shim tables, default)"""
    out: dict[str, tuple[str, Any, Any]] = {}
    for p in cmd.params:
        if not isinstance(p, click.Option) or p.name in ("help", "version"):
            continue
        if p.is_flag:
            kind: Any = shimcalls.FLAG
        elif isinstance(p.type, click.Choice):
            kind = tuple(p.type.choices)
        elif isinstance(p.type, click.types.IntParamType):
            kind = int
        else:
            kind = str
        for opt in p.opts:
            out[opt] = (str(p.name), kind, p.default)
    return out


def test_global_table_matches_click() -> None:
    opts = _click_options(runsc.cli)
    assert {k: v[:2] for k, v in opts.items()} == shimcalls.GLOBAL_OPTIONS
    assert {name: default for name, _, default in opts.values()} == shimcalls.GLOBAL_DEFAULTS


@pytest.mark.parametrize("command", sorted(set(shimcalls.COMMANDS) - {"sandbox-serve"}))
def test_command_table_matches_click(command: str) -> None:
    cmd = runsc.cli.commands[command]
    options, required, optional = shimcalls.COMMANDS[command]
    opts = _click_options(cmd)
    assert {k: v[:2] for k, v in opts.items()} == options
    for name, _, default in opts.values():
        assert shimcalls.OPTION_DEFAULTS.get(name) == default, name
    args = [p for p in cmd.params if isinstance(p, click.Argument)]
    assert tuple(str(p.name) for p in args if p.required) == required
    assert {str(p.name): p.default for p in args if not p.required} == optional


@pytest.mark.parametrize(("argv", "expected"), [
    (["--root", "/r", "--log", "/l", "--log-format", "json", "--systemd-cgroup", "create",
      "--bundle", "/b", "--pid-file", "/p", "c1"],
     ({"state_root": "/r", "log_path": "/l", "log_format": "json", "systemd_cgroup": True},
      "create", {"bundle": "/b", "pid_file": "/p", "container_id": "c1"})),
    (["--root=/r", "start", "c1"], ({"state_root": "/r"}, "start", {"container_id": "c1"})),
    (["kill", "c1"], ({}, "kill", {"container_id": "c1", "sig": "SIGTERM", "all_": False})),
    (["kill", "--all", "c1", "9"], ({}, "kill", {"container_id": "c1", "sig": "9",
                                                 "all_": True})),
    (["delete", "c1", "--force"], ({}, "delete", {"container_id": "c1", "force": True})),
    (["create", "-b", "/b", "--", "-odd"], ({}, "create", {"bundle": "/b",
                                                           "container_id": "-odd"})),
])
def test_parse_runc_forms(argv: list[str], expected: tuple[dict[str, Any], str,
                                                              dict[str, Any]]) -> None:
    parsed = shimcalls.parse(argv)
    assert parsed is not None
    g, command, values = parsed
    want_g, want_command, want_values = expected
    assert command == want_command
    assert {k: g[k] for k in want_g} == want_g
    assert {k: values[k] for k in want_values} == want_values
    assert set(g) == set(shimcalls.GLOBAL_DEFAULTS)


@pytest.mark.parametrize("argv", [
    [], ["--help"], ["start"], ["start", "a", "b"], ["start", "--help", "c"],
    ["--network", "bogus", "start", "c"], ["--root"], ["delete", "--force=yes", "c"],
    ["create", "--bundle"], ["--version"], ["list"], ["exec", "c", "true"],
    ["--bogus", "start", "c"], ["sandbox-serve", "c"],
])
def test_parse_leaves_the_rest_to_click(argv: list[str]) -> None:
    assert shimcalls.parse(argv) is None


def test_shim_path_imports_stay_light() -> None:
    """What costs every runtime call start-up time stays out of the shim path
    (the reason the path exists: tests/bench time it, this keeps it lean)."""
    # what `delete` imports (start and kill add control.py: msgpack, socket)
    code = ("import sys; import sentry.oci.shimcalls, sentry.oci.lifecycle, "
            "sentry.oci.state, sentry.oci.cgroups; "
            "print(sorted(m for m in ('click', 'logging', 'subprocess', 'dataclasses', "
            "'threading', 'shutil', 'msgpack', 'socket', 'typing') if m in sys.modules))")
    res = subprocess.run([sys.executable, "-I", "-S", "-c",
                          f"import sys; sys.path[:0] = {launcher.import_paths(str(RUNSC))!r}; "
                          + code], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "[]"


def _launcher(tmp_path: Path) -> Path:
    path = tmp_path / launcher.NAME
    path.write_text(launcher.render(str(RUNSC)))
    path.chmod(0o755)
    return path


def test_launcher_runs_with_no_environment(tmp_path: Path) -> None:
    """podman's cleanup runs the runtime with an empty environment; -I also
    means a caller's PYTHONPATH cannot change the code that runs."""
    exe = _launcher(tmp_path)
    assert exe.read_text().startswith(f"#!{sys.executable} -IS\n")
    res = subprocess.run([str(exe), "--version"], capture_output=True, text=True, timeout=60,
                         env={"PYTHONPATH": str(tmp_path / "elsewhere")})
    assert res.returncode == 0 and "runsc.py version" in res.stdout, res


def test_launcher_errors_are_one_line_and_logged(tmp_path: Path) -> None:
    exe = _launcher(tmp_path)
    log = tmp_path / "log.json"
    for args, code in ((["state", "nope"], 1), (["delete", "nope"], 1),
                       (["delete", "--force", "nope"], 0), (["kill", "nope", "BOGUS"], 1)):
        res = subprocess.run([str(exe), "--root", str(tmp_path / "root"), "--log", str(log),
                              "--log-format", "json", *args], capture_output=True, text=True,
                             timeout=60, env={})
        assert res.returncode == code, (args, res)
        assert res.stderr.count("\n") == (1 if code else 0), res.stderr
        assert "Traceback" not in res.stderr
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    assert [e["level"] for e in entries] == ["error"] * 3
    assert "does not exist" in entries[0]["msg"] and "invalid signal" in entries[2]["msg"]


def test_launcher_falls_back_to_click(tmp_path: Path) -> None:
    exe = _launcher(tmp_path)
    res = subprocess.run([str(exe), "start", "--help"], capture_output=True, text=True,
                         timeout=60, env={})
    assert res.returncode == 0 and "Start a created container" in res.stdout, res
    res = subprocess.run([str(exe), "--network", "bogus", "start", "c"], capture_output=True,
                         text=True, timeout=60, env={})
    assert res.returncode == 2 and "bogus" in res.stderr, res


def test_install_registers_the_launcher_beside_runsc(tmp_path: Path) -> None:
    """runsc.py linked into tmp_path (helpers.runsc_in): the launcher lands
    beside that runsc.py, so the test never writes into the checkout."""
    conf = tmp_path / "daemon.json"
    runsc_py = runsc_in(tmp_path)
    res = subprocess.run([sys.executable, str(runsc_py), "install", "--config-file", str(conf)],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    path = json.loads(conf.read_text())["runtimes"]["pyvisor"]["path"]
    assert path == str(tmp_path / launcher.NAME)
    assert Path(path).read_text().startswith(f"#!{sys.executable} -IS\n")
    res = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=60, env={})
    assert res.returncode == 0 and "runsc.py version" in res.stdout, res


def test_every_oci_module_imports_alone() -> None:
    """Names kept for the type checker only (``if TYPE_CHECKING``) must not be
    used at run time; a fresh interpreter per module shows it."""
    oci = REPO_ROOT / "sentry" / "oci"
    for path in sorted(oci.glob("*.py")):
        module = f"sentry.oci.{path.stem}"
        res = subprocess.run([sys.executable, "-c", f"import {module}"], cwd=REPO_ROOT,
                             capture_output=True, text=True, timeout=60)
        assert res.returncode == 0, (module, res.stderr[-800:])
