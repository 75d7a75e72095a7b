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
  the largest value of the type is measured, and a Hypothesis search steered
  toward large values looks for more.
* :func:`check_all`: all four, reporting every failure together.

``handler`` is a :class:`~clientstate.Handler`, a list of them, or ``None``
for two ``client_stored`` handlers on a fixed test keyring, one per mode
(authenticated and encrypted), with the cookie name ``"session"``. Pass your
own handler to check its exact configuration (cookie name, mode,
``expires_in``, ``validate``...). Time comes from ``clock`` (default a
:class:`~clientstate.testing.FrozenClock`), so no check depends on the wall clock.

Call the checks from a plain test function, not from inside ``@given``.
"""

from __future__ import annotations

import reprlib
from collections.abc import Callable, Sequence
from typing import Any, Final, TypeVar

import msgspec
from hypothesis import HealthCheck, given, reject, settings, target
from hypothesis import seed as hypothesis_seed
from hypothesis.strategies import SearchStrategy

from clientstate._core.binding import Binding, Clock
from clientstate._core.cookies import MAX_COOKIE_BYTES
from clientstate._core.errors import CookieTooLarge
from clientstate._core.handler import AnyHandler, Handler
from clientstate._core.state import State
from clientstate._handlers.client_stored import ClientStored, client_stored
from clientstate.testing._walk import Extents, Growth, render_path, root_label, type_info, unwrap
from clientstate.testing.client import cookie_header
from clientstate.testing.clock import FrozenClock
from clientstate.testing.keys import fixed_keyring
from clientstate.testing.strategies import old_states, states

__all__ = ["check_all", "check_fits_cookie", "check_migrations", "check_round_trip", "check_stable"]

B = TypeVar("B")

#: What the checks take as ``handler``.
Handlers = Handler | Sequence[Handler] | None

#: The cookie name of the default handlers.
DEFAULT_COOKIE: Final = "session"
#: Units (characters, items...) beyond which growth is no longer measured.
_GROW_LIMIT: Final = 1 << 20
_MISSING: Final = object()

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


def _bindings(state: State[Any], handler: Handlers, clock: Clock | None) -> list[Binding[Any]]:
    """One :class:`Binding` of ``state`` per handler, on ``clock`` (default a fresh ``FrozenClock``).

    Raises:
        TypeError: ``handler`` is neither a handler, a non-empty list of them, nor ``None``.
    """
    if handler is None:
        handlers = default_handlers()
    elif isinstance(handler, Handler):
        handlers = [handler]
    else:
        handlers = list(handler) if isinstance(handler, Sequence) else []
        if not handlers or not all(isinstance(h, Handler) for h in handlers):
            raise TypeError(f"handler must be a clientstate Handler, a list of them, or None; got {handler!r}")
    now = clock if clock is not None else FrozenClock()
    return [Binding(state, h, now) for h in handlers]


def describe(handler: AnyHandler) -> str:
    """``"authenticated handler, cookie 'session'"`` for a ClientStored handler, else ``repr``."""
    if not isinstance(handler, ClientStored):
        return repr(handler)
    chunks = f" chunked into up to {handler.max_chunks}" if handler.chunked else ""
    return f"{handler.mode.name.lower()} handler, cookie {handler.name!r}{chunks}"


def _run(test: Callable[[Any], None], strategy: SearchStrategy[Any], max_examples: int, seed: int | None) -> None:
    """Run ``test`` on ``max_examples`` values of ``strategy``.

    Raises:
        ValueError: ``max_examples`` is not an integer >= 1.
        AssertionError: from ``test``.
    """
    if isinstance(max_examples, bool) or not isinstance(max_examples, int) or max_examples < 1:
        raise ValueError(f"max_examples must be an integer >= 1, got {max_examples!r}")
    wrapped: Any = settings(
        max_examples=max_examples,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )(given(strategy)(test))
    (wrapped if seed is None else hypothesis_seed(seed)(wrapped))()


def _each(bindings: Sequence[B], assertion: Callable[[B, Any], object]) -> Callable[[Any], None]:
    """A test that runs ``assertion(binding, value)`` for every binding (or pair of them)."""

    def test(value: Any) -> None:
        for binding in bindings:
            assertion(binding, value)

    return test


def _save(binding: Binding[Any], value: Any) -> list[str]:
    """The ``Set-Cookie`` values a response carries when a request without cookie ends with ``value``."""
    slot = binding.begin([])
    slot.state = value
    return binding.finish(slot)


# --- round trip and stability -----------------------------------------------------


def check_round_trip(
    state: State[Any], handler: Handlers = None, *, max_examples: int = 100, clock: Clock | None = None,
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
    _run(_each(_bindings(state, handler, clock), _assert_round_trip), states(state), max_examples, seed)


def _assert_round_trip(binding: Binding[Any], value: Any) -> str:
    """Save ``value``, load it back, and return the ``Cookie`` header that holds it."""
    state, where = binding.descriptor, describe(binding.handler)
    try:
        set_cookies = _save(binding, value)
    except CookieTooLarge:
        reject()
    header = cookie_header(set_cookies)
    if not header:
        raise AssertionError(
            f"state {state.name!r} ({where}): saving {show(value)} wrote no cookie (Set-Cookie: {set_cookies!r})"
        )
    slot = binding.begin([header])
    if slot.error is not None:
        raise AssertionError(
            f"state {state.name!r} ({where}): the cookie written for {show(value)} did not load: {slot.error}"
        )
    if not state.equal(slot.state, value):
        raise AssertionError(f"state {state.name!r} ({where}): saved {show(value)} but loaded {show(slot.state)}")
    return str(header)


def check_stable(
    state: State[Any], handler: Handlers = None, *, max_examples: int = 100, clock: Clock | None = None,
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

    def stable(binding: Binding[Any], value: Any) -> None:
        _assert_stable(binding, _assert_round_trip(binding, value), value)

    _run(_each(_bindings(state, handler, clock), stable), states(state), max_examples, seed)


def _assert_stable(binding: Binding[Any], header: str, value: Any) -> None:
    state, where = binding.descriptor, describe(binding.handler)
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
    state: State[Any], handler: Handlers = None, *, max_examples: int = 100, clock: Clock | None = None,
    seed: int | None = None,
) -> None:
    """Check that every value of every older schema version migrates, round-trips and is stable.

    For each :class:`~clientstate.Migration` and each value drawn by
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
    bindings = _bindings(state, handler, clock)
    for migration in state.migrations:
        old_state: State[Any] = State(state.name, migration.type, version=migration.version)
        pairs = [(Binding(old_state, b.handler, b.clock), b) for b in bindings]
        _run(_each(pairs, _assert_migrates), old_states(state, migration.version), max_examples, seed)


def _assert_migrates(bindings: tuple[Binding[Any], Binding[Any]], old_value: Any) -> None:
    """Save ``old_value`` with the old version's binding, then load, migrate, re-issue and reload it."""
    old_binding, binding = bindings
    state, where, version = binding.descriptor, describe(binding.handler), old_binding.descriptor.version
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
    return True, max((len(line.partition(";")[0].encode()) - 1 for line in lines), default=0)


def _overflow(binding: Binding[Any], payload: bytes) -> int | None:
    """The cookie size (name plus value, bytes) if a state encoded as ``payload`` cannot be saved, else ``None``."""
    try:
        binding.handler.check_size(binding.descriptor, payload)
    except CookieTooLarge as exc:
        return exc.size
    return None


def _part(value: Any, name: str) -> Any:
    """Field ``name`` of ``value`` (a dict's key, for a TypedDict), or ``_MISSING``."""
    return value.get(name, _MISSING) if isinstance(value, dict) else getattr(value, name, _MISSING)


def _by_field(sizes: Sequence[tuple[str, int]], total: int) -> str:
    """``"items: 3012 bytes, name: 40 bytes"``: the largest six parts, or ``"N bytes in all"``."""
    if not sizes:
        return f"{total} bytes in all"
    return ", ".join(f"{name}: {size} bytes" for size, name in sorted(((s, n) for n, s in sizes), reverse=True)[:6])


def check_fits_cookie(
    state: State[Any], handler: Handlers = None, *, max_examples: int = 100, clock: Clock | None = None,
    seed: int | None = None,
) -> None:
    """Check that no value of the state can overflow the 4096-byte cookie limit.

    Three steps; the first two are deterministic and measure MessagePack
    encodings built from the type (``Handler.check_size``), not drawn values:

    1. every part of the type with no size bound (a ``str``, ``bytes`` or
       collection without ``max_length``, a ``Decimal``, ``Any``, a recursive
       Struct) is a failure, and the message gives the size (characters,
       bytes, items, digits) at which the cookie stops fitting with that part
       grown and every other part at its smallest;
    2. the largest value of the type (every ``max_length`` reached, 4-byte
       characters, the longest union branch and numbers, every optional field
       set) must fit; the message lists the fields by encoded size;
    3. Hypothesis draws ``max_examples`` values, steered toward large
       encodings (``hypothesis.target``), and each must fit when saved.

    The sizes of steps 1 and 2 are exact, except for these conservative rules
    (they may only overstate a size):

    * a ``pattern`` is never analysed: a string with one counts as
      ``max_length`` 4-byte characters, even at its smallest; without
      ``max_length`` it is a part with no size bound (add ``max_length``),
      and at its smallest it has ``min_length`` characters;
    * the largest collection holds ``max_length`` copies of its largest item
      (a set or dict at most as many as its item or key type has values); a
      grown set or dict holds the smallest distinct ints, strings, bytes, enum
      members or ``Literal`` values, and copies of the largest item otherwise;
    * a value built past 4 MiB stops there (it is far over any cookie).

    Args: as :func:`check_round_trip`.

    Raises:
        AssertionError: listing every unbounded part with its limit, or the
            size of the largest value and its biggest fields.
        ValueError, TypeError, UnsupportedTypeError: as :func:`check_round_trip`.
    """
    bindings = _bindings(state, handler, clock)
    info = type_info(state.type, f"state {state.name!r}")
    root = root_label(info)
    extent = Extents(root).visit(info, (), True)
    problems = [_growth_problem(bindings, root, growth) for growth in extent.growths]
    largest = extent.large
    oversized = [] if largest is None else [(s, b) for b in bindings if (s := _overflow(b, largest)) is not None]
    if largest is not None and oversized:
        size, binding = oversized[0]
        problems.append(
            f"  - the largest value of the type makes a {size}-byte cookie ({describe(binding.handler)}), "
            f"over the {MAX_COOKIE_BYTES}-byte limit; by field: {_by_field(extent.fields, len(largest))}. "
            f"Lower the max_length of the biggest fields."
        )
    if problems:
        raise AssertionError(
            f"state {state.name!r} can outgrow the {MAX_COOKIE_BYTES}-byte cookie limit "
            f"(name plus value; browsers drop larger cookies):\n" + "\n".join(problems)
        )
    fields = getattr(unwrap(info), "fields", ())

    def fits_cookie(binding: Binding[Any], value: Any) -> None:
        fits, size = cookie_fits(binding, value)
        target(float(size), label=describe(binding.handler))
        if not fits:
            parts = [(f.name, len(msgspec.msgpack.encode(part))) for f in fields
                     if (part := _part(value, f.name)) is not _MISSING]
            raise AssertionError(
                f"state {state.name!r}: {show(value)} makes a {size}-byte cookie ({describe(binding.handler)}), "
                f"over the {MAX_COOKIE_BYTES}-byte limit; by field: "
                f"{_by_field(parts, len(msgspec.msgpack.encode(value)))}"
            )

    _run(_each(bindings, fits_cookie), states(state), max_examples, seed)


def _growth_problem(bindings: list[Binding[Any]], root: str, growth: Growth) -> str:
    """The message line for an unbounded part: where it is, and how far it can grow (the tightest handler)."""
    head = f"  - {render_path(root, growth.path)} ({growth.label}) has no size bound"
    if growth.grow is None:
        unmeasured = "" if growth.unit == "levels" else f" ({growth.unit} not measured)"
        return f"{head}{unmeasured}: {growth.hint}"
    tightest: tuple[int, int, Binding[Any]] | None = None
    for binding in bindings:
        try:
            measured = _largest_fitting(binding, growth.grow)
        except LookupError as exc:
            return f"{head} ({growth.unit} not measured: no value of {exc} {growth.unit} was built); {growth.hint}"
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


def _largest_fitting(binding: Binding[Any], grow: Callable[[int], bytes | None]) -> tuple[int, int] | None:
    """``(n, size)``: the most units that fit, and the cookie size at ``n + 1``.

    ``(-1, size)`` when even 0 units overflow; ``None`` when 1 Mi units fit
    (a handler that does not limit sizes).

    Raises:
        LookupError: ``grow`` built no value of a size asked for (the size is the argument).
    """

    def overflow(n: int) -> int | None:
        payload = grow(n)
        if payload is None:
            raise LookupError(n)
        return _overflow(binding, payload)

    top, size = MAX_COOKIE_BYTES, overflow(MAX_COOKIE_BYTES)  # enough for one cookie; chunks need more
    while size is None:
        top *= 2
        if top > _GROW_LIMIT:
            return None
        size = overflow(top)
    at_zero = overflow(0)
    if at_zero is not None:
        return -1, at_zero
    lo = 0  # overflow(lo) is None, overflow(top) is size
    while top - lo > 1:
        mid = (lo + top) // 2
        mid_size = overflow(mid)
        if mid_size is None:
            lo = mid
        else:
            top, size = mid, mid_size
    return lo, size


# --- all ------------------------------------------------------------------------------


def check_all(
    state: State[Any], handler: Handlers = None, *, max_examples: int = 100, clock: Clock | None = None,
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
        raise AssertionError(
            f"{len(failures)} of {len(checks)} checks failed for state {state.name!r}:\n\n" + "\n\n".join(failures)
        )
