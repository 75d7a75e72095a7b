"""clientstate.testing's one walker: every node kind is dispatched, and the size extents are real bounds."""

from __future__ import annotations

import ast
import dataclasses
import datetime as dt
import enum
import itertools
import re
import uuid
from pathlib import Path
from typing import Annotated, Any, Literal, NamedTuple, TypedDict

import msgspec
import msgspec.inspect as mi
import pytest
from hypothesis import given, settings

from clientstate import Binding, CookieTooLarge, State, client_stored
from clientstate.testing import FrozenClock, UnsupportedTypeError, check_fits_cookie, fixed_keyring, from_type
from clientstate.testing._walk import KINDS, Extents, root_label, type_info, type_label
from clientstate.testing.strategies import _Strategies

KIT = Path(__file__).resolve().parents[2] / "clientstate" / "testing"
WIDE = "\U00010000"


def extent(tp: Any) -> Any:
    info = type_info(tp, repr(tp))
    return Extents(root_label(info)).visit(info, (), True)


def test_every_node_class_has_a_kind_and_every_kind_a_method_in_both_visitors() -> None:
    nodes = {cls for cls in vars(mi).values() if isinstance(cls, type) and issubclass(cls, mi.Type)}
    assert nodes - set(KINDS) == {mi.Type, mi.CollectionType, mi.Metadata}
    for kind in set(KINDS.values()):
        assert callable(getattr(Extents, f"visit_{kind}")), kind
        assert callable(getattr(_Strategies, f"visit_{kind}")), kind


def test_the_kit_imports_no_private_module_of_another_package() -> None:
    for source in KIT.glob("*.py"):
        tree = ast.parse(source.read_text())
        names = [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names]
        names += [node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
        names += [str(node.args[0].value) for node in ast.walk(tree) if isinstance(node, ast.Call)
                  and getattr(node.func, "attr", "") == "import_module" and isinstance(node.args[0], ast.Constant)]
        private = [n for n in names if not n.startswith("clientstate")
                   and any(p.startswith("_") and not p.endswith("__") for p in n.split("."))]
        assert private == [], (source.name, private)


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


class Renamed(msgspec.Struct, rename="camel", tag=True):
    user_name: Annotated[str, msgspec.Meta(max_length=3)]
    is_admin: bool = False


class ArrayLike(msgspec.Struct, array_like=True, tag="t"):
    a: Annotated[int, msgspec.Meta(ge=0, le=1000)]
    b: Literal["x", "yyy"] | None = None


class Omit(msgspec.Struct, omit_defaults=True):
    a: int = 0
    b: Annotated[list[bool], msgspec.Meta(max_length=3)] = []


class Prefs(TypedDict, total=False):
    theme: Literal["light", "dark"]
    size: Annotated[int, msgspec.Meta(ge=0, le=100)]


class Pair(NamedTuple):
    left: Annotated[int, msgspec.Meta(ge=0, le=9)]
    right: Annotated[str, msgspec.Meta(max_length=2)] = "r"


@dataclasses.dataclass
class Box:
    wide: bool
    tags: Annotated[list[bool], msgspec.Meta(max_length=2)] = dataclasses.field(default_factory=list)


class Unset(msgspec.Struct):
    a: Annotated[int, msgspec.Meta(ge=0, le=5)] | msgspec.UnsetType = msgspec.UNSET


# (type, its smallest value, its largest value): the extents are exactly these encodings' sizes.
EXACT: list[tuple[Any, Any, Any]] = [
    (bool, False, True),
    (Annotated[int, msgspec.Meta(ge=-1000, le=100_000)], 0, 100_000),
    (Annotated[int, msgspec.Meta(ge=200, le=300, multiple_of=7)], 203, 294),
    (int, 0, -(2**63)),
    (float, 0.5, -1e300),
    (Annotated[str, msgspec.Meta(min_length=2, max_length=40)], "ab", WIDE * 40),
    (Annotated[bytes, msgspec.Meta(max_length=300)], b"", b"x" * 300),
    (Annotated[list[Annotated[int, msgspec.Meta(ge=0, le=300)]], msgspec.Meta(max_length=20)], [], [300] * 20),
    (Annotated[set[Annotated[int, msgspec.Meta(ge=-5, le=5)]], msgspec.Meta(min_length=2)], {0, 1}, set(range(-5, 6))),
    (frozenset[Literal["ab", "cd", "ef"]], frozenset(), frozenset(["ab", "cd", "ef"])),
    (Annotated[dict[Literal[1, 2, 3], bool], msgspec.Meta(max_length=5)], {}, {1: True, 2: True, 3: False}),
    (tuple[bool, Annotated[str, msgspec.Meta(max_length=5)]], (False, ""), (True, WIDE * 5)),
    (dt.datetime, dt.datetime(2000, 1, 1, tzinfo=dt.UTC), dt.datetime(2000, 1, 1, 1, 1, 1, 1)),
    (Annotated[dt.datetime, msgspec.Meta(tz=True)], dt.datetime(2000, 1, 1, tzinfo=dt.UTC),
     dt.datetime(1900, 1, 1, 0, 0, 0, 5, tzinfo=dt.UTC)),
    (dt.date, dt.date(1, 1, 1), dt.date(9999, 12, 31)),
    (Annotated[dt.time, msgspec.Meta(tz=True)], dt.time(1, 2, 3, tzinfo=dt.UTC),
     dt.time(1, 2, 3, 4, tzinfo=dt.timezone(dt.timedelta(hours=5, minutes=30)))),
    (dt.timedelta, dt.timedelta(0), dt.timedelta(days=-999_999_998, seconds=-86_399, microseconds=-1)),
    (uuid.UUID, uuid.UUID(int=5), uuid.UUID(int=2**128 - 1)),
    (Literal["x", 12345, None], "x", 12345),
    (int | Annotated[str, msgspec.Meta(max_length=4)] | None, 0, WIDE * 4),
    (Renamed, Renamed(""), Renamed(WIDE * 3, True)),
    (ArrayLike, ArrayLike(0), ArrayLike(1000, "yyy")),
    (Omit, Omit(), Omit(-(2**63), [True] * 3)),
    (Prefs, {}, {"theme": "light", "size": 100}),
    (Pair, Pair(0, ""), Pair(9, WIDE * 2)),  # smaller than the default "r"
    (Box, Box(False), Box(True, [True, True])),
    (Unset, Unset(), Unset(5)),
]


@pytest.mark.parametrize(("tp", "smallest", "largest"), EXACT, ids=[repr(e[0]) for e in EXACT])
def test_extents_are_exact_and_no_drawn_value_leaves_them(tp: Any, smallest: Any, largest: Any) -> None:
    found = extent(tp)
    state = State("t", tp)
    assert (len(found.small), len(found.large)) == (len(state.encode(smallest)), len(state.encode(largest)))
    assert found.growths == ()

    @settings(max_examples=60, database=None, deadline=None)
    @given(from_type(tp, allow_none=False))
    def within(value: Any) -> None:
        assert len(found.small) <= len(state.encode(value)) <= len(found.large)

    within()


@pytest.mark.parametrize(("tp", "largest", "small_is_large"), [
    (Annotated[str, msgspec.Meta(pattern="^[a-z]+$", max_length=10)], 2 + 40, True),
    (Annotated[list[Annotated[str, msgspec.Meta(pattern=r"\d", max_length=3)]], msgspec.Meta(max_length=4)],
     1 + 4 * (1 + 12), False),
    # A set or dict at its largest holds copies of its largest item or key: an upper bound when sizes differ.
    (frozenset[Literal["a", "bb", "ccc"]], 1 + 3 * 4, False),
    (dict[Color, bool], 1 + 2 * (6 + 1), False),
], ids=repr)
def test_upper_bounds_are_the_documented_ones_and_hold(tp: Any, largest: int, small_is_large: bool) -> None:
    found = extent(tp)
    state = State("t", tp)
    assert len(found.large) == largest
    assert (found.small == found.large) is small_is_large  # a patterned str counts at its largest even as its smallest

    @settings(max_examples=60, database=None, deadline=None)
    @given(from_type(tp))
    def at_most(value: Any) -> None:
        assert len(state.encode(value)) <= len(found.large)

    at_most()


class Node(msgspec.Struct):
    name: str
    tags: dict[str, Annotated[bytes, msgspec.Meta(max_length=2)]] = {}
    amount: Any = None
    next: Node | None = None


def test_growths_name_every_unbounded_part_outermost_first() -> None:
    found = extent(Node)
    assert [(g.path, g.label, g.unit, g.grow is None) for g in found.growths] == [
        ((".name",), "str", "characters", False),
        ((".tags",), "dict[str, bytes]", "items", False),
        ((".tags", "{key}"), "str", "characters", False),
        ((".amount",), "Any", "items", False),
        ((".next",), "Node", "levels", True),
    ]
    grown = found.growths[0].grow(5)
    assert msgspec.msgpack.decode(grown) == {"name": "xxxxx", "tags": {}, "amount": None, "next": None}
    assert len(found.small) == len(msgspec.msgpack.encode(Node("")))


class Tags(msgspec.Struct):
    ids: set[int]
    names: frozenset[str] = frozenset()


def _nearest_ints(n: int) -> set[int]:
    return set(itertools.islice((v for k in itertools.count() for v in dict.fromkeys((k, -k))), n))


def _shortest_strings(n: int) -> frozenset[str]:
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    words = ("".join(c) for size in itertools.count() for c in itertools.product(alphabet, repeat=size))
    return frozenset(itertools.islice(words, n))


def test_a_grown_set_holds_distinct_items_and_its_limit_is_exact() -> None:
    handler = client_stored(fixed_keyring(), name="tags")
    tags = State("tags", Tags)
    with pytest.raises(AssertionError) as failure:
        check_fits_cookie(tags, handler, max_examples=5)
    message = str(failure.value)
    limits = dict(re.findall(r"Tags\.(\w+) \((?:set\[int\]|frozenset\[str\])\) has no size bound: with every other "
                             r"field at its smallest, it fits up to (\d+) items", message))
    assert set(limits) == {"ids", "names"}, message
    assert "Tags.names[] (str) has no size bound" in message
    binding = Binding(tags, handler, FrozenClock())
    ids, names = int(limits["ids"]), int(limits["names"])
    binding.begin([]).state = Tags(ids=_nearest_ints(ids))  # the most distinct items that fit...
    binding.begin([]).state = Tags(ids=set(), names=_shortest_strings(names))
    with pytest.raises(CookieTooLarge):  # ...and one more
        binding.begin([]).state = Tags(ids=_nearest_ints(ids + 1))
    with pytest.raises(CookieTooLarge):
        binding.begin([]).state = Tags(ids=set(), names=_shortest_strings(names + 1))


class Bad(NamedTuple):
    left: Annotated[int, msgspec.Meta(ge=1, le=4, multiple_of=5)]


def test_labels_and_refusals() -> None:
    assert type_label(type_info(dict[str, tuple[int, ...]] | None, "x")) == "dict[str, tuple[int, ...]] | None"
    assert type_label(type_info(frozenset[Literal[1, "a"]], "x")) == "frozenset[Literal[1, 'a']]"
    with pytest.raises(UnsupportedTypeError, match=r"cannot generate values for value: None is the only value"):
        extent(None)
    with pytest.raises(UnsupportedTypeError, match=r"Bad\.left: no integer satisfies"):
        extent(Bad)
