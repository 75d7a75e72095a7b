"""Why a stream operation was refused: :class:`BatonError`, a value with a stable kind.

Refusals are **returned**, never raised: ``open``, ``resume``, ``release`` and
``kill`` return the result *or* a :class:`BatonError`, so a forged, replayed or
foreign baton (client input) can never become an unhandled exception. Mistakes
of the calling code (a wrong argument type, releasing a stream twice, an async
resource given to the synchronous registry) raise
:class:`~clientstate.ConfigurationError` instead.
"""

from __future__ import annotations

import enum
from typing import Final

from clientstate._core.value import Value

__all__ = ["BatonError", "BatonErrorKind"]


class BatonErrorKind(enum.StrEnum):
    """Every way a stream operation can be refused. The values are stable API.

    Members compare equal to their string value (``error.kind == "baton_reused"``);
    each value is the member's name in lower case.

    ======================  ==================================================
    kind                    meaning
    ======================  ==================================================
    ``bad_baton``           not a baton of this registry: wrong length, not
                            canonical base64url, an unknown version or key id,
                            a failed MAC, an unknown stream, or a stream of
                            another registry (another process, or before a
                            restart: streams live where they were opened)
    ``baton_reused``        authentic, but not the stream's latest baton: a
                            replay, or the loser of two concurrent requests
    ``stream_busy``         the latest baton, handed out early by ``peek``,
                            while its request is still in flight
    ``stream_expired``      the stream has ended (closed, killed, reaped after
                            its idle timeout or maximum lifetime, shut down);
                            answered while its tombstone is kept
    ``principal_mismatch``  authentic, but another principal's stream; nothing
                            is consumed, the owner's baton stays valid
    ``scope_mismatch``      authentic, but issued for another scope (another
                            database, say); nothing is consumed
    ``too_many_streams``    the scope already has ``Limits.max_streams``
                            streams open or opening
    ``registry_closed``     ``close_all`` has run: nothing opens or resumes
    ======================  ==================================================
    """

    BAD_BATON = enum.auto()
    BATON_REUSED = enum.auto()
    STREAM_BUSY = enum.auto()
    STREAM_EXPIRED = enum.auto()
    PRINCIPAL_MISMATCH = enum.auto()
    SCOPE_MISMATCH = enum.auto()
    TOO_MANY_STREAMS = enum.auto()
    REGISTRY_CLOSED = enum.auto()


class BatonError(Value, frozen=True):
    """A refused stream operation. Frozen; compares by ``kind`` and ``detail``.

    Attributes:
        kind: a :class:`BatonErrorKind` (a ``str``, stable snake_case).
        detail: a short English explanation for logs; never contains a baton,
            a key or a principal.
    """

    kind: BatonErrorKind
    detail: str = ""

    def __post_init__(self) -> None:
        Value.force(self, "kind", BatonErrorKind(self.kind))  # a plain string becomes its member

    def __str__(self) -> str:
        return self.kind.value + (f": {self.detail}" if self.detail else "")


def _bad(detail: str) -> BatonError:
    return BatonError(BatonErrorKind.BAD_BATON, detail)


# Shared instances: the refusals whose detail never varies.
WRONG_LENGTH: Final = _bad("not a baton: wrong length or type")
NOT_BASE64: Final = _bad("not canonical unpadded base64url")
BAD_VERSION: Final = _bad("unknown baton version")
UNKNOWN_KEY: Final = _bad("key id not in the keyring")
FORGED: Final = _bad("the baton did not authenticate")
FOREIGN: Final = _bad("the stream was not opened by this registry (another process, or before a restart)")
UNKNOWN_STREAM: Final = _bad("no such stream")
REUSED: Final = BatonError(BatonErrorKind.BATON_REUSED, "this baton was already used")
BUSY: Final = BatonError(BatonErrorKind.STREAM_BUSY, "a request on this stream is still in flight")
PRINCIPAL: Final = BatonError(BatonErrorKind.PRINCIPAL_MISMATCH, "the stream belongs to another principal")
SCOPE: Final = BatonError(BatonErrorKind.SCOPE_MISMATCH, "the stream belongs to another scope")
CLOSED: Final = BatonError(BatonErrorKind.REGISTRY_CLOSED, "the registry was shut down")
