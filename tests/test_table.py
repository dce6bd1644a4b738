"""The syscall table: complete coverage, dispatch shape, validation, and the report."""

from __future__ import annotations

import csv
import errno
import io
import json
import re
from typing import Any

import pytest

from sentry.kernel.errors import SyscallError
from syscalls.numbers import MAX_SYSCALL, NAMES, NUMBERS
from syscalls.table import (
    Entry,
    SyscallTable,
    error,
    partial,
    supported,
    unsupported,
)

HEADER = "/usr/include/x86_64-linux-gnu/asm/unistd_64.h"


def _read(task: Any, args: tuple[int, ...]) -> int:
    return 42


def _msync(task: Any, args: tuple[int, ...]) -> int:
    return 0


def _sample() -> SyscallTable:
    return SyscallTable(
        [
            supported("read", _read),
            partial("msync", _msync, "no full data flush"),
            unsupported("uselib", "obsolete"),
            error("rseq", errno.ENOSYS, "glibc falls back"),
        ]
    )


def test_numbers_match_the_header() -> None:
    """The committed literal agrees with the kernel header it was generated from."""
    try:
        with open(HEADER) as f:
            text = f.read()
    except FileNotFoundError:
        pytest.skip(f"{HEADER} not installed (linux-libc-dev); the literal cannot be checked")
    header = {int(n): name for name, n in re.findall(r"#define __NR_(\w+)\s+(\d+)\s*$", text, re.M)}
    assert NAMES == header
    assert len(NAMES) == 362


def test_numbers_basics() -> None:
    assert NAMES[0] == "read" and NAMES[59] == "execve" and NAMES[231] == "exit_group"
    assert all(NUMBERS[name] == nr for nr, name in NAMES.items())
    assert max(NAMES) < MAX_SYSCALL == 512


def test_every_number_is_covered() -> None:
    table = _sample()
    assert len(table) == len(NAMES)
    assert [e.nr for e in table] == sorted(NAMES)
    for nr, name in NAMES.items():
        e = table.entry(nr)
        assert e is not None and e.nr == nr and e.name == name
    assert table.entry(NUMBERS["openat"]) == Entry(257, "openat", None, "unsupported")


def test_dispatch_list() -> None:
    table = _sample()
    assert isinstance(table.dispatch, list) and len(table.dispatch) == MAX_SYSCALL
    read = table.dispatch[NUMBERS["read"]]
    assert read is not None and read(None, (0,) * 6) == 42
    assert table.dispatch[NUMBERS["uselib"]] is None
    assert table.dispatch[NUMBERS["openat"]] is None  # no entry: fallback ENOSYS
    assert table.dispatch[500] is None  # unknown number
    assert sum(h is not None for h in table.dispatch) == 3


def test_error_entry_raises_its_errno() -> None:
    table = _sample()
    handler = table.dispatch[NUMBERS["rseq"]]
    assert handler is not None
    with pytest.raises(SyscallError) as info:
        handler(None, (0,) * 6)
    assert info.value.errno == errno.ENOSYS
    e = table.entry(NUMBERS["rseq"])
    assert e is not None and e.support == "unsupported" and "ENOSYS" in e.note
    eperm = error("reboot", errno.EPERM, "needs CAP_SYS_BOOT", support="supported")
    assert eperm.support == "supported" and eperm.note == "needs CAP_SYS_BOOT; returns EPERM"


def test_names() -> None:
    table = _sample()
    assert table.name(0) == "read"
    assert table.name(500) == "syscall_500"
    assert table.name(-1) == "syscall_-1"
    assert table.entry(500) is None


def test_duplicate_names_raise() -> None:
    with pytest.raises(ValueError, match="duplicate"):
        SyscallTable([supported("read", _read), unsupported("read")])


def test_unknown_names_raise() -> None:
    with pytest.raises(ValueError, match="unknown"):
        supported("no_such_syscall", _read)
    with pytest.raises(ValueError, match="unknown"):
        SyscallTable([Entry(0, "write", _read, "supported")])  # nr and name disagree
    with pytest.raises(ValueError, match="unknown"):
        SyscallTable([Entry(500, "syscall_500", _read, "supported")])


def test_entry_validation() -> None:
    with pytest.raises(ValueError):
        Entry(0, "read", None, "supported")  # supported needs a handler
    with pytest.raises(ValueError):
        Entry(0, "read", _read, "mostly")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        partial("msync", _msync, "")  # partial must say what is missing
    with pytest.raises(ValueError):
        error("rseq", 0)


def test_format_csv_parses_back() -> None:
    table = _sample()
    rows = list(csv.DictReader(io.StringIO(table.format("csv"))))
    assert len(rows) == len(NAMES)
    assert [int(r["number"]) for r in rows] == sorted(NAMES)
    by_name = {r["name"]: r for r in rows}
    assert by_name["msync"] == {
        "number": "26",
        "name": "msync",
        "support": "partial",
        "note": "no full data flush",
    }
    assert by_name["read"]["support"] == "supported"
    assert by_name["uselib"]["note"] == "obsolete"


def test_format_json_parses_back() -> None:
    table = _sample()
    rows = json.loads(table.format("json"))
    assert [r["number"] for r in rows] == sorted(NAMES)
    assert {r["name"]: r["support"] for r in rows}["read"] == "supported"
    assert rows[0] == {"number": 0, "name": "read", "support": "supported", "note": ""}


def test_format_table() -> None:
    table = _sample()
    lines = table.format("table").splitlines()
    assert lines[0].split() == ["NR", "NAME", "SUPPORT", "NOTE"]
    body = lines[1:-1]
    assert len(body) == len(NAMES)
    parsed = [line.split(None, 3) for line in body]
    assert [int(p[0]) for p in parsed] == sorted(NAMES)
    assert parsed[26] == ["26", "msync", "partial", "no full data flush"]
    assert lines[-1] == "362 syscalls: 1 supported, 1 partial, 360 unsupported"
    assert table.counts() == {"supported": 1, "partial": 1, "unsupported": 360}


def test_format_unknown_raises() -> None:
    with pytest.raises(ValueError, match="unknown format"):
        _sample().format("xml")
