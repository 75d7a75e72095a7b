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
    from selenium.common.exceptions import JavascriptException, TimeoutException
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError:  # pragma: no cover - depends on the environment
    pytest.fail("the browser test needs selenium: .venv/bin/pip install selenium", pytrace=False)


#: One script reads the element's text in whichever document is current, so a
#: poll cannot find the element in the page being left and read it in the next
#: (chromedriver's "Node with given id does not belong to the document").
TEXT_OF = "const e = document.getElementById(arguments[0]); return e === null ? null : e.innerText;"


def wait_for(driver: webdriver.Chrome, element_id: str, fragment: str) -> None:
    """Wait until the current page's element ``element_id`` shows ``fragment``.

    Raises AssertionError (with the page source) after ``WAIT`` seconds.
    """

    def shows(d: webdriver.Chrome) -> bool:
        text = d.execute_script(TEXT_OF, element_id)
        return isinstance(text, str) and fragment in text

    try:
        WebDriverWait(driver, WAIT, poll_frequency=0.05, ignored_exceptions=(JavascriptException,)).until(shows)
    except TimeoutException:
        page = driver.page_source
        raise AssertionError(f"#{element_id} did not show {fragment!r} within {WAIT} s:\n{page}") from None


def submit(driver: webdriver.Chrome, element_id: str) -> None:
    """Click a button that submits a form and wait until the page it was on is gone.

    Waiting for the old document to go stale keeps a following ``wait_for`` from
    reading the page being left (which still shows the previous state).
    Raises AssertionError if the page has not changed after ``WAIT`` seconds.
    """
    page = driver.find_element(By.TAG_NAME, "html")
    click(driver, element_id)
    try:
        WebDriverWait(driver, WAIT, poll_frequency=0.05).until(expected_conditions.staleness_of(page))
    except TimeoutException:
        raise AssertionError(f"clicking #{element_id} did not load a new page within {WAIT} s") from None


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
    submit(driver, "login")
    wait_for(driver, "who", "ada")
    cookie = driver.get_cookie("session")
    assert cookie is not None
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Lax"
    submit(driver, "visit")
    wait_for(driver, "visits", "1")

    driver.refresh()  # the state is in the cookie, not in the page
    wait_for(driver, "who", "ada")
    wait_for(driver, "visits", "1")

    submit(driver, "admin")
    wait_for(driver, "sudo-required", "Confirm your password")
    fill(driver, "password", "correct horse")
    submit(driver, "sudo")
    wait_for(driver, "admin-page", "Admin area of ada")
    driver.refresh()
    wait_for(driver, "admin-page", "Admin area of ada")

    driver.get(server.url + "/")
    submit(driver, "logout")
    wait_for(driver, "login", "Log in")
    assert driver.get_cookie("session") is None, driver.get_cookies()
    driver.refresh()
    wait_for(driver, "login", "Log in")
