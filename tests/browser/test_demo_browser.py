"""The demo page in a real browser: headless Debian Chromium against the real demo server.

The HTTP-level test (``tests/test_demo_e2e.py``) checks the ``Set-Cookie``
lines; this one checks what a browser makes of them: it stores the cookie, sends
it back, hides it from the page's JavaScript (``HttpOnly``), keeps it across a
reload, and drops it on ``Max-Age=0``. Runs once per interface (ASGI, WSGI).

Needs ``/usr/bin/chromium`` and ``/usr/bin/chromedriver`` (``bin/ensure-chromium``
installs them); Selenium is pointed at both, so Selenium Manager never runs.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator

import pytest

from clientstate import Keyring, generate_key
from clientstate.demo import COOKIE_NAME
from tests.test_demo_e2e import DemoServer

try:
    from selenium import webdriver
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError:  # pragma: no cover - depends on the environment
    pytest.fail("tests/browser needs selenium: .venv/bin/pip install selenium", pytrace=False)

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",  # we run as root
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--no-proxy-server",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1024,768",
)
WAIT = 10.0  # seconds any single step may take before the test fails
KEYRING = Keyring(generate_key(3))  # a real key: the demo refuses the public test keys


@pytest.fixture(scope="module", params=["asgi", "wsgi"])
def server(request: pytest.FixtureRequest) -> Iterator[DemoServer]:
    demo = DemoServer(request.param, KEYRING)
    yield demo
    demo.stop()


@pytest.fixture(scope="module")
def browser(server: DemoServer) -> Iterator[webdriver.Chrome]:
    """A fresh headless Chromium (own profile, so no cookies) per server."""
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not os.access(path, os.X_OK)]
    if missing:
        pytest.fail(
            f"{' and '.join(missing)} not found: run bin/ensure-chromium "
            f"(installs Debian's chromium and chromium-driver) before the browser tests",
            pytrace=False,
        )
    profile = tempfile.mkdtemp(prefix="clientstate-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    try:
        driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    except Exception:
        shutil.rmtree(profile, ignore_errors=True)
        raise
    driver.set_page_load_timeout(WAIT)
    driver.set_script_timeout(WAIT)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def text_of(driver: webdriver.Chrome, element_id: str) -> str:
    return str(driver.find_element(By.ID, element_id).text)


def wait_for(driver: webdriver.Chrome, element_id: str, *fragments: str) -> str:
    """Wait until the element's text contains every fragment; return that text."""

    def shows_all(d: webdriver.Chrome) -> str | bool:
        text = text_of(d, element_id)
        return text if all(fragment in text for fragment in fragments) else False

    try:
        return str(WebDriverWait(driver, WAIT, poll_frequency=0.05).until(shows_all))
    except TimeoutException:
        raise AssertionError(
            f"#{element_id} did not show {fragments!r} within {WAIT} s; it shows:\n{text_of(driver, element_id)}"
        ) from None


def click(driver: webdriver.Chrome, element_id: str) -> None:
    driver.find_element(By.ID, element_id).click()


def fill(driver: webdriver.Chrome, element_id: str, value: str) -> None:
    field = driver.find_element(By.ID, element_id)
    field.clear()
    field.send_keys(value)


def plant_cookie(driver: webdriver.Chrome, value: str) -> None:
    """Replace the demo cookie in the browser's jar, as a client tampering with it would."""
    driver.delete_cookie(COOKIE_NAME)
    driver.add_cookie({"name": COOKIE_NAME, "value": value, "path": "/", "httpOnly": True})
    assert [c["value"] for c in driver.get_cookies() if c["name"] == COOKIE_NAME] == [value]


def log_in(driver: webdriver.Chrome, user: str) -> None:
    fill(driver, "user", user)
    click(driver, "login")
    wait_for(driver, "last", "POST /api/login → 200")
    wait_for(driver, "state", f'"user": "{user}"', '"visits": 0', '"error": null')


def test_cookie_session_in_a_real_browser(server: DemoServer, browser: webdriver.Chrome) -> None:
    driver = browser
    driver.get(server.url + "/")
    assert driver.title == "clientstate demo"
    wait_for(driver, "state", '"state": null', '"error": null')
    assert driver.get_cookie(COOKIE_NAME) is None

    # Log in: the browser stores the cookie exactly as the server set it.
    log_in(driver, "ada lovelace")
    cookie = driver.get_cookie(COOKIE_NAME)
    assert cookie is not None, driver.get_cookies()
    assert cookie["httpOnly"] is True
    assert cookie["secure"] is False  # plain HTTP on loopback, as the demo announces
    assert cookie["path"] == "/"
    assert cookie["sameSite"] == "Lax"
    # The browser keeps it for the token's lifetime: 30 days by default (Max-Age=2592000).
    assert abs(cookie["expiry"] - (time.time() + 30 * 24 * 3600)) < 120
    # HttpOnly: the page's own JavaScript cannot see it, yet the browser sends it.
    page_cookies = driver.execute_script("return document.cookie")
    assert COOKIE_NAME not in page_cookies

    # Two visits, each a new cookie the browser replaces and sends back.
    click(driver, "visit")
    wait_for(driver, "state", '"visits": 1')
    click(driver, "visit")
    wait_for(driver, "last", "POST /api/visit → 200", '"visits": 2')
    wait_for(driver, "state", '"user": "ada lovelace"', '"visits": 2')
    held = driver.get_cookie(COOKIE_NAME)
    assert held is not None
    assert held["value"] != cookie["value"]

    # A reload keeps the state: it lives in the cookie, not in the page.
    driver.refresh()
    wait_for(driver, "state", '"user": "ada lovelace"', '"visits": 2', '"error": null')

    # sudo: refused, then elevated for 30 s, then allowed.
    click(driver, "admin")
    wait_for(driver, "last", "GET /api/admin → 403", '"error": "sudo_required"')
    fill(driver, "password", "demo")
    fill(driver, "seconds", "30")
    click(driver, "sudo")
    wait_for(driver, "last", "POST /api/sudo → 200")
    wait_for(driver, "state", "elevated for ")
    click(driver, "admin")
    wait_for(driver, "last", "GET /api/admin → 200", '"ok": true')

    # Tamper: one flipped character fails the HMAC; the server reports it as a
    # value (not a 500) and deletes the bad cookie, which the browser then drops.
    held = driver.get_cookie(COOKIE_NAME)
    assert held is not None
    value = held["value"]
    flipped = value[:10] + ("A" if value[10] != "A" else "B") + value[11:]
    plant_cookie(driver, flipped)
    click(driver, "refresh")
    wait_for(driver, "state", '"state": null', '"error": "authentication_failed"')
    assert driver.get_cookie(COOKIE_NAME) is None, driver.get_cookies()
    click(driver, "refresh")  # the next request carries no cookie: no error any more
    wait_for(driver, "state", '"state": null', '"error": null')

    # The same on a page reload. The middleware also runs for ``GET /``, so the
    # page's own response already deletes the bad cookie and the page's first
    # /api/state call no longer sees it: only "state is null" and "cookie gone"
    # are asserted here, not which response reported the error.
    plant_cookie(driver, flipped)
    driver.refresh()
    wait_for(driver, "state", '"state": null')
    assert driver.get_cookie(COOKIE_NAME) is None, driver.get_cookies()

    # Log in again, then log out: the cookie is deleted and the state is gone.
    log_in(driver, "grace")
    assert driver.get_cookie(COOKIE_NAME) is not None
    click(driver, "logout")
    wait_for(driver, "last", "POST /api/logout → 200")
    wait_for(driver, "state", '"state": null', '"error": null')
    assert driver.get_cookie(COOKIE_NAME) is None, driver.get_cookies()
    driver.refresh()
    wait_for(driver, "state", '"state": null', '"error": null')
