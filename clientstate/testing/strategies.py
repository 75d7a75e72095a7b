"""Hypothesis strategies for the values of a :class:`~clientstate.State`.

:func:`states` draws every value of a state's type; :func:`old_states` draws
values of an older schema version (a :class:`~clientstate.Migration`'s
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
* A string with a ``pattern`` is drawn with :func:`hypothesis.strategies.from_regex`
  (matching the whole string, or containing a match as msgspec's search allows)
  and kept only if it also meets the length constraints.
* A Struct's ``__post_init__`` that raises rejects the draw, as decoding would.
"""

from __future__ import annotations

import builtins
import datetime as dt
import decimal
import math
from collections.abc import Callable
from typing import Annotated, Any, Final, TypeVar, cast

import msgspec
import msgspec.inspect as mi
from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

from clientstate._core.state import State
from clientstate.testing._walk import (
    INT_MAX,
    INT_MIN,
    Extents,
    Path,
    UnsupportedTypeError,
    Visitor,
    root_label,
    type_info,
    type_label,
    unwrap,
)

__all__ = ["UnsupportedTypeError", "from_type", "old_states", "states"]

T = TypeVar("T")

#: Strings and bytes up to this many characters/bytes also get an exact-``max_length`` branch.
EDGE_CHARS: Final = 2048
#: Collections up to this many items also get an exact-``max_length`` branch.
EDGE_ITEMS: Final = 256

_REJECT: Final = object()
_AWARE_MIN: Final = dt.datetime(1, 1, 2)
_AWARE_MAX: Final = dt.datetime(9999, 12, 30)
#: What cannot be a set item or dict key, by node class.
_UNHASHABLE: Final[dict[type[mi.Type], str]] = {
    mi.ListType: "list", mi.SetType: "set", mi.DictType: "dict", mi.ByteArrayType: "bytearray",
    mi.TypedDictType: "a TypedDict (a dict)", mi.RawType: "msgspec.Raw", mi.ExtType: "msgspec.msgpack.Ext",
}


def states(state: State[T]) -> SearchStrategy[T]:
    """A strategy drawing every value of ``state``'s type (never ``None``).

    Use it with ``@given``::

        @given(states(CART))
        def test_total(cart: Cart) -> None: ...

    Args:
        state: the :class:`~clientstate.State` descriptor.

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
            :class:`~clientstate.Migration` s (values of that migration's
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
    return _Strategies(root_label(info)).visit(info, (), top)


def _sized(
    make: Callable[[int, int | None], SearchStrategy[Any]], lo: int, hi: int | None, edge: int
) -> SearchStrategy[Any]:
    """``make(lo, hi)``, plus branches drawing exactly ``lo`` and (up to ``edge``) exactly ``hi`` items."""
    parts = [make(lo, hi), make(lo, lo)]
    if hi is not None and hi != lo and hi <= edge:
        parts.append(make(hi, hi))
    return st.one_of(*parts)


def _validator(tp: Any) -> Callable[[Any], bool]:
    """Whether a value is a valid ``tp`` (an ``Annotated`` type with constraints), decided by msgspec itself."""
    decoder = msgspec.msgpack.Decoder(tp)

    def valid(value: Any) -> bool:
        try:
            decoder.decode(msgspec.msgpack.encode(value))
        except (msgspec.ValidationError, msgspec.EncodeError, UnicodeEncodeError):
            return False
        return True

    return valid


def _offsets() -> SearchStrategy[dt.timezone]:
    return st.integers(-(24 * 60 - 1), 24 * 60 - 1).map(lambda m: dt.timezone(dt.timedelta(minutes=m)))


def _any_values(hashable: bool) -> SearchStrategy[Any]:
    scalars = st.one_of(st.none(), st.booleans(), st.integers(INT_MIN, INT_MAX), st.floats(allow_nan=not hashable),
                        st.text(), st.binary())
    if hashable:
        return scalars
    return st.recursive(
        scalars,
        lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(), inner, max_size=4)),
        max_leaves=12,
    )


def _construct(cls: Any, kwargs: dict[str, Any]) -> Any:
    try:
        return cls(**kwargs)
    except (TypeError, ValueError):
        return _REJECT  # __post_init__ refused it: decoding would refuse it too


class _Strategies(Visitor[SearchStrategy[Any]]):
    """A strategy for each node; with ``hashable``, for set items and dict keys (shares ``memo``)."""

    def __init__(self, root: str, hashable: bool = False, memo: dict[tuple[int, bool], Any] | None = None) -> None:
        super().__init__(root)
        self.hashable = hashable
        self.memo: dict[tuple[int, bool], SearchStrategy[Any]] = {} if memo is None else memo

    def visit(self, t: mi.Type, path: Path = (), top: bool = False) -> SearchStrategy[Any]:
        unhashable = _UNHASHABLE.get(type(unwrap(t))) if self.hashable else None
        if unhashable is not None:
            raise self.fail(path, f"{unhashable} is not hashable, so it cannot be a set item or dict key")
        return super().visit(t, path, top)

    def keys(self, t: mi.Type, path: Path, lo: int | None, hi: int | None,
             ) -> tuple[SearchStrategy[Any], int, int | None]:
        """The strategy for distinct items of type ``t``, and the sizes possible for ``lo``-``hi`` of them.

        Raises:
            UnsupportedTypeError: ``t`` is not hashable, or has fewer than ``lo`` values.
        """
        lo, distinct = lo or 0, Extents(self.root).visit(t, path).count
        if distinct is not None:
            if distinct < lo:
                raise self.fail(path, f"needs at least {lo} distinct items but {type_label(t)} has only {distinct} "
                                      f"values")
            hi = distinct if hi is None else min(hi, distinct)
        return _Strategies(self.root, True, self.memo).visit(t, path), lo, hi

    def visit_none(self, t: mi.NoneType, path: Path, top: bool) -> SearchStrategy[None]:
        return st.none()

    def visit_bool(self, t: mi.BoolType, path: Path, top: bool) -> SearchStrategy[bool]:
        return st.booleans()

    def visit_int(self, t: mi.IntType, path: Path, top: bool) -> SearchStrategy[int]:
        lo, hi, step = self.bounds(t, path)
        edges = st.sampled_from(sorted({lo, hi, min(max(0, lo), hi)}))
        return st.one_of(st.integers(lo // step, hi // step).map(lambda k: k * step), edges)

    def visit_float(self, t: mi.FloatType, path: Path, top: bool) -> SearchStrategy[float]:
        meta = {k: getattr(t, k) for k in ("gt", "ge", "lt", "le", "multiple_of") if getattr(t, k) is not None}
        if not meta:
            return st.floats(allow_nan=not self.hashable)
        valid = _validator(Annotated[float, msgspec.Meta(**meta)])
        lo, lo_open = (t.gt, True) if t.gt is not None and (t.ge is None or t.gt >= t.ge) else (t.ge, False)
        hi, hi_open = (t.lt, True) if t.lt is not None and (t.le is None or t.lt <= t.le) else (t.le, False)
        if t.multiple_of is None:
            return st.floats(lo, hi, exclude_min=lo_open, exclude_max=hi_open, allow_nan=False).filter(valid)
        m = abs(float(t.multiple_of))
        kmin = -(2**53) if lo is None else math.ceil(lo / m)
        kmax = 2**53 if hi is None else math.floor(hi / m)
        return st.one_of(st.integers(kmin, max(kmin, kmax)).map(lambda k: k * m), st.just(0.0)).filter(valid)

    def visit_str(self, t: mi.StrType, path: Path, top: bool) -> SearchStrategy[str]:
        if t.pattern is None:
            return _sized(lambda a, b: st.text(min_size=a, max_size=b), t.min_length or 0, t.max_length, EDGE_CHARS)
        meta = {k: getattr(t, k) for k in ("min_length", "max_length", "pattern") if getattr(t, k) is not None}
        valid = _validator(Annotated[str, msgspec.Meta(**meta)])
        return st.one_of(st.from_regex(t.pattern, fullmatch=True), st.from_regex(t.pattern)).filter(valid)

    def visit_bytes(self, t: mi.BytesType | mi.ByteArrayType | mi.MemoryViewType, path: Path,
                    top: bool) -> SearchStrategy[Any]:
        data = _sized(lambda a, b: st.binary(min_size=a, max_size=b), t.min_length or 0, t.max_length, EDGE_CHARS)
        convert = {mi.ByteArrayType: bytearray, mi.MemoryViewType: memoryview}.get(type(t))
        return data if convert is None else data.map(convert)

    def visit_array(self, t: mi.ListType | mi.VarTupleType, path: Path, top: bool) -> SearchStrategy[Any]:
        item = self.visit(t.item_type, (*path, "[]"))
        lists = _sized(lambda a, b: st.lists(item, min_size=a, max_size=b), t.min_length or 0, t.max_length, EDGE_ITEMS)
        return lists.map(tuple) if isinstance(t, mi.VarTupleType) else lists

    def visit_set(self, t: mi.SetType | mi.FrozenSetType, path: Path, top: bool) -> SearchStrategy[Any]:
        item, lo, hi = self.keys(t.item_type, (*path, "[]"), t.min_length, t.max_length)
        make = st.frozensets if isinstance(t, mi.FrozenSetType) else st.sets
        return _sized(lambda a, b: make(item, min_size=a, max_size=b), lo, hi, EDGE_ITEMS)

    def visit_tuple(self, t: mi.TupleType, path: Path, top: bool) -> SearchStrategy[Any]:
        return st.tuples(*(self.visit(x, (*path, f"[{i}]")) for i, x in enumerate(t.item_types)))

    def visit_dict(self, t: mi.DictType, path: Path, top: bool) -> SearchStrategy[Any]:
        keys, lo, hi = self.keys(t.key_type, (*path, "{key}"), t.min_length, t.max_length)
        values = self.visit(t.value_type, (*path, "{value}"))
        maps = _sized(lambda a, b: st.dictionaries(keys, values, min_size=a, max_size=b), lo, hi, EDGE_ITEMS)
        return maps if isinstance(t, mi.DictType) else maps.map(getattr(builtins, "frozendict"))  # noqa: B009 - 3.15+

    def visit_fields(self, t: Any, path: Path, top: bool) -> SearchStrategy[Any]:
        cls = t.cls
        if self.hashable and isinstance(t, mi.StructType) and not cls.__struct_config__.frozen:
            raise self.fail(path, f"Struct {cls.__name__} is not frozen, so it is not hashable; declare it frozen=True")
        if self.hashable and isinstance(t, mi.DataclassType) and getattr(cls, "__hash__", None) is None:
            raise self.fail(path, f"dataclass {cls.__name__} is not hashable; declare it frozen=True")
        key = (id(t), self.hashable)
        if key in self.memo:
            return self.memo[key]
        self.memo[key] = st.deferred(lambda: built)  # a recursive field finds this
        required: dict[str, SearchStrategy[Any]] = {}
        optional: dict[str, SearchStrategy[Any]] = {}
        for field in t.fields:
            (required if field.required else optional)[field.name] = self.visit(field.type, (*path, f".{field.name}"))
        kwargs = st.fixed_dictionaries(required, optional=optional)
        built = kwargs if isinstance(t, mi.TypedDictType) else (
            kwargs.map(lambda kw: _construct(cls, kw)).filter(lambda v: v is not _REJECT))
        self.memo[key] = built
        return built

    def visit_union(self, t: mi.UnionType, path: Path, top: bool) -> SearchStrategy[Any]:
        return st.one_of(*(self.visit(branch, where, top) for branch, where in self.branches(t, path, top)))

    def visit_literal(self, t: mi.LiteralType | mi.EnumType, path: Path, top: bool) -> SearchStrategy[Any]:
        return st.sampled_from(self.values(t, path, top))

    visit_enum = visit_literal

    def visit_datetime(self, t: mi.DateTimeType, path: Path, top: bool) -> SearchStrategy[dt.datetime]:
        naive = st.datetimes()
        aware = st.datetimes(min_value=_AWARE_MIN, max_value=_AWARE_MAX, timezones=_offsets())
        return naive if t.tz is False else aware if t.tz else st.one_of(naive, aware)

    def visit_date(self, t: mi.DateType, path: Path, top: bool) -> SearchStrategy[dt.date]:
        return st.dates()

    def visit_time(self, t: mi.TimeType, path: Path, top: bool) -> SearchStrategy[dt.time]:
        naive, aware = st.times(), st.times(timezones=_offsets())
        return naive if t.tz is False else aware if t.tz else st.one_of(naive, aware)

    def visit_timedelta(self, t: mi.TimeDeltaType, path: Path, top: bool) -> SearchStrategy[dt.timedelta]:
        return st.timedeltas()

    def visit_uuid(self, t: mi.UUIDType, path: Path, top: bool) -> SearchStrategy[Any]:
        return st.uuids()

    def visit_decimal(self, t: mi.DecimalType, path: Path, top: bool) -> SearchStrategy[decimal.Decimal]:
        numbers = st.decimals(allow_nan=False, allow_infinity=True)
        return numbers if self.hashable else st.one_of(numbers, st.just(decimal.Decimal("NaN")))

    def visit_any(self, t: mi.AnyType, path: Path, top: bool) -> SearchStrategy[Any]:
        values = _any_values(self.hashable)
        return values.filter(lambda v: v is not None) if top else values

    def visit_raw(self, t: mi.RawType, path: Path, top: bool) -> SearchStrategy[msgspec.Raw]:
        return _any_values(False).map(lambda v: msgspec.Raw(msgspec.msgpack.encode(v)))

    def visit_ext(self, t: mi.ExtType, path: Path, top: bool) -> SearchStrategy[msgspec.msgpack.Ext]:
        return st.builds(msgspec.msgpack.Ext, st.integers(-128, 127), st.binary())
