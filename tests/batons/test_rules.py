"""Every rule of the registry, one by one, with an injected clock and recording resources."""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
from typing import Any

import pytest

from clientstate import ConfigurationError
from clientstate.batons import (
    BATON_CHARS,
    BatonError,
    BatonErrorKind,
    Drained,
    Limits,
    Stream,
    StreamInfo,
    Streams,
    peek_baton,
)
from clientstate.batons.limits import (
    DEFAULT_IDLE_TIMEOUT,
    DEFAULT_MAX_LIFETIME,
    DEFAULT_MAX_STREAMS,
    DEFAULT_MAX_TOMBSTONES,
    DEFAULT_TOMBSTONE_TTL,
)
from clientstate.testing import FrozenClock, fixed_keyring
from tests.batons.support import OWNER, SCOPE, T0, FakeResource, begin, kind, make_streams, step


def test_open_gives_a_busy_stream_whose_release_is_the_first_baton(clock: FrozenClock) -> None:
    streams = make_streams(clock)
    resource = FakeResource()
    seen: list[bool] = []

    def acquire(read_only: bool) -> FakeResource:
        seen.append(read_only)
        return resource

    stream = streams.open(acquire, principal=OWNER, scope=SCOPE, read_only=True)
    assert isinstance(stream, Stream)
    assert (stream.resource, stream.scope, stream.principal, stream.read_only) == (resource, SCOPE, OWNER, True)
    assert seen == [True]
    (info,) = streams.list()
    assert (info.busy, info.generation, info.read_only, info.id) == (True, 0, True, stream.id)
    early = streams.peek(stream)
    baton = streams.release(stream)
    assert baton == early
    assert isinstance(baton, str)
    assert len(baton) == BATON_CHARS == 78
    fields = peek_baton(baton)
    assert not isinstance(fields, BatonError)
    assert (fields.key_id, fields.stream_id, fields.generation) == (1, stream.id, 0)
    assert resource.calls == []


def test_every_release_rotates_and_the_previous_baton_is_reused(clock: FrozenClock) -> None:
    streams = make_streams(clock)
    first, _ = begin(streams)
    second = step(streams, first)
    third = step(streams, second)
    assert len({first, second, third}) == 3
    assert [peek_baton(b).generation for b in (first, second, third)] == [0, 1, 2]  # type: ignore[union-attr]
    for old in (first, second):
        refused = streams.resume(old, scope=SCOPE, principal=OWNER)
        assert refused == BatonError(BatonErrorKind.BATON_REUSED, "this baton was already used")
    assert kind(streams.resume(third, scope=SCOPE, principal=OWNER)) == "ok"


def test_wrong_principal_or_scope_is_refused_before_the_generation_is_consumed(clock: FrozenClock) -> None:
    streams = make_streams(clock)
    baton, _ = begin(streams)
    for _ in range(3):
        assert kind(streams.resume(baton, scope=SCOPE, principal="mallory")) == "principal_mismatch"
        assert kind(streams.resume(baton, scope="other-db", principal=OWNER)) == "scope_mismatch"
        assert kind(streams.resume(baton, scope="other-db", principal="mallory")) == "scope_mismatch"
    (info,) = streams.list()
    assert (info.generation, info.busy) == (0, False)
    # The owner's baton was never burnt.
    assert kind(streams.resume(baton, scope=SCOPE, principal=OWNER)) == "ok"


def test_principal_comparison_is_exact(clock: FrozenClock) -> None:
    streams = make_streams(clock)
    baton, _ = begin(streams, principal="ada")
    for other in ("Ada", "ada ", "ad", "ada\x00", "\ud800"):
        assert kind(streams.resume(baton, scope=SCOPE, principal=other)) == "principal_mismatch"
    assert kind(streams.resume(baton, scope=SCOPE, principal="ada")) == "ok"


def test_peeked_baton_is_busy_until_release_then_resumes(clock: FrozenClock) -> None:
    streams = make_streams(clock)
    baton, _ = begin(streams)
    stream = streams.resume(baton, scope=SCOPE, principal=OWNER)
    assert isinstance(stream, Stream)
    early = streams.peek(stream)
    assert streams.resume(early, scope=SCOPE, principal=OWNER) == BatonError(
        BatonErrorKind.STREAM_BUSY, "a request on this stream is still in flight"
    )
    assert kind(streams.resume(baton, scope=SCOPE, principal=OWNER)) == "baton_reused"
    assert streams.release(stream) == early
    assert kind(streams.resume(early, scope=SCOPE, principal=OWNER)) == "ok"


def test_idle_timeout_ends_the_stream_at_resume(clock: FrozenClock) -> None:
    streams = make_streams(clock, idle_timeout=5)
    baton, resource = begin(streams)
    clock.advance(5)  # exactly the timeout: still alive
    baton = step(streams, baton)
    clock.advance(5.001)
    refused = streams.resume(baton, scope=SCOPE, principal=OWNER)
    assert isinstance(refused, BatonError)
    assert refused.kind is BatonErrorKind.STREAM_EXPIRED
    assert "idle timeout of 5 s" in refused.detail
    assert resource.calls == ["rollback", "close"]
    assert streams.list() == ()
    # The tombstone keeps answering stream_expired.
    assert kind(streams.resume(baton, scope=SCOPE, principal=OWNER)) == "stream_expired"


def test_max_lifetime_ends_a_kept_alive_stream(clock: FrozenClock) -> None:
    streams = make_streams(clock, idle_timeout=10, max_lifetime=30)
    baton, resource = begin(streams)
    for _ in range(5):  # a keep-alive every 6 s: never idle for long
        clock.advance(6)
        baton = step(streams, baton)
    clock.advance(6)  # 36 s since open
    refused = streams.resume(baton, scope=SCOPE, principal=OWNER)
    assert kind(refused) == "stream_expired"
    assert "maximum lifetime of 30 s" in str(refused)
    assert resource.calls == ["rollback", "close"]


def test_reaper_pass_ends_idle_and_old_streams_only(clock: FrozenClock) -> None:
    streams = make_streams(clock, idle_timeout=5, max_lifetime=20)
    idle, idle_res = begin(streams, principal="a")
    fresh, fresh_res = begin(streams, principal="b")
    clock.advance(4)
    fresh = step(streams, fresh, principal="b")
    clock.advance(2)  # idle: 6 s; fresh: 2 s
    assert streams.reap() == 1
    assert idle_res.calls == ["rollback", "close"]
    assert fresh_res.calls == []
    assert [i.principal for i in streams.list()] == ["b"]
    assert kind(streams.resume(idle, scope=SCOPE, principal="a")) == "stream_expired"
    fresh = step(streams, fresh, principal="b")
    for _ in range(3):
        clock.advance(4)
        fresh = step(streams, fresh, principal="b")
    clock.advance(4)
    assert streams.reap() == 1  # 22 s old: past the lifetime although used 4 s ago
    assert fresh_res.calls == ["rollback", "close"]


@pytest.mark.parametrize("value", [0, 0.0, -1, -1e9, float("-inf")])
def test_non_positive_settings_mean_the_safe_defaults(clock: FrozenClock, value: float) -> None:
    limits = Limits(idle_timeout=value, max_lifetime=value, max_streams=int(value) if value > -10 else -5,
                    tombstone_ttl=value, max_tombstones=-1)
    assert limits == Limits(DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_LIFETIME, DEFAULT_MAX_STREAMS,
                            DEFAULT_TOMBSTONE_TTL, DEFAULT_MAX_TOMBSTONES)
    streams: Streams[FakeResource] = Streams(fixed_keyring(1), limits, clock=clock)
    baton, resource = begin(streams)
    clock.advance(1)
    assert streams.reap() == 0  # never "reap everything"
    assert resource.calls == []
    assert kind(streams.resume(baton, scope=SCOPE, principal=OWNER)) == "ok"


@pytest.mark.parametrize(
    "arguments",
    [{"idle_timeout": "5"}, {"max_lifetime": float("nan")}, {"max_lifetime": float("inf")}, {"max_streams": 2.5},
     {"max_streams": True}, {"tombstone_ttl": None}, {"idle_timeout": 2**33}, {"idle": 5}],
)
def test_bad_limits_are_configuration_errors(arguments: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        Limits(**arguments)  # type: ignore[arg-type]


def test_busy_stream_is_skipped_by_reaper_refused_by_kill_and_left_by_close_all(clock: FrozenClock) -> None:
    streams = make_streams(clock, idle_timeout=5, max_lifetime=20)
    baton, resource = begin(streams)
    idle_baton, idle_res = begin(streams, principal="b")
    stream = streams.resume(baton, scope=SCOPE, principal=OWNER)
    assert isinstance(stream, Stream)
    clock.advance(100)
    assert streams.reap() == 1  # only the idle one
    assert idle_res.calls == ["rollback", "close"]
    assert streams.kill(stream.id) == BatonError(BatonErrorKind.STREAM_BUSY,
                                                 "a request on this stream is still in flight")
    assert resource.calls == []
    assert streams.close_all() == Drained(closed=0, failed=0, busy=1)
    assert resource.calls == []
    assert [i.busy for i in streams.list()] == [True]
    # The request ends: the stream is ended then, and the answer says why.
    assert kind(streams.release(stream)) == "registry_closed"
    assert resource.calls == ["rollback", "close"]
    assert streams.list() == ()
    assert kind(streams.resume(idle_baton, scope=SCOPE, principal="b")) == "registry_closed"


def test_close_all_ends_every_idle_stream_before_returning_and_refuses_afterwards(clock: FrozenClock) -> None:
    streams = make_streams(clock)
    batons = [begin(streams, principal=f"user{i}") for i in range(5)]
    drained = streams.close_all()
    assert drained == Drained(closed=5, failed=0, busy=0, unfinished=0)
    assert all(res.calls == ["rollback", "close"] for _, res in batons)
    assert streams.closed
    assert kind(streams.resume(batons[0][0], scope=SCOPE, principal="user0")) == "registry_closed"
    assert kind(streams.open(lambda ro: FakeResource(), principal=OWNER, scope=SCOPE)) == "registry_closed"
    assert kind(streams.kill(streams.list()[0].id if streams.list() else "A" * 22)) == "registry_closed"
    assert streams.close_all() == Drained(closed=0, failed=0, busy=0)  # idempotent


def test_close_all_waits_for_an_ending_started_elsewhere(clock: FrozenClock) -> None:
    streams = make_streams(clock)
    slow = FakeResource()
    slow.rollback_may_finish = threading.Event()
    begin(streams, resource=slow)
    (info,) = streams.list()
    killed: list[object] = []
    killer = threading.Thread(target=lambda: killed.append(streams.kill(info.id)))
    killer.start()
    assert slow.rollback_started.wait(10)
    results: list[Drained] = []
    closer = threading.Thread(target=lambda: results.append(streams.close_all(timeout=20)))
    closer.start()
    closer.join(0.3)
    assert closer.is_alive(), "close_all returned while a rollback was still running"
    assert results == []
    slow.rollback_may_finish.set()
    closer.join(10)
    killer.join(10)
    assert results == [Drained(closed=0, failed=0, busy=0, unfinished=0)]
    assert slow.calls == ["rollback", "close"]
    assert isinstance(killed[0], StreamInfo)
    assert killed[0].id == info.id


def test_close_all_reports_endings_that_outlast_its_timeout(clock: FrozenClock) -> None:
    streams = make_streams(clock)
    slow = FakeResource()
    slow.rollback_may_finish = threading.Event()
    begin(streams, resource=slow)
    (info,) = streams.list()
    killer = threading.Thread(target=streams.kill, args=(info.id,))
    killer.start()
    assert slow.rollback_started.wait(10)
    assert streams.close_all(timeout=0.05) == Drained(closed=0, failed=0, busy=0, unfinished=1)
    slow.rollback_may_finish.set()
    killer.join(10)
    assert slow.calls == ["rollback", "close"]


def test_cap_is_per_scope_and_freed_when_the_resource_is_closed(clock: FrozenClock) -> None:
    streams = make_streams(clock, max_streams=2)
    first, _ = begin(streams, principal="a")
    begin(streams, principal="b")
    refused = streams.open(lambda ro: FakeResource(), principal="c", scope=SCOPE)
    assert refused == BatonError(BatonErrorKind.TOO_MANY_STREAMS,
                                 "the scope has 2 streams open or opening (max_streams=2)")
    begin(streams, principal="c", scope="other-db")  # another scope has its own places
    stream = streams.resume(first, scope=SCOPE, principal="a")
    assert isinstance(stream, Stream)
    streams.close(stream)
    begin(streams, principal="c")


def test_cap_is_reserved_before_the_resource_is_acquired(clock: FrozenClock) -> None:
    streams = make_streams(clock, max_streams=1)
    entered, may_return = threading.Event(), threading.Event()
    acquired: list[int] = []

    def slow_acquire(read_only: bool) -> FakeResource:
        acquired.append(1)
        entered.set()
        assert may_return.wait(10)
        return FakeResource()

    results: list[object] = []
    opener = threading.Thread(target=lambda: results.append(streams.open(slow_acquire, principal="a", scope=SCOPE)))
    opener.start()
    assert entered.wait(10)

    def never(read_only: bool) -> FakeResource:
        raise AssertionError("acquired past the cap")

    # The first open is still acquiring: its place is taken, so the cap (not a pool) refuses.
    assert kind(streams.open(never, principal="b", scope=SCOPE)) == "too_many_streams"
    may_return.set()
    opener.join(10)
    assert isinstance(results[0], Stream)
    assert acquired == [1]


def test_a_failed_acquire_frees_its_place_and_propagates(clock: FrozenClock) -> None:
    streams = make_streams(clock, max_streams=1)

    def broken(read_only: bool) -> FakeResource:
        raise OSError("no connection")

    with pytest.raises(OSError, match="no connection"):
        streams.open(broken, principal=OWNER, scope=SCOPE)
    with pytest.raises(ConfigurationError, match="no rollback"):
        streams.open(lambda ro: object(), principal=OWNER, scope=SCOPE)  # type: ignore[arg-type, return-value]
    begin(streams)  # the place is free again
    assert len(streams.list()) == 1


def test_the_place_stays_taken_until_the_resource_is_closed(clock: FrozenClock) -> None:
    streams = make_streams(clock, max_streams=1)
    slow = FakeResource()
    slow.rollback_may_finish = threading.Event()
    begin(streams, resource=slow)
    (info,) = streams.list()
    killer = threading.Thread(target=streams.kill, args=(info.id,))
    killer.start()
    assert slow.rollback_started.wait(10)
    assert streams.list() == ()  # out of the registry, but its connection is not back yet
    assert kind(streams.open(lambda ro: FakeResource(), principal="b", scope=SCOPE)) == "too_many_streams"
    slow.rollback_may_finish.set()
    killer.join(10)
    begin(streams, principal="b")


def test_ended_streams_leave_tombstones_for_a_while(clock: FrozenClock) -> None:
    streams = make_streams(clock, idle_timeout=5, tombstone_ttl=60)
    killed, _ = begin(streams, principal="k")
    closed, _ = begin(streams, principal="c")
    reaped, _ = begin(streams, principal="r")
    killed_id = next(i.id for i in streams.list() if i.principal == "k")
    assert isinstance(streams.kill(killed_id), StreamInfo)
    stream = streams.resume(closed, scope=SCOPE, principal="c")
    assert isinstance(stream, Stream)
    closed_next = streams.peek(stream)
    streams.close(stream)
    clock.advance(6)
    assert streams.reap() == 1
    answers = {
        "killed": streams.resume(killed, scope=SCOPE, principal="k"),
        "closed": streams.resume(closed_next, scope=SCOPE, principal="c"),
        "reaped": streams.resume(reaped, scope=SCOPE, principal="r"),
    }
    assert {name: kind(a) for name, a in answers.items()} == dict.fromkeys(answers, "stream_expired")
    assert "killed" in str(answers["killed"])
    assert "closed" in str(answers["closed"])
    assert "idle" in str(answers["reaped"])
    assert kind(streams.kill(killed_id)) == "stream_expired"
    clock.advance(61)
    streams.reap()  # prunes the tombstones
    for baton, who in ((killed, "k"), (closed_next, "c"), (reaped, "r")):
        assert streams.resume(baton, scope=SCOPE, principal=who) == BatonError(BatonErrorKind.BAD_BATON,
                                                                               "no such stream")
    assert kind(streams.kill(killed_id)) == "bad_baton"


def test_tombstones_are_bounded(clock: FrozenClock) -> None:
    streams = make_streams(clock, max_tombstones=2)
    batons = []
    for name in "abc":
        baton, _ = begin(streams, principal=name)
        stream = streams.resume(baton, scope=SCOPE, principal=name)
        assert isinstance(stream, Stream)
        batons.append(streams.peek(stream))
        streams.close(stream)
    assert [kind(streams.resume(b, scope=SCOPE, principal=n)) for b, n in zip(batons, "abc", strict=True)] == [
        "bad_baton", "stream_expired", "stream_expired"]


def test_a_tombstone_does_not_vouch_for_a_forged_baton(clock: FrozenClock) -> None:
    streams = make_streams(clock)
    baton, _ = begin(streams)
    stream = streams.resume(baton, scope=SCOPE, principal=OWNER)
    assert isinstance(stream, Stream)
    nxt = streams.peek(stream)
    streams.close(stream)
    forged = nxt[:-3] + ("AAA" if nxt[-3:] != "AAA" else "BAA")
    assert streams.resume(forged, scope=SCOPE, principal=OWNER) == BatonError(
        BatonErrorKind.BAD_BATON, "the baton did not authenticate")


def test_batons_of_another_registry_or_process_are_bad(clock: FrozenClock) -> None:
    keyring = fixed_keyring(1)
    here: Streams[FakeResource] = Streams(keyring, clock=clock)
    there: Streams[FakeResource] = Streams(keyring, clock=clock)  # another process, or this one restarted
    baton, _ = begin(here)
    refused = there.resume(baton, scope=SCOPE, principal=OWNER)
    assert refused == BatonError(
        BatonErrorKind.BAD_BATON,
        "the stream was not opened by this registry (another process, or before a restart)")
    assert kind(here.resume(baton, scope=SCOPE, principal=OWNER)) == "ok"


def test_key_rotation_resumes_old_batons_and_issues_under_the_current_key(clock: FrozenClock) -> None:
    streams: Streams[FakeResource] = Streams(fixed_keyring(1), clock=clock)
    baton, _ = begin(streams)
    assert peek_baton(baton).key_id == 1  # type: ignore[union-attr]
    streams.rotate(fixed_keyring(2, 1))
    assert streams.keyring.current.key_id == 2
    nxt = step(streams, baton)  # verified under key 1 ...
    assert peek_baton(nxt).key_id == 2  # type: ignore[union-attr]  # ... and followed under key 2
    later = step(streams, nxt)
    streams.rotate(fixed_keyring(3))  # keys 1 and 2 retired
    assert streams.resume(later, scope=SCOPE, principal=OWNER) == BatonError(
        BatonErrorKind.BAD_BATON, "key id not in the keyring")


def test_a_forged_tag_on_a_live_stream_is_bad_and_consumes_nothing(clock: FrozenClock) -> None:
    streams = make_streams(clock)
    baton, _ = begin(streams)
    other: Streams[FakeResource] = Streams(fixed_keyring(9), clock=clock)  # another secret, same key id layout
    stranger, _ = begin(other)
    spliced = baton[:35] + stranger[35:]  # our stream id and generation, another key's tag
    assert kind(streams.resume(spliced, scope=SCOPE, principal=OWNER)) == "bad_baton"
    assert kind(streams.resume(baton, scope=SCOPE, principal=OWNER)) == "ok"


@pytest.mark.parametrize("junk", [None, 7, b"x" * 78, "", "A" * 77, "A" * 79, "=" * 78, " " * 78, ["x"]])
def test_any_client_value_is_a_bad_baton_never_an_exception(clock: FrozenClock, junk: object) -> None:
    streams = make_streams(clock)
    begin(streams)
    assert kind(streams.resume(junk, scope=SCOPE, principal=OWNER)) == "bad_baton"


def test_stale_handles_are_refused_and_never_reach_the_next_holder(clock: FrozenClock) -> None:
    streams = make_streams(clock)
    baton, resource = begin(streams)
    first = streams.resume(baton, scope=SCOPE, principal=OWNER)
    assert isinstance(first, Stream)
    nxt = streams.release(first)
    assert isinstance(nxt, str)
    with pytest.raises(ConfigurationError, match="no longer held"):
        streams.release(first)
    second = streams.resume(nxt, scope=SCOPE, principal=OWNER)
    assert isinstance(second, Stream)
    for operation in (streams.release, streams.close, streams.peek):
        with pytest.raises(ConfigurationError, match="no longer held"):
            operation(first)
    assert resource.calls == []
    assert [i.busy for i in streams.list()] == [True]
    with pytest.raises(ConfigurationError, match="takes the Stream"):
        streams.release("not a stream")  # type: ignore[arg-type]
    with pytest.raises(AttributeError, match="immutable"):
        second.resource = FakeResource()  # type: ignore[misc]


@pytest.mark.parametrize(("principal", "scope"), [("", SCOPE), (OWNER, ""), (7, SCOPE), (OWNER, None),
                                                  ("\udc80", SCOPE), ("x" * 4097, SCOPE)])
def test_bad_principal_or_scope_is_a_configuration_error(clock: FrozenClock, principal: object,
                                                         scope: object) -> None:
    streams = make_streams(clock)
    with pytest.raises(ConfigurationError):
        streams.open(lambda ro: FakeResource(), principal=principal, scope=scope)  # type: ignore[arg-type]
    baton, _ = begin(streams)
    if not isinstance(principal, str) or not isinstance(scope, str):
        with pytest.raises(ConfigurationError):
            streams.resume(baton, scope=scope, principal=principal)  # type: ignore[arg-type]
    assert streams.list()[0].busy is False


def test_bad_registry_arguments_are_configuration_errors(clock: FrozenClock) -> None:
    with pytest.raises(ConfigurationError, match="keyring"):
        Streams("1:abc", clock=clock)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="limits"):
        Streams(fixed_keyring(1), {"idle_timeout": 5}, clock=clock)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="clock"):
        Streams(fixed_keyring(1), clock=5)  # type: ignore[arg-type]
    streams = make_streams(clock)
    with pytest.raises(ConfigurationError, match="acquire"):
        streams.open("connect", principal=OWNER, scope=SCOPE)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="read_only"):
        streams.open(lambda ro: FakeResource(), principal=OWNER, scope=SCOPE, read_only="yes")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="where"):
        streams.list(where=5)  # type: ignore[arg-type]


def test_kill_ends_an_idle_stream_and_reports_it(clock: FrozenClock) -> None:
    streams = make_streams(clock)
    baton, resource = begin(streams)
    clock.advance(3)
    (info,) = streams.list()
    assert (info.age, info.idle_for, info.busy) == (3.0, 3.0, False)
    killed = streams.kill(info.id)
    assert killed == info
    assert resource.calls == ["rollback", "close"]
    assert kind(streams.resume(baton, scope=SCOPE, principal=OWNER)) == "stream_expired"
    for bad in ("nope", "A" * 22, "A" * 21 + "B", 5):
        assert kind(streams.kill(bad)) == "bad_baton"  # type: ignore[arg-type]


def test_list_filters_and_snapshots(clock: FrozenClock) -> None:
    streams = make_streams(clock)
    begin(streams, principal="a")
    clock.advance(1)
    begin(streams, principal="b", scope="other")
    mine = streams.list(lambda info: info.principal == "a")
    assert [(i.principal, i.scope, i.age) for i in mine] == [("a", SCOPE, 1.0)]
    assert {i.scope for i in streams.list()} == {SCOPE, "other"}


def test_a_failing_rollback_still_closes_and_is_reported(clock: FrozenClock, caplog: pytest.LogCaptureFixture) -> None:
    streams = make_streams(clock, idle_timeout=5)
    baton, bad = begin(streams, resource=FakeResource(fail_rollback=True))
    stream = streams.resume(baton, scope=SCOPE, principal=OWNER)
    assert isinstance(stream, Stream)
    with pytest.raises(RuntimeError, match="rollback failed"):
        streams.close(stream)
    assert bad.calls == ["rollback", "close"]
    # Reaper and close_all log and count instead of raising.
    begin(streams, principal="r", resource=FakeResource(fail_rollback=True))
    begin(streams, principal="s", resource=FakeResource(fail_close=True))
    clock.advance(6)
    with caplog.at_level(logging.WARNING, logger="clientstate.batons"):
        assert streams.reap() == 2
    assert caplog.text.count("ending its resource failed") == 2
    begin(streams, principal="t", resource=FakeResource(fail_close=True))
    assert streams.close_all() == Drained(closed=0, failed=1, busy=0)
    begin_after = streams.open(lambda ro: FakeResource(), principal=OWNER, scope=SCOPE)
    assert kind(begin_after) == "registry_closed"


def test_an_expired_stream_found_by_resume_never_raises_its_resource_error(clock: FrozenClock) -> None:
    streams = make_streams(clock, idle_timeout=5)
    baton, bad = begin(streams, resource=FakeResource(fail_rollback=True, fail_close=True))
    clock.advance(6)
    assert kind(streams.resume(baton, scope=SCOPE, principal=OWNER)) == "stream_expired"
    assert bad.calls == ["rollback", "close"]


def test_an_open_racing_close_all_ends_its_resource(clock: FrozenClock) -> None:
    streams = make_streams(clock)
    entered, may_return = threading.Event(), threading.Event()
    resource = FakeResource()

    def slow(read_only: bool) -> FakeResource:
        entered.set()
        assert may_return.wait(10)
        return resource

    results: list[object] = []
    opener = threading.Thread(target=lambda: results.append(streams.open(slow, principal=OWNER, scope=SCOPE)))
    opener.start()
    assert entered.wait(10)
    assert streams.close_all() == Drained(closed=0, failed=0, busy=0)
    may_return.set()
    opener.join(10)
    assert kind(results[0]) == "registry_closed"
    assert resource.calls == ["rollback", "close"]


def test_an_async_resource_in_the_blocking_registry_is_a_configuration_error(clock: FrozenClock) -> None:
    class Async:
        async def rollback(self) -> None:
            return None

        async def close(self) -> None:
            return None

    streams: Streams[Async] = Streams(fixed_keyring(1), clock=clock)  # its methods return objects: awaitables
    stream = streams.open(lambda ro: Async(), principal=OWNER, scope=SCOPE)
    assert isinstance(stream, Stream)
    with pytest.raises(ConfigurationError, match="AsyncStreams"):
        streams.close(stream)


def test_the_reaper_thread_runs_passes_and_stops(clock: FrozenClock) -> None:
    streams = make_streams(clock, idle_timeout=5)
    _baton, resource = begin(streams)
    clock.advance(6)
    ended: list[int] = []
    done = threading.Event()

    def counted(count: int) -> None:
        ended.append(count)
        if sum(ended) >= 1:
            done.set()

    streams.start_reaper(0.01, on_pass=counted)
    with pytest.raises(ConfigurationError, match="already running"):
        streams.start_reaper(0.01)
    assert done.wait(10)
    assert streams.stop_reaper(10)
    assert resource.calls == ["rollback", "close"]
    assert sum(ended) == 1
    assert streams.stop_reaper() is True  # already stopped
    with pytest.raises(ConfigurationError, match="interval"):
        streams.start_reaper("fast")  # type: ignore[arg-type]


def test_context_manager_closes_all(clock: FrozenClock) -> None:
    with make_streams(clock) as streams:
        _, resource = begin(streams)
    assert streams.closed
    assert resource.calls == ["rollback", "close"]
    assert "closed" in repr(streams)


def test_start_instant_is_the_clock_not_the_wall(clock: FrozenClock) -> None:
    clock.set(T0 + 500)
    streams = make_streams(clock)
    begin(streams)
    clock.advance(2.5)
    assert streams.list()[0].age == 2.5


FORK_SCRIPT = """
import os, sys
from clientstate.batons import Streams
from clientstate.testing import fixed_keyring

class Resource:
    def rollback(self): raise SystemExit("the child rolled back its parent's resource")
    def close(self): raise SystemExit("the child closed its parent's resource")

streams = Streams(fixed_keyring(1))
stream = streams.open(lambda ro: Resource(), principal="alice", scope="db")
baton = streams.release(stream)
pid = os.fork()
if pid == 0:
    answer = streams.resume(baton, scope="db", principal="alice")
    fresh = streams.open(lambda ro: Resource(), principal="bob", scope="db")
    ok = (answer.kind == "bad_baton" and "another process" in answer.detail and streams.list()[0].principal == "bob"
          and fresh.id[:10] != stream.id[:10])
    os._exit(0 if ok else 3)
_, status = os.waitpid(pid, 0)
again = streams.resume(baton, scope="db", principal="alice")
print(os.waitstatus_to_exitcode(status), type(again).__name__)
"""


def test_a_forked_child_forgets_its_parents_streams_and_draws_a_new_boot() -> None:
    done = subprocess.run([sys.executable, "-c", FORK_SCRIPT], capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["0", "Stream"]  # the child refused the baton; the parent still resumes it


@pytest.mark.parametrize("reading", [float("nan"), float("-inf"), True])
def test_a_clock_reading_that_is_not_a_finite_number_is_refused_where_it_is_read(reading: Any) -> None:
    # NaN compares false with every idle deadline: trusted, a stream would never time out.
    streams: Streams[FakeResource] = Streams(fixed_keyring(1), Limits(max_streams=1), clock=lambda: reading)
    acquired: list[FakeResource] = []

    def acquire(read_only: bool) -> FakeResource:
        acquired.append(FakeResource())
        return acquired[-1]

    refused = r"the baton registry clock returned .*seconds \(like time.monotonic"
    for _ in range(2):  # the place was not kept: max_streams=1 does not refuse the second try
        with pytest.raises(ConfigurationError, match=refused):
            streams.open(acquire, principal=OWNER, scope=SCOPE)
    assert acquired == []  # read before acquire: no resource was made, so none is left open


def test_a_clock_that_breaks_while_a_stream_is_held_leaves_nothing_busy_or_open(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # release, close and close_all free things: they log a bad reading and go on with time.monotonic.
    readings: list[Any] = [float(T0)]
    streams: Streams[FakeResource] = Streams(fixed_keyring(1), Limits(max_streams=2), clock=lambda: readings[0])
    first = streams.open(lambda read_only: FakeResource(), principal=OWNER, scope=SCOPE)
    second = streams.open(lambda read_only: FakeResource(), principal=OWNER, scope=SCOPE)
    assert isinstance(first, Stream)
    assert isinstance(second, Stream)
    readings[0] = float("nan")
    baton = streams.release(first)
    assert isinstance(baton, str)  # idle again, not stuck busy
    streams.close(second)
    assert second.resource.calls == ["rollback", "close"]
    drained = streams.close_all(timeout=5.0)
    assert (drained.closed, drained.failed, drained.busy) == (1, 0, 0)
    assert first.resource.calls == ["rollback", "close"]
    assert drained.unfinished == 0
    assert caplog.text.count("the baton registry clock returned nan") >= 3
