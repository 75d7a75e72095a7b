"""clientstate.testing strategies: every value is valid, and the edge cases are reached."""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import enum
import math
import re
import uuid
from collections.abc import Callable
from typing import Annotated, Any, Literal, NamedTuple, TypedDict

import msgspec
import pytest
from hypothesis import HealthCheck, Phase, find, given, settings
from hypothesis import strategies as st

from clientstate import Migration, State
from clientstate.testing import UnsupportedTypeError, from_type, old_states, states

FIND = settings(database=None, max_examples=2000, phases=[Phase.generate], deadline=None)
MANY = settings(max_examples=100, database=None, deadline=None, suppress_health_check=[HealthCheck.too_slow])

Short = Annotated[str, msgspec.Meta(min_length=1, max_length=8)]
Percent = Annotated[int, msgspec.Meta(ge=0, le=100)]


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"
    BLUE = "blue"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Point(msgspec.Struct, frozen=True):
    x: int
    y: float


class Book(msgspec.Struct, tag=True):
    title: Short


class Film(msgspec.Struct, tag=True):
    minutes: Annotated[int, msgspec.Meta(gt=0, lt=600, multiple_of=5)]


class Link(msgspec.Struct):
    value: int
    next: Link | None = None


class Prefs(TypedDict, total=False):
    theme: Literal["light", "dark"]
    size: Percent


class Pair(NamedTuple):
    left: int
    right: str = "r"


@dataclasses.dataclass
class Box:
    width: Annotated[float, msgspec.Meta(ge=0.0, le=10.0)]


class Positive(msgspec.Struct):
    """A Struct whose __post_init__ refuses some values: the strategy must never yield those."""

    low: int
    high: int

    def __post_init__(self) -> None:
        if self.low > self.high:
            raise ValueError("low must not exceed high")


class Everything(msgspec.Struct):
    """One field per kind of type the strategies support."""

    flag: bool
    count: int
    percent: Percent
    ratio: Annotated[float, msgspec.Meta(gt=0.0, lt=1.0)]
    tenth: Annotated[float, msgspec.Meta(multiple_of=0.25, ge=-10, le=10)]
    anything_float: float
    code: Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{2}-\d{3}$")]
    name: Short
    text: str
    raw: bytes
    small_bytes: Annotated[bytes, msgspec.Meta(max_length=4)]
    buffer: bytearray
    tags: Annotated[list[Short], msgspec.Meta(max_length=5)]
    points: set[Point]
    levels: frozenset[Level]
    scores: dict[str, Percent]
    by_id: dict[int, Short]
    pair: tuple[int, str]
    numbers: tuple[int, ...]
    color: Color
    media: list[Book | Film]
    when: dt.datetime
    aware: Annotated[dt.datetime, msgspec.Meta(tz=True)]
    naive: Annotated[dt.datetime, msgspec.Meta(tz=False)]
    day: dt.date
    at: dt.time
    span: dt.timedelta
    ident: uuid.UUID
    amount: decimal.Decimal
    extra: Any
    prefs: Prefs
    named: Pair
    box: Box
    chain: Link
    bounds: Positive
    mode: Literal["a", "b", 3] | None = None
    maybe: int | None = None


EVERYTHING = State("everything", Everything)


def test_every_drawn_value_encodes_and_decodes_strictly() -> None:
    decoder = msgspec.msgpack.Decoder(Everything)
    seen = 0

    @MANY
    @given(states(EVERYTHING))
    def check(value: Everything) -> None:
        nonlocal seen
        payload = EVERYTHING.encode(value)  # validates by decoding strictly
        assert type(decoder.decode(payload)) is Everything
        assert value.bounds.low <= value.bounds.high
        assert re.search(r"^[A-Z]{2}-\d{3}$", value.code)
        assert 0.0 < value.ratio < 1.0
        assert value.tenth % 0.25 == 0
        assert -10 <= value.tenth <= 10
        assert all(1 <= len(t) <= 8 for t in value.tags)
        assert len(value.tags) <= 5
        assert value.aware.tzinfo is not None
        assert value.naive.tzinfo is None
        seen += 1

    check()
    assert seen == 100


SIMPLE_TYPES: list[Any] = [
    bool,
    int,
    float,
    str,
    bytes,
    bytearray,
    list[int],
    set[str],
    frozenset[int],
    dict[str, list[int]],
    dict[Color, int],
    tuple[int, ...],
    tuple[bool, str, float],
    Color,
    Level,
    Literal["x", "y"],
    dt.datetime,
    dt.date,
    dt.time,
    dt.timedelta,
    uuid.UUID,
    decimal.Decimal,
    Any,
    Prefs,
    Pair,
    Box,
    Link,
    Book | Film,
    int | str,
    Annotated[int, msgspec.Meta(ge=-5, le=5, multiple_of=2)],
    Annotated[float, msgspec.Meta(gt=-1.5, le=2.5)],
    Annotated[str, msgspec.Meta(pattern="^ab+c?$", max_length=6)],
    Annotated[list[Annotated[bytes, msgspec.Meta(min_length=2)]], msgspec.Meta(min_length=1, max_length=3)],
    Annotated[dt.time, msgspec.Meta(tz=True)],
]


@pytest.mark.parametrize("tp", SIMPLE_TYPES, ids=repr)
def test_each_supported_type_yields_only_valid_values(tp: Any) -> None:
    state = State("t", tp)
    decoder = msgspec.msgpack.Decoder(tp)

    @settings(max_examples=40, database=None, deadline=None)
    @given(states(state))
    def check(value: Any) -> None:
        assert value is not None
        decoder.decode(state.encode(value))

    check()


def _finds(strategy: st.SearchStrategy[Any], condition: Callable[[Any], bool]) -> Any:
    return find(strategy, condition, settings=FIND)


@pytest.mark.parametrize(
    ("tp", "size"),
    [
        (Annotated[list[int], msgspec.Meta(max_length=7)], 7),
        (Annotated[str, msgspec.Meta(max_length=64)], 64),
        (Annotated[bytes, msgspec.Meta(max_length=10)], 10),
        (Annotated[dict[str, int], msgspec.Meta(max_length=5)], 5),
        (Annotated[set[int], msgspec.Meta(max_length=5)], 5),
        (Annotated[tuple[int, ...], msgspec.Meta(max_length=3)], 3),
        (Annotated[list[str], msgspec.Meta(min_length=2, max_length=60)], 60),
    ],
    ids=repr,
)
def test_sizes_reach_max_length_and_never_exceed_it(tp: Any, size: int) -> None:
    value = _finds(from_type(tp), lambda v: len(v) == size)
    assert len(value) == size

    @settings(max_examples=100, database=None, deadline=None)
    @given(from_type(tp))
    def bounded(v: Any) -> None:
        assert len(v) <= size

    bounded()


@pytest.mark.parametrize("tp", [list[int], str, bytes, dict[str, int], set[int], frozenset[str], tuple[int, ...]])
def test_containers_reach_empty(tp: Any) -> None:
    assert len(_finds(from_type(tp), lambda v: len(v) == 0)) == 0


def test_min_length_is_reached_and_respected() -> None:
    tp = Annotated[list[int], msgspec.Meta(min_length=3, max_length=9)]
    assert len(_finds(from_type(tp), lambda v: len(v) == 3)) == 3

    @settings(max_examples=100, database=None)
    @given(from_type(tp))
    def at_least(v: list[int]) -> None:
        assert 3 <= len(v) <= 9

    at_least()


def test_every_union_branch_is_reached() -> None:
    strategy = from_type(int | str | Book | Film | None)
    for kind in (int, str, Book, Film, type(None)):
        assert type(_finds(strategy, lambda v, k=kind: type(v) is k)) is kind  # type: ignore[misc]


@pytest.mark.parametrize("member", list(Color) + list(Level))
def test_every_enum_member_is_reached(member: enum.Enum) -> None:
    assert _finds(from_type(type(member)), lambda v: v is member) is member


@pytest.mark.parametrize("literal", ["a", "b", 3])
def test_every_literal_value_is_reached(literal: object) -> None:
    assert _finds(from_type(Literal["a", "b", 3]), lambda v: v == literal) == literal


def test_integer_bounds_are_reached_exactly() -> None:
    strategy = from_type(Annotated[int, msgspec.Meta(ge=-7, lt=50, multiple_of=7)])
    assert _finds(strategy, lambda v: v == -7) == -7
    assert _finds(strategy, lambda v: v == 49) == 49
    assert _finds(from_type(int), lambda v: v == 2**64 - 1) == 2**64 - 1
    assert _finds(from_type(int), lambda v: v == -(2**63)) == -(2**63)


def test_floats_include_nan_and_infinity_but_never_in_sets() -> None:
    assert math.isnan(_finds(from_type(float), lambda v: math.isnan(v)))
    assert _finds(from_type(float), lambda v: v == math.inf) == math.inf

    @settings(max_examples=100, database=None)
    @given(from_type(set[float]))
    def no_nan(values: set[float]) -> None:
        assert not any(math.isnan(v) for v in values)

    no_nan()


def test_datetime_time_zone_forms() -> None:
    strategy = from_type(dt.datetime)
    assert _finds(strategy, lambda v: v.tzinfo is None).tzinfo is None
    aware = _finds(strategy, lambda v: v.tzinfo is not None and v.utcoffset() != dt.timedelta(0))
    assert aware.utcoffset() is not None


def test_top_level_optional_never_draws_none_but_from_type_can() -> None:
    state: State[int | None] = State("maybe", int | None)

    @settings(max_examples=200, database=None)
    @given(states(state))
    def never_none(value: int | None) -> None:
        assert isinstance(value, int)

    never_none()
    assert _finds(from_type(int | None), lambda v: v is None) is None
    assert _finds(from_type(Literal["x", None], allow_none=False), lambda v: True) == "x"


def test_recursive_struct_nests() -> None:
    deep = _finds(states(State("chain", Link)), lambda v: v.next is not None and v.next.next is not None)
    assert isinstance(deep.next.next, Link)


def test_post_init_refusals_are_never_drawn() -> None:
    assert _finds(from_type(Positive), lambda v: v.low == v.high).low is not None

    @settings(max_examples=100, database=None)
    @given(from_type(Positive))
    def ordered(value: Positive) -> None:
        assert value.low <= value.high

    ordered()


class Defaults(msgspec.Struct):
    name: Short
    mode: Literal["a", "b", 3] | None = None
    tags: list[Short] = []


def test_optional_struct_fields_are_left_at_their_default_or_drawn() -> None:
    assert _finds(from_type(Defaults), lambda v: v.mode is None and v.tags == []).mode is None
    assert _finds(from_type(Defaults), lambda v: v.mode == 3).mode == 3
    assert _finds(from_type(Defaults), lambda v: len(v.tags) > 1).tags[1]


class V1(msgspec.Struct):
    name: str


class V2(msgspec.Struct):
    first: str
    last: str = ""


MIGRATED = State("person", V2, version=2, migrations=[Migration(1, V1, lambda old: V2(first=old.name))])


def test_old_states_draw_the_migration_type() -> None:
    decoder = msgspec.msgpack.Decoder(V1)

    @settings(max_examples=50, database=None)
    @given(old_states(MIGRATED, 1))
    def old(value: V1) -> None:
        assert type(value) is V1
        decoder.decode(msgspec.msgpack.encode(value))

    old()
    assert type(_finds(old_states(MIGRATED, 2), lambda v: True)) is V2


def test_old_states_refuses_an_unknown_version() -> None:
    with pytest.raises(ValueError, match=r"no schema version 7; its versions are \[2, 1\]"):
        old_states(MIGRATED, 7)


class Loose(msgspec.Struct):
    pass


class Holder(msgspec.Struct):
    items: list[set[Loose]]


class Custom:
    pass


@pytest.mark.parametrize(
    ("tp", "message"),
    [
        (None, r"cannot generate values for value: None is the only value"),
        (Literal[None], r"None is the only value"),
        (Annotated[int, msgspec.Meta(ge=1, le=4, multiple_of=5)], r"no integer satisfies"),
        (Holder, r"Holder\.items\[\]\[\]: Struct Loose is not frozen"),
        (Annotated[set[bool], msgspec.Meta(min_length=3)], r"needs at least 3 distinct items but bool has only 2"),
        (set[list[int]], r"list is not hashable"),
    ],
    ids=repr,
)
def test_types_without_values_raise_unsupported_type_error(tp: Any, message: str) -> None:
    with pytest.raises(UnsupportedTypeError, match=message):
        from_type(tp, allow_none=False)


def test_custom_classes_are_refused_with_the_path() -> None:
    with pytest.raises(UnsupportedTypeError, match=r"cannot generate values for .*Custom"):
        from_type(Custom)

    class Wrapper(msgspec.Struct):
        thing: dict[str, Custom]

    with pytest.raises(UnsupportedTypeError, match=r"Wrapper\.thing\{value\}: Custom is a custom type"):
        from_type(Wrapper)


class Mixed(enum.Enum):
    ONE = 1
    TWO = "two"


def test_types_msgspec_refuses_are_reported() -> None:
    with pytest.raises(UnsupportedTypeError, match=r"msgspec does not support .*Mixed.*all str or all int"):
        from_type(list[Mixed])


def test_states_refuses_a_non_state() -> None:
    with pytest.raises(TypeError, match="takes a clientstate State, got type"):
        states(int)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="takes a clientstate State, got str"):
        old_states("state", 1)  # type: ignore[arg-type]
