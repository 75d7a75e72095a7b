"""Deterministic extreme values of a type: the smallest, the largest, one grown at a path.

Internal to :mod:`clientstate.testing`; the size check uses it. Values are
built directly from the ``msgspec.inspect`` tree, with no random search:

* *smallest*: every size at its minimum, optional fields left at their
  defaults, numbers nearest zero, the union branch with the shortest encoding;
* *largest*: every bounded size at its ``max_length``, strings of 4-byte
  UTF-8 characters, every optional field present, the union branch and the
  numbers with the longest encoding (unbounded sizes stay at their minimum:
  they are reported separately);
* *grown*: the smallest value except that the node at one path has ``n``
  characters, bytes, items or digits.
"""

from __future__ import annotations

import builtins
import datetime as dt
import decimal
import functools
import itertools
import math
import uuid
from collections.abc import Iterable, Iterator
from typing import Annotated, Any, Final

import msgspec
import msgspec.inspect as mi
from hypothesis import Phase, find, settings
from hypothesis import strategies as st
from hypothesis.errors import HypothesisException

from clientstate.testing._types import (
    Path,
    cardinality,
    float_validator,
    int_bounds,
    is_frozendict,
    pattern_matches,
    pattern_width,
    render_path,
    str_validator,
    type_label,
    union_branches,
    unwrap,
)

__all__ = ["Extremes", "NoValueError", "encoded_size"]

_UTC: Final = dt.UTC
_WIDE: Final = "\U00010000"  # 4 bytes in UTF-8, one character for msgspec's length
_ALPHABET: Final = "abcdefghijklmnopqrstuvwxyz0123456789"
_WIDE_ALPHABET: Final = "".join(chr(0x10000 + i) for i in range(1024))
_FAR_OFFSET: Final = dt.timezone(-dt.timedelta(hours=23, minutes=59))


class NoValueError(Exception):
    """No value of the requested kind could be built at a path."""


class _RecursionError(NoValueError):
    """A recursive type was entered again where no value can stop the recursion."""


def encoded_size(value: Any) -> int:
    """Length in bytes of ``value`` encoded as MessagePack (what a token carries)."""
    return len(msgspec.msgpack.encode(value))


class Extremes:
    """Builds extreme values of one type tree.

    Args:
        root: how paths start in messages (see ``_types.root_label``).
        largest: build the largest value instead of the smallest.
        grow: ``(path, n)``: make the node at ``path`` ``n`` units long.
    """

    def __init__(self, root: str, *, largest: bool = False, grow: tuple[Path, int] | None = None) -> None:
        self.root = root
        self.largest = largest
        self.grow = grow
        self.stack: list[int] = []

    def fail(self, path: Path, reason: str) -> NoValueError:
        return NoValueError(f"{render_path(self.root, path)}: {reason}")

    def pick(self, candidates: Iterable[Any]) -> Any:
        """The candidate with the longest (largest mode) or shortest encoding; first wins ties."""
        chosen: list[Any] = []
        best = -1
        for candidate in candidates:
            size = encoded_size(candidate)
            if not chosen or (size > best if self.largest else size < best):
                chosen, best = [candidate], size
        if not chosen:
            raise NoValueError("no candidate value")
        return chosen[0]

    def on_path(self, path: Path) -> Path | None:
        """The rest of the grow path below ``path``, if ``path`` is a strict prefix of it."""
        if self.grow is None:
            return None
        target = self.grow[0]
        if len(target) > len(path) and target[: len(path)] == path:
            return target[len(path):]
        return None

    # --- values -------------------------------------------------------------------------

    def value(self, t: mi.Type, path: Path = (), *, top: bool = False) -> Any:
        """The extreme value of ``t`` at ``path`` (``top``: ``None`` is not allowed)."""
        t = unwrap(t)
        if self.grow is not None and path == self.grow[0]:
            return self.grown(t, path, self.grow[1])
        below = self.on_path(path)
        if isinstance(t, mi.NoneType):
            if top:
                raise self.fail(path, "None is not a state")
            return None
        if isinstance(t, mi.BoolType):
            return self.largest
        if isinstance(t, mi.IntType):
            return self.int_value(t, path)
        if isinstance(t, mi.FloatType):
            return self.float_values(t, path, 1)[0]
        if isinstance(t, mi.StrType):
            return self.str_value(t, path)
        if isinstance(t, mi.BytesType | mi.ByteArrayType | mi.MemoryViewType):
            size = t.min_length or 0
            if self.largest and t.max_length is not None:
                size = t.max_length
            return _wrap_bytes(t, (b"\xff" if self.largest else b"\x00") * size)
        if isinstance(t, mi.ListType | mi.VarTupleType):
            count = self.count(t.min_length, t.max_length, None)
            item_path = (*path, "[]")
            if below is not None:
                # Only the first item is on the grow path; the others are plain.
                items = [self.value(t.item_type, item_path), *self.plain().fill(t.item_type, item_path, count - 1)]
            else:
                items = self.fill(t.item_type, item_path, count)
            return tuple(items) if isinstance(t, mi.VarTupleType) else items
        if isinstance(t, mi.SetType | mi.FrozenSetType):
            count = self.count(t.min_length, t.max_length, cardinality(t.item_type))
            item_path = (*path, "[]")
            if below is not None:
                first = self.value(t.item_type, item_path)
                items = self.plain().unique(t.item_type, item_path, max(count, 1), [first])
            else:
                items = self.unique(t.item_type, item_path, count, [])
            return set(items) if isinstance(t, mi.SetType) else frozenset(items)
        if isinstance(t, mi.DictType) or is_frozendict(t):
            return self.dict_value(t, path, below)
        if isinstance(t, mi.TupleType):
            return tuple(self.value(x, (*path, f"[{i}]")) for i, x in enumerate(t.item_types))
        if isinstance(t, mi.StructType | mi.DataclassType | mi.NamedTupleType | mi.TypedDictType):
            return self.class_value(t, path, below)
        if isinstance(t, mi.UnionType):
            return self.union_value(t, path, below, top=top)
        if isinstance(t, mi.LiteralType):
            return self.pick(v for v in t.values if not (top and v is None))
        if isinstance(t, mi.EnumType):
            return self.pick(t.cls)
        return self.pick(self.fixed_candidates(t, path))

    def count(self, lo: int | None, hi: int | None, distinct: int | None) -> int:
        """How many items a collection gets: its minimum, or in largest mode its bound."""
        if self.largest:
            bound = hi if hi is not None else distinct
            if bound is not None:
                return bound if distinct is None else min(bound, distinct)
        return lo or 0

    def plain(self) -> Extremes:
        """The same builder without the grow target (for the siblings of a grown item)."""
        other = Extremes(self.root, largest=self.largest)
        other.stack = list(self.stack)
        return other

    def fill(self, item: mi.Type, path: Path, count: int) -> list[Any]:
        if count == 0:
            return []
        return [self.value(item, path)] * count

    def fixed_candidates(self, t: mi.Type, path: Path) -> list[Any]:
        """Candidates for the types whose sizes are (nearly) fixed."""
        if isinstance(t, mi.DateTimeType):
            naive = [dt.datetime(2000, 1, 1), dt.datetime(9999, 12, 31, 23, 59, 59, 999999)]
            aware = [dt.datetime(2000, 1, 1, tzinfo=_UTC), dt.datetime(9999, 12, 30, 23, 59, 59, 999999, tzinfo=_UTC)]
            return naive if t.tz is False else aware if t.tz else aware + naive
        if isinstance(t, mi.DateType):
            return [dt.date(2000, 1, 1)]
        if isinstance(t, mi.TimeType):
            naive_t = [dt.time(0), dt.time(23, 59, 59, 999999)]
            aware_t = [dt.time(0, tzinfo=_UTC), dt.time(23, 59, 59, 999999, tzinfo=_FAR_OFFSET)]
            return naive_t if t.tz is False else aware_t if t.tz else naive_t + aware_t
        if isinstance(t, mi.TimeDeltaType):
            return [dt.timedelta(0), dt.timedelta.max, dt.timedelta.min + dt.timedelta(microseconds=1)]
        if isinstance(t, mi.UUIDType):
            return [uuid.UUID(int=0)]
        if isinstance(t, mi.DecimalType):
            return [decimal.Decimal(0)]
        if isinstance(t, mi.AnyType):
            return [0]
        if isinstance(t, mi.RawType):
            return [msgspec.Raw(msgspec.msgpack.encode(0))]
        if isinstance(t, mi.ExtType):
            return [msgspec.msgpack.Ext(0, b"")]
        raise self.fail(path, f"no value can be built for {type_label(t)}")

    def int_value(self, t: mi.IntType, path: Path) -> int:
        try:
            lo, hi, _ = int_bounds(t)
        except ValueError:
            raise self.fail(path, "no integer satisfies the bounds") from None
        if self.largest:
            return int(self.pick([hi, lo]))
        return 0 if lo <= 0 <= hi else lo if lo > 0 else hi

    def float_values(self, t: mi.FloatType, path: Path, n: int) -> list[float]:
        valid = float_validator(t)
        bounds = [b for b in (t.ge, t.gt, t.le, t.lt) if b is not None]
        step = abs(float(t.multiple_of)) if t.multiple_of is not None else 1.0
        candidates: list[float] = [0.0]
        for b in bounds:
            b = float(b)
            k = b / step
            candidates += [math.ceil(k) * step, math.floor(k) * step, math.nextafter(b, math.inf),
                           math.nextafter(b, -math.inf), b]
        if len(bounds) >= 2:
            lo, hi = float(min(bounds)), float(max(bounds))
            candidates += [lo + (hi - lo) * j / (n + 1) for j in range(1, n + 1)]
        candidates += [k * step for i in range(1, 4 * n + 4) for k in (i, -i)]
        found: list[float] = []
        for x in candidates:
            if valid(x) and x not in found:
                found.append(x)
                if len(found) == n:
                    return found
        if found:
            return found
        raise self.fail(path, "no float satisfying the constraints was found")

    def str_value(self, t: mi.StrType, path: Path) -> str:
        lo = t.min_length or 0
        if t.pattern is None:
            size = t.max_length if self.largest and t.max_length is not None else lo
            return (_WIDE if self.largest else "a") * size
        if not self.largest:
            return self.pattern_example(t, path)
        target = t.max_length if t.max_length is not None else self.pattern_bound(t, path)
        base = (_long_pattern_example(t.pattern, t.min_length, t.max_length, target) if target else None) or (
            self.pattern_example(t, path)
        )
        if t.max_length is not None and len(base) < t.max_length:
            valid = str_validator(t)
            pad = _WIDE * (t.max_length - len(base))
            for candidate in (base + pad, pad + base):
                if valid(candidate):
                    return candidate
        return base

    def pattern_bound(self, t: mi.StrType, path: Path) -> int | None:
        """The most characters a ``str`` can have by its ``pattern`` alone, or ``None`` if unbounded.

        Bounded when the regular expression's longest match is bounded and
        the match cannot sit inside a longer string (it is anchored).
        """
        if t.pattern is None:
            return None
        width = pattern_width(t.pattern)
        if width is None:
            return None
        base = self.pattern_example(t, path)
        matches = pattern_matches(t.pattern)
        # Longer than any match: if a padded string still matches, the match is not anchored.
        for pad in ("x" * (width + 1), "\x00" * (width + 1), "0" * (width + 1)):
            if matches(base + pad) or matches(pad + base):
                return None
        return width if t.max_length is None else min(width, t.max_length)

    def pattern_example(self, t: mi.StrType, path: Path) -> str:
        """The simplest string Hypothesis finds for a patterned ``str`` type."""
        examples = _pattern_examples(t.pattern, t.min_length, t.max_length, 1)
        if not examples:
            raise self.fail(path, f"no string matching pattern {t.pattern!r} was found")
        return examples[0]

    def dict_value(self, t: Any, path: Path, below: Path | None) -> Any:
        count = self.count(t.min_length, t.max_length, cardinality(t.key_type))
        key_path, value_path = (*path, "{key}"), (*path, "{value}")
        if below is not None and below[0] == "{key}":
            first_key = [self.value(t.key_type, key_path)]
            keys = self.plain().unique(t.key_type, key_path, max(count, 1), first_key)
            mapping = {k: self.value(t.value_type, value_path) for k in keys}
        elif below is not None and below[0] == "{value}":
            keys = self.unique(t.key_type, key_path, max(count, 1), [])
            plain = self.plain()
            mapping = {k: plain.value(t.value_type, value_path) for k in keys}
            mapping[keys[0]] = self.value(t.value_type, value_path)
        else:
            keys = self.unique(t.key_type, key_path, count, [])
            mapping = {k: self.value(t.value_type, value_path) for k in keys}
        return _frozendict(mapping) if is_frozendict(t) else mapping

    def class_value(self, t: Any, path: Path, below: Path | None) -> Any:
        if id(t) in self.stack:
            raise _RecursionError(f"{render_path(self.root, path)}: recursive type")
        self.stack.append(id(t))
        try:
            kwargs: dict[str, Any] = {}
            for field in t.fields:
                segment = f".{field.name}"
                wanted = field.required or self.largest or (below is not None and below[0] == segment)
                if not wanted:
                    continue
                try:
                    kwargs[field.name] = self.value(field.type, (*path, segment))
                except _RecursionError:
                    if field.required:
                        raise
        finally:
            self.stack.pop()
        if isinstance(t, mi.TypedDictType):
            return kwargs
        try:
            return t.cls(**kwargs)
        except (TypeError, ValueError) as exc:
            raise self.fail(path, f"{t.cls.__name__}(...) refused the value: {exc}") from None

    def union_value(self, t: mi.UnionType, path: Path, below: Path | None, *, top: bool) -> Any:
        options: list[tuple[str, mi.Type]] = [
            (segment, branch)
            for segment, branch in union_branches(t)
            if not (top and isinstance(unwrap(branch), mi.NoneType))
        ]
        if below is not None:
            for segment, branch in options:
                if segment and below[0] == segment:
                    return self.value(branch, (*path, segment))
            for segment, branch in options:
                if not segment:
                    return self.value(branch, path)
        if not self.largest and not top and any(isinstance(unwrap(b), mi.NoneType) for _, b in options):
            return None
        values = []
        for segment, branch in options:
            try:
                values.append(self.value(branch, (*path, segment) if segment else path, top=top))
            except NoValueError:
                continue
        if not values:
            raise self.fail(path, "no branch of the union has a value")
        return self.pick(values)

    # --- grown values ---------------------------------------------------------------------

    def grown(self, t: mi.Type, path: Path, n: int) -> Any:
        """The node at ``path`` made ``n`` units long."""
        if isinstance(t, mi.StrType):
            if t.pattern is None:
                return "x" * max(n, t.min_length or 0)
            base = self.pattern_example(t, path)
            matches = pattern_matches(t.pattern)
            pad = "x" * max(0, n - len(base))
            for candidate in (base + pad, pad + base):
                if matches(candidate):
                    return candidate
            raise self.fail(path, f"could not lengthen a string matching {t.pattern!r}")
        if isinstance(t, mi.BytesType | mi.ByteArrayType | mi.MemoryViewType):
            return _wrap_bytes(t, b"x" * max(n, t.min_length or 0))
        if isinstance(t, mi.ListType | mi.VarTupleType):
            items = self.fill(t.item_type, (*path, "[]"), max(n, t.min_length or 0))
            return tuple(items) if isinstance(t, mi.VarTupleType) else items
        if isinstance(t, mi.SetType | mi.FrozenSetType):
            items = self.unique(t.item_type, (*path, "[]"), n, [])
            return set(items) if isinstance(t, mi.SetType) else frozenset(items)
        if isinstance(t, mi.DictType) or is_frozendict(t):
            keys = self.unique(t.key_type, (*path, "{key}"), n, [])
            value = self.value(t.value_type, (*path, "{value}"))
            mapping = dict.fromkeys(keys, value)
            return _frozendict(mapping) if is_frozendict(t) else mapping
        if isinstance(t, mi.DecimalType):
            return decimal.Decimal("9" * max(n, 1))
        if isinstance(t, mi.AnyType):
            return [0] * n
        if isinstance(t, mi.RawType):
            return msgspec.Raw(msgspec.msgpack.encode(b"x" * n))
        if isinstance(t, mi.ExtType):
            return msgspec.msgpack.Ext(0, b"x" * n)
        raise self.fail(path, f"cannot grow a {type_label(t)}")

    # --- distinct values --------------------------------------------------------------------

    def unique(self, t: mi.Type, path: Path, n: int, first: list[Any]) -> list[Any]:
        """``n`` distinct (by ``==``) values of ``t``, starting with ``first``.

        Raises:
            NoValueError: fewer than ``n`` could be found.
        """
        found = list(first)
        seen = set(found)
        if len(found) < n:
            for candidate in self.candidates(t, path, n):
                if candidate not in seen:
                    seen.add(candidate)
                    found.append(candidate)
                    if len(found) >= n:
                        break
        if len(found) < n:
            raise self.fail(path, f"found only {len(found)} distinct values, {n} needed")
        return found[:n]

    def candidates(self, t: mi.Type, path: Path, n: int) -> Iterator[Any]:
        """Distinct-ish values of ``t``, the most extreme first."""
        t = unwrap(t)
        if isinstance(t, mi.NoneType):
            yield None
        elif isinstance(t, mi.BoolType):
            yield from ((True, False) if self.largest else (False, True))
        elif isinstance(t, mi.IntType):
            yield from self.int_candidates(t, path)
        elif isinstance(t, mi.FloatType):
            yield from self.float_values(t, path, n)
        elif isinstance(t, mi.StrType):
            yield from self.str_candidates(t, path, n)
        elif isinstance(t, mi.BytesType | mi.ByteArrayType | mi.MemoryViewType):
            size = t.max_length if self.largest and t.max_length is not None else t.min_length or 0
            top = size if self.largest else (t.max_length if t.max_length is not None else size + 2)
            for length in range(size, top + 1):
                for combo in itertools.product(range(255, -1, -1) if self.largest else range(256), repeat=length):
                    yield _wrap_bytes(t, bytes(combo))
        elif isinstance(t, mi.LiteralType):
            yield from t.values
        elif isinstance(t, mi.EnumType):
            yield from t.cls
        elif isinstance(t, mi.DateTimeType):
            base = self.value(t, path)
            sign = -1 if self.largest else 1
            yield from (base + sign * dt.timedelta(seconds=i) for i in range(n))
        elif isinstance(t, mi.DateType):
            yield from (dt.date(2000, 1, 1) + dt.timedelta(days=i) for i in range(n))
        elif isinstance(t, mi.TimeType):
            base = self.value(t, path)
            for i in range(min(n, 86_400)):
                moment = dt.datetime.combine(dt.date(2000, 1, 1), base) + (-1 if self.largest else 1) * dt.timedelta(
                    seconds=i
                )
                yield moment.timetz() if base.tzinfo is not None else moment.time()
        elif isinstance(t, mi.TimeDeltaType):
            yield from (dt.timedelta(seconds=i) for i in range(n))
        elif isinstance(t, mi.UUIDType):
            yield from (uuid.UUID(int=i) for i in range(n))
        elif isinstance(t, mi.DecimalType):
            yield from (decimal.Decimal(i) for i in range(n))
        elif isinstance(t, mi.AnyType):
            yield from range(n)
        elif isinstance(t, mi.TupleType):
            pools = [list(itertools.islice(self.candidates(x, (*path, f"[{i}]"), n), n))
                     for i, x in enumerate(t.item_types)]
            yield from itertools.islice(itertools.product(*pools), n)
        elif isinstance(t, mi.StructType | mi.DataclassType | mi.NamedTupleType):
            yield from self.class_candidates(t, path, n)
        elif isinstance(t, mi.UnionType):
            branches = [self.candidates(b, (*path, s) if s else path, n) for s, b in union_branches(t)]
            for group in itertools.zip_longest(*branches, fillvalue=_NOTHING):
                yield from (v for v in group if v is not _NOTHING)
        elif isinstance(t, mi.FrozenSetType):
            yield frozenset()
            yield from (frozenset([x]) for x in self.candidates(t.item_type, (*path, "[]"), n))
        else:
            yield self.value(t, path)

    def int_candidates(self, t: mi.IntType, path: Path) -> Iterator[int]:
        try:
            lo, hi, step = int_bounds(t)
        except ValueError:
            return
        if self.largest:
            for k in itertools.count():
                if hi - k * step < lo:
                    return
                yield hi - k * step
                if lo + k * step <= hi:
                    yield lo + k * step
        start = self.int_value(t, path)
        for k in itertools.count():
            up, down = start + k * step, start - k * step
            if up > hi and down < lo:
                return
            if up <= hi:
                yield up
            if k and down >= lo:
                yield down

    def str_candidates(self, t: mi.StrType, path: Path, n: int) -> Iterator[str]:
        if t.pattern is not None:
            yield from _pattern_examples(t.pattern, t.min_length, t.max_length, min(n, 64))
            return
        lo = t.min_length or 0
        if self.largest and t.max_length is not None:
            lengths: Iterable[int] = [t.max_length]
            alphabet = _WIDE_ALPHABET
        else:
            lengths = range(lo, (t.max_length if t.max_length is not None else lo + 3) + 1)
            alphabet = _ALPHABET
        for length in lengths:
            for combo in itertools.product(alphabet, repeat=length):
                yield "".join(combo)

    def class_candidates(self, t: Any, path: Path, n: int) -> Iterator[Any]:
        fields = [f for f in t.fields if f.required or self.largest]
        pools = [list(itertools.islice(self.candidates(f.type, (*path, f".{f.name}"), n), n)) for f in fields]
        for combo in itertools.islice(itertools.product(*pools), 4 * n):
            try:
                yield t.cls(**{f.name: v for f, v in zip(fields, combo, strict=True)})
            except (TypeError, ValueError):
                continue


_NOTHING: Final = object()


def _wrap_bytes(t: mi.Type, data: bytes) -> Any:
    if isinstance(t, mi.ByteArrayType):
        return bytearray(data)
    if isinstance(t, mi.MemoryViewType):
        return memoryview(data)
    return data


def _frozendict(mapping: dict[Any, Any]) -> Any:
    return getattr(builtins, "frozendict")(mapping)  # noqa: B009 - only on Python 3.15+


@functools.lru_cache(maxsize=256)
def _long_pattern_example(pattern: str, min_length: int | None, max_length: int | None, target: int) -> str | None:
    """A string of the constrained ``str`` type with at least ``target`` characters, if Hypothesis finds one."""
    from clientstate.testing.strategies import from_type

    meta: dict[str, Any] = {"pattern": pattern, "min_length": min_length, "max_length": max_length}
    strings = from_type(Annotated[str, msgspec.Meta(**{k: v for k, v in meta.items() if v is not None})])
    quick = settings(database=None, max_examples=300, phases=(Phase.generate,))
    try:
        return str(find(strings, lambda s: len(s) >= target, settings=quick))
    except HypothesisException:
        return None


@functools.lru_cache(maxsize=256)
def _pattern_examples(pattern: str | None, min_length: int | None, max_length: int | None, n: int) -> tuple[str, ...]:
    """Up to ``n`` distinct simple strings of the constrained ``str`` type (found by Hypothesis, shrunk)."""
    from clientstate.testing.strategies import from_type

    meta: dict[str, Any] = {"pattern": pattern, "min_length": min_length, "max_length": max_length}
    strings = from_type(Annotated[str, msgspec.Meta(**{k: v for k, v in meta.items() if v is not None})])
    quick = settings(database=None, max_examples=500, phases=(Phase.generate, Phase.shrink))
    for wanted in (n, 1) if n > 1 else (1,):
        try:
            found = find(st.lists(strings, unique=True, min_size=wanted, max_size=wanted), lambda _v: True,
                         settings=quick)
        except HypothesisException:
            continue
        return tuple(found)
    return ()
