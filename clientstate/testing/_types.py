"""Shared helpers over ``msgspec.inspect`` type descriptions: paths, names, bounds, growth.

Internal to :mod:`clientstate.testing`. Every walk here works on the
:class:`msgspec.inspect.Type` tree that :func:`msgspec.inspect.type_info`
returns; typing objects are never parsed by hand.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Final, TypeGuard

import msgspec
import msgspec.inspect as mi

from clientstate.errors import ClientStateError

__all__ = [
    "INT_MAX",
    "INT_MIN",
    "Growth",
    "Path",
    "UnsupportedTypeError",
    "cardinality",
    "float_validator",
    "growth_paths",
    "int_bounds",
    "is_frozendict",
    "pattern_matches",
    "pattern_width",
    "render_path",
    "root_label",
    "str_validator",
    "type_info",
    "type_label",
    "union_branches",
    "unwrap",
]

#: MessagePack integers are int64 or uint64: the range msgspec can decode.
INT_MIN: Final = -(2**63)
INT_MAX: Final = 2**64 - 1
#: A set/dict-key type with more distinct values than this counts as unbounded.
_LARGE: Final = 100_000

#: A path to a node of a type tree: field names (``".name"``), items (``"[]"``),
#: tuple positions (``"[0]"``), dict keys and values (``"{key}"``, ``"{value}"``)
#: and union branches (``"<Name>"``).
Path = tuple[str, ...]


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
    """``msgspec.inspect.type_info(tp)``, with msgspec's refusal turned into :class:`UnsupportedTypeError`."""
    try:
        return mi.type_info(tp)
    except (TypeError, ValueError) as exc:
        raise UnsupportedTypeError(where, f"msgspec does not support {tp!r}: {exc}") from None


def unwrap(t: mi.Type) -> mi.Type:
    """Strip :class:`msgspec.inspect.Metadata` layers (``Annotated`` extras without constraints)."""
    while isinstance(t, mi.Metadata):
        t = t.type
    return t


_CLASS_TYPES = (mi.StructType, mi.DataclassType, mi.NamedTupleType, mi.TypedDictType)


def type_label(t: mi.Type) -> str:
    """A short readable name of a type node: ``"str"``, ``"list[int]"``, ``"Account"``."""
    t = unwrap(t)
    if isinstance(t, (*_CLASS_TYPES, mi.EnumType)):
        return t.cls.__name__
    if isinstance(t, mi.UnionType):
        return " | ".join(type_label(b) for b in t.types)
    if isinstance(t, mi.LiteralType):
        return f"Literal[{', '.join(repr(v) for v in t.values)}]"
    if isinstance(t, mi.ListType):
        return f"list[{type_label(t.item_type)}]"
    if isinstance(t, mi.SetType):
        return f"set[{type_label(t.item_type)}]"
    if isinstance(t, mi.FrozenSetType):
        return f"frozenset[{type_label(t.item_type)}]"
    if isinstance(t, mi.VarTupleType):
        return f"tuple[{type_label(t.item_type)}, ...]"
    if isinstance(t, mi.TupleType):
        return f"tuple[{', '.join(type_label(i) for i in t.item_types)}]"
    if isinstance(t, mi.DictType):
        return f"dict[{type_label(t.key_type)}, {type_label(t.value_type)}]"
    if isinstance(t, mi.CustomType):
        return getattr(t.cls, "__name__", repr(t.cls))
    names = {
        mi.NoneType: "None", mi.BoolType: "bool", mi.IntType: "int", mi.FloatType: "float",
        mi.StrType: "str", mi.BytesType: "bytes", mi.ByteArrayType: "bytearray",
        mi.MemoryViewType: "memoryview", mi.DateTimeType: "datetime", mi.DateType: "date",
        mi.TimeType: "time", mi.TimeDeltaType: "timedelta", mi.UUIDType: "UUID",
        mi.DecimalType: "Decimal", mi.AnyType: "Any", mi.RawType: "Raw", mi.ExtType: "Ext",
    }
    return names.get(type(t), type(t).__name__)


def root_label(t: mi.Type) -> str:
    """How paths into ``t`` start in messages: the class name for classes, else ``"value"``."""
    t = unwrap(t)
    return t.cls.__name__ if isinstance(t, _CLASS_TYPES) else "value"


def render_path(root: str, path: Path) -> str:
    """``"Account" + (".roles", "[]")`` → ``"Account.roles[]"``; a leading branch drops ``value``."""
    if root == "value" and path and path[0].startswith("<"):
        return path[0][1:-1] + "".join(path[1:])
    return root + "".join(path)


def union_branches(t: mi.UnionType) -> list[tuple[str, mi.Type]]:
    """The branches of a union with their path segments.

    A union with one branch besides ``None`` (an ``Optional``) adds no segment
    for that branch, so ``name: str | None`` is just ``.name``; otherwise each
    branch is ``<Label>``.
    """
    real = [b for b in t.types if not isinstance(unwrap(b), mi.NoneType)]
    return [
        ("" if len(real) == 1 and not isinstance(unwrap(b), mi.NoneType) else f"<{type_label(b)}>", b)
        for b in t.types
    ]


# --- numeric bounds ---------------------------------------------------------------


def int_bounds(t: mi.IntType) -> tuple[int, int, int]:
    """``(lo, hi, step)``: the valid ints are ``lo, lo + step, ..., hi`` (all multiples of step).

    Raises:
        ValueError: no int satisfies the constraints.
    """
    lo = INT_MIN if t.ge is None else max(INT_MIN, t.ge)
    if t.gt is not None:
        lo = max(lo, t.gt + 1)
    hi = INT_MAX if t.le is None else min(INT_MAX, t.le)
    if t.lt is not None:
        hi = min(hi, t.lt - 1)
    step = 1
    if t.multiple_of is not None:
        step = abs(t.multiple_of)
        lo = -((-lo) // step) * step
        hi = (hi // step) * step
    if lo > hi:
        raise ValueError("no integer satisfies these bounds")
    return lo, hi, step


def float_validator(t: mi.FloatType) -> Callable[[float], bool]:
    """Whether a float passes ``t``'s constraints, decided by msgspec itself."""
    meta = {k: getattr(t, k) for k in ("gt", "ge", "lt", "le", "multiple_of") if getattr(t, k) is not None}
    if not meta:
        return lambda _x: True
    decoder = msgspec.msgpack.Decoder(Annotated[float, msgspec.Meta(**meta)])
    return _validator(decoder)


def str_validator(t: mi.StrType) -> Callable[[str], bool]:
    """Whether a str passes ``t``'s length and pattern constraints, decided by msgspec itself."""
    meta = {k: getattr(t, k) for k in ("min_length", "max_length", "pattern") if getattr(t, k) is not None}
    decoder = msgspec.msgpack.Decoder(Annotated[str, msgspec.Meta(**meta)])
    return _validator(decoder)


def _validator(decoder: msgspec.msgpack.Decoder[Any]) -> Callable[[Any], bool]:
    encode = msgspec.msgpack.encode

    def valid(value: Any) -> bool:
        try:
            decoder.decode(encode(value))
        except (msgspec.ValidationError, msgspec.EncodeError, UnicodeEncodeError):
            return False
        return True

    return valid


def pattern_width(pattern: str) -> int | None:
    """The longest string the regular expression itself can match, or ``None`` if unbounded (or unknown).

    Read from the parsed pattern (``re._parser``, CPython's own regex parser);
    with ``re.search`` semantics a bounded match may still sit in a longer
    string, which callers check separately.
    """
    try:
        parser: Any = importlib.import_module("re._parser")
        constants: Any = importlib.import_module("re._constants")
        _, longest = parser.parse(pattern).getwidth()
        return int(longest) if longest < int(constants.MAXREPEAT) else None
    except Exception:  # a private module: any surprise means "unknown"
        return None


def pattern_matches(pattern: str) -> Callable[[str], bool]:
    """``re.search`` semantics, as msgspec applies ``pattern``."""
    compiled = re.compile(pattern)
    return lambda s: compiled.search(s) is not None


# --- cardinality and growth ------------------------------------------------------------


def cardinality(t: mi.Type) -> int | None:
    """How many distinct values ``t`` has, or ``None`` when more than 100,000 (treated as unbounded)."""
    t = unwrap(t)
    count: int | None
    if isinstance(t, mi.NoneType):
        return 1
    if isinstance(t, mi.BoolType):
        return 2
    if isinstance(t, mi.LiteralType):
        return len(t.values)
    if isinstance(t, mi.EnumType):
        return len(t.cls)
    if isinstance(t, mi.IntType):
        try:
            lo, hi, step = int_bounds(t)
        except ValueError:
            return 0
        count = (hi - lo) // step + 1
        return count if count <= _LARGE else None
    if isinstance(t, mi.StrType | mi.BytesType | mi.ByteArrayType) and t.max_length == 0:
        return 1
    if isinstance(t, mi.UnionType):
        total = 0
        for branch in t.types:
            c = cardinality(branch)
            if c is None:
                return None
            total += c
        return total if total <= _LARGE else None
    if isinstance(t, mi.TupleType):
        count = 1
        for item in t.item_types:
            c = cardinality(item)
            if c is None:
                return None
            count *= c
            if count > _LARGE:
                return None
        return count
    return None


@dataclass(frozen=True)
class Growth:
    """A node of a type with no size bound.

    Attributes:
        path: where it is.
        label: its type, as written in messages (``"str"``, ``"list[str]"``).
        unit: what grows: ``"characters"``, ``"bytes"``, ``"items"``, ``"digits"``
            or ``"levels"`` (recursive types).
        hint: how to bound it.
    """

    path: Path
    label: str
    unit: str
    hint: str


_BOUND_HINT = "bound it with Annotated[..., msgspec.Meta(max_length=N)]"


def growth_paths(t: mi.Type, pattern_bounded: Callable[[mi.StrType], bool] = lambda _t: False) -> list[Growth]:
    """Every node of ``t`` whose encoding can grow without bound, outermost first.

    Args:
        t: the type tree.
        pattern_bounded: whether a ``str`` with a ``pattern`` but no
            ``max_length`` is bounded by its pattern alone (``^[0-9a-f]{32}$``).
    """
    found: list[Growth] = []
    _grow_walk(t, (), found, [], pattern_bounded)
    return found


def _grow_walk(
    t: mi.Type, path: Path, found: list[Growth], stack: list[int], bounded: Callable[[mi.StrType], bool]
) -> None:
    t = unwrap(t)
    label = type_label(t)
    if isinstance(t, mi.StrType):
        if t.max_length is None and not (t.pattern is not None and bounded(t)):
            found.append(Growth(path, label, "characters", _BOUND_HINT))
    elif isinstance(t, mi.BytesType | mi.ByteArrayType | mi.MemoryViewType):
        if t.max_length is None:
            found.append(Growth(path, label, "bytes", _BOUND_HINT))
    elif isinstance(t, mi.ListType | mi.VarTupleType | mi.SetType | mi.FrozenSetType):
        limit = t.max_length
        if isinstance(t, mi.SetType | mi.FrozenSetType) and limit is None:
            limit = cardinality(t.item_type)
        if limit is None:
            found.append(Growth(path, label, "items", _BOUND_HINT))
        _grow_walk(t.item_type, (*path, "[]"), found, stack, bounded)
    elif isinstance(t, mi.DictType) or is_frozendict(t):
        limit = t.max_length if t.max_length is not None else cardinality(t.key_type)
        if limit is None:
            found.append(Growth(path, label, "items", _BOUND_HINT))
        _grow_walk(t.key_type, (*path, "{key}"), found, stack, bounded)
        _grow_walk(t.value_type, (*path, "{value}"), found, stack, bounded)
    elif isinstance(t, mi.TupleType):
        for i, item in enumerate(t.item_types):
            _grow_walk(item, (*path, f"[{i}]"), found, stack, bounded)
    elif isinstance(t, mi.UnionType):
        for segment, branch in union_branches(t):
            _grow_walk(branch, (*path, segment) if segment else path, found, stack, bounded)
    elif isinstance(t, _CLASS_TYPES):
        if id(t) in stack:
            found.append(Growth(path, label, "levels", "a recursive type nests without bound; cap the depth"))
            return
        stack.append(id(t))
        for field in t.fields:
            _grow_walk(field.type, (*path, f".{field.name}"), found, stack, bounded)
        stack.pop()
    elif isinstance(t, mi.DecimalType):
        found.append(Growth(path, label, "digits", "a Decimal has no digit limit; store a bounded int or str"))
    elif isinstance(t, mi.AnyType):
        found.append(Growth(path, label, "items", "Any holds values of any size; use a bounded type"))
    elif isinstance(t, mi.RawType | mi.ExtType):
        found.append(Growth(path, label, "bytes", "holds bytes of any length; use a bounded type"))


def is_frozendict(t: mi.Type) -> TypeGuard[mi.DictType]:
    """Whether ``t`` is msgspec's ``FrozenDictType`` (Python 3.15+ ``frozendict``)."""
    frozen = getattr(mi, "FrozenDictType", None)
    return frozen is not None and isinstance(t, frozen)
