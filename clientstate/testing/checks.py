"""Ready-made properties of a state and its handler, each one call.

Every check draws values with :mod:`clientstate.testing.strategies`, runs
them through the real code path, ``Binding`` (the core of every ``setup()``)
and a handler, and raises ``AssertionError`` with a message that names the
value (and, for sizes, the field) when the property does not hold:

* :func:`check_round_trip`: saving a value and loading the cookie gives the
  same value (equal canonical encodings, :meth:`State.equal`).
* :func:`check_stable`: saving a loaded value unchanged (the loaded object, the
  value it came from, or a fresh copy) writes no ``Set-Cookie``.
* :func:`check_migrations`: every value of every older schema version loads,
  migrates into a valid current value, is re-issued at the current version,
  and then round-trips and is stable.
* :func:`check_fits_cookie`: no value overflows the 4096-byte cookie limit:
  fields with no size bound are named (with the size at which they overflow),
  the largest value of the type is built and saved, and a Hypothesis search
  steered toward large values looks for more.
* :func:`check_all`: all four, reporting every failure together.

``handler`` is a :class:`~clientstate.handler.Handler`, a list of them, or
``None`` for two ``client_stored`` handlers on a fixed test keyring, one per
mode (authenticated and encrypted), with the cookie name ``"session"``. Pass
your own handler to check its exact configuration (cookie name, mode,
``expires_in``, ``validate``...). Time comes from ``clock`` (default a
:class:`~clientstate.testing.FrozenClock`), so no check depends on the wall clock.

Call the checks from a plain test function, not from inside ``@given``.
"""

from __future__ import annotations

import reprlib
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Final

import msgspec.inspect as mi
from hypothesis import HealthCheck, given, reject, settings, target
from hypothesis import seed as hypothesis_seed
from hypothesis.strategies import SearchStrategy

from clientstate.cookies import MAX_COOKIE_BYTES
from clientstate.errors import CookieTooLarge
from clientstate.handler import ClientStored, Handler, client_stored
from clientstate.session import Binding, Clock
from clientstate.state import State
from clientstate.testing._extremes import Extremes, NoValueError, encoded_size
from clientstate.testing._types import Growth, growth_paths, render_path, root_label, type_info, unwrap
from clientstate.testing.clock import FrozenClock
from clientstate.testing.keys import fixed_keyring
from clientstate.testing.strategies import old_states, states

__all__ = ["check_all", "check_fits_cookie", "check_migrations", "check_round_trip", "check_stable"]

#: The cookie name of the default handlers.
DEFAULT_COOKIE: Final = "session"
#: Units (characters, items...) beyond which growth is no longer measured.
_GROW_LIMIT: Final = 1 << 20

_repr = reprlib.Repr()
_repr.maxstring = 80
_repr.maxother = 200
_repr.maxlist = _repr.maxdict = _repr.maxset = _repr.maxfrozenset = _repr.maxtuple = 6
_repr.maxlevel = 4


def show(value: Any) -> str:
    """A ``repr`` of ``value`` shortened for messages."""
    return _repr.repr(value)


def default_handlers() -> list[Handler]:
    """The handlers checks use when given none: ``client_stored`` in each mode, fixed keys."""
    keyring = fixed_keyring(1)
    return [
        client_stored(keyring, name=DEFAULT_COOKIE),
        client_stored(keyring, name=DEFAULT_COOKIE, encrypted=True),
    ]


def _handlers(handler: Handler | Sequence[Handler] | None) -> list[Handler]:
    if handler is None:
        return default_handlers()
    if isinstance(handler, Sequence):
        handlers = list(handler)
        if handlers and all(_is_handler(h) for h in handlers):
            return handlers
    elif _is_handler(handler):
        return [handler]
    raise TypeError(f"handler must be a clientstate Handler, a list of them, or None; got {handler!r}")


def _is_handler(candidate: object) -> bool:
    return all(callable(getattr(candidate, method, None)) for method in ("prepare", "load", "save"))


def describe(handler: Handler) -> str:
    """``"authenticated handler, cookie 'session'"`` for a ClientStored handler, else ``repr``."""
    if isinstance(handler, ClientStored):
        if getattr(handler, "chunked", False):
            chunks = getattr(handler, "max_chunks", "?")
            return f"{handler.mode.name.lower()} handler, cookie {handler.name!r} chunked into up to {chunks}"
        return f"{handler.mode.name.lower()} handler, cookie {handler.name!r}"
    return repr(handler)


def _settings(max_examples: int) -> settings:
    if isinstance(max_examples, bool) or not isinstance(max_examples, int) or max_examples < 1:
        raise ValueError(f"max_examples must be an integer >= 1, got {max_examples!r}")
    return settings(
        max_examples=max_examples,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


def _run(test: Callable[..., None], strategy: SearchStrategy[Any], max_examples: int, seed: int | None) -> None:
    wrapped: Any = given(strategy)(test)
    wrapped = _settings(max_examples)(wrapped)
    if seed is not None:
        wrapped = hypothesis_seed(seed)(wrapped)
    wrapped()


def cookie_header(set_cookies: Iterable[str]) -> str:
    """The ``Cookie`` header a browser sends back after these ``Set-Cookie`` values (deletions dropped)."""
    pairs = []
    for line in set_cookies:
        pair, _, attributes = line.partition(";")
        name, _, value = pair.partition("=")
        deleted = any(a.strip().lower() == "max-age=0" for a in attributes.split(";"))
        if value and not deleted:
            pairs.append(f"{name.strip()}={value.strip()}")
    return "; ".join(pairs)


def _save(binding: Binding[Any], value: Any) -> list[str]:
    """The ``Set-Cookie`` values a response carries when a request without cookie ends with ``value``."""
    slot = binding.begin([])
    slot.state = value
    return binding.finish(slot)


# --- round trip and stability -----------------------------------------------------


def check_round_trip(
    state: State[Any],
    handler: Handler | Sequence[Handler] | None = None,
    *,
    max_examples: int = 100,
    clock: Clock | None = None,
    seed: int | None = None,
) -> None:
    """Check that every value saved by ``handler`` loads back as the same value.

    For each value drawn by :func:`~clientstate.testing.states`: a request
    without cookie ends with that state, and the ``Set-Cookie`` it gets is sent
    back; the load must succeed and give an equal value (:meth:`State.equal`).
    Values too large for a cookie are skipped here (see :func:`check_fits_cookie`).

    Args:
        state: the descriptor.
        handler: a handler, a list of them, or ``None`` for both default modes.
        max_examples: values drawn (Hypothesis ``max_examples``), at least 1.
        clock: seconds since the epoch; default a fresh ``FrozenClock()``.
        seed: a Hypothesis seed for a reproducible run.

    Raises:
        AssertionError: a value was not written, did not load, or loaded as a
            different value; the message names the value, handler and error.
        ValueError: ``max_examples`` < 1.
        TypeError: ``handler`` is not a handler.
        UnsupportedTypeError: the state's type has no strategy.
    """
    handlers = _handlers(handler)
    now = clock if clock is not None else FrozenClock()
    bindings = [Binding(state, h, now) for h in handlers]

    def round_trip(value: Any) -> None:
        for binding in bindings:
            _assert_round_trip(binding, value)

    _run(round_trip, states(state), max_examples, seed)


def _assert_round_trip(binding: Binding[Any], value: Any) -> Any:
    state, where = binding.state, describe(binding.handler)
    try:
        set_cookies = _save(binding, value)
    except CookieTooLarge:
        reject()
    if not cookie_header(set_cookies):
        raise AssertionError(
            f"state {state.name!r} ({where}): saving {show(value)} wrote no cookie (Set-Cookie: {set_cookies!r})"
        )
    header = cookie_header(set_cookies)
    slot = binding.begin([header])
    if slot.error is not None:
        raise AssertionError(
            f"state {state.name!r} ({where}): the cookie written for {show(value)} did not load: {slot.error}"
        )
    if not state.equal(slot.state, value):
        raise AssertionError(
            f"state {state.name!r} ({where}): saved {show(value)} but loaded {show(slot.state)}"
        )
    return header


def check_stable(
    state: State[Any],
    handler: Handler | Sequence[Handler] | None = None,
    *,
    max_examples: int = 100,
    clock: Clock | None = None,
    seed: int | None = None,
) -> None:
    """Check that a response leaving the loaded state unchanged writes no cookie.

    For each value drawn: save it, send the cookie back, then end the request
    with (a) the loaded object itself, (b) the original value, (c) a fresh
    decoded copy. None of them may produce a ``Set-Cookie`` (a cookie on every
    response costs bandwidth and races between parallel requests).

    Args and Raises: as :func:`check_round_trip`; the ``AssertionError`` names
    the value and which of (a)-(c) wrote a cookie.
    """
    handlers = _handlers(handler)
    now = clock if clock is not None else FrozenClock()
    bindings = [Binding(state, h, now) for h in handlers]

    def stable(value: Any) -> None:
        for binding in bindings:
            _assert_stable(binding, _assert_round_trip(binding, value), value)

    _run(stable, states(state), max_examples, seed)


def _assert_stable(binding: Binding[Any], header: str, value: Any) -> None:
    state, where = binding.state, describe(binding.handler)
    variants: list[tuple[str, Callable[[Any], Any]]] = [
        ("the loaded value, unchanged", lambda loaded: loaded),
        ("the value it was saved from", lambda _loaded: value),
        ("a fresh decoded copy", lambda loaded: state.decode(state.encode(loaded))),
    ]
    for label, make in variants:
        slot = binding.begin([header])
        slot.state = make(slot.state)
        written = binding.finish(slot)
        if written:
            raise AssertionError(
                f"state {state.name!r} ({where}): after loading {show(value)}, ending the request with "
                f"{label} wrote Set-Cookie {show(written)}; an unchanged state must write none"
            )


# --- migrations -----------------------------------------------------------------


def check_migrations(
    state: State[Any],
    handler: Handler | Sequence[Handler] | None = None,
    *,
    max_examples: int = 100,
    clock: Clock | None = None,
    seed: int | None = None,
) -> None:
    """Check that every value of every older schema version migrates, round-trips and is stable.

    For each :class:`~clientstate.state.Migration` and each value drawn by
    :func:`~clientstate.testing.old_states`: a cookie is written as a
    deployment at that schema version wrote it (same handler, same state
    name, the old version and type). Loading it with ``state`` must succeed
    (no ``state_decode``/``migration_failed``), report that schema version,
    and re-issue the cookie at the current version; that cookie must then
    load as the same value and be stable. A state without migrations passes.

    Args: as :func:`check_round_trip` (``max_examples`` per migration).

    Raises:
        AssertionError: naming the old version, the old value, the handler,
            and the load error or the mismatch.
        ValueError, TypeError, UnsupportedTypeError: as :func:`check_round_trip`.
    """
    handlers = _handlers(handler)
    now = clock if clock is not None else FrozenClock()
    for migration in state.migrations:
        old_state: State[Any] = State(state.name, migration.type, version=migration.version)
        pairs = [(Binding(old_state, h, now), Binding(state, h, now)) for h in handlers]

        _run(_migration_test(pairs, migration.version), old_states(state, migration.version), max_examples, seed)


def _migration_test(pairs: list[tuple[Binding[Any], Binding[Any]]], version: int) -> Callable[[Any], None]:
    def migrates(old_value: Any) -> None:
        for old_binding, binding in pairs:
            _assert_migrates(old_binding, binding, version, old_value)

    return migrates


def _assert_migrates(old_binding: Binding[Any], binding: Binding[Any], version: int, old_value: Any) -> None:
    state, where = binding.state, describe(binding.handler)
    intro = f"state {state.name!r} ({where}): a version-{version} cookie holding {show(old_value)}"
    try:
        old_header = cookie_header(_save(old_binding, old_value))
    except CookieTooLarge:
        reject()
    slot = binding.begin([old_header])
    if slot.error is not None:
        raise AssertionError(f"{intro} did not load: {slot.error}")
    if slot.loaded.schema_version != version:
        raise AssertionError(f"{intro} loaded as schema version {slot.loaded.schema_version}, not {version}")
    migrated = slot.state
    written = binding.finish(slot)
    header = cookie_header(written)
    if not header:
        raise AssertionError(
            f"{intro} migrated to {show(migrated)} but was not re-issued at version {state.version} "
            f"(Set-Cookie: {show(written)})"
        )
    again = binding.begin([header])
    if again.error is not None:
        raise AssertionError(f"{intro} migrated to {show(migrated)}, whose new cookie did not load: {again.error}")
    if again.loaded.schema_version != state.version or not state.equal(again.state, migrated):
        raise AssertionError(
            f"{intro} migrated to {show(migrated)}, but its new cookie loaded {show(again.state)} "
            f"at schema version {again.loaded.schema_version}"
        )
    _assert_stable(binding, header, migrated)


# --- size -------------------------------------------------------------------------


def cookie_fits(binding: Binding[Any], value: Any) -> tuple[bool, int]:
    """``(fits, size)``: whether saving ``value`` stays within the cookie limit, and name plus value bytes."""
    try:
        lines = _save(binding, value)
    except CookieTooLarge as exc:
        return False, exc.size
    sizes = [len(line.partition(";")[0].encode()) - 1 for line in lines]
    return True, max(sizes, default=0)


def field_sizes(value: Any, info: mi.Type) -> str:
    """``"items: 3012 bytes, name: 40 bytes"``: the encoded size of each field, largest first."""
    info = unwrap(info)
    fields = getattr(info, "fields", None)
    if not fields:
        return f"{encoded_size(value)} bytes in all"
    sizes = []
    for field in fields:
        try:
            part = value[field.name] if isinstance(value, dict) else getattr(value, field.name)
        except (KeyError, AttributeError):
            continue
        sizes.append((encoded_size(part), field.name))
    sizes.sort(reverse=True)
    return ", ".join(f"{name}: {size} bytes" for size, name in sizes[:6])


def check_fits_cookie(
    state: State[Any],
    handler: Handler | Sequence[Handler] | None = None,
    *,
    max_examples: int = 100,
    clock: Clock | None = None,
    seed: int | None = None,
) -> None:
    """Check that no value of the state can overflow the 4096-byte cookie limit.

    Three steps; the first two are deterministic:

    1. every part of the type with no size bound (a ``str``, ``bytes`` or
       collection without ``max_length``, a ``Decimal``, ``Any``, a recursive
       Struct) is a failure: a value is built with that part grown and every
       other part at its smallest, and the message gives the size (characters,
       bytes, items, digits) at which the cookie stops fitting;
    2. the largest value of the type (every ``max_length`` reached, 4-byte
       characters, the longest union branch, every optional field set) must
       fit; the message lists the fields by encoded size;
    3. Hypothesis draws ``max_examples`` values, steered toward large encodings
       (``hypothesis.target``), and each must fit.

    Args: as :func:`check_round_trip`.

    Raises:
        AssertionError: listing every unbounded part with its limit, or the
            size of the largest value and its biggest fields.
        ValueError, TypeError, UnsupportedTypeError: as :func:`check_round_trip`.
    """
    handlers = _handlers(handler)
    now = clock if clock is not None else FrozenClock()
    bindings = [Binding(state, h, now) for h in handlers]
    info = type_info(state.type, f"state {state.name!r}")
    root = root_label(info)
    probe = Extremes(root)

    def pattern_bounded(t: mi.StrType) -> bool:
        try:
            return probe.pattern_bound(t, ()) is not None
        except NoValueError:
            return False

    problems = [_growth_problem(bindings, info, root, g) for g in growth_paths(info, pattern_bounded)]
    try:
        largest = Extremes(root, largest=True).value(info, top=True)
    except NoValueError:
        largest = None  # e.g. a pattern no example was found for: step 3 still searches
    if largest is not None:
        for binding in bindings:
            fits, size = cookie_fits(binding, largest)
            if not fits:
                problems.append(
                    f"  - the largest value of the type makes a {size}-byte cookie ({describe(binding.handler)}), "
                    f"over the {MAX_COOKIE_BYTES}-byte limit; by field: {field_sizes(largest, info)}. "
                    f"Lower the max_length of the biggest fields."
                )
                break
    if problems:
        raise AssertionError(
            f"state {state.name!r} can outgrow the {MAX_COOKIE_BYTES}-byte cookie limit "
            f"(name plus value; browsers drop larger cookies):\n" + "\n".join(problems)
        )

    def fits_cookie(value: Any) -> None:
        for binding in bindings:
            fits, size = cookie_fits(binding, value)
            target(float(size), label=describe(binding.handler))
            if not fits:
                raise AssertionError(
                    f"state {state.name!r}: {show(value)} makes a {size}-byte cookie ({describe(binding.handler)}), "
                    f"over the {MAX_COOKIE_BYTES}-byte limit; by field: {field_sizes(value, info)}"
                )

    _run(fits_cookie, states(state), max_examples, seed)


def _growth_problem(bindings: list[Binding[Any]], info: mi.Type, root: str, growth: Growth) -> str:
    where = render_path(root, growth.path)
    head = f"  - {where} ({growth.label}) has no size bound"
    if growth.unit == "levels":
        return f"{head}: {growth.hint}"
    tightest: tuple[int, int, Binding[Any]] | None = None
    for binding in bindings:
        try:
            measured = _largest_fitting(binding, info, root, growth)
        except NoValueError as exc:
            return f"{head} ({growth.unit} not measured: {exc}); {growth.hint}"
        if measured is not None and (tightest is None or measured[0] < tightest[0]):
            tightest = (*measured, binding)
    if tightest is None:
        return f"{head}; {growth.hint}"
    n, size, binding = tightest
    if n < 0:
        return f"{head}, and even the smallest value makes a {size}-byte cookie ({describe(binding.handler)})"
    return (
        f"{head}: with every other field at its smallest, it fits up to {n} {growth.unit}, and at "
        f"{n + 1} the cookie is {size} bytes ({describe(binding.handler)}); {growth.hint}"
    )


def _largest_fitting(
    binding: Binding[Any], info: mi.Type, root: str, growth: Growth
) -> tuple[int, int] | None:
    """``(n, size)``: the most units that fit, and the cookie size at one more.

    ``None`` if even 1 MiB of units fits (a handler that does not limit sizes).
    """

    def attempt(n: int) -> tuple[bool, int]:
        value = Extremes(root, grow=(growth.path, n)).value(info, top=True)
        return cookie_fits(binding, value)

    top = MAX_COOKIE_BYTES  # enough for one cookie; chunked handlers need more
    while attempt(top)[0]:
        top *= 2
        if top > _GROW_LIMIT:
            return None
    fits, size = attempt(0)
    if not fits:
        return -1, size
    lo, hi = 0, top  # attempt(lo) fits, attempt(hi) does not
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if attempt(mid)[0]:
            lo = mid
        else:
            hi = mid
    return lo, attempt(hi)[1]


# --- all ------------------------------------------------------------------------------


def check_all(
    state: State[Any],
    handler: Handler | Sequence[Handler] | None = None,
    *,
    max_examples: int = 100,
    clock: Clock | None = None,
    seed: int | None = None,
) -> None:
    """Run :func:`check_round_trip`, :func:`check_stable`, :func:`check_migrations` and :func:`check_fits_cookie`.

    Every check runs even when an earlier one fails; the failures are
    reported together.

    Args: as :func:`check_round_trip`.

    Raises:
        AssertionError: ``"N of 4 checks failed"`` followed by each check's message.
        ValueError, TypeError, UnsupportedTypeError: as :func:`check_round_trip`.
    """
    checks = [check_round_trip, check_stable, check_migrations, check_fits_cookie]
    failures = []
    for check in checks:
        try:
            check(state, handler, max_examples=max_examples, clock=clock, seed=seed)
        except AssertionError as exc:
            failures.append(f"{check.__name__}: {exc}")
    if failures:
        raise AssertionError(f"{len(failures)} of {len(checks)} checks failed for state {state.name!r}:\n\n"
                             + "\n\n".join(failures))
