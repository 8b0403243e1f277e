"""elfcost.record behaves as dataclasses does for every option elfcost uses.

Each case defines the same class twice, once with `@record(...)` and once with the equivalent
`@dataclass(...)`, and checks that the two agree: construction (and its errors), repr, equality,
hashing, frozenness, replace, asdict, fields, pickling, pattern matching and slots.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import pickle
from typing import Any, ClassVar

import pytest

from elfcost import record as rec
from elfcost.record import field, record

# --- the same classes, both ways (module level so that pickle finds them) ---


@record
class Page:
    vaddr: int
    cause: str
    certain: bool = True
    notes: tuple[str, ...] = ()
    extra: dict[str, int] = field(default_factory=dict, compare=False)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class DPage:
    vaddr: int
    cause: str
    certain: bool = True
    notes: tuple[str, ...] = ()
    extra: dict[str, int] = dataclasses.field(default_factory=dict, compare=False)


@record(kw_only=False)
class Span:
    start: int
    end: int = 0


@dataclasses.dataclass(frozen=True, slots=True)
class DSpan:
    start: int
    end: int = 0


@record(frozen=False, kw_only=False, eq=False)
class Acc:
    n: int
    items: list[int] = field(default_factory=list)


@dataclasses.dataclass(slots=True, eq=False)
class DAcc:
    n: int
    items: list[int] = dataclasses.field(default_factory=list)


@record
class Holder:
    page: Page
    spans: tuple[Span, ...]
    count: int = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "count", len(self.spans))


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class DHolder:
    page: DPage
    spans: tuple[DSpan, ...]
    count: int = dataclasses.field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "count", len(self.spans))


@record(slots=False)
class Cached:
    n: int

    @functools.cached_property
    def square(self) -> int:
        return self.n * self.n


@record
class Child(Page):
    size: int = 0


def _outcome(fn: Any) -> Any:
    """The result, or the exception's type (messages differ in wording, not in kind)."""
    try:
        return ("ok", fn())
    except Exception as exc:
        return (
            "raised",
            type(exc).__mro__[1] if type(exc) is rec.FrozenInstanceError else type(exc),
        )


def _strip(text: str) -> str:
    return text.replace("DPage", "Page").replace("DSpan", "Span").replace("DHolder", "Holder")


CALLS: list[tuple[tuple[Any, ...], dict[str, Any]]] = [
    ((), {}),
    ((1,), {}),
    ((), {"vaddr": 1}),
    ((), {"vaddr": 1, "cause": "relro"}),
    ((), {"vaddr": 1, "cause": "relro", "certain": False, "notes": ("a",)}),
    ((), {"vaddr": 1, "cause": "relro", "bogus": 2}),
    ((1, "x"), {}),
]


@pytest.mark.parametrize(("args", "kwargs"), CALLS)
def test_keyword_only_construction_matches_dataclasses(
    args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    mine = _outcome(lambda: Page(*args, **kwargs))
    theirs = _outcome(lambda: DPage(*args, **kwargs))
    assert mine[0] == theirs[0]
    if mine[0] == "ok":
        assert repr(mine[1]) == _strip(repr(theirs[1]))
    else:
        assert mine[1] is theirs[1]


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [((), {}), ((1,), {}), ((1, 2), {}), ((1, 2, 3), {}), ((1,), {"start": 1}), ((), {"end": 2})],
)
def test_positional_construction_matches_dataclasses(
    args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    mine = _outcome(lambda: Span(*args, **kwargs))
    theirs = _outcome(lambda: DSpan(*args, **kwargs))
    assert mine[0] == theirs[0]
    if mine[0] == "ok":
        assert repr(mine[1]) == _strip(repr(theirs[1]))
        assert mine[1].__match_args__ == theirs[1].__match_args__


def test_equality_and_hash_follow_compared_fields() -> None:
    a = Page(vaddr=1, cause="x", extra={"k": 1})
    b = Page(vaddr=1, cause="x")
    assert a == b and hash(a) == hash(b)  # extra has compare=False
    assert a != Page(vaddr=2, cause="x")
    assert len({a, b, Page(vaddr=2, cause="x")}) == 2
    # Another class with the same values is not equal, as with dataclasses.
    same_values: object = DPage(vaddr=1, cause="x")
    assert a != same_values
    assert Span(1) != Span(2) and Span(1) == Span(1, 0)
    assert Child(vaddr=1, cause="x") != Page(vaddr=1, cause="x")


def test_identity_records_compare_by_identity_and_are_mutable() -> None:
    a, b = Acc(1), Acc(1)
    assert a != b and a == a
    assert hash(a) != hash(b)  # object's hash, as dataclass(eq=False)
    a.n = 5
    a.items.append(3)
    assert (a.n, a.items, b.items) == (5, [3], [])  # each gets its own list
    assert repr(a) == _strip(repr(DAcc(5, [3]))).replace("DAcc", "Acc")


def test_frozen_and_slotted() -> None:
    p = Page(vaddr=1, cause="x")
    with pytest.raises(AttributeError):
        p.vaddr = 2  # type: ignore[misc]
    with pytest.raises(AttributeError):
        del p.cause
    with pytest.raises(AttributeError):
        p.unknown = 1  # type: ignore[attr-defined]
    assert not hasattr(p, "__dict__")
    assert Page.__slots__ == DPage.__slots__  # type: ignore[attr-defined]
    assert Child.__slots__ == ("size",)  # type: ignore[attr-defined]
    with pytest.raises(TypeError, match="ClassVar"):

        @record
        class Counted:
            n: ClassVar[int] = 0

    with pytest.raises(ValueError, match="mutable default"):

        @record
        class Bad:
            items: list[int] = []  # noqa: RUF012


def test_post_init_inheritance_replace_asdict_fields() -> None:
    h = Holder(page=Page(vaddr=1, cause="x"), spans=(Span(1, 2), Span(3)))
    d = DHolder(page=DPage(vaddr=1, cause="x"), spans=(DSpan(1, 2), DSpan(3)))
    assert h.count == d.count == 2
    assert repr(h) == _strip(repr(d))
    assert rec.asdict(h) == dataclasses.asdict(d)
    assert [f.name for f in rec.fields(Holder)] == [f.name for f in dataclasses.fields(DHolder)]
    h2 = rec.replace(h, spans=(Span(0),))
    assert h2.count == 1 and h2.page is h.page and h.count == 2
    with pytest.raises(ValueError):
        rec.replace(h, count=3)
    with pytest.raises(TypeError):
        rec.asdict(Holder)
    c = Child(vaddr=4, cause="y", size=9)
    assert [f.name for f in rec.fields(c)] == [
        "vaddr",
        "cause",
        "certain",
        "notes",
        "extra",
        "size",
    ]
    assert rec.replace(c, size=1) == Child(vaddr=4, cause="y", size=1)


def test_pickle_and_copy_keep_every_field() -> None:
    h = Holder(page=Page(vaddr=1, cause="x", extra={"k": 2}), spans=(Span(1, 2),))
    for other in (pickle.loads(pickle.dumps(h)), copy.deepcopy(h), copy.copy(h)):
        assert other == h and other.count == 1 and other.page.extra == {"k": 2}
    a = Acc(2, [1])
    b = pickle.loads(pickle.dumps(a))
    assert (b.n, b.items) == (2, [1])


def test_a_record_without_slots_has_a_dict_for_cached_properties() -> None:
    c = Cached(n=3)
    assert c.square == 9 and c.__dict__ == {"n": 3, "square": 9}
    with pytest.raises(AttributeError):
        c.n = 4  # type: ignore[misc]
    assert pickle.loads(pickle.dumps(c)) == c


class Outer:
    @record
    class Inner:
        x: int


@record(slots=False)
class Described:
    n: int

    def __repr__(self) -> str:
        return f"Described#{self.n}"

    def describe(self) -> str:
        return super().__repr__().split(" object")[0]  # zero-argument super(): same class


@record
class Measured:
    value: float


def test_what_the_class_body_defines_and_where_the_class_lives_are_kept() -> None:
    inner = Outer.Inner(x=1)
    assert Outer.Inner.__qualname__ == "Outer.Inner"
    assert pickle.loads(pickle.dumps(inner)) == inner
    d = Described(n=2)
    assert repr(d) == "Described#2" and d.describe().endswith("Described")
    # A single compared field is compared as a tuple, so identity short-cuts it (NaN).
    nan = Measured(value=float("nan"))
    assert nan == nan and {nan: 1}[nan] == 1
    with pytest.raises(TypeError, match="cannot define __setattr__"):

        @record
        class Guarded:
            n: int

            def __setattr__(self, name: str, value: object) -> None:
                pass


def test_initvar_is_refused_without_postponed_annotations() -> None:
    namespace: dict[str, Any] = {"record": record, "dataclasses": dataclasses}
    with pytest.raises(TypeError, match="InitVar"):
        exec("@record\nclass Late:\n    seed: dataclasses.InitVar[int]\n", namespace)


def test_match() -> None:
    match Span(3, 4):
        case Span(start, end):
            assert (start, end) == (3, 4)
        case _:
            pytest.fail("no match")
