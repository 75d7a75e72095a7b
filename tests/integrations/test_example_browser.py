"""The Flask example in a real browser: headless Debian Chromium against the example's own server process.

Log in, count a visit, reload (the state lives in the cookie), the
sudo-protected page (refused, then confirmed), log out. The approach, flags
and helpers are those of ``tests/browser/test_demo_browser.py``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator

import pytest

from tests.browser.test_demo_browser import CHROMEDRIVER, CHROMIUM, CHROMIUM_FLAGS, WAIT, click, fill
from tests.integrations.example_server import ExampleServer

try:
    from selenium import webdriver
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException, TimeoutException
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError:  # pragma: no cover - depends on the environment
    pytest.fail("the browser test needs selenium: .venv/bin/pip install selenium", pytrace=False)


def wait_for(driver: webdriver.Chrome, element_id: str, fragment: str) -> None:
    """Wait until the element (on the page being loaded: stale elements are retried) shows ``fragment``."""

    def shows(d: webdriver.Chrome) -> bool:
        return fragment in str(d.find_element(By.ID, element_id).text)

    ignored = (NoSuchElementException, StaleElementReferenceException)
    try:
        WebDriverWait(driver, WAIT, poll_frequency=0.05, ignored_exceptions=ignored).until(shows)
    except TimeoutException:
        page = driver.page_source
        raise AssertionError(f"#{element_id} did not show {fragment!r} within {WAIT} s:\n{page}") from None


@pytest.fixture(scope="module")
def server() -> Iterator[ExampleServer]:
    example = ExampleServer("flask/flask_example.py")
    yield example
    example.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not os.access(path, os.X_OK)]
    if missing:
        pytest.fail(f"{' and '.join(missing)} not found: run bin/ensure-chromium first", pytrace=False)
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
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def test_the_flask_example_in_a_real_browser(server: ExampleServer, browser: webdriver.Chrome) -> None:
    driver = browser
    driver.get(server.url + "/")
    wait_for(driver, "login", "Log in")
    assert driver.get_cookie("session") is None

    fill(driver, "user", "ada")
    click(driver, "login")
    wait_for(driver, "who", "ada")
    cookie = driver.get_cookie("session")
    assert cookie is not None
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Lax"
    click(driver, "visit")
    wait_for(driver, "visits", "1")

    driver.refresh()  # the state is in the cookie, not in the page
    wait_for(driver, "who", "ada")
    wait_for(driver, "visits", "1")

    click(driver, "admin")
    wait_for(driver, "sudo-required", "Confirm your password")
    fill(driver, "password", "correct horse")
    click(driver, "sudo")
    wait_for(driver, "admin-page", "Admin area of ada")
    driver.refresh()
    wait_for(driver, "admin-page", "Admin area of ada")

    driver.get(server.url + "/")
    click(driver, "logout")
    wait_for(driver, "login", "Log in")
    assert driver.get_cookie("session") is None, driver.get_cookies()
    driver.refresh()
    wait_for(driver, "login", "Log in")
