"""State descriptors: what one piece of client state is and how it is encoded.

A :class:`State` names a kind of client state, gives its type (a
``msgspec.Struct`` or any type msgspec can encode and decode strictly), its
schema version, and :class:`Migration` s from older versions.

Encoding is msgspec MessagePack with deterministic ordering (map keys and sets
sorted), so the encoding of a value is canonical: two values are *equal* for
clientstate exactly when their encodings are equal. That is how ``setup()``
decides whether a response needs a new cookie: the bytes that arrived are
compared with the encoding of the value the application returns, so a nested
change (even an in-place mutation of the loaded object) counts and an
unchanged value does not. A value whose sets or map keys cannot be sorted
(a ``set`` of enum members, say) is encoded in iteration order instead, and is
then compared by ``==`` with a fresh decoding of the bytes that arrived.

``None`` is never a state value: it means "no state" (and deletes the cookie).
"""

from __future__ import annotations

import builtins
import hashlib
import re
from collections.abc import Callable, Iterable
from typing import Any, Final, Generic, TypeVar, overload

import msgspec

from clientstate._core.config import check_callable, check_int, checked, unknown_arguments
from clientstate._core.errors import ConfigurationError, ErrorKind, LoadError, StateEncodeError
from clientstate._core.value import ConfigValue, Immutable

__all__ = ["Migration", "State", "fingerprint"]

T = TypeVar("T")

_NAME = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
#: The highest schema version accepted.
MAX_SCHEMA_VERSION = 2**31 - 1

# What msgspec (and the values' own code) raise for a value that does not encode, or bytes that do not
# decode as the type; RecursionError for a value that contains itself or nests too deep.
_ENCODE_ERRORS: Final = (msgspec.EncodeError, TypeError, ValueError, ArithmeticError, RecursionError)
_DECODE_ERRORS: Final = (msgspec.DecodeError, TypeError, ValueError, ArithmeticError, RecursionError)


def _type_name(value: object) -> str:
    return type(value).__name__


def _unsupported(type_: Any) -> str | None:
    """Name a part of ``type_`` that msgspec cannot decode without hooks, if any."""
    try:
        info = msgspec.inspect.type_info(type_)
    except (TypeError, ValueError) as exc:
        return str(exc)
    seen: set[int] = set()
    stack: list[Any] = [info]
    while stack:
        node = stack.pop()
        if isinstance(node, msgspec.inspect.CustomType):
            return f"{node.cls!r} is not a type msgspec can decode"
        if isinstance(node, msgspec.inspect.Field):
            stack.append(node.type)
        elif isinstance(node, tuple):
            stack.extend(node)
        elif isinstance(node, msgspec.inspect.Type) and id(node) not in seen:
            seen.add(id(node))
            stack.extend(getattr(node, f) for f in node.__struct_fields__)
    return None


_SCALARS: Final = (
    msgspec.inspect.BoolType, msgspec.inspect.IntType, msgspec.inspect.FloatType, msgspec.inspect.StrType,
    msgspec.inspect.BytesType, msgspec.inspect.NoneType, msgspec.inspect.LiteralType, msgspec.inspect.EnumType,
    msgspec.inspect.DateTimeType, msgspec.inspect.DateType, msgspec.inspect.TimeType,
    msgspec.inspect.TimeDeltaType, msgspec.inspect.UUIDType, msgspec.inspect.DecimalType,
)


def _immutable(type_: Any) -> bool:
    """Whether no value of ``type_`` can change in place (frozen Structs, tuples and scalars only).

    Sets are left out even when frozen: their encoding may depend on
    iteration order (unorderable members), so equal values need not encode alike.
    """
    seen: set[type] = set()

    def walk(node: Any) -> bool:
        if isinstance(node, _SCALARS):
            return True
        if isinstance(node, msgspec.inspect.VarTupleType):
            return walk(node.item_type)
        if isinstance(node, msgspec.inspect.TupleType):
            return all(walk(t) for t in node.item_types)
        if isinstance(node, msgspec.inspect.UnionType):
            return all(walk(t) for t in node.types)
        if isinstance(node, msgspec.inspect.StructType):
            if not node.cls.__struct_config__.frozen:
                return False
            if node.cls in seen:  # a recursive type: decided by its other fields
                return True
            seen.add(node.cls)
            return all(walk(f.type) for f in node.fields)
        return False

    try:
        return walk(msgspec.inspect.type_info(type_))
    except (TypeError, ValueError):
        return False


_I = msgspec.inspect
# The attributes of each msgspec.inspect node that decide how values encode and decode, by node type.
# Anything not named here (class names, defaults, docstrings, JSON-schema extras) is not shape.
_LEAVES: Final[dict[type, tuple[str, ...]]] = {
    _I.AnyType: (), _I.NoneType: (), _I.BoolType: (), _I.DateType: (), _I.TimeDeltaType: (), _I.UUIDType: (),
    _I.DecimalType: (), _I.RawType: (), _I.ExtType: (),
    _I.IntType: ("gt", "ge", "lt", "le", "multiple_of"),
    _I.FloatType: ("gt", "ge", "lt", "le", "multiple_of"),
    _I.StrType: ("min_length", "max_length", "pattern"),
    _I.BytesType: ("min_length", "max_length"),
    _I.ByteArrayType: ("min_length", "max_length"),
    _I.MemoryViewType: ("min_length", "max_length"),
    _I.DateTimeType: ("tz",),
    _I.TimeType: ("tz",),
}
_CONTAINERS: Final[dict[type, tuple[str, ...]]] = {
    _I.ListType: ("item_type", "min_length", "max_length"),
    _I.SetType: ("item_type", "min_length", "max_length"),
    _I.FrozenSetType: ("item_type", "min_length", "max_length"),
    _I.VarTupleType: ("item_type", "min_length", "max_length"),
    _I.DictType: ("key_type", "value_type", "min_length", "max_length"),
    _I.TupleType: ("item_types",),
    _I.UnionType: ("types",),
    _I.Metadata: ("type",),
}
_RECORDS: Final[dict[type, tuple[str, ...]]] = {
    _I.StructType: ("tag_field", "tag", "array_like", "forbid_unknown_fields"),
    _I.TypedDictType: (),
    _I.DataclassType: (),
    _I.NamedTupleType: (),
}
if hasattr(_I, "FrozenDictType"):  # msgspec versions without it cannot produce it
    _CONTAINERS[_I.FrozenDictType] = ("key_type", "value_type", "min_length", "max_length")


def _scalar(value: object) -> str:
    """A constraint or literal value, spelt with its type so that ``1``, ``1.0``, ``True`` and ``'1'`` differ."""
    if value is None or isinstance(value, bool | int | float | str | bytes):
        return f"{type(value).__name__}:{value!r}"
    if isinstance(value, tuple):
        return "(" + ",".join(_scalar(item) for item in value) + ")"
    raise ConfigurationError(f"cannot fingerprint the value {value!r} of a type's description")


def fingerprint(type_: Any) -> bytes:
    """8 bytes identifying the shape of ``type_``: SHA-256 of a canonical description of it.

    The description is built by an explicit walk of ``msgspec.inspect.type_info(type_)``
    that names, per kind of node, the attributes that decide how values
    encode and decode — field names and encoded names, requiredness, nested
    types, constraints (``ge``, ``max_length``, patterns...), enum members,
    literal values, tags — and not class names, defaults or docstrings. It
    never uses ``repr`` of msgspec's objects, so it is stable across msgspec
    releases. Two types of one shape share a fingerprint; changing the shape
    changes it (with overwhelming probability).

    Raises:
        ConfigurationError: ``type_`` is not a type msgspec can describe, or its
            description holds a kind of node this function does not know (a newer
            msgspec's: the fingerprint must be extended, not guessed).
    """
    classes: dict[type, int] = {}

    def describe(node: Any) -> str:
        kind = type(node)
        name = kind.__name__
        if kind in _LEAVES:
            return name + "(" + ",".join(f"{a}={_scalar(getattr(node, a))}" for a in _LEAVES[kind]) + ")"
        if kind in _CONTAINERS:
            parts = []
            for attribute in _CONTAINERS[kind]:
                value = getattr(node, attribute)
                if attribute.endswith("types"):
                    parts.append(f"{attribute}=[" + ",".join(describe(t) for t in value) + "]")
                elif attribute.endswith("type"):
                    parts.append(f"{attribute}={describe(value)}")
                else:
                    parts.append(f"{attribute}={_scalar(value)}")
            return name + "(" + ",".join(parts) + ")"
        if kind is _I.LiteralType:
            return name + "(" + ",".join(_scalar(v) for v in node.values) + ")"
        if kind is _I.EnumType:
            return name + "(" + ",".join(f"{m.name}={_scalar(m.value)}" for m in node.cls) + ")"
        if kind in _RECORDS:
            if node.cls in classes:  # a recursive type: refer to it by its position
                return f"@{classes[node.cls]}"
            classes[node.cls] = len(classes)
            options = [f"{a}={_scalar(getattr(node, a))}" for a in _RECORDS[kind]]
            fields = [
                f"{f.name}/{f.encode_name}/{'required' if f.required else 'optional'}:{describe(f.type)}"
                for f in node.fields
            ]
            return name + "(" + ",".join(options + fields) + ")"
        raise ConfigurationError(f"cannot fingerprint a {name} node of msgspec.inspect (type {type_!r})")

    try:
        info = msgspec.inspect.type_info(type_)
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(f"cannot fingerprint {type_!r}: {exc}") from None
    return hashlib.sha256(describe(info).encode("utf-8")).digest()[:8]


def _decoder(type_: Any, where: str) -> msgspec.msgpack.Decoder[Any]:
    problem = _unsupported(type_)
    if problem is None:
        try:
            return msgspec.msgpack.Decoder(type_)
        except TypeError as exc:
            problem = str(exc)
    raise ConfigurationError(f"{where}: type {type_!r} is not supported by msgspec: {problem}")


class Migration(ConfigValue, Generic[T], frozen=True):
    """How values of one older schema version become values of the current one. Frozen.

    Args:
        version: the older schema version (an integer below the state's version).
        type: the msgspec-decodable type values had at that version.
        upgrade: ``upgrade(old_value) -> current_value``; it may raise, which
            makes the load a ``migration_failed`` error.

    A state keeps one migration per older version it still accepts, each going
    straight to the current type; write ``upgrade`` by composing the steps.

    Raises:
        ConfigurationError: a bad version, a type msgspec cannot decode, or an
            ``upgrade`` that is not callable.
    """

    version: int
    type: Any
    upgrade: Callable[[Any], T]

    def __post_init__(self) -> None:
        check_int(self.version, "migration version", 0, MAX_SCHEMA_VERSION)
        check_callable(self.upgrade, "migration upgrade", "upgrade(old_value) -> current_value")
        _decoder(self.type, f"migration from version {self.version}")

    def __repr__(self) -> str:
        return f"Migration(version={self.version}, type={self.type!r})"


class State(Immutable, Generic[T]):
    """A descriptor of one kind of state: its name, type, schema version and migrations.

    Args:
        name: a stable identifier, 1–128 characters of ``A–Z a–z 0–9 _ . : -``.
            It is bound into every token, so a token for one state never loads
            as another, and it names the slot (``environ["clientstate.<name>"]``).
        type: the value type: a ``msgspec.Struct``, or any type msgspec can
            encode and decode strictly (``dict[str, int]``, ``list[Item]``,
            ``Literal``, ``Annotated[int, msgspec.Meta(ge=0)]``, ...).
        version: the current schema version, an integer >= 0 (default 1),
            bound into every token. Bump it whenever ``type`` changes shape.
        migrations: :class:`Migration` s from older versions; a token of an
            older version with no migration fails to authenticate.

    Raises:
        ConfigurationError: an unknown, missing or extra positional argument,
            a bad name or version (not a str; not an ``int``, or a ``bool``), a
            type msgspec cannot handle (or ``None``), something other than a :class:`Migration`
            in ``migrations``, a migration for a version that is not older than
            ``version``, or two migrations for one version.

    Immutable after construction. Two descriptors are the same state only if
    they are the same object: ``get_slot`` refuses a look-up with another
    descriptor of the same name.
    """

    __slots__ = (
        "_decoder", "_decoders", "_encoder", "_unordered", "fingerprints", "immutable", "migrations", "name",
        "slot_key", "type", "version",
    )

    name: str
    type: Any
    version: int
    migrations: tuple[Migration[T], ...]
    #: Where adapters put this state's slot in the environ or scope: ``"clientstate.<name>"``.
    slot_key: str
    #: Whether no value of ``type`` can change in place (frozen Structs, tuples, scalars): then the
    #: encoding made when a value is assigned is the one saved, without encoding it again.
    immutable: bool
    #: Per accepted schema version, the :func:`fingerprint` of its type (stored with server-side state).
    fingerprints: dict[int, bytes]
    _decoder: msgspec.msgpack.Decoder[T]
    _decoders: dict[int, msgspec.msgpack.Decoder[Any]]
    _encoder: msgspec.msgpack.Encoder
    _unordered: msgspec.msgpack.Encoder

    # A ``type`` that is a class infers T; any other msgspec type (a union, Annotated, Literal) gives State[Any].
    @overload
    def __init__(self, name: str, type: builtins.type[T], *, version: int = 1,
                 migrations: Iterable[Migration[T]] = ()) -> None: ...
    @overload
    def __init__(self, name: str, type: Any, *, version: int = 1, migrations: Iterable[Migration[T]] = ()) -> None: ...

    @checked
    def __init__(
        self,
        name: str,
        type: Any,
        *,
        version: int = 1,
        migrations: Iterable[Migration[T]] = (),
        **unknown: object,
    ) -> None:
        if unknown:
            raise unknown_arguments("State", list(unknown), ["name", "type", "version", "migrations"])
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise ConfigurationError(f"state name must be 1-128 characters of A-Z a-z 0-9 _ . : -, got {name!r}")
        check_int(version, f"state {name!r}: schema version", 0, MAX_SCHEMA_VERSION)
        if type is None or type is builtins.type(None):
            raise ConfigurationError(f"state {name!r}: type None cannot hold a state (None means 'no state')")
        if isinstance(migrations, str | bytes) or not isinstance(migrations, Iterable):
            raise ConfigurationError(f"state {name!r}: migrations must be an iterable of Migration")
        by_version: dict[int, Migration[T]] = {}
        for migration in migrations:
            if not isinstance(migration, Migration):
                raise ConfigurationError(
                    f"state {name!r}: migrations must hold Migration objects, got {_type_name(migration)}"
                )
            if migration.version >= version:
                raise ConfigurationError(
                    f"state {name!r}: migration from version {migration.version} is not older "
                    f"than the current version {version}"
                )
            if migration.version in by_version:
                raise ConfigurationError(f"state {name!r}: two migrations from version {migration.version}")
            by_version[migration.version] = migration
        decoder: msgspec.msgpack.Decoder[T] = _decoder(type, f"state {name!r}")
        self._set(
            name=name,
            slot_key=f"clientstate.{name}",
            type=type,
            version=version,
            # Newest first: the order older versions are tried in.
            migrations=tuple(by_version[v] for v in sorted(by_version, reverse=True)),
            immutable=_immutable(type),
            fingerprints={version: fingerprint(type), **{v: fingerprint(m.type) for v, m in by_version.items()}},
            _decoder=decoder,
            _decoders={v: _decoder(m.type, f"migration from version {v}") for v, m in by_version.items()},
            _encoder=msgspec.msgpack.Encoder(order="deterministic"),
            _unordered=msgspec.msgpack.Encoder(),
        )

    @property
    def versions(self) -> tuple[int, ...]:
        """Schema versions accepted, the current one first, then older ones newest first."""
        return (self.version, *(m.version for m in self.migrations))

    def encode(self, value: T) -> bytes:
        """Encode ``value`` canonically (msgspec MessagePack, deterministic order).

        The encoding is checked by decoding it back as the state's type, so a
        value that would not load again is refused here, where the developer
        sees it, rather than logging the user out on the next request.

        Raises:
            StateEncodeError: ``value`` is ``None``, cannot be encoded (a value
                that contains itself, nesting too deep to encode), or does not
                decode as ``type`` (for example a ``str`` in an ``int`` field),
                with msgspec's message naming the field.
        """
        try:
            payload = self._encoder.encode(value)  # the common case of _encode, inlined
        except _ENCODE_ERRORS:
            payload = self._encode(value)[0]
        if value is None:
            raise StateEncodeError(self.name, "None means 'no state' and cannot be encoded")
        try:
            self._decoder.decode(payload)
        except _DECODE_ERRORS as exc:
            raise StateEncodeError(self.name, str(exc)) from None
        return payload

    def _encode(self, value: T) -> tuple[bytes, bool]:
        """``(payload, canonical)``, unchecked; canonical is False if the value could not be sorted."""
        if value is None:
            raise StateEncodeError(self.name, "None means 'no state' and cannot be encoded")
        try:
            try:
                return self._encoder.encode(value), True
            except TypeError:
                # Unorderable set members or map keys: keep iteration order.
                return self._unordered.encode(value), False
        except RecursionError:
            raise StateEncodeError(
                self.name, "the value contains itself (a reference cycle) or nests too deep to encode"
            ) from None
        except _ENCODE_ERRORS as exc:  # RecursionError is caught above, with its own message
            raise StateEncodeError(self.name, str(exc)) from None

    def _check(self, payload: bytes) -> None:
        """Raise :class:`StateEncodeError` unless ``payload`` decodes strictly as the type."""
        try:
            self._decoder.decode(payload)
        except _DECODE_ERRORS as exc:
            raise StateEncodeError(self.name, str(exc)) from None

    def changed(self, loaded_payload: bytes | None, value: T, checked: bytes | None = None) -> bytes | None:
        """The encoding of ``value`` if it differs from the state encoded as ``loaded_payload``, else ``None``.

        Args:
            loaded_payload: the payload that arrived (canonical, current
                version), or ``None`` if no state loaded.
            value: the state the application returns.
            checked: an encoding already checked by :meth:`encode` (the one
                made when the value was assigned); if ``value`` still encodes
                to it, it is not decoded again.

        Raises:
            StateEncodeError: ``value`` is not a valid value of the type.
        """
        payload, canonical = self._encode(value)
        if payload == loaded_payload:
            return None  # the same bytes decoded on load: no need to check them again
        if not canonical and loaded_payload is not None:
            # A fresh decoding, so in-place changes to the loaded object still count.
            # Decoded from the same bytes, it iterates its sets as the loaded
            # object does, so an untouched value re-encodes to the same bytes
            # (this also holds for NaN, which == would call changed).
            before = self.decode(loaded_payload)
            if not isinstance(before, LoadError) and (
                self._unordered.encode(before) == payload or before == value
            ):
                return None
        if payload != checked:
            self._check(payload)
        return payload

    def decode(self, payload: bytes, version: int | None = None) -> T | LoadError:
        """Decode a payload written at schema ``version`` (default: current), migrating it.

        Never raises for bad input.

        Returns:
            the value, or a ``LoadError`` of kind ``state_decode`` (the payload
            does not decode strictly as that version's type; the detail is
            msgspec's message, naming the field) or ``migration_failed``.
        """
        if version is None or version == self.version:
            try:
                return self._decoder.decode(payload)
            except _DECODE_ERRORS as exc:
                return LoadError(ErrorKind.STATE_DECODE, str(exc))
        for migration in self.migrations:
            if migration.version == version:
                return self._migrate(migration, payload)
        return LoadError(ErrorKind.STATE_DECODE, f"no migration from schema version {version}")

    def _migrate(self, migration: Migration[T], payload: bytes) -> T | LoadError:
        try:
            old = self._decoders[migration.version].decode(payload)
        except _DECODE_ERRORS as exc:
            return LoadError(
                ErrorKind.STATE_DECODE, f"as schema version {migration.version}: {exc}"
            )
        try:
            new = migration.upgrade(old)
            # The migrated value must be a valid current value.
            self.encode(new)
        except Exception as exc:  # the application's code: any failure is a load error
            return LoadError(
                ErrorKind.MIGRATION_FAILED,
                f"from schema version {migration.version}: {type(exc).__name__}: {exc}",
            )
        return new

    def equal(self, a: T | None, b: T | None) -> bool:
        """Whether two values (or ``None``) are the same state: equal canonical encodings.

        Raises:
            StateEncodeError: a value cannot be encoded as the state's type.
        """
        if a is None or b is None:
            return a is None and b is None
        return self.changed(self.encode(a), b) is None

    def __repr__(self) -> str:
        return f"State({self.name!r}, {self.type!r}, version={self.version})"
