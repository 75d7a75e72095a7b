"""Cookie header parsing, Set-Cookie rendering, attribute and prefix rules, size limits."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clientstate import ConfigurationError, CookieAttributes, CookieTooLarge, RequestCookies
from clientstate._core.cookies import (
    MAX_MAX_AGE,
    CookieWriter,
    parse_cookie_header,
    validate_cookie_name,
)

TOKEN_CHARS = "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
names = st.text(alphabet=TOKEN_CHARS, min_size=1, max_size=12)
values = st.text(alphabet=st.characters(blacklist_characters=';"', blacklist_categories=["Cc", "Zs"]), max_size=20)


def test_parse_simple_header() -> None:
    assert list(parse_cookie_header("a=1; b=2;c=3")) == [("a", "1"), ("b", "2"), ("c", "3")]


def test_malformed_pairs_never_hide_the_others() -> None:
    header = 'junk; =nameless; a=1; ;; b="quoted"; c==x; d=; e'
    assert list(parse_cookie_header(header)) == [("a", "1"), ("b", "quoted"), ("c", "=x"), ("d", "")]


def test_whitespace_trimmed_and_one_pair_of_quotes_removed() -> None:
    assert list(parse_cookie_header(' \ta = "v" \t; b=""x"" ')) == [("a", "v"), ("b", '"x"')]


@given(st.lists(st.tuples(names, values), max_size=8), st.sampled_from([";", "; ", " ; "]))
def test_parse_recovers_every_pair(pairs: list[tuple[str, str]], sep: str) -> None:
    header = sep.join(f"{n}={v}" for n, v in pairs)
    expected = [(n, v.strip(" \t")) for n, v in pairs]
    assert list(parse_cookie_header(header)) == expected


@given(st.text(max_size=200))
def test_parse_never_raises(header: str) -> None:
    for name, value in parse_cookie_header(header):
        assert name
        assert ";" not in name
        assert ";" not in value


def test_request_cookies_keeps_duplicates_in_order_across_fields() -> None:
    cookies = RequestCookies(["a=1; b=2", "a=3"])
    assert cookies.get_all("a") == ["1", "3"]
    assert cookies.get_all("b") == ["2"]
    assert cookies.get_all("zz") == []
    assert cookies.names() == ["a", "b"]
    assert bool(cookies)
    assert not RequestCookies([])
    assert not RequestCookies([""])


def test_request_cookies_name_match_is_exact() -> None:
    cookies = RequestCookies(["xcs=1; cs_other=2; CS=3"])
    assert cookies.get_all("cs") == []


def test_default_attributes_render_secure_defaults() -> None:
    writer = CookieWriter(CookieAttributes())
    assert writer.set_cookie("cs", "abc") == "cs=abc; Path=/; Secure; HttpOnly; SameSite=Lax"
    assert writer.delete_cookie("cs") == "cs=; Max-Age=0; Path=/; Secure; HttpOnly; SameSite=Lax"


def test_all_attributes_render_and_delete_keeps_path_and_domain() -> None:
    writer = CookieWriter(
        CookieAttributes(
            path="/app", domain="example.com", secure=True, http_only=False, same_site="Strict", max_age=60
        )
    )
    line = "cs=v; Max-Age=60; Path=/app; Domain=example.com; Secure; SameSite=Strict"
    assert writer.set_cookie("cs", "v") == line
    assert writer.set_cookie("cs", "v", lifetime=5).startswith("cs=v; Max-Age=5; Path=/app")  # the shorter wins
    assert writer.set_cookie("cs", "v", lifetime=600).startswith("cs=v; Max-Age=60; Path=/app")
    assert writer.delete_cookie("cs") == "cs=; Max-Age=0; Path=/app; Domain=example.com; Secure; SameSite=Strict"
    plain = CookieWriter(CookieAttributes(same_site=None, secure=False))
    assert plain.set_cookie("a", "b") == "a=b; Path=/; HttpOnly"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"same_site": "None", "secure": False}, "SameSite=None requires Secure"),
        ({"same_site": "lax"}, "SameSite must be"),
        ({"path": "app"}, "Path must start with '/'"),
        ({"path": "/a;b"}, "Path must start with '/'"),
        ({"domain": "a b"}, "not a valid domain"),
        ({"domain": ""}, "not a valid domain"),
        ({"max_age": -1}, "Max-Age"),
        ({"max_age": 0}, "0 would turn every save into a deletion"),
        ({"maxage": 60}, "unknown argument 'maxage' \\(did you mean 'max_age'"),
        ({"secure": "yes"}, "secure must be True or False"),
        ({"max_age": MAX_MAX_AGE + 1}, "400 days"),
        ({"max_age": 1.5}, "Max-Age"),
    ],
)
def test_invalid_attributes_are_configuration_errors(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        CookieAttributes(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "kwargs", "message"),
    [
        ("__Host-cs", {"secure": False}, "requires Secure"),
        ("__Host-cs", {"path": "/app"}, "requires Path=/"),
        ("__Host-cs", {"domain": "example.com"}, "forbids Domain"),
        ("__host-cs", {"domain": "example.com"}, "forbids Domain"),
        ("__Secure-cs", {"secure": False}, "requires Secure"),
        ("__SECURE-cs", {"secure": False}, "requires Secure"),
    ],
)
def test_prefix_rules(name: str, kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        CookieAttributes(**kwargs).check_name(name)  # type: ignore[arg-type]


def test_valid_prefixed_names_pass() -> None:
    CookieAttributes().check_name("__Host-cs")
    CookieAttributes(path="/x", domain="example.com").check_name("__Secure-cs")


@pytest.mark.parametrize("name", ["", "a b", "a=b", "a;b", 'a"', "é", "a,b", "a\x00"])
def test_invalid_cookie_names(name: str) -> None:
    with pytest.raises(ConfigurationError, match="not a token"):
        validate_cookie_name(name)


def test_size_limit_is_name_plus_value_4096_bytes() -> None:
    CookieWriter(CookieAttributes()).set_cookie("cs", "x" * 4094)  # exactly 4096 bytes: accepted
    with pytest.raises(CookieTooLarge) as info:
        CookieWriter(CookieAttributes()).set_cookie("cs", "x" * 4095)
    assert info.value.cookie_name == "cs"
    assert info.value.size == 4097
    assert info.value.limit == 4096
    assert "'cs' would be 4097 bytes" in str(info.value)


@given(st.lists(st.tuples(st.sampled_from(["cs", "a", " cs", "cs ", "xcs", "cs.1"]), st.text(max_size=12)), max_size=8))
def test_get_all_agrees_with_the_full_parser(pairs: list[tuple[str, str]]) -> None:
    header = ";".join(f"{n}={v}" for n, v in pairs)
    expected = [v for n, v in parse_cookie_header(header) if n == "cs"]
    assert RequestCookies([header]).get_all("cs") == expected
    full = RequestCookies([header])
    full.names()  # forces the full parse
    assert full.get_all("cs") == expected


def test_a_comma_is_part_of_the_value_and_never_starts_a_pair() -> None:
    # Browsers send commas inside values: "x=a,__Host-s=TOKEN" is one cookie x, not a planted __Host-s.
    assert list(parse_cookie_header("x=a,__Host-s=TOKEN; b=2")) == [("x", "a,__Host-s=TOKEN"), ("b", "2")]
    assert RequestCookies(["x=a,__Host-s=TOKEN"]).get_all("__Host-s") == []
