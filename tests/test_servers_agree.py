"""The same raw ``Cookie`` bytes, sent over real HTTP to uvicorn (ASGI) and waitress (WSGI), give the
application the same cookies and the same loaded state.

The WSGI demo used to run on the standard library's wsgiref, which rewrites header values before the
application sees them; this property pins that the two production servers clientstate is tested with
hand the middleware the same bytes. Header values are drawn from what RFC 9110 §5.5 allows in a field
value (visible ASCII, space, tab, obs-text 0x80-0xFF), including real, tampered and duplicated tokens.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clientstate import Loaded, RequestCookies, asgi, client_stored, get_slot, wsgi
from clientstate.testing import fixed_keyring
from tests.conftest import ACCOUNT, Account
from tests.servers import uvicorn_server, waitress_server

HANDLER = client_stored(fixed_keyring(1), name="cs")


def report(headers: list[str], slot: Any) -> bytes:
    cookies = RequestCookies(headers)
    pairs = [[name, value] for name in cookies.names() for value in cookies.get_all(name)]
    state = None if slot.state is None else [slot.state.user_id, slot.state.name]
    error = None if slot.error is None else slot.error.kind.value
    return json.dumps({"pairs": pairs, "state": state, "error": error}).encode()


def wsgi_app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    header = environ.get("HTTP_COOKIE")
    body = report([header] if header else [], get_slot(environ, ACCOUNT))
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


async def asgi_app(scope: Any, receive: Any, send: Any) -> None:
    headers = [value.decode("latin-1") for name, value in scope["headers"] if name == b"cookie"]
    body = report(headers, get_slot(scope, ACCOUNT))
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[str, str]]:
    with (
        uvicorn_server(asgi.setup(ACCOUNT, HANDLER, asgi_app)) as asgi_url,
        waitress_server(wsgi.setup(ACCOUNT, HANDLER, wsgi_app)) as wsgi_url,
    ):
        yield asgi_url, wsgi_url


def raw_get(url: str, cookie: bytes) -> tuple[int, bytes]:
    """Send ``GET /`` with the exact ``Cookie`` bytes over a fresh connection; (status, body)."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nCookie: " + cookie + b"\r\n\r\n")
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    if b"transfer-encoding: chunked" in head.lower():
        body = dechunk(body)
    return status, body


def dechunk(body: bytes) -> bytes:
    out = b""
    while body:
        size_line, _, rest = body.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out += rest[:size]
        body = rest[size + 2 :]
    return out


NOW = time.time()
VALID = HANDLER.save(ACCOUNT, Loaded(), ACCOUNT.encode(Account(7, "ada")), NOW)[0].split(";", 1)[0]
OTHER = HANDLER.save(ACCOUNT, Loaded(), ACCOUNT.encode(Account(8, "bob")), NOW)[0].split(";", 1)[0]

# RFC 9110 field-value octets, as characters (latin-1): VCHAR, SP, HTAB, obs-text.
FIELD_CHARS = st.sampled_from([chr(c) for c in (*range(0x21, 0x7F), 0x20, 0x09, *range(0x80, 0x100))])
PIECES = st.one_of(
    st.text(FIELD_CHARS, max_size=12),
    st.sampled_from(
        [VALID, OTHER, VALID[:-3] + "AAA", "cs=", "cs", "=", ";", "; ", " cs = x ", '"', 'cs="' + VALID[3:] + '"']
    ),
    # Characters str.strip() treats as whitespace although HTTP does not (NEL, NBSP): a server that
    # strips them (wsgiref does) hands the application other values than one that does not.
    st.sampled_from(["a=1\xa0", "a=\x85", "\xa0" + VALID, VALID + "\x85", "cs=\xa0"]),
    st.builds(
        lambda n, v: f"{n}={v}",
        st.sampled_from(["a", "cs", "CS", "cs.1", "__Host-x"]),
        st.text(FIELD_CHARS, max_size=8),
    ),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pieces=st.lists(PIECES, max_size=6), separator=st.sampled_from(["; ", ";", " ; ", ";\t"]))
def test_uvicorn_and_waitress_hand_the_application_the_same_cookies(
    servers: tuple[str, str], pieces: list[str], separator: str
) -> None:
    header = separator.join(pieces).strip(" \t").encode("latin-1")  # a field value has no outer whitespace
    asgi_url, wsgi_url = servers
    asgi_status, asgi_body = raw_get(asgi_url, header)
    wsgi_status, wsgi_body = raw_get(wsgi_url, header)
    assert asgi_status == wsgi_status == 200, (asgi_body, wsgi_body)
    assert json.loads(asgi_body) == json.loads(wsgi_body)


def test_the_property_sees_real_states_and_errors(servers: tuple[str, str]) -> None:
    """Control: a valid token loads over both servers, and a tampered one fails the same way."""
    for url in servers:
        assert json.loads(raw_get(url, VALID.encode())[1])["state"] == [7, "ada"]
        assert json.loads(raw_get(url, (VALID[:-3] + "AAA").encode())[1])["error"] == "authentication_failed"
        assert json.loads(raw_get(url, f"{VALID}; {OTHER}".encode())[1])["error"] == "ambiguous"
