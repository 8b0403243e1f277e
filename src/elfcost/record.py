"""Typed, frozen records passed between the pipeline's stages: the dataclass API, made cheaply.

`@record` is `@dataclass(frozen=True, slots=True, kw_only=True)` with the same `field`,
`replace`, `asdict` and `fields`, and type checkers treat it as one (PEP 681,
`dataclass_transform`). It exists for start-up time: `elfcost BINARY` is a command people run
once per program, so the seconds are mostly interpreter start-up and imports. The standard
decorator compiles up to six methods per class with `exec` (measured 0.6 ms per class on Debian's
python3 3.11, 1.2 ms on an unoptimised build) and `import dataclasses` imports `inspect`
(16 ms); elfcost defines about 80 record classes. Here every method is one shared function that
reads the class's field table, so defining a class costs microseconds and nothing is compiled.

Differences from dataclasses, none used by elfcost: no `order`, no `unsafe_hash`, no per-field
`kw_only`, no `InitVar`/`ClassVar` fields, no `__post_init__` arguments; `asdict` does not
deep-copy values that are not records, lists, tuples or dicts (elfcost's are immutable).
"""

from __future__ import annotations

import operator

# typing is for the type checker only: importing it is 2-3 ms of a 60 ms `elfcost BINARY`.
# At run time `overload` and `dataclass_transform` would only record what a checker reads.
TYPE_CHECKING = False
if not TYPE_CHECKING:

    def overload(func):
        return func

    def dataclass_transform(**_kwargs):
        return overload

else:
    from collections.abc import Callable
    from typing import Any, TypeVar, dataclass_transform, overload

    T = TypeVar("T")


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


class FrozenInstanceError(AttributeError):
    """Assigning to or deleting a field of a frozen record (dataclasses' name for it)."""


class Field:
    """One field: its name, its default or default factory, and whether it takes part in
    `__init__`, `__repr__` and `__eq__`/`__hash__`."""

    __slots__ = ("compare", "default", "default_factory", "init", "name", "repr", "required")

    def __init__(
        self,
        default: Any = MISSING,
        default_factory: Any = MISSING,
        init: bool = True,
        repr: bool = True,
        compare: bool = True,
    ) -> None:
        if default is not MISSING and default_factory is not MISSING:
            raise ValueError("cannot specify both default and default_factory")
        self.name = ""
        self.default = default
        self.default_factory = default_factory
        self.init = init
        self.repr = repr
        self.compare = compare
        self.required = default is MISSING and default_factory is MISSING

    def initial(self) -> Any:
        return self.default_factory() if self.default_factory is not MISSING else self.default

    def __repr__(self) -> str:
        return f"Field(name={self.name!r})"


@overload
def field(*, default: T, init: bool = True, repr: bool = True, compare: bool = True) -> T: ...
@overload
def field(
    *, default_factory: Callable[[], T], init: bool = True, repr: bool = True, compare: bool = True
) -> T: ...
@overload
def field(*, init: bool = True, repr: bool = True, compare: bool = True) -> Any: ...
def field(
    *,
    default: Any = MISSING,
    default_factory: Any = MISSING,
    init: bool = True,
    repr: bool = True,
    compare: bool = True,
) -> Any:
    """A field with a default factory, or left out of `__init__`, `__repr__` or comparison."""
    return Field(default, default_factory, init, repr, compare)


class _Spec:
    """What the shared methods read: the class's fields, split the ways they use them."""

    __slots__ = (
        "defaulted",
        "fields",
        "init",
        "init_names",
        "key",
        "kw_only",
        "later",
        "positional",
        "post_init",
    )

    def __init__(self, fields: tuple[Field, ...], *, kw_only: bool, post_init: bool) -> None:
        self.fields = fields
        self.init = tuple(f for f in fields if f.init)
        self.init_names = frozenset(f.name for f in self.init)
        self.defaulted = tuple(f for f in self.init if not f.required)
        self.positional = () if kw_only else tuple(f.name for f in self.init)
        self.later = tuple(f for f in fields if not f.init and not f.required)
        self.kw_only = kw_only
        self.post_init = post_init
        compared = [f.name for f in fields if f.compare]
        # A tuple always, as dataclasses compares: tuple equality checks identity first, so a
        # record holding a NaN equals itself. attrgetter of one name gives the bare value.
        if len(compared) > 1:
            self.key: Callable[[Any], Any] = operator.attrgetter(*compared)
        elif compared:
            get = operator.attrgetter(compared[0])
            self.key = lambda obj: (get(obj),)
        else:
            self.key = lambda _obj: ()


_set = object.__setattr__


def _init(self: Any, *args: Any, **kwargs: Any) -> None:
    spec: _Spec = self.__record__
    if args:
        _take_positional(type(self).__qualname__, spec, args, kwargs)
    if kwargs.keys() != spec.init_names:  # not every field given: defaults, or a wrong call
        _complete(type(self).__qualname__, spec, kwargs)
    for key, value in kwargs.items():
        _set(self, key, value)
    for f in spec.later:
        _set(self, f.name, f.initial())
    if spec.post_init:
        self.__post_init__()


def _take_positional(name: str, spec: _Spec, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    if len(args) > len(spec.positional):
        if spec.kw_only:
            raise TypeError(f"{name}() takes keyword arguments only")
        raise TypeError(f"{name}() takes {len(spec.positional)} positional arguments")
    for key, value in zip(spec.positional, args, strict=False):
        if key in kwargs:
            raise TypeError(f"{name}() got multiple values for argument {key!r}")
        kwargs[key] = value


def _complete(name: str, spec: _Spec, kwargs: dict[str, Any]) -> None:
    """Add the defaults of the fields not given; TypeError for a wrong call, as Python's own."""
    for f in spec.defaulted:
        if f.name not in kwargs:
            kwargs[f.name] = f.initial()
    if kwargs.keys() == spec.init_names:
        return
    missing = [f.name for f in spec.init if f.name not in kwargs]
    if missing:
        raise TypeError(f"{name}() missing required argument(s): {', '.join(missing)}")
    unexpected = kwargs.keys() - spec.init_names
    raise TypeError(f"{name}() got an unexpected keyword argument {min(unexpected)!r}")


def _repr(self: Any) -> str:
    spec: _Spec = self.__record__
    inner = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in spec.fields if f.repr)
    return f"{type(self).__qualname__}({inner})"


def _eq(self: Any, other: object) -> object:
    key = self.__record__.key
    if other.__class__ is not self.__class__:
        return NotImplemented
    return bool(key(self) == key(other))


def _hash(self: Any) -> int:
    return hash(self.__record__.key(self))


def _frozen_setattr(self: Any, name: str, value: object) -> None:
    raise FrozenInstanceError(f"cannot assign to field {name!r} of a frozen record")


def _frozen_delattr(self: Any, name: str) -> None:
    raise FrozenInstanceError(f"cannot delete field {name!r} of a frozen record")


def _rebuild(cls: type[T], values: tuple[Any, ...]) -> T:
    """Unpickling: set the fields as they were, without `__init__` (nor `__post_init__`)."""
    obj = cls.__new__(cls)
    for f, value in zip(cls.__record__.fields, values, strict=True):  # type: ignore[attr-defined]
        _set(obj, f.name, value)
    return obj


def _reduce(self: Any) -> tuple[Any, ...]:
    # The generic object.__reduce_ex__ would restore slots with setattr, which a frozen record
    # refuses; this also carries fields that `__init__` does not take.
    values = tuple(getattr(self, f.name) for f in self.__record__.fields)
    return (_rebuild, (type(self), values))


def _make(cls: type[T], *, frozen: bool, eq: bool, kw_only: bool, slots: bool) -> type[T]:
    inherited: dict[str, Field] = {}
    for base in reversed(cls.__mro__[1:]):
        base_spec = base.__dict__.get("__record__")
        if base_spec is not None:
            inherited.update((f.name, f) for f in base_spec.fields)
    own: dict[str, Field] = {}
    # Not inspect.get_annotations: importing inspect is what this module avoids.
    for name, annotation in cls.__dict__.get("__annotations__", {}).items():  # noqa: RUF063
        if str(annotation).split("[", 1)[0].rsplit(".", 1)[-1] in ("ClassVar", "InitVar"):
            raise TypeError(f"{cls.__qualname__}.{name}: ClassVar and InitVar are not supported")
        value = cls.__dict__.get(name, MISSING)
        f = value if isinstance(value, Field) else Field(default=value)
        if isinstance(f.default, list | dict | set):
            raise ValueError(f"{cls.__qualname__}.{name}: mutable default; use default_factory")
        f.name = name
        own[name] = f
    fields = tuple({**inherited, **own}.values())
    if not kw_only:
        seen_default = False
        for f in fields:
            if f.init and f.required and seen_default:
                raise TypeError(f"{cls.__qualname__}.{f.name}: non-default field after a default")
            seen_default = seen_default or (f.init and not f.required)

    body = cls.__dict__
    spec = _Spec(fields, kw_only=kw_only, post_init=hasattr(cls, "__post_init__"))
    methods: dict[str, object] = {"__record__": spec, "__match_args__": spec.positional}
    # As dataclasses' _set_new_attribute: what the class body defines itself stays.
    for name, method in (("__init__", _init), ("__repr__", _repr), ("__reduce__", _reduce)):
        if name not in body:
            methods[name] = method
    if eq:
        if "__eq__" not in body:
            methods["__eq__"] = _eq
        if body.get("__hash__") is None:  # none given (a body's own __eq__ sets it to None)
            methods["__hash__"] = _hash if frozen else None
    if frozen:
        for name, method in (("__setattr__", _frozen_setattr), ("__delattr__", _frozen_delattr)):
            if name in body:
                raise TypeError(f"{cls.__qualname__}: a frozen record cannot define {name}")
            methods[name] = method
    if not slots:
        for name, value in methods.items():
            setattr(cls, name, value)
        for f in own.values():  # a default stays a class attribute, a field() does not
            if isinstance(body.get(f.name), Field):
                if f.default is MISSING:
                    delattr(cls, f.name)
                else:
                    setattr(cls, f.name, f.default)
        return cls
    ns = {k: v for k, v in body.items() if k not in own}  # defaults are in the field table
    ns.update(methods)
    # The old class's own __dict__ and __weakref__ descriptors would refuse the new class's
    # instances; __qualname__ lives in the type, not its __dict__.
    ns.pop("__dict__", None)
    ns.pop("__weakref__", None)
    ns["__slots__"] = tuple(own)
    ns["__qualname__"] = cls.__qualname__
    # A new class, as dataclasses does for slots: __slots__ only takes effect at creation.
    meta: type = type(cls)
    made: type[T] = meta(cls.__name__, cls.__bases__, ns)
    return made


@overload
@dataclass_transform(frozen_default=True, kw_only_default=True, field_specifiers=(field, Field))
def record(cls: type[T], /) -> type[T]: ...
@overload
def record(
    *, frozen: bool = True, eq: bool = True, kw_only: bool = True, slots: bool = True
) -> Callable[[type[T]], type[T]]: ...
def record(
    cls: type[T] | None = None,
    /,
    *,
    frozen: bool = True,
    eq: bool = True,
    kw_only: bool = True,
    slots: bool = True,
) -> type[T] | Callable[[type[T]], type[T]]:
    """Make `cls` a record: `__init__`, `__repr__`, `__eq__` and `__hash__` from its fields.

    Defaults are frozen, keyword-only and slotted. `eq=False` keeps identity comparison (for
    records that stand for one thing each, compared with `is`).
    """

    def wrap(c: type[T]) -> type[T]:
        return _make(c, frozen=frozen, eq=eq, kw_only=kw_only, slots=slots)

    return wrap if cls is None else wrap(cls)


def is_record(obj: object) -> bool:
    return hasattr(type(obj) if not isinstance(obj, type) else obj, "__record__")


def fields(obj: object) -> tuple[Field, ...]:
    """The record's fields in declaration order (inherited first)."""
    cls = obj if isinstance(obj, type) else type(obj)
    try:
        spec: _Spec = cls.__record__  # type: ignore[attr-defined]
    except AttributeError:
        raise TypeError(f"{cls.__qualname__} is not a record") from None
    return spec.fields


def replace(obj: T, /, **changes: Any) -> T:
    """A copy of `obj` with `changes`, made through `__init__` (so `__post_init__` runs)."""
    for f in fields(obj):
        if not f.init and f.name in changes:
            raise ValueError(f"field {f.name!r} is not set by __init__ and cannot be replaced")
        if f.init and f.name not in changes:
            changes[f.name] = getattr(obj, f.name)
    return type(obj)(**changes)


def asdict(obj: object) -> dict[str, Any]:
    """The record as a dict, records inside it (and in lists, tuples and dicts) as dicts too."""
    if not is_record(obj) or isinstance(obj, type):
        raise TypeError("asdict() should be called on record instances")
    result = _plain(obj)
    assert isinstance(result, dict)
    return result


def _plain(value: Any) -> Any:
    if is_record(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, list | tuple):
        return type(value)(_plain(v) for v in value)
    if isinstance(value, dict):
        return {_plain(k): _plain(v) for k, v in value.items()}
    return value
