"""``@record``: the part of ``@dataclass`` this project uses, at a fraction of
its class-creation cost.

Why not dataclasses: a container's `create` waits while the CLI, the sandbox
host and the Sentry import their modules (~40 classes declared with
``@dataclass``), one after the other.  ``import dataclasses`` pulls in
inspect, ast, dis and tokenize (~8 ms here), and each decorated class then
costs ~0.5 ms: dataclasses compiles four to six generated methods per class
and inspects every annotation.  ``@record`` compiles one method, the
``__init__``.  ``__repr__``, ``__eq__`` and the frozen ``__setattr__`` are
shared functions that read the field list.  All of that is ~0.1 ms per class.

What it supports, with dataclasses' meaning: fields from the class's own
annotations, in order (no inheritance of fields; ``ClassVar`` annotations
are not fields); defaults, ``field(default=..., default_factory=...,
init=False)``; ``__post_init__``; ``eq`` (``__eq__``, and ``__hash__`` =
None unless frozen); ``frozen`` (assignment raises FrozenInstanceError, an
AttributeError; equal frozen records hash alike); ``slots``; ``repr``;
``__match_args__``; and :func:`replace`.  Anything else (order, kw_only,
InitVar, field metadata) is refused with a TypeError, so a use this module
does not honour cannot pass silently.

It lives in shm/, the package everything else imports: the Sentry, the
Gofer and the OCI modules all declare records.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["Frozen", "FrozenInstanceError", "field", "lazy_init", "record", "replace"]

_MISSING = object()
_FIELDS = "__record_fields__"
_INIT_FIELDS = "__record_init_fields__"


class FrozenInstanceError(AttributeError):
    """Assignment to a field of a frozen record."""


class Field:
    """What :func:`field` returns: a default, a factory, or ``init=False``."""

    __slots__ = ("default", "default_factory", "init")

    def __init__(self, default: object, default_factory: object, init: bool) -> None:
        self.default = default
        self.default_factory = default_factory
        self.init = init


def field(*, default: object = _MISSING, default_factory: Callable[[], object] | object = _MISSING,
          init: bool = True) -> object:
    """A field's default (``default=``) or per-instance factory (``default_factory=``);
    ``init=False`` leaves it out of ``__init__`` (``__post_init__`` sets it)."""
    if default is not _MISSING and default_factory is not _MISSING:
        raise TypeError("field(): default and default_factory are exclusive")
    return Field(default, default_factory, init)


def _is_classvar(annotation: object) -> bool:
    text = annotation if isinstance(annotation, str) else repr(annotation)
    return text.startswith(("ClassVar", "typing.ClassVar", "_typing.ClassVar"))


def _repr(self: object) -> str:
    inner = ", ".join(f"{name}={getattr(self, name)!r}" for name in getattr(self, _FIELDS))
    return f"{type(self).__qualname__}({inner})"


def _values(self: object) -> tuple[object, ...]:
    return tuple(getattr(self, name) for name in getattr(self, _FIELDS))


def _eq(self: object, other: object) -> bool:
    if other.__class__ is not self.__class__:
        return NotImplemented
    return _values(self) == _values(other)


def _hash(self: object) -> int:
    return hash(_values(self))


def _frozen_setattr(self: object, name: str, value: object) -> None:
    raise FrozenInstanceError(f"cannot assign to field {name!r}")


def _frozen_delattr(self: object, name: str) -> None:
    raise FrozenInstanceError(f"cannot delete field {name!r}")


class Frozen:
    """A frozen record's methods, for a class that makes its own fields and
    ``__init__`` (gofer/p9_types.py's Message, whose inits are compiled in
    one batch): equality, hash and repr over the field names in
    ``__record_fields__``, which the subclass sets, and assignment refused."""

    __slots__ = ()
    __eq__ = _eq
    __hash__ = _hash
    __repr__ = _repr
    __setattr__ = _frozen_setattr
    __delattr__ = _frozen_delattr

    def __getstate__(self) -> tuple[object, ...]:
        return _values(self)

    def __setstate__(self, state: tuple[object, ...]) -> None:
        for name, value in zip(getattr(self, _FIELDS), state, strict=True):
            object.__setattr__(self, name, value)


def _make_init(cls: type, specs: list[tuple[str, Field]], frozen: bool) -> Callable[..., None]:
    """The one generated method: parameters in field order, each stored (with
    object.__setattr__ when frozen), factories called per instance, then
    ``__post_init__`` when the class has one."""
    ns: dict[str, object] = {"_MISSING": _MISSING, "_set": object.__setattr__}
    params, body = [], []
    for name, spec in specs:
        if spec.default_factory is not _MISSING:
            ns[f"_f_{name}"] = spec.default_factory
            value = f"_f_{name}()"
            if spec.init:
                params.append(f"{name}=_MISSING")
                value = f"{value} if {name} is _MISSING else {name}"
        elif not spec.init:
            if spec.default is _MISSING:
                continue  # __post_init__ sets it
            ns[f"_d_{name}"] = spec.default
            value = f"_d_{name}"
        else:
            if spec.default is not _MISSING:
                ns[f"_d_{name}"] = spec.default
                params.append(f"{name}=_d_{name}")
            else:
                params.append(name)
            value = name
        body.append(f"    _set(self, {name!r}, {value})" if frozen else
                    f"    self.{name} = {value}")
    if hasattr(cls, "__post_init__"):
        body.append("    self.__post_init__()")
    src = f"def __init__(self, {', '.join(params)}):\n" + ("\n".join(body) or "    pass")
    exec(compile(src, f"<record {cls.__qualname__}>", "exec"), ns)  # noqa: S102
    init = ns["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"  # type: ignore[attr-defined]
    return init  # type: ignore[return-value]


def _process(cls: type, *, frozen: bool, slots: bool, eq: bool, repr: bool) -> type:  # noqa: A002
    specs: list[tuple[str, Field]] = []
    seen_default = False
    for name, annotation in cls.__dict__.get("__annotations__", {}).items():
        if _is_classvar(annotation):
            continue
        value = cls.__dict__.get(name, _MISSING)
        spec = value if isinstance(value, Field) else Field(value, _MISSING, True)
        has_default = spec.default is not _MISSING or spec.default_factory is not _MISSING
        if spec.init and not has_default and seen_default:
            raise TypeError(f"{cls.__qualname__}: non-default field {name!r} after a default")
        seen_default = seen_default or (spec.init and has_default)
        specs.append((name, spec))
    names = tuple(name for name, _ in specs)
    init_names = tuple(n for n, spec in specs if spec.init)
    methods: dict[str, object] = {_FIELDS: names, _INIT_FIELDS: init_names,
                                  "__match_args__": init_names}
    if repr and "__repr__" not in cls.__dict__:
        methods["__repr__"] = _repr
    if eq and "__eq__" not in cls.__dict__:
        methods["__eq__"] = _eq
        methods["__hash__"] = _hash if frozen else None
    if frozen:
        methods["__setattr__"] = _frozen_setattr
        methods["__delattr__"] = _frozen_delattr
    if slots:  # a new class: __slots__ only works from the class statement's namespace
        ns = {k: v for k, v in cls.__dict__.items()
              if k not in ("__dict__", "__weakref__") and k not in names}
        ns.update(methods, __slots__=names)
        new = type(cls)(cls.__name__, cls.__bases__, ns)
        new.__qualname__ = cls.__qualname__
    else:
        new = cls
        for key, value in methods.items():
            setattr(cls, key, value)
        for name, spec in specs:  # as dataclasses: a plain default stays a class attribute
            if isinstance(cls.__dict__.get(name), Field):
                if spec.default is _MISSING:
                    delattr(cls, name)
                else:
                    setattr(cls, name, spec.default)
    module = cls.__module__

    def make() -> Callable[..., None]:
        init = _make_init(new, specs, frozen)
        init.__module__ = module
        return init

    new.__init__ = lazy_init(new, make, module)  # type: ignore[misc]
    return new


def lazy_init(cls: type, make: Callable[[], Callable[..., None]],
              module: str) -> Callable[..., None]:
    """An ``__init__`` for ``cls`` that calls ``make`` for the real one on
    the class's first instance, puts it in its place and runs it (two
    threads racing make the same one).  Why: a sandbox's start imports ~200
    records and ~80 9P messages (gofer/p9_messages*.py), most of which a short
    run never instantiates, and compiling each one's ``__init__`` at import
    was ~10-15 ms of `runsc.py do`'s start-up (issue 15).  compile() opens
    no file, so a confined Sentry or Gofer may do it later."""

    def __init__(self: object, *args: object, **kwargs: object) -> None:
        init = cls.__dict__["__init__"]
        if init is __init__:  # not made yet
            init = make()
            cls.__init__ = init  # type: ignore[misc]
        init(self, *args, **kwargs)

    __init__.__qualname__ = f"{cls.__qualname__}.__init__"
    __init__.__module__ = module
    return __init__


def record(cls: type | None = None, /, *, frozen: bool = False, slots: bool = False,
           eq: bool = True, repr: bool = True,  # noqa: A002 - dataclass's own name
           **unsupported: object) -> object:
    """``@record`` or ``@record(frozen=..., slots=..., eq=..., repr=...)``."""
    if unsupported:
        raise TypeError(f"record(): unsupported option(s) {sorted(unsupported)}")

    def wrap(c: type) -> type:
        return _process(c, frozen=frozen, slots=slots, eq=eq, repr=repr)

    return wrap if cls is None else wrap(cls)


def replace(obj: object, /, **changes: object) -> object:
    """A copy of record ``obj`` with ``changes`` (dataclasses.replace)."""
    values = {name: getattr(obj, name) for name in getattr(obj, _INIT_FIELDS)}
    unknown = set(changes) - set(values)
    if unknown:
        raise TypeError(f"replace(): no field(s) {sorted(unknown)}")
    values.update(changes)
    return type(obj)(**values)
