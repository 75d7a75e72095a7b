"""Rough edges a review found: the service form's messages, sudo guards' descriptors, Max-Age and key-id texts.

Each bad input is refused with a specific exception whose message names the argument and what it accepts.
(Store URLs are in tests/server/test_validation_stores.py.)
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable, Iterable
from typing import Any

import pytest

from clientstate import (
    ConfigurationError,
    CookieAttributes,
    KeyFormatError,
    Keyring,
    Loaded,
    ServiceRequest,
    ServiceResponse,
    client_stored,
    setup,
    sudo,
)
from clientstate._core.base64url import b64url_encode
from clientstate._core.cookies import MAX_MAX_AGE
from clientstate._core.keys import Key
from clientstate.testing import FrozenClock, fixed_keyring
from tests.conftest import ACCOUNT, Account

# Random-looking secrets no list of well-known keys holds (hashes of this file's name).
SECRET_1 = b64url_encode(hashlib.sha256(b"tests/test_review_edges.py 1").digest())
SECRET_2 = b64url_encode(hashlib.sha256(b"tests/test_review_edges.py 2").digest())


# --- the service form: ServiceRequest, ServiceResponse, what a service returns ---------------------


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"method": None}, "ServiceRequest method must be a non-empty str such as 'GET', got NoneType None"),
        ({"method": ""}, "ServiceRequest method must be a non-empty str such as 'GET', got str ''"),
        ({"method": b"GET"}, "ServiceRequest method must be a non-empty str such as 'GET', got bytes b'GET'"),
        ({"path": None}, "ServiceRequest path must be a str, got NoneType None"),
        ({"query": None}, "ServiceRequest query must be a str, got NoneType None"),
        ({"headers": ["Cookie: x"]},
         "ServiceRequest headers[0] must be a (name, value) pair of str, got str 'Cookie: x'"),
        ({"headers": "Cookie: x"}, "ServiceRequest headers must be an iterable of (name, value) pairs of str"),
        ({"headers": {"Cookie": "x"}}, "ServiceRequest headers must be an iterable of (name, value) pairs of str"),
        ({"headers": None}, "ServiceRequest headers must be an iterable of (name, value) pairs of str, such as "
                            "[('Cookie', 'a=b')], got NoneType None"),
        ({"headers": [("Cookie", 5)]}, "ServiceRequest headers[0]: the header value must be a str, got int 5"),
        ({"headers": [("Accept", "*/*"), (b"Cookie", "x")]},
         "ServiceRequest headers[1]: the header name must be a str, got bytes b'Cookie'"),
        ({"headers": [("a", "b", "c")]}, "ServiceRequest headers[0] must be a (name, value) pair of str, got tuple"),
        ({"body": "text"}, "ServiceRequest body must be bytes (encode text first), got str 'text'"),
        ({"body": None}, "ServiceRequest body must be bytes (encode text first), got NoneType None"),
    ],
)
def test_a_service_request_of_the_wrong_shape_is_refused_naming_the_argument(
    kwargs: dict[str, Any], fragment: str
) -> None:
    arguments: dict[str, Any] = {"method": "GET", "path": "/", **kwargs}
    with pytest.raises(ConfigurationError, match=re.escape(fragment)):
        ServiceRequest(**arguments)


def test_a_service_request_keeps_every_documented_shape() -> None:
    pairs: list[Any] = [["Cookie", "a=1"], ("COOKIE", "b=2")]  # a list of two is a pair too
    request = ServiceRequest("post", "/x", pairs, bytearray(b"body"), "q=1")
    assert (request.method, request.path, request.body, request.query) == ("POST", "/x", b"body", "q=1")
    assert type(request.body) is bytes
    assert request.headers == [("cookie", "a=1"), ("cookie", "b=2")]
    assert request.header_values("Cookie") == ["a=1", "b=2"]
    assert request.cookies.get_all("b") == ["2"]
    assert ServiceRequest("GET", "/", (pair for pair in [("X", "y")])).header("x") == "y"  # any iterable


Untyped: Any = ServiceResponse  # called with wrong types on purpose


@pytest.mark.parametrize(
    ("build", "fragment"),
    [
        (lambda: Untyped("200"), "ServiceResponse status must be an integer from 100 to 599, got '200'"),
        (lambda: Untyped(True), "ServiceResponse status must be an integer from 100 to 599, got True"),
        (lambda: ServiceResponse(600), "ServiceResponse status must be an integer from 100 to 599, got 600"),
        (lambda: Untyped(200, ["X: y"]), "ServiceResponse headers[0] must be a (name, value) pair of str"),
        (lambda: Untyped(200, [("X", 1)]), "ServiceResponse headers[0]: the header value must be a str"),
        (lambda: Untyped(200, [], "x"), "ServiceResponse body must be bytes (encode text first), got str"),
        (lambda: Untyped.text(5), "ServiceResponse.text text must be a str, got int 5"),
        (lambda: Untyped.text("x", content_type=None), "ServiceResponse.text content_type must be a str"),
        (lambda: ServiceResponse.json({1, 2}), "ServiceResponse.json: data is not JSON-encodable: Object of type set"),
        (lambda: ServiceResponse.json({}, status=0), "ServiceResponse status must be an integer from 100 to 599"),
    ],
)
def test_a_service_response_of_the_wrong_shape_is_refused(build: Callable[[], object], fragment: str) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(fragment)):
        build()


def handle_returning(result: object) -> Callable[[ServiceRequest], ServiceResponse]:
    handler = client_stored(fixed_keyring(1), name="cs", attributes=CookieAttributes())
    return setup(ACCOUNT, handler, lambda loaded, request: result, clock=FrozenClock())  # type: ignore[arg-type,return-value]


PRIVATE = Account(7, "private-name-7")


@pytest.mark.parametrize(
    ("result", "fragment"),
    [
        (None, "must return a (new_state, response) pair with response a ServiceResponse, got None "
               "(does every path of the service return?)"),
        ((PRIVATE, "hi"), "with response a ServiceResponse, got str 'hi' as the response (build one with "
                          "ServiceResponse(status, headers, body)"),
        ((PRIVATE, None), "with response a ServiceResponse, got NoneType None as the response"),
        (ServiceResponse(), "got a ServiceResponse alone; return (loaded.state, response) to keep the state"),
        ((PRIVATE, ServiceResponse(), 1), "with response a ServiceResponse, got a tuple of 3 items"),
        (PRIVATE, "with response a ServiceResponse, got Account"),
    ],
)
def test_a_service_returning_the_wrong_shape_is_a_configuration_error(result: object, fragment: str) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(fragment)) as info:
        handle_returning(result)(ServiceRequest("GET", "/"))
    assert "private-name-7" not in str(info.value)  # the state is never echoed


def test_a_response_changed_after_construction_is_checked_when_returned() -> None:
    for attribute, value, fragment in [
        ("status", "200", "the service's ServiceResponse status must be an integer from 100 to 599, got '200'"),
        ("headers", ["X: y"], "the service's ServiceResponse headers[0] must be a (name, value) pair of str"),
        ("body", "text", "the service's ServiceResponse body must be bytes"),
    ]:
        response = ServiceResponse()
        setattr(response, attribute, value)
        with pytest.raises(ConfigurationError, match=re.escape(fragment)):
            handle_returning((None, response))(ServiceRequest("GET", "/"))


def test_the_handle_refuses_what_is_not_a_service_request() -> None:
    handle = handle_returning((None, ServiceResponse()))
    with pytest.raises(ConfigurationError, match=re.escape("the request must be a ServiceRequest, got str 'GET /'")):
        handle("GET /")  # type: ignore[arg-type]
    request = ServiceRequest("GET", "/")
    request.headers = [("cookie", 5)]  # type: ignore[list-item]
    fragment = "a Cookie header value of the request must be a str, got int 5"
    with pytest.raises(ConfigurationError, match=re.escape(fragment)):
        handle(request)


def test_a_list_pair_still_works_and_sets_the_cookie() -> None:
    pairs: list[Any] = [["X-A", "1"]]
    response = handle_returning([Account(1, "a"), ServiceResponse(201, pairs, bytearray(b"ok"))])(
        ServiceRequest("GET", "/")
    )
    assert (response.status, response.body) == (201, b"ok")
    assert response.headers[0] == ("X-A", "1")
    assert response.header_values("set-cookie")[0].startswith("cs=")


# --- sudo guards: the descriptor and every other argument, checked when wrapping ---------------------


def wsgi_ok(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    start_response("200 OK", [])
    return [b"ok"]


async def asgi_ok(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def admin(loaded: Loaded[Account], request: ServiceRequest) -> tuple[Account | None, ServiceResponse]:
    return loaded.state, ServiceResponse()


@pytest.mark.parametrize(
    ("wrap", "fragment"),
    [
        (lambda: sudo.require_sudo_wsgi(wsgi_ok, "account"),  # type: ignore[arg-type]
         "descriptor must be a State, got str 'account'; pass the State descriptor given to setup()"),
        (lambda: sudo.require_sudo_asgi(asgi_ok, "account"),  # type: ignore[arg-type]
         "descriptor must be a State, got str 'account'; pass the State descriptor given to setup()"),
        (lambda: sudo.require_sudo_wsgi(wsgi_ok, None),  # type: ignore[arg-type]
         "descriptor must be a State, got NoneType None"),
        (lambda: sudo.require_sudo_wsgi(None, ACCOUNT),  # type: ignore[arg-type]
         "app must be a callable WSGI app(environ, start_response), got NoneType"),
        (lambda: sudo.require_sudo_asgi(asgi_ok, ACCOUNT, deny="no"),  # type: ignore[arg-type]
         "deny must be a callable ASGI app(scope, receive, send) or None, got str"),
        (lambda: sudo.require_sudo_wsgi(wsgi_ok, ACCOUNT, field=""), "sudo field must be a non-empty str, got str ''"),
        (lambda: sudo.require_sudo_asgi(asgi_ok, ACCOUNT, max_window=0),
         "max_window must be a finite number of seconds > 0, got 0"),
        (lambda: sudo.require_sudo(admin, clock="now"),  # type: ignore[arg-type]
         "clock must be a callable clock() -> seconds since the epoch, got str"),
        (lambda: sudo.require_sudo("admin", clock=FrozenClock()),  # type: ignore[arg-type]
         "service must be a callable service(loaded, request) -> (state, response), got str"),
        (lambda: sudo.require_sudo(admin, clock=FrozenClock(), field=5),  # type: ignore[arg-type]
         "sudo field must be a non-empty str, got int 5"),
        (lambda: sudo.require_sudo(admin, clock=FrozenClock(), deny=403),  # type: ignore[arg-type]
         "deny must be a callable deny(loaded, request) -> response or None, got int"),
    ],
)
def test_a_guard_checks_its_arguments_when_it_wraps(wrap: Callable[[], object], fragment: str) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(fragment)):
        wrap()


def test_guards_with_good_arguments_still_wrap() -> None:
    assert callable(sudo.require_sudo_wsgi(wsgi_ok, ACCOUNT, deny=wsgi_ok))
    assert callable(sudo.require_sudo_asgi(asgi_ok, ACCOUNT, field="elevated", max_window=60))
    assert callable(sudo.require_sudo(admin, clock=FrozenClock(), deny=lambda loaded, request: ServiceResponse()))


# --- CookieAttributes: a Max-Age message that fits the value ------------------------------------------


@pytest.mark.parametrize(
    ("max_age", "fragment"),
    [
        (0, "cookie Max-Age 0 would turn every save into a deletion"),
        (0.0, "cookie Max-Age 0 would turn every save into a deletion"),
        (-1, "cookie Max-Age -1 is negative: a Max-Age of 0 or less expires the cookie at once"),
        (math.nan, f"cookie Max-Age must be an int from 1 to {MAX_MAX_AGE} seconds (400 days), or None, got NaN"),
        (math.inf, f"cookie Max-Age is infinite, longer than 400 days ({MAX_MAX_AGE} s): RFC 6265bis caps"),
        (401 * 86400, f"cookie Max-Age is 34646400 s (401 days), longer than 400 days ({MAX_MAX_AGE} s)"),
        (MAX_MAX_AGE + 1, "longer than 400 days"),
        (1.5, f"cookie Max-Age must be a whole number of seconds (an int from 1 to {MAX_MAX_AGE} seconds"),
        (60.0, "cookie Max-Age must be an int, got the float 60.0; write 60"),
        ("60", f"cookie Max-Age must be an int from 1 to {MAX_MAX_AGE} seconds (400 days), or None, got str '60'"),
        (True, "cookie Max-Age must be an int from 1 to"),
    ],
)
def test_the_max_age_message_fits_the_value(max_age: object, fragment: str) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(fragment)) as info:
        CookieAttributes(max_age=max_age)  # type: ignore[arg-type]
    if not (isinstance(max_age, int | float) and max_age <= 0):  # NaN, a fraction, too long, not a number
        assert "deletion" not in str(info.value)


def test_max_age_limits_still_accepted() -> None:
    assert CookieAttributes(max_age=1).max_age == 1
    assert CookieAttributes(max_age=MAX_MAX_AGE).max_age == MAX_MAX_AGE


# --- keyring text: a key id given twice, key ids with leading zeros ----------------------------------


def test_the_same_key_marked_current_twice_names_the_key_id() -> None:
    with pytest.raises(KeyFormatError, match=re.escape("entries 1 and 2 of 2 share key id 1; each key id names one")):
        Keyring.from_text(f"*1:{SECRET_1} *1:{SECRET_1}")
    with pytest.raises(KeyFormatError, match=re.escape("entries 2 and 3 of 3 share key id 4")):
        Keyring.from_text(f"*1:{SECRET_1}, 4:{SECRET_2} 4:{SECRET_1}")
    with pytest.raises(KeyFormatError, match=re.escape("CLIENTSTATE_KEYS: entries 1 and 2 of 2 share key id 2")):
        Keyring.from_env(environ={"CLIENTSTATE_KEYS": f"*2:{SECRET_1} *2:{SECRET_2}"})


def test_marks_are_still_counted_among_distinct_keys() -> None:
    with pytest.raises(KeyFormatError, match=re.escape("2 keys given and 2 marked current")):
        Keyring.from_text(f"*1:{SECRET_1} *2:{SECRET_2}")


@pytest.mark.parametrize(("kid", "canonical"), [("01", "1"), ("00", "0"), ("007", "7"), ("099", "99")])
def test_a_key_id_with_a_leading_zero_is_refused(kid: str, canonical: str) -> None:
    fragment = f"key id {kid!r} has a leading zero; write it as {canonical} (a key id is decimal 0-255 without"
    with pytest.raises(KeyFormatError, match=re.escape(f"key entry 1 of 1: {fragment}")):
        Keyring.from_text(f"{kid}:{SECRET_1}")
    with pytest.raises(KeyFormatError, match=re.escape(f"key entry 2 of 2: {fragment}")):
        Keyring.from_text(f"*3:{SECRET_2} {kid}:{SECRET_1}")
    with pytest.raises(KeyFormatError, match=re.escape(f"the key entry: {fragment}")):
        Key.from_text(f"*{kid}:{SECRET_1}")


def test_canonical_key_ids_and_keygen_text_still_read() -> None:
    ring = Keyring.from_text(f"0:{SECRET_1} *10:{SECRET_2}")
    assert (ring.current.key_id, [k.key_id for k in ring.keys]) == (10, [10, 0])
    assert Keyring.from_text(ring.to_text()).to_text() == ring.to_text()  # to_text writes canonical ids
    assert Key.from_text(f"255:{SECRET_1}").key_id == 255


def test_max_chunks_without_chunked_is_refused_as_doing_nothing() -> None:
    from clientstate import ConfigurationError, client_stored
    from clientstate.testing import fixed_keyring

    with pytest.raises(ConfigurationError, match=r"max_chunks=3 does nothing without chunked=True"):
        client_stored(fixed_keyring(1), name="cs", max_chunks=3)
    assert client_stored(fixed_keyring(1), name="cs", chunked=True, max_chunks=3).max_chunks == 3
    assert client_stored(fixed_keyring(1), name="cs").max_chunks == 4
