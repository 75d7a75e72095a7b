"""One walk over ``msgspec.inspect`` type trees, shared by the strategies and the size checks.

Internal to :mod:`clientstate.testing`. :func:`msgspec.inspect.type_info`
describes a type as a tree of nodes; :meth:`Visitor.visit` is the one place
that dispatches on a node's class, through :data:`KINDS` (classes may share a
kind: ``"bytes"`` is ``bytes``, ``bytearray`` and ``memoryview``). A visitor
defines ``visit_<kind>(node, path, top)`` for the kinds it treats and
:meth:`Visitor.default` for the rest: :func:`type_label` and :class:`Extents`
(the encodings behind :func:`~clientstate.testing.check_fits_cookie`, whose
docstring gives their rules) here, the strategies in
:mod:`clientstate.testing.strategies`.
"""

from __future__ import annotations

import datetime as dt
import decimal
import itertools
import math
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final, Generic, TypeVar

import msgspec
import msgspec.inspect as mi

from clientstate._core.errors import ClientStateError

__all__ = ["INT_MAX", "INT_MIN", "KINDS", "Extent", "Extents", "Growth", "Path", "UnsupportedTypeError", "Visitor",
           "render_path", "root_label", "type_info", "type_label", "unwrap"]

R = TypeVar("R")

#: MessagePack integers are int64 or uint64: the range msgspec can decode.
INT_MIN: Final = -(2**63)
INT_MAX: Final = 2**64 - 1
#: A type with more distinct values than this counts as having unboundedly many.
_LARGE: Final = 100_000
#: Encodings are built up to this many bytes: far past any cookie.
_CAP: Final = 1 << 22

#: Where a node is: fields ``".name"``, items ``"[]"``, tuple positions ``"[0]"``,
#: dict keys and values ``"{key}"``, ``"{value}"``, union branches ``"<Name>"``.
Path = tuple[str, ...]

#: The kind of each ``msgspec.inspect`` node class: which ``visit_<kind>`` treats it.
KINDS: Final[dict[type[mi.Type], str]] = {
    mi.NoneType: "none", mi.BoolType: "bool", mi.IntType: "int", mi.FloatType: "float", mi.StrType: "str",
    mi.BytesType: "bytes", mi.ByteArrayType: "bytes", mi.MemoryViewType: "bytes",
    mi.ListType: "array", mi.VarTupleType: "array", mi.SetType: "set", mi.FrozenSetType: "set",
    mi.TupleType: "tuple", mi.DictType: "dict", mi.UnionType: "union", mi.LiteralType: "literal",
    mi.EnumType: "enum", mi.StructType: "fields", mi.DataclassType: "fields", mi.NamedTupleType: "fields",
    mi.TypedDictType: "fields", mi.DateTimeType: "datetime", mi.DateType: "date", mi.TimeType: "time",
    mi.TimeDeltaType: "timedelta", mi.UUIDType: "uuid", mi.DecimalType: "decimal", mi.AnyType: "any",
    mi.RawType: "raw", mi.ExtType: "ext", mi.CustomType: "custom",
}
if hasattr(mi, "FrozenDictType"):  # msgspec 0.19+
    KINDS[mi.FrozenDictType] = "dict"

_CLASSES: Final = tuple(cls for cls, kind in KINDS.items() if kind == "fields")
_NONE_ONLY: Final = "None is the only value, and None means 'no state'"
_HINT: Final = "bound it with Annotated[..., msgspec.Meta(max_length=N)]"
_PATTERN_HINT: Final = "a pattern does not count as a length bound; add max_length=N to its msgspec.Meta"
_ANY_SIZE: Final = "holds bytes of any length; use a bounded type"
_WIDE: Final = "\U00010000"  # one character for msgspec's lengths, 4 bytes in UTF-8
_enc: Final = msgspec.msgpack.Encoder(order="deterministic").encode


class UnsupportedTypeError(ClientStateError, TypeError):
    """A type (or a part of it) for which clientstate.testing cannot make values.

    Raised when a strategy or a check is built, never while drawing values.

    Attributes:
        path: where in the type the problem is, e.g. ``"Cart.items[]"``.
        reason: what is wrong there.
    """

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"cannot generate values for {path}: {reason}")


def type_info(tp: Any, where: str) -> mi.Type:
    """``msgspec.inspect.type_info(tp)``.

    Raises:
        UnsupportedTypeError: msgspec refuses ``tp``; the message starts with ``where``.
    """
    try:
        return mi.type_info(tp)
    except (TypeError, ValueError) as exc:
        raise UnsupportedTypeError(where, f"msgspec does not support {tp!r}: {exc}") from None


def unwrap(t: mi.Type) -> mi.Type:
    """``t`` without its :class:`msgspec.inspect.Metadata` layers (``Annotated`` extras without constraints)."""
    while isinstance(t, mi.Metadata):
        t = t.type
    return t


def render_path(root: str, path: Path) -> str:
    """``"Account" + (".roles", "[]")`` -> ``"Account.roles[]"``; a leading branch replaces ``"value"``."""
    if root == "value" and path and path[0].startswith("<"):
        return path[0][1:-1] + "".join(path[1:])
    return root + "".join(path)


def root_label(t: mi.Type) -> str:
    """How paths into ``t`` start in messages: the class name for a class, else ``"value"``."""
    return type_label(t) if isinstance(unwrap(t), _CLASSES) else "value"


class Visitor(Generic[R]):
    """A walk over a type tree: :meth:`visit` hands each node to ``visit_<kind>`` or :meth:`default`.

    Args:
        root: how paths start in messages (:func:`root_label`).
    """

    def __init__(self, root: str = "value") -> None:
        self.root = root

    def visit(self, t: mi.Type, path: Path = (), top: bool = False) -> R:
        """This visitor's result for node ``t`` (``Metadata`` layers skipped) at ``path``.

        ``top``: ``t`` is a whole state, which cannot be ``None``.

        Raises:
            UnsupportedTypeError: the visitor cannot treat ``t``, or ``t`` is
                ``None`` at the top; the message names ``path``.
        """
        t = unwrap(t)
        if top and isinstance(t, mi.NoneType):
            raise self.fail(path, _NONE_ONLY)
        method: Callable[[Any, Path, bool], R] = getattr(self, f"visit_{KINDS.get(type(t))}", self.default)
        return method(t, path, top)

    def default(self, t: mi.Type, path: Path, top: bool) -> R:
        """The result for a kind without a ``visit_<kind>``; raises :class:`UnsupportedTypeError` here."""
        raise self.fail(path, f"unsupported msgspec type {type(t).__name__}")

    def visit_custom(self, t: mi.CustomType, path: Path, top: bool) -> R:
        """A class msgspec handles only with hooks; raises :class:`UnsupportedTypeError` here."""
        raise self.fail(path, f"{type_label(t)} is a custom type msgspec decodes only with a dec_hook")

    def fail(self, path: Path, reason: str) -> UnsupportedTypeError:
        """The error to raise for the node at ``path``."""
        return UnsupportedTypeError(render_path(self.root, path), reason)

    def branches(self, t: mi.UnionType, path: Path, top: bool) -> list[tuple[mi.Type, Path]]:
        """The union's branches and their paths (``<Label>``; none for an Optional's other branch).

        Raises:
            UnsupportedTypeError: at the top, only ``None`` branches.
        """
        nones = [isinstance(unwrap(b), mi.NoneType) for b in t.types]
        plain = nones.count(False) == 1
        found = [(b, path if plain and not none else (*path, f"<{type_label(b)}>"))
                 for b, none in zip(t.types, nones, strict=True) if not (top and none)]
        if not found:
            raise self.fail(path, _NONE_ONLY)
        return found

    def values(self, t: mi.LiteralType | mi.EnumType, path: Path, top: bool) -> list[Any]:
        """A ``Literal``'s values or an enum's members (at the top, without ``None``).

        Raises:
            UnsupportedTypeError: none are left.
        """
        found = list(t.cls) if isinstance(t, mi.EnumType) else [v for v in t.values if not (top and v is None)]
        if not found:
            raise self.fail(path, f"enum {t.cls.__name__} has no members" if isinstance(t, mi.EnumType) else _NONE_ONLY)
        return found

    def bounds(self, t: mi.IntType, path: Path) -> tuple[int, int, int]:
        """``(lo, hi, step)``: the valid ints are ``lo, lo + step, ..., hi``, all multiples of ``step``.

        Raises:
            UnsupportedTypeError: no int satisfies ``t``'s constraints.
        """
        lo = INT_MIN if t.ge is None else max(INT_MIN, t.ge)
        hi = INT_MAX if t.le is None else min(INT_MAX, t.le)
        lo, hi = lo if t.gt is None else max(lo, t.gt + 1), hi if t.lt is None else min(hi, t.lt - 1)
        step = 1 if t.multiple_of is None else abs(t.multiple_of)
        lo, hi = -(-lo // step) * step, hi // step * step
        if lo > hi:
            raise self.fail(path, f"no integer satisfies {t}")
        return lo, hi, step


class _Label(Visitor[str]):
    def default(self, t: mi.Type, path: Path, top: bool) -> str:
        cls = getattr(t, "cls", None)  # classes, enums, custom types
        if cls is not None:
            return str(getattr(cls, "__name__", cls))
        name = type(t).__name__.removesuffix("Type")
        return {"VarTuple": "tuple"}.get(name, name if name in ("None", "UUID", "Decimal", "Any", "Raw", "Ext")
                                         else name.lower())

    visit_custom = default

    def visit_array(self, t: Any, path: Path, top: bool) -> str:
        more = ", ..." if isinstance(t, mi.VarTupleType) else ""
        return f"{self.default(t, path, top)}[{self.visit(t.item_type)}{more}]"

    visit_set = visit_array

    def visit_tuple(self, t: mi.TupleType, path: Path, top: bool) -> str:
        return f"tuple[{', '.join(self.visit(x) for x in t.item_types)}]"

    def visit_dict(self, t: mi.DictType, path: Path, top: bool) -> str:
        return f"{self.default(t, path, top)}[{self.visit(t.key_type)}, {self.visit(t.value_type)}]"

    def visit_union(self, t: mi.UnionType, path: Path, top: bool) -> str:
        return " | ".join(self.visit(b) for b in t.types)

    def visit_literal(self, t: mi.LiteralType, path: Path, top: bool) -> str:
        return f"Literal[{', '.join(repr(v) for v in t.values)}]"


def type_label(t: mi.Type) -> str:
    """A short readable name of a type node: ``"str"``, ``"list[int]"``, ``"Account"``."""
    return _Label().visit(t)


# --- sizes ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Growth:
    """A part of a type with no size bound.

    Attributes:
        path: where it is.
        label: its type, as messages write it (``"str"``, ``"list[str]"``).
        unit: what grows: ``"characters"``, ``"bytes"``, ``"items"``, ``"digits"``
            or ``"levels"`` (a recursive type).
        hint: how to bound it.
        grow: ``grow(n)``: the encoding of the node the growth was read from,
            with this part ``n`` units long and every other part at its
            smallest; ``None`` (as a whole, or for one ``n``) where no such
            value can be built.
    """

    path: Path
    label: str
    unit: str
    hint: str
    grow: Callable[[int], bytes | None] | None = None

    def within(self, outer: Callable[[bytes], bytes | None]) -> Growth:
        """This growth read from an enclosing node; ``outer`` puts the grown part's encoding in place."""
        grow = self.grow
        if grow is None:
            return self
        return replace(self, grow=lambda n: None if (inner := grow(n)) is None else outer(inner))


@dataclass(frozen=True)
class Extent:
    """What :class:`Extents` finds for a node: exact sizes, or upper bounds as ``check_fits_cookie`` documents.

    Attributes:
        small: the MessagePack encoding of its smallest value; ``None`` when
            no finite value exists (a recursive type with no way out).
        large: the same for its largest value, unbounded parts at their smallest.
        growths: its parts with no size bound, outermost first.
        count: how many distinct values it has, ``None`` for more than 100,000.
        distinct: ``distinct(n)``: encodings of ``n`` distinct values, small
            first (``None`` if it has fewer); unset: see :meth:`spread`.
        fields: ``(name, bytes)`` of each part of the largest value (classes, tuples).
    """

    small: bytes | None
    large: bytes | None
    growths: tuple[Growth, ...] = ()
    count: int | None = None
    distinct: Callable[[int], list[bytes] | None] | None = None
    fields: tuple[tuple[str, int], ...] = ()

    def spread(self, n: int) -> list[bytes] | None:
        """Encodings of ``n`` distinct values: :attr:`distinct`'s, else ``n`` copies of the largest.

        ``None`` where neither is known (no size bound to copy).
        """
        if n <= 0:
            return []
        if self.distinct is not None:
            return self.distinct(n)
        return None if self.growths or self.large is None else [self.large] * n


def _capped(count: int | None) -> int | None:
    return None if count is None or count > _LARGE else count


def _shorter(default: bytes | None, small: bytes | None) -> bytes | None:
    """An optional part at its smallest: left out (``default`` is ``None``), or the shorter encoding."""
    return default if default is None or small is None or len(default) <= len(small) else small


def _least(a: int | None, b: int | None) -> int | None:
    """The smaller of two bounds, ``None`` meaning no bound."""
    return b if a is None else a if b is None else min(a, b)


def _array(n: int, fix: int = 0x90, wide: int = 0xDC) -> bytes:
    """The MessagePack header of an array of ``n`` items (with ``0x80, 0xDE``: of a map of ``n`` pairs)."""
    if n <= 15:
        return bytes([fix | n])
    return bytes([wide]) + n.to_bytes(2, "big") if n <= 0xFFFF else bytes([wide + 1]) + n.to_bytes(4, "big")


def _map(n: int) -> bytes:
    return _array(n, 0x80, 0xDE)


def _choices(values: Iterable[Any], distinct: bool = True) -> Extent:
    """The extent of a leaf with these values: exact for the finite ones (``distinct``), else the extremes."""
    encodings = sorted((_enc(v) for v in values), key=len)
    if not distinct:
        return Extent(encodings[0], encodings[-1])
    return Extent(encodings[0], encodings[-1], count=_capped(len(encodings)),
                  distinct=lambda n: encodings[:n] if n <= len(encodings) else None)


def _zoned(t: mi.DateTimeType | mi.TimeType, naive: list[Any], aware: list[Any]) -> Extent:
    """A datetime or time node: the extremes among the ``naive`` and ``aware`` samples its ``tz`` allows."""
    return _choices((naive if t.tz is not True else []) + (aware if t.tz is not False else []), distinct=False)


def _strings(alphabet: Sequence[Any], join: Callable[[Any], Any], lo: int, hi: int | None, n: int,
             ) -> list[bytes] | None:
    """Encodings of the first ``n`` strings over ``alphabet``, shortest first, ``lo`` to ``hi`` long."""
    found: list[bytes] = []
    for size in itertools.count(lo) if hi is None else range(lo, hi + 1):
        for combo in itertools.product(alphabet, repeat=size):
            found.append(_enc(join(combo)))
            if len(found) == n:
                return found
    return None


def _at_rest(t: Any, field: mi.Field) -> bytes | None:
    """How optional ``field`` of class node ``t`` encodes at its default; ``None``: left out (or required)."""
    omits = isinstance(t, mi.StructType) and t.cls.__struct_config__.omit_defaults and not t.array_like
    if field.required or omits or isinstance(t, mi.TypedDictType):
        return None
    if field.default is not msgspec.NODEFAULT:
        return _enc(field.default)
    return None if field.default_factory is msgspec.NODEFAULT else _enc(field.default_factory())  # else UNSET


class Extents(Visitor[Extent]):
    """The size checks' visitor: the :class:`Extent` of each node, by the rules ``check_fits_cookie`` documents.

    :meth:`visit` raises :class:`UnsupportedTypeError` for a custom type, an
    int range without a valid value, an empty enum, or a state of ``None`` only.
    """

    def __init__(self, root: str = "value") -> None:
        super().__init__(root)
        self.stack: list[int] = []

    def visit_none(self, t: mi.NoneType, path: Path, top: bool) -> Extent:
        return _choices([None])

    def visit_bool(self, t: mi.BoolType, path: Path, top: bool) -> Extent:
        return _choices([False, True])

    def visit_literal(self, t: mi.LiteralType | mi.EnumType, path: Path, top: bool) -> Extent:
        return _choices(self.values(t, path, top))

    visit_enum = visit_literal

    def visit_int(self, t: mi.IntType, path: Path, top: bool) -> Extent:
        lo, hi, step = self.bounds(t, path)
        start = min(max(0, lo), hi)

        def near(n: int) -> list[bytes] | None:
            ints = dict.fromkeys(v for k in range(n) for v in (start + k * step, start - k * step) if lo <= v <= hi)
            return [_enc(v) for v in list(ints)[:n]] if len(ints) >= n else None

        return Extent(_enc(start), max(_enc(lo), _enc(hi), key=len), count=_capped((hi - lo) // step + 1),
                      distinct=near)

    def visit_float(self, t: mi.FloatType, path: Path, top: bool) -> Extent:
        return _choices([0.0], distinct=False)  # msgspec writes every float in 9 bytes

    def open(self, t: mi.Type, path: Path, unit: str, hint: str, small: Any, grow: Callable[[int], Any]) -> Extent:
        """A node with no size bound: ``small`` at rest, ``grow(n)`` its value ``n`` ``unit`` long."""
        return Extent(_enc(small), _enc(small), (Growth(path, type_label(t), unit, hint, lambda n: _enc(grow(n))),))

    def text(self, t: Any, path: Path, unit: str, units: tuple[Any, Any, Any], alphabet: Sequence[Any],
             join: Callable[[Any], Any]) -> Extent:
        """A ``str`` or ``bytes`` node; ``units``: one unit at its smallest, at its largest, and grown."""
        (lo, hi), (rest, wide, grown) = (t.min_length or 0, t.max_length), units
        count = 1 if hi == 0 else None

        def distinct(n: int) -> list[bytes] | None:
            return _strings(alphabet, join, lo, hi, n)

        if hi is not None:
            return Extent(_enc(rest * lo), _enc(wide * min(hi, _CAP // 4)), count=count, distinct=distinct)
        return replace(self.open(t, path, unit, _HINT, rest * lo, lambda n: grown * max(n, lo)), distinct=distinct)

    def visit_str(self, t: mi.StrType, path: Path, top: bool) -> Extent:
        if t.pattern is None:
            return self.text(t, path, "characters", ("a", _WIDE, "x"), "abcdefghijklmnopqrstuvwxyz0123456789", "".join)
        if t.max_length is not None:
            return _choices([_WIDE * min(t.max_length, _CAP // 4)], distinct=False)
        lo = t.min_length or 0
        return self.open(t, path, "characters", _PATTERN_HINT, "a" * lo, lambda n: "x" * max(n, lo))

    def visit_bytes(self, t: mi.BytesType, path: Path, top: bool) -> Extent:
        return self.text(t, path, "bytes", (b"\0", b"\xff", b"x"), range(256), bytes)

    def visit_datetime(self, t: mi.DateTimeType, path: Path, top: bool) -> Extent:
        naive = [dt.datetime(2000, 1, 1), dt.datetime(9999, 12, 31, 23, 59, 59, 999999)]
        return _zoned(t, naive, [dt.datetime(2000, 1, 1, tzinfo=dt.UTC), dt.datetime(1, 1, 2, 0, 0, 0, 1, dt.UTC)])

    def visit_time(self, t: mi.TimeType, path: Path, top: bool) -> Extent:
        far = dt.timezone(-dt.timedelta(hours=23, minutes=59))
        return _zoned(t, [dt.time(0), dt.time(23, 59, 59, 999999)], [dt.time(0, tzinfo=dt.UTC),
                                                                      dt.time(23, 59, 59, 999999, far)])

    def visit_date(self, t: mi.DateType, path: Path, top: bool) -> Extent:
        return _choices([dt.date(2000, 1, 1)], distinct=False)

    def visit_timedelta(self, t: mi.TimeDeltaType, path: Path, top: bool) -> Extent:
        longest = dt.timedelta.min + dt.timedelta(microseconds=1)
        return _choices([dt.timedelta(0), dt.timedelta.max, longest], distinct=False)

    def visit_uuid(self, t: mi.UUIDType, path: Path, top: bool) -> Extent:
        return _choices([uuid.UUID(int=0)], distinct=False)

    def visit_decimal(self, t: mi.DecimalType, path: Path, top: bool) -> Extent:
        hint = "a Decimal has no digit limit; store a bounded int or str"
        return self.open(t, path, "digits", hint, decimal.Decimal(0), lambda n: decimal.Decimal("9" * max(n, 1)))

    def visit_any(self, t: mi.AnyType, path: Path, top: bool) -> Extent:
        return self.open(t, path, "items", "Any holds values of any size; use a bounded type", 0, lambda n: [0] * n)

    def visit_raw(self, t: mi.RawType, path: Path, top: bool) -> Extent:
        return self.open(t, path, "bytes", _ANY_SIZE, msgspec.Raw(_enc(0)), lambda n: b"x" * n)

    def visit_ext(self, t: mi.ExtType, path: Path, top: bool) -> Extent:
        ext = msgspec.msgpack.Ext
        return self.open(t, path, "bytes", _ANY_SIZE, ext(0, b""), lambda n: ext(0, b"x" * n))

    # --- containers ---------------------------------------------------------------------

    def collection(self, t: Any, path: Path, head: Callable[[int], bytes], hi: int | None,
                   entries: Callable[[int], list[bytes] | None], widest: bytes | None, inner: Iterable[Growth],
                   ) -> Extent:
        """A list, set or dict: ``entries(n)``: ``n`` entries at their smallest; ``widest``: the largest one."""
        lo = t.min_length or 0

        def build(parts: list[bytes] | None) -> bytes | None:
            return None if parts is None else head(len(parts)) + b"".join(parts)

        small = build(entries(lo))
        large = small if hi is None or widest is None else build([widest] * min(hi, _CAP // max(1, len(widest))))
        rest = entries(max(lo, 1) - 1)
        growths = [g.within(lambda b: build(None if rest is None else [b, *rest])) for g in inner]
        if hi is None:
            growths.insert(0, Growth(path, type_label(t), "items", _HINT, lambda n: build(entries(max(n, lo)))))
        return Extent(small, large, tuple(growths), count=1 if hi == 0 else None)

    def visit_array(self, t: mi.ListType | mi.VarTupleType, path: Path, top: bool) -> Extent:
        item = self.visit(t.item_type, (*path, "[]"))
        small = item.small
        return self.collection(t, path, _array, t.max_length, lambda n: None if small is None else [small] * n,
                               item.large, item.growths)

    def visit_set(self, t: mi.SetType | mi.FrozenSetType, path: Path, top: bool) -> Extent:
        item = self.visit(t.item_type, (*path, "[]"))
        return self.collection(t, path, _array, _least(t.max_length, item.count), item.spread, item.large,
                               item.growths)

    def visit_dict(self, t: mi.DictType, path: Path, top: bool) -> Extent:
        key, value = self.visit(t.key_type, (*path, "{key}")), self.visit(t.value_type, (*path, "{value}"))

        def pair(k: bytes | None, v: bytes | None) -> bytes | None:
            return None if k is None or v is None else k + v

        def entries(n: int) -> list[bytes] | None:
            keys = key.spread(n)
            return None if keys is None or value.small is None else [k + value.small for k in keys]

        inner = [g.within(lambda b: pair(b, value.small)) for g in key.growths]
        inner += [g.within(lambda b: pair(key.small, b)) for g in value.growths]
        return self.collection(t, path, _map, _least(t.max_length, key.count), entries, pair(key.large, value.large),
                               inner)

    def record(self, parts: list[tuple[str, Extent, bool, bytes | None]],
               frame: Callable[[list[bytes | None]], bytes]) -> Extent:
        """A node of parts ``(name, extent, required, at rest)``; ``frame`` encodes the parts present.

        ``at rest``: how an optional part encodes at its default (``None``: left
        out); at its smallest it is that or its extent's smallest, the shorter,
        and at its largest the longer.
        """
        rest = [e.small if required else _shorter(default, e.small) for _, e, required, default in parts]
        big = [max(e.large, d, key=len) if e.large is not None and d is not None else e.large or r
               for (_, e, _, d), r in zip(parts, rest, strict=True)]

        def build(values: list[bytes | None]) -> bytes | None:
            missing = any(v is None and p[2] for v, p in zip(values, parts, strict=True))
            return None if missing else frame(values)

        def replacing(i: int) -> Callable[[bytes], bytes | None]:
            return lambda b: build([*rest[:i], b, *rest[i + 1:]])

        counts = [e.count for _, e, required, _ in parts if required]
        count = None if None in counts else _capped(math.prod(c or 0 for c in counts))
        growths = tuple(g.within(replacing(i)) for i, (_, e, _, _) in enumerate(parts) for g in e.growths)
        sizes = tuple((name, len(v)) for (name, *_), v in zip(parts, big, strict=True) if v is not None)
        return Extent(build(rest), build(big), growths, count, fields=sizes)

    def visit_tuple(self, t: mi.TupleType, path: Path, top: bool) -> Extent:
        parts: list[tuple[str, Extent, bool, bytes | None]] = [
            (f"[{i}]", self.visit(x, (*path, f"[{i}]")), True, None) for i, x in enumerate(t.item_types)]
        return self.record(parts, lambda values: _array(len(values)) + b"".join(v or b"" for v in values))

    def visit_fields(self, t: Any, path: Path, top: bool) -> Extent:
        if id(t) in self.stack:
            hint = "a recursive type nests without bound; cap the depth"
            return Extent(None, None, (Growth(path, type_label(t), "levels", hint),))
        self.stack.append(id(t))
        try:
            extents = [self.visit(f.type, (*path, f".{f.name}")) for f in t.fields]
        finally:
            self.stack.pop()
        keyed = not (isinstance(t, mi.NamedTupleType) or getattr(t, "array_like", False))
        keys = [_enc(f.encode_name) if keyed else b"" for f in t.fields]
        tag = getattr(t, "tag", None)
        tags = [] if tag is None else [_enc(t.tag_field) + _enc(tag) if keyed else _enc(tag)]

        def frame(values: list[bytes | None]) -> bytes:
            present = [k + v for k, v in zip(keys, values, strict=True) if v is not None]
            return (_map if keyed else _array)(len(tags) + len(present)) + b"".join(tags + present)

        extent = self.record([(f.name, e, f.required, _at_rest(t, f)) for f, e in zip(t.fields, extents, strict=True)],
                             frame)
        return replace(extent, count=None)

    def visit_union(self, t: mi.UnionType, path: Path, top: bool) -> Extent:
        options = [self.visit(b, p, top) for b, p in self.branches(t, path, top)]
        growths = tuple(g for o in options for g in o.growths)
        counts = [o.count for o in options]
        count = None if None in counts else _capped(sum(c or 0 for c in counts))
        built = [o for o in options if o.small is not None]
        if not built:
            return Extent(None, None, growths, count)
        small = min(built, key=lambda o: len(o.small or b""))
        large = max(built, key=lambda o: len(o.large or b""))
        return Extent(small.small, large.large, growths, count, fields=large.fields)
