"""State descriptors: encoding, equality, decoding errors, migrations."""

from __future__ import annotations

import datetime
import enum
import uuid
from typing import Annotated, Literal

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from clientstate import ConfigurationError, ErrorKind, LoadError, Migration, State, StateEncodeError


class Opaque:
    """A plain class: msgspec cannot decode it without hooks."""


class Role(enum.Enum):
    ADMIN = "admin"
    EDITOR = "editor"


class Item(msgspec.Struct, frozen=True):
    sku: str
    qty: Annotated[int, msgspec.Meta(ge=1, le=99)]


class Cart(msgspec.Struct):
    user_id: int
    items: list[Item] = []
    roles: set[Role] = set()
    note: str | None = None
    theme: Literal["dark", "light"] = "light"
    updated: datetime.datetime | None = None
    token: uuid.UUID | None = None


items = st.builds(Item, sku=st.text(max_size=12), qty=st.integers(1, 99))
carts = st.builds(
    Cart,
    user_id=st.integers(-(2**63), 2**64 - 1),
    items=st.lists(items, max_size=5),
    roles=st.sets(st.sampled_from(Role)),
    note=st.none() | st.text(max_size=40),
    theme=st.sampled_from(["dark", "light"]),
    updated=st.none() | st.datetimes(timezones=st.just(datetime.UTC)),
    token=st.none() | st.uuids(),
)
CART = State("cart", Cart)
SCORES: State[dict[str, int]] = State("scores", dict[str, int])
TAGS: State[list[str]] = State("tags", list[str])


@given(carts)
def test_struct_round_trip(value: Cart) -> None:
    assert CART.decode(CART.encode(value)) == value


@given(st.dictionaries(st.text(max_size=10), st.integers(-(2**63), 2**63 - 1), max_size=10))
def test_dict_round_trip_and_encoding_ignores_insertion_order(value: dict[str, int]) -> None:
    assert SCORES.decode(SCORES.encode(value)) == value
    reordered = dict(reversed(list(value.items())))
    assert SCORES.encode(reordered) == SCORES.encode(value)
    assert SCORES.equal(reordered, value)


@given(st.lists(st.text(max_size=10), max_size=10))
def test_list_round_trip(value: list[str]) -> None:
    assert TAGS.decode(TAGS.encode(value)) == value


def test_equality_is_by_value_including_nested_changes() -> None:
    a = Cart(1, [Item("A", 1)])
    b = Cart(1, [Item("A", 1)])
    assert CART.equal(a, b)
    assert not CART.equal(a, Cart(1, [Item("A", 2)]))
    assert CART.equal(None, None)
    assert not CART.equal(a, None)


def test_encode_refuses_values_that_would_not_load_again() -> None:
    with pytest.raises(StateEncodeError, match=r"state 'cart' cannot be encoded: .*user_id"):
        CART.encode(Cart("not-an-int", []))  # type: ignore[arg-type]
    with pytest.raises(StateEncodeError, match=r"qty"):
        CART.encode(Cart(1, [Item("A", 0)]))
    with pytest.raises(StateEncodeError, match="None means 'no state'"):
        CART.encode(None)  # type: ignore[arg-type]
    with pytest.raises(StateEncodeError):
        TAGS.encode([object()])  # type: ignore[list-item]


def test_decode_errors_are_values_naming_the_field() -> None:
    bad = msgspec.msgpack.encode({"user_id": "x"})
    result = CART.decode(bad)
    assert isinstance(result, LoadError)
    assert result.kind is ErrorKind.STATE_DECODE
    assert "user_id" in result.detail
    trailing = CART.decode(CART.encode(Cart(1)) + b"\x00")
    assert isinstance(trailing, LoadError)
    assert trailing.kind is ErrorKind.STATE_DECODE
    assert isinstance(CART.decode(b"\xc1"), LoadError)


class CartV1(msgspec.Struct):
    user: int
    skus: list[str] = []


def upgrade_v1(old: CartV1) -> Cart:
    return Cart(old.user, [Item(s, 1) for s in old.skus])


def test_migration_from_an_older_version() -> None:
    cart2 = State("cart", Cart, version=2, migrations=[Migration(1, CartV1, upgrade_v1)])
    assert cart2.versions == (2, 1)
    old = msgspec.msgpack.encode(CartV1(7, ["A", "B"]))
    assert cart2.decode(old, 1) == Cart(7, [Item("A", 1), Item("B", 1)])
    missing = cart2.decode(old, 0)
    assert isinstance(missing, LoadError)
    assert missing.kind is ErrorKind.STATE_DECODE


def test_migration_failures_are_values() -> None:
    def explode(old: CartV1) -> Cart:
        raise RuntimeError("boom")

    def wrong_type(old: CartV1) -> Cart:
        return Cart("x")  # type: ignore[arg-type]

    for upgrade in (explode, wrong_type):
        state = State("cart", Cart, version=2, migrations=[Migration(1, CartV1, upgrade)])
        result = state.decode(msgspec.msgpack.encode(CartV1(1)), 1)
        assert isinstance(result, LoadError)
        assert result.kind is ErrorKind.MIGRATION_FAILED
        assert "from schema version 1" in result.detail


def test_migrations_are_tried_newest_first() -> None:
    state = State(
        "cart",
        Cart,
        version=5,
        migrations=[Migration(1, CartV1, upgrade_v1), Migration(3, CartV1, upgrade_v1)],
    )
    assert state.versions == (5, 3, 1)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": ""}, "state name"),
        ({"name": "has space"}, "state name"),
        ({"name": "x" * 129}, "state name"),
        ({"version": -1}, "schema version"),
        ({"version": True}, "schema version"),
        ({"type": Opaque}, "not supported by msgspec"),
        ({"migrations": [Migration(1, CartV1, upgrade_v1)]}, "not older than"),
        (
            {"version": 3, "migrations": [Migration(1, CartV1, upgrade_v1), Migration(1, CartV1, upgrade_v1)]},
            "two migrations",
        ),
    ],
)
def test_configuration_errors(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"name": "cart", "type": Cart, **kwargs}
    name, type_ = args.pop("name"), args.pop("type")
    with pytest.raises(ConfigurationError, match=message):
        State(name, type_, **args)  # type: ignore[call-overload]


def test_migration_configuration_errors() -> None:
    with pytest.raises(ConfigurationError, match="migration version"):
        Migration(-1, CartV1, upgrade_v1)
    with pytest.raises(ConfigurationError, match="not supported by msgspec"):
        Migration(1, dict[str, Opaque], upgrade_v1)
