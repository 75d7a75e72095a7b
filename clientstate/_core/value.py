"""The two styles of immutable object, one each for values and for components.

* **Values** (a load result, an error, a key, a keyring, cookie attributes,
  a migration, an opened token) are frozen, slotted ``msgspec.Struct`` s:
  :class:`Value` for the ones built on the request path (construction costs
  about 0.15 µs), :class:`ConfigValue` for the ones an application builds
  itself, whose constructor turns a misspelled or missing argument into a
  :class:`~clientstate.ConfigurationError` naming the accepted ones.
* **Components** (a state descriptor, a handler, a binding) hold codecs and
  caches; they are slotted classes deriving from :class:`Immutable`, which
  refuses every attribute assignment after construction, so that
  ``handler.keyring = other`` fails loudly instead of being ignored by a cached
  codec.
"""

from __future__ import annotations

from typing import Any

import msgspec

__all__ = ["ConfigValue", "Immutable", "Value"]


class Value(msgspec.Struct, frozen=True):
    """Base of frozen, slotted value objects (``msgspec.Struct``, ``frozen=True``)."""

    @staticmethod
    def force(obj: msgspec.Struct, name: str, value: Any) -> None:
        """Set a field while the object is being built (in ``__post_init__``) only."""
        msgspec.structs.force_setattr(obj, name, value)


class _ConfigMeta(msgspec.StructMeta):
    """Struct metaclass whose constructor reports bad arguments as ``ConfigurationError``."""

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().__call__(*args, **kwargs)
        except TypeError as exc:
            from clientstate._core.config import signature_error  # only on the error path: no import cycle

            error = signature_error(cls, cls.__name__, args, kwargs)
            if error is None:
                raise
            raise error from exc


class ConfigValue(Value, frozen=True, metaclass=_ConfigMeta):
    """Base of value objects an application constructs (keys, keyrings, cookie attributes, migrations)."""


class Immutable:
    """Mixin for slotted components: attributes are set once, in ``__init__``, with :meth:`_set`."""

    __slots__ = ()

    def _set(self, **fields: Any) -> None:
        for name, value in fields.items():
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(
            f"{type(self).__name__} objects are immutable: build a new one instead of setting "
            f"{name!r} (for new keys: a new handler, and setup() with it)"
        )

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} objects are immutable: cannot delete {name!r}")
