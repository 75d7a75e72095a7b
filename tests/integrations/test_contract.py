"""The core's behaviour, kept by every integration, against each framework's own test client.

Starlette, FastAPI, Flask, Litestar and Django serve the same routes
(``support``); each test runs once per framework.
"""

from __future__ import annotations

from clientstate import RequestCookies
from tests.integrations.support import COOKIE, SESSION, Driver, make_handler


def held_state(driver: Driver) -> object:
    value = driver.cookie(COOKIE)
    if value is None:
        return None
    loaded = make_handler().load(SESSION, RequestCookies([f"{COOKIE}={value}"]), driver.clock())
    assert loaded.error is None, loaded.error
    return loaded.state


def test_set_cookie_only_when_the_value_changes(driver: Driver) -> None:
    anonymous = driver.call("GET", "/read")
    assert anonymous.status == 200
    assert anonymous.body == {"state": None, "error": None}
    assert anonymous.set_cookies(COOKIE) == []

    login = driver.call("POST", "/login", {"user": "ada"})
    assert login.status == 200
    (line,) = login.set_cookies(COOKIE)
    assert "; Path=/; HttpOnly; SameSite=Lax" in line
    assert "Max-Age=2592000" in line
    assert login.get_all("cache-control") == ["private"]
    assert held_state(driver) == SESSION.type(user="ada")

    read = driver.call("GET", "/read")
    assert read.body["state"]["user"] == "ada"
    assert read.set_cookies(COOKIE) == []
    assert driver.call("POST", "/same").set_cookies(COOKIE) == []  # an equal value is no change

    visit = driver.call("POST", "/visit")
    assert visit.body == {"visits": 1}
    assert len(visit.set_cookies(COOKIE)) == 1
    tagged = driver.call("POST", "/tag")  # an in-place, nested change still counts
    assert len(tagged.set_cookies(COOKIE)) == 1
    assert held_state(driver) == SESSION.type(user="ada", visits=1, tags=["t"])

    logout = driver.call("POST", "/logout")
    (deletion,) = logout.set_cookies(COOKIE)
    assert deletion.startswith(f"{COOKIE}=; Max-Age=0; Path=/")
    assert driver.cookie(COOKIE) is None
    assert driver.call("GET", "/read").body == {"state": None, "error": None}


def test_load_errors_reach_the_application_as_values(driver: Driver) -> None:
    driver.put_cookie(COOKIE, "not-a-token!")
    read = driver.call("GET", "/read")
    assert read.status == 200
    assert read.body == {"state": None, "error": "malformed"}
    (deletion,) = read.set_cookies(COOKIE)  # the invalid cookie is replaced by nothing
    assert "Max-Age=0" in deletion

    driver.call("POST", "/login", {"user": "ada"})
    token = driver.cookie(COOKIE)
    assert token is not None
    forged = token[:12] + ("A" if token[12] != "A" else "B") + token[13:]
    driver.put_cookie(COOKIE, forged)
    assert driver.call("GET", "/read").body == {"state": None, "error": "authentication_failed"}
    driver.put_cookie(COOKIE, forged)
    guarded = driver.call("POST", "/visit")  # the guard sees "no state", not an exception
    assert guarded.status == 401
    assert "login_required" in str(guarded.body)


def test_the_applications_own_cookies_and_headers_are_untouched(driver: Driver) -> None:
    read = driver.call("GET", "/read")
    assert read.get_all("x-app") == ["kept"]
    (own,) = read.set_cookies("theme")
    assert own.startswith("theme=dark")
    assert "Path=/" in own
    vary = ", ".join(read.get_all("vary"))
    assert "Accept-Language" in vary
    assert "Cookie" in vary
    assert read.get_all("cache-control") == []  # nothing of ours was set: no Cache-Control added

    driver.call("POST", "/login", {"user": "ada"})
    read = driver.call("GET", "/read")
    assert read.set_cookies(COOKIE) == []
    assert len(read.set_cookies("theme")) == 1


def test_a_failed_request_commits_nothing(driver: Driver) -> None:
    driver.call("POST", "/login", {"user": "ada"})
    before = driver.cookie(COOKIE)

    failed = driver.call("POST", "/fail")  # the app answers 500 itself
    assert failed.status == 500
    assert failed.set_cookies(COOKIE) == []
    crashed = driver.call("POST", "/crash")  # the view raises: the framework answers 500
    assert crashed.status == 500
    assert crashed.set_cookies(COOKIE) == []

    assert driver.cookie(COOKIE) == before
    assert driver.call("GET", "/read").body["state"]["user"] == "ada"


def test_the_sudo_guard(driver: Driver) -> None:
    anonymous = driver.call("GET", "/admin")
    assert anonymous.status == 401
    driver.call("POST", "/login", {"user": "ada"})
    refused = driver.call("GET", "/admin")
    assert refused.status == 403
    assert "sudo_required" in str(refused.body)
    assert refused.set_cookies(COOKIE) == []

    granted = driver.call("POST", "/sudo")
    assert granted.body == {"sudo_until": driver.clock() + 60}
    allowed = driver.call("GET", "/admin")
    assert (allowed.status, allowed.body) == (200, {"ok": True})
    assert allowed.set_cookies(COOKIE) == []

    driver.clock.set(driver.clock() + 59)
    assert driver.call("GET", "/admin").status == 200
    driver.clock.set(driver.clock() + 1)  # the window is over: granted at t0, for 60 s
    assert driver.call("GET", "/admin").status == 403
