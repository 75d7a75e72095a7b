"""Hypothesis strategies for the values of a :class:`~clientstate.state.State`.

:func:`states` draws every value of a state's type; :func:`old_states` draws
values of an older schema version (a :class:`~clientstate.state.Migration`'s
type); :func:`from_type` does the same for any type msgspec can decode.

The strategies are derived from :func:`msgspec.inspect.type_info`, so they
follow msgspec's own reading of the type: ``msgspec.Meta`` constraints
(``ge``/``gt``/``le``/``lt``/``multiple_of``, ``min_length``/``max_length``,
``pattern``), Structs (nested, tagged, recursive), dataclasses, TypedDicts,
NamedTuples, unions, ``Literal``, enums, date and time types, UUID, Decimal,
bytes, containers and ``Any``. Every value drawn decodes strictly as the type.

Edge cases are drawn on purpose, not left to chance: containers and strings
at exactly ``min_length`` (empty when there is no minimum) and exactly
``max_length`` (when it is at most 2048 characters/bytes or 256 items),
integers at their bounds, every union branch, every enum member and
``Literal`` value.

Details worth knowing:

* ``None`` is never a state, so a top-level ``Optional`` (``X | None``) draws
  only ``X`` values from :func:`states` and :func:`old_states`.
* Floats include ``nan`` and the infinities when unconstrained, except as set
  items or dict keys (``nan`` is not equal to itself). Decimals likewise.
* Aware datetimes and times use fixed UTC offsets with whole minutes (which
  is all MessagePack keeps); no time zone database is needed.
* A Struct's ``__post_init__`` that raises rejects the draw, as decoding would.
"""

from __future__ import annotations

import builtins
import datetime as dt
import decimal
import math
from collections.abc import Callable
from typing import Any, Final, TypeVar, cast

import msgspec
import msgspec.inspect as mi
from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

from clientstate.state import State
from clientstate.testing._types import (
    INT_MAX,
    INT_MIN,
    UnsupportedTypeError,
    cardinality,
    float_validator,
    int_bounds,
    is_frozendict,
    render_path,
    root_label,
    str_validator,
    type_info,
    type_label,
    union_branches,
    unwrap,
)

__all__ = ["UnsupportedTypeError", "from_type", "old_states", "states"]

T = TypeVar("T")

#: Strings and bytes up to this many characters/bytes also get an exact-``max_length`` branch.
EDGE_CHARS: Final = 2048
#: Collections up to this many items also get an exact-``max_length`` branch.
EDGE_ITEMS: Final = 256

_REJECT: Final = object()


def states(state: State[T]) -> SearchStrategy[T]:
    """A strategy drawing every value of ``state``'s type (never ``None``).

    Use it with ``@given``::

        @given(states(CART))
        def test_total(cart: Cart) -> None: ...

    Args:
        state: the :class:`~clientstate.state.State` descriptor.

    Returns:
        a ``SearchStrategy`` of values that :meth:`State.encode` accepts.

    Raises:
        TypeError: ``state`` is not a ``State``.
        UnsupportedTypeError: the type has a part no value can be made for
            (a custom class msgspec cannot decode, an integer range with no
            multiple of ``multiple_of``, a set of a non-frozen Struct, a
            ``None``-only state, ...), naming where.
    """
    if not isinstance(state, State):
        raise TypeError(f"states() takes a clientstate State, got {type(state).__name__}")
    return cast("SearchStrategy[T]", _strategy(state.type, top=True))


def old_states(state: State[Any], version: int) -> SearchStrategy[Any]:
    """A strategy drawing values of ``state`` as they were at schema ``version``.

    Args:
        state: the descriptor.
        version: one of ``state.versions``: the version of one of its
            :class:`~clientstate.state.Migration` s (values of that migration's
            ``type``), or the current version (same as :func:`states`).

    Returns:
        a ``SearchStrategy`` of values of that version's type (never ``None``).

    Raises:
        TypeError: ``state`` is not a ``State``.
        ValueError: ``version`` is neither the current version nor a migration's.
        UnsupportedTypeError: as for :func:`states`.
    """
    if not isinstance(state, State):
        raise TypeError(f"old_states() takes a clientstate State, got {type(state).__name__}")
    if version == state.version:
        return states(state)
    for migration in state.migrations:
        if migration.version == version:
            return _strategy(migration.type, top=True)
    raise ValueError(
        f"state {state.name!r} has no schema version {version!r}; its versions are {list(state.versions)}"
    )


def from_type(tp: Any, *, allow_none: bool = True) -> SearchStrategy[Any]:
    """A strategy drawing every value of any type msgspec can decode strictly.

    Handy for request bodies and other msgspec types next to your state.

    Args:
        tp: the type (``msgspec.Struct``, ``list[int]``, ``Annotated[...]``, ...).
        allow_none: when ``False``, a top-level ``Optional`` draws no ``None``
            (what :func:`states` does).

    Raises:
        UnsupportedTypeError: as for :func:`states`.
    """
    return _strategy(tp, top=not allow_none)


def _strategy(tp: Any, *, top: bool) -> SearchStrategy[Any]:
    info = type_info(tp, repr(tp))
    builder = _Builder(root_label(info))
    return builder.build(info, (), top=top, hashable=False)


def _sized(
    make: Callable[[int, int | None], SearchStrategy[Any]], lo: int, hi: int | None, edge: int
) -> SearchStrategy[Any]:
    """``make(lo, hi)``, plus branches drawing exactly ``lo`` and exactly ``hi`` items."""
    parts = [make(lo, hi), make(lo, lo)]
    if hi is not None and hi != lo and hi <= edge:
        parts.append(make(hi, hi))
    return st.one_of(*parts)


def _utc_offsets() -> SearchStrategy[dt.timezone]:
    return st.integers(-(24 * 60 - 1), 24 * 60 - 1).map(lambda m: dt.timezone(dt.timedelta(minutes=m)))


_AWARE_MIN: Final = dt.datetime(1, 1, 2)
_AWARE_MAX: Final = dt.datetime(9999, 12, 30)


def _msgpack_scalars(hashable: bool) -> SearchStrategy[Any]:
    return st.one_of(
        st.none(),
        st.booleans(),
        st.integers(INT_MIN, INT_MAX),
        st.floats(allow_nan=not hashable),
        st.text(),
        st.binary(),
    )


def _any_values(hashable: bool) -> SearchStrategy[Any]:
    scalars = _msgpack_scalars(hashable)
    if hashable:
        return scalars
    return st.recursive(
        scalars,
        lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(), inner, max_size=4)),
        max_leaves=12,
    )


class _Builder:
    """Builds a strategy for one type tree; remembers class strategies for recursion."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.memo: dict[tuple[int, bool], SearchStrategy[Any]] = {}

    def fail(self, path: tuple[str, ...], reason: str) -> UnsupportedTypeError:
        return UnsupportedTypeError(render_path(self.root, path), reason)

    def build(self, t: mi.Type, path: tuple[str, ...], *, top: bool, hashable: bool) -> SearchStrategy[Any]:
        t = unwrap(t)
        if isinstance(t, mi.NoneType):
            if top:
                raise self.fail(path, "None is the only value, and None means 'no state'")
            return st.none()
        if isinstance(t, mi.BoolType):
            return st.booleans()
        if isinstance(t, mi.IntType):
            return self.ints(t, path)
        if isinstance(t, mi.FloatType):
            return self.floats(t, hashable)
        if isinstance(t, mi.StrType):
            return self.strs(t)
        if isinstance(t, mi.BytesType | mi.ByteArrayType | mi.MemoryViewType):
            lo = t.min_length or 0
            data = _sized(lambda a, b: st.binary(min_size=a, max_size=b), lo, t.max_length, EDGE_CHARS)
            if isinstance(t, mi.ByteArrayType):
                if hashable:
                    raise self.fail(path, "bytearray is not hashable, so it cannot be a set item or dict key")
                return data.map(bytearray)
            if isinstance(t, mi.MemoryViewType):
                return data.map(memoryview)
            return data
        if isinstance(t, mi.ListType | mi.VarTupleType):
            if hashable and isinstance(t, mi.ListType):
                raise self.fail(path, "list is not hashable, so it cannot be a set item or dict key")
            item = self.build(t.item_type, (*path, "[]"), top=False, hashable=hashable)
            lists = _sized(
                lambda a, b: st.lists(item, min_size=a, max_size=b), t.min_length or 0, t.max_length, EDGE_ITEMS
            )
            return lists.map(tuple) if isinstance(t, mi.VarTupleType) else lists
        if isinstance(t, mi.SetType | mi.FrozenSetType):
            if hashable and isinstance(t, mi.SetType):
                raise self.fail(path, "set is not hashable, so it cannot be a set item or dict key")
            item = self.build(t.item_type, (*path, "[]"), top=False, hashable=True)
            lo, hi = self.unique_range(t.item_type, t.min_length, t.max_length, path)
            if isinstance(t, mi.SetType):
                return _sized(lambda a, b: st.sets(item, min_size=a, max_size=b), lo, hi, EDGE_ITEMS)
            return _sized(lambda a, b: st.frozensets(item, min_size=a, max_size=b), lo, hi, EDGE_ITEMS)
        if isinstance(t, mi.TupleType):
            return st.tuples(
                *(self.build(x, (*path, f"[{i}]"), top=False, hashable=hashable) for i, x in enumerate(t.item_types))
            )
        if isinstance(t, mi.DictType) or is_frozendict(t):
            return self.dicts(t, path, hashable)
        if isinstance(t, mi.StructType | mi.DataclassType | mi.NamedTupleType | mi.TypedDictType):
            return self.classes(t, path, hashable)
        if isinstance(t, mi.UnionType):
            return self.unions(t, path, top=top, hashable=hashable)
        if isinstance(t, mi.LiteralType):
            literals = [v for v in t.values if not (top and v is None)]
            if not literals:
                raise self.fail(path, "None is the only value, and None means 'no state'")
            return st.sampled_from(literals)
        if isinstance(t, mi.EnumType):
            members = list(t.cls)
            if not members:
                raise self.fail(path, f"enum {t.cls.__name__} has no members")
            return st.sampled_from(members)
        if isinstance(t, mi.DateTimeType):
            return self.datetimes(t.tz)
        if isinstance(t, mi.DateType):
            return st.dates()
        if isinstance(t, mi.TimeType):
            naive_t = st.times()
            aware_t = st.times(timezones=_utc_offsets())
            return naive_t if t.tz is False else aware_t if t.tz else st.one_of(naive_t, aware_t)
        if isinstance(t, mi.TimeDeltaType):
            return st.timedeltas()
        if isinstance(t, mi.UUIDType):
            return st.uuids()
        if isinstance(t, mi.DecimalType):
            numbers = st.decimals(allow_nan=False, allow_infinity=True)
            return numbers if hashable else st.one_of(numbers, st.just(decimal.Decimal("NaN")))
        if isinstance(t, mi.AnyType):
            values = _any_values(hashable)
            return values.filter(lambda v: v is not None) if top else values
        if isinstance(t, mi.RawType):
            if hashable:
                raise self.fail(path, "msgspec.Raw is not hashable")
            return _any_values(False).map(lambda v: msgspec.Raw(msgspec.msgpack.encode(v)))
        if isinstance(t, mi.ExtType):
            if hashable:
                raise self.fail(path, "msgspec.msgpack.Ext is not hashable")
            return st.builds(msgspec.msgpack.Ext, st.integers(-128, 127), st.binary())
        if isinstance(t, mi.CustomType):
            raise self.fail(path, f"{type_label(t)} is a custom type msgspec decodes only with a dec_hook")
        raise self.fail(path, f"unsupported msgspec type {type(t).__name__}")

    # --- leaves -----------------------------------------------------------------------

    def ints(self, t: mi.IntType, path: tuple[str, ...]) -> SearchStrategy[int]:
        try:
            lo, hi, step = int_bounds(t)
        except ValueError:
            raise self.fail(path, f"no integer satisfies {t}") from None
        edges = sorted({lo, hi, *([0] if lo <= 0 <= hi else [])})
        if step == 1:
            return st.one_of(st.integers(lo, hi), st.sampled_from(edges))
        return st.one_of(st.integers(lo // step, hi // step).map(lambda k: k * step), st.sampled_from(edges))

    def floats(self, t: mi.FloatType, hashable: bool) -> SearchStrategy[float]:
        valid = float_validator(t)
        lo, lo_open = _lower(t)
        hi, hi_open = _upper(t)
        if t.multiple_of is not None:
            m = abs(float(t.multiple_of))
            kmin = -(2**53) if lo is None else math.ceil(lo / m)
            kmax = 2**53 if hi is None else math.floor(hi / m)
            multiples = st.integers(kmin, max(kmin, kmax)).map(lambda k: k * m)
            return st.one_of(multiples, st.just(0.0)).filter(valid)
        if lo is None and hi is None:
            return st.floats(allow_nan=not hashable)
        return st.floats(
            min_value=lo, max_value=hi, exclude_min=lo_open, exclude_max=hi_open, allow_nan=False
        ).filter(valid)

    def strs(self, t: mi.StrType) -> SearchStrategy[str]:
        lo = t.min_length or 0
        if t.pattern is None:
            return _sized(lambda a, b: st.text(min_size=a, max_size=b), lo, t.max_length, EDGE_CHARS)
        valid = str_validator(t)
        return st.one_of(st.from_regex(t.pattern, fullmatch=True), st.from_regex(t.pattern)).filter(valid)

    def datetimes(self, tz: bool | None) -> SearchStrategy[dt.datetime]:
        naive = st.datetimes()
        aware = st.datetimes(min_value=_AWARE_MIN, max_value=_AWARE_MAX, timezones=_utc_offsets())
        if tz is None:
            return st.one_of(naive, aware)
        return aware if tz else naive

    # --- containers and classes -------------------------------------------------------

    def unique_range(
        self, item: mi.Type, lo: int | None, hi: int | None, path: tuple[str, ...]
    ) -> tuple[int, int | None]:
        """Sizes possible for a collection of distinct ``item`` s."""
        lo = lo or 0
        distinct = cardinality(item)
        if distinct is not None:
            if distinct < lo:
                raise self.fail(
                    path, f"needs at least {lo} distinct items but {type_label(item)} has only {distinct} values"
                )
            hi = distinct if hi is None else min(hi, distinct)
        return lo, hi

    def dicts(self, t: Any, path: tuple[str, ...], hashable: bool) -> SearchStrategy[Any]:
        if hashable and isinstance(t, mi.DictType):
            raise self.fail(path, "dict is not hashable, so it cannot be a set item or dict key")
        keys = self.build(t.key_type, (*path, "{key}"), top=False, hashable=True)
        values = self.build(t.value_type, (*path, "{value}"), top=False, hashable=hashable)
        lo, hi = self.unique_range(t.key_type, t.min_length, t.max_length, path)
        maps = _sized(lambda a, b: st.dictionaries(keys, values, min_size=a, max_size=b), lo, hi, EDGE_ITEMS)
        if isinstance(t, mi.DictType):
            return maps
        frozendict = getattr(builtins, "frozendict")  # noqa: B009 - only on Python 3.15+
        return maps.map(frozendict)

    def classes(self, t: Any, path: tuple[str, ...], hashable: bool) -> SearchStrategy[Any]:
        cls = t.cls
        if hashable:
            if isinstance(t, mi.TypedDictType):
                raise self.fail(path, f"TypedDict {cls.__name__} is a dict, not hashable")
            if isinstance(t, mi.StructType) and not cls.__struct_config__.frozen:
                raise self.fail(
                    path, f"Struct {cls.__name__} is not frozen, so it is not hashable; declare it frozen=True"
                )
            if isinstance(t, mi.DataclassType) and getattr(cls, "__hash__", None) is None:
                raise self.fail(path, f"dataclass {cls.__name__} is not hashable; declare it frozen=True")
        key = (id(t), hashable)
        known = self.memo.get(key)
        if known is not None:
            return known
        # Registered before the fields are built, so a recursive field finds it.
        self.memo[key] = st.deferred(lambda: built)
        required: dict[str, SearchStrategy[Any]] = {}
        optional: dict[str, SearchStrategy[Any]] = {}
        for field in t.fields:
            strategy = self.build(field.type, (*path, f".{field.name}"), top=False, hashable=hashable)
            (required if field.required else optional)[field.name] = strategy
        kwargs = st.fixed_dictionaries(required, optional=optional)
        if isinstance(t, mi.TypedDictType):
            built: SearchStrategy[Any] = kwargs
        else:
            built = kwargs.map(lambda kw: _construct(cls, kw)).filter(lambda v: v is not _REJECT)
        self.memo[key] = built
        return built

    def unions(self, t: mi.UnionType, path: tuple[str, ...], *, top: bool, hashable: bool) -> SearchStrategy[Any]:
        parts = []
        for segment, branch in union_branches(t):
            inner = unwrap(branch)
            if top and isinstance(inner, mi.NoneType):
                continue
            if top and isinstance(inner, mi.LiteralType) and all(v is None for v in inner.values):
                continue
            parts.append(self.build(branch, (*path, segment) if segment else path, top=top, hashable=hashable))
        if not parts:
            raise self.fail(path, "None is the only value, and None means 'no state'")
        return st.one_of(*parts)


def _construct(cls: Any, kwargs: dict[str, Any]) -> Any:
    try:
        return cls(**kwargs)
    except (TypeError, ValueError):
        # __post_init__ refused it: decoding would refuse it too.
        return _REJECT


def _lower(t: mi.FloatType) -> tuple[float | None, bool]:
    if t.ge is None and t.gt is None:
        return None, False
    if t.gt is None or (t.ge is not None and t.ge > t.gt):
        return float(cast(float, t.ge)), False
    return float(t.gt), True


def _upper(t: mi.FloatType) -> tuple[float | None, bool]:
    if t.le is None and t.lt is None:
        return None, False
    if t.lt is None or (t.le is not None and t.le < t.lt):
        return float(cast(float, t.le)), False
    return float(t.lt), True

