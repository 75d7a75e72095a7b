"""Duplicate, quoted and empty cookies, through the handler and both middlewares.

Several values for the handler's cookie are ``ambiguous`` whatever their order
and whichever is genuine; WSGI (one joined ``HTTP_COOKIE``) and ASGI (possibly
several ``cookie`` fields) answer identically; and, by the documented save rule,
an ambiguous load with no new state writes no ``Set-Cookie`` (a deletion could
only remove one of the duplicates, and the survivor would then load).
"""

from __future__ import annotations

import pytest

from clientstate import RequestCookies
from clientstate._core.errors import ErrorKind
from clientstate._core.token import Mode
from tests.security.support import (
    ACCOUNT,
    ALICE,
    BOB,
    T0,
    Account,
    both_middlewares,
    call_asgi,
    call_wsgi,
    cookie_value,
    kind,
    make_handler,
    mint,
    set_cookies,
)

NO_SET_COOKIE_HEADERS = [("content-type", "text/plain"), ("vary", "Cookie")]


def duplicate_cases(valid: str, other_user: str) -> dict[str, list[str]]:
    """Cookie header fields (as ASGI would carry them) that hold more than one ``cs``."""
    return {
        "valid-then-junk": [f"cs={valid}; cs=JUNK"],
        "junk-then-valid": [f"cs=JUNK; cs={valid}"],
        "two-users": [f"cs={valid}; cs={other_user}"],
        "two-users-reversed": [f"cs={other_user}; cs={valid}"],
        "same-token-twice": [f"cs={valid}; cs={valid}"],
        "spaces-around-the-second-name": [f"cs={valid};  \t cs \t=JUNK"],
        "quoted-and-bare": [f'cs="{valid}"; cs={valid}'],
        "among-other-cookies": [f"a=1; cs={valid}; b=2; cs=JUNK; c=3"],
        "two-fields": [f"cs={valid}", "cs=JUNK"],
        "two-fields-reversed": ["cs=JUNK", f"cs={valid}"],
        "two-fields-two-users": [f"cs={valid}", f"cs={other_user}"],
        "two-fields-with-others": [f"a=1; cs={valid}", f"b=2; cs={other_user}; c=3"],
    }


@pytest.fixture
def tokens(mode: Mode) -> tuple[str, str]:
    handler = make_handler(mode)
    return mint(handler, ALICE), mint(handler, BOB)


def test_duplicates_are_ambiguous_in_every_order_through_the_handler(mode: Mode, tokens: tuple[str, str]) -> None:
    handler = make_handler(mode)
    for label, fields in duplicate_cases(*tokens).items():
        loaded = handler.load(ACCOUNT, RequestCookies(fields), T0)
        assert kind(loaded) is ErrorKind.AMBIGUOUS, label
        assert loaded.present


def test_duplicates_are_ambiguous_with_no_set_cookie_identically_in_wsgi_and_asgi(
    mode: Mode, tokens: tuple[str, str]
) -> None:
    wsgi_app, asgi_app, ran = both_middlewares(make_handler(mode))
    for label, fields in duplicate_cases(*tokens).items():
        # A WSGI server hands over one HTTP_COOKIE; several fields are joined as HTTP/2 crumbs are.
        from_wsgi = call_wsgi(wsgi_app, "; ".join(fields))
        from_asgi = call_asgi(asgi_app, [f.encode("latin-1") for f in fields])
        assert from_wsgi == from_asgi == (200, NO_SET_COOKIE_HEADERS, b"ambiguous -"), label
    assert len(ran) == 2 * len(duplicate_cases(*tokens))


def test_a_cookie_planted_inside_another_cookies_value_is_not_seen(mode: Mode, tokens: tuple[str, str]) -> None:
    # A sibling subdomain can set "x=a,cs=<its own valid token>"; browsers send the comma as part of x's value.
    valid, attackers = tokens
    handler = make_handler(mode)
    assert handler.load(ACCOUNT, RequestCookies([f"x=a,cs={attackers}"]), T0).state is None
    loaded = handler.load(ACCOUNT, RequestCookies([f"x=a,cs={attackers}; cs={valid}"]), T0)
    assert kind(loaded) is None
    assert loaded.state == ALICE
    wsgi_app, asgi_app, _ = both_middlewares(handler)
    header = f"x=a,cs={attackers}; cs={valid}"
    assert call_wsgi(wsgi_app, header) == call_asgi(asgi_app, [header.encode()]) == (200, NO_SET_COOKIE_HEADERS, b"- 1")


@pytest.mark.parametrize("template", ["cs={token}; cs=", "cs=; cs={token}", "cs={token}", "cs= ; cs={token}; cs="])
def test_empty_duplicates_are_ignored_not_ambiguous(mode: Mode, template: str) -> None:
    # An empty value carries no state, so a planted "cs=" cannot lock a user out.
    handler = make_handler(mode)
    loaded = handler.load(ACCOUNT, RequestCookies([template.format(token=mint(handler))]), T0)
    assert kind(loaded) is None
    assert loaded.state == ALICE


def test_ambiguous_load_then_new_state_is_saved_in_both_middlewares(mode: Mode, tokens: tuple[str, str]) -> None:
    wsgi_app, asgi_app, _ = both_middlewares(make_handler(mode), new_state=lambda _: Account(3, "carol"))
    valid, other = tokens
    for fields in ([f"cs={valid}; cs={other}"], [f"cs={valid}", f"cs={other}"]):
        results = [call_wsgi(wsgi_app, "; ".join(fields)), call_asgi(asgi_app, [f.encode() for f in fields])]
        for status, headers, body in results:
            assert (status, body) == (200, b"ambiguous -")
            assert [name for name, _ in headers] == ["content-type", "vary", "set-cookie", "cache-control"]
            (written,) = set_cookies((status, headers, body))
            assert written.startswith("cs=")
            assert kind(make_handler(mode).load(ACCOUNT, RequestCookies([written.split(";")[0]]), T0)) is None
        if mode is Mode.AUTHENTICATED:  # deterministic tokens: the two answers are byte-identical
            assert results[0] == results[1]


def test_cookie_names_are_case_sensitive_so_another_case_is_not_a_duplicate(mode: Mode) -> None:
    handler = make_handler(mode)
    token = mint(handler)
    loaded = handler.load(ACCOUNT, RequestCookies([f"CS=junk; Cs=junk; cs={token}; cS=junk"]), T0)
    assert kind(loaded) is None
    assert loaded.state == ALICE


def test_quoted_value_loads_with_one_pair_of_quotes_unwrapped(mode: Mode) -> None:
    handler = make_handler(mode)
    token = mint(handler)
    loaded = handler.load(ACCOUNT, RequestCookies([f'cs="{token}"']), T0)
    assert kind(loaded) is None
    assert loaded.state == ALICE
    wsgi_app, asgi_app, _ = both_middlewares(handler)
    header = f'a=1; cs="{token}"; b=2'
    assert call_wsgi(wsgi_app, header) == call_asgi(asgi_app, [header.encode()]) == (200, NO_SET_COOKIE_HEADERS, b"- 1")


@pytest.mark.parametrize(
    "template",
    ['cs=""{token}""', 'cs="{token}', 'cs={token}"', "cs='{token}'", 'cs="{token} "x"'],
    ids=["two-pairs", "open-only", "close-only", "single-quotes", "quote-inside"],
)
def test_other_quoting_is_malformed(mode: Mode, template: str) -> None:
    handler = make_handler(mode)
    header = template.format(token=mint(handler))
    assert kind(handler.load(ACCOUNT, RequestCookies([header]), T0)) is ErrorKind.MALFORMED


@pytest.mark.parametrize("header", ["cs=", 'cs=""', "cs=  \t ", "a=1; cs=; b=2", "cs"], ids=repr)
def test_empty_value_is_no_cookie_no_error_and_no_set_cookie(mode: Mode, header: str) -> None:
    handler = make_handler(mode)
    loaded = handler.load(ACCOUNT, RequestCookies([header]), T0)
    assert loaded.error is None
    assert loaded.state is None
    assert not loaded.present
    wsgi_app, asgi_app, ran = both_middlewares(handler)
    expected = (200, NO_SET_COOKIE_HEADERS, b"- -")
    assert call_wsgi(wsgi_app, header) == call_asgi(asgi_app, [header.encode()]) == expected
    assert ran == ["wsgi", "asgi"]


def test_no_cookie_header_at_all_is_no_cookie(mode: Mode) -> None:
    wsgi_app, asgi_app, _ = both_middlewares(make_handler(mode))
    assert call_wsgi(wsgi_app, None) == call_asgi(asgi_app, []) == (200, NO_SET_COOKIE_HEADERS, b"- -")


def test_a_rewritten_cookie_is_read_back_from_the_set_cookie_value(mode: Mode) -> None:
    """Control for the middleware runners: a state set by the app comes back on the next request."""
    wsgi_writer, asgi_writer, _ = both_middlewares(make_handler(mode), new_state=lambda _: ALICE)
    wsgi_reader, asgi_reader, _ = both_middlewares(make_handler(mode))
    from_wsgi = cookie_value(set_cookies(call_wsgi(wsgi_writer, None))[0])
    from_asgi = cookie_value(set_cookies(call_asgi(asgi_writer, []))[0])
    assert call_asgi(asgi_reader, [f"cs={from_wsgi}".encode()])[2] == b"- 1"
    assert call_wsgi(wsgi_reader, f"cs={from_asgi}")[2] == b"- 1"
