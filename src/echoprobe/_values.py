"""Value classes for the modules on `echoscu`'s start-up path, without `dataclasses`.

Why not `dataclasses`: measured here, importing it (it pulls in `inspect`, `ast`, `dis`,
`tokenize`) costs about 18 ms and each frozen slotted dataclass about 0.6 ms to create (several
`exec` calls per class). The ~35 classes that `echoscu` needs made it slower to start than
DCMTK's, which is part of its contract. `@value` builds the same things — `__slots__`, an
`__init__` with defaults and default factories, `__repr__`, `__eq__`, `__hash__`, immutability,
`__post_init__` — with one small `exec` per class.

Rules: fields are the class's own annotations, in order; no inheritance of fields; a default is
a class attribute or `field(default_factory=...)`. `replace()` copies with changes, as
`dataclasses.replace` does. Type checkers see `@value` as a dataclass transform (PEP 681).
Modules off the start-up path keep using `dataclasses`.
"""

from __future__ import annotations

from operator import attrgetter

TYPE_CHECKING = False  # not typing's: importing typing is part of what this module avoids
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, TypeVar, dataclass_transform

    T = TypeVar("T")
    C = TypeVar("C", bound=type)
else:

    def dataclass_transform(**_options: object) -> object:
        return lambda function: function


class FrozenInstanceError(AttributeError):
    """Raised when a field of a frozen value is assigned or deleted."""


class _Factory:
    __slots__ = ("factory",)

    def __init__(self, factory: Callable[[], object]) -> None:
        self.factory = factory


def field(*, default_factory: Callable[[], T]) -> T:
    """A default made fresh for each instance (for mutable defaults)."""
    return _Factory(default_factory)  # type: ignore[return-value]


def _frozen_setattr(self: object, name: str, value: object) -> None:
    raise FrozenInstanceError(f"cannot assign to field {name!r} of a frozen value")


def _frozen_delattr(self: object, name: str) -> None:
    raise FrozenInstanceError(f"cannot delete field {name!r} of a frozen value")


def _build(cls: type, frozen: bool) -> type:
    names = tuple(cls.__dict__.get("__annotations__", {}))  # noqa: RUF063 - inspect is the cost
    namespace = {k: v for k, v in cls.__dict__.items() if k not in ("__dict__", "__weakref__")}
    defaults: dict[str, object] = {}
    for name in names:
        if name in namespace:
            defaults[name] = namespace.pop(name)
    namespace["__slots__"] = names
    namespace["__value_fields__"] = names

    # __init__: one exec per class, the only generated code (speed matters: PDUs and events
    # are created on every read).
    params, body = [], []
    globs: dict[str, object] = {}
    seen_default = False
    for name in names:
        default = defaults.get(name, _MISSING)
        if default is _MISSING:
            if seen_default:
                raise TypeError(f"{cls.__name__}: field {name!r} without a default after one with")
            params.append(name)
        elif isinstance(default, _Factory):
            seen_default = True
            globs[f"__factory_{name}"] = default.factory
            params.append(f"{name}=__MISSING")
            body.append(f"    if {name} is __MISSING: {name} = __factory_{name}()")
        else:
            seen_default = True
            globs[f"__default_{name}"] = default
            params.append(f"{name}=__default_{name}")
    globs["__MISSING"] = _MISSING
    # Frozen: each slot's own descriptor setter (bound in after the class exists), measured
    # 40 % faster than object.__setattr__ per field.
    setter = "__set_{0}(self, {0})" if frozen else "self.{0} = {0}"
    body.extend(f"    {setter.format(name)}" for name in names)
    if "__post_init__" in namespace:
        body.append("    self.__post_init__()")
    source = f"def __init__(self, {', '.join(params)}):\n" + ("\n".join(body) or "    pass")
    if not names:
        source = "def __init__(self):\n    pass"
    exec(source, globs)  # noqa: S102 - code built above from field names only
    init = globs["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"  # type: ignore[attr-defined]
    namespace["__init__"] = init

    key: Callable[[object], tuple[object, ...]]
    if len(names) > 1:
        key = attrgetter(*names)
    elif names:
        single = attrgetter(names[0])

        def key(self: object) -> tuple[object, ...]:
            return (single(self),)
    else:

        def key(self: object) -> tuple[object, ...]:
            return ()

    def __eq__(self: object, other: object) -> bool:
        if other.__class__ is self.__class__:
            return bool(key(self) == key(other))
        return NotImplemented

    def __repr__(self: object) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in names)
        return f"{type(self).__qualname__}({shown})"

    namespace["__eq__"] = __eq__
    namespace.setdefault("__repr__", __repr__)
    if frozen:

        def __hash__(self: object) -> int:
            return hash(key(self))

        namespace["__hash__"] = __hash__
        namespace["__setattr__"] = _frozen_setattr
        namespace["__delattr__"] = _frozen_delattr
    else:
        namespace["__hash__"] = None  # mutable and compared by value: unhashable
    built = type(cls)(cls.__name__, cls.__bases__, namespace)
    if frozen:
        for name in names:
            globs[f"__set_{name}"] = built.__dict__[name].__set__
    return built


_MISSING = object()


@dataclass_transform(frozen_default=True, field_specifiers=(field,))
def value(cls: C) -> C:
    """An immutable value class (frozen, slotted, compared and hashed by its fields)."""
    return _build(cls, frozen=True)  # type: ignore[return-value]


@dataclass_transform(field_specifiers=(field,))
def record(cls: C) -> C:
    """A mutable, slotted record compared by its fields (filled in as work goes on)."""
    return _build(cls, frozen=False)  # type: ignore[return-value]


def replace(obj: T, /, **changes: Any) -> T:
    """A copy of a `@value`/`@record` instance with some fields changed (a `dataclasses`
    instance is handed to `dataclasses.replace`, so callers need not know which is which)."""
    fields = getattr(type(obj), "__value_fields__", None)
    if fields is None:
        import dataclasses  # noqa: PLC0415 - only for dataclass instances, off the start-up path

        return dataclasses.replace(obj, **changes)  # type: ignore[type-var]
    unknown = set(changes) - set(fields)
    if unknown:
        raise TypeError(f"{type(obj).__name__} has no field(s) {sorted(unknown)}")
    current = {name: getattr(obj, name) for name in fields if name not in changes}
    return type(obj)(**current, **changes)


def fields_of(obj: object) -> tuple[str, ...]:
    """The field names of a `@value`/`@record` class or instance, in order."""
    cls = obj if isinstance(obj, type) else type(obj)
    return cls.__value_fields__  # type: ignore[attr-defined, no-any-return]
