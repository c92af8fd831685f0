"""Value classes for the modules on `echoscu`'s start-up path, without `dataclasses`.

Why not `dataclasses`: measured here, importing it (it pulls in `inspect`, `ast`, `dis`,
`tokenize`) costs about 18 ms and each frozen slotted dataclass about 0.6 ms to create (several
`exec` calls per class). The ~35 classes that `echoscu` needs made it slower to start than
DCMTK's, which is part of its contract. `@value` builds the same things — `__slots__`, an
`__init__` with defaults and default factories, `__repr__`, `__eq__`, `__hash__`, immutability,
`__post_init__` — and compiles one `__init__` per shape of class, not per class: the classes
share a few shapes (field count, default factories, `__post_init__`), and each compile costs
start-up time (~30 µs; ~2 ms for the 33 classes `echoscu` needs). A class's `__init__` is its
shape's code with the field names put in (`code.replace`), so signatures and error messages
name the real fields.

Rules: fields are the class's own annotations, in order; no inheritance of fields; a default is
a class attribute or `field(default_factory=...)`. `replace()` copies with changes, as
`dataclasses.replace` does. Type checkers see `@value` as a dataclass transform (PEP 681).
Modules off the start-up path keep using `dataclasses`.
"""

from __future__ import annotations

from operator import attrgetter

from echoprobe import _value_shapes

TYPE_CHECKING = False  # not typing's: importing typing is part of what this module avoids
if TYPE_CHECKING:
    from collections.abc import Callable
    from types import CodeType
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


Shape = tuple[bool, int, tuple[int, ...], bool]  # frozen, field count, factory fields, post-init

# shape → the code of its __init__, with placeholder names: see the module's head.
_INIT_CODE: dict[Shape, CodeType] = {}
_FunctionType: Any = type(lambda: None)  # types.FunctionType, without importing types


def shape_name(shape: Shape) -> str:
    """The name of a shape's function in `_value_shapes`: ``frozen_4_f3_post``."""
    frozen, count, factories, post_init = shape
    name = f"{'frozen' if frozen else 'record'}_{count}"
    name += "".join(f"_f{i}" for i in factories)
    return name + ("_post" if post_init else "")


def shape_source(shape: Shape, name: str = "__init__") -> str:
    """`def name(self, _0, _1, ...)` of one shape. Frozen: each slot's own descriptor setter
    `_s<i>` (bound per class), measured 40 % faster than object.__setattr__ per field; mutable:
    plain attribute stores to the placeholder names `_a<i>`."""
    frozen, count, factories, post_init = shape
    body = [f"    if _{i} is _MISSING:\n        _{i} = _f{i}()" for i in factories]
    body += [f"    _s{i}(self, _{i})" if frozen else f"    self._a{i} = _{i}" for i in range(count)]
    if post_init:
        body.append("    self.__post_init__()")
    params = "".join(f", _{i}" for i in range(count))
    return f"def {name}(self{params}):\n" + ("\n".join(body) or "    pass") + "\n"


def _init_code(shape: Shape) -> CodeType:
    """A shape's code: pre-compiled in `_value_shapes` (every shape `echoscu` loads, written
    by tools/value_shapes.py, so its start-up compiles nothing), else compiled once here."""
    code = _INIT_CODE.get(shape)
    if code is None:
        compiled = getattr(_value_shapes, shape_name(shape), None)
        if compiled is None:
            namespace: dict[str, Any] = {}
            exec(shape_source(shape), namespace)  # noqa: S102 - code built from numbers only
            compiled = namespace["__init__"]
        code = _INIT_CODE[shape] = compiled.__code__
    return code


def _build(cls: type, frozen: bool) -> type:
    names = tuple(cls.__dict__.get("__annotations__", {}))  # noqa: RUF063 - inspect is the cost
    namespace = {k: v for k, v in cls.__dict__.items() if k not in ("__dict__", "__weakref__")}
    defaults: list[object] = []
    factories: list[int] = []
    globs: dict[str, object] = {"_MISSING": _MISSING}
    for index, name in enumerate(names):
        if name not in namespace:
            if defaults:
                raise TypeError(f"{cls.__name__}: field {name!r} without a default after one with")
            continue
        default = namespace.pop(name)
        if isinstance(default, _Factory):
            factories.append(index)
            globs[f"_f{index}"] = default.factory
            default = _MISSING
        defaults.append(default)
    namespace["__slots__"] = names
    namespace["__value_fields__"] = names

    post_init = "__post_init__" in namespace
    template = _init_code((frozen, len(names), tuple(factories), post_init))
    attributes = {f"_a{i}": name for i, name in enumerate(names)}
    code = template.replace(
        co_varnames=("self", *names),
        co_names=tuple(attributes.get(n, n) for n in template.co_names),
        co_name="__init__",
        co_qualname=f"{cls.__qualname__}.__init__",
    )
    init = _FunctionType(code, globs, "__init__", tuple(defaults) or None)
    init.__qualname__ = code.co_qualname
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

    def __getstate__(self: object) -> tuple[object, ...]:
        return key(self)

    def __setstate__(self: object, state: tuple[object, ...]) -> None:
        # object's own setter: a frozen class's __setattr__ refuses (pickle, copy).
        for name, item in zip(names, state, strict=True):
            object.__setattr__(self, name, item)

    namespace["__eq__"] = __eq__
    namespace.setdefault("__repr__", __repr__)
    namespace["__getstate__"] = __getstate__
    namespace["__setstate__"] = __setstate__
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
        for index, name in enumerate(names):
            globs[f"_s{index}"] = built.__dict__[name].__set__
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
