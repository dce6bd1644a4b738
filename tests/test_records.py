"""shm.records against dataclasses: the same class declared both ways must
behave the same for everything records claims to support (shm/records.py),
and what it does not support must be refused, not ignored."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from typing import Any, ClassVar

import pytest

from shm import records


def _both(body: Callable[[Callable[..., Any], Callable[..., Any]], type],
          **opts: Any) -> tuple[type, type]:
    """``body(decorator, field)`` declares a class; once as a dataclass, once as a record."""
    return (body(dataclasses.dataclass(**opts), dataclasses.field),
            body(records.record(**opts), records.field))


def _point(deco: Callable[..., Any], field: Callable[..., Any]) -> type:
    @deco
    class Point:
        kind: ClassVar[str] = "point"
        x: int
        y: int = 2
        tags: list[str] = field(default_factory=list)
        seen: int = field(init=False, default=0)

        def norm(self) -> int:
            return self.x + self.y

    return Point


@pytest.mark.parametrize("opts", [{}, {"frozen": True}, {"slots": True},
                                  {"frozen": True, "slots": True}, {"eq": False}])
def test_same_behaviour_as_dataclass(opts: dict[str, Any]) -> None:
    dc, rc = _both(_point, **opts)
    for cls in (dc, rc):
        a, b = cls(1), cls(1, 2)
        assert (a.x, a.y, a.tags, a.seen, a.norm(), cls.kind) == (1, 2, [], 0, 3, "point")
        assert a.tags is not cls(1).tags  # a fresh list per instance
        assert (a == b) is (opts.get("eq", True))
        assert cls.__match_args__ == ("x", "y", "tags")
        with pytest.raises(TypeError):
            cls(1, 2, [], 5)  # init=False is not a parameter
    assert repr(dc(1)).split("(", 1)[1] == repr(rc(1)).split("(", 1)[1]
    assert hasattr(dc(1), "__dict__") == hasattr(rc(1), "__dict__")
    frozen = opts.get("frozen", False)
    for cls in (dc, rc):
        obj = cls(1)
        if frozen:
            with pytest.raises(AttributeError):
                obj.x = 5
            with pytest.raises(TypeError):
                hash(obj)  # hashes its fields, and a list field is unhashable
        elif opts.get("eq", True):
            obj.x = 5
            assert obj.x == 5 and cls.__hash__ is None
        else:
            assert hash(obj) == object.__hash__(obj)  # identity, as object's


def test_post_init_and_init_false_without_default() -> None:
    @records.record
    class Box:
        lock: threading.RLock = records.field(default_factory=threading.RLock)
        cond: threading.Condition = records.field(init=False)

        def __post_init__(self) -> None:
            self.cond = threading.Condition(self.lock)

    b = Box()
    assert b.cond._lock is b.lock  # type: ignore[attr-defined]


def test_replace_and_frozen_error() -> None:
    @records.record(frozen=True, slots=True)
    class Creds:
        uid: int
        groups: tuple[int, ...] = ()

    c = records.replace(Creds(5), groups=(1, 2))
    assert c == Creds(5, (1, 2))
    with pytest.raises(records.FrozenInstanceError):
        c.uid = 0  # type: ignore[misc]
    with pytest.raises(TypeError, match="no field"):
        records.replace(c, gid=1)


def test_unsupported_uses_are_refused() -> None:
    with pytest.raises(TypeError, match="unsupported"):
        records.record(order=True)
    with pytest.raises(TypeError, match="non-default field"):
        @records.record
        class Bad:
            a: int = 1
            b: int
    with pytest.raises(TypeError, match="exclusive"):
        records.field(default=1, default_factory=list)


def test_the_sandbox_start_path_does_not_import_dataclasses() -> None:
    """The point of records: a container's create imports none of dataclasses,
    inspect or ast (a fresh interpreter, the modules the host and Sentry load)."""
    import subprocess
    import sys

    from helpers import REPO_ROOT

    code = ("import sys, sentry.oci.host, sentry.sandbox, sentry.oci.sentry_ops, "
            "syscalls.linux64, gofer.server; "
            "print(sorted(m for m in ('dataclasses', 'inspect', 'ast') if m in sys.modules))")
    res = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True,
                         text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "[]"
