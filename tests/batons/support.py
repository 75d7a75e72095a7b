"""Shared pieces of the baton tests: recording resources, a registry factory, baton surgery."""

from __future__ import annotations

import threading
from typing import Final

from clientstate._core.base64url import b64url_decode, b64url_encode
from clientstate.batons import BatonError, Limits, Stream, Streams
from clientstate.testing import FrozenClock, fixed_keyring

#: The instant every registry clock starts at (seconds; a monotonic clock's value is arbitrary).
T0: Final = 1_000.0
SCOPE: Final = "db"
OWNER: Final = "alice"


class FakeResource:
    """Records ``rollback``/``close`` calls; can fail either, or block its rollback until released."""

    def __init__(self, *, fail_rollback: bool = False, fail_close: bool = False) -> None:
        self.calls: list[str] = []
        self.fail_rollback = fail_rollback
        self.fail_close = fail_close
        self.rollback_started = threading.Event()
        self.rollback_may_finish: threading.Event | None = None

    def rollback(self) -> None:
        self.calls.append("rollback")
        self.rollback_started.set()
        if self.rollback_may_finish is not None:
            assert self.rollback_may_finish.wait(10), "the test never let the rollback finish"
        if self.fail_rollback:
            raise RuntimeError("rollback failed")

    def close(self) -> None:
        self.calls.append("close")
        if self.fail_close:
            raise RuntimeError("close failed")


class AsyncFakeResource:
    """The async form of :class:`FakeResource` (records calls)."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    async def rollback(self) -> None:
        self.calls.append("rollback")

    async def close(self) -> None:
        self.calls.append("close")


def make_streams(clock: FrozenClock | None = None, **limits: float) -> Streams[FakeResource]:
    """Blocking streams under fixed key 1 with the given limits, on ``clock`` (a new frozen one by default)."""
    return Streams(fixed_keyring(1), Limits(**limits), clock=clock or FrozenClock(T0))  # type: ignore[arg-type]


def begin(streams: Streams[FakeResource], principal: str = OWNER, scope: str = SCOPE,
          resource: FakeResource | None = None) -> tuple[str, FakeResource]:
    """Open a stream on a new (or given) fake resource and release it: ``(first baton, resource)``."""
    res = resource or FakeResource()
    stream = streams.open(lambda read_only: res, principal=principal, scope=scope)
    assert isinstance(stream, Stream), stream
    baton = streams.release(stream)
    assert isinstance(baton, str), baton
    return baton, res


def step(streams: Streams[FakeResource], baton: str, principal: str = OWNER, scope: str = SCOPE) -> str:
    """One request: resume with ``baton``, release; the next baton (fails the test on a refusal)."""
    stream = streams.resume(baton, scope=scope, principal=principal)
    assert isinstance(stream, Stream), stream
    nxt = streams.release(stream)
    assert isinstance(nxt, str), nxt
    return nxt


def kind(result: object) -> str:
    """The refusal kind of ``result``, or ``"ok"`` for a stream or a baton."""
    return result.kind.value if isinstance(result, BatonError) else "ok"


def raw(baton: str) -> bytes:
    """The 58 bytes of a baton."""
    data = b64url_decode(baton)
    assert data is not None
    assert len(data) == 58
    return data


def text(data: bytes) -> str:
    """Bytes back to baton text."""
    return b64url_encode(data)
