"""runc's and runsc's single-dash long flags (``delete -force``, ``kill -all``,
``create -bundle DIR``) as click's double-dash ones.

Why: both runtimes parse their command lines with Go libraries that take
``-name`` and ``--name`` alike, and tools written against them (shims, test
harnesses, the OCI validation suite) pass the single-dash form.  click reads
``-force`` as the short options ``-f -o -r ...``; this rewrites such a token
to ``--force`` when ``--force`` is an option of the group or of the command
being run, and leaves everything else alone.  It stops at ``--`` and, for a
command that takes no options after its first argument (``exec``'s program
and arguments), at that argument.
"""

from __future__ import annotations

from collections.abc import Sequence

import click


def _long_options(cmd: click.Command) -> dict[str, bool]:
    """``--name`` -> whether it takes a value, for ``cmd``'s own options."""
    out: dict[str, bool] = {}
    for p in cmd.params:
        if isinstance(p, click.Option):
            for name in (*p.opts, *p.secondary_opts):
                if name.startswith("--"):
                    out[name] = not p.is_flag and not p.count
    return out


def _rewrite(argv: Sequence[str], i: int, known: dict[str, bool],
             out: list[str]) -> tuple[int, bool]:
    """Handle the option-looking token ``argv[i]``: append it (rewritten if a
    single-dash long flag) and its value if one follows; returns the next index
    and whether the token was an option at all."""
    tok = argv[i]
    name, eq, _ = tok.partition("=")
    if tok.startswith("--"):
        long = name
    elif len(name) > 2:
        long = "-" + name
    else:
        long = name
    if long not in known:
        out.append(tok)
        return i + 1, tok.startswith("-")
    out.append(long + tok[len(name):])
    if known[long] and not eq and i + 1 < len(argv):
        out.append(argv[i + 1])
        return i + 2, True
    return i + 1, True


def normalize(group: click.Group, argv: Sequence[str]) -> list[str]:
    """``argv`` with single-dash long flags of ``group`` and its command as
    double-dash ones (see the module's docstring)."""
    out: list[str] = []
    known = _long_options(group)
    i = 0
    while i < len(argv) and argv[i].startswith("-") and argv[i] != "--":
        i, _ = _rewrite(argv, i, known, out)
    if i >= len(argv) or argv[i] == "--":
        return out + list(argv[i:])
    cmd = group.commands.get(argv[i])
    out.append(argv[i])
    i += 1
    if cmd is None:
        return out + list(argv[i:])
    known = _long_options(cmd)
    interspersed = cmd.context_settings.get("allow_interspersed_args", True)
    while i < len(argv):
        tok = argv[i]
        if tok == "--":
            return out + list(argv[i:])
        if tok.startswith("-") and tok != "-":
            i, _ = _rewrite(argv, i, known, out)
            continue
        out.append(tok)
        i += 1
        if not interspersed:
            return out + list(argv[i:])
    return out
